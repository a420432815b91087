"""The operators' commands around decisions: ``panel`` (review and decide in a web page) and ``retrain``."""

from __future__ import annotations

from pathlib import Path

from wtc.cli.options import add_tracking_uri, default_uri, needs_store, positive


def _panel(args) -> int:
    from wtc.ops.panel import serve_panel

    if not args.history.is_file():
        from wtc.errors import WtcError

        raise WtcError(f"{args.history}: no such history file")
    serve_panel(args.history, args.model, default_uri(args, needs_store(args.model)), port=args.port,
                host=args.host, decisions=args.decisions, operator=args.operator)
    return 0


def add_panel(commands) -> None:
    """The ``panel`` command."""
    panel = commands.add_parser(
        "panel", help="review a history's recommendations in a web page on 127.0.0.1 and record decisions",
        description="Serve the operator panel: the history's tasks with the model's recommendation (AUTO/REVIEW), "
                    "each task's errors, why, and the operators' decisions on similar tasks; accept or override, "
                    "per task or for a workflow's AUTO tasks, after a confirmation. Decisions are appended to "
                    "--decisions (an actions-history file; its journal FILE.journal.jsonl records who and when).")
    panel.add_argument("history", type=Path, help="the actions-history JSON file to review")
    panel.add_argument("--model", required=True, metavar="URI", help="e.g. models:/wtc-recovery@champion")
    panel.add_argument("--port", type=positive, default=5050, metavar="N", help="port (default: 5050)")
    panel.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default: 127.0.0.1; the panel has no login: widen with care)")
    panel.add_argument("--decisions", type=Path, metavar="FILE",
                       help="where decisions go (default: HISTORY's name + .decisions.json, beside it)")
    panel.add_argument("--operator", help="who decides (default: the OS user)")
    add_tracking_uri(panel)
    panel.set_defaults(func=_panel)


def _retrain(args) -> int:
    from wtc.ops.retrain import format_retrain, retrain

    if not args.decisions.is_file():
        from wtc.errors import WtcError

        raise WtcError(f"--decisions {args.decisions}: no such file")
    outcome = retrain(default_uri(args), args.decisions, name=args.name, holdout=args.holdout, dry_run=args.dry_run)
    print("\n".join(format_retrain(outcome)))
    return 0 if outcome.promoted or args.dry_run else 3


def add_retrain(commands) -> None:
    """The ``retrain`` command."""
    from wtc.cli.options import fraction

    retrain = commands.add_parser(
        "retrain", help="train a challenger recovery recommender on the history plus the panel's decisions",
        description="Train each part of NAME@champion again with its own recipe (its run's config) on its history "
                    "plus the operators' decisions (but the newest --holdout share, kept for a back-test), register "
                    "the challenger as NAME-challenger, and promote it to NAME@champion only if every part's CV is "
                    "no worse and, on the newest decisions, it is right at least as often as the champion with its "
                    "AUTO decisions at the promoted precision. Exit 0: promoted; 3: not (the verdict says by how "
                    "much it fell short).")
    retrain.add_argument("--decisions", required=True, type=Path, metavar="FILE", help="the decisions of wtc panel")
    retrain.add_argument("--name", default="wtc-recovery", help="the registered recommender (default: wtc-recovery)")
    retrain.add_argument("--holdout", type=fraction, default=0.3, metavar="F",
                         help="the newest share of the decisions kept out of training for the back-test (default 0.3)")
    retrain.add_argument("--dry-run", action="store_true", help="say what would be trained, train nothing")
    add_tracking_uri(retrain)
    retrain.set_defaults(func=_retrain)
