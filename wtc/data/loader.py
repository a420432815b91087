"""Read and validate WTC actions-history files into one History, parsed once and cached."""

from __future__ import annotations

import gc
import json
import logging
from itertools import chain
from pathlib import Path

import numpy as np
import pandas as pd

from wtc.data import cache
from wtc.data.history import History
from wtc.data.targets import ACTION_GROUPS, memory_bucket, normalise_splitting, normalise_xrootd
from wtc.data.vocabulary import code_sort_key
from wtc.errors import HistoryError

__all__ = ["LOADER_VERSION", "load_history"]

log = logging.getLogger(__name__)

#: Bump when the parsed representation changes, so stale caches are never read.
LOADER_VERSION = 2
KNOWN_STATUSES = ("good", "bad")


class _TaskError(Exception):
    """Raised inside the parser for one bad task; becomes a HistoryError or a skip."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def load_history(path, strict: bool = True, use_cache: bool = True, cache_dir=None) -> History:
    """Read a WTC actions-history JSON file.

    Parameters
    ----------
    path : str or Path
        The actions-history file: ``{task: {"errors": {status: matrix}, "parameters": {...}}}``
        where each matrix is sparse (``{code: {site: count}}``) or dense
        (``{"codes": [...], "sites": [...], "matrix": [[count per site] per code]}``).
    strict : bool
        When True (default) the first malformed task raises :class:`HistoryError`. When False
        malformed tasks are skipped and listed in ``History.skipped`` with the reason.
    use_cache : bool
        Reuse the parsed form cached under the file's content hash, and cache a fresh parse
        (see ``wtc.data.cache``). A damaged cache entry is ignored with a warning and rewritten.
    cache_dir : str or Path, optional
        The cache folder; None (default) means :func:`wtc.data.cache.cache_dir`, i.e.
        ``$WTC_CACHE_DIR`` when set, else ``~/.cache/wtc/histories``.

    Returns
    -------
    History
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HistoryError(path, f"cannot read the file ({exc.strerror or exc})") from None
    digest = cache.content_hash(raw, f"v{LOADER_VERSION}-strict{int(strict)}")
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir()
    if use_cache:
        cached = cache.read(digest, folder)
        if cached is not None:
            return History(path=path, content_hash=digest, **cached)
    history = _parse(path, raw, digest, strict)
    if use_cache:
        cache.write(digest, _cache_payload(history), folder)
    return history


def _cache_payload(history: History) -> dict:
    return {
        name: getattr(history, name)
        for name in ("tasks", "statuses", "codes", "sites", "entry_task", "entry_status", "entry_code",
                     "entry_site", "entry_count", "parameter_records", "skipped")
    }


