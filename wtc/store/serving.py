"""The HTTP server of ``wtc serve``: MLflow's scoring server for a logged model, behind a guard.

Whatever a client sends, the answer is a 2xx with one result per row or a 4xx whose body is one
line (``{"error_code": ..., "message": ...}``): never a 5xx, a stack trace, server paths, an echo
of the request, or a ``NaN`` literal (responses are strict JSON). The guard reads the body with a
size bound, parses JSON with a depth bound, refuses too many rows, and hands MLflow's handler a
body it re-encoded (a task's ``entry`` sent as an object becomes the JSON text the model reads).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import sys
from typing import Any

import numpy as np

from wtc.errors import one_line
from wtc.inference.tasks import MAX_TASKS_PER_CALL

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "MODEL_ENV", "GuardedScoring", "create_app", "create_app_from_env"]

#: The model a server started by ``wtc serve`` loads (a ``models:/`` URI, ``runs:/`` or a path).
MODEL_ENV = "WTC_SERVE_MODEL"
#: Request bodies above this many bytes are refused before they are read whole.
MAX_BODY_BYTES = int(os.environ.get("WTC_SERVE_MAX_BODY_BYTES", 256 * 1024 * 1024))
#: JSON nested deeper than this is refused (a history entry is a few levels deep).
MAX_DEPTH = 64
_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_MESSAGE_CHARS = 500


class _Refused(Exception):
    """A request the guard answers itself: ``status`` and a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_OPENS, _CLOSES = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def _depth(body: bytes) -> int:
    """The nesting depth of a JSON text, read from its brackets outside strings (no parsing, no recursion)."""
    skeleton = np.frombuffer(_JSON_STRING.sub(b'""', body), np.uint8)
    steps = np.isin(skeleton, _OPENS).astype(np.int64) - np.isin(skeleton, _CLOSES)
    return int(np.cumsum(steps).max(initial=0))


def _strict(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def _rows(payload: dict) -> int:
    key = next(k for k in _FORMATS if k in payload)
    data = payload[key]
    if key == "dataframe_split":
        rows = data.get("data") if isinstance(data, dict) else None
    elif isinstance(data, dict):  # {"inputs": {"task": [...], "entry": [...]}}: columns
        rows = next((v for v in data.values() if isinstance(v, list)), [])
    else:
        rows = data
    if not isinstance(rows, list):
        raise _Refused(400, f"{key}: expected a list of rows")
    return len(rows)


def _entries_as_text(payload: dict) -> dict:
    """Rows given as objects (``instances``, ``inputs``, ``dataframe_records``) carry their ``entry``
    as JSON text, what the model's signature reads."""
    for key in ("instances", "inputs", "dataframe_records"):
        data = payload.get(key)
        if isinstance(data, list):
            payload[key] = [{**row, "entry": json.dumps(row["entry"])}
                            if isinstance(row, dict) and isinstance(row.get("entry"), dict | list) else row
                            for row in data]
        elif isinstance(data, dict) and isinstance(data.get("entry"), list):
            data["entry"] = [json.dumps(e) if isinstance(e, dict | list) else e for e in data["entry"]]
    split = payload.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list) and "entry" in split["columns"]:
        column = split["columns"].index("entry")
        for row in split.get("data") or []:
            if isinstance(row, list) and len(row) > column and isinstance(row[column], dict | list):
                row[column] = json.dumps(row[column])
    return payload


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _no_repeated_keys(pairs: list) -> dict:
    """An object whose keys are unique (json.loads would keep the last of a repeated key, silently)."""
    out = dict(pairs)
    if len(out) < len(pairs):
        seen = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Refused(400, f"the key {repeated[:80]!r} appears twice in one object of the body")
    return out


