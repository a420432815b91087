"""The ``wtc`` command line: inspect, check and generate actions histories; compare tracked runs; promote a
champion; predict and serve decisions on raw tasks."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from wtc.cli.data import add_data
from wtc.cli.runs import add_compare, add_promote, add_runs, add_tracking_server
from wtc.cli.serving import add_predict, add_serve
from wtc.cli.ui import add_ui
from wtc.errors import WtcError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``wtc`` argument parser: every command, each with its ``func``."""
    parser = argparse.ArgumentParser(
        prog="wtc", description="The wtc command line: inspect, check and generate actions histories; compare "
                                "tracked runs; promote a champion; predict and serve decisions on raw tasks.")
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
    add_tracking_server(commands)
    add_ui(commands)
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
