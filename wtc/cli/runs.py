"""The commands on tracked runs and the store: ``compare``, ``promote``, ``runs cleanup``, ``tracking-server``."""

from __future__ import annotations

import sys
from pathlib import Path

from wtc.cli.options import add_tracking_uri, default_uri, fraction, positive, precision
from wtc.errors import WtcError


def _compare(args) -> int:
    uri = default_uri(args)  # before the heavy imports: an unreachable server fails at once
    from wtc.ops.compare import compare

    report = compare(uri, args.out, experiment=args.experiment, sweep=args.sweep, top=args.top,
                     figures=args.figure or (), force=args.force)
    comparison = report.comparison
    direction = "higher" if comparison.greater_is_better else "lower"
    print(f"{len(comparison.runs)} run(s), best first by cv/{comparison.metric}_mean ({direction} is better)")
    for note in comparison.notes:
        print(f"note: {note}")
    print(report.markdown)
    print(f"wrote {', '.join(str(p) for p in report.paths.values())}")
    if report.run_id:
        print(f"logged as comparison run {report.run_id}")
    _print_leaderboard(uri, comparison.runs["experiment"].iloc[0], comparison.metric)
    return 0


def _print_leaderboard(uri: str, experiment: str, objective: str | None = None) -> None:
    from wtc.ops.ui import leaderboard_link, ui_command

    print(f"leaderboard: {leaderboard_link(uri, experiment, objective)}  (start the UI: {ui_command(uri)})")


def _promote(args) -> int:
    uri = default_uri(args)
    from wtc.ops.promote import CHAMPION, promote

    if args.recovery:
        return _promote_recovery(args)
    if args.mode != "joint":
        raise WtcError("--mode chooses the recovery recommender's AUTO mode: use it with --recovery")
    if args.experiment is None or args.name is None:
        raise WtcError("promote needs --experiment and --name (or --recovery)")
    outcome = promote(uri, args.experiment, args.metric, args.name, sweep=args.sweep,
                      precision=_precision(args), dry_run=args.dry_run, force=args.force, delta=args.delta)
    print(f"{'dry run: ' if args.dry_run else ''}best finished run of {args.experiment} by {outcome.metric} "
          f"(the CV objective; the test rows never choose): {outcome.run_name} ({outcome.run_id}) {outcome.value:.4g}")
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
        gate = outcome.gate
        guarantee = (f"P(precision >= {outcome.precision:.0%}) >= {1 - outcome.delta:.0%} on new tasks")
        if outcome.threshold == float("inf"):
            reach = "no threshold is certified: every task goes to REVIEW"
        else:
            reach = f"AUTO when confidence >= {outcome.threshold:.4g}, coverage {outcome.coverage:.1%} of them"
        rows = f" on {gate.n_rows} out-of-fold rows of {gate.n_groups} workflows ({gate.method})" if gate else ""
        print(f"  AUTO gate, {guarantee}, certified{rows}: {reach} ({where} with the version)")
        if outcome.test_coverage is not None:
            realised = "n/a" if outcome.test_precision is None else f"{outcome.test_precision:.1%}"
            print(f"  held-out rows at that threshold (reported, not used): precision {realised}, "
                  f"coverage {outcome.test_coverage:.1%}")
    if not args.dry_run:
        print(f"{args.name}@{CHAMPION} = version {outcome.version}"
              + ("" if outcome.changed else " (unchanged)"))
    _print_leaderboard(uri, args.experiment)
    return 0


def _precision(args) -> float:
    """The precision the gate guarantees: ``--precision P`` or ``1 - --alpha``."""
    return args.precision if args.alpha is None else 1.0 - args.alpha


def _promote_recovery(args) -> int:
    from wtc.ops.promote import CHAMPION
    from wtc.ops.recovery import format_recovery, promote_recovery

    args.precision = _precision(args)
    if args.experiment is not None:
        raise WtcError("--recovery reads the experiments wtc-action, wtc-splitting, wtc-xrootd and wtc-memory; "
                       "drop --experiment (select a sweep with --sweep)")
    name = args.name or "wtc-recovery"
    outcome = promote_recovery(default_uri(args), args.metric, name, sweep=args.sweep, precision=args.precision,
                               dry_run=args.dry_run, force=args.force, mode=args.mode, delta=args.delta)
    print(f"{'dry run: ' if args.dry_run else ''}recovery recommender from the best finished run of each part by "
          f"{args.metric} (the CV objective), AUTO gate (mode {args.mode}) certified at {args.precision:.0%} "
          f"precision with probability >= {1 - args.delta:.0%} on the parts' out-of-fold rows:")
    for line in format_recovery(outcome):
        print(f"  {line}")
    if outcome.refused:
        for reason in outcome.all_refusals():
            print(f"refused: {reason}", file=sys.stderr)
        return 1
    if not args.dry_run:
        print(f"{name}@{CHAMPION} = version {outcome.version}" + ("" if outcome.changed else " (unchanged)"))
    return 0


