"""The loader's fast path: each distinct parameters text checked once, nothing equal-looking let through."""

from __future__ import annotations

import json

import pytest

from tests.factories import write_json
from tests.spies import BrokenDecoder
from wtc.data import HistoryError, load_history
from wtc.data import loader as loader_module

ERRORS = {"good_sites": {"85": {"T1_US_FNAL": 3}}}


# In Python 1 == True == 1.0: a check run once per distinct decision must still tell them apart.
@pytest.mark.parametrize("valid, invalid, field", [
    ({"action": "acdc", "cores": 1}, {"action": "acdc", "cores": True}, "parameters.cores"),
    ({"action": "acdc", "cores": 2}, {"action": "acdc", "cores": 2.0}, "parameters.cores"),
    ({"action": "acdc", "xrootd": True}, {"action": "acdc", "xrootd": 1}, "parameters.xrootd"),
    ({"action": "acdc", "memory": 1}, {"action": "acdc", "memory": True}, "parameters.memory"),
    ({"action": "acdc", "memory": 2**62}, {"action": "acdc", "memory": 2**63}, "parameters.memory"),
])
def test_a_value_equal_to_a_valid_one_of_another_type_is_refused(tmp_path, valid, invalid, field):
    path = write_json(tmp_path / "h.json", {"/w/a": {"errors": ERRORS, "parameters": valid},
                                            "/w/b": {"errors": ERRORS, "parameters": invalid}})
    with pytest.raises(HistoryError) as info:
        load_history(path, use_cache=False)
    assert (info.value.task, info.value.field) == ("/w/b", field)
    lenient = load_history(path, strict=False, use_cache=False)
    assert lenient.tasks == ["/w/a"] and [t for t, _ in lenient.skipped] == ["/w/b"]


def test_parameters_keep_their_text_order_and_types(tmp_path, monkeypatch):
    records = [{"action": "acdc", "memory": "3000", "sites": ["T1_US_FNAL"]},
               {"action": "acdc", "memory": "3000", "sites": ["T1_US_FNAL"]},
               {"sites": ["T1_US_FNAL"], "memory": "3000", "action": "acdc"},  # equal, in another order
               {"action": "acdc", "memory": 3000},
               {"action": "acdc", "memory": 3000.0},
               None,
               {"action": "clone", "cores": 4, "sites": None}]
    content = {f"/w/t{i}": {"errors": ERRORS} if r is None else {"errors": ERRORS, "parameters": r}
               for i, r in enumerate(records)}
    path = write_json(tmp_path / "h.json", content)
    fast = load_history(path, use_cache=False)
    monkeypatch.setattr(loader_module, "_TASKS", BrokenDecoder())
    careful = load_history(path, use_cache=False)
    for history in (fast, careful):
        assert history.parameter_records == records
        assert [list(r) for r in history.parameter_records if r] == [list(r) for r in records if r]
        assert [type(r["memory"]) for r in history.parameter_records[3:5]] == [int, float]


def test_tasks_with_the_same_parameters_text_share_one_record(tmp_path, monkeypatch):
    # One dict per distinct text: the records of a workflow's tasks cost one object, not thousands.
    same = {"action": "acdc", "splitting": "2x", "sites": ["T1_US_FNAL", "T2_CH_CERN"]}
    content = {f"/w/t{i}": {"errors": ERRORS, "parameters": same} for i in range(4)}
    content["/v/t"] = {"errors": ERRORS, "parameters": {"action": "clone"}}
    history = load_history(write_json(tmp_path / "h.json", content), use_cache=False)
    assert history.parameter_records == [r["parameters"] for r in content.values()]
    assert len({id(r) for r in history.parameter_records}) == 2


@pytest.mark.parametrize("parameters, field", [
    ('{"action": "acdc", "action": "clone"}', "parameters.action"),
    ('{"action": "acdc", "note": "a:b"}', None),
    ('{"action": "acdc", "sites": ["T1:US"]}', "parameters.sites"),
    ('{"action": "acdc", "sites": "T1_US_FNAL"}', "parameters.sites"),
    ('{"action": "acdc", "sites": ""}', "parameters.sites"),  # falsy, but not null: still not a list
    ('{"action": "acdc", "sites": false}', "parameters.sites"),
    ('{"action": "acdc", "sites": [""]}', "parameters.sites"),
    ('{"action": "acdc", "sites": [["T1_US_FNAL"]]}', "parameters.sites"),
    ('{"action": "acdc", "cores": [4]}', "parameters.cores"),
    ('null', "parameters"),
    ('[]', "parameters"),
    ('{"action": "acdc", "memory": 1e999}', "parameters.memory"),  # inf to json, an error to msgspec
])
def test_what_the_fast_path_leaves_to_the_careful_one(tmp_path, parameters, field):
    # Repeated keys, colons in strings, bad sites, non-objects: the raw parameters text of the
    # fast path defers them, and the careful path names task and field (or accepts the tasks).
    text = '{"/w/a": {"errors": %s, "parameters": %s}, "/w/b": {"errors": %s}}' % (
        json.dumps(ERRORS), parameters, json.dumps(ERRORS))
    path = tmp_path / "h.json"
    path.write_text(text, encoding="utf-8")
    if field is None:
        assert load_history(path, use_cache=False).tasks == ["/w/a", "/w/b"]
        return
    with pytest.raises(HistoryError) as info:
        load_history(path, use_cache=False)
    assert (info.value.task, info.value.field) == ("/w/a", field)