def _decode(path: Path, raw: bytes) -> dict:
    if not raw.strip():
        raise HistoryError(path, "the file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HistoryError(path, f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise HistoryError(path, f"the top level must be an object of tasks, got {type(data).__name__}")
    # json keeps the last of duplicate keys silently; task names are the only keys that start
    # with "/", so a cheap byte count tells whether the slow duplicate search is needed.
    if raw.count(b'"/') > len(data):
        _find_duplicate_task(path, text)
    return data


def _find_duplicate_task(path: Path, text: str) -> None:
    def top_level_hook(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen and key.startswith("/"):
                raise HistoryError(path, "duplicate task name", task=key)
            seen.add(key)
        return dict(pairs)

    json.loads(text, object_pairs_hook=top_level_hook)


def _status_name(key: str) -> str:
    return key[: -len("_sites")] if key.endswith("_sites") else key


def _parse(path: Path, raw: bytes, digest: str, strict: bool) -> History:
    # Parsing allocates a few objects per count and frees none of them: the cyclic garbage
    # collector would walk the growing heap again and again for nothing (it made the first
    # load 2-3x slower once other objects were alive).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _decode_and_parse(path, raw, digest, strict)
    finally:
        if enabled:
            gc.enable()


def _decode_and_parse(path: Path, raw: bytes, digest: str, strict: bool) -> History:
    data = _decode(path, raw)
    if not data:
        raise HistoryError(path, "the file holds no tasks")
    history = _parse_tasks(path, data, digest, strict, check_rows=False)
    if history is None:
        # Some count is not a non-negative integer: parse again row by row, which names the
        # task and field (strict) or skips just the tasks concerned (strict=False).
        history = _parse_tasks(path, data, digest, strict, check_rows=True)
    return history


def _parse_tasks(path: Path, data: dict, digest: str, strict: bool, check_rows: bool) -> History | None:
    """One pass over the tasks. Returns None when ``check_rows`` is off and a count is bad.

    The loop is the loader's hot path: per row it only extends flat lists; the counts are
    checked once for the whole file with C-level calls, and zeros, site indices and the
    per-entry task/status/code columns are produced afterwards with numpy (see _assemble).
    """
    status_index = {s: i for i, s in enumerate(KNOWN_STATUSES)}
    status_of_key: dict[str, int] = {}
    code_index: dict[str, int] = {}
    rows: list[tuple[int, int, int, int]] = []  # (task, status, code, sites in the row)
    site_names: list[str] = []
    counts: list[int] = []
    tasks: list[str] = []
    params: list[dict | None] = []
    skipped: list[tuple[str, str]] = []
    valid_parameters: set = set()
    last_valid = None
    int_only, str_only = {int}, {str}
    # Bound methods hoisted out of the loop: it runs once per task, status and row.
    add_row, add_sites, add_counts, code_of = rows.append, site_names.extend, counts.extend, code_index.get

    for task, record in data.items():
        marks = None if strict else (len(rows), len(counts))
        try:
            if task[:1] != "/" or "/" not in task.strip("/"):
                raise _TaskError("<name>", "task names look like /<workflow>/<task>")
            if type(record) is not dict:
                raise _TaskError("<task>", f"must be an object, got {type(record).__name__}")
            errors = record.get("errors")
            if type(errors) is not dict:
                raise _TaskError("errors", "missing or not an object of status -> matrix")
            t = len(tasks)
            for status_key, matrix in errors.items():
                s = status_of_key.get(status_key)
                if s is None:
                    s = status_of_key[status_key] = status_index.setdefault(_status_name(status_key), len(status_index))
                if type(matrix) is not dict or "matrix" in matrix:
                    matrix = _dense_to_sparse(matrix, f"errors.{status_key}")
                for code, row in matrix.items():
                    c = code_of(code)
                    if c is None:
                        _check_code(code, f"errors.{status_key}.{code}")
                        c = code_index.setdefault(code, len(code_index))
                    if type(row) is not dict:
                        raise _TaskError(f"errors.{status_key}.{code}",
                                         f"must be an object {{site: count}}, got {type(row).__name__}")
                    values = row.values()
                    if check_rows and (not int_only.issuperset(map(type, values)) or (values and min(values) < 0)):
                        bad_site = next(k for k, n in row.items() if type(n) is not int or n < 0)
                        raise _TaskError(f"errors.{status_key}.{code}.{bad_site}",
                                         f"count must be a non-negative integer, got {row[bad_site]!r}")
                    add_sites(row)
                    add_counts(values)
                    add_row((t, s, c, len(row)))
            parameters = record.get("parameters")
            # Tasks of a workflow repeat one decision: check each distinct one once (the
            # previous task's is compared first, since a workflow's tasks are consecutive).
            if (parameters is not None or "parameters" in record) and parameters != last_valid:
                try:
                    get = parameters.get
                    key = (parameters["action"], get("splitting"), get("xrootd"), get("memory"), type(get("xrootd")))
                    known = key in valid_parameters
                except (TypeError, KeyError, AttributeError):
                    key, known = None, False
                if not known:
                    _check_parameters(parameters, "parameters" in record)
                    if key is not None:
                        valid_parameters.add(key)
                sites = parameters.get("sites")
                if sites is not None and (type(sites) is not list or not str_only.issuperset(map(type, sites))):
                    raise _TaskError("parameters.sites", "must be a list of site names")
                last_valid = parameters
            params.append(parameters)
            tasks.append(task)
        except _TaskError as exc:
            if strict:
                raise HistoryError(path, exc.message, task=task, field=exc.field) from None
            del rows[marks[0]:], site_names[marks[1]:], counts[marks[1]:]
            skipped.append((task, f"{exc.field}: {exc.message}"))
    if not check_rows and counts and (not int_only.issuperset(map(type, counts)) or min(counts) < 0):
        return None
    if skipped:
        log.warning("%s: skipped %d malformed task(s); first: %s: %s", path, len(skipped), *skipped[0])
    if not tasks:
        raise HistoryError(path, f"no valid task (skipped {len(skipped)})")
    return _assemble(path, digest, tasks, status_index, code_index, rows, site_names, counts, params, skipped)


def _check_code(code: str, where: str) -> None:
    body = code[1:] if code.startswith("-") else code
    if not body.isdigit():
        raise _TaskError(where, f"exit code must be an integer, got {code!r}")


def _dense_to_sparse(dense, where: str) -> dict:
    if type(dense) is not dict:
        raise _TaskError(where, f"must be an object {{code: {{site: count}}}}, got {type(dense).__name__}")
    codes, sites, matrix = dense.get("codes"), dense.get("sites"), dense.get("matrix")
    if not (isinstance(codes, list) and isinstance(sites, list) and isinstance(matrix, list)):
        raise _TaskError(where, 'a dense matrix needs lists "codes", "sites" and "matrix"')
    if len(matrix) != len(codes):
        raise _TaskError(f"{where}.matrix", f"has {len(matrix)} rows for {len(codes)} codes")
    sparse: dict = {}
    for code, row in zip(codes, matrix):
        if not isinstance(row, list) or len(row) != len(sites):
            raise _TaskError(f"{where}.matrix", f"row of code {code!r} must list {len(sites)} counts")
        sparse[str(code)] = {str(site): n for site, n in zip(sites, row)}
    return sparse


def _check_parameters(parameters, present: bool) -> dict | None:
    # The decision fields only; ``sites`` differs per task and is checked in the loop.
    if parameters is None:
        if present:
            raise _TaskError("parameters", "is null; leave it out for an unlabelled task")
        return None
    if type(parameters) is not dict:
        raise _TaskError("parameters", f"must be an object, got {type(parameters).__name__}")
    action = parameters.get("action")
    if action not in ACTION_GROUPS:
        raise _TaskError("parameters.action", f"must be one of {', '.join(ACTION_GROUPS)}, got {action!r}")
    for name, check in (("splitting", normalise_splitting), ("xrootd", normalise_xrootd), ("memory", memory_bucket)):
        try:
            check(parameters.get(name))
        except ValueError as exc:
            raise _TaskError(f"parameters.{name}", str(exc)) from None
    return parameters


def _assemble(path, digest, tasks, status_index, code_index, rows, site_names, counts, params, skipped) -> History:
    # fromiter over the flattened tuples is ~4x faster than np.array on a list of tuples.
    row_table = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=4 * len(rows)).reshape(-1, 4)
    row_task, row_status, row_code, row_len = row_table.T
    try:
        count = np.asarray(counts, dtype=np.int64)
    except OverflowError:
        raise HistoryError(path, "an error count does not fit in 64 bits") from None
    nonzero = count > 0
    site_codes, site_uniques = pd.factorize(np.asarray(site_names, dtype=object), sort=True)
    statuses = list(status_index)
    # Vocabularies are sorted (codes numerically) so the same content always gives the same
    # columns, whatever the order of tasks in the file.
    codes = sorted(code_index, key=code_sort_key)
    code_remap = np.empty(len(code_index), dtype=np.int32)
    code_remap[[code_index[c] for c in codes]] = np.arange(len(codes), dtype=np.int32)
    # Sites only seen with zero counts are not part of the vocabulary.
    used_sites = np.unique(site_codes[nonzero])
    site_remap = np.full(len(site_uniques), -1, dtype=np.int32)
    site_remap[used_sites] = np.arange(used_sites.size, dtype=np.int32)

    def per_entry(values, dtype):
        return np.repeat(np.asarray(values, dtype=dtype), row_len)[nonzero]

    return History(
        path=path,
        content_hash=digest,
        tasks=tasks,
        statuses=statuses,
        codes=codes,
        sites=[str(s) for s in site_uniques[used_sites]],
        entry_task=per_entry(row_task, np.int32),
        entry_status=per_entry(row_status, np.int8),
        entry_code=code_remap[per_entry(row_code, np.int64)],
        entry_site=site_remap[site_codes[nonzero]].astype(np.int32),
        entry_count=count[nonzero],
        parameter_records=params,
        skipped=skipped,
    )
