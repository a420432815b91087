"""``python -m wtc.bench gate``: does the AUTO gate keep its promise on tasks it never saw? Measured, not assumed.

The champion preset (or a cheap recipe) is trained once on a history. Its AUTO gate is certified
as ``wtc promote`` certifies it: Learn-then-Test on the run's logged out-of-fold rows, one task
per workflow (:func:`wtc.evaluation.gate.ltt_threshold`). Then one large fresh history of
another seed, never seen in training, is scored once, and its workflows are resampled into
draws:

- ``promoted`` rows: the threshold certified on the out-of-fold rows, applied to each draw of
  ``draw_tasks`` tasks (workflows drawn without replacement). The realised precision of a draw
  carries the draw's own sampling noise (a batch of a few hundred tasks), which no threshold
  can remove.
- ``re-certified`` rows: the guarantee as it is stated. Each draw of ``calibration_tasks``
  fresh tasks is a calibration set: the gate is certified on it, and its precision is measured
  on all the fresh tasks outside it (thousands: the population's precision). A violation is a
  draw whose certified threshold has precision < 1 - alpha there; Learn-then-Test promises
  that share <= delta.

Each row is compared with the oracle (the generator's posterior, known only to the bench) on
the same tasks: its best coverage at precision >= 1 - alpha, measured on those tasks.
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wtc.bench.scratch import scratch_overrides

#: The table's last row: the model's best fixed threshold at 1 - alpha, picked on all the fresh tasks' labels.
HINDSIGHT = "hindsight: the model's best threshold (no gate covers more)"

#: The bench's cheap recipe (smoke tests): an untuned LightGBM on the champion's view, 3 folds.
QUICK = ["data=workflow_evidence", "model=lightgbm", "scaler=none", "search=none", "cv.n_splits=3", "calibration=sigmoid"]


@dataclass
class Scored:
    """Tasks scored by the model and the oracles: confidence, correctness, workflow."""

    confidence: np.ndarray
    correct: np.ndarray
    groups: np.ndarray
    oracle: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (confidence, correct)


def _oof(uri: str, run_id: str) -> dict:
    from wtc.run.refit import OOF_ARTIFACT
    from wtc.store.query import read_artifact

    raw = read_artifact(uri, run_id, OOF_ARTIFACT)
    if raw is None:
        raise RuntimeError(f"run {run_id} logged no {OOF_ARTIFACT}")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _class_map(names: list[str], classes: list[str]) -> np.ndarray:
    """Column index in the model's classes of each of ``names`` (rare ones merged into ``other``; -1: none)."""
    other = classes.index("other") if "other" in classes else -1
    return np.array([classes.index(n) if n in classes else other for n in names], dtype=int)


def score_fresh(path: Path, cfg, model, classes: list[str], feature_names: list[str]) -> Scored:
    """The model's and the oracles' confidence and correctness on every labelled task of a fresh history."""
    from wtc.data.features import build_features
    from wtc.data.loader import load_history
    from wtc.data.oracle import has_oracle, load_oracle
    from wtc.data.targets import build_target
    from wtc.models.pipeline import full_proba

    history = load_history(path, use_cache=False)
    X, _ = build_features(history, cfg.data.view, vocabulary=feature_names, extras=list(cfg.data.get("extras") or []))
    y_all, names = build_target(history, cfg.target.name)
    labelled = y_all >= 0
    to_model = _class_map(list(names), classes)
    y = to_model[y_all[labelled]]
    proba = full_proba(model, X[labelled], len(classes))
    oracle = {}
    for key, flags in (("oracle", {}), ("workflow oracle", {"workflow": True})):
        if has_oracle(path, **flags):
            best, best_names = load_oracle(path, cfg.target.name, history=history, **flags)
            columns = _class_map(list(best_names), classes)
            merged = np.zeros((int(labelled.sum()), len(classes)))
            for j, col in enumerate(columns):
                if col >= 0:
                    merged[:, col] += best[labelled, j]
            oracle[key] = (merged.max(axis=1), merged.argmax(axis=1) == y)
    groups = np.asarray(history.workflows, dtype=object)[labelled].astype(str)
    return Scored(proba.max(axis=1), proba.argmax(axis=1) == y, groups, oracle)


