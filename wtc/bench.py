"""Benchmarks that print figures (never assertions): ``python -m wtc.bench data|sweep``."""

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
            for _ in range(7 if n < 50000 else 2):
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
    """Wall time per job and per trial for each model family, and the share of figures and MLflow."""
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
            overhead = metrics['time/tracking_s'] + metrics['time/diagnostics_s']
            print(f"{model:>18} {view:>9} {resample:>6}  job {metrics['time/total_s']:7.1f} s  "
                  f"trial {metrics['time/trial_mean_s']:6.2f} s  figures {metrics['time/diagnostics_s']:5.1f} s "
                  f"+ tracking {metrics['time/tracking_s']:5.1f} s ({overhead / metrics['time/total_s']:5.1%})  "
                  f"test AUC {metrics['test/roc_auc']:.3f}  oracle AUC {metrics.get('oracle/roc_auc', float('nan')):.3f}",
                  flush=True)
    print(f"\nper model family ({n_tasks} tasks, {trials} GP trials x {folds} folds, 2 cores):")
    total = 0.0
    for model in models:
        jobs = [m for name, _, _, m in rows if name == model]
        job_s = statistics.mean(m["time/total_s"] for m in jobs)
        trial_s = statistics.mean(m["time/trial_mean_s"] for m in jobs)
        job_total = sum(m["time/total_s"] for m in jobs)
        track = sum(m["time/tracking_s"] for m in jobs) / job_total
        figures = sum(m["time/diagnostics_s"] for m in jobs) / job_total
        total += job_total
        print(f"  {model:>18}: {job_s:7.1f} s/job  {trial_s:6.2f} s/trial  figures {figures:5.1%} + tracking "
              f"{track:5.1%} = {figures + track:5.1%} of job time (diagnostics={diagnostics})")
    spent = sum(m["time/tracking_s"] + m["time/diagnostics_s"] for *_, m in rows)
    print(f"  all {len(rows)} jobs: {total:.0f} s sequential; figures + tracking {spent / total:5.1%} of the sweep's "
          f"job time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wtc.bench", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data", help="loader and featuriser figures")
    data.add_argument("--sizes", type=int, nargs="+", default=[7582, 200000])
    data.add_argument("--seed", type=int, default=0)
    sweep = sub.add_parser("sweep", help="the default sweep's time per job, per trial, tracking overhead")
    sweep.add_argument("--tasks", type=int, default=7582)
    sweep.add_argument("--trials", type=int, default=4)
    sweep.add_argument("--folds", type=int, default=3)
    sweep.add_argument("--models", nargs="+", default=["xgboost", "logreg", "dummy"])
    sweep.add_argument("--views", nargs="+", default=["good", "bad", "combined"])
    sweep.add_argument("--resamplers", nargs="+", default=["none", "smote"])
    sweep.add_argument("--diagnostics", choices=["full", "light", "none"], default="light",
                       help="the figures each job computes (light: what sweeps log)")
    args = parser.parse_args(argv)
    if args.what == "data":
        bench_data(args.sizes, args.seed)
    else:
        bench_sweep(args.tasks, args.trials, args.folds, args.models, args.views, args.resamplers, args.diagnostics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
