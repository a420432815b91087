"""SQLite database URLs shared by the MLflow store and the Optuna trial storage: the file a
``sqlite:///`` URL names, and the lock around creating its schema."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["OPTUNA_DB", "SQLITE_PREFIX", "optuna_storage_url", "sqlite_db_path", "sqlite_lock"]

SQLITE_PREFIX = "sqlite:///"

#: The file of the default Optuna storage, beside the MLflow store.
OPTUNA_DB = "optuna.db"


def sqlite_db_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (relative paths are relative to cwd); None for any other URL."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    return Path(url[len(SQLITE_PREFIX):].split("?", 1)[0]).resolve()


def optuna_storage_url(tracking_uri: str, folder: Path | str) -> str:
    """The default Optuna storage of a tracking store: ``optuna.db`` beside a ``sqlite:///`` MLflow
    database, else in ``folder`` (e.g. the project's ``mlruns/`` for a tracking server)."""
    db = sqlite_db_path(tracking_uri)
    return f"{SQLITE_PREFIX}{(db.parent if db is not None else Path(folder).resolve()) / OPTUNA_DB}"


@contextlib.contextmanager
def sqlite_lock(db_path: Path | None) -> Iterator[None]:
    """Serialise schema (and experiment or study) creation across processes; no lock for ``None``.

    Concurrent first writes to a fresh SQLite database corrupt its schema (STACK.md), so every
    process that may create tables takes this lock first. A server database needs none.
    """
    if db_path is None:
        yield
        return
    import fcntl  # POSIX only; a SQLite database is a local-disk, single-host store anyway

    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
