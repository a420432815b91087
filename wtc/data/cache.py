"""On-disk cache of parsed histories, keyed by the content hash of the file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_ARRAYS = ("entry_task", "entry_status", "entry_code", "entry_site", "entry_count")


def cache_dir() -> Path:
    """Where parsed histories are kept: ``$WTC_CACHE_DIR`` or ``~/.cache/wtc/histories``."""
    root = os.environ.get("WTC_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "wtc" / "histories"


def content_hash(raw: bytes, salt: str) -> str:
    """SHA-256 of the file's bytes and the loader settings that shape the parsed form."""
    digest = hashlib.sha256(raw)
    digest.update(salt.encode())
    return digest.hexdigest()


def read(digest: str, folder=None) -> dict | None:
    """The cached parse for ``digest``, or None (a damaged entry is ignored and re-parsed)."""
    base = Path(folder or cache_dir()) / digest
    try:
        with np.load(base.with_suffix(".npz")) as arrays:
            payload = {name: arrays[name] for name in _ARRAYS}
        with open(base.with_suffix(".json"), encoding="utf-8") as fh:
            meta = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring a damaged history cache entry %s (%s)", base, exc)
        return None
    meta["skipped"] = [tuple(s) for s in meta["skipped"]]
    payload.update(meta)
    return payload


def write(digest: str, payload: dict, folder=None) -> None:
    """Store a parse atomically; failing to cache is logged, never fatal."""
    folder = Path(folder or cache_dir())
    base = folder / digest
    try:
        folder.mkdir(parents=True, exist_ok=True)
        meta = {k: v for k, v in payload.items() if k not in _ARRAYS}
        # The .json is renamed last: read() needs both, so a half-written entry is never used.
        _atomic_write(base.with_suffix(".npz"), lambda fh: np.savez(fh, **{k: payload[k] for k in _ARRAYS}))
        _atomic_write(base.with_suffix(".json"),
                      lambda fh: fh.write(json.dumps(meta, separators=(",", ":")).encode("utf-8")))
    except OSError as exc:
        log.warning("could not cache the parsed history in %s (%s)", folder, exc)


def _atomic_write(target: Path, write_to) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write_to(fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
