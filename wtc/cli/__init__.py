"""The ``wtc`` command line: inspect, check and generate actions histories; compare tracked runs; promote a
champion; predict and serve decisions on raw tasks."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys

from wtc.cli.data import add_data
from wtc.cli.panel import add_panel, add_retrain
from wtc.cli.runs import add_compare, add_promote, add_runs, add_tracking_server
from wtc.cli.serving import add_predict, add_serve
from wtc.cli.ui import add_ui
from wtc.errors import WtcError, one_line

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with a suggestion for a mistyped option (``--experment``: did you mean ``--experiment``?)."""

    def error(self, message: str):
        if "unrecognized arguments:" in message:
            known = sorted(_option_strings(self._root()))
            hints = [close[0] for word in message.split("unrecognized arguments:")[1].split()
                     if word.startswith("-") and (close := difflib.get_close_matches(word.split("=")[0], known, 1, 0.75))]
            if hints:
                message += f" (did you mean {' / '.join(hints)}?)"
        super().error(message)

    def _root(self) -> argparse.ArgumentParser:
        return getattr(self, "root", self)


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every option of ``parser`` and of its subcommands, all the way down."""
    out = set()
    for action in parser._actions:
        out.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                out |= _option_strings(child)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The ``wtc`` argument parser: every command, each with its ``func``."""
    from wtc import __version__

    parser = _Parser(
        prog="wtc", description="The wtc command line: inspect, check and generate actions histories; compare "
                                "tracked runs; promote a champion; predict and serve decisions on raw tasks.")
    parser.add_argument("--version", action="version", version=f"wtc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     help="one of the commands below; wtc COMMAND --help for its options")
    # In this order in the help; each command's options and its work live in one module.
    add_data(commands)
    add_compare(commands)
    add_runs(commands)
    add_promote(commands)
    add_predict(commands)
    add_serve(commands)
    add_panel(commands)
    add_retrain(commands)
    add_tracking_server(commands)
    add_ui(commands)
    for sub in _parsers(parser):
        sub.root = parser  # a subcommand's error suggests from every option
    return parser


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``wtc ... | head``): stop quietly, as a SIGPIPE'd tool does.

    Python's documented recipe: point stdout at /dev/null so the interpreter's final flush
    does not raise again, and exit 1.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wtc`` console script; errors are one line, never a traceback. ``wtc`` alone
    prints the help."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
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
    except Exception as exc:  # noqa: BLE001 - a store's own error (MLflow, its database): one line too
        if not any(k.__module__.split(".")[0] in ("mlflow", "sqlalchemy") for k in type(exc).__mro__):
            raise
        print(f"error: the tracking store failed: {one_line(exc, limit=500, with_type=True)}", file=sys.stderr)
        return 2
