"""Hostile histories: each malformed input ends as one line naming file, task and field, or as a per-task skip.

The catalogue is a table of (name, content, outcome). A task-level entry puts one bad task,
``BAD``, among good ones, and must end both ways: ``load_history`` raises one line naming the
file, ``BAD`` and the field; with ``strict=False`` every good task is kept and ``BAD`` is listed
in ``History.skipped`` with that field. A file-level entry must end as one line naming the file.
Never a traceback, never silently accepted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data.hostile import (
    DENSE,
    GOOD,
    ROOT,
    ROW,
    Fatal,
    Skip,
    assert_only_good_tasks,
    case_env,
    check_case,
    dense,
    errors,
    params,
    task,
    write_case,
)
from wtc.data import load_history
from wtc.data import loader as loader_module
from wtc.data.history import History
from wtc.errors import WtcError

CATALOGUE = [
    # duplicate keys, at every level
    ("duplicate site in a row", task(errors('{"T1_US_FNAL": 1, "T1_US_FNAL": 9}', code="11111")),
     Skip("errors.good_sites.11111.T1_US_FNAL", "duplicate key")),
    ("duplicate code", task('{"errors": {"good_sites": {"85": {"T1_A": 1}, "85": {"T1_A": 2}}}}'),
     Skip(ROW, "duplicate key")),
    ("duplicate status", task('{"errors": {"good_sites": {"85": {"T1_A": 1}}, "good_sites": {}}}'),
     Skip("errors.good_sites", "duplicate key")),
    ("duplicate errors", task('{"errors": {}, "errors": {"good_sites": {"85": {"T1_A": 1}}}}'),
     Skip("errors", "duplicate key")),
    ("duplicate action", task(params('"action": "clone"')), Skip("parameters.action", "duplicate key")),
    ("duplicate task name", task(errors('{"T1_A": 1}')) [:-1] + ', "/wfz/bad": {"errors": {}}}',
     Skip("<name>", "duplicate task name")),
    ("duplicate task name behind escapes", task(errors('{"T1_A": 1}'))[:-1] + r', "\/wfz\/bad": {"errors": {}}}',
     Skip("<name>", "duplicate task name")),
    # dense matrices
    ("dense duplicate codes", task(dense(["85", "85"], ["T1_A"], [[1], [2]])), Skip(DENSE + ".codes", "twice")),
    ("dense codes 85 and \"85\"", task(dense([85, "85"], ["T1_A"], [[1], [2]])), Skip(DENSE + ".codes", "twice")),
    ("dense duplicate sites", task(dense(["85"], ["T1_A", "T1_A"], [[1, 2]])), Skip(DENSE + ".sites", "twice")),
    ("dense null site", task(dense(["85"], [None], [[1]])), Skip("errors.good_sites.sites", "string")),
    ("dense number site", task(dense(["85"], [7], [[1]])), Skip("errors.good_sites.sites", "string")),
    ("dense extra key", task(dense(["85"], ["T1_A"], [[1]], note="x")), Skip("errors.good_sites", "exactly")),
    ("dense short row", task(dense(["85"], ["T1_A", "T2_B"], [[1]])), Skip("errors.good_sites.matrix", "counts")),
    ("dense rows for codes", task(dense(["85", "86"], ["T1_A"], [[1]])), Skip("errors.good_sites.matrix", "rows")),
    ("dense codes not a list", task(dense("85", ["T1_A"], [[1]])), Skip("errors.good_sites", "lists")),
    ("dense float count", task(dense(["85"], ["T1_A"], [[1.5]])), Skip("errors.good_sites.85.T1_A", "integer")),
    ("dense bool code", task(dense([True], ["T1_A"], [[1]])), Skip("errors.good_sites.codes", "integer")),
    # exit codes
    ("superscript code", task(errors('{"T1_A": 1}', code="²")), Skip("errors.good_sites.²", "canonical")),
    ("arabic-indic code", task(errors('{"T1_A": 1}', code="٣")), Skip("errors.good_sites.٣", "canonical")),
    ("leading zero code", task(errors('{"T1_A": 1}', code="050660")), Skip("errors.good_sites.050660", "canonical")),
    ("negative zero code", task(errors('{"T1_A": 1}', code="-0")), Skip("errors.good_sites.-0", "canonical")),
    ("empty code", task(errors('{"T1_A": 1}', code="")), Skip("errors.good_sites.", "canonical")),
    ("code with space", task(errors('{"T1_A": 1}', code="85 ")), Skip("errors.good_sites.85 ", "canonical")),
    ("code of 11 digits", task(errors('{"T1_A": 1}', code="12345678901")),
     Skip("errors.good_sites.12345678901", "10 digits")),
    ("float code", task(errors('{"T1_A": 1}', code="1e3")), Skip("errors.good_sites.1e3", "canonical")),
    # counts
    ("count 2**63", task(errors('{"T1_A": %d}' % 2**63)), Skip(f"{ROW}.T1_A", "64 bits")),
    ("count 2**64", task(errors('{"T1_A": %d}' % 2**64)), Skip(f"{ROW}.T1_A", "64 bits")),
    ("negative count", task(errors('{"T1_A": -1}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count 1.0", task(errors('{"T1_A": 1.0}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count -0.0", task(errors('{"T1_A": -0.0}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count 1e2", task(errors('{"T1_A": 1e2}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count NaN", task(errors('{"T1_A": NaN}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count Infinity", task(errors('{"T1_A": Infinity}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count string", task(errors('{"T1_A": "3"}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count null", task(errors('{"T1_A": null}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count true", task(errors('{"T1_A": true}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    ("count object", task(errors('{"T1_A": {"n": 1}}')), Skip(f"{ROW}.T1_A", "non-negative integer")),
    # site and status names
    ("empty site", task(errors('{"": 1}')), Skip(f"{ROW}.", "1 to 200")),
    ("site of 1 MB", task(errors('{"%s": 1}' % ("T" * 2**20))), Skip(None, "1 to 200")),
    ("lone surrogate site", task(errors('{"\\ud800": 1}')), Skip(None, "printable")),
    ("site with a colon", task(errors('{"T1_US:FNAL": 1}')), Skip(f"{ROW}.T1_US:FNAL", "':'")),
    ("site with a newline", task(errors('{"T1\\nX": 1}')), Skip(None, "printable")),
    ("status with a colon", task(errors('{"T1_A": 1}', status="go:od_sites")), Skip("errors.go:od_sites", "':'")),
    ("empty status", task(errors('{"T1_A": 1}', status="_sites")), Skip("errors._sites", "1 to 200")),
    # wrong types at every level
    ("task is a string", task('"acdc"'), Skip(None, "must be an object")),
    ("task is null", task("null"), Skip(None, "must be an object")),
    ("task is an array", task("[1, 2]"), Skip(None, "must be an object")),
    ("errors missing", task('{"parameters": {"action": "acdc"}}'), Skip("errors", "missing")),
    ("errors null", task('{"errors": null}'), Skip("errors", "missing")),
    ("errors an array", task('{"errors": [1]}'), Skip("errors", "must be")),
    ("matrix an array", task('{"errors": {"good_sites": [1, 2]}}'), Skip("errors.good_sites", "must be")),
    ("row an array", task(errors("[1]")), Skip(ROW, "must be an object")),
    ("row a number", task(errors("7")), Skip(ROW, "must be an object")),
    ("unknown task field", task('{"errors": {"good_sites": {"85": {"T1_A": 1}}}, "parameter": {"action": "acdc"}}'),
     Skip("parameter", "unknown field")),
    # task names
    ("name without a task", task(errors('{"T1_A": 1}'), name="/onlyworkflow"),
     Skip("<name>", "/<workflow>/<task>", task="/onlyworkflow")),
    ("empty name", task(errors('{"T1_A": 1}'), name=""), Skip("<name>", "/<workflow>/<task>", task="")),
    ("name with a newline", task(errors('{"T1_A": 1}'), name="/wfz/bad\n"),
     Skip("<name>", "printable", task="/wfz/bad\n")),
    ("name of 2000 chars", task(errors('{"T1_A": 1}'), name="/wfz/" + "b" * 2000),
     Skip("<name>", "at most", task="/wfz/" + "b" * 2000)),
    # parameters
    ("parameters null", task('{"errors": {"good_sites": {"85": {"T1_A": 1}}}, "parameters": null}'),
     Skip("parameters", "is null")),
    ("parameters an array", task('{"errors": {"good_sites": {"85": {"T1_A": 1}}}, "parameters": ["acdc"]}'),
     Skip("parameters", "must be an object")),
    ("action missing", task('{"errors": {"good_sites": {"85": {"T1_A": 1}}}, "parameters": {"memory": "3000"}}'),
     Skip("parameters.action", "must be one of")),
    ("action a number", task('{"errors": {"good_sites": {"85": {"T1_A": 1}}}, "parameters": {"action": 1}}'),
     Skip("parameters.action", "must be one of")),
    ("memory true", task(params('"memory": true')), Skip("parameters.memory", "memory")),
    ("memory NaN", task(params('"memory": NaN')), Skip("parameters.memory", "finite")),
    ("memory 1e400", task(params('"memory": 1e400')), Skip("parameters.memory", "finite")),
    ("memory of 400 digits", task(params('"memory": 1%s' % ("0" * 400))), Skip("parameters.memory", "64 bits")),
    ("memory negative", task(params('"memory": -5')), Skip("parameters.memory", "positive")),
    ("splitting 0x", task(params('"splitting": "0x"')), Skip("parameters.splitting", "n >= 1")),
    ("splitting 02x", task(params('"splitting": "02x"')), Skip("parameters.splitting", "leading zeros")),
    ("splitting NaN", task(params('"splitting": NaN')), Skip("parameters.splitting", "finite")),
    ("splitting a list", task(params('"splitting": ["2x"]')), Skip("parameters.splitting", "splitting")),
    ("xrootd maybe", task(params('"xrootd": "maybe"')), Skip("parameters.xrootd", "xrootd")),
    ("xrootd Infinity", task(params('"xrootd": Infinity')), Skip("parameters.xrootd", "finite")),
    ("cores true", task(params('"cores": true')), Skip("parameters.cores", "positive integer")),
    ("cores -1", task(params('"cores": -1')), Skip("parameters.cores", "positive integer")),
    ("cores 0", task(params('"cores": 0')), Skip("parameters.cores", "positive integer")),
    ("cores 4.0", task(params('"cores": 4.0')), Skip("parameters.cores", "positive integer")),
    ("cores \"04\"", task(params('"cores": "04"')), Skip("parameters.cores", "positive integer")),
    ("cores a list", task(params('"cores": [4]')), Skip("parameters.cores", "positive integer")),
    ("cores an object", task(params('"cores": {}')), Skip("parameters.cores", "positive integer")),
    ("sites a string", task(params('"sites": "T1_US_FNAL"')), Skip("parameters.sites", "list of site names")),
    ("sites with null", task(params('"sites": [null]')), Skip("parameters.sites", "list of site names")),
    ("sites with empty", task(params('"sites": [""]')), Skip("parameters.sites", "1 to 200")),
    ("sites with a colon", task(params('"sites": ["T1:X"]')), Skip("parameters.sites", "':'")),
    ("other field an object", task(params('"note": {"a": 1}')), Skip("parameters.note", "JSON scalar")),
    ("other field nested list", task(params('"note": [[1]]')), Skip("parameters.note", "JSON scalar")),
    ("other field huge int", task(params('"note": %d' % 10**30)), Skip("parameters.note", "64 bits")),
    ("other field NaN", task(params('"note": NaN')), Skip("parameters.note", "finite")),
    ("other field lone surrogate", task(params('"note": "\\udc80"')), Skip("parameters.note", "JSON scalar")),
    ("other field duplicate key", task(params('"note": {"a": 1, "a": 2}')), Skip("parameters.note", "twice")),
    # whole files
    ("empty file", "", Fatal("empty")),
    ("only whitespace", " \n\t ", Fatal("empty")),
    ("deeply nested array", "[" * 100000, Fatal("nested too deeply")),
    ("deeply nested objects", '{"a":' * 100000, Fatal("nested too deeply")),
    ("top-level array", "[]", Fatal("top level must be an object")),
    ("top-level string", '"history"', Fatal("top level must be an object")),
    ("top-level number", "42", Fatal("top level must be an object")),
    ("top-level null", "null", Fatal("top level must be an object")),
    ("no tasks", "{}", Fatal("no tasks")),
    ("truncated", task(errors('{"T1_A": 1}'))[:-40], Fatal("invalid JSON")),
    ("trailing garbage", task(errors('{"T1_A": 1}')) + " x", Fatal("invalid JSON")),
    ("byte-order mark", "\ufeff" + task(errors('{"T1_A": 1}')), Fatal("BOM")),
    ("UTF-16", task(errors('{"T1_A": 1}')).encode("utf-16"), Fatal("not UTF-8")),
    ("invalid UTF-8", b'{"/w/t": {"errors": {"good_sites": {"85": {"\xff": 1}}}}}', Fatal("not UTF-8")),
    ("count of 5000 digits", task(errors('{"T1_A": 1%s}' % ("0" * 5000))), Fatal("invalid JSON")),
    ("every status renamed", json.dumps({t: {"errors": {"gut_sites": {"85": {"T1_A": 1}}}} for t in GOOD}),
     Fatal("no task has a non-zero error count")),
    ("every count zero", json.dumps({t: {"errors": {"good_sites": {"85": {"T1_A": 0}}}} for t in GOOD}),
     Fatal("no task has a non-zero error count")),
    ("only tasks without errors", json.dumps({t: {"errors": {}} for t in GOOD}), Fatal("no task has a non-zero")),
    ("the only task bad", '{"/w/t": {"errors": {"good_sites": {"85": {"T1_A": -1}}}}}',
     Fatal("count must be a non-negative integer", task="/w/t")),
]


def test_the_catalogue_is_large_and_named_uniquely():
    names = [name for name, _, _ in CATALOGUE]
    assert len(names) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize("name, content, outcome", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_hostile_input(tmp_path, name, content, outcome):
    check_case(tmp_path, name, content, outcome)


def test_a_good_file_loads(tmp_path):
    history = load_history(write_case(tmp_path, json.dumps(GOOD)))
    assert_only_good_tasks(history)
    assert not history.skipped


def test_skipped_tasks_leave_no_trace_in_the_vocabulary(tmp_path):
    content = dict(GOOD)
    content["/wfz/bad1"] = {"errors": {"50660_sites": {"77777": {"T9_XX_Leak": 5}}}, "parameters": {"action": "nope"}}
    content["/wfz/bad2"] = {"errors": {"leaky": {"88888": {"T9_XX_Leak": -5}}}}
    history = load_history(write_case(tmp_path, json.dumps(content)), strict=False, use_cache=False)
    assert_only_good_tasks(history)
    assert [t for t, _ in history.skipped] == ["/wfz/bad1", "/wfz/bad2"]


def test_describe_totals_never_overflow(tmp_path):
    from wtc.data.describe import describe_history

    big = 2**63 - 1
    content = {"/w/a": {"errors": {"good_sites": {"85": {"T1_A": big}}}},
               "/w/b": {"errors": {"good_sites": {"85": {"T1_A": big}}}}}
    summary = describe_history(load_history(write_case(tmp_path, json.dumps(content)), use_cache=False))
    assert summary["total_errors"] == 2 * big
    json.dumps(summary)


def test_colons_inside_strings_are_not_mistaken_for_duplicates(tmp_path):
    # A ":" outside any key sends the loader to the careful path, which must accept the file.
    content = {"/w/a": {"errors": {"good_sites": {"85": {"T1_A": 1}}}, "parameters": {"action": "acdc",
                                                                                    "note": "a:b", "x": ["1:2"]}}}
    history = load_history(write_case(tmp_path, json.dumps(content)), use_cache=False)
    assert history.parameter_records[0]["note"] == "a:b"


# --- the same inputs through the entry points -----------------------------------------------------

ENTRY_POINT_CASES = ["deeply nested array", "duplicate task name behind escapes", "every status renamed"]


def _case(name):
    return next(c for c in CATALOGUE if c[0] == name)


@pytest.mark.parametrize("name", ENTRY_POINT_CASES)
def test_cli_answers_in_one_line(tmp_path, name, capsys):
    from wtc.cli import main

    _, content, outcome = _case(name)
    path = write_case(tmp_path, content)
    # In this process: an exception escaping main() (a traceback at the prompt) fails the test.
    assert main(["data", "describe", str(path)]) != 0
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(path) in lines[0] and outcome.message in lines[0]
    assert main(["data", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert str(path) in out and outcome.message in out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deeply nested array", "every status renamed"])
def test_run_answers_in_one_line(tmp_path, name):
    _, content, outcome = _case(name)
    path = write_case(tmp_path, content)
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), f"data.path={path}", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
         f"hydra.run.dir={tmp_path}/out", f"paths.cache_dir={tmp_path}/cache", "search=none"],
        capture_output=True, text=True, timeout=300, env=case_env(tmp_path), cwd=tmp_path, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(path) in lines[0] and outcome.message in lines[0]


def test_every_float_literal_is_refused_as_a_count(tmp_path):
    for literal in ("1.0", "-0.0", "1e0", "NaN", "-Infinity"):
        path = write_case(tmp_path, '{"/w/a": {"errors": {"good_sites": {"85": {"T1_A": %s}}}}}' % literal)
        with pytest.raises(WtcError, match="non-negative integer"):
            load_history(path, use_cache=False)


# --- any input at all: a History or the project's own error ----------------------------------------

PROPERTY = settings(max_examples=200, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**62, max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)
HOSTILE = st.sampled_from(["²", "٣", "050660", "-0", "", "T1:X", "\ud800", "x" * 300, 2**63, -1, True, None, 1.0,
                           float("nan"), "0x", [], {}, "/w", "\n"])
WORKFLOWS, CODES = ["wfa", "wfb", "wfc"], ["-1", "85", "8001", "50660", "71304"]
SITES, STATUSES = ["T1_US_FNAL", "T2_CH_CERN", "T2_US_MIT", "Unknown"], ["good_sites", "bad_sites", "drain_sites"]
MATRICES = st.dictionaries(st.sampled_from(CODES), st.dictionaries(st.sampled_from(SITES), st.integers(0, 50),
                                                                  max_size=3), max_size=3)
PARAMETERS = st.fixed_dictionaries({"action": st.sampled_from(["acdc", "recovery", "clone", "by-pass"])}, optional={
    "splitting": st.sampled_from(["1x", "2x", "50x", "max"]), "xrootd": st.sampled_from(["enabled", "disabled"]),
    "memory": st.sampled_from(["3000", 20000, ""]), "sites": st.lists(st.sampled_from(SITES), max_size=2),
    "cores": st.sampled_from(["", 4, "8"])})
ERRORS = st.dictionaries(st.sampled_from(STATUSES), MATRICES, min_size=1, max_size=3)
RECORDS = st.fixed_dictionaries({"errors": ERRORS}, optional={"parameters": PARAMETERS})
HISTORIES = st.dictionaries(st.builds(lambda w, t: f"/{w}/{t}", st.sampled_from(WORKFLOWS), st.text("abc_0", min_size=1,
                                                                                                  max_size=4)),
                            RECORDS, min_size=1, max_size=6)


def _paths_of(value, prefix=()):
    """Every path to a value inside nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths_of(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths_of(inner, (*prefix, index))


@st.composite
def corrupted_histories(draw) -> bytes:
    """A history, with one value replaced by a hostile one, a key renamed, or its text cut or doubled."""
    history = draw(HISTORIES)
    kind = draw(st.sampled_from(["none", "value", "key", "truncate", "duplicate task", "duplicate key"]))
    paths = [p for p in _paths_of(history) if p]
    if kind in ("value", "key") and paths:
        path = draw(st.sampled_from(paths))
        parent = history
        for step in path[:-1]:
            parent = parent[step]
        replacement = draw(HOSTILE | JSON_VALUES)
        if kind == "key" and isinstance(parent, dict) and isinstance(replacement, str):
            parent[replacement] = parent.pop(path[-1])
        else:
            parent[path[-1]] = replacement
    text = json.dumps(history)
    if kind == "truncate":
        text = text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    elif kind == "duplicate task":
        name = next(iter(history))
        text = text[:-1] + f', {json.dumps(name).replace("/", chr(92) + "/")}: {{"errors": {{}}}}}}'
    elif kind == "duplicate key" and '{"T' in text:
        at = text.index('{"T') + 1
        text = text[:at] + '"T1_US_FNAL": 7, ' + text[at:]
    return text.encode("utf-8", "surrogatepass")


def _outcome(path: Path, strict: bool):
    try:
        return load_history(path, strict=strict, use_cache=False)
    except WtcError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return exc


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hypothesis") / "history.json"


@PROPERTY
@given(value=JSON_VALUES)
def test_any_json_value_loads_or_fails_in_one_line(scratch, value):
    scratch.write_bytes(json.dumps(value).encode("utf-8", "surrogatepass"))
    for strict in (True, False):
        assert isinstance(_outcome(scratch, strict), (History, WtcError))


class _BrokenDecoder:
    def decode(self, raw):
        raise loader_module.msgspec.DecodeError("forced")


@PROPERTY
@given(raw=corrupted_histories())
def test_any_corrupted_history_loads_or_fails_in_one_line(scratch, raw):
    scratch.write_bytes(raw)
    strict = _outcome(scratch, True)
    lenient = _outcome(scratch, False)
    assert isinstance(strict, (History, WtcError)) and isinstance(lenient, (History, WtcError))
    if isinstance(strict, History):  # lenient loading changes nothing in a valid file
        assert isinstance(lenient, History) and lenient.tasks == strict.tasks and not lenient.skipped
    if isinstance(lenient, History):
        assert set(lenient.tasks).isdisjoint(t for t, _ in lenient.skipped)
        assert lenient.nnz > 0
    # The fast path and the careful one give the same answer.
    with mock.patch.object(loader_module, "_TASKS", _BrokenDecoder()):
        careful = _outcome(scratch, True)
    if isinstance(strict, History):
        assert isinstance(careful, History)
        assert (careful.tasks, careful.codes, careful.sites, careful.statuses) == \
            (strict.tasks, strict.codes, strict.sites, strict.statuses)
        assert careful.entry_count.tolist() == strict.entry_count.tolist()
    else:
        assert isinstance(careful, WtcError) and str(careful) == str(strict)
