"""Benchmarks that print figures (never assertions): ``python -m wtc.bench data|sweep|quality``."""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def _timed(fn, repeat: int = 1):
    """(result, best wall seconds over ``repeat`` calls)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def bench_data(sizes: list[int], seed: int) -> None:
    """Generate, bare json.load, first load + featurise, cached load, peak memory, non-zeros."""
    from wtc.data import build_features, load_history
    from wtc.data.synthetic import write_benchmark

    header = (f"{'tasks':>8} {'MB':>7} {'nnz':>9} {'generate_s':>10} {'json.load_s':>11} {'first_load_s':>12} "
              f"{'ratio':>6} {'parse_s':>8} {'p_ratio':>7} {'cached_s':>8} {'peak_MB':>8} {'B/nnz':>6} {'features':>8}")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            cache_dir = Path(tmp) / f"cache-{n}"
            path = Path(tmp) / f"history-{n}.json"
            _, generate_s = _timed(lambda: write_benchmark(path, n_tasks=n, seed=seed))
            def bare_json():
                return json.loads(path.read_bytes())

            def parse_only():
                return load_history(path, use_cache=False)

            def first_load():
                history = load_history(path, use_cache=False)
                return history, build_features(history, "combined")

            # Interleaved, best of each: all see the same machine load and heap.
            json_s = parse_s = first_s = float("inf")
            # Best of many: on a shared machine one slow sample of either side says nothing.
            for _ in range(15 if n < 50000 else 3):
                json_s = min(json_s, _timed(bare_json)[1])
                parse_s = min(parse_s, _timed(parse_only)[1])
                (history, (X, names)), seconds = _timed(first_load)
                first_s = min(first_s, seconds)
            tracemalloc.start()
            first_load()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            load_history(path, cache_dir=cache_dir)  # writes the cache

            def cached_load():
                return build_features(load_history(path, cache_dir=cache_dir), "combined")

            _, cached_s = _timed(cached_load, repeat=5)
            print(f"{n:>8} {path.stat().st_size / 1e6:>7.1f} {history.nnz:>9} {generate_s:>10.2f} {json_s:>11.3f} "
                  f"{first_s:>12.3f} {first_s / json_s:>6.2f} {parse_s:>8.3f} {parse_s / json_s:>7.2f} "
                  f"{cached_s:>8.3f} {peak / 1e6:>8.1f} "
                  f"{peak / max(history.nnz, 1):>6.0f} {X.shape[1]:>8}")
            del history, X, names
    print("\nratio = first load (validate + parse + combined view) / bare json.load of the same file;"
          "\np_ratio = parse_s (load_history alone, no cache) / the same json.load;"
          "\npeak_MB = tracemalloc peak during the first load; B/nnz = that peak per non-zero count.")


def bench_sweep(n_tasks: int, trials: int, folds: int, models: list[str], views: list[str],
                resamplers: list[str], diagnostics: str = "light") -> None:
    """Wall time per job and per trial for each model family, and the share of it the run's record costs
    (``time/record_s``: everything after the final fit plus the MLflow calls before it)."""
    from hydra import compose, initialize_config_dir

    from wtc.data.synthetic import write_benchmark
    from wtc.experiment import run

    from wtc.tracking import init_store

    conf = Path(__file__).resolve().parents[1] / "conf"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_benchmark(Path(tmp) / "history.json", n_tasks=n_tasks, seed=0)
        uri = f"sqlite:///{tmp}/mlruns/mlflow.db"
        # As in a real sweep: the store and experiment are created once before the jobs start
        # (TrackingSetupCallback), and each worker process pays its imports and the scan of
        # installed packages once, not per job. Both are timed here apart from the jobs.
        start = time.perf_counter()
        init_store(uri, "wtc-binary")
        store_s = time.perf_counter() - start
        start = time.perf_counter()
        from wtc.tracking import pyfunc

        pyfunc._distributions_of_packages()
        process_s = time.perf_counter() - start
        print(f"once per sweep: store created in {store_s:.1f} s; once per worker process: model-logging "
              f"imports and package scan {process_s:.1f} s (neither counted in the jobs below)", flush=True)
        for model, view, resample in itertools.product(models, views, resamplers):
            overrides = [f"data.path={path}", f"tracking.uri={uri}", f"paths.cache_dir={Path(tmp) / 'cache'}", f"model={model}", f"data={view}",
                         f"resample={resample}", "search=gp", f"search.n_trials={trials}", f"cv.n_splits={folds}",
                         "n_jobs=2", f"diagnostics={diagnostics}"]
            with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                cfg = compose("config", overrides=overrides)
            metrics = run(cfg).metrics
            rows.append((model, view, resample, metrics))
            parts = _record_parts(metrics)
            print(f"{model:>18} {view:>9} {resample:>6}  job {metrics['time/total_s']:7.1f} s  "
                  f"trial {metrics['time/trial_mean_s']:6.2f} s  record {metrics['time/record_s']:5.1f} s "
                  f"({metrics['time/record_s'] / metrics['time/total_s']:5.1%}: figures {parts['figures']:4.1f} + "
                  f"tracking {parts['tracking']:4.1f} + scoring {parts['scoring']:4.1f} s; after training "
                  f"{metrics['time/post_training_cpu_s']:4.1f} s CPU)  test AUC {metrics['test/roc_auc']:.3f}  "
                  f"oracle AUC {metrics.get('oracle/roc_auc', float('nan')):.3f}", flush=True)
    print(f"\nper model family ({n_tasks} tasks, {trials} GP trials x {folds} folds, 2 cores, diagnostics={diagnostics}); "
          f"record = what the run's record costs: everything after the final fit (predictions, metrics, tables,\n"
          f"figures, model, summary, end of run) + the MLflow calls before it (run start, params, dataset, trial runs), "
          f"as a share of the whole job's wall time:")
    total = 0.0
    for model in models:
        jobs = [m for name, _, _, m in rows if name == model]
        job_total = sum(m["time/total_s"] for m in jobs)
        shares = [m["time/record_s"] / m["time/total_s"] for m in jobs]
        parts = {k: sum(_record_parts(m)[k] for m in jobs) / job_total for k in ("figures", "tracking", "scoring")}
        total += job_total
        print(f"  {model:>18}: {job_total / len(jobs):7.1f} s/job  "
              f"{statistics.mean(m['time/trial_mean_s'] for m in jobs):6.2f} s/trial  record "
              f"{sum(m['time/record_s'] for m in jobs) / job_total:5.1%} of job time (jobs {min(shares):.1%}-"
              f"{max(shares):.1%}) = figures {parts['figures']:5.1%} + tracking {parts['tracking']:5.1%} + scoring "
              f"{parts['scoring']:5.1%}")
    spent = sum(m["time/record_s"] for *_, m in rows)
    print(f"  all {len(rows)} jobs: {total:.0f} s sequential; the record {spent / total:5.1%} of the sweep's job time")


def _record_parts(metrics: dict) -> dict[str, float]:
    """The record's seconds split into figures (computing them), tracking (every MLflow call:
    saving figures, the model, params, metrics, artifacts) and scoring (the rest after training:
    test/train predictions, metrics, tables)."""
    figures, tracking = metrics["time/diagnostics_s"], metrics["time/tracking_s"]
    return {"figures": figures, "tracking": tracking, "scoring": max(metrics["time/record_s"] - figures - tracking, 0.0)}


#: The limits a quality row may carry: the exact per-task oracle, the name-blind oracle and the
#: workflow oracle (reads the task's siblings), as metric prefixes.
_LIMITS = ("oracle", "oracle_blind", "oracle_workflow")

#: The recipes ``quality`` runs besides FLAML: (name, overrides). All share seed, test_size
#: and cv, hence the same held-out rows; the seed recipes and baselines read the combined view.
QUALITY_RECIPES = (
    ("champion", ["+experiment=champion"]),
    ("seed_xgb", ["model=seed_xgb", "search=none"]),
    ("seed_dnn", ["model=seed_dnn", "search=none"]),
    ("rules", ["model=rules", "search=none"]),
    ("dummy", ["model=dummy", "search=none"]),
)


def _quality_row(name: str, y_test, proba, oracle, wall_s: float, oracle_blind=None, oracle_workflow=None) -> dict:
    from wtc.evaluation.diagnostics import automation_metrics
    from wtc.evaluation.metrics import score_all

    n_classes = proba.shape[1]
    scores = score_all(y_test, proba, n_classes)
    row = {"recipe": name, "log_loss": scores["log_loss"], "roc_auc": scores["roc_auc"],
           "coverage_p95": automation_metrics(y_test, proba, "t")["t/coverage_at_p95"], "wall_s": wall_s}
    for prefix, best_proba in (("oracle", oracle), ("oracle_blind", oracle_blind),
                               ("oracle_workflow", oracle_workflow)):
        if best_proba is not None:
            best = score_all(y_test, best_proba, n_classes)
            row[f"{prefix}_log_loss"], row[f"{prefix}_roc_auc"] = best["log_loss"], best["roc_auc"]
            row[f"{prefix}_coverage_p95"] = automation_metrics(y_test, best_proba, "o")["o/coverage_at_p95"]
    return row


def _row_of_metrics(name: str, m: dict, wall_s: float) -> dict:
    """A quality row from a run's metrics (with ``oracle/…``, ``oracle_blind/…`` and
    ``oracle_workflow/…`` when present)."""
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

    from wtc.data.dataset import load_dataset
    from wtc.models.pipeline import full_proba
    from wtc.splits import make_splits

    data = load_dataset(cfg)
    splits = make_splits(cfg.cv.kind, int(cfg.cv.n_splits), float(cfg.test_size), int(cfg.seed), data.y,
                         data.groups, data.dates)
    logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)
    automl = AutoML()
    start = time.perf_counter()
    # FLAML's own validation split is not grouped by workflow: with groups its holdout may
    # lack a rare class and it trains nothing (issue 8); the test rows are the shared ones.
    automl.fit(data.X[splits.train], data.y[splits.train], task="classification", metric="log_loss",
               time_budget=budget_s, n_jobs=int(cfg.n_jobs), seed=int(cfg.seed), verbose=0)
    wall_s = time.perf_counter() - start
    proba = full_proba(automl, data.X[splits.test], len(data.classes))
    oracle = data.oracle[splits.test] if data.oracle is not None else None
    blind, wf = (None if p is None else p[splits.test] for p in (data.oracle_blind, data.oracle_workflow))
    row = _quality_row(f"flaml ({automl.best_estimator})", data.y[splits.test], proba, oracle, wall_s, blind, wf)
    row["train_rows"], row["test_rows"] = len(splits.train), len(splits.test)
    return row


def _ratio(a, b) -> float:
    return a / b if b else float("nan")


def _print_quality(target: str, rows: list[dict]) -> None:
    """One table: each recipe's figures and their ratios to the oracle's and the blind oracle's;
    the workflow oracle's row (no ratio columns of its own) follows the blind oracle's."""
    best = {p: next((r for r in rows if f"{p}_log_loss" in r), {}) for p in _LIMITS}
    print(f"\n{target}: test log-loss and its ratio to the oracle's (x oracle) and the name-blind oracle's "
          f"(x blind), ROC AUC, coverage at 95% precision and its ratios, wall time")
    print(f"{'recipe':>24} {'log_loss':>9} {'x oracle':>9} {'x blind':>8} {'roc_auc':>8} {'cov@95':>7} {'x oracle':>9} "
          f"{'x blind':>8} {'wall_s':>8}")
    for prefix, name in (("oracle_workflow", "workflow oracle"), ("oracle_blind", "blind oracle"),
                         ("oracle", "oracle")):  # oracle first
        r = best[prefix]
        if r:  # the limits' own rows: both ratios against the same two limits
            rows = [{"recipe": name, "log_loss": r[f"{prefix}_log_loss"], "roc_auc": r[f"{prefix}_roc_auc"],
                     "coverage_p95": r[f"{prefix}_coverage_p95"], "wall_s": float("nan")}] + rows
    ref = {p: (best[p].get(f"{p}_log_loss", float("nan")), best[p].get(f"{p}_coverage_p95", float("nan")))
           for p in best}
    if best["oracle_workflow"]:
        print("(workflow oracle: P(class | all the workflow's tasks in the file), traits known: the bound for a "
              "model that reads a task's siblings, e.g. data=workflow_evidence)")
    for r in rows:
        print(f"{r['recipe']:>24} {r['log_loss']:>9.4f} {_ratio(r['log_loss'], ref['oracle'][0]):>9.3f} "
              f"{_ratio(r['log_loss'], ref['oracle_blind'][0]):>8.3f} {r['roc_auc']:>8.3f} {r['coverage_p95']:>7.3f} "
              f"{_ratio(r['coverage_p95'], ref['oracle'][1]):>9.2f} "
              f"{_ratio(r['coverage_p95'], ref['oracle_blind'][1]):>8.2f} {r['wall_s']:>8.1f}", flush=True)


def _ensure_limits(conf: Path, base: list[str], samples: int) -> None:
    """Write the history's workflow oracle and (``samples`` > 0) name-blind oracle sidecars unless
    they are there (timed): the runs read them."""
    from hydra import compose, initialize_config_dir

    from wtc.data.dataset import resolve_data_path
    from wtc.data.oracle import has_oracle
    from wtc.data.synthetic import ensure_blind_oracle, ensure_workflow_oracle

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


def bench_quality(history: str | None, generate_seed: int | None, tasks: int, budget_s: float, targets: list[str],
                  trials: int | None = None, recipes: list[str] | None = None,
                  tracking_uri: str | None = None, blind_samples: int = 32) -> dict[str, list[dict]]:
    """The champion preset, the seed recipes, the rules baseline, the dummy and FLAML on the same split.

    Each recipe is one ``wtc.experiment.run`` (tracked in a temporary store, no figures, no
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
    blind_samples : int
        Whitelist samples per task of the name-blind oracle, computed beside a generated
        history on first use (its figures come with every row); 0 leaves it out. The workflow
        oracle's sidecar (seconds) is always computed beside a generated history.
    """
    from hydra import compose, initialize_config_dir

    from wtc.experiment import run

    with_flaml = recipes is None or "flaml" in recipes
    if with_flaml:
        try:
            import flaml  # noqa: F401
        except ImportError:
            with_flaml = False
            print("FLAML is not installed (pip install -e .[bench]): its row is left out", flush=True)
    conf = Path(__file__).resolve().parents[1] / "conf"
    chosen = [r for r in QUALITY_RECIPES if recipes is None or r[0] in recipes]
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        if history is None and generate_seed is not None:
            from wtc.data.synthetic import write_benchmark

            history = str(write_benchmark(Path(tmp) / f"history_{tasks}_seed{generate_seed}.json", n_tasks=tasks,
                                          seed=generate_seed))
        base = [f"tracking.uri={tracking_uri or f'sqlite:///{tmp}/mlruns/mlflow.db'}", f"paths.mlruns={tmp}/mlruns",
                f"paths.cache_dir={tmp}/cache", "diagnostics=none", "tracking.log_model=false",
                # One thread per model for every recipe and FLAML alike: on a shared machine
                # OpenMP threads that wait on each other cost more than they bring.
                "n_jobs=1"]
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
                rows.append(_row_of_metrics(name, result.metrics, time.perf_counter() - start))
            if with_flaml:  # on the champion's view and split
                with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                    cfg = compose("config", overrides=["+experiment=champion", f"target={target}", *base])
                rows.append(_flaml_row(cfg, budget_s))
            _print_quality(target, rows)
            tables[target] = rows
    return tables


def _non_negative(text: str) -> int:
    """An argparse type: an integer >= 0 (0 leaves something out)."""
    if not text.lstrip("-").isdigit() or int(text) < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    from wtc.cli.options import positive

    parser = argparse.ArgumentParser(prog="python -m wtc.bench", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data", help="loader and featuriser figures")
    data.add_argument("--sizes", type=positive, nargs="+", default=[7582, 200000], help="history sizes (tasks)")
    data.add_argument("--seed", type=int, default=0)
    sweep = sub.add_parser("sweep", help="the default sweep's time per job and per trial, and what the record costs")
    sweep.add_argument("--tasks", type=positive, default=7582, help="tasks of the generated history (default 7582)")
    sweep.add_argument("--trials", type=positive, default=4, help="GP trials per job (default 4)")
    sweep.add_argument("--folds", type=positive, default=3, help="CV folds (default 3)")
    sweep.add_argument("--models", nargs="+", default=["xgboost", "logreg", "dummy"], help="model configs")
    sweep.add_argument("--views", nargs="+", default=["good", "bad", "combined"], help="data configs (views)")
    sweep.add_argument("--resamplers", nargs="+", default=["none", "smote"], help="resample configs")
    sweep.add_argument("--diagnostics", choices=["full", "light", "none"], default="light",
                       help="the figures each job computes (light: what sweeps log)")
    quality = sub.add_parser("quality", help="the champion preset against the seed recipes, rules, dummy and FLAML")
    source = quality.add_mutually_exclusive_group()
    source.add_argument("--history", help="a history file (default: the generated default benchmark)")
    source.add_argument("--generate-seed", type=int, help="generate a history with this seed instead")
    quality.add_argument("--tasks", type=positive, help="tasks of the history --generate-seed makes (default 20000)")
    quality.add_argument("--budget-s", type=float, default=900.0,
                         help="FLAML's wall-clock budget per target: the preset's (default 900 s)")
    quality.add_argument("--targets", default="binary,action_split", help="comma-separated targets")
    quality.add_argument("--trials", type=positive, help="override the champion's search.n_trials (quick checks)")
    quality.add_argument("--tracking-uri", help="keep the runs in this MLflow store (default: a temporary one)")
    quality.add_argument("--recipes", help="comma-separated subset of: "
                         + ",".join([r for r, _ in QUALITY_RECIPES] + ["flaml"]))
    quality.add_argument("--blind-samples", type=_non_negative, default=32,
                         help="whitelist samples per task of the name-blind oracle, computed beside the history "
                              "on first use (default 32; 0: leave it out)")
    args = parser.parse_args(argv)
    if args.what == "data":
        bench_data(args.sizes, args.seed)
    elif args.what == "quality":
        if args.tasks is not None and args.generate_seed is None:
            parser.error("quality: --tasks sizes a generated history; give --generate-seed too")
        bench_quality(args.history, args.generate_seed, args.tasks or 20000, args.budget_s, args.targets.split(","),
                      args.trials, args.recipes.split(",") if args.recipes else None, args.tracking_uri,
                      args.blind_samples)
    else:
        bench_sweep(args.tasks, args.trials, args.folds, args.models, args.views, args.resamplers, args.diagnostics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
