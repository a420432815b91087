"""``python -m wtc.bench recovery``: the whole recommendation, gated, against its oracle and the production rules.

On a history's held-out workflows (the default benchmark's) and on a fresh generated history of
another seed, it measures:

- the **recovery recommender** (one model per part: action, splitting, xrootd, memory) with the
  joint gate of :mod:`wtc.inference.joint` certified by Learn-then-Test on the parts' out-of-fold
  predictions of the training split (workflow groups): joint coverage and realised joint
  precision; the action-only gate's coverage and realised action precision;
- the **oracle's** joint coverage at the same precisions (the generator's
  ``P(action, splitting, xrootd, memory | task)``, per task and per workflow);
- the **production rules** (``model=recoveror``: Unified's recoveror and AIErrorHandling's
  StaticActions): coverage (where they fire) and realised precision, of the whole and of the action.

``recipe="recovery"`` (the default) measures what ships: each part is a run of
``+experiment=recovery`` (the champion recipe per part), and its out-of-fold rows on the action
run's folds are made as ``wtc promote --recovery`` makes them
(:func:`wtc.ops.recovery_gate.out_of_fold`). The parts' runs split by their own targets, so some of
the action's held-out tasks trained a part: only the fresh history is scored. ``recipe="quick"``
is a cheap stand-in (each part LightGBM with default parameters, no search, fitted on the action's
training split; its out-of-fold rows from that split's grouped folds), which also scores the
held-out workflows.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wtc.bench.scratch import scratch_overrides

#: The quick recipe of each part: early-stopped LightGBM with default parameters (view: ``workflow_evidence``).
PART_OVERRIDES = ("model=lightgbm_es", "scaler=none", "search=none", "n_jobs=1", "diagnostics=none")
#: The recipes ``bench_recovery`` offers (the first is the default: the shipped ``+experiment=recovery``).
RECIPES = ("recovery", "quick")


@dataclass
class Part:
    classes: list[str]
    spec: object
    pipeline: object
    oof: np.ndarray
    test: np.ndarray | None  # None: the part's run trained on some of the action's held-out tasks


def _spec(cfg, data, target: str):
    """How the part reads raw tasks (its view, columns, classes)."""
    from wtc.inference.tasks import TaskModelSpec

    return TaskModelSpec(view=cfg.data.view, feature_names=list(data.feature_names), class_names=list(data.classes),
                         extras=list(cfg.data.get("extras") or []), target=target)


def _fit_part(cfg, data, splits, target: str) -> Part:
    """The quick part: out-of-fold probabilities on the training split's folds, then the refit on all of it."""
    from wtc.models.pipeline import build_pipeline, fit_grouped, full_proba, with_params
    from wtc.ops.recovery_gate import out_of_fold

    train, k = splits.train, len(data.classes)
    X, y, groups = data.X[train], data.y[train], data.groups[train]
    pipeline = build_pipeline(cfg, data.feature_names, data.classes)
    oof = out_of_fold(pipeline, X, y, groups, splits.folds, k)
    final = fit_grouped(with_params(pipeline, {}), X, y, groups)
    return Part(list(data.classes), _spec(cfg, data, target), final, oof, full_proba(final, data.X[splits.test], k))


def _run_part(cfg, data, splits, target: str) -> Part:
    """The part as ``+experiment=recovery`` trains it (one run), with its out-of-fold rows on the action's
    folds as ``wtc promote --recovery`` certifies them."""
    from wtc.data.dataset import config_splits
    from wtc.models.pipeline import full_proba
    from wtc.ops.recovery_gate import out_of_fold
    from wtc.run.experiment import run

    result = run(cfg)
    train, k = splits.train, len(data.classes)
    oof = out_of_fold(result.pipeline, data.X[train], data.y[train], data.groups[train], splits.folds, k)
    own_test = config_splits(cfg, data).test
    test = full_proba(result.pipeline, data.X[splits.test], k) if np.array_equal(own_test, splits.test) else None
    return Part(list(data.classes), _spec(cfg, data, target), result.pipeline, oof, test)


