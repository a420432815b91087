"""Files a command writes where its user said: never over its own input, never over an existing file
without ``--force``, always atomically (a temp file in the same folder, then ``os.replace``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from wtc.errors import WtcError, one_line

__all__ = ["check_output", "write_atomic"]


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


def write_atomic(path: Path | str, content: str | bytes | Callable[[Path], object], encoding: str = "utf-8") -> Path:
    """Write ``content`` (text, bytes, or a function that writes the file it is given) to ``path`` through
    a temp file in the same folder and ``os.replace``: the file is whole or as it was. A failure is one
    WtcError naming the file; the temp file is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            tmp.write_text(content, encoding=encoding)
        elif isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            content(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise WtcError(f"cannot write {path}: {one_line(exc)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
