"""The short way through ``wtc serve``'s ``POST /invocations`` for the request it gets most: valid raw tasks.

MLflow's scoring server parses the body into Python objects, builds a DataFrame, predicts and
writes the answer with the standard ``json`` module; the guard in front of it parses the body
first to check it and writes it again. For a batch of 1,000 tasks that was most of the time of a
call. Here the body is decoded once by msgspec into rows whose ``entry`` stays the JSON text it
was sent as (what the model reads; msgspec has checked it is one JSON value), the served
:class:`~wtc.store.pyfunc.WTCTaskModel` predicts as its ``predict`` does, and the rows MLflow
would write are encoded by msgspec.

It answers only a request it can answer exactly as the guarded MLflow path would: the content
type is plain JSON, the body is one of MLflow's row formats with ``task`` and ``entry`` (an
object) per row, no object holds a key twice, params hold at most a numeric ``threshold`` (all
MLflow's params check would pass on unchanged), every task is valid and nothing raised.
Anything else returns None and takes the guarded MLflow path, whose checks, refusals and
per-task errors are the reference (:mod:`wtc.store.serving`).
"""

from __future__ import annotations

import functools
from itertools import repeat, starmap
from typing import Any, Union

import msgspec

from wtc.inference.tasks import MAX_TASKS_PER_CALL, task_decision_columns
from wtc.store.request_params import request_threshold

__all__ = ["FastInvocations"]

#: The content types MLflow's handler reads as JSON without a word (it refuses other parameters).
_PLAIN_JSON = ("application/json", "application/json; charset=utf-8")


class _Row(msgspec.Struct, forbid_unknown_fields=True):
    task: str
    entry: msgspec.Raw  # the entry's JSON text as sent: the loader reads it, nobody decodes it here


class _Split(msgspec.Struct, forbid_unknown_fields=True):
    columns: list[str]
    data: list[tuple[str, msgspec.Raw]]


_Rows = Union[list[_Row], msgspec.UnsetType]


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    # UNSET, not None, for an absent key: ``"params": null`` is refused by the guard, so it must fail here.
    dataframe_records: _Rows = msgspec.UNSET
    instances: _Rows = msgspec.UNSET
    inputs: _Rows = msgspec.UNSET
    dataframe_split: Union[_Split, msgspec.UnsetType] = msgspec.UNSET
    params: Union[dict[str, Union[str, int, float, bool, None]], msgspec.UnsetType] = msgspec.UNSET


_BODY = msgspec.json.Decoder(_Body)
_ENCODER = msgspec.json.Encoder()


class FastInvocations:
    """``__call__(body, content_type)``: the answer's bytes (HTTP 200), or None to take the guarded MLflow path."""

    def __init__(self, python_model: Any):
        self.python_model = python_model

    @classmethod
    def for_model(cls, model: Any) -> FastInvocations | None:
        """The short way for a served raw-task model (:class:`~wtc.store.pyfunc.WTCTaskModel`), else None."""
        from wtc.store.pyfunc import WTCTaskModel

        try:
            python_model = model.unwrap_python_model()
        except Exception:  # noqa: BLE001 - not a PythonModel (another flavor): MLflow's path serves it
            return None
        return cls(python_model) if type(python_model) is WTCTaskModel else None

    def __call__(self, body: bytes, content_type: str | None) -> bytes | None:
        if (content_type or "").strip() not in _PLAIN_JSON:
            return None
        try:
            tasks, texts, params = _read(body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # msgspec's errors are ValueErrors
            return None
        if not tasks or len(tasks) > MAX_TASKS_PER_CALL:
            return None
        model = self.python_model
        try:
            threshold = request_threshold(params, model.threshold)
            columns = task_decision_columns(model.pipeline, model.spec, {"task": tasks, "entry": texts}, threshold,
                                            json_checked=True)
        except Exception:  # noqa: BLE001 - MLflow's path answers it, with its reason (a bad threshold, ...)
            return None
        if len(columns["error"]) != len(tasks) or any(columns["error"]):
            return None  # a task with a problem: MLflow's path gives the per-task errors and refusals
        return _ENCODER.encode({"predictions": _records(columns)})


def _read(body: bytes) -> tuple[list[str], list[str], dict | None]:
    """Tasks, entries (JSON text of an object) and params of a body, or ValueError for anything else."""
    decoded = _BODY.decode(body)
    formats = [f for f in ("dataframe_records", "instances", "inputs", "dataframe_split")
               if getattr(decoded, f) is not msgspec.UNSET]
    if len(formats) != 1:
        raise ValueError("not exactly one format")
    params = None if decoded.params is msgspec.UNSET else decoded.params
    if params is not None and not (set(params) <= {"threshold"} and all(
            type(v) in (int, float) for v in params.values())):
        raise ValueError("params MLflow's check would change or refuse")
    rows = getattr(decoded, formats[0])
    if formats[0] == "dataframe_split":
        if rows.columns != ["task", "entry"]:
            raise ValueError("other columns")
        tasks, entries, keys = [r[0] for r in rows.data], [r[1] for r in rows.data], 2  # "columns", "data"
    else:
        tasks, entries, keys = [r.task for r in rows], [r.entry for r in rows], 2 * len(rows)  # "task", "entry"
    raw = list(map(bytes, entries))
    if not all(map(bytes.startswith, raw, repeat(b"{"))):
        raise ValueError("an entry that is not an object")
    # Every key in the text is followed by one colon. The keys decoded here are the format, params
    # and its keys, and the rows' (the entries' own colons are the loader's to count: it refuses an
    # entry holding a key twice). More colons than that: a key given twice (decoders keep the last)
    # or a colon inside a name; the guard has the words for the one and MLflow reads the other.
    outside = body.count(b":") - b"".join(raw).count(b":")
    if outside != len(formats) + (params is not None) + len(params or ()) + keys:
        raise ValueError("a key given twice")
    return tasks, list(map(bytes.decode, raw)), params  # UTF-8, strict: a bad byte is a ValueError


def _records(columns: dict[str, Any]) -> list:
    """``pd.DataFrame(columns).to_dict(orient="records")`` (what MLflow writes) as msgspec structs, which
    encode to the same JSON objects (fields in column order) ~3x faster than dicts are built."""
    values = [v if type(v) is list else v.tolist() for v in columns.values()]  # numpy and pandas arrays
    return list(starmap(_row_type(tuple(columns)), zip(*values)))


@functools.lru_cache(maxsize=8)
def _row_type(names: tuple[str, ...]) -> type:
    """A struct whose fields encode as ``names`` (which need not be identifiers: ``p_non-acdc``)."""
    fields = [f"f{i}" for i in range(len(names))]
    return msgspec.defstruct("Row", [(f, object) for f in fields], rename=dict(zip(fields, names)))
