"""Read and validate WTC actions-history files into one History, parsed once and cached."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import is_not, ne, sub
from pathlib import Path
from typing import Union

import msgspec
import numpy as np
import pandas as pd

from wtc.data import cache
from wtc.data.decode import TOO_DEEP, decode, read_history_bytes
from wtc.data.history import History
from wtc.data.validation import (
    DECISION_FIELDS,
    MAX_TASK_NAME,
    TaskError,
    check_decision,
    dense_to_sparse,
    is_exit_code,
    name_problem,
    task_names_problem,
    valid_tasks,
)
from wtc.data.vocabulary import code_sort_key
from wtc.errors import HistoryError

__all__ = ["LOADER_VERSION", "load_history", "parse_history_bytes", "read_history_bytes"]

#: Bump when the parsed representation changes, so stale caches are never read.
#: 3: stricter validation (canonical codes, site names, duplicate keys, per-task skips).
LOADER_VERSION = 3
#: Bump when the rules change what a file parses to without changing the hash of a valid file
#: (``History.content_hash``, which runs log, stays put): cache entries of older rules are not read.
#: 2: checksummed entries; statuses given twice, look-alike names and isolated deep tasks refused.
CACHE_RULES = 2
KNOWN_STATUSES = ("good", "bad")


def load_history(path, strict: bool = True, use_cache: bool = True, cache_dir=None) -> History:
    """Read a WTC actions-history JSON file.

    Parameters
    ----------
    path : str or Path
        The actions-history file: ``{task: {"errors": {status: matrix}, "parameters": {...}}}``
        where each matrix is sparse (``{code: {site: count}}``) or dense
        (``{"codes": [...], "sites": [...], "matrix": [[count per site] per code]}``).
    strict : bool
        When True (default) the first malformed task raises :class:`HistoryError` naming the
        file, the task and the field. When False malformed tasks are skipped and listed in
        ``History.skipped`` as ``(task, "<field>: <reason>")``; a task name that occurs twice
        skips every task of that name. What is valid is listed in ``wtc.data.validation``.
        Either way, a file that is not JSON, is nested too deeply, holds no valid task, or has
        no non-zero count under ``good_sites`` or ``bad_sites`` raises HistoryError.
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
    raw = read_history_bytes(path)
    digest = cache.content_hash(raw, f"v{LOADER_VERSION}-strict{int(strict)}")
    folder = Path(cache_dir) if cache_dir is not None else cache.cache_dir()
    key = f"{digest}-r{CACHE_RULES}"
    if use_cache:
        with _gc_paused():
            cached = cache.read(key, folder)
        if cached is not None:
            return History(path=path, content_hash=digest, **cached)
    history = _parse(path, raw, digest, strict)
    if use_cache:
        cache.write(key, {name: getattr(history, name) for name in cache.FIELDS}, folder)
    return history


def parse_history_bytes(raw: bytes, path, strict: bool = True) -> History:
    """An actions history held in memory, read by :func:`load_history`'s rules (no file, no cache).

    ``path`` only names the history in errors and in ``History.path``; a served batch of tasks is
    checked this way without a temporary file.
    """
    path = Path(path)
    return _parse(path, raw, cache.content_hash(raw, f"v{LOADER_VERSION}-strict{int(strict)}"), strict)


def _status_name(key: str) -> str:
    return key[: -len("_sites")] if key.endswith("_sites") else key


@contextmanager
def _gc_paused():
    # Parsing (and reading a cache entry) allocates a few objects per count and frees none
    # of them: the cyclic garbage collector would walk the growing heap again and again for
    # nothing (it made the first load 2-3x slower once other objects were alive).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse(path: Path, raw: bytes, digest: str, strict: bool) -> History:
    with _gc_paused():
        history = _assemble(path, digest, _parse_columns(path, raw, strict))
    if not (history.entry_status < len(KNOWN_STATUSES)).any():
        # Nothing to learn from: the good and bad views would have no column (and with every
        # status renamed, the file is not what it claims to be); the run would fail much
        # later, in scikit-learn.
        other = [s for s in history.statuses if s not in KNOWN_STATUSES]
        raise HistoryError(path, "no task has a non-zero error count under good_sites or bad_sites"
                                 + (f" (other statuses: {', '.join(other)})" if other else ""))
    return history


