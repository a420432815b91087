"""Benchmarks that print figures (never assertions):
``python -m wtc.bench data|sweep|quality|serve|gate|recovery|learning|scale``."""

from __future__ import annotations

import argparse

from wtc.bench.gate import bench_gate
from wtc.bench.loading import bench_data
from wtc.bench.quality import QUALITY_RECIPES, bench_quality
from wtc.bench.recovery import RECIPES, bench_recovery
from wtc.bench.sweep import bench_sweep

__all__ = ["bench_data", "bench_gate", "bench_quality", "bench_recovery", "bench_sweep", "main"]


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
                         + ",".join([r for r, _ in QUALITY_RECIPES] + ["flaml", "autogluon"]))
    quality.add_argument("--autogluon-python", help="an interpreter (of a separate venv) that has AutoGluon-Tabular: "
                                                    "it cannot be installed beside wtc's pins")
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
    gate = sub.add_parser("gate", help="the AUTO gate's violation rate and coverage on fresh draws (docs/gate.md)")
    source = gate.add_mutually_exclusive_group()
    source.add_argument("--history", help="the training history (default: the generated default benchmark)")
    source.add_argument("--seed", type=int, dest="generate_seed", help="generate the training history with this seed")
    gate.add_argument("--tasks", type=positive, default=12000, help="tasks of the history --seed makes (default 12000)")
    gate.add_argument("--fresh-seed", type=int, default=101, help="seed of the fresh history draws come from")
    gate.add_argument("--fresh-tasks", type=positive, default=20000, help="its tasks (default 20000)")
    gate.add_argument("--draws", type=positive, default=200, help="draws (default 200)")
    gate.add_argument("--draw-tasks", type=positive, default=500, help="tasks per promoted-gate draw (default 500)")
    gate.add_argument("--calibration-tasks", type=positive,
                      help="tasks per re-certified draw (default: the out-of-fold rows' count)")
    gate.add_argument("--target", choices=["binary", "action", "action_split"], action="append",
                      help="target(s), repeatable (default: binary and action)")
    gate.add_argument("--alpha", type=float, default=0.05)
    gate.add_argument("--delta", type=float, default=0.1)
    gate.add_argument("--trials", type=positive, help="override the champion's search.n_trials")
    gate.add_argument("--quick", action="store_true", help="a cheap untuned recipe instead of the champion (smoke)")
    gate.add_argument("--out", default="experiments/gate", help="folder of the figures and tables ('' : none)")
    gate.add_argument("--dump", help="also save the out-of-fold and fresh scores here (to study a gate offline)")
    recovery = sub.add_parser("recovery", help="the recovery recommender's joint gate vs its oracle and the "
                              "production rules (Unified's recoveror)")
    recovery.add_argument("--history", help="a generated history (default: the generated default benchmark)")
    recovery.add_argument("--fresh-seed", type=int, default=1, help="seed of the fresh history (default 1)")
    recovery.add_argument("--fresh-tasks", type=non_negative, default=10000,
                          help="tasks of the fresh history (default 10000; 0: none)")
    recovery.add_argument("--recipe", choices=RECIPES, default=RECIPES[0],
                          help="the parts: +experiment=recovery runs, what ships (default), or a quick stand-in "
                               "(default-parameter LightGBM)")
    recovery.add_argument("--data", help="the parts' view, a conf/data option (default: the recipe's; quick: "
                                         "workflow_evidence)")
    recovery.add_argument("--folds", type=positive, help="grouped folds for the out-of-fold rows (default: the "
                                                          "recipe's; quick: 3)")
    recovery.add_argument("--trials", type=positive, help="override the recovery recipe's search.n_trials")
    recovery.add_argument("--out", help="also write the tables as Markdown to this file")
    learning = sub.add_parser("learning", help="the champion's excess over a limit and its coverage against the "
                                               "history size, on one world's unseen workflows")
    learning.add_argument("--sizes", type=positive, nargs="+", default=[1000, 2000, 4000, 8000, 16000, 32000],
                          help="training tasks (default 1k..32k)")
    learning.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                          help="which workflows each size draws and the run's seed (default 0 1 2)")
    learning.add_argument("--holdout", type=positive, default=8000, help="held-out tasks, unseen workflows (8000)")
    learning.add_argument("--world", type=int, default=0, help="the generator seed of the world (default 0)")
    learning.add_argument("--trials", type=positive, help="override the champion's search.n_trials")
    learning.add_argument("--limit", default="oracle_workflow_blind", help="the limit the excess is measured against "
                                                                 "(default oracle_workflow_blind)")
    learning.add_argument("--blind-samples", type=positive, default=32, help="the name-blind oracle's samples (32)")
    learning.add_argument("--out", default="experiments/learning", help="folder of the figure and table")
    scale = sub.add_parser("scale", help="the champion's (and a default job's) wall time and peak memory by size")
    scale.add_argument("--sizes", type=positive, nargs="*", default=[7600, 30000, 100000, 200000],
                       help="tasks of the champion's histories")
    scale.add_argument("--sweep-sizes", type=non_negative, nargs="*", default=[7600, 30000],
                       help="tasks of the histories of the default sweep's xgboost/combined job (none: leave it out)")
    scale.add_argument("--trials", type=positive, help="override the champion's search.n_trials")
    scale.add_argument("--sweep-trials", type=positive, help="override that job's search.n_trials (the sweep's: 4)")
    scale.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.what == "serve":
        if args.model is not None and args.tracking_uri is None:
            parser.error("serve: --model needs the --tracking-uri of its store")
        from wtc.bench.serve import bench_serve

        bench_serve(args.history, args.model, args.tracking_uri, args.seconds, args.trials)
        return 0
    if args.what == "learning":
        from wtc.bench.learning import LIMITS, bench_learning

        if args.limit not in LIMITS:
            parser.error(f"learning: --limit must be one of {', '.join(LIMITS)}, got {args.limit!r}")
        bench_learning(args.sizes, args.seeds, args.holdout, args.world, args.trials, args.limit,
                       args.blind_samples, args.out)
        return 0
    if args.what == "scale":
        from wtc.bench.scale import bench_scale

        bench_scale(args.sizes, [n for n in args.sweep_sizes if n], args.trials, args.sweep_trials, args.seed)
        return 0
    if args.what == "data":
        bench_data(args.sizes, args.seed)
    elif args.what == "gate":
        targets = tuple(dict.fromkeys(args.target or ["binary", "action"]))
        bench_gate(args.history, args.generate_seed, args.tasks, args.fresh_seed, args.fresh_tasks, targets,
                   args.draws, args.draw_tasks, args.calibration_tasks, args.alpha, args.delta, args.trials,
                   args.quick, args.out or None, dump=args.dump)
    elif args.what == "quality":
        if args.tasks is not None and args.generate_seed is None:
            parser.error("quality: --tasks sizes a generated history; give --generate-seed too")
        bench_quality(args.history, args.generate_seed, args.tasks or 20000, args.budget_s, args.targets.split(","),
                      args.trials, args.recipes.split(",") if args.recipes else None, args.tracking_uri,
                      args.blind_samples, args.autogluon_python)
    elif args.what == "recovery":
        if args.trials and args.recipe == "quick":
            parser.error("recovery: --trials sets the recovery recipe's search; the quick recipe has none")
        bench_recovery(args.history, args.fresh_seed, args.fresh_tasks, recipe=args.recipe, data=args.data,
                       folds=args.folds, trials=args.trials, out=args.out)
    else:
        bench_sweep(args.tasks, args.trials, args.folds, args.models, args.views, args.resamplers, args.diagnostics)
    return 0
