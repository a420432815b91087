"""What several commands share: argument types and the MLflow store option."""

from __future__ import annotations

import argparse

from wtc.errors import WtcError


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
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="the MLflow store (default: the project's, sqlite:///$WTC_HOME/mlruns/mlflow.db, "
                             "$WTC_HOME being the wtc checkout unless set)")


def default_uri(args, must_exist: bool = True) -> str:
    """``--tracking-uri``, else the project's store (``sqlite:///<project home>/mlruns/mlflow.db``,
    whatever the current directory). A store that is needed must exist: a missing SQLite file is one
    line here, never created empty; a server that does not answer fails here, in seconds (MLflow's
    client would retry it for minutes)."""
    from wtc.config import project_home
    from wtc.sqlite import sqlite_db_path
    from wtc.store.uri import check_reachable

    uri = args.tracking_uri or f"sqlite:///{project_home() / 'mlruns' / 'mlflow.db'}"
    db = sqlite_db_path(uri)
    if must_exist and db is not None and not db.is_file():
        fix = "" if args.tracking_uri else ", or set WTC_HOME or pass --tracking-uri"
        raise WtcError(f"no tracking store at {uri} ({db} does not exist): run an experiment first{fix}")
    check_reachable(uri)
    return uri


def needs_store(model_uri: str) -> bool:
    """Whether loading ``model_uri`` reads the store (``models:/``, ``runs:/``) rather than a folder."""
    return model_uri.startswith(("models:/", "runs:/"))
