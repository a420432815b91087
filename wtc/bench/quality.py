"""``python -m wtc.bench quality``: the champion preset against the seed recipes, baselines, FLAML and the oracles."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from wtc.bench.scratch import scratch_overrides

#: The limits a quality row may carry: the exact per-task oracle, the name-blind oracle, the
#: workflow oracle (reads the task's siblings) and the name-blind workflow oracle, as metric prefixes.
_LIMITS = ("oracle", "oracle_blind", "oracle_workflow", "oracle_workflow_blind")

#: The recipes ``quality`` runs besides FLAML: (name, overrides). All share seed, test_size
#: and cv, hence the same held-out rows; the seed recipes and baselines read the combined view.
QUALITY_RECIPES = (
    ("champion", ["+experiment=champion"]),
    ("seed_xgb", ["model=seed_xgb", "search=none"]),
    ("seed_dnn", ["model=seed_dnn", "search=none"]),
    ("rules", ["model=rules", "search=none"]),
    ("dummy", ["model=dummy", "search=none"]),
)


def _quality_row(name: str, y_test, proba, oracle, wall_s: float, oracle_blind=None, oracle_workflow=None,
                 oracle_workflow_blind=None) -> dict:
    from wtc.evaluation.diagnostics import automation_metrics
    from wtc.evaluation.metrics import score_all

    n_classes = proba.shape[1]
    scores = score_all(y_test, proba, n_classes)
    row = {"recipe": name, "log_loss": scores["log_loss"], "roc_auc": scores["roc_auc"],
           "coverage_p95": automation_metrics(y_test, proba, "t")["t/coverage_at_p95"], "wall_s": wall_s}
    for prefix, best_proba in zip(_LIMITS, (oracle, oracle_blind, oracle_workflow, oracle_workflow_blind)):
        if best_proba is not None:
            best = score_all(y_test, best_proba, n_classes)
            row[f"{prefix}_log_loss"], row[f"{prefix}_roc_auc"] = best["log_loss"], best["roc_auc"]
            row[f"{prefix}_coverage_p95"] = automation_metrics(y_test, best_proba, "o")["o/coverage_at_p95"]
    return row


def _row_of_metrics(name: str, m: dict, wall_s: float) -> dict:
    """A quality row from a run's metrics (with ``oracle/…``, ``oracle_blind/…``,
    ``oracle_workflow/…`` and ``oracle_workflow_blind/…`` when present)."""
    row = {"recipe": name, "log_loss": m["test/log_loss"], "roc_auc": m["test/roc_auc"],
           "coverage_p95": m["test/coverage_at_p95"], "wall_s": wall_s}
    for prefix in _LIMITS:
        if f"{prefix}/log_loss" in m:
            row.update({f"{prefix}_log_loss": m[f"{prefix}/log_loss"], f"{prefix}_roc_auc": m[f"{prefix}/roc_auc"],
                        f"{prefix}_coverage_p95": m[f"{prefix}/coverage_at_p95"]})
    return row


def _flaml_row(cfg, budget_s: float) -> dict:
    """FLAML's AutoML on the training split of ``cfg``'s view (the champion's), scored on its test rows."""
    import logging

    from flaml import AutoML
    from sklearn.model_selection import StratifiedGroupKFold

    from wtc.data.dataset import config_splits, load_dataset
    from wtc.models.pipeline import full_proba

    data = load_dataset(cfg)
    splits = config_splits(cfg, data)
    logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)
    automl = AutoML()
    start = time.perf_counter()
    # FLAML validates the way the champion does: k folds that keep a workflow's tasks together
    # (stratified by class, so no fold lacks a rare one; FLAML's grouped *holdout* can, and then
    # trains nothing: issue 8). Its default ungrouped holdout lets siblings straddle it, which
    # with the workflow blocks rewards memorising a workflow: binary test log-loss 0.417 instead
    # of 0.263 at 60 s on the default benchmark. Then FLAML refits the best on every training row.
    kwargs = {}
    if cfg.cv.kind == "grouped":
        kwargs = {"eval_method": "cv", "groups": data.groups[splits.train],
                  "split_type": StratifiedGroupKFold(n_splits=int(cfg.cv.n_splits), shuffle=True,
                                                     random_state=int(cfg.seed))}
    automl.fit(data.X[splits.train], data.y[splits.train], task="classification", metric="log_loss",
               time_budget=budget_s, n_jobs=int(cfg.n_jobs), seed=int(cfg.seed), verbose=0, **kwargs)
    wall_s = time.perf_counter() - start
    proba = full_proba(automl, data.X[splits.test], len(data.classes))
    oracle = data.oracle[splits.test] if data.oracle is not None else None
    blind, wf, wf_blind = (None if p is None else p[splits.test]
                           for p in (data.oracle_blind, data.oracle_workflow, data.oracle_workflow_blind))
    row = _quality_row(f"flaml ({automl.best_estimator})", data.y[splits.test], proba, oracle, wall_s, blind, wf,
                       wf_blind)
    row["train_rows"], row["test_rows"] = len(splits.train), len(splits.test)
    return _with_losses(row, data.y[splits.test], proba, data.groups[splits.test])