def _keys(history, rows=None) -> list[tuple]:
    from wtc.data.targets import recovery_key

    records = [p for p in history.parameter_records if p is not None]
    return [recovery_key(records[i]) for i in (range(len(records)) if rows is None else rows)]


def _oracle_coverage(raw: dict, truth: list[tuple], precisions: list[float]) -> dict:
    """The joint oracle's coverage at each precision (measured on the realised keys), per task and per
    workflow, and its action-only coverage at the first precision."""
    from wtc.data.synthetic import joint_oracle_of
    from wtc.evaluation.automation import coverage_at_precision

    out = {}
    for name, workflow in (("oracle", False), ("workflow oracle", True)):
        keys, proba = joint_oracle_of(raw, workflow=workflow)
        index = {k: i for i, k in enumerate(keys)}
        y = np.array([index.get(k, -1) for k in truth])
        for p in precisions:
            out[f"{name}: whole recommendation, ≥ {p:.0%} right"] = (coverage_at_precision(y, proba, p)[0], p)
        actions = sorted({k[0] for k in keys})
        by_action = np.stack([proba[:, [i for i, k in enumerate(keys) if k[0] == a]].sum(axis=1) for a in actions], 1)
        y_action = np.array([actions.index(t[0]) for t in truth])
        out[f"{name}: action alone, ≥ {precisions[0]:.0%} right"] = (
            coverage_at_precision(y_action, by_action, precisions[0])[0], precisions[0])
    return out


def _row(name: str, auto: np.ndarray, right: np.ndarray, right_action: np.ndarray) -> dict:
    n = int(auto.sum())
    return {"model": name, "auto": n, "tasks": int(auto.size), "coverage": n / max(auto.size, 1),
            "precision_whole": float(right[auto].mean()) if n else float("nan"),
            "precision_action": float(right_action[auto].mean()) if n else float("nan")}


def _evaluate(parts: dict[str, Part], proba: dict, gates: dict, truth, X_rules, rules, raw: dict):
    """The rows of one table: the joint gate at each certified precision, the action gate, the rules;
    and the oracles' coverages."""
    from wtc.data.targets import memory_bucket
    from wtc.inference.joint import combine, joint_correct

    combined = combine(proba, {t: p.classes for t, p in parts.items()})
    whole, action = joint_correct(combined, truth)
    rows = []
    for alpha, gate in gates.items():
        gate.mode = "joint"
        auto, _, _ = gate.decide(combined)
        rows.append(_row(f"recommender: joint gate, certified ≥ {1 - alpha:.0%} whole", auto, whole, action))
    main = next(iter(gates.values()))
    action_auto = (combined.probabilities["action"] >= main.action_threshold) & (combined.values["action"] != "other")
    rows.append(_row(f"recommender: action gate, certified ≥ {1 - next(iter(gates)):.0%} action (parameters as "
                     "suggestions)", action_auto, whole, action))
    for source, policy in rules.items():
        rec = policy.recommendations(X_rules)
        fired = rec["auto"].to_numpy()
        keys = [(a, s, x, memory_bucket(m or None)) if a else ("", "", "", "")
                for a, s, x, m in zip(rec["action"], rec["splitting"], rec["xrootd"], rec["memory"])]
        right = np.array([k == t for k, t in zip(keys, truth)])
        right_action = np.array([k[0] == t[0] for k, t in zip(keys, truth)])
        rows.append(_row(f"production rules: recoveror ({source})", fired, right, right_action))
    limits = _oracle_coverage(raw, truth, [1 - a for a in gates])
    return rows, limits


def _raw_subset(path: Path, tasks: list[str]) -> dict:
    raw = json.loads(Path(path).read_text())
    return {t: raw[t] for t in tasks}


def _print(title: str, rows: list[dict], limits: dict, lines: list[str]) -> None:
    """Append one Markdown table (the model rows, then the oracles' coverages) to ``lines`` and print it."""
    block = [f"\n### {title}\n", "| AUTO policy | AUTO tasks | coverage | realised precision (whole) | "
             "realised precision (action) |", "|---|---|---|---|---|"]
    def share(value: float) -> str:
        return "–" if np.isnan(value) else f"{value:.1%}"

    for r in rows:
        block.append(f"| {r['model']} | {r['auto']}/{r['tasks']} | {r['coverage']:.1%} | "
                     f"{share(r['precision_whole'])} | {share(r['precision_action'])} |")
    for name, (value, _) in limits.items():
        block.append(f"| {name} (measured) | | {value:.1%} | | |")
    lines += block
    print("\n".join(block), flush=True)


