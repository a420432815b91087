"""What several commands share: argument types and the MLflow store option."""

from __future__ import annotations

import argparse
from pathlib import Path


def precision(text: str) -> float:
    """An argument type: a precision in (0, 1]."""
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def fraction(text: str) -> float:
    """An argument type: a number in [0, 1)."""
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def positive(text: str) -> int:
    """An argument type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    """An argument type: an integer of at least 0 (0 often leaves something out)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    """The ``--tracking-uri`` option of the commands that read the store."""
    parser.add_argument("--tracking-uri", metavar="URI", help="the MLflow store (default: sqlite:///$PWD/mlruns/mlflow.db)")


def default_uri(args) -> str:
    """``--tracking-uri``, else ``sqlite:///$PWD/mlruns/mlflow.db``; a server that does not answer fails here,
    in seconds (MLflow's client would retry it for minutes)."""
    from wtc.store.uri import check_reachable

    uri = args.tracking_uri or f"sqlite:///{Path.cwd() / 'mlruns' / 'mlflow.db'}"
    check_reachable(uri)
    return uri
