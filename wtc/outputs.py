"""Files a command writes where its user said: never over its own input, never over an existing file
without ``--force``, always atomically (a temp file in the same folder, then ``os.replace``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from wtc.errors import WtcError, one_line

__all__ = ["check_output", "replace_atomically", "write_atomic"]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(path: Path | str, force: bool = False, inputs: Iterable[Path | str] = (),
                 option: str = "--out") -> Path:
    """Refuse, in one line naming the file, to write ``path`` when it is one of ``inputs`` (even with
    ``force``: a command's input is never its output) or already exists and ``force`` is not given."""
    path = Path(path)
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise WtcError(f"{option} {path} is this command's input {given}: choose another file")
    if path.is_dir():
        raise WtcError(f"{option} {path} is a folder: name a file")
    if (path.exists() or path.is_symlink()) and not force:
        raise WtcError(f"{option} {path} exists: pass --force to write over it, or choose another file")
    return path


def replace_atomically(path: Path | str, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp file in ``path``'s folder, then ``os.replace`` it onto ``path``: a
    reader sees the old file or the whole new one. The temp name is unique per process and call, so
    concurrent writers never clash (the last replace wins); unlike ``mkstemp`` it keeps the umask's
    permissions. Any failure removes the temp file and propagates unchanged."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_atomic(path: Path | str, content: str | bytes | Callable[[Path], object], encoding: str = "utf-8") -> Path:
    """Write ``content`` (text, bytes, or a function that writes the file it is given) to ``path``
    with :func:`replace_atomically`, making its folder first. A failure is one WtcError naming the file."""
    path = Path(path)
    if isinstance(content, str):
        def write(tmp: Path) -> object:
            return tmp.write_text(content, encoding=encoding)
    elif isinstance(content, bytes):
        def write(tmp: Path) -> object:
            return tmp.write_bytes(content)
    else:
        write = content
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return replace_atomically(path, write)
    except OSError as exc:
        raise WtcError(f"cannot write {path}: {one_line(exc)}") from None