def _with_losses(row: dict, y_test, proba, groups, limit=None) -> dict:
    """``row`` with its per-task test losses and their workflows (``_losses``, ``_groups``): what the
    paired bootstrap against the champion resamples; with ``limit`` (the name-blind workflow oracle's
    probabilities on the same tasks) its losses too (``_limit_losses``)."""
    from wtc.bench.paired import task_losses

    row["_losses"], row["_groups"] = task_losses(y_test, proba), groups
    if limit is not None:
        row["_limit_losses"] = task_losses(y_test, limit)
    return row


def _run_losses(cfg, result) -> tuple:
    """(labels, probabilities, workflows, the name-blind workflow oracle's probabilities or None) of a
    finished run's test rows (its split is cached)."""
    from wtc.data.dataset import config_splits, load_dataset
    from wtc.models.pipeline import full_proba

    data = load_dataset(cfg)
    test = config_splits(cfg, data).test
    limit = data.oracle_workflow_blind[test] if data.oracle_workflow_blind is not None else None
    return data.y[test], full_proba(result.pipeline, data.X[test], len(data.classes)), data.groups[test], limit


def _autogluon_row(cfg, budget_s: float, python: str | None) -> dict:
    """AutoGluon-Tabular ``best_quality`` on the champion's training rows, scored on its test rows:
    in this process when it imports, else in the interpreter ``python`` on the exported matrices."""
    import subprocess

    import numpy as np

    from wtc.bench.autogluon_peer import fit_autogluon
    from wtc.data.dataset import config_splits, load_dataset

    data = load_dataset(cfg)
    splits = config_splits(cfg, data)
    X_train, X_test = data.X[splits.train].tocsr(), data.X[splits.test].tocsr()
    args = (X_train, data.y[splits.train], data.groups[splits.train], X_test, budget_s, int(cfg.seed),
            len(data.classes))
    if python is None:
        proba, wall_s = fit_autogluon(*args)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            arrays = {"y_train": args[1], "groups_train": np.asarray(args[2]).astype(str), "budget_s": budget_s,
                      "seed": int(cfg.seed), "n_classes": len(data.classes)}
            for name, X in (("X_train", X_train), ("X_test", X_test)):
                arrays.update({f"{name}_data": X.data, f"{name}_indices": X.indices, f"{name}_indptr": X.indptr,
                               f"{name}_shape": np.array(X.shape)})
            np.savez(Path(tmp) / "in.npz", **arrays)
            script = Path(__file__).with_name("autogluon_peer.py")
            done = subprocess.run([python, str(script), f"{tmp}/in.npz", f"{tmp}/out.npz"], capture_output=True,
                                  text=True)
            if done.returncode:
                lines = [line for line in done.stderr.splitlines() if line.strip()]
                raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
            with np.load(Path(tmp) / "out.npz") as out:
                proba, wall_s = out["proba"], float(out["wall_s"])
    oracle = data.oracle[splits.test] if data.oracle is not None else None
    blind, wf = (None if p is None else p[splits.test] for p in (data.oracle_blind, data.oracle_workflow))
    row = _quality_row("autogluon (best_quality)", data.y[splits.test], proba, oracle, wall_s, blind, wf)
    return _with_losses(row, data.y[splits.test], proba, data.groups[splits.test])


def autogluon_available(python: str | None) -> str | None:
    """None when AutoGluon can run (here, or in ``python``), else the one line that says why not."""
    import subprocess

    from wtc.bench.autogluon_peer import CONFLICT

    if python is not None:
        probe = subprocess.run([python, "-c", "import autogluon.tabular"], capture_output=True)
        return None if probe.returncode == 0 else f"AutoGluon does not import in {python}: its row is left out"
    try:
        import autogluon.tabular  # noqa: F401
    except ImportError:
        return (f"AutoGluon is not installed and cannot be installed beside wtc's pins ({CONFLICT}): its row is "
                "left out; give --autogluon-python, an interpreter of a separate venv that has it")
    return None