def _parse_columns(path: Path, raw: bytes, strict: bool) -> _Columns:
    """The fast path (typed decode, checks in bulk); on any problem the careful one."""
    try:
        tasks = _TASKS.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # a ValidationError is a DecodeError
        tasks = None
    except RecursionError:
        if strict:
            raise HistoryError(path, TOO_DEEP) from None
        tasks = None  # the careful path decodes each task alone
    if tasks:
        plain_text = raw.isascii() and b"\\" not in raw and b"\x7f" not in raw
        # numpy counts bytes ~9x faster than bytes.count (SIMD compare, no per-match call).
        n_colons = int(np.count_nonzero(np.frombuffer(raw, np.uint8) == ord(":")))
        columns = _collect(tasks, counts_typed=True, plain_text=plain_text)
        parameters = None if columns is None else _parameter_records(columns.parameter_records)
        # Each key is followed by one colon: as many colons as keys decoded proves that no
        # object holds a key twice (a repeated key adds a colon but no decoded key). A colon
        # inside a string breaks the equality too, and the careful path looks closer.
        if parameters is None or n_colons != columns.n_keys + parameters[1]:
            columns = None
        else:
            columns.parameter_records = parameters[0]
    else:
        columns = None
    if columns is None:
        # Something is wrong somewhere: decode again with json, whose errors say where the
        # file is broken, and check task by task, which names the task and field (strict)
        # or leaves out just the tasks concerned (strict=False).
        valid, skipped = valid_tasks(path, decode(path, raw, strict), strict)
        columns = _collect({t: _Task(r["errors"], r.get("parameters")) for t, r in valid.items()},
                           counts_typed=False, checked=True)
        if columns is None:
            raise AssertionError(f"{path}: the bulk checks reject tasks the per-task checks accept")
        columns.skipped = skipped
    return columns


# What msgspec checks while it decodes (in C, while each object is fresh in the CPU cache):
# the top level is an object of task objects, each with an "errors" object of status
# objects and nothing else but "parameters"; a sparse row is an object of integers (msgspec
# refuses bools, floats and strings there; _count_array checks the range). Strings are valid
# UTF-8 without lone surrogates, numbers are never NaN or Infinity. A dense matrix's lists are
# checked by dense_to_sparse and _count_array. "parameters" stays raw JSON text (empty when
# absent): _parameter_records decodes and checks each distinct text once.
class _Task(msgspec.Struct, forbid_unknown_fields=True):
    errors: dict[str, dict[str, Union[dict[str, int], list]]]
    parameters: msgspec.Raw = msgspec.Raw()  # the careful path puts the checked dict (or None)


_TASKS = msgspec.json.Decoder(dict[str, _Task])
_JSON = msgspec.json.Decoder()


@dataclass
class _Columns:
    """What _collect gathers: flat columns, turned into entries by _assemble.

    A *row* is one ``{site: count}`` object (one code of one status of one task);
    ``site_names`` and ``counts`` hold its sites and counts, ``row_len`` of them per row.
    """

    tasks: list[str]
    statuses: list[str]
    row_task: np.ndarray
    row_status: np.ndarray
    row_code_names: list[str]
    row_len: list[int]
    site_names: list[str]
    counts: np.ndarray
    parameter_records: list
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_keys: int = 0  # the keys of errors' objects in the file


