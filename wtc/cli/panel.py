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