def check_request(body: bytes, content_type: str | None) -> bytes:
    """The body MLflow's handler gets for a request the guard lets through; raises :class:`_Refused`."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json":
        raise _Refused(415, f"send application/json (got {mime or 'no content type'!r})")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(400, f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if _depth(body) > MAX_DEPTH:  # before parsing: deep nesting costs the parser, not us
        raise _Refused(400, f"the JSON body is nested deeper than {MAX_DEPTH} levels")
    try:
        payload = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_repeated_keys)
    except RecursionError:
        raise _Refused(400, f"the JSON body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise _Refused(400, f"the body is not valid JSON ({one_line(exc, limit=120)})") from None
    if not isinstance(payload, dict) or sum(k in payload for k in _FORMATS) != 1:
        raise _Refused(400, f"the body must be an object with exactly one of {', '.join(_FORMATS)} (and optional params)")
    unknown = set(payload) - {*_FORMATS, "params"}
    if unknown:
        raise _Refused(400, f"unknown keys in the body: {', '.join(sorted(map(str, unknown)))[:200]}")
    if "params" in payload and not isinstance(payload["params"], dict):
        raise _Refused(400, "params must be an object")
    rows = _rows(payload)
    if rows > MAX_TASKS_PER_CALL:
        raise _Refused(400, f"the request holds {rows} tasks, more than the {MAX_TASKS_PER_CALL} one call may "
                            "hold: send them in batches")
    return json.dumps(_entries_as_text(payload), allow_nan=False).encode()


def _error_body(status: int, reason: str) -> bytes:
    code = "INVALID_PARAMETER_VALUE" if status < 500 else "INTERNAL_ERROR"
    return json.dumps({"error_code": code, "message": one_line(reason, limit=_MESSAGE_CHARS)}).encode()


def _clean_response(status: int, body: bytes) -> tuple[int, bytes]:
    """MLflow's answer made safe: errors become one line (no stack trace, no echoed data, never 5xx),
    results strict JSON."""
    if status < 400 and b"NaN" not in body and b"Infinity" not in body:
        return status, body  # already strict JSON: no need to parse and re-encode it
    try:
        content = json.loads(body) if body else None
    except ValueError:
        content = None
    if status >= 400:
        message = content.get("message") if isinstance(content, dict) else body.decode("utf-8", "replace")
        # MLflow quotes the whole input back ("Failed to predict data '<all of it>'. Error: ..."): keep the error.
        message = str(message).rpartition("Error:")[2] if "Failed to predict data" in str(message) else str(message)
        return (status if status < 500 else 400), _error_body(400, message)
    if content is None:
        return status, body
    return status, json.dumps(_strict(content), allow_nan=False).encode()


class GuardedScoring:
    """ASGI middleware in front of MLflow's scoring app: every ``POST /invocations`` passes the guard."""

    def __init__(self, app: Any, max_body_bytes: int = MAX_BODY_BYTES, fast: Any = None):
        # fast: (body, content type) -> answer or None (:class:`wtc.store.invocations.FastInvocations`)
        self.app, self.max_body_bytes, self.fast = app, max_body_bytes, fast

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != "/invocations" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            body = await self._read(receive, headers)
            if self.fast is not None:  # valid tasks the short way; None: anything else, the guarded MLflow path
                answer = await asyncio.to_thread(self.fast, body, headers.get("content-type"))
                if answer is not None:
                    return await self._send(send, 200, answer)
            body = check_request(body, headers.get("content-type"))
        except _Refused as refused:
            return await self._send(send, refused.status, _error_body(refused.status, refused.reason))
        except Exception as exc:  # noqa: BLE001 - whatever else a body does to the guard: the client's, one line
            return await self._send(send, 400, _error_body(400, f"the request cannot be read: {one_line(exc)}"))
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message):
            if message["type"] == "http.response.start":
                captured["status"], captured["headers"] = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        inner_scope = {**scope, "headers": [(k, v) for k, v in scope.get("headers", [])
                                            if k.lower() != b"content-length"] + [(b"content-length",
                                                                                    str(len(body)).encode())]}
        try:
            await self.app(inner_scope, replay, capture)
        except Exception as exc:  # noqa: BLE001 - an input the model could not score: the client's, in one line
            return await self._send(send, 400, _error_body(400, f"the model could not score the request: {one_line(exc)}"))
        status, content = _clean_response(captured["status"], captured["body"])
        await self._send(send, status, content)

    async def _read(self, receive, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _Refused(413, f"the body holds {int(declared)} bytes, more than the {self.max_body_bytes} bytes allowed")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _Refused(413, f"the body holds more than the {self.max_body_bytes} bytes allowed")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    async def _send(send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(model_uri: str, tracking_uri: str | None = None) -> GuardedScoring:
    """MLflow's scoring app for the model behind the guard (``/invocations``, ``/ping``, ``/health``, ``/version``)."""
    from mlflow.pyfunc import scoring_server

    from wtc.store.invocations import FastInvocations
    from wtc.store.pyfunc import load_model

    model = load_model(model_uri, tracking_uri=tracking_uri)
    return GuardedScoring(scoring_server.init(model), fast=FastInvocations.for_model(model))


def create_app_from_env() -> GuardedScoring:
    """The app uvicorn builds for ``wtc serve`` (``--factory``): the model named by ``$WTC_SERVE_MODEL``;
    a model that cannot be loaded ends the server with one line."""
    uri = os.environ.get(MODEL_ENV, "")
    try:
        return create_app(uri, os.environ.get("MLFLOW_TRACKING_URI"))
    except Exception as exc:  # noqa: BLE001 - a missing model, an unreachable store: one line, not uvicorn's traceback
        print(f"error: cannot load the model {uri!r}: {one_line(exc, limit=300)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
