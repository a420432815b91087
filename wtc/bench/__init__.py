"""Benchmarks that print figures (never assertions): ``python -m wtc.bench data|sweep|quality|serve``."""

from __future__ import annotations

import argparse

from wtc.bench.loading import bench_data
from wtc.bench.quality import QUALITY_RECIPES, bench_quality
from wtc.bench.sweep import bench_sweep

__all__ = ["bench_data", "bench_quality", "bench_sweep", "main"]


def main(argv: list[str] | None = None) -> int:
    from wtc.cli.options import non_negative, positive

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
    quality.add_argument("--blind-samples", type=non_negative, default=32,
                         help="whitelist samples per task of the name-blind oracle (per workflow of the "
                              "name-blind workflow oracle), both computed beside the history on first use "
                              "(default 32; 0: leave them out)")
    serve = sub.add_parser("serve", help="the champion behind `wtc serve` against the same model in-process")
    serve.add_argument("--history", help="tasks to send (default: the generated default benchmark)")
    serve.add_argument("--model", help="a model URI to serve (default: train the champion preset, binary)")
    serve.add_argument("--tracking-uri", help="the store --model lives in")
    serve.add_argument("--seconds", type=float, default=5.0, help="about how long each measurement runs (default 5)")
    serve.add_argument("--trials", type=positive, help="override the champion's search.n_trials (quick checks)")
    args = parser.parse_args(argv)
    if args.what == "serve":
        if args.model is not None and args.tracking_uri is None:
            parser.error("serve: --model needs the --tracking-uri of its store")
        from wtc.bench.serve import bench_serve

        bench_serve(args.history, args.model, args.tracking_uri, args.seconds, args.trials)
        return 0
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