def _runs_cleanup(args) -> int:
    from wtc.ops.cleanup import cleanup_runs

    report = cleanup_runs(default_uri(args), args.experiment, run_ids=args.run_id, dry_run=args.dry_run)
    verb = "would mark" if args.dry_run else "marked"
    for run in report.killed:
        tags = run.data.tags
        print(f"{verb} KILLED: {run.info.run_id} {run.info.run_name} (experiment {run.info.experiment_id}, "
              f"pid {tags.get('wtc.pid', '?')} on {tags.get('wtc.host', '?')})")
    for run, reason in report.left:
        print(f"left RUNNING: {run.info.run_id} {run.info.run_name}: {reason}")
    print(f"{len(report.killed)} run(s) {verb} KILLED, {len(report.left)} left RUNNING")
    return 0


def _chosen_runs(args, uri: str) -> list[str]:
    """The run ids named, or the finished runs of ``--sweep``/``--experiment`` (``--top`` best)."""
    from wtc.ops.deferred import runs_to_draw

    if args.run_id and (args.sweep or args.experiment or args.top):
        raise WtcError("give run ids, or --sweep/--experiment (with --top), not both")
    return runs_to_draw(uri, args.run_id, experiment=args.experiment, sweep=args.sweep, top=args.top)


def _tally(counts: dict[str, int], uri: str) -> None:
    from wtc.ops.leaderboard import ui_command

    print(", ".join(f"{n} {outcome}" for outcome, n in counts.items()) + f"; open them: {ui_command(uri)}")


def _runs_on_demand(args) -> int:
    """``wtc runs figures|model``: make what the chosen runs left for later."""
    uri = default_uri(args)
    from wtc.ops.deferred import ON_DEMAND

    on_demand = ON_DEMAND[args.what]
    run_ids = _chosen_runs(args, uri)
    if not run_ids:
        print("no finished runs")
        return 0
    counts: dict[str, int] = {}
    for done in on_demand.make(uri, run_ids, getattr(args, "force", False)):
        counts[done.outcome] = counts.get(done.outcome, 0) + 1
        print(on_demand.line(done), flush=True)
    _tally(counts, uri)
    return 0


def _tracking_server(args) -> int:
    from wtc.ops import server

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


def add_compare(commands) -> None:
    """The ``compare`` command."""
    compare = commands.add_parser(
        "compare", help="rank the parent runs of an experiment or a sweep; write a report",
        description="Rank tracked parent runs by their CV objective and write comparison.md, comparison.csv and "
                    "comparison.html (figures embedded); the report is also logged as a run tagged "
                    "wtc.kind=comparison.")
    which = compare.add_mutually_exclusive_group()
    which.add_argument("--experiment", metavar="NAME", help="compare the runs of this experiment (e.g. wtc-binary)")
    which.add_argument("--sweep", metavar="TAG",
                       help="compare the runs of one sweep: its dir (the wtc.sweep tag) or a unique suffix of it")
    add_tracking_uri(compare)
    compare.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder of the report (created)")
    compare.add_argument("--force", action="store_true", help="write the report over the one already in --out")
    compare.add_argument("--top", type=positive, default=5, metavar="N",
                         help="show the ROC curves of the N best runs (default: 5); tables list every run")
    compare.add_argument("--figure", action="append", metavar="ARTIFACT",
                         help="also show this figure of each of the N best runs side by side, e.g. "
                              "plots/confusion_matrix.png (repeatable)")
    compare.set_defaults(func=_compare)


def _add_run_selection(parser, what: str) -> None:
    """RUN_ID..., or --sweep/--experiment with --top, and --tracking-uri (see :func:`_chosen_runs`)."""
    parser.add_argument("run_id", nargs="*", metavar="RUN_ID", help=f"{what} (or use --sweep/--experiment)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sweep", metavar="TAG", help="the finished runs of this sweep (its dir or a unique suffix)")
    which.add_argument("--experiment", metavar="NAME", help="the finished runs of this experiment")
    parser.add_argument("--top", type=positive, metavar="N",
                        help="only the N best of them by the CV objective (default: all)")
    add_tracking_uri(parser)


