"""load_history: the format, validation errors that name file/task/field, parse once via the cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.factories import SMALL_HISTORY, WF, write_json
from tests.spies import BrokenDecoder
from wtc.data import HistoryError, load_history
from wtc.data import loader as loader_module

T0 = f"/{WF}/HIG-RunIIFall17DRStdmix-00451_0"


def _bad(task_record=None, top=None):
    if top is not None:
        return top
    return {T0: task_record}


GOOD_ERRORS = {"good_sites": {"85": {"T1_US_FNAL": 1}}}


@pytest.mark.parametrize(
    "content, task, field, message",
    [
        (_bad({"errors": {"good_sites": {"85": {"T1_US_FNAL": -3}}}}), T0, "errors.good_sites.85.T1_US_FNAL", "non-negative integer"),
        (_bad({"errors": {"good_sites": {"85": {"T1_US_FNAL": 1.5}}}}), T0, "errors.good_sites.85.T1_US_FNAL", "non-negative integer"),
        (_bad({"errors": {"good_sites": {"85": {"T1_US_FNAL": "3"}}}}), T0, "errors.good_sites.85.T1_US_FNAL", "non-negative integer"),
        (_bad({"errors": {"good_sites": {"85": {"T1_US_FNAL": True}}}}), T0, "errors.good_sites.85.T1_US_FNAL", "non-negative integer"),
        (_bad({"errors": {"good_sites": {"abc": {"T1_US_FNAL": 1}}}}), T0, "errors.good_sites.abc", "integer"),
        (_bad({"errors": {"good_sites": [1, 2]}}), T0, "errors.good_sites", "must be an object"),
        (_bad({"errors": {"good_sites": {"85": [1]}}}), T0, "errors.good_sites.85", "must be an object"),
        (_bad({"errors": {"good_sites": {"codes": ["85"], "sites": ["A"], "matrix": [[1, 2]]}}}), T0,
         "errors.good_sites.matrix", "counts"),
        (_bad({"parameters": {"action": "acdc"}}), T0, "errors", "missing"),
        (_bad([1, 2]), T0, "<task>", "must be an object"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": "reboot"}}), T0, "parameters.action", "must be one of"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": "acdc", "splitting": "fast"}}), T0,
         "parameters.splitting", "splitting"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": "acdc", "memory": "lots"}}), T0, "parameters.memory", "memory"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": "acdc", "xrootd": "maybe"}}), T0, "parameters.xrootd", "xrootd"),
        (_bad({"errors": GOOD_ERRORS, "parameters": ["acdc"]}), T0, "parameters", "must be an object"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": "acdc", "sites": "T1_US_FNAL"}}), T0,
         "parameters.sites", "list of site names"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": "acdc", "sites": ["T1_US_FNAL", 3]}}), T0,
         "parameters.sites", "list of site names"),
        (_bad(top={"no-slash": {"errors": {}}}), "no-slash", "<name>", "/<workflow>/<task>"),
        (_bad(top={"/no-task/": {"errors": {}}}), "/no-task/", "<name>", "/<workflow>/<task>"),
        (_bad({"errors": {"good_sites": {"85": {"T1_US_FNAL": 2**64}}}}), T0, "errors.good_sites.85.T1_US_FNAL", "64 bits"),
        (_bad({"errors": {"good_sites": {"codes": ["85"], "sites": ["A"], "matrix": [[-1]]}}}), T0,
         "errors.good_sites.85.A", "non-negative integer"),
        (_bad({"errors": {"good_sites": {"codes": ["85"], "sites": ["A"], "matrix": [[True]]}}}), T0,
         "errors.good_sites.85.A", "non-negative integer"),
        (_bad({"errors": {"good_sites": {"codes": ["x"], "sites": ["A"], "matrix": [[1]]}}}), T0,
         "errors.good_sites.x", "integer"),
        (_bad({"errors": {"good_sites": {"codes": "85", "sites": ["A"], "matrix": [[1]]}}}), T0,
         "errors.good_sites", "dense matrix"),
        (_bad({"errors": GOOD_ERRORS, "parameters": None}), T0, "parameters", "is null"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"action": ["acdc"]}}), T0, "parameters.action", "must be one of"),
        (_bad({"errors": GOOD_ERRORS, "parameters": {"splitting": "2x"}}), T0, "parameters.action", "must be one of"),
    ],
)
def test_malformed_task_names_file_task_and_field(tmp_path, content, task, field, message):
    path = write_json(tmp_path / "bad.json", content)
    with pytest.raises(HistoryError) as info:
        load_history(path)
    err = info.value
    assert (err.task, err.field) == (task, field)
    assert message in err.message
    text = str(err)
    assert "\n" not in text and path in text and task in text and field in text


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b'{"/a/b": {"errors": {"good_sites": {"85": {"T1_US_FNAL": 1}', "invalid JSON at line 1"),
        (b'{"/a/b": {"errors": {}}}\xff\xfe', "not UTF-8"),
        (b"[1, 2, 3]", "top level must be an object"),
        (b"{}", "no tasks"),
        (b'{"/a/b": {"errors": {}}, "/a/b": {"errors": {}}}', "duplicate task name"),
    ],
)
def test_malformed_files(tmp_path, raw, message):
    path = tmp_path / "bad.json"
    path.write_bytes(raw)
    with pytest.raises(HistoryError) as info:
        load_history(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_names_the_task(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"/w/a": {"errors": {}}, "/w/b": {"errors": {}}, "/w/a": {"errors": {}}}')
    with pytest.raises(HistoryError) as info:
        load_history(path)
    assert info.value.task == "/w/a"


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(HistoryError, match="cannot read"):
        load_history(tmp_path / "nope.json")


def test_lenient_load_skips_and_reports(tmp_path):
    content = dict(SMALL_HISTORY)
    content["/w/broken"] = {"errors": {"good_sites": {"85": {"T1_US_FNAL": -1}}}, "parameters": {"action": "acdc"}}
    content["/w/also-broken"] = {"errors": {}, "parameters": {"action": "nope"}}
    path = write_json(tmp_path / "mixed.json", content)
    with pytest.raises(HistoryError):
        load_history(path)
    h = load_history(path, strict=False)
    assert h.tasks == list(SMALL_HISTORY)
    assert [t for t, _ in h.skipped] == ["/w/broken", "/w/also-broken"]
    assert "errors.good_sites.85.T1_US_FNAL" in h.skipped[0][1]
    assert h.nnz == load_history(tmp_path / "mixed.json", strict=False, use_cache=False).nnz == 12


def test_cache_hit_skips_parsing(small_history_path, monkeypatch):
    first = load_history(small_history_path)

    def fail(*args, **kwargs):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setattr(loader_module, "_parse", fail)
    second = load_history(small_history_path)
    assert second.tasks == first.tasks and second.codes == first.codes
    for name in ("entry_task", "entry_status", "entry_code", "entry_site", "entry_count"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert second.parameter_records == first.parameter_records
    assert second.content_hash == first.content_hash


def test_cache_is_keyed_by_content(small_history_path):
    load_history(small_history_path)
    content = json.loads(small_history_path.read_text())
    content[T0]["errors"]["good_sites"]["-1"]["T1_DE_KIT"] = 99
    small_history_path.write_text(json.dumps(content))
    h = load_history(small_history_path)
    assert 99 in h.entry_count.tolist()


def test_second_bad_task_is_found_after_a_good_one(tmp_path):
    # The bulk checks see the whole file; the error must still name the one task at fault.
    content = dict(SMALL_HISTORY)
    content["/w/late"] = {"errors": GOOD_ERRORS, "parameters": {"action": "acdc", "memory": "lots"}}
    path = write_json(tmp_path / "late.json", content)
    with pytest.raises(HistoryError) as info:
        load_history(path)
    assert (info.value.task, info.value.field) == ("/w/late", "parameters.memory")


def _histories_equal(a, b):
    assert (a.tasks, a.statuses, a.codes, a.sites) == (b.tasks, b.statuses, b.codes, b.sites)
    assert a.parameter_records == b.parameter_records and a.skipped == b.skipped
    for name in ("entry_task", "entry_status", "entry_code", "entry_site", "entry_count"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype


def _synthetic(tmp_path):
    from wtc.data.synthetic import write_benchmark

    return write_benchmark(tmp_path / "synthetic.json", n_tasks=300, seed=3)


@pytest.mark.parametrize("make_path", [lambda tmp, small: small, lambda tmp, small: _synthetic(tmp)])
def test_fast_and_careful_paths_agree(tmp_path, small_history_path, monkeypatch, make_path):
    path = make_path(tmp_path, small_history_path)
    fast = load_history(path, use_cache=False)
    monkeypatch.setattr(loader_module, "_TASKS", BrokenDecoder())
    careful = load_history(path, use_cache=False)
    _histories_equal(fast, careful)


def test_a_valid_file_takes_the_fast_path(tmp_path, small_history_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("a valid file fell back to the per-task checks")

    monkeypatch.setattr(loader_module, "valid_tasks", fail)
    for path in (small_history_path, _synthetic(tmp_path)):
        assert load_history(path, use_cache=False).n_tasks > 0


def test_lenient_load_keeps_the_statuses_of_valid_tasks_only(tmp_path):
    content = {"/w/a": {"errors": {"good_sites": {"85": {"T1_US_FNAL": 1}}}},
               "/w/b": {"errors": {"odd_sites": {"85": {"T1_US_FNAL": -1}}}}}
    h = load_history(write_json(tmp_path / "h.json", content), strict=False)
    assert h.statuses == ["good", "bad"] and [t for t, _ in h.skipped] == ["/w/b"]