def _print_differences(rows: list[dict]) -> None:
    """The champion's ratio to the name-blind workflow oracle, and each row's test log-loss minus the champion's,
    each with a 95% paired bootstrap interval over the test workflows."""
    from wtc.bench.paired import paired_difference, paired_ratio

    champion = next((r for r in rows if r["recipe"] == "champion" and "_losses" in r), None)
    if champion is None:
        return
    n = len(np.unique(champion["_groups"]))
    if "_limit_losses" in champion:
        ratio, low, high = paired_ratio(champion["_losses"], champion["_limit_losses"], champion["_groups"])
        print(f"champion ÷ name-blind wf oracle (test log-loss) {ratio:.3f} [{low:.3f}, {high:.3f}] (95% paired "
              f"bootstrap over the {n} test workflows)", flush=True)
    print(f"difference to the champion (test log-loss, peer - champion; < 0: the peer is better) with its 95% "
          f"interval, a paired bootstrap over the {n} test workflows")
    for r in rows:
        if r is champion or "_losses" not in r:
            continue
        if not np.array_equal(r["_groups"], champion["_groups"]):
            print(f"{r['recipe']:>24} (other test rows than the champion's: no paired difference)")
            continue
        diff, low, high = paired_difference(r["_losses"], champion["_losses"], champion["_groups"])
        print(f"{r['recipe']:>24} {diff:>+9.4f} [{low:+.4f}, {high:+.4f}]", flush=True)


def _ratio(a, b) -> float:
    return a / b if b else float("nan")


def _print_quality(target: str, rows: list[dict]) -> None:
    """One table: each recipe's figures and their ratios to the oracle's, the blind oracle's and the
    name-blind workflow oracle's (x wblind, the tight yardstick of a sibling-reading model); the
    workflow oracles' rows follow the blind oracle's."""
    best = {p: next((r for r in rows if f"{p}_log_loss" in r), {}) for p in _LIMITS}
    print(f"\n{target}: test log-loss and its ratio to the oracle's (x oracle), the name-blind oracle's "
          f"(x blind) and the name-blind workflow oracle's (x wblind), ROC AUC, coverage at 95% precision and "
          f"its ratios, wall time")
    print(f"{'recipe':>24} {'log_loss':>9} {'x oracle':>9} {'x blind':>8} {'x wblind':>8} {'roc_auc':>8} "
          f"{'cov@95':>7} {'x oracle':>9} {'x blind':>8} {'x wblind':>8} {'wall_s':>8}")
    for prefix, name in (("oracle_workflow_blind", "name-blind wf oracle"), ("oracle_workflow", "workflow oracle"),
                         ("oracle_blind", "blind oracle"), ("oracle", "oracle")):  # oracle first
        r = best[prefix]
        if r:  # the limits' own rows: both ratios against the same two limits
            rows = [{"recipe": name, "log_loss": r[f"{prefix}_log_loss"], "roc_auc": r[f"{prefix}_roc_auc"],
                     "coverage_p95": r[f"{prefix}_coverage_p95"], "wall_s": float("nan")}] + rows
    ref = {p: (best[p].get(f"{p}_log_loss", float("nan")), best[p].get(f"{p}_coverage_p95", float("nan")))
           for p in best}
    if best["oracle_workflow"]:
        print("(workflow oracle: P(class | all the workflow's tasks in the file), traits known: the bound for a "
              "model that reads a task's siblings, e.g. data=workflow_evidence)")
    if best["oracle_workflow_blind"]:
        print("(name-blind wf oracle: the same with the traits marginalised jointly over the workflow's tasks: "
              "the tight bound for a sibling-reading model that cannot read the traits from the name)")
    for r in rows:
        print(f"{r['recipe']:>24} {r['log_loss']:>9.4f} {_ratio(r['log_loss'], ref['oracle'][0]):>9.3f} "
              f"{_ratio(r['log_loss'], ref['oracle_blind'][0]):>8.3f} "
              f"{_ratio(r['log_loss'], ref['oracle_workflow_blind'][0]):>8.3f} {r['roc_auc']:>8.3f} "
              f"{r['coverage_p95']:>7.3f} {_ratio(r['coverage_p95'], ref['oracle'][1]):>9.2f} "
              f"{_ratio(r['coverage_p95'], ref['oracle_blind'][1]):>8.2f} "
              f"{_ratio(r['coverage_p95'], ref['oracle_workflow_blind'][1]):>8.2f} {r['wall_s']:>8.1f}", flush=True)


def _ensure_limits(conf: Path, base: list[str], samples: int) -> None:
    """Write the history's workflow oracle and (``samples`` > 0) the name-blind oracles' sidecars
    (per task and per workflow) unless they are there (timed): the runs read them."""
    from hydra import compose, initialize_config_dir

    from wtc.data.dataset import resolve_data_path
    from wtc.data.oracle import has_oracle
    from wtc.data.synthetic import ensure_blind_oracle, ensure_workflow_blind_oracle, ensure_workflow_oracle

    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        path = resolve_data_path(compose("config", overrides=base))
    if not has_oracle(path):
        return  # not a generated history: there is no oracle of either kind
    start = time.perf_counter()
    ensure_workflow_oracle(path)
    print(f"workflow oracle: {time.perf_counter() - start:.1f} s", flush=True)
    if not samples:
        return
    start = time.perf_counter()
    ensure_blind_oracle(path, samples=samples)
    print(f"name-blind oracle ({samples} whitelist samples per task): {time.perf_counter() - start:.1f} s", flush=True)
    start = time.perf_counter()
    ensure_workflow_blind_oracle(path, samples=samples)
    print(f"name-blind workflow oracle ({samples} whitelist samples per workflow): "
          f"{time.perf_counter() - start:.1f} s", flush=True)