def _collect(tasks: dict[str, _Task], counts_typed: bool, plain_text: bool = False,
             checked: bool = False) -> _Columns | None:
    """Gather the columns of the tasks' errors, checking them in bulk; parameters as they come.

    The loader's hot path. Every check of ``validation.check_task`` on errors runs, but none
    per row or count in Python: a status matrix's codes, row lengths, sites and counts are
    gathered by C iterators, and names, counts, codes and sites are checked over the whole
    file (distinct values only) at once. Each object is visited once, while it is in the CPU
    cache: a second pass over a column of dicts costs more than the work done on it. Returns
    None when anything is wrong, without saying what. ``counts_typed``: msgspec already
    checked the count types. ``plain_text``: the file is ASCII without escapes or DEL, so
    every string in it is printable (JSON forbids raw control characters in strings).
    ``checked``: the careful path checked each task already (no task gives a status twice).
    """
    names = list(tasks)
    # Task names look like /<workflow>/<task>: a leading "/" and another one inside.
    if not all(map(str.startswith, names, repeat("/"))) or -1 in map(str.find, map(str.strip, names, repeat("/")),
                                                                      repeat("/")):
        return None
    if max(map(len, names), default=0) > MAX_TASK_NAME or not (plain_text or all(map(str.isprintable, names))):
        return None
    if task_names_problem(names, plain_text):
        return None
    task_matrices, status_keys, matrix_rows = [], [], []  # per task: matrices; per matrix: status, rows
    row_code_names, row_len, site_names, counts = [], [], [], []  # code, length per row; site, count per count
    params = []
    # Keys in the file that are not a task, status, code or site key: "errors" and the keys of
    # dense matrices, less the row keys a dense matrix expands to.
    other_keys = len(names)
    # Bound methods hoisted out of the loop: it runs once per task and status.
    add_matrices, add_status, add_rows = task_matrices.append, status_keys.append, matrix_rows.append
    add_codes, add_lens, add_sites, add_counts = row_code_names.extend, row_len.extend, site_names.extend, counts.extend
    add_params = params.append
    flatten, dict_values = chain.from_iterable, dict.values
    try:
        for record in tasks.values():
            errors = record.errors
            add_matrices(len(errors))
            for status_key, matrix in errors.items():
                if "matrix" in matrix:
                    dense_keys = len(matrix)
                    matrix, counts_typed = dense_to_sparse(matrix, ""), False
                    other_keys += dense_keys - len(matrix) - sum(map(len, matrix.values()))
                rows = matrix.values()
                add_status(status_key)
                add_rows(len(matrix))
                add_codes(matrix)
                add_lens(map(len, rows))
                add_sites(flatten(rows))
                add_counts(flatten(map(dict_values, rows)))  # TypeError for a row that is a list
            add_params(record.parameters)
    except (TaskError, TypeError):
        return None
    count_array = _count_array(counts, check_types=not counts_typed)
    if count_array is None or not all(map(is_exit_code, set(row_code_names))):
        return None
    if any(map(name_problem, set(site_names))) or any(map(name_problem, map(_status_name, set(status_keys)))):
        return None
    # Statuses in order of first appearance after the known ones; "<status>_sites" is <status>.
    distinct_keys = set(status_keys)
    if not checked and len(set(map(_status_name, distinct_keys))) != len(distinct_keys):
        return None  # "good" and "good_sites" in the file: the careful path checks no task holds both
    status_index = {s: i for i, s in enumerate(KNOWN_STATUSES)}
    index_of_key = {k: status_index.setdefault(_status_name(k), len(status_index)) for k in dict.fromkeys(status_keys)}
    matrix_status = np.fromiter(map(index_of_key.__getitem__, status_keys), dtype=np.int8, count=len(status_keys))
    matrix_task = np.repeat(np.arange(len(names), dtype=np.int32), task_matrices)
    row_task, row_status = np.repeat(matrix_task, matrix_rows), np.repeat(matrix_status, matrix_rows)
    n_keys = other_keys + len(names) + len(status_keys) + len(row_code_names) + len(site_names)
    return _Columns(names, list(status_index), row_task, row_status, row_code_names, row_len, site_names,
                    count_array, params, n_keys=n_keys)


