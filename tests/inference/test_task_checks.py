"""Raw tasks checked in memory (wtc.inference.task_checks): an entry's text is judged as json.loads judges it,
and the batch is read as the loader reads the same tasks from a file."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wtc.data import load_history
from wtc.inference.task_checks import _entry_text, validate_tasks


def _as_json_says(text):
    """What ``_entry_text`` said before msgspec looked first: json.loads alone."""
    try:
        decoded = text.decode("utf-8") if isinstance(text, bytes) else text
        json.loads(decoded)
    except RecursionError:
        return "entry: nested too deeply (an entry is a few levels deep)", None
    except ValueError as exc:
        return f"entry: not valid JSON ({str(exc)[:200]})", None
    return None, decoded.strip()


TEXTS = ['{"errors": {}}', ' {"a": 1}\n', "NaN", '{"a": NaN}', '{"a": -Infinity}', "1e400", '"\\ud800"',
         '{"a": "\\ud83d\\ude00"}', "[" * 600 + "]" * 600, "[" * 5000 + "]" * 5000, '{"a": 1} x', '{"a": 1}{"b": 2}',
         "", "   ", '{"a": 1,}', "123456789012345678901234567890", "1" * 5000, '{"a": "\u00e9"}', "{'a': 1}",
         b'{"a": 1}', b"\xff", b'{"a": "\xc3\xa9"}', '{"a": 1, "a": 2}']


@pytest.mark.parametrize("text", TEXTS)
def test_an_entry_text_is_judged_as_json_loads_judges_it(text):
    assert _entry_text(text) == _as_json_says(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=12).map(json.dumps)))
def test_any_text_is_judged_as_json_loads_judges_it(text):
    assert _entry_text(text) == _as_json_says(text)


def test_a_batch_is_read_as_the_loader_reads_it_from_a_file(tmp_path):
    good = {"errors": {"good_sites": {"85": {"T1_US_FNAL": 3}}, "bad_sites": {"-1": {"T2_CH_CERN": 1}}},
            "parameters": {"action": "acdc"}}
    tasks = {"/wf_a/t1": good, "/wf_a/t2": {"errors": {"good_sites": {"85": {"T1_US_FNAL": -3}}}},
             "/wf_b/t1": {"errors": {"bad_sites": {"50660": {"T1_DE_KIT": 2}}}},
             '/wf_\u00e9"q/t1': {"errors": {"bad_sites": {"85": {"T1_DE_KIT": 5}}}}}
    path = tmp_path / "h.json"
    path.write_text(json.dumps(tasks))
    from_file = load_history(path, strict=False, use_cache=False)
    history, errors = validate_tasks(list(tasks), [json.dumps(e) for e in tasks.values()])
    assert history.tasks == from_file.tasks == ["/wf_a/t1", "/wf_b/t1", '/wf_\u00e9"q/t1']
    for name in ("statuses", "codes", "sites", "parameter_records"):
        assert getattr(history, name) == getattr(from_file, name)
    for name in ("entry_task", "entry_status", "entry_code", "entry_site", "entry_count"):
        assert getattr(history, name).tolist() == getattr(from_file, name).tolist()
    assert errors[0] is None and errors[2:] == [None, None] and "non-negative integer" in errors[1]
    assert [p for _, p in from_file.skipped] == [errors[1]]


def test_a_batch_without_a_valid_task_names_each_reason_without_a_path():
    history, errors = validate_tasks(["/w/a", "/w/b"], ['{"errors": {"good_sites": {"85": {"T1_A": -1}}}}',
                                                       '{"errors": {"good_sites": {"x": {"T1_A": 1}}}}'])
    assert history is None and "non-negative integer" in errors[0] and "integer" in errors[1]
    assert not any("/tmp" in e or "wtc-tasks" in e for e in errors)


@pytest.mark.parametrize("tasks", [["/w/a", "/w/b"], ["/w/a", None], ["/w/a", 5], ["/w/a", "/w/a"], []])
def test_columns_given_as_lists_read_as_the_same_table_would(tasks):
    import pandas as pd

    from wtc.inference.tasks import read_tasks

    entries = ['{"errors": {"good_sites": {"85": {"T1_A": 1}}}}'] * len(tasks)
    as_lists, as_table = read_tasks({"task": tasks, "entry": entries}), read_tasks(
        pd.DataFrame({"task": tasks, "entry": entries}))
    assert as_lists.tasks == as_table.tasks
    assert as_lists.errors == as_table.errors and as_lists.valid_rows == as_table.valid_rows
