"""The ``wtc ui`` command: the MLflow UI on the project's store, on its leaderboards."""

from __future__ import annotations

from wtc.cli.options import add_tracking_uri, default_uri, positive


def _ui(args) -> int:
    from wtc.ops.ui import ui

    ui(default_uri(args), port=args.port)
    return 0  # not reached: ui() replaces this process by the MLflow UI


def add_ui(commands) -> None:
    """The ``ui`` command."""
    parser = commands.add_parser(
        "ui", help="start the MLflow UI on the store and print each experiment's leaderboard URL",
        description="Starts `mlflow ui` on 127.0.0.1:PORT over the store and prints, per experiment, the URL of its "
                    "leaderboard view: parent runs only, best first by the CV objective, with the CV, test, oracle "
                    "and coverage columns, in model-training mode.")
    add_tracking_uri(parser)
    parser.add_argument("--port", type=positive, default=5000, metavar="N", help="the UI's port (default: 5000)")
    parser.set_defaults(func=_ui)
