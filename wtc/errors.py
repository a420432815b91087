"""One family of project errors; every entry point turns them into a one-line message."""

from __future__ import annotations

__all__ = ["ConfigError", "HistoryError", "TrackingError", "WtcError", "one_line"]


class WtcError(ValueError):
    """Base of every error wtc reports to its user as one line (``str()`` is that line)."""


class HistoryError(WtcError):
    """A history file that cannot be read; ``str()`` is one line naming file, task and field."""

    def __init__(self, path, message: str, task: str | None = None, field: str | None = None):
        self.path, self.task, self.field, self.message = str(path), task, field, message
        where = [self.path]
        if task is not None:
            where.append(f"task {task!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(": ".join(where) + ": " + message)


class ConfigError(WtcError):
    """A run config that cannot work (unknown metric, search kind, cv kind, bad value...)."""


class TrackingError(WtcError):
    """A tracking server that cannot be reached, started or stopped; ``str()`` names its URI or folder."""


def one_line(exc: BaseException | object, limit: int | None = None, with_type: bool = False) -> str:
    """An exception's message on one line (whitespace runs become one space), for a message or a tag.

    An empty message gives the exception's type name; ``with_type`` prefixes ``Type: `` to the
    message; ``limit`` cuts the line to that many characters.
    """
    message, kind = " ".join(str(exc).split()), type(exc).__name__
    text = (f"{kind}: {message}" if with_type else message) if message else kind
    return text[:limit]
