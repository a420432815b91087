"""The commands operators use on raw tasks: ``predict`` and ``serve``."""

from __future__ import annotations

import sys
from pathlib import Path

from wtc.cli.options import add_tracking_uri, default_uri, needs_store, positive, precision
from wtc.errors import WtcError
from wtc.outputs import check_output


def _predict(args) -> int:
    from wtc.ops.predict import format_report, predict_history, write_predictions

    if args.out is not None and args.out.suffix not in (".csv", ".json"):
        raise WtcError(f"--out must end in .csv or .json, got {args.out.name!r}")
    if args.out is not None:  # before any work: a refused --out costs nothing
        check_output(args.out, args.force, inputs=[args.history])
    prediction = predict_history(args.history, args.model, tracking_uri=default_uri(args, needs_store(args.model)),
                                 precision=args.precision)
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
    from wtc.ops.serve import serve

    serve(args.model, args.port, default_uri(args, needs_store(args.model)))  # replaces this process; returns only by an error
    return 1


def add_predict(commands) -> None:
    """The ``predict`` command."""
    predict = commands.add_parser(
        "predict", help="recommend an action per task of a history file, AUTO or REVIEW",
        description="Run every task of an actions-history file through a model (e.g. models:/NAME@champion): "
                    "per task the recommendation, its probability, the runner-up and AUTO/REVIEW (AUTO when the "
                    "confidence reaches the threshold promotion chose for the target precision); then how many are "
                    "AUTO, the expected precision and the exit codes behind each recommendation. Malformed tasks get "
                    "one message each (exit 1); the others are still predicted.")
    predict.add_argument("history", type=Path, help="the actions-history JSON file")
    predict.add_argument("--model", required=True, metavar="URI", help="e.g. models:/wtc-action@champion")
    add_tracking_uri(predict)
    predict.add_argument("--precision", type=precision, default=0.95, metavar="P",
                         help="the precision asked of AUTO decisions (default: 0.95; a promoted version's own "
                              "threshold and precision take precedence)")
    predict.add_argument("--out", type=Path, metavar="FILE", help="also write the table: FILE.csv or FILE.json "
                                                                   "(never the history itself)")
    predict.add_argument("--force", action="store_true", help="write --out over an existing file")
    predict.set_defaults(func=_predict)


def add_serve(commands) -> None:
    """The ``serve`` command."""
    serve = commands.add_parser(
        "serve", help="serve a model over REST on 127.0.0.1 (POST raw tasks to /invocations)",
        description="Serve the model with MLflow's scoring server behind wtc's guard (bounded body size, "
                    "nesting and rows; every error one line, never a 5xx), on 127.0.0.1, with the store set to "
                    "resolve models:/ URIs. POST {\"dataframe_records\": [{\"task\": ..., \"entry\": {...}}], "
                    "\"params\": {\"threshold\": T}} to /invocations.")
    serve.add_argument("--model", required=True, metavar="URI", help="e.g. models:/wtc-action@champion")
    serve.add_argument("--port", type=positive, default=5001, metavar="N", help="port (default: 5001)")
    add_tracking_uri(serve)
    serve.set_defaults(func=_serve)