def bench_quality(history: str | None, generate_seed: int | None, tasks: int, budget_s: float, targets: list[str],
                  trials: int | None = None, recipes: list[str] | None = None,
                  tracking_uri: str | None = None, blind_samples: int = 32,
                  autogluon_python: str | None = None) -> dict[str, list[dict]]:
    """The champion preset, the seed recipes, the rules baseline, the dummy and FLAML on the same split.

    Each recipe is one ``wtc.run.experiment.run`` (tracked in a temporary store, no figures, no
    logged model: its wall time is loading + search + refit + scoring); FLAML gets ``budget_s``
    seconds on the champion's training matrix (its view and blocks). Prints one table per target
    and returns its rows.

    Parameters
    ----------
    history : str, optional
        A history file; None: the generated default benchmark (or ``generate_seed``).
    generate_seed : int, optional
        Generate a history of ``tasks`` tasks with this seed (into a temporary folder).
    tasks : int
    budget_s : float
        FLAML's ``time_budget``: the champion preset's wall-clock budget.
    targets : list of str
    trials : int, optional
        Overrides the champion's ``search.n_trials`` (quick checks).
    recipes : list of str, optional
        A subset of :data:`QUALITY_RECIPES`' names and ``flaml``; all by default.
    tracking_uri : str, optional
        Keep the runs in this MLflow store (default: a temporary one).
    autogluon_python : str, optional
        An interpreter that has AutoGluon (a separate venv: it cannot live beside wtc's pins);
        without it, AutoGluon runs here when it imports.
    blind_samples : int
        Whitelist samples per task of the name-blind oracle (per workflow of the name-blind
        workflow oracle), both computed beside a generated history on first use (their figures
        come with every row); 0 leaves them out. The workflow
        oracle's sidecar (seconds) is always computed beside a generated history.
    """
    from hydra import compose, initialize_config_dir

    from wtc.run.experiment import run

    with_flaml = recipes is None or "flaml" in recipes
    if with_flaml:
        try:
            import flaml  # noqa: F401
        except ImportError:
            with_flaml = False
            print("FLAML is not installed (pip install -e .[bench]): its row is left out", flush=True)
    with_autogluon = recipes is None or "autogluon" in recipes
    if with_autogluon:
        why_not = autogluon_available(autogluon_python)
        if why_not is not None:
            with_autogluon = False
            print(why_not, flush=True)
    conf = Path(__file__).resolve().parents[2] / "conf"
    chosen = [r for r in QUALITY_RECIPES if recipes is None or r[0] in recipes]
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        if history is None and generate_seed is not None:
            from wtc.data.synthetic import write_benchmark

            history = str(write_benchmark(Path(tmp) / f"history_{tasks}_seed{generate_seed}.json", n_tasks=tasks,
                                          seed=generate_seed))
        base = scratch_overrides(tmp, tracking_uri)  # one thread per model for every recipe and FLAML alike
        if history is not None:
            base.append(f"data.path={history}")
        print(f"history: {history or 'the default benchmark'}; FLAML budget {budget_s:.0f} s", flush=True)
        _ensure_limits(conf, base, blind_samples)
        for target in targets:
            rows = []
            for name, overrides in chosen:
                extra = [f"search.n_trials={trials}"] if trials is not None and name == "champion" else []
                with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                    cfg = compose("config", overrides=[*overrides, f"target={target}", *base, *extra])
                start = time.perf_counter()
                result = run(cfg)
                rows.append(_with_losses(_row_of_metrics(name, result.metrics, time.perf_counter() - start),
                                         *_run_losses(cfg, result)))
            with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                cfg = compose("config", overrides=["+experiment=champion", f"target={target}", *base])
            if with_flaml:  # on the champion's view and split
                rows.append(_flaml_row(cfg, budget_s))
            if with_autogluon:  # the same budget as FLAML's, the same rows
                try:
                    rows.append(_autogluon_row(cfg, budget_s, autogluon_python))
                except Exception as exc:  # noqa: BLE001 - a peer's failure must not lose the table
                    print(f"AutoGluon failed ({type(exc).__name__}: {str(exc).strip()[:300]}): its row is left out",
                          flush=True)
            _print_quality(target, rows)
            _print_differences(rows)
            tables[target] = rows
    return tables
