"""The hostile-history catalogue's building blocks and its check, shared by both rounds' tests."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from wtc.data import HistoryError, load_history

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "/wfa/t1": {"errors": {"good_sites": {"85": {"T1_US_FNAL": 3}}, "bad_sites": {"71304": {"T2_CH_CERN": 2}}},
                "parameters": {"action": "acdc", "splitting": "2x", "memory": "3000", "sites": ["T1_US_FNAL"],
                               "cores": ""}},
    "/wfb/t2": {"errors": {"good_sites": {"-1": {"T2_US_MIT": 1}}}, "parameters": {"action": "clone", "cores": 4}},
    "/wfb/t3": {"errors": {"bad_sites": {"codes": ["50660"], "sites": ["T2_US_MIT"], "matrix": [[5]]}}},
}
GOOD_CODES, GOOD_SITES = {"85", "71304", "-1", "50660"}, {"T1_US_FNAL", "T2_CH_CERN", "T2_US_MIT"}
BAD = "/wfz/bad"
GOOD_TEXT = json.dumps(GOOD)[1:-1]  # the good tasks, without the outer braces


@dataclass(frozen=True)
class Skip:
    """A bad task: strict, one error naming BAD and ``field``; lenient, BAD skipped and the good tasks kept."""

    field: str | None
    message: str
    task: str = BAD


@dataclass(frozen=True)
class Fatal:
    """A file no task of which can be trusted: one error naming the file (and ``task`` where there is one)."""

    message: str
    task: str | None = None


def task(record: str, name: str = BAD) -> str:
    """A file of the good tasks and one more, written as raw JSON text (so duplicates and literals survive)."""
    return "{" + GOOD_TEXT + f", {json.dumps(name)}: {record}" + "}"


def errors(row: str, status: str = "good_sites", code: str = "85") -> str:
    return '{"errors": {%s: {%s: %s}}}' % (json.dumps(status), json.dumps(code), row)


def params(extra: str) -> str:
    return '{"errors": {"good_sites": {"85": {"T1_US_FNAL": 1}}}, "parameters": {"action": "acdc", %s}}' % extra


def dense(codes, sites, matrix, **more) -> str:
    return json.dumps({"errors": {"good_sites": {"codes": codes, "sites": sites, "matrix": matrix, **more}}})


ROW, DENSE = "errors.good_sites.85", "errors.good_sites"


def write_case(tmp_path: Path, content) -> Path:
    path = tmp_path / "hostile.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
    return path


def assert_only_good_tasks(history):
    assert history.tasks == list(GOOD)
    assert set(history.codes) == GOOD_CODES and set(history.sites) == GOOD_SITES
    assert history.statuses == ["good", "bad"]
    assert history.parameter_records == [GOOD[t].get("parameters") for t in GOOD]


def case_env(tmp_path) -> dict:
    return {**os.environ, "WTC_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def check_case(tmp_path, name, content, outcome) -> None:
    """One catalogue entry's outcome: strict, one line naming file (and task, field); lenient, only BAD skipped."""
    path = write_case(tmp_path, content)
    with pytest.raises(HistoryError) as info:
        load_history(path, use_cache=False)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path))
    if isinstance(outcome, Fatal):
        assert outcome.message in text
        assert info.value.task == outcome.task
        if outcome.task is None:  # a file-level problem: lenient loading cannot help
            with pytest.raises(HistoryError, match="^" + str(path)):
                load_history(path, strict=False, use_cache=False)
        return
    assert info.value.task == outcome.task and repr(outcome.task) in text
    assert outcome.message in text
    if outcome.field is not None:
        assert info.value.field == outcome.field and repr(outcome.field) in text
    lenient = load_history(path, strict=False, use_cache=False)
    assert_only_good_tasks(lenient)
    assert [t for t, _ in lenient.skipped] == [outcome.task]
    assert outcome.message in lenient.skipped[0][1]
    if outcome.field is not None:
        assert lenient.skipped[0][1].startswith(f"{outcome.field}: ")
