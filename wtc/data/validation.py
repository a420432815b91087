"""What a valid history holds, value by value: the rules both loader paths share, and the careful path.

The loader's fast path (``wtc.data.loader``) applies these rules in bulk and falls back, on any
doubt, to :func:`valid_tasks`, which checks one task at a time and names the task and the field
at fault. What is valid:

- a task name is ``/<workflow>/<task>[/...]``, printable, at most 1000 characters, without an
  empty part (``//``, a trailing ``/``) or a part that starts or ends with a space;
- every name (task, status, site) is in Unicode NFKC form: a look-alike (``café`` written
  decomposed, fullwidth ``Ｔ１``) would otherwise name a second task or site;
- a task object holds ``errors`` and, when labelled, ``parameters`` (nothing else);
- ``errors`` maps a status (``good_sites``, ``bad_sites``, any other ``<status>[_sites]``) to a
  sparse matrix ``{code: {site: count}}`` or a dense one
  ``{"codes": [...], "sites": [...], "matrix": [[count per site] per code]}`` with distinct
  codes and distinct sites;
- an exit code is a canonical decimal integer of at most 10 digits (``"-1"``, ``"85"``; not
  ``"050660"``, ``"-0"``, ``"²"``); a count is a JSON integer in [0, 2**63);
- a status or site name is printable, 1-200 characters, without ``:`` (the separator of
  feature names such as ``good:85:T1_US_FNAL``) and without a leading or trailing space;
- a task gives each status once: ``good`` and ``good_sites`` are the same status (summing them
  would be a silent guess);
- ``parameters`` holds a valid decision (``action``, ``splitting``, ``xrootd``, ``memory``,
  ``cores``; a memory given as text is ASCII digits: not ``"1_000_000"`` or ``"３０００"``), ``sites`` a list of site names, and any other field a JSON scalar (numbers finite
  and within 64 bits) or a list of them;
- no object anywhere holds the same key twice (decoders keep the last value silently).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from pathlib import Path

from wtc.data.targets import FIELD_CHECKS
from wtc.errors import HistoryError

__all__ = ["DECISION_FIELDS", "TaskError", "dense_to_sparse", "is_exit_code", "name_problem", "pairs_hook",
           "parameter_values_ok", "valid_tasks"]

log = logging.getLogger("wtc.data.loader")

MAX_NAME = 200
MAX_TASK_NAME = 1000
_CODE_RE = re.compile(r"-?(?:0|[1-9][0-9]{0,9})")
_SPLIT_RE = re.compile(r"[1-9][0-9]*x|max")
_CORES_RE = re.compile(r"[1-9][0-9]{0,5}")
_MEMORY_TEXT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_INT64 = 2**63
_SCALARS = frozenset({str, int, float, bool, type(None)})
_DENSE_KEYS = frozenset({"codes", "sites", "matrix"})
_TASK_KEYS = ("errors", "parameters")


class TaskError(Exception):
    """Raised inside the parser for one bad task; becomes a HistoryError or a skip."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class Duplicated(list):
    """A JSON object that holds a key twice, kept as its list of pairs (see :func:`pairs_hook`)."""

    def __init__(self, pairs, key):
        super().__init__(pairs)
        self.key = key


class TooDeep:
    """A task too deeply nested to decode (lenient loading decodes each task alone); ``field`` is
    the task's field that holds the depth (``<task>`` when unknown)."""

    def __init__(self, field: str):
        self.field = field


