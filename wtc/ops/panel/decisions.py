"""The operators' decisions: an append-only journal (the audit trail) and the decisions file it rebuilds.

A confirmed decision is first appended to the journal (``<decisions>.journal.jsonl``, one JSON line
per task, flushed and fsync'd: who, when, which model version recommended what, and the parameters
written), then the decisions file — an actions history, ``{task: {"errors": ..., "parameters": ...}}``,
readable by :func:`wtc.data.load_history` — is rewritten whole through a temp file and an atomic
rename. A crash or kill between the two loses nothing: opening the log replays the journal onto
the file. The latest decision of a task wins; the journal keeps every one.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wtc.data.validation import DECISION_FIELDS, TaskError, check_decision, name_problem
from wtc.errors import WtcError, one_line
from wtc.outputs import write_atomic

__all__ = ["ACTIONS", "SPLITTINGS", "Decision", "DecisionLog", "check_parameters", "default_operator"]

#: The actions an operator chooses from (the WTC console's: acdc, its recovery variant, clone, the special ones).
ACTIONS = ("acdc", "recovery", "clone", "by-pass", "force-complete", "on-hold")
#: The splittings offered in the form (any ``<n>x`` or ``max`` is valid in the file).
SPLITTINGS = ("1x", "2x", "3x", "5x", "10x", "20x", "50x", "100x", "max")
#: The actions that carry splitting, xrootd and memory.
WITH_PARAMETERS = ("acdc", "recovery")


def default_operator() -> str:
    """The OS user (who a decision is recorded for when ``--operator`` is not given)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def check_parameters(action: str, splitting: str = "", xrootd: str = "", memory: str = "",
                     sites: list[str] | None = None) -> dict[str, Any]:
    """The ``parameters`` of one decision as written to the file, or ValueError naming the field.

    acdc and recovery carry splitting (default 1x), xrootd (default disabled) and memory (MB,
    empty: unset); other actions only the action and the sites. ``sites`` empty means Auto.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    sites = [s.strip() for s in (sites or []) if s.strip()]
    for site in sites:
        problem = name_problem(site, "a site name")
        if problem:
            raise ValueError(f"sites: {problem}")
    if len(set(sites)) != len(sites):
        raise ValueError("sites: a site is named twice")
    out: dict[str, Any] = {"action": action}
    if action in WITH_PARAMETERS:
        out.update(splitting=splitting or "1x", xrootd=xrootd or "disabled", memory=str(memory).strip())
    out.update(sites=sites, cores="")
    try:
        check_decision(*(out.get(name) for name in DECISION_FIELDS))
    except TaskError as exc:
        raise ValueError(str(exc)) from None
    return out


@dataclass
class Decision:
    """One confirmed decision as the journal records it."""

    task: str
    parameters: dict[str, Any]
    operator: str
    at: str
    accepted: bool
    recommendation: str = ""
    model: str = ""
    model_version: str = ""

    def record(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DecisionLog:
    """The decisions of one panel: the file (an actions history) and its journal.

    Parameters
    ----------
    path : path
        The decisions file; created on the first decision. An existing one must be an
        object of tasks (earlier decisions, kept).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.journal = self.path.with_name(self.path.name + ".journal.jsonl")
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = self._read_file()
        self.history: list[dict[str, Any]] = []
        self.automation: dict[str, Any] = {"paused": False, "operator": "", "at": ""}
        self._replay()

    def _read_file(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WtcError(f"--decisions {self.path}: cannot read it: {one_line(exc)}") from None
        if type(data) is not dict or not all(type(v) is dict for v in data.values()):
            raise WtcError(f"--decisions {self.path}: not an actions history (an object of tasks)")
        return data

    def _replay(self) -> None:
        """Every journal line onto the file's entries; the file is rewritten when the journal held more."""
        if not self.journal.exists():
            return
        changed = False
        with self.journal.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.endswith("\n"):  # a line cut by a crash was never confirmed to anyone
                    break
                try:
                    record = json.loads(line)
                    if record.get("kind") == "automation":  # the kill switch, flipped
                        self.automation = {k: record[k] for k in ("paused", "operator", "at")}
                        continue
                    entry = {"errors": record["errors"], "parameters": record["parameters"]}
                    task = record["task"]
                except (ValueError, KeyError, TypeError):
                    raise WtcError(f"{self.journal}:{number}: not a journal line of wtc panel") from None
                self.history.append(record)
                if self.entries.get(task) != entry:
                    self.entries[task] = entry
                    changed = True
        if changed:
            self._write_file()

    def _write_file(self) -> None:
        def write(tmp: Path) -> None:
            with tmp.open("w", encoding="utf-8") as fh:
                json.dump(self.entries, fh, indent=1, allow_nan=False)
                fh.flush()
                os.fsync(fh.fileno())

        write_atomic(self.path, write)

    def decide(self, decisions: list[Decision], errors: dict[str, Any]) -> None:
        """Append ``decisions`` to the journal (fsync'd), then rewrite the file atomically.

        ``errors`` maps each task to its ``errors`` entry in the history (copied into the file,
        so that the file is a history a model can learn from).
        """
        if not decisions:
            return
        records = []
        for decision in decisions:
            record = decision.record()
            record["errors"] = errors[decision.task]
            records.append(record)
        text = "".join(json.dumps(r, allow_nan=False, ensure_ascii=False) + "\n" for r in records)
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.journal.open("a", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise WtcError(f"cannot append to {self.journal}: {one_line(exc)}") from None
            for record in records:
                self.entries[record["task"]] = {"errors": record["errors"], "parameters": record["parameters"]}
                self.history.append(record)
            self._write_file()

    def set_automation(self, paused: bool, operator: str) -> None:
        """Pause (or resume) automation: a journal line (who, when), read back on every start."""
        record = {"kind": "automation", "paused": bool(paused), "operator": operator, "at": now()}
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.journal.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise WtcError(f"cannot append to {self.journal}: {one_line(exc)}") from None
            self.automation = {k: record[k] for k in ("paused", "operator", "at")}

    def latest(self, task: str) -> dict[str, Any] | None:
        """The journal record of the task's latest decision in this panel (None if none)."""
        for record in reversed(self.history):
            if record["task"] == task:
                return record
        return None


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def memory_default(bucket: str) -> str:
    """The MB an accepted memory bucket writes: the bucket's upper edge; '' for unset or an open bucket."""
    from wtc.data.targets import MEMORY_BUCKETS, MEMORY_EDGES_MB

    if bucket in MEMORY_BUCKETS[1:-1]:
        return str(MEMORY_EDGES_MB[MEMORY_BUCKETS.index(bucket) - 1])
    return ""


def finite(value: Any) -> float | None:
    """A probability for display, or None when missing."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