def load_dump(path) -> tuple[dict, Scored]:
    """The out-of-fold rows and the scored fresh tasks a ``--dump`` wrote (to measure a gate without retraining)."""
    with np.load(path, allow_pickle=False) as npz:
        d = {k: npz[k] for k in npz.files}
    oof = {k[4:]: v for k, v in d.items() if k.startswith("oof_")}
    oracle = {name.replace("_", " "): (d[f"fresh_{name}_confidence"], d[f"fresh_{name}_correct"])
              for name in ("oracle", "workflow_oracle") if f"fresh_{name}_confidence" in d}
    return oof, Scored(d["fresh_confidence"], d["fresh_correct"], d["fresh_groups"], oracle)


def _at(confidence, correct, threshold: float) -> tuple[float, float]:
    """Coverage and precision of acting when confidence >= threshold (precision NaN when none)."""
    acted = confidence >= threshold
    return float(acted.mean()), float(correct[acted].mean()) if acted.any() else float("nan")


def _as_decisions(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities whose argmax is right exactly where ``correct`` and whose max is ``confidence``."""
    return np.where(correct, 0, 1), np.c_[confidence, np.zeros_like(confidence)]


def _best(confidence, correct, precision: float) -> tuple[float, float]:
    """The largest coverage whose measured precision reaches ``precision`` (ties taken together) and its threshold,
    chosen on the rows' labels (``inf``: none reaches it)."""
    from wtc.evaluation.automation import coverage_at_precision

    return coverage_at_precision(*_as_decisions(confidence, correct), precision)


def _draw(rng, codes_by_group: list[np.ndarray], n_tasks: int) -> np.ndarray:
    """Rows of whole workflows drawn at random without replacement until ``n_tasks`` rows are reached."""
    order = rng.permutation(len(codes_by_group))
    sizes = np.array([codes_by_group[g].size for g in order])
    k = int(np.searchsorted(np.cumsum(sizes), n_tasks)) + 1
    return np.concatenate([codes_by_group[g] for g in order[:k]])


def _gates(confidence, correct, groups, alpha: float, delta: float, rng) -> dict[str, float]:
    """Each method's threshold: LTT one task per workflow (promote's), LTT by betting on every task, LTT rows as
    independent, the point estimate."""
    from wtc.evaluation.gate import ltt_threshold

    point = _best(confidence, correct, 1 - alpha)[1]
    return {"ltt-workflow": ltt_threshold(confidence, correct, groups, alpha, delta, rng).threshold,
            "ltt-betting": ltt_threshold(confidence, correct, groups, alpha, delta, method="betting").threshold,
            "ltt-iid": ltt_threshold(confidence, correct, None, alpha, delta).threshold,
            "point estimate": point}


def measure(oof: dict, fresh: Scored, alpha: float, delta: float, draws: int, draw_tasks: int,
            calibration_tasks: int, seed: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The table's rows and, per row, the (coverage, precision) of every draw (for the figure)."""
    rng = np.random.default_rng(seed)
    _, codes = np.unique(fresh.groups, return_inverse=True)
    by_group = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
    conf_oof = oof["proba"].max(axis=1)
    right_oof = oof["proba"].argmax(axis=1) == oof["y"]
    promoted = _gates(conf_oof, right_oof, oof["groups"], alpha, delta, rng)
    oracle_name = "workflow oracle" if "workflow oracle" in fresh.oracle else "oracle"
    o_conf, o_right = fresh.oracle.get(oracle_name, (None, None))
    per_draw: dict[str, list] = {}
    rows = []
    # Promoted: the out-of-fold threshold on batches of fresh tasks.
    results = {m: [] for m in promoted}
    oracle_cov, hindsight = [], []
    # The model's best fixed threshold, chosen on every fresh task's label: no threshold set in advance covers more
    # of the fresh population at 1 - alpha; applied to the draws like the promoted ones.
    best = _best(fresh.confidence, fresh.correct, 1 - alpha)[1]
    for _ in range(draws):
        rows_b = _draw(rng, by_group, draw_tasks)
        for method, t in promoted.items():
            results[method].append(_at(fresh.confidence[rows_b], fresh.correct[rows_b], t))
        hindsight.append(_at(fresh.confidence[rows_b], fresh.correct[rows_b], best))
        if o_conf is not None:
            oracle_cov.append(_best(o_conf[rows_b], o_right[rows_b], 1 - alpha)[0])
    for method, t in promoted.items():
        cov, prec = np.array(results[method]).T
        population = _at(fresh.confidence, fresh.correct, t)
        rows.append(_row(f"promoted: {method}", t, cov, prec, alpha, oracle_cov, population,
                         oof_coverage=float(np.mean(conf_oof >= t))))
        per_draw[rows[-1]["row"]] = np.c_[cov, prec]
    cov, prec = np.array(hindsight).T
    hindsight_row = _row(HINDSIGHT, best, cov, prec, alpha, oracle_cov, _at(fresh.confidence, fresh.correct, best),
                         oof_coverage=float(np.mean(conf_oof >= best)))
    hindsight_draws = np.c_[cov, prec]
    # Re-certified: each draw a calibration set, its precision measured on the fresh tasks outside it.
    results = {m: [] for m in promoted}
    oracle_cov = []
    for _ in range(draws):
        cal = _draw(rng, by_group, calibration_tasks)
        rest = np.ones(fresh.confidence.size, bool)
        rest[cal] = False
        gates = _gates(fresh.confidence[cal], fresh.correct[cal], fresh.groups[cal], alpha, delta, rng)
        for method, t in gates.items():
            results[method].append(_at(fresh.confidence[rest], fresh.correct[rest], t))
        if o_conf is not None:
            oracle_cov.append(_best(o_conf[rest], o_right[rest], 1 - alpha)[0])
    for method in promoted:
        cov, prec = np.array(results[method]).T
        rows.append(_row(f"re-certified: {method}", float("nan"), cov, prec, alpha, oracle_cov, None))
        per_draw[rows[-1]["row"]] = np.c_[cov, prec]
    rows.append(hindsight_row)
    per_draw[HINDSIGHT] = hindsight_draws
    for row in rows:
        row["oracle"] = oracle_name
    return rows, per_draw


def _row(name, threshold, cov, prec, alpha, oracle_cov, population, oof_coverage=float("nan")) -> dict:
    # A draw with nothing AUTO has no precision and cannot miss it.
    missed = np.nan_to_num(prec, nan=1.0) < 1 - alpha
    oracle = float(np.mean(oracle_cov)) if len(oracle_cov) else float("nan")
    row = {"row": name, "threshold": threshold, "oof_coverage": oof_coverage, "violation_rate": float(missed.mean()),
           "coverage_mean": float(cov.mean()), "coverage_q10": float(np.quantile(cov, 0.1)),
           "coverage_q90": float(np.quantile(cov, 0.9)), "precision_mean": float(np.nanmean(prec)) if
           np.isfinite(prec).any() else float("nan"), "oracle_coverage": oracle,
           "ratio": float(cov.mean()) / oracle if oracle else float("nan")}
    if population is not None:
        row["population_coverage"], row["population_precision"] = population
    return row


def print_table(label: str, target: str, rows: list[dict], alpha: float, delta: float, draws: int) -> str:
    """The table as Markdown (printed and returned)."""
    head = (f"\n{label}, {target}: AUTO at precision >= {1 - alpha:.0%} with probability >= {1 - delta:.0%}, "
            f"{draws} draws; oracle = {rows[0]['oracle']}'s best coverage at {1 - alpha:.0%} on the same tasks\n")
    lines = ["| row | threshold | OOF cov | violation rate | coverage mean [q10, q90] | precision mean | "
             "population prec / cov | oracle cov | cov ÷ oracle |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pop = (f"{r['population_precision']:.3f} / {r['population_coverage']:.3f}" if "population_precision" in r
               else "—")
        t, oof = ("—" if np.isnan(v) else f"{v:.{d}f}" for v, d in ((r["threshold"], 4), (r["oof_coverage"], 3)))
        lines.append(f"| {r['row']} | {t} | {oof} | {r['violation_rate']:.3f} | "
                     f"{r['coverage_mean']:.3f} [{r['coverage_q10']:.3f}, {r['coverage_q90']:.3f}] | "
                     f"{r['precision_mean']:.3f} | {pop} | {r['oracle_coverage']:.3f} | {r['ratio']:.2f} |")
    text = head + "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def gate_figure(title: str, per_draw: dict[str, np.ndarray], alpha: float):
    """Precision against coverage, one point per draw, one colour per row (hindsight: hollow black)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, points) in enumerate(per_draw.items()):
        hollow = dict(facecolors="none", edgecolors="black", linewidths=0.6)
        style = hollow if name == HINDSIGHT else dict(color=f"C{i}")
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.5, label=name, **style)
    ax.axhline(1 - alpha, ls=":", color="grey")
    ax.set(xlabel="coverage (share of tasks AUTO)", ylabel="realised precision of AUTO", title=title)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def bench_gate(history: str | None = None, generate_seed: int | None = None, tasks: int = 12000,
               fresh_seed: int = 101, fresh_tasks: int = 20000, targets: tuple[str, ...] = ("binary", "action"),
               draws: int = 200, draw_tasks: int = 500, calibration_tasks: int | None = None, alpha: float = 0.05,
               delta: float = 0.1, trials: int | None = None, quick: bool = False, out: str | None = "experiments/gate",
               seed: int = 0, dump: str | None = None) -> dict[str, list[dict]]:
    """Train once per target, certify the gate on the out-of-fold rows, measure it on fresh draws (see the module).

    ``calibration_tasks`` defaults to the out-of-fold rows' count (what promote certifies on),
    capped at half the fresh history. Writes ``<out>/<label>_<target>.png`` and ``.md``; with
    ``dump``, ``<dump>/<label>_<target>.npz``: the out-of-fold and fresh scores, to study a gate offline.
    """
    from hydra import compose, initialize_config_dir

    from wtc.data.synthetic import ensure_workflow_oracle, write_benchmark
    from wtc.run.experiment import run

    conf = Path(__file__).resolve().parents[2] / "conf"
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if history is None and generate_seed is not None:
            history = str(write_benchmark(Path(tmp) / f"train_{tasks}_seed{generate_seed}.json", n_tasks=tasks,
                                          seed=generate_seed))
        fresh = write_benchmark(Path(tmp) / f"fresh_{fresh_tasks}_seed{fresh_seed}.json", n_tasks=fresh_tasks,
                                seed=fresh_seed)
        ensure_workflow_oracle(fresh)
        label = (Path(history).stem if history else "default-benchmark")
        print(f"training history: {history or 'the default benchmark'}; fresh history: {fresh_tasks} tasks, seed "
              f"{fresh_seed} ({time.perf_counter() - start:.0f} s to generate)", flush=True)
        uri = f"sqlite:///{tmp}/mlruns/mlflow.db"
        base = [*scratch_overrides(tmp, uri), "quiet=true"]
        if history is not None:
            base.append(f"data.path={history}")
        recipe = QUICK if quick else ["+experiment=champion"]
        for target in targets:
            extra = [f"search.n_trials={trials}"] if trials is not None and not quick else []
            with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                cfg = compose("config", overrides=[*recipe, f"target={target}", *base, *extra])
            start = time.perf_counter()
            result = run(cfg)
            print(f"{target}: trained in {time.perf_counter() - start:.0f} s (test log-loss "
                  f"{result.metrics['test/log_loss']:.4f})", flush=True)
            oof = _oof(uri, result.run_id)
            scored = score_fresh(fresh, cfg, result.pipeline, result.classes, result.feature_names)
            if dump:
                Path(dump).mkdir(parents=True, exist_ok=True)
                oracle = {f"fresh_{k.replace(' ', '_')}_{i}": v for k, pair in scored.oracle.items()
                          for i, v in zip(("confidence", "correct"), pair)}
                np.savez_compressed(Path(dump) / f"{label}_{target}.npz", **{f"oof_{k}": v for k, v in oof.items()},
                                    fresh_confidence=scored.confidence, fresh_correct=scored.correct,
                                    fresh_groups=scored.groups, **oracle)
            n_cal = min(calibration_tasks or len(oof["y"]), scored.confidence.size // 2)
            rows, per_draw = measure(oof, scored, alpha, delta, draws, draw_tasks, n_cal, seed)
            text = print_table(label, target, rows, alpha, delta, draws)
            text += (f"\n(out-of-fold rows: {len(oof['y'])}; draws of {draw_tasks} tasks (promoted) and calibration "
                     f"sets of {n_cal} tasks (re-certified) from {scored.confidence.size} fresh tasks)\n")
            if out:
                folder = Path(out)
                folder.mkdir(parents=True, exist_ok=True)
                fig = gate_figure(f"{label}, {target}: AUTO precision vs coverage per draw", per_draw, alpha)
                fig.savefig(folder / f"{label}_{target}.png", dpi=110)
                (folder / f"{label}_{target}.md").write_text(text)
            tables[target] = rows
    return tables