def bench_recovery(history: str | None = None, fresh_seed: int = 1, fresh_tasks: int = 10000,
                   recipe: str = "recovery", data: str | None = None, folds: int | None = None,
                   trials: int | None = None, alphas: tuple = (0.05, 0.2, 0.5, 0.7), delta: float = 0.1,
                   out: str | None = None) -> dict:
    """Fit the parts, certify the joint gate on their out-of-fold rows, and print the tables (see the module).

    Parameters
    ----------
    history : str, optional
        A generated history (default: the default benchmark); its held-out workflows are the first table.
    fresh_seed, fresh_tasks : int
        The fresh history of the second table (0 tasks: none).
    recipe : {"recovery", "quick"}
        The parts: ``+experiment=recovery`` runs (what ships), or the quick stand-in (see the module).
    data : str, optional
        The parts' view (a ``conf/data`` option; default: the recipe's, ``workflow_evidence`` for quick).
    folds : int, optional
        Workflow-grouped folds of the training split, the out-of-fold rows (default: the recipe's, 3 for quick).
    trials : int, optional
        Overrides the recovery recipe's ``search.n_trials`` (quick checks).
    alphas : tuple of float
        The joint gate's tolerated error shares (the first also the action gate's): one row each.
    delta : float
        The gates' tolerated failure probability.
    out : str, optional
        Also write the tables as Markdown there.

    Returns
    -------
    dict
        ``gates`` (α -> the certified :class:`~wtc.inference.joint.JointGate`) and, per table
        (``held_out``, ``fresh``), its rows and the oracles' coverages.
    """
    from hydra import compose, initialize_config_dir

    from wtc.data.dataset import config_splits, load_dataset, resolve_data_path
    from wtc.data.loader import load_history
    from wtc.inference.joint import certify_gate, combine
    from wtc.inference.recovery import RECOVERY_TARGETS
    from wtc.inference.tasks import task_probabilities
    from wtc.models.recoveror import RecoverorPolicy

    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    started = time.perf_counter()
    conf = Path(__file__).resolve().parents[2] / "conf"
    result: dict = {}
    options = "".join(f" --{k} {v}" for k, v in (("data", data), ("folds", folds), ("trials", trials)) if v)
    command = (f"`python -m wtc.bench recovery --recipe {recipe} --fresh-seed {fresh_seed} --fresh-tasks "
               f"{fresh_tasks}{options}`")
    about = ("parts: `+experiment=recovery` runs (the champion recipe per part), out-of-fold rows on the action run's "
             "folds as `wtc promote --recovery` makes them" if recipe == "recovery" else
             f"parts: LightGBM (early-stopped, default parameters), view `{data or 'workflow_evidence'}`, "
             f"{folds or 3} workflow-grouped folds of the training split for the out-of-fold rows")
    lines = [f"# The recovery recommender's joint gate (δ={delta}) vs the oracle and the production rules\n",
             f"{command}; {about}."]
    with tempfile.TemporaryDirectory() as tmp:
        if recipe == "recovery":
            base = ["+experiment=recovery", *scratch_overrides(tmp), "quiet=true"]
            base += [f"search.n_trials={trials}"] if trials else []
            base += [f"data={data}"] if data else []
            base += [f"cv.n_splits={folds}"] if folds else []
        else:
            base = [f"data={data or 'workflow_evidence'}", *PART_OVERRIDES, f"cv.n_splits={folds or 3}",
                    f"paths.cache_dir={tmp}/cache"]
        if history is not None:
            base.append(f"data.path={history}")
        parts, cfgs, datasets = {}, {}, {}
        splits = None
        for target in RECOVERY_TARGETS:
            with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                cfgs[target] = compose("config", overrides=[*base, f"target={target}"])
            datasets[target] = load_dataset(cfgs[target])
            if splits is None:  # every part on the action's split and folds: the same tasks everywhere
                splits = config_splits(cfgs[target], datasets[target])
            if not np.array_equal(datasets[target].groups, datasets["action"].groups):
                raise ValueError(f"the {target} part's rows differ from the action's")
            t0 = time.perf_counter()
            fit = _run_part if recipe == "recovery" else _fit_part
            parts[target] = fit(cfgs[target], datasets[target], splits, target)
            print(f"{target}: {len(parts[target].classes)} classes, fitted (out-of-fold + refit) in "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        path = resolve_data_path(cfgs["action"])
        loaded = load_history(path, cache_dir=Path(tmp) / "cache")
        truth_all = _keys(loaded)
        train, test = splits.train, splits.test
        groups = datasets["action"].groups
        oof = combine({t: p.oof for t, p in parts.items()}, {t: p.classes for t, p in parts.items()})
        gates = {a: certify_gate(oof, [truth_all[i] for i in train], groups[train], alpha=a, delta=delta)
                 for a in alphas}
        result["gates"] = gates
        first = gates[alphas[0]]
        lines.append(f"\nCertified on {first.n_rows} out-of-fold rows of the training split ({first.method}), "
                     f"AUTO when confidence ≥ the threshold: the whole recommendation (product of its parts) "
                     + ", ".join(f"at ≥ {1 - a:.0%}: {g.joint_threshold:.4g} ({g.joint_coverage:.1%} of the rows)"
                                 for a, g in gates.items())
                     + f"; the action alone at ≥ {1 - alphas[0]:.0%}: {first.action_threshold:.4g} "
                     f"({first.action_coverage:.1%}).")
        print(lines[-1], flush=True)
        action_data = datasets["action"]
        rules = {s: RecoverorPolicy(feature_names=action_data.feature_names, class_names=action_data.classes,
                                    target="action", sources=s).fit(action_data.X[train], action_data.y[train])
                 for s in ("unified", "static", "both")}
        trained_on_test = [t for t, p in parts.items() if p.test is None]
        if trained_on_test:
            lines.append(f"\n(held-out workflows of {path.name}: not scored; the run of each of the "
                         f"{', '.join(trained_on_test)} parts drew its own split, by its own target, and trained "
                         "on some of them)")
            print(lines[-1], flush=True)
        else:
            labelled = [t for t, p in zip(loaded.tasks, loaded.parameter_records) if p is not None]
            raw = _raw_subset(path, [labelled[i] for i in test])
            rows, limits = _evaluate(parts, {t: p.test for t, p in parts.items()}, gates,
                                     [truth_all[i] for i in test], action_data.X[test], rules, raw)
            result["held_out"] = (rows, limits)
            _print(f"{path.name}: held-out workflows ({len(test)} tasks)", rows, limits, lines)
        if fresh_tasks:
            from wtc.data.synthetic import generate_history

            fresh, _ = generate_history(fresh_tasks, seed=fresh_seed)
            fresh_path = Path(tmp) / f"fresh_{fresh_tasks}_seed{fresh_seed}.json"
            fresh_path.write_text(json.dumps(fresh))
            fresh_history = load_history(fresh_path, cache_dir=Path(tmp) / "cache")
            proba = {t: task_probabilities(p.pipeline, p.spec, fresh_history)[0] for t, p in parts.items()}
            from wtc.data.features import build_features

            X_rules, _ = build_features(fresh_history, cfgs["action"].data.view, vocabulary=action_data.feature_names,
                                        extras=list(cfgs["action"].data.get("extras") or []))
            if any(p is None for p in fresh_history.parameter_records):
                raise ValueError(f"{fresh_path}: a generated task has no parameters")
            rows, limits = _evaluate(parts, proba, gates, _keys(fresh_history), X_rules, rules, fresh)
            result["fresh"] = (rows, limits)
            _print(f"fresh history: seed {fresh_seed}, {fresh_tasks} tasks", rows, limits, lines)
    lines.append(f"\nwall time {time.perf_counter() - started:.0f} s")
    if out:
        Path(out).write_text("\n".join(lines) + "\n")
        print(f"wrote {out}", flush=True)
    return result
