"""Faults of the tracking store (a full disk, a read-only folder, a database or server error) as one line."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import mlflow

from wtc.errors import WtcError, one_line

__all__ = ["StoreFault", "Stopwatch", "is_store_fault", "store_fault_line"]


class StoreFault(WtcError):
    """The tracking store refused a write or a read (``OSError`` such as ENOSPC or EROFS, an MLflow or
    database error); ``str()`` is one line, ``__cause__`` the original error."""


def is_store_fault(exc: BaseException) -> bool:
    """An error the store raises: an OSError, an MLflow exception or a database (SQLAlchemy) error."""
    if isinstance(exc, (OSError, mlflow.exceptions.MlflowException)):
        return True
    return any(k.__module__.split(".")[0] == "sqlalchemy" for k in type(exc).__mro__)


def store_fault_line(exc: BaseException) -> str:
    """The fault in one line, without MLflow's echo of a whole request or statement (first 300 characters)."""
    return one_line(exc, limit=300, with_type=not isinstance(exc, OSError))


class Stopwatch:
    """Accumulates the wall time spent inside MLflow calls (nested timings count once), and turns a
    store fault raised inside one into a :class:`StoreFault` (one line)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        except WtcError:
            raise
        except Exception as exc:  # noqa: BLE001 - only store faults are translated; others pass unchanged
            if not is_store_fault(exc):
                raise
            raise StoreFault(f"the tracking store failed: {store_fault_line(exc)}") from exc
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - start
