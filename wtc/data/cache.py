"""On-disk cache of parsed histories, keyed by the content hash of the file.

An entry is two files in the cache folder: ``<digest>.npz`` (the entry arrays) and
``<digest>.json`` (vocabularies, parameters, skipped tasks). Each is written to a temporary
file and renamed into place, the ``.json`` last, and both carry the same write id: a write
killed half-way leaves no pair that :func:`read` accepts. The ``.json`` starts with a line
holding the SHA-256 of the rest of its bytes and names the SHA-256 of the ``.npz``: an entry
whose bytes changed (a flipped bit, an edited value, a cut file) is never used. Only regular
files are read (a FIFO at an entry is skipped, not waited on). Anything unreadable or
inconsistent is ignored with a warning, so the caller parses the file again and rewrites
the entry; a damaged cache costs one parse, never a failed run.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np

from wtc.data.files import read_regular
from wtc.outputs import replace_atomically

__all__ = ["FIELDS", "atomic_write", "cache_dir", "content_hash", "read", "write"]

log = logging.getLogger(__name__)

#: The entry arrays, their dtype, and the vocabulary each one indexes (None: the counts).
_ARRAYS = {
    "entry_task": (np.int32, "tasks"),
    "entry_status": (np.int8, "statuses"),
    "entry_code": (np.int32, "codes"),
    "entry_site": (np.int32, "sites"),
    "entry_count": (np.int64, None),
}
_NAME_LISTS = ("tasks", "statuses", "codes", "sites")
#: The History fields an entry stores (all but ``path`` and ``content_hash``).
FIELDS = (*_NAME_LISTS, *_ARRAYS, "parameter_records", "skipped")
_ID = "write_id"
_ARRAYS_SHA = "arrays_sha256"
#: The most bytes of one cache file read (an entry is a few times smaller than its history).
_MAX_ENTRY_BYTES = 8 * 1024**3


class _DamagedEntry(Exception):
    """An entry that exists but cannot be trusted."""


def cache_dir() -> Path:
    """The default cache folder: ``$WTC_CACHE_DIR`` when set, else ``~/.cache/wtc/histories``.

    Set ``WTC_CACHE_DIR`` to move the cache (a scratch disk, a per-job folder), or pass
    ``cache_dir=`` to :func:`wtc.data.load_history` to choose it per call.
    """
    root = os.environ.get("WTC_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "wtc" / "histories"


def content_hash(raw: bytes, salt: str) -> str:
    """SHA-256 of the file's bytes and the loader settings that shape the parsed form."""
    digest = hashlib.sha256(raw)
    digest.update(salt.encode())
    return digest.hexdigest()


def read(digest: str, folder: Path) -> dict | None:
    """The cached parse for ``digest`` in ``folder``, or None when there is none to trust.

    A missing entry is a silent miss; a damaged or inconsistent one (truncated, flipped
    bytes, missing keys or file, arrays of the wrong length, dtype or range) is logged as a
    warning and treated as a miss.
    """
    base = Path(folder) / digest
    meta_path, arrays_path = base.with_suffix(".json"), base.with_suffix(".npz")
    if not meta_path.exists():
        return None  # never committed (the .json is renamed into place last)
    try:
        return _read_entry(meta_path, arrays_path)
    except _DamagedEntry as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure to decode a cache entry means "parse again"
        reason = f"{type(exc).__name__}: {exc}"
    log.warning("ignoring a damaged history cache entry %s (%s); parsing the file again", base, reason)
    return None


