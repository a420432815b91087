"""Reading a file whole, safely: only a regular file, only up to a size bound, never a hang.

A FIFO opened for reading blocks until a writer comes; ``/dev/zero`` never ends. Every file wtc
reads whole (a history, a cache entry) goes through :func:`read_regular`: it opens without
blocking, refuses anything but a regular file, and refuses a file above the bound before reading it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "NotRegularFile", "TooLarge", "max_bytes", "read_regular"]

#: The largest history read by default: real histories are a few hundred MB at most.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Set to a number of bytes to move the bound (e.g. ``WTC_MAX_HISTORY_BYTES=8000000000``).
MAX_BYTES_ENV = "WTC_MAX_HISTORY_BYTES"


class NotRegularFile(OSError):
    """A path that is a FIFO, a device, a socket or a folder: not read (it could block or never end)."""


class TooLarge(OSError):
    """A regular file above the size bound."""


def max_bytes() -> int:
    """The size bound: ``$WTC_MAX_HISTORY_BYTES`` when it is a positive integer, else 2 GiB."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if text.isascii() and text.isdigit() and int(text) > 0:
        return int(text)
    return DEFAULT_MAX_BYTES


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` (default :func:`max_bytes`) of them.

    Raises :class:`NotRegularFile` (its ``strerror`` says what it is), :class:`TooLarge`, or the
    OSError of opening or reading. Opening is non-blocking, so a FIFO without a writer is
    refused at once instead of waiting for one.
    """
    limit = max_bytes() if limit is None else limit
    fd = os.open(Path(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(0, f"{_kind(info.st_mode)}, not a regular file; only regular files are read")
        if info.st_size > limit:
            raise TooLarge(0, f"{info.st_size} bytes, more than the {limit} read at most "
                              f"(set {MAX_BYTES_ENV} to raise the bound)")
        # A regular file never blocks; O_NONBLOCK is dropped anyway for clarity on odd filesystems.
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as fh:
            fd = -1
            data = fh.read(limit + 1)
        if len(data) > limit:  # grew while being read
            raise TooLarge(0, f"more than the {limit} bytes read at most (set {MAX_BYTES_ENV} to raise the bound)")
        return data
    finally:
        if fd >= 0:
            os.close(fd)