def pairs_hook(pairs):
    """``object_pairs_hook`` of the careful decode: a dict, or :class:`Duplicated` when a key repeats."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    seen = set()
    for key, _ in pairs:
        if key in seen:
            return Duplicated(pairs, key)
        seen.add(key)
    raise AssertionError("a repeated key that is not repeated")


# --- the rules, one value at a time -------------------------------------------------------

def is_exit_code(code) -> bool:
    """A canonical decimal exit code: ``"-1"``, ``"0"``, ``"50660"`` (ASCII digits, no leading zeros)."""
    return type(code) is str and _CODE_RE.fullmatch(code) is not None and code != "-0"


def name_problem(name, what: str = "name") -> str | None:
    """Why ``name`` cannot be a status or site name, or None when it can."""
    if type(name) is not str:
        return f"{what} must be a string, got {type(name).__name__}"
    if not 0 < len(name) <= MAX_NAME:
        return f"{what} must have 1 to {MAX_NAME} characters, got {len(name)}"
    if ":" in name:
        return f"{what} must not contain ':' (it separates the parts of a feature name), got {name!r}"
    if not name.isprintable():
        return f"{what} must be printable text (no control characters or lone surrogates), got {name!r}"
    if name[0] == " " or name[-1] == " ":
        return f"{what} must not start or end with a space, got {name!r}"
    return look_alike_problem(name, what)


def look_alike_problem(name: str, what: str = "name") -> str | None:
    """Why ``name`` is not in Unicode NFKC form (it would look like another name), or None."""
    if name.isascii() or unicodedata.is_normalized("NFKC", name):
        return None
    return (f"{what} must be in Unicode NFKC form, got {name!r} (it looks like "
            f"{unicodedata.normalize('NFKC', name)!r}, which would be another name)")


def task_name_problem(task: str) -> str | None:
    """Why ``task`` cannot be a task name, or None when it can."""
    if task[:1] != "/" or "/" not in task.strip("/"):
        return "task names look like /<workflow>/<task>"
    if len(task) > MAX_TASK_NAME or not task.isprintable():
        return f"a task name is printable text of at most {MAX_TASK_NAME} characters"
    parts = task[1:].split("/")
    if "" in parts:
        return "task names have no empty part (no '//' and no trailing '/'), got " + repr(task)
    if any(p[0] == " " or p[-1] == " " for p in parts):
        return "no part of a task name starts or ends with a space, got " + repr(task)
    return look_alike_problem(task, "a task name")


def task_names_problem(names: list[str], plain_text: bool) -> bool:
    """Whether any of the task names (already known printable, each ``/<workflow>/...``) breaks
    a rule of :func:`task_name_problem`, checked in bulk."""
    joined = "\n".join(names) + "\n"  # a printable name holds no newline: "\n" ends each one
    if any(part in joined for part in ("//", "/\n", " /", "/ ", " \n")):
        return True
    return not plain_text and look_alike_problem(joined) is not None


def _check_splitting(value):
    canonical = FIELD_CHECKS["splitting"](value)
    if value is not None and value != "" and not _SPLIT_RE.fullmatch(canonical):
        raise ValueError(f"splitting must be '<n>x' with n >= 1 and no leading zeros, or 'max', got {value!r}")
    return canonical


def _check_memory(value):
    if type(value) is bool:
        raise ValueError(f"memory must be a number of MB, got {value!r}")
    if type(value) is int and not 0 < value < _INT64:
        raise ValueError(f"memory must be a positive number of MB within 64 bits, got {value!r}")
    if type(value) is str and value != "" and not _MEMORY_TEXT_RE.fullmatch(value):
        raise ValueError(f"memory must be a number of MB in ASCII digits (no '_', spaces or other scripts' "
                         f"digits), got {value!r}")
    return FIELD_CHECKS["memory"](value)


def _check_cores(value):
    """Cores: missing, null or "" (unset), or a positive integer (a JSON number or its decimal string)."""
    if value is None or value == "":
        return value
    if type(value) is int and 0 < value < 10**6:
        return value
    if type(value) is str and _CORES_RE.fullmatch(value):
        return value
    raise ValueError(f"cores must be empty or a positive integer, got {value!r}")


#: The decision fields of ``parameters`` and their checks: the target table's FIELD_CHECKS, made
#: stricter where a value they interpret would be a silent mistake (``memory: true``, ``"0x"``).
DECISION_CHECKS = {**FIELD_CHECKS, "splitting": _check_splitting, "memory": _check_memory, "cores": _check_cores}
DECISION_FIELDS = tuple(DECISION_CHECKS)


def check_decision(*values) -> None:
    """The decision fields, in the order of DECISION_FIELDS; raises TaskError naming the field."""
    for name, value in zip(DECISION_FIELDS, values):
        if type(value) is float and not math.isfinite(value):
            raise TaskError(f"parameters.{name}", f"must be a finite number, got {value!r}")
        try:
            DECISION_CHECKS[name](value)
        except (TypeError, ValueError) as exc:
            raise TaskError(f"parameters.{name}", str(exc)) from None
        except ArithmeticError:  # float() of an integer of hundreds of digits
            raise TaskError(f"parameters.{name}", f"{name} is out of range, got an integer of "
                                                  f"{len(str(abs(value)))} digits") from None


def _scalar_ok(value) -> bool:
    kind = type(value)
    if kind is int:
        return -_INT64 <= value < _INT64
    if kind is float:
        return math.isfinite(value)
    if kind is str:
        return _SURROGATE_RE.search(value) is None
    return kind in _SCALARS


def parameter_values_ok(parameters: dict) -> bool:
    """Every value a JSON scalar (finite, within 64 bits, no lone surrogate) or a list of them."""
    for value in parameters.values():
        if type(value) is list:
            if not all(map(_scalar_ok, value)):
                return False
        elif not _scalar_ok(value):
            return False
    return True


def dense_to_sparse(dense, where: str) -> dict:
    """A dense matrix as ``{code: {site: count}}``; TaskError when it is not a valid dense matrix."""
    if type(dense) is not dict:
        raise _not_object(dense, where, "an object {code: {site: count}}")
    if dense.keys() != _DENSE_KEYS:
        raise TaskError(where, 'a dense matrix holds exactly the lists "codes", "sites" and "matrix"')
    codes, sites, matrix = dense["codes"], dense["sites"], dense["matrix"]
    if not (type(codes) is list and type(sites) is list and type(matrix) is list):
        raise TaskError(where, 'a dense matrix needs lists "codes", "sites" and "matrix"')
    if len(matrix) != len(codes):
        raise TaskError(f"{where}.matrix", f"has {len(matrix)} rows for {len(codes)} codes")
    for site in sites:
        problem = name_problem(site, "a site name")
        if problem:
            raise TaskError(f"{where}.sites", problem)
    if len(set(sites)) != len(sites):
        raise TaskError(f"{where}.sites", f"lists a site twice: {_first_repeated(sites)!r}")
    sparse: dict = {}
    for code, row in zip(codes, matrix):
        if type(code) is int and -_INT64 <= code < _INT64:
            code = str(code)
        if type(code) is not str:
            raise TaskError(f"{where}.codes", f"exit code must be an integer, got {code!r}")
        if type(row) is not list or len(row) != len(sites):
            raise TaskError(f"{where}.matrix", f"row of code {code!r} must list {len(sites)} counts")
        if code in sparse:
            raise TaskError(f"{where}.codes", f"lists exit code {code!r} twice")
        sparse[code] = dict(zip(sites, row))
    return sparse


def _first_repeated(values):
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def _not_object(value, where: str, shape: str) -> TaskError:
    if isinstance(value, Duplicated):
        return TaskError(f"{where}.{value.key}" if where else value.key,
                         "duplicate key (a decoder would keep only the last value)")
    return TaskError(where or "<task>", f"must be {shape}, got {_json_type(value)}")


def _json_type(value) -> str:
    if isinstance(value, Duplicated):
        return f"an object holding the key {value.key!r} twice"
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


# --- the careful path ---------------------------------------------------------------------

def valid_tasks(path: Path, data, strict: bool) -> tuple[dict, list[tuple[str, str]]]:
    """Check each task on its own, so that a problem names task and field.

    ``data`` is the file decoded with :func:`pairs_hook`. Strict, the first problem raises
    HistoryError; lenient, the task is left out and listed with its reason (a task name that
    occurs twice leaves out every task of that name: which one the operator meant is unknown).
    """
    if isinstance(data, Duplicated):
        names = [task for task, _ in data]
        repeated = {t for t in names if names.count(t) > 1} if len(names) < 2000 else _repeated(names)
        items = [(t, r) for t, r in data if t not in repeated]
        duplicates = [(t, "<name>: duplicate task name") for t in dict.fromkeys(t for t in names if t in repeated)]
        if strict:
            raise HistoryError(path, "duplicate task name", task=duplicates[0][0], field="<name>")
    elif type(data) is dict:
        items, duplicates = data.items(), []
    else:
        raise HistoryError(path, f"the top level must be an object of tasks, got {_json_type(data)}")
    if not items and not duplicates:
        raise HistoryError(path, "the file holds no tasks")
    valid, skipped = {}, list(duplicates)
    for task, record in items:
        try:
            check_task(task, record)
        except TaskError as exc:
            if strict:
                raise HistoryError(path, exc.message, task=task, field=exc.field) from None
            # A field is a key from the file: escaped, so that a reason stays one line.
            field = exc.field if exc.field.isprintable() else repr(exc.field)[1:-1]
            skipped.append((task, f"{field}: {exc.message}"))
        else:
            valid[task] = record
    if skipped:
        # repr: a task name or field from the file must not break the warning into lines.
        log.warning("%s: skipped %d malformed task(s); first: %r: %s", path, len(skipped), skipped[0][0],
                    skipped[0][1] if skipped[0][1].isprintable() else repr(skipped[0][1]))
    if not valid:
        raise HistoryError(path, f"no valid task (skipped {len(skipped)}; first: task {skipped[0][0]!r}: "
                                 f"{skipped[0][1]})")
    return valid, skipped


def _repeated(names: list) -> set:
    seen, repeated = set(), set()
    for name in names:
        (repeated if name in seen else seen).add(name)
    return repeated


def check_task(task, record) -> None:
    """Raise TaskError naming the field at fault, if any, in one task."""
    problem = task_name_problem(task)
    if problem:
        raise TaskError("<name>", problem)
    if isinstance(record, TooDeep):
        raise TaskError(record.field, "nested too deeply (a task is a few levels deep)")
    if type(record) is not dict:
        raise _not_object(record, "", "an object with errors and parameters")
    unknown = [k for k in record if k not in _TASK_KEYS]
    if unknown:
        raise TaskError(unknown[0], "unknown field; a task holds only errors and parameters")
    errors = record.get("errors")
    if type(errors) is not dict:
        if errors is None:
            raise TaskError("errors", "missing or not an object of status -> matrix")
        raise _not_object(errors, "errors", "an object of status -> matrix")
    given_as: dict[str, str] = {}
    for status_key, matrix in errors.items():
        where = f"errors.{status_key}"
        status = status_key.removesuffix("_sites")
        problem = name_problem(status, "a status name")
        if problem:
            raise TaskError(where, problem)
        if status in given_as:
            raise TaskError(where, f"status {status!r} given twice, as {given_as[status]!r} and {status_key!r} "
                                   f"(the same status: its counts would be summed)")
        given_as[status] = status_key
        if type(matrix) is not dict or "matrix" in matrix:
            matrix = dense_to_sparse(matrix, where)
        for code, row in matrix.items():
            where = f"errors.{status_key}.{code}"
            if not is_exit_code(code):
                # "..., got" ends the reason `wtc data check` counts problems by.
                raise TaskError(where, f"exit code must be an integer, got {code!r} (canonical decimal: ASCII "
                                       f"digits, no leading zeros, at most 10 digits)")
            if type(row) is not dict:
                raise _not_object(row, where, "an object {site: count}")
            for site, n in row.items():
                problem = name_problem(site, "a site name")
                if problem:
                    raise TaskError(f"{where}.{site}", problem)
                if type(n) is not int or n < 0:
                    raise TaskError(f"{where}.{site}", f"count must be a non-negative integer, got {n!r}")
                if n >= _INT64:
                    raise TaskError(f"{where}.{site}", f"count does not fit in 64 bits, got {n}")
    if "parameters" in record:
        if record["parameters"] is None:
            raise TaskError("parameters", "is null; leave it out for an unlabelled task")
        check_parameters(record["parameters"])


def check_parameters(parameters) -> None:
    """One task's parameters: an object, a valid decision, ``sites`` a list of names, other fields scalars."""
    if type(parameters) is not dict:
        raise _not_object(parameters, "parameters", "an object")
    check_decision(*map(parameters.get, DECISION_FIELDS))
    sites = parameters.get("sites")
    if sites is not None:
        if type(sites) is not list:
            raise TaskError("parameters.sites", "must be a list of site names")
        for site in sites:
            problem = name_problem(site, "a site name")
            if problem:
                raise TaskError("parameters.sites", f"must be a list of site names: {problem}")
    for name, value in parameters.items():
        if not parameter_values_ok({name: value}):
            raise TaskError(f"parameters.{name}", "must be a JSON scalar (finite, within 64 bits) or a list of them, "
                                                  f"got {_json_type(value)}")