def add_runs(commands) -> None:
    """The ``runs`` command and its actions ``cleanup``, ``figures`` and ``model``."""
    runs = commands.add_parser("runs", help="tracked runs: draw a sweep's figures, log its models; mark runs of dead "
                                            "processes KILLED",
                               description="Housekeeping of tracked runs.").add_subparsers(
        dest="runs_command", required=True, metavar="ACTION", help="cleanup | figures | model")
    cleanup = runs.add_parser(
        "cleanup", help="mark runs whose process is gone KILLED",
        description="A run killed outright (SIGKILL, out of memory, a lost node) stays RUNNING in the store. Every "
                    "run records its host, pid and the pid's start time (tags wtc.host, wtc.pid, wtc.pid_started; a pid "
                    "reused by another process is no longer the run's): this marks KILLED each RUNNING run of "
                    "this host whose process is gone, with its RUNNING child runs, and lists the others. Relaunching "
                    "the same search does the same for its own earlier runs.")
    cleanup.add_argument("--experiment", metavar="NAME", help="only this experiment (default: every experiment)")
    add_tracking_uri(cleanup)
    cleanup.add_argument("--run-id", action="append", default=[], metavar="ID",
                         help="also mark this RUNNING run KILLED whatever its host (a job lost on another machine); "
                              "repeatable")
    cleanup.add_argument("--dry-run", action="store_true", help="say what would be marked; change nothing")
    cleanup.set_defaults(func=_runs_cleanup)
    figures = runs.add_parser(
        "figures", help="draw the figures of runs that logged only their inputs (sweeps)",
        description="A sweep's runs (diagnostics=light) log what their figures are drawn from, figures/inputs.npz, "
                    "instead of drawing them: that is most of what a job's record would cost. This draws them into "
                    "each run's plots/ (ROC, CV ROC, confusion matrices, over-training, calibration, class balance, "
                    "automation curve, convergence, the model's importances) from exactly those numbers, and lists "
                    "them in the run's summary. A sweep's leaderboard does it for its top 3 runs, wtc compare for the "
                    "runs it shows.")
    _add_run_selection(figures, "the runs to draw")
    figures.add_argument("--force", action="store_true", help="draw them again where they were drawn already")
    figures.set_defaults(func=_runs_on_demand, what="figures")
    model = runs.add_parser(
        "model", help="log the MLflow model of runs that kept only its inputs (sweeps)",
        description="A sweep's runs (diagnostics=light) keep their fitted pipeline and what their model is made from, "
                    "model/inputs.pkl, instead of logging an MLflow model: MLflow's model logging was the largest "
                    "part of a job's record. This logs each run's model into the run, as a run logging it at once "
                    "does (named after the run, the pyfunc that reads raw tasks, its signature, input example, "
                    "requirements and the wtc code), and links the run's metrics to it. wtc promote does it for the "
                    "run it registers, a sweep's leaderboard for its top 3 runs.")
    _add_run_selection(model, "the runs whose model to log")
    model.set_defaults(func=_runs_on_demand, what="model")


def add_promote(commands) -> None:
    """The ``promote`` command."""
    promote = commands.add_parser(
        "promote", help="register the best run as NAME@champion if it beats the baselines",
        description="Pick the best finished parent run of an experiment (or sweep) by its CV objective; refuse it "
                    "unless it beats both the rules baseline and the class-prior dummy on the same split (trained "
                    "on the spot when missing) and is no worse than the current champion on the same metric "
                    "(unless --force); register its model, move the alias champion to it and store the AUTO "
                    "threshold for the requested precision with the version. Idempotent. With --recovery: do that "
                    "for each part of a recovery (action, splitting, xrootd, memory: the experiments wtc-<target>) "
                    "and register ONE model that combines them (default name wtc-recovery).")
    promote.add_argument("--experiment", metavar="NAME", help="experiment of the competing runs (not with --recovery)")
    promote.add_argument("--metric", default="cv", metavar="cv[/NAME]",
                         help="the CV metric that ranks the runs, as the leaderboard does (default: cv, each run's "
                              "objective cv/<metric>_mean; cv/NAME: another; a test metric is refused: the test rows "
                              "only report)")
    promote.add_argument("--name", metavar="NAME", help="registered model name (default with --recovery: wtc-recovery)")
    promote.add_argument("--recovery", action="store_true",
                         help="build the recovery recommender from the best action, splitting, xrootd and memory runs")
    promote.add_argument("--sweep", metavar="TAG", help="only the runs of this sweep (its dir or a unique suffix)")
    add_tracking_uri(promote)
    gate = promote.add_mutually_exclusive_group()
    gate.add_argument("--precision", type=precision, default=0.95, metavar="P",
                      help="precision of AUTO decisions the gate guarantees, 1 - alpha (default: 0.95)")
    gate.add_argument("--alpha", type=fraction, metavar="A",
                      help="tolerated share of wrong AUTO decisions (the same as --precision 1-A)")
    promote.add_argument("--delta", type=fraction, default=0.1, metavar="D",
                         help="tolerated probability that the gate misses the precision on new tasks (default: 0.1): "
                              "the threshold is certified by Learn-then-Test on the run's out-of-fold rows, one task "
                              "per workflow (docs/gate.md)")
    promote.add_argument("--mode", choices=["joint", "action"], default="joint",
                         help="with --recovery: AUTO only for a whole recommendation certified right (joint, the "
                              "default), or also for the action alone where it is (action: the parameters as "
                              "suggestions)")
    promote.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    promote.add_argument("--force", action="store_true",
                         help="promote even when worse than the current champion on the same metric")
    promote.set_defaults(func=_promote)


def add_tracking_server(commands) -> None:
    """The ``tracking-server`` command."""
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
    shared.add_argument("--port", type=positive, default=5000, metavar="N", help="the MLflow server's port (default: 5000)")
    shared.add_argument("--workers", type=positive, default=2, metavar="N",
                        help="the MLflow server's worker processes (default: 2)")
    shared.add_argument("--allowed-hosts", metavar="HOSTS",
                        help="Host headers the server answers besides localhost and private addresses "
                             "(MLflow's --allowed-hosts; e.g. mlflow.example.org:5000 for a server reached by name)")
    shared.set_defaults(func=_tracking_server)
