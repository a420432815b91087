"""The careful decode of a history file: its bytes read safely, decoded by json (whose errors say
where the file is broken), repeated keys kept, and, leniently, each task decoded on its own.

A task nested thousands of levels deep makes a decoder of the whole file give up
(``RecursionError``). Strict, that is one line naming the file. Lenient, the top-level task
boundaries are found in the text first (a tokenizer that only tracks strings and brackets, so
depth costs it nothing) and each task is decoded alone: the deep one is left out with its field
(:class:`~wtc.data.validation.TooDeep`), the others are kept.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from wtc.data.files import read_regular
from wtc.data.validation import Duplicated, TooDeep, pairs_hook
from wtc.errors import HistoryError

__all__ = ["TOO_DEEP", "decode", "history_entries", "read_history_bytes", "split_object"]

TOO_DEEP = "invalid JSON: nested too deeply (a history is a few levels deep)"
# A JSON string (escapes included) or one structural character; everything else is skipped.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\],:]', re.DOTALL)


def read_history_bytes(path: Path) -> bytes:
    """The bytes of a history file: a regular file within the size bound (see ``wtc.data.files``)."""
    try:
        return read_regular(path)
    except OSError as exc:
        raise HistoryError(path, f"cannot read the file ({exc.strerror or exc})") from None


def decode(path: Path, raw: bytes, strict: bool = True):
    """The file decoded with :func:`~wtc.data.validation.pairs_hook` (objects holding a key twice
    kept as :class:`~wtc.data.validation.Duplicated`). Lenient, a file too deep for one decode is
    decoded task by task (deep tasks become :class:`~wtc.data.validation.TooDeep`)."""
    if not raw.strip():
        raise HistoryError(path, "the file is empty")
    if raw[:2] == b"\x1f\x8b":
        raise HistoryError(path, "the file is gzip-compressed (not JSON text): decompress it first (gunzip)")
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:4]:
        raise HistoryError(path, "the file is UTF-16 (not UTF-8) text: convert it to UTF-8 "
                                 "(e.g. iconv -f UTF-16 -t UTF-8)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HistoryError(path, f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    try:
        return _loads(path, text)
    except RecursionError:
        if strict:
            raise HistoryError(path, TOO_DEEP) from None
    members = split_object(text)
    if members is None:
        raise HistoryError(path, TOO_DEEP)
    pairs = [(_loads(path, key), _task_value(path, value)) for key, value in members]
    return pairs_hook(pairs)


def _loads(path: Path, text: str):
    try:
        return json.loads(text, object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as exc:
        raise HistoryError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise HistoryError(path, f"invalid JSON: {exc}") from None


def _task_value(path: Path, text: str):
    """One task's value, or TooDeep naming its deepest-reaching field."""
    try:
        return _loads(path, text)
    except RecursionError:
        pass
    for key, value in split_object(text) or ():
        try:
            _loads(path, value)
        except RecursionError:
            try:
                return TooDeep(_loads(path, key))
            except RecursionError:  # pragma: no cover - a key is a string
                break
    return TooDeep("<task>")


def split_object(text: str) -> list[tuple[str, str]] | None:
    """The ``(key text, value text)`` members of the JSON object ``text``, found without decoding
    them; None when ``text`` is not one object of members (the caller then reports the decode error)."""
    members, depth, key, start, expect = [], 0, None, None, "open"
    end = None
    for match in _TOKEN.finditer(text):
        token = match.group()
        if expect == "done":
            return None  # something after the closing brace
        if token in "{[":
            if expect == "open":
                if token != "{":
                    return None
                depth, expect = 1, "key"
                continue
            depth += 1
        elif token in "}]":
            if depth == 1:
                if token != "}" or expect not in ("comma", "key"):
                    return None
                if key is not None:
                    members.append((key, text[start:match.start()]))
                expect, key, end = "done", None, match.end()
                continue
            depth -= 1
        elif depth == 1:
            if expect == "key" and token.startswith('"'):
                key, expect = token, "colon"
            elif expect == "colon" and token == ":":
                start, expect = match.end(), "comma"
            elif expect == "comma" and token == ",":
                members.append((key, text[start:match.start()]))
                key, expect = None, "key"
            elif not (expect == "comma" and token.startswith('"')):
                return None
    if expect != "done" or text[end:].strip():
        return None
    return members


def history_entries(path: Path) -> list[tuple[str, object]]:
    """The ``(task, entry)`` pairs of a history file as written, for checking task by task elsewhere
    (``wtc predict``): nothing collapsed. A repeated task name stays two pairs; an entry is the
    JSON text of the task's value with any repeated key kept (the loader's checks see it), or
    :class:`~wtc.data.validation.TooDeep`. Raises HistoryError (one line) for a file that is
    unreadable, not JSON, or not an object of tasks.
    """
    data = decode(path, read_history_bytes(path), strict=False)
    if isinstance(data, Duplicated):
        pairs = list(data)
    elif type(data) is dict and data:
        pairs = list(data.items())
    else:
        raise HistoryError(path, "the top level must be a non-empty object of tasks")
    entries = []
    for task, value in pairs:
        if not isinstance(value, TooDeep):
            try:
                value = _text(value)
            except RecursionError:
                value = TooDeep("<task>")
        entries.append((task, value))
    return entries


def _text(value) -> str:
    """JSON text of a decoded value, an object holding a key twice written with both."""
    if isinstance(value, Duplicated) or type(value) is dict:
        items = value if isinstance(value, Duplicated) else value.items()
        return "{" + ", ".join(f"{json.dumps(k)}: {_text(v)}" for k, v in items) + "}"
    if type(value) is list:
        return "[" + ", ".join(map(_text, value)) + "]"
    return json.dumps(value)
