"""The ``wtc`` command line: inspect, check and generate actions histories; compare tracked runs; promote a
champion; predict and serve decisions on raw tasks."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path

from wtc.errors import WtcError


def _describe(args) -> int:
    from wtc.data import load_history
    from wtc.data.describe import describe_history

    summary = describe_history(load_history(args.path))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['path']}")
    print(f"  tasks       {summary['tasks']:>8}  ({summary['labelled']} labelled, {summary['unlabelled']} unlabelled)")
    print(f"  workflows   {summary['workflows']:>8}")
    print(f"  campaigns   {len(summary['campaigns']):>8}  " + ", ".join(list(summary["campaigns"])[:5])
          + (" ..." if len(summary["campaigns"]) > 5 else ""))
    print(f"  task types  {len(summary['task_types']):>8}  "
          + ", ".join(f"{k} {v}" for k, v in summary["task_types"].items()))
    print(f"  statuses    {len(summary['statuses']):>8}  " + ", ".join(summary["statuses"]))
    print(f"  exit codes  {summary['codes']:>8}")
    print(f"  sites       {summary['sites']:>8}")
    print(f"  non-zeros   {summary['nonzeros']:>8}  "
          + ", ".join(f"{k} {v}" for k, v in summary["nonzeros_by_status"].items()))
    print(f"  errors      {summary['total_errors']:>8}")
    for target, counts in summary["classes"].items():
        print(f"  {target}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _check(args) -> int:
    from wtc.data import load_history
    from wtc.data.vocabulary import cms_vocabulary

    # The loader also logs a one-line warning about skipped tasks; this report lists them all.
    logging.getLogger("wtc.data.loader").setLevel(logging.ERROR)
    try:
        history = load_history(args.path, strict=False, use_cache=False)
    except WtcError as exc:
        print(f"FATAL {exc}")
        return 1
    known_codes = set(cms_vocabulary()["exit_codes"])
    unknown_codes = [c for c in history.codes if c not in known_codes]
    extra_statuses = [s for s in history.statuses if s not in ("good", "bad")]
    print(f"{args.path}: {history.n_tasks} valid task(s), {len(history.skipped)} malformed, "
          f"{int((~history.labelled).sum())} unlabelled")
    if extra_statuses:
        print(f"  note: statuses beyond good/bad kept as their own: {', '.join(extra_statuses)}")
    if unknown_codes:
        print(f"  note: {len(unknown_codes)} exit code(s) not in the CMS vocabulary: {', '.join(unknown_codes[:10])}")
    for task, problem in history.skipped[: args.max_problems]:
        field, _, reason = problem.partition(": ")
        print(f"  ERROR {args.path}: task {task!r}: field {field}: {reason or 'invalid'}")
    if len(history.skipped) > args.max_problems:
        # The reasons, without the values that differ from task to task ("got -4", "got -7").
        reasons = Counter(problem.partition(": ")[2].split(", got ", 1)[0] for _, problem in history.skipped)
        print(f"  ... and {len(history.skipped) - args.max_problems} more; every problem by kind:")
        for reason, count in reasons.most_common():
            print(f"    {count:>6}  {reason}")
    return 1 if history.skipped else 0


def _generate(args) -> int:
    import time

    from wtc.data.synthetic import write_benchmark

    start = time.perf_counter()
    path = write_benchmark(args.out, n_tasks=args.tasks, seed=args.seed)
    print(f"wrote {args.tasks} tasks to {path} (oracle beside it) in {time.perf_counter() - start:.1f} s")
    return 0


def _compare(args) -> int:
    uri = _default_uri(args)  # before the heavy imports: an unreachable server fails at once
    from wtc.evaluation.compare import compare

    report = compare(uri, args.out, experiment=args.experiment, sweep=args.sweep, top=args.top,
                     figures=args.figure or ())
    comparison = report.comparison
    direction = "higher" if comparison.greater_is_better else "lower"
    print(f"{len(comparison.runs)} run(s), best first by cv/{comparison.metric}_mean ({direction} is better)")
    for note in comparison.notes:
        print(f"note: {note}")
    print(report.markdown)
    print(f"wrote {', '.join(str(p) for p in report.paths.values())}")
    if report.run_id:
        print(f"logged as comparison run {report.run_id}")
    return 0


def _default_uri(args) -> str:
    """``--tracking-uri``, else ``sqlite:///$PWD/mlruns/mlflow.db``; a server that does not answer fails here,
    in seconds (MLflow's client would retry it for minutes)."""
    from wtc.tracking.store import check_reachable

    uri = args.tracking_uri or f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"
    check_reachable(uri)
    return uri


def _promote(args) -> int:
    uri = _default_uri(args)
    from wtc.tracking.registry import CHAMPION, promote

    if args.recovery:
        return _promote_recovery(args)
    if args.experiment is None or args.name is None:
        raise WtcError("promote needs --experiment and --name (or --recovery)")
    outcome = promote(uri, args.experiment, args.metric, args.name, sweep=args.sweep,
                      precision=args.precision, dry_run=args.dry_run, force=args.force)
    print(f"{'dry run: ' if args.dry_run else ''}best finished run of {args.experiment} by {args.metric}: "
          f"{outcome.run_name} ({outcome.run_id}) {outcome.value:.4g}")
    for note in outcome.notes:
        print(f"  {note}")
    for action in outcome.actions:
        print(f"  {action}")
    if outcome.refused:
        for reason in outcome.refusals:
            print(f"refused: {reason}", file=sys.stderr)
        return 1
    if outcome.threshold is not None:
        where = "would be stored" if args.dry_run else "stored"
        reach = ("no threshold reaches it: every task goes to REVIEW" if outcome.threshold == float("inf")
                 else f"AUTO when confidence >= {outcome.threshold:.4g}, expected coverage {outcome.coverage:.1%}")
        print(f"  at {outcome.precision:.0%} precision on the champion's held-out rows: {reach} ({where} "
              f"with the version)")
    if not args.dry_run:
        print(f"{args.name}@{CHAMPION} = version {outcome.version}"
              + ("" if outcome.changed else " (unchanged)"))
    return 0


def _promote_recovery(args) -> int:
    from wtc.tracking.recovery import format_recovery, promote_recovery
    from wtc.tracking.registry import CHAMPION

    if args.experiment is not None:
        raise WtcError("--recovery reads the experiments wtc-action, wtc-splitting, wtc-xrootd and wtc-memory; "
                       "drop --experiment (select a sweep with --sweep)")
    name = args.name or "wtc-recovery"
    outcome = promote_recovery(_default_uri(args), args.metric, name, sweep=args.sweep, precision=args.precision,
                               dry_run=args.dry_run, force=args.force)
    print(f"{'dry run: ' if args.dry_run else ''}recovery recommender from the best finished run of each part by "
          f"{args.metric}, AUTO thresholds at {args.precision:.0%} precision on each part's held-out rows:")
    for line in format_recovery(outcome):
        print(f"  {line}")
    if outcome.refused:
        for reason in outcome.all_refusals():
            print(f"refused: {reason}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"{name}@{CHAMPION} = version {outcome.version}" + ("" if outcome.changed else " (unchanged)"))
    return 0


def _predict(args) -> int:
    from wtc.serving.predict import format_report, predict_history, write_predictions

    if args.out is not None and args.out.suffix not in (".csv", ".json"):
        raise WtcError(f"--out must end in .csv or .json, got {args.out.name!r}")
    prediction = predict_history(args.history, args.model, tracking_uri=_default_uri(args), precision=args.precision)
    print(format_report(prediction))
    if args.out is not None:
        print(f"wrote {write_predictions(prediction, args.out)}")
    bad = prediction.bad
    for row in bad.itertuples(index=False):
        print(f"error: {args.history}: task {row.task!r}: {row.error}", file=sys.stderr)
    if len(bad):
        print(f"error: {len(bad)} of {len(prediction.table)} task(s) could not be predicted (listed above); "
              "the others were", file=sys.stderr)
        return 1
    return 0


def _serve(args) -> int:
    from wtc.serving.serve import serve

    serve(args.model, args.port, _default_uri(args))  # replaces this process; returns only by an error
    return 1


def _tracking_server(args) -> int:
    from wtc.tracking import server

    if args.action == "start":
        up = server.start(args.dir, host=args.host, port=args.port, workers=args.workers,
                          allowed_hosts=args.allowed_hosts)
        print(f"MLflow tracking server {up.uri} (bound to {args.host}), log {up.dir / 'mlflow.log'}")
        print(f"  backend store  PostgreSQL {up.pg_version} on 127.0.0.1:{up.pg_port}, database {server.DB_NAME} "
              f"({up.dir / 'postgres'})")
        print(f"  artifacts      {up.dir / 'artifacts'}, uploaded and read through the server (mlflow-artifacts:)")
        print(f"point runs at it:  python run.py tracking=server tracking.uri={up.uri}")
        print(f"stop it:           wtc tracking-server stop --dir {up.dir}")
        return 0
    if args.action == "stop":
        stopped = server.stop(args.dir)
        print("stopped " + ", ".join(stopped) if stopped else f"nothing was running from {Path(args.dir).resolve()}")
        return 0
    now = server.status(args.dir)
    print(f"MLflow server  {'answers at ' + now.uri if now.mlflow else 'not running'}")
    print(f"PostgreSQL     {f'runs on 127.0.0.1:{now.pg_port}' if now.postgres else 'not running'} ({now.dir / 'postgres'})")
    return 0 if now.running else (3 if not (now.mlflow or now.postgres) else 1)


def _runs_cleanup(args) -> int:
    from wtc.tracking.cleanup import cleanup_runs

    report = cleanup_runs(_default_uri(args), args.experiment, run_ids=args.run_id, dry_run=args.dry_run)
    verb = "would mark" if args.dry_run else "marked"
    for run in report.killed:
        tags = run.data.tags
        print(f"{verb} KILLED: {run.info.run_id} {run.info.run_name} (experiment {run.info.experiment_id}, "
              f"pid {tags.get('wtc.pid', '?')} on {tags.get('wtc.host', '?')})")
    for run, reason in report.left:
        print(f"left RUNNING: {run.info.run_id} {run.info.run_name}: {reason}")
    print(f"{len(report.killed)} run(s) {verb} KILLED, {len(report.left)} left RUNNING")
    return 0


def _precision(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", metavar="URI", help="the MLflow store (default: sqlite:///$PWD/mlruns/mlflow.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wtc", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="data: actions-history files; compare: tracked runs; "
                                          "tracking-server: a shared MLflow server")
    data = commands.add_parser("data", help="actions-history files", description="Inspect, check and generate "
                               "actions-history files.").add_subparsers(dest="data_command", required=True,
                                                                        metavar="ACTION",
                                                                        help="describe, check or generate")

    describe = data.add_parser("describe", help="tasks, workflows, campaigns, codes, sites, classes")
    describe.add_argument("path", type=Path, help="the actions-history JSON file")
    describe.add_argument("--json", action="store_true", help="machine-readable output")
    describe.set_defaults(func=_describe)

    check = data.add_parser("check", help="validation report; exit 1 on problems")
    check.add_argument("path", type=Path, help="the actions-history JSON file")
    check.add_argument("--max-problems", type=_positive, default=20, metavar="N",
                       help="list at most N bad tasks one by one, then count the rest by kind (default: 20)")
    check.set_defaults(func=_check)

    generate = data.add_parser("generate", help="write a synthetic history and its exact oracle")
    generate.add_argument("--tasks", type=_positive, default=7582, metavar="N",
                          help="number of tasks (default: 7582, the seed study's size)")
    generate.add_argument("--seed", type=int, default=0, help="random seed of the generator (default: 0)")
    generate.add_argument("--out", type=Path, required=True, metavar="PATH",
                          help="the history JSON to write; the oracle is written beside it")
    generate.set_defaults(func=_generate)

    compare = commands.add_parser(
        "compare", help="rank the parent runs of an experiment or a sweep; write a report",
        description="Rank tracked parent runs by their CV objective and write comparison.md, comparison.csv and "
                    "comparison.html (figures embedded); the report is also logged as a run tagged "
                    "wtc.kind=comparison.")
    which = compare.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME", help="compare the runs of this experiment (e.g. wtc-binary)")
    which.add_argument("--sweep", metavar="TAG",
                       help="compare the runs of one sweep: its dir (the wtc.sweep tag) or a unique suffix of it")
    _add_tracking_uri(compare)
    compare.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder of the report (created)")
    compare.add_argument("--top", type=_positive, default=5, metavar="N",
                         help="show the ROC curves of the N best runs (default: 5); tables list every run")
    compare.add_argument("--figure", action="append", metavar="ARTIFACT",
                         help="also show this figure of each of the N best runs side by side, e.g. "
                              "plots/confusion_matrix.png (repeatable)")
    compare.set_defaults(func=_compare)

    runs = commands.add_parser("runs", help="tracked runs: mark those left RUNNING by a dead process KILLED",
                               description="Housekeeping of tracked runs.").add_subparsers(
        dest="runs_command", required=True, metavar="ACTION", help="cleanup")
    cleanup = runs.add_parser(
        "cleanup", help="mark runs whose process is gone KILLED",
        description="A run killed outright (SIGKILL, out of memory, a lost node) stays RUNNING in the store. Every "
                    "run records its host and pid (tags wtc.host, wtc.pid): this marks KILLED each RUNNING run of "
                    "this host whose process is gone, with its RUNNING child runs, and lists the others. Relaunching "
                    "the same search does the same for its own earlier runs.")
    cleanup.add_argument("--experiment", metavar="NAME", help="only this experiment (default: every experiment)")
    _add_tracking_uri(cleanup)
    cleanup.add_argument("--run-id", action="append", default=[], metavar="ID",
                         help="also mark this RUNNING run KILLED whatever its host (a job lost on another machine); "
                              "repeatable")
    cleanup.add_argument("--dry-run", action="store_true", help="say what would be marked; change nothing")
    cleanup.set_defaults(func=_runs_cleanup)

    promote = commands.add_parser(
        "promote", help="register the best run as NAME@champion if it beats the baselines",
        description="Pick the best finished parent run of an experiment (or sweep) by a test metric; refuse it "
                    "unless it beats both the rules baseline and the class-prior dummy on the same split (trained "
                    "on the spot when missing) and is no worse than the current champion on the same metric "
                    "(unless --force); register its model, move the alias champion to it and store the AUTO "
                    "threshold for the requested precision with the version. Idempotent. With --recovery: do that "
                    "for each part of a recovery (action, splitting, xrootd, memory: the experiments wtc-<target>) "
                    "and register ONE model that combines them (default name wtc-recovery).")
    promote.add_argument("--experiment", metavar="NAME", help="experiment of the competing runs (not with --recovery)")
    promote.add_argument("--metric", default="test/log_loss", metavar="test/NAME",
                         help="test metric that ranks the runs (default: test/log_loss; direction from the registry)")
    promote.add_argument("--name", metavar="NAME", help="registered model name (default with --recovery: wtc-recovery)")
    promote.add_argument("--recovery", action="store_true",
                         help="build the recovery recommender from the best action, splitting, xrootd and memory runs")
    promote.add_argument("--sweep", metavar="TAG", help="only the runs of this sweep (its dir or a unique suffix)")
    _add_tracking_uri(promote)
    promote.add_argument("--precision", type=_precision, default=0.95, metavar="P",
                         help="target precision of AUTO decisions (default: 0.95)")
    promote.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    promote.add_argument("--force", action="store_true",
                         help="promote even when worse than the current champion on the same metric")
    promote.set_defaults(func=_promote)

    predict = commands.add_parser(
        "predict", help="recommend an action per task of a history file, AUTO or REVIEW",
        description="Run every task of an actions-history file through a model (e.g. models:/NAME@champion): "
                    "per task the recommendation, its probability, the runner-up and AUTO/REVIEW (AUTO when the "
                    "confidence reaches the threshold promotion chose for the target precision); then how many are "
                    "AUTO, the expected precision and the exit codes behind each recommendation. Malformed tasks get "
                    "one message each (exit 1); the others are still predicted.")
    predict.add_argument("history", type=Path, help="the actions-history JSON file")
    predict.add_argument("--model", required=True, metavar="URI", help="e.g. models:/wtc-action@champion")
    _add_tracking_uri(predict)
    predict.add_argument("--precision", type=_precision, default=0.95, metavar="P",
                         help="the precision asked of AUTO decisions (default: 0.95; a promoted version's own "
                              "threshold and precision take precedence)")
    predict.add_argument("--out", type=Path, metavar="FILE", help="also write the table: FILE.csv or FILE.json")
    predict.set_defaults(func=_predict)

    serve = commands.add_parser(
        "serve", help="serve a model over REST on 127.0.0.1 (POST raw tasks to /invocations)",
        description="Run `mlflow models serve -m URI --env-manager local -h 127.0.0.1 -p PORT` with this "
                    "environment's bin dir first on PATH (it needs uvicorn from there) and the store set to resolve "
                    "models:/ URIs. POST {\"dataframe_records\": [{\"task\": ..., \"entry\": {...}}], "
                    "\"params\": {\"threshold\": T}} to /invocations.")
    serve.add_argument("--model", required=True, metavar="URI", help="e.g. models:/wtc-action@champion")
    serve.add_argument("--port", type=_positive, default=5001, metavar="N", help="port (default: 5001)")
    _add_tracking_uri(serve)
    serve.set_defaults(func=_serve)

    shared = commands.add_parser(
        "tracking-server", help="start, stop or check a shared MLflow server (PostgreSQL store) in a folder",
        description="A tracking server for a group, all in DIR: a PostgreSQL cluster (initdb on first start, listening "
                    "on 127.0.0.1 only; run as the postgres user when started by root), an MLflow server on it bound to "
                    "--host:--port that also serves the artifacts (DIR/artifacts). Runs log to it with "
                    "`python run.py tracking=server tracking.uri=http://HOST:PORT`. status exits 0 when both run, "
                    "3 when neither does, 1 otherwise.")
    shared.add_argument("action", choices=["start", "stop", "status"],
                        help="start (returns once the server answers), stop, or status")
    shared.add_argument("--dir", required=True, type=Path, metavar="DIR",
                        help="the server's folder (database, artifacts, logs); kept between stop and start")
    shared.add_argument("--host", default="127.0.0.1",
                        help="interface the MLflow server binds (default: 127.0.0.1; 0.0.0.0 for other machines)")
    shared.add_argument("--port", type=_positive, default=5000, metavar="N", help="the MLflow server's port (default: 5000)")
    shared.add_argument("--workers", type=_positive, default=2, metavar="N",
                        help="the MLflow server's worker processes (default: 2)")
    shared.add_argument("--allowed-hosts", metavar="HOSTS",
                        help="Host headers the server answers besides localhost and private addresses "
                             "(MLflow's --allowed-hosts; e.g. mlflow.example.org:5000 for a server reached by name)")
    shared.set_defaults(func=_tracking_server)
    return parser


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``wtc ... | head``): stop quietly, as a SIGPIPE'd tool does.

    Python's documented recipe: point stdout at /dev/null so the interpreter's final flush
    does not raise again, and exit 1.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wtc`` console script; errors are one line, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler, not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (WtcError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