def _parameter_records(texts: list[msgspec.Raw]) -> tuple[list[dict | None], int] | None:
    """Each task's parameters (None when absent) and the number of keys they hold, or None on a problem.

    ``texts`` are the tasks' raw ``parameters`` (empty when absent). A workflow's tasks carry
    the same parameters: each distinct text is decoded and checked once, and its tasks share
    the one dict (thousands of equal dicts would also cost the garbage collector a walk each
    time it runs). Equal text means equal values of equal types (``3000``, ``3000.0`` and
    ``"3000"``, ``true`` and ``1``, differ as text), so no task escapes a check. The fields
    must be the decision fields and ``sites``: the careful path checks any other.
    """
    # The tasks of a workflow come one after another: compare each text with the one before
    # (in C, no copy) and copy only the first of each run.
    first = [True, *map(ne, texts[1:], texts)]
    starts = list(compress(range(len(texts)), first))
    runs = list(map(sub, [*starts[1:], len(texts)], starts))
    heads = list(map(bytes, compress(texts, first)))
    distinct = dict.fromkeys(heads)
    distinct.pop(b"", None)
    try:
        # Every text is one whole JSON value (msgspec found where it ends): as an array, one decode.
        decoded = _JSON.decode(b"[" + b",".join(distinct) + b"]")
        if not (_DICT_ONLY.issuperset(map(type, decoded))
                and _KNOWN_PARAMETERS.issuperset(chain.from_iterable(decoded))):
            return None
        columns = [list(map(dict.get, decoded, repeat(name))) for name in DECISION_FIELDS]
        # Types are part of a decision: 3000 and "3000", True and 1, are checked apart.
        for decision in set(zip(*columns, *[map(type, column) for column in columns])):  # TypeError: unhashable
            check_decision(*decision[:len(DECISION_FIELDS)])
    except (msgspec.DecodeError, RecursionError, TaskError, TypeError):
        return None
    site_lists = list(map(dict.get, decoded, repeat("sites")))
    site_lists = list(compress(site_lists, map(is_not, site_lists, repeat(None))))  # null: no sites
    if not (_LIST_ONLY.issuperset(map(type, site_lists))
            and _STR_ONLY.issuperset(map(type, chain.from_iterable(site_lists)))
            and not any(map(name_problem, set(chain.from_iterable(site_lists))))):
        return None
    records = dict(zip(distinct, decoded))
    shared = list(chain.from_iterable(map(repeat, map(records.get, heads), runs)))  # None where absent
    # The "parameters" keys (a non-empty text is one) and the keys inside.
    return shared, sum(compress(runs, heads)) + sum(map(len, filter(None, shared)))


_LIST_ONLY, _INT_ONLY, _STR_ONLY, _DICT_ONLY = frozenset({list}), frozenset({int}), frozenset({str}), frozenset({dict})


_KNOWN_PARAMETERS = frozenset({*DECISION_FIELDS, "sites"})


def _count_array(counts: list, check_types: bool) -> np.ndarray | None:
    """The counts as int64, or None unless every one is a non-negative integer below 2**63."""
    if check_types and not _INT_ONLY.issuperset(map(type, counts)):  # bools too: type(True) is bool
        return None
    try:
        array = np.asarray(counts, dtype=np.int64)
    except OverflowError:
        return None
    return None if array.size and array.min() < 0 else array


def _assemble(path: Path, digest: str, columns: _Columns) -> History:
    """Entries from the columns: zeros dropped, vocabularies sorted, indices remapped."""
    count = columns.counts
    nonzero = count > 0
    row_len = np.asarray(columns.row_len, dtype=np.int64)
    row_code, code_uniques = pd.factorize(np.asarray(columns.row_code_names, dtype=object))
    site_codes, site_uniques = pd.factorize(np.asarray(columns.site_names, dtype=object))
    # Vocabularies are sorted (codes numerically) so the same content always gives the same
    # columns, whatever the order of tasks in the file. Sorting the few distinct values here
    # is much cheaper than factorize(sort=True).
    codes = sorted(code_uniques.tolist(), key=code_sort_key)
    code_remap = _remap(code_uniques.tolist(), codes)
    # Sites only seen with zero counts are not part of the vocabulary.
    used = np.zeros(len(site_uniques), dtype=bool)
    used[site_codes[nonzero]] = True
    site_remap = np.full(len(site_uniques), -1, dtype=np.int32)
    sites = sorted(site_uniques[used].tolist())
    site_remap[used] = _remap(site_uniques[used].tolist(), sites)

    def per_entry(per_row):
        return np.repeat(per_row, row_len)[nonzero]

    return History(
        path=path,
        content_hash=digest,
        tasks=columns.tasks,
        statuses=columns.statuses,
        codes=codes,
        sites=sites,
        entry_task=per_entry(columns.row_task),
        entry_status=per_entry(columns.row_status),
        entry_code=per_entry(code_remap[row_code]),
        entry_site=site_remap[site_codes[nonzero]].astype(np.int32),
        entry_count=count[nonzero],
        parameter_records=columns.parameter_records,
        skipped=columns.skipped,
    )


def _remap(values: list[str], order: list[str]) -> np.ndarray:
    """The position in ``order`` of each of ``values``."""
    position = {v: i for i, v in enumerate(order)}
    return np.fromiter(map(position.__getitem__, values), dtype=np.int32, count=len(values))
