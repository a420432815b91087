"""``python -m wtc.bench sweep``: time per job and per trial, and what the run's record costs."""

from __future__ import annotations

import gc
import itertools
import statistics
import tempfile
import time
from pathlib import Path


def bench_sweep(n_tasks: int, trials: int, folds: int, models: list[str], views: list[str],
                resamplers: list[str], diagnostics: str = "light") -> None:
    """Wall time per job and per trial for each model family, and the share of it the run's record costs
    (``time/record_s``: everything after the final fit plus the MLflow calls before it)."""
    from hydra import compose, initialize_config_dir

    from wtc.data.synthetic import write_benchmark
    from wtc.ops.deferred import draw_run_figures
    from wtc.run.experiment import run
    from wtc.store import init_store
    from wtc.store.logged_models import build_run_models
    from wtc.store.query import warm_up

    conf = Path(__file__).resolve().parents[2] / "conf"
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
        warm_up(uri)
        process_s = time.perf_counter() - start
        print(f"once per sweep: store created in {store_s:.1f} s; once per worker process: the imports of "
              f"tracking and model logging and the package scan {process_s:.1f} s (neither counted in the jobs "
              f"below)", flush=True)
        for model, view, resample in itertools.product(models, views, resamplers):
            overrides = [f"data.path={path}", f"tracking.uri={uri}", f"paths.cache_dir={Path(tmp) / 'cache'}", f"model={model}", f"data={view}",
                         f"resample={resample}", "search=gp", f"search.n_trials={trials}", f"cv.n_splits={folds}",
                         "n_jobs=2", f"diagnostics={diagnostics}"]
            with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                cfg = compose("config", overrides=overrides)
            result = run(cfg)
            metrics = dict(result.metrics)
            # Figures drawn on demand (light): what drawing this run's would cost, timed apart. The
            # garbage matplotlib leaves is collected here too: a real worker draws nothing between
            # jobs, and the collector would otherwise stop the next job's record for ~0.5 s.
            start = time.perf_counter()
            drawn = [d for d in draw_run_figures(uri, [result.run_id]) if d.outcome == "drawn"]
            gc.collect()
            metrics["bench/draw_s"] = time.perf_counter() - start if drawn else 0.0
            # Likewise the MLflow model a light run left for later (promotion or `wtc runs model`).
            start = time.perf_counter()
            logged = [b for b in build_run_models(uri, [result.run_id]) if b.outcome == "logged"]
            metrics["bench/model_s"] = time.perf_counter() - start if logged else 0.0
            rows.append((model, view, resample, metrics))
            parts = _record_parts(metrics)
            print(f"{model:>18} {view:>9} {resample:>6}  job {metrics['time/total_s']:7.1f} s  "
                  f"trial {metrics['time/trial_mean_s']:6.2f} s  record {metrics['time/record_s']:5.1f} s "
                  f"({metrics['time/record_s'] / metrics['time/total_s']:5.1%}: figures {parts['figures']:4.1f} + "
                  f"tracking {parts['tracking']:4.1f} + scoring {parts['scoring']:4.1f} s; after training "
                  f"{metrics['time/post_training_cpu_s']:4.1f} s CPU)  later: drawing its figures "
                  f"{metrics['bench/draw_s']:4.1f} s, logging its model {metrics['bench/model_s']:4.1f} s  test AUC {metrics['test/roc_auc']:.3f}  "
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
    later = sum(m["bench/draw_s"] for *_, m in rows)
    scoring = sum(_record_parts(m)["scoring"] for *_, m in rows)
    print(f"  all {len(rows)} jobs: {total:.0f} s sequential; the record {spent / total:5.1%} of the sweep's job time "
          f"= figures and tracking {(spent - scoring) / total:5.1%} + scoring {scoring / total:5.1%}")
    if later:
        print(f"  drawing every run's figures afterwards (wtc runs figures) would take {later:.0f} s, "
              f"{later / total:5.1%} of it; the record with them drawn in the job (diagnostics.figures=now) "
              f"~{(spent + later) / total:5.1%}")
    models = sum(m["bench/model_s"] for *_, m in rows)
    if models:
        print(f"  logging every run's model afterwards (wtc runs model; promotion logs the one it registers) "
              f"would take {models:.0f} s, {models / total:5.1%} of it; the record with the models logged in the "
              f"job (diagnostics.model=now) ~{(spent + models) / total:5.1%}")


def _record_parts(metrics: dict) -> dict[str, float]:
    """The record's seconds split into figures (computing them), tracking (every MLflow call:
    saving figures, the model, params, metrics, artifacts) and scoring (the rest after training:
    test/train predictions, metrics, tables)."""
    figures, tracking = metrics["time/diagnostics_s"], metrics["time/tracking_s"]
    return {"figures": figures, "tracking": tracking, "scoring": max(metrics["time/record_s"] - figures - tracking, 0.0)}