def _read_entry(meta_path: Path, arrays_path: Path) -> dict:
    meta_bytes = read_regular(meta_path, _MAX_ENTRY_BYTES)
    checksum, newline, body = meta_bytes.partition(b"\n")
    if not newline or hashlib.sha256(body).hexdigest().encode() != checksum:
        raise _DamagedEntry(f"{meta_path.name} does not match its checksum")
    meta = json.loads(body.decode("utf-8"))
    if not isinstance(meta, dict):
        raise _DamagedEntry(f"{meta_path.name} is not an object")
    missing = [k for k in (*_NAME_LISTS, "parameter_records", "skipped", _ID, _ARRAYS_SHA) if k not in meta]
    if missing:
        raise _DamagedEntry(f"{meta_path.name} lacks {', '.join(missing)}")
    if not arrays_path.exists():
        raise _DamagedEntry(f"{arrays_path.name} is missing")
    arrays_bytes = read_regular(arrays_path, _MAX_ENTRY_BYTES)
    if hashlib.sha256(arrays_bytes).hexdigest() != meta[_ARRAYS_SHA]:
        raise _DamagedEntry(f"{arrays_path.name} does not match the checksum its .json names")
    with np.load(io.BytesIO(arrays_bytes), allow_pickle=False) as stored:
        names = set(stored.files)
        lacking = [k for k in (*_ARRAYS, _ID) if k not in names]
        if lacking:
            raise _DamagedEntry(f"{arrays_path.name} lacks {', '.join(lacking)}")
        if str(stored[_ID]) != meta[_ID]:
            raise _DamagedEntry("the .npz and the .json come from different writes")
        payload = {name: stored[name] for name in _ARRAYS}
    for name in (*_NAME_LISTS, "parameter_records", "skipped"):
        payload[name] = meta[name]
    _check_consistent(payload)
    payload["skipped"] = [tuple(s) for s in payload["skipped"]]
    return payload


def _check_consistent(payload: dict) -> None:
    """Raise _DamagedEntry unless the payload could have come from the loader."""
    for name in _NAME_LISTS:
        values = payload[name]
        if not isinstance(values, list) or not all(type(v) is str for v in values):
            raise _DamagedEntry(f"{name} is not a list of names")
    records = payload["parameter_records"]
    if not isinstance(records, list) or len(records) != len(payload["tasks"]):
        raise _DamagedEntry("parameter_records do not match the tasks")
    if not all(r is None or type(r) is dict for r in records):
        raise _DamagedEntry("parameter_records hold something other than objects")
    skipped = payload["skipped"]
    if not isinstance(skipped, list) or not all(isinstance(s, list) and len(s) == 2 for s in skipped):
        raise _DamagedEntry("skipped is not a list of (task, reason)")
    size = payload["entry_count"].shape
    for name, (dtype, indexes) in _ARRAYS.items():
        array = payload[name]
        if array.dtype != dtype or array.ndim != 1:
            raise _DamagedEntry(f"{name} is {array.dtype}[{array.ndim}d], expected 1-d {np.dtype(dtype)}")
        if array.shape != size:
            raise _DamagedEntry(f"{name} has {array.size} entries, entry_count {size[0]}")
        if array.size:
            low, high = (1, np.iinfo(dtype).max) if indexes is None else (0, len(payload[indexes]) - 1)
            if array.min() < low or array.max() > high:
                raise _DamagedEntry(f"{name} holds values outside [{low}, {high}]")


def write(digest: str, payload: dict, folder: Path) -> None:
    """Store a parse in ``folder`` atomically; failing to cache is logged, never fatal."""
    folder = Path(folder)
    base = folder / digest
    write_id = uuid.uuid4().hex
    meta = {k: v for k, v in payload.items() if k not in _ARRAYS}
    meta[_ID] = write_id
    arrays = {k: np.asarray(payload[k], dtype=dtype) for k, (dtype, _) in _ARRAYS.items()}
    arrays[_ID] = np.asarray(write_id)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        arrays_bytes = buffer.getvalue()
        meta[_ARRAYS_SHA] = hashlib.sha256(arrays_bytes).hexdigest()
        body = json.dumps(meta, separators=(",", ":")).encode("utf-8")
        # The .json is renamed last, names the write id and the checksum of the .npz, and
        # starts with its own checksum: read() trusts only a whole, matching pair.
        atomic_write(base.with_suffix(".npz"), lambda fh: fh.write(arrays_bytes))
        atomic_write(base.with_suffix(".json"),
                     lambda fh: fh.write(hashlib.sha256(body).hexdigest().encode() + b"\n" + body))
    except (OSError, TypeError, ValueError, RecursionError) as exc:
        log.warning("could not cache the parsed history in %s (%s)", folder, exc)


def atomic_write(target: Path, write_to) -> None:
    """Write ``target`` through ``write_to(binary file)`` with :func:`wtc.outputs.replace_atomically`:
    a reader sees the old file or the whole new one, never a part."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            write_to(fh)

    replace_atomically(target, write)
