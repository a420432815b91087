"""Raw tasks checked by the loader's own rules, in memory: one line per task that fails, the rest one History."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

import msgspec

from wtc.data.history import History
from wtc.data.loader import parse_history_bytes
from wtc.data.validation import TooDeep
from wtc.errors import HistoryError

__all__ = ["MAX_ENTRY_CHARS", "quiet", "validate_tasks"]

#: The most characters of JSON one task's entry may hold. A WTC entry is a few kB (one matrix of
#: counts per status); a larger one is refused before it is parsed, so one hostile row cannot
#: take the memory of a served model.
MAX_ENTRY_CHARS = 1_000_000
#: What a batch of tasks is called in the loader's messages (it is never a file).
_TASKS_PATH = Path("<tasks>")


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def quiet(*names: str) -> Iterator[None]:
    """Silence the loader's and featuriser's per-file warnings: the table reports each task.

    A filter, not a level: ``setLevel`` clears the cache of every logger of the process (~1 ms a
    served call with MLflow's loggers loaded).
    """
    loggers = [logging.getLogger(n) for n in names]
    for lg in loggers:
        lg.addFilter(_errors_only)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(_errors_only)


def _problem(exc: HistoryError) -> str:
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


def _entry_text(entry: Any, json_checked: bool = False) -> tuple[str | None, str | None]:
    """``(problem, text)``: a task's entry as the JSON text of an object, or why it cannot be one.

    Text is refused above :data:`MAX_ENTRY_CHARS` before it is parsed; an object is measured by
    its JSON text (written once, and that text is what goes into the history file). Nesting
    deeper than Python's recursion limit is refused, not raised. ``json_checked``: text known to be
    one JSON value (a parser found where it ends) is not parsed again to check it.
    """
    if isinstance(entry, TooDeep):
        return f"{entry.field}: nested too deeply (a task is a few levels deep)", None
    given_as_text = isinstance(entry, bytes | str)
    if given_as_text:
        if len(entry) > MAX_ENTRY_CHARS:
            return f"entry: {len(entry)} characters, more than the {MAX_ENTRY_CHARS} a task's entry may hold", None
        try:
            # Parsed only to check it: the text itself goes to the loader, so a key it holds twice
            # is refused there as in a history file (a parse would keep the last value).
            text = entry.decode("utf-8") if isinstance(entry, bytes) else entry
            if not (json_checked or _is_one_json_value(text)):
                json.loads(text)  # what msgspec refuses or might reach too deep: json's verdict and reason
        except RecursionError:
            return "entry: nested too deeply (an entry is a few levels deep)", None
        except ValueError as exc:
            return f"entry: not valid JSON ({str(exc)[:200]})", None
        return None, text.strip()
    try:
        text = json.dumps(entry)
    except RecursionError:
        return "entry: nested too deeply (an entry is a few levels deep)", None
    except (TypeError, ValueError) as exc:
        return f"entry: cannot be written as JSON ({str(exc)[:200]})", None
    if len(text) > MAX_ENTRY_CHARS:
        return f"entry: {len(text)} characters of JSON, more than the {MAX_ENTRY_CHARS} a task's entry may hold", None
    return None, text


_ANY_JSON = msgspec.json.Decoder()
#: Text with fewer brackets than this is nowhere near the recursion limit of either parser.
_SHALLOW_BRACKETS = 500


def _is_one_json_value(text: str) -> bool:
    """True when ``text`` is certainly one JSON value that ``json.loads`` reads: msgspec (in C, ~10x
    faster) accepted it, and it is too shallow for json's recursion limit. False: ask json.

    msgspec reads strict JSON, a subset of what json reads (json also takes NaN, 1e400 and lone
    surrogates), so a text it accepts json accepts too; what it refuses json judges with its own reason.
    """
    if text.count("[") + text.count("{") >= _SHALLOW_BRACKETS:
        return False
    try:
        _ANY_JSON.decode(text)
    except Exception:  # noqa: BLE001 - a DecodeError, a RecursionError, a str msgspec cannot encode: json decides
        return False
    return True


def _history_text(texts: dict[str, str]) -> str:
    """The actions-history file of ``{task: entry text}``, as ``json.dumps`` of the parsed entries writes it."""
    # encode_basestring_ascii is what json.dumps runs on a str (ensure_ascii), without its per-call checks.
    return "{" + ", ".join(f"{encode_basestring_ascii(task)}: {text}" for task, text in texts.items()) + "}"


def validate_tasks(tasks: Sequence[Any], entries: Sequence[Any],
                   json_checked: bool = False) -> tuple[History | None, list[str | None]]:
    """Check each task's entry by the loader's own rules; the valid ones become one History.

    The tasks become the text of an actions-history file, read in memory by the loader
    (:func:`~wtc.data.loader.parse_history_bytes`, ``strict=False``), so a task is valid here
    exactly when the loader would accept it in a history file.

    Returns
    -------
    history : History or None
        The valid tasks, in input order (None when none is valid).
    errors : list of str or None
        One line per input row saying why it was left out (None for valid rows).
    """
    errors: list[str | None] = [None] * len(tasks)
    texts: dict[str, str] = {}
    row_of: dict[str, int] = {}
    seen: set = set()
    # A name given twice: every row of it is refused, as the loader refuses it in a file (which
    # one the sender meant is unknown; keeping the last would drop the other silently).
    repeated = {t for t in tasks if isinstance(t, str) and (t in seen or seen.add(t))}
    for i, (task, entry) in enumerate(zip(tasks, entries)):
        if not isinstance(task, str) or not task:
            errors[i] = f"task: must be a /<workflow>/<task> name, got {str(task)[:80]!r}"
            continue
        if task in repeated:
            errors[i] = "<name>: duplicate task name"
            continue
        errors[i], text = _entry_text(entry, json_checked)
        if errors[i] is not None:
            continue
        texts[task], row_of[task] = text, i
    if not texts:
        return None, errors
    with quiet("wtc.data.loader"):
        try:
            history = parse_history_bytes(_history_text(texts).encode("utf-8"), _TASKS_PATH, strict=False)
        except HistoryError as exc:
            # No valid task at all: ask the loader about each one for its reason.
            for task, text in texts.items():
                try:
                    parse_history_bytes(_history_text({task: text}).encode("utf-8"), _TASKS_PATH, strict=True)
                except HistoryError as problem:
                    errors[row_of[task]] = _problem(problem)
                else:
                    errors[row_of[task]] = f"entry: rejected with the other tasks ({exc})"
            return None, errors
    for task, problem in history.skipped:
        errors[row_of[task]] = problem
    return history, errors
