"""Hostile histories, second round: statuses given twice, look-alike names, memory text, deep tasks
isolated, encodings named, paths that are not regular files, warnings that stay one line.

Same table style as ``test_hostile``: (name, content, outcome), each checked strict and lenient by
that module's own check. ``DeepTask``: strict, one line naming the file; lenient, only that task is
left out (with the field that holds the depth) and every good task is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.data.hostile import (
    BAD,
    GOOD,
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
from wtc.data import HistoryError, load_history


@dataclass(frozen=True)
class DeepTask:
    """A task too deep to decode: strict, the file in one line; lenient, only BAD skipped, with ``field``."""

    field: str
    task: str = BAD


def two_statuses(first: str, second: str, second_matrix: str = '{"85": {"T1_A": 2}}') -> str:
    return '{"errors": {%s: {"85": {"T1_A": 1}}, %s: %s}}' % (json.dumps(first), json.dumps(second), second_matrix)


def deep(n: int) -> str:
    return "[" * n + "]" * n


NFD_CAFE, FULLWIDTH = "cafe\u0301", "\uff34\uff11_US_FNAL"  # café decomposed; Ｔ１_US_FNAL
CATALOGUE = [
    # one status under two keys: the decoder would sum them
    ("good_sites and good", task(two_statuses("good_sites", "good")), Skip("errors.good", "given twice")),
    ("good and good_sites", task(two_statuses("good", "good_sites")), Skip("errors.good_sites", "given twice")),
    ("bad and bad_sites", task(two_statuses("bad", "bad_sites")), Skip("errors.bad_sites", "given twice")),
    ("other status under both keys", task(two_statuses("drain_sites", "drain")), Skip("errors.drain", "given twice")),
    ("both keys, one dense", task(two_statuses("good_sites", "good", json.dumps({"codes": ["85"], "sites": ["T1_A"], "matrix": [[2]]}))),
     Skip("errors.good", "given twice")),
    ("both keys, second empty", task(two_statuses("good_sites", "good", "{}")), Skip("errors.good", "given twice")),
    # look-alike site and status names
    ("site decomposed (NFD)", task(errors('{"%s": 1}' % NFD_CAFE)), Skip(f"{ROW}.{NFD_CAFE}", "NFKC")),
    ("site in fullwidth letters", task(errors('{"%s": 1}' % FULLWIDTH)), Skip(f"{ROW}.{FULLWIDTH}", "NFKC")),
    ("site with a ligature", task(errors('{"T2_\ufb01X": 1}')), Skip(f"{ROW}.T2_\ufb01X", "NFKC")),
    ("site a single space", task(errors('{" ": 1}')), Skip(f"{ROW}. ", "space")),
    ("site with a trailing space", task(errors('{"T1_US_FNAL ": 1}')), Skip(f"{ROW}.T1_US_FNAL ", "space")),
    ("site with a leading space", task(errors('{" T1_US_FNAL": 1}')), Skip(f"{ROW}. T1_US_FNAL", "space")),
    ("site with a non-breaking space", task(errors('{"T1_US_FNAL\u00a0": 1}')), Skip(None, "printable")),
    ("dense site with a trailing space", task(dense(["85"], ["T1_A "], [[1]])), Skip("errors.good_sites.sites", "space")),
    ("status in fullwidth letters", task(errors('{"T1_A": 1}', status="\uff47ood_sites")),
     Skip("errors.\uff47ood_sites", "NFKC")),
    ("status with a trailing space", task(errors('{"T1_A": 1}', status="good ")), Skip("errors.good ", "space")),
    ("parameters site with a trailing space", task(params('"sites": ["T1_US_FNAL "]')),
     Skip("parameters.sites", "space")),
    ("parameters site decomposed", task(params('"sites": ["%s"]' % NFD_CAFE)), Skip("parameters.sites", "NFKC")),
    # look-alike task names (and so workflows)
    ("task name decomposed", task(errors('{"T1_A": 1}'), name="/wfz/" + NFD_CAFE),
     Skip("<name>", "NFKC", task="/wfz/" + NFD_CAFE)),
    ("workflow in fullwidth letters", task(errors('{"T1_A": 1}'), name="/\uff57fz/bad"),
     Skip("<name>", "NFKC", task="/\uff57fz/bad")),
    ("task name with a trailing slash", task(errors('{"T1_A": 1}'), name="/wfz/bad/"),
     Skip("<name>", "empty part", task="/wfz/bad/")),
    ("task name with a double slash", task(errors('{"T1_A": 1}'), name="/wfz//bad"),
     Skip("<name>", "empty part", task="/wfz//bad")),
    ("task name starting with two slashes", task(errors('{"T1_A": 1}'), name="//wfz/bad"),
     Skip("<name>", "empty part", task="//wfz/bad")),
    ("task name with a trailing space", task(errors('{"T1_A": 1}'), name="/wfz/bad "),
     Skip("<name>", "space", task="/wfz/bad ")),
    ("workflow with a trailing space", task(errors('{"T1_A": 1}'), name="/wfz /bad"),
     Skip("<name>", "space", task="/wfz /bad")),
    ("workflow with a leading space", task(errors('{"T1_A": 1}'), name="/ wfz/bad"),
     Skip("<name>", "space", task="/ wfz/bad")),
    # memory text: ASCII digits only, as exit codes
    ("memory with underscores", task(params('"memory": "1_000_000"')), Skip("parameters.memory", "ASCII digits")),
    ("memory in fullwidth digits", task(params('"memory": "\uff13\uff10\uff10\uff10"')),
     Skip("parameters.memory", "ASCII digits")),
    ("memory in arabic-indic digits", task(params('"memory": "\u0663\u0660\u0660\u0660"')),
     Skip("parameters.memory", "ASCII digits")),
    ("memory with a leading space", task(params('"memory": " 3000"')), Skip("parameters.memory", "ASCII digits")),
    ("memory with a plus sign", task(params('"memory": "+3000"')), Skip("parameters.memory", "ASCII digits")),
    ("memory as an exponent", task(params('"memory": "3e3"')), Skip("parameters.memory", "ASCII digits")),
    ("memory with a thousands comma", task(params('"memory": "3,000"')), Skip("parameters.memory", "ASCII digits")),
    # one deep task costs only itself when loading leniently
    ("deep inside parameters", task(params('"note": ' + deep(100000))), DeepTask("parameters")),
    ("30,000 levels inside parameters", task(params('"note": ' + deep(30000))), DeepTask("parameters")),
    ("deep inside errors", task('{"errors": {"good_sites": %s}}' % deep(30000)), DeepTask("errors")),
    ("deep objects inside parameters", task(params('"note": ' + '{"a":' * 30000 + "1" + "}" * 30000)),
     DeepTask("parameters")),
    ("the task itself a deep array", task(deep(30000)), DeepTask("<task>")),
    # encodings named for what they are
    ("gzip-compressed", b"\x1f\x8b\x08\x00" + bytes(40), Fatal("gzip-compressed")),
    ("UTF-16 without a BOM", task(errors('{"T1_A": 1}')).encode("utf-16-le"), Fatal("UTF-16 (not UTF-8)")),
    ("UTF-16 big-endian", task(errors('{"T1_A": 1}')).encode("utf-16"), Fatal("UTF-16 (not UTF-8)")),
    ("deep and truncated", '{"/w/t": ' + "[" * 30000, Fatal("nested too deeply")),
]


def test_the_second_catalogue_is_named_uniquely():
    names = [name for name, _, _ in CATALOGUE]
    assert len(names) >= 40 and len(set(names)) == len(names)


@pytest.mark.parametrize("name, content, outcome", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_hostile_input_second_round(tmp_path, name, content, outcome):
    if not isinstance(outcome, DeepTask):
        check_case(tmp_path, name, content, outcome)
        return
    path = write_case(tmp_path, content)
    with pytest.raises(HistoryError) as info:
        load_history(path, use_cache=False)
    assert str(info.value) == f"{path}: invalid JSON: nested too deeply (a history is a few levels deep)"
    lenient = load_history(path, strict=False, use_cache=False)
    assert_only_good_tasks(lenient)
    assert lenient.skipped == [(outcome.task, f"{outcome.field}: nested too deeply (a task is a few levels deep)")]


def test_every_deep_task_is_left_out_alone(tmp_path):
    content = ('{"/wfy/deep1": %s, ' % params('"note": ' + deep(30000)) + json.dumps(GOOD)[1:-1]
               + ', "/wfy/deep2": {"errors": %s}}' % deep(30000))
    history = load_history(write_case(tmp_path, content), strict=False, use_cache=False)
    assert_only_good_tasks(history)
    assert [t for t, _ in history.skipped] == ["/wfy/deep1", "/wfy/deep2"]


def test_a_deep_task_repeated_by_name_is_a_duplicate(tmp_path):
    content = '{"/wfy/d": %s, ' % params('"note": ' + deep(30000)) + json.dumps(GOOD)[1:-1] + ', "/wfy/d": {"errors": {}}}'
    history = load_history(write_case(tmp_path, content), strict=False, use_cache=False)
    assert_only_good_tasks(history)
    assert history.skipped == [("/wfy/d", "<name>: duplicate task name")]


def test_one_status_name_in_two_tasks_is_fine(tmp_path):
    # "good" in one task and "good_sites" in another are one status, and no count is summed.
    content = {"/w/a": {"errors": {"good": {"85": {"T1_A": 1}}}}, "/w/b": {"errors": {"good_sites": {"85": {"T1_A": 2}}}}}
    history = load_history(write_case(tmp_path, json.dumps(content)), use_cache=False)
    assert history.statuses == ["good", "bad"] and history.entry_count.tolist() == [1, 2]


def test_plain_ascii_and_nfc_names_still_load(tmp_path):
    content = {"/w/caf\u00e9": {"errors": {"good_sites": {"85": {"T2_\u00c9X": 1}}}, "parameters": {"action": "acdc",
                                                                                                   "memory": "3000.5"}}}
    history = load_history(write_case(tmp_path, json.dumps(content, ensure_ascii=False)), use_cache=False)
    assert history.tasks == ["/w/caf\u00e9"] and history.sites == ["T2_\u00c9X"]


# --- the loader's warning stays one line, whatever the name -----------------------------------------

@pytest.mark.parametrize("name", ["/wfz/bad\nWARNING forged line", "/wfz/bad\r\nx", "/wfz/bad\u2028x", "/wfz/\x1b[31mred"])
def test_the_skip_warning_is_one_line(tmp_path, caplog, name):
    path = write_case(tmp_path, task(errors('{"T1_A": 1}'), name=name))
    with caplog.at_level(logging.WARNING, logger="wtc.data.loader"):
        load_history(path, strict=False, use_cache=False)
    (record,) = [r for r in caplog.records if "skipped" in r.getMessage()]
    message = record.getMessage()
    assert message.isprintable() and repr(name) in message


# --- paths that are not regular files, and files above the bound ------------------------------------

class _Hang(BaseException):
    pass


@pytest.fixture
def no_hang():
    def hang(signum, frame):
        raise _Hang("blocked for 30 s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _fifo(tmp_path):
    path = tmp_path / "fifo.json"
    os.mkfifo(path)
    return path


def _folder(tmp_path):
    path = tmp_path / "folder.json"
    path.mkdir()
    return path


def _socket(tmp_path):
    path = tmp_path / "s.json"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return path


def _dev_zero(tmp_path):
    return Path("/dev/zero")


def _oversized(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(GOOD) + " " * 2000)
    return path


def _symlink_to_fifo(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(_fifo(tmp_path))
    return link


PATHS = [  # (name, make the path, what the one line says)
    ("FIFO", _fifo, "a FIFO, not a regular file"),
    ("symlink to a FIFO", _symlink_to_fifo, "a FIFO, not a regular file"),
    ("/dev/zero", _dev_zero, "a character device, not a regular file"),
    ("folder", _folder, "cannot read the file"),
    ("unix socket", _socket, "cannot read the file"),
    ("above the size bound", _oversized, "more than the 1000 read at most"),
]


@pytest.mark.parametrize("name, make, message", PATHS, ids=[p[0] for p in PATHS])
def test_only_regular_files_within_the_bound_are_read(tmp_path, monkeypatch, no_hang, name, make, message):
    from wtc.ops.predict import _read_tasks

    monkeypatch.setenv("WTC_MAX_HISTORY_BYTES", "1000")
    path = make(tmp_path)
    for strict in (True, False):
        with pytest.raises(HistoryError) as info:
            load_history(path, strict=strict, cache_dir=tmp_path / "cache")
        assert str(info.value).startswith(f"{path}: cannot read the file") and message in str(info.value)
        assert "\n" not in str(info.value)
    with pytest.raises(Exception) as info:  # wtc predict reads its history the same way
        _read_tasks(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)


def test_the_size_bound_defaults_to_2_gib(monkeypatch):
    from wtc.data.files import max_bytes

    monkeypatch.delenv("WTC_MAX_HISTORY_BYTES", raising=False)
    assert max_bytes() == 2 * 1024**3
    monkeypatch.setenv("WTC_MAX_HISTORY_BYTES", "nonsense")
    assert max_bytes() == 2 * 1024**3


@pytest.mark.slow  # a subprocess: a hang is caught by its timeout, not by hanging pytest
@pytest.mark.parametrize("command", [["data", "check"], ["data", "describe"]])
def test_the_cli_does_not_hang_on_a_fifo_or_dev_zero(tmp_path, command):
    for path in (_fifo(tmp_path), Path("/dev/zero")):
        done = subprocess.run([sys.executable, "-m", "wtc.cli", *command, str(path)], capture_output=True, text=True,
                              timeout=60, env=case_env(tmp_path), cwd=tmp_path, check=False)
        output = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in output and "not a regular file" in output


def test_data_check_reports_a_status_given_twice(tmp_path, capsys):
    from wtc.cli import main

    path = write_case(tmp_path, task(two_statuses("good_sites", "good")))
    assert main(["data", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "1 malformed" in out
    assert f"ERROR {path}: task {BAD!r}: field errors.good: status 'good' given twice" in out


# --- normal histories are unchanged ----------------------------------------------------------------

def _fingerprint(history) -> str:
    digest = hashlib.sha256()
    for name in ("tasks", "statuses", "codes", "sites"):
        digest.update(json.dumps(getattr(history, name)).encode())
    for name in ("entry_task", "entry_status", "entry_code", "entry_site", "entry_count"):
        array = getattr(history, name)
        digest.update(str(array.dtype).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps(history.parameter_records, sort_keys=True).encode())
    digest.update(json.dumps(history.skipped).encode())
    return digest.hexdigest()


def test_the_default_benchmark_loads_exactly_as_before(tmp_path):
    # Figures taken with the loader before the second round of checks (commit 112c2fc).
    from wtc.data.synthetic import DEFAULT_TASKS, write_benchmark

    path = write_benchmark(tmp_path / "benchmark.json", DEFAULT_TASKS, seed=0)
    for use_cache in (False, True, True):  # a parse, then writing and reading the cache entry
        history = load_history(path, use_cache=use_cache, cache_dir=tmp_path / "cache")
        assert history.content_hash == "3deb7eabedbc6c25c7639abcf8bac0576b063ea4f8bb80de33349561c98b9b23"
        assert _fingerprint(history) == "e6445852a03e2dbd20e34028f5cdb1d6bf4e3793b50f7daf7cd69c94e2dc532d"


# --- wtc predict and the served model make the loader's duplicate checks -----------------------------

def _as_loader_says(path, name):
    """The loader's lenient reason for BAD in the file ``path``."""
    history = load_history(path, strict=False, use_cache=False)
    return dict(history.skipped)[name]


PREDICT_DUPLICATES = [  # (name, file content, the task refused)
    ("duplicate site key", task(errors('{"T1_A": 1, "T1_A": 9}')), BAD),
    ("duplicate code key", task('{"errors": {"good_sites": {"85": {"T1_A": 1}, "85": {"T1_A": 2}}}}'), BAD),
    ("duplicate parameters key", task(params('"action": "clone"')), BAD),
    ("status under two keys", task(two_statuses("good_sites", "good")), BAD),
    ("duplicate task name", task(errors('{"T1_A": 1}'))[:-1] + ', "/wfz/bad": {"errors": {}}}', BAD),
    ("duplicate task name behind escapes", task(errors('{"T1_A": 1}'))[:-1] + r', "\/wfz\/bad": {"errors": {}}}', BAD),
    ("deep task", task(params('"note": ' + deep(30000))), BAD),
]


@pytest.mark.parametrize("name, content, refused", PREDICT_DUPLICATES, ids=[c[0] for c in PREDICT_DUPLICATES])
def test_predict_reads_and_checks_a_history_as_the_loader_does(tmp_path, name, content, refused):
    from wtc.inference.tasks import read_tasks
    from wtc.ops.predict import _read_tasks

    path = write_case(tmp_path, content)
    batch = read_tasks(_read_tasks(path))
    reason = _as_loader_says(path, refused)
    refused_rows = [i for i, t in enumerate(batch.tasks) if t == refused]
    assert refused_rows and all(batch.errors[i] == reason for i in refused_rows)
    assert batch.history.tasks == list(GOOD)  # every good task kept, nothing collapsed


@pytest.mark.parametrize("name, content, refused", PREDICT_DUPLICATES[:4], ids=[c[0] for c in PREDICT_DUPLICATES[:4]])
def test_an_entry_sent_as_text_keeps_its_repeated_keys(tmp_path, name, content, refused):
    # A served request carries each entry as JSON text: its repeated keys reach the loader's checks.
    from wtc.data.decode import split_object
    from wtc.inference.tasks import read_tasks

    path = write_case(tmp_path, content)
    members = split_object(content)
    rows = [{"task": json.loads(k), "entry": v} for k, v in members]
    batch = read_tasks(rows)
    assert batch.errors[-1] == _as_loader_says(path, refused)
    assert batch.errors[:-1] == [None] * len(GOOD)


def test_a_task_sent_twice_to_the_model_is_refused_both_times():
    from wtc.inference.tasks import read_tasks

    entry = {"errors": {"good_sites": {"85": {"T1_A": 1}}}}
    batch = read_tasks([{"task": "/w/a", "entry": entry}, {"task": "/w/b", "entry": entry},
                        {"task": "/w/a", "entry": {"errors": {"bad_sites": {"85": {"T1_A": 1}}}}}])
    assert batch.errors == ["<name>: duplicate task name", None, "<name>: duplicate task name"]
    assert batch.history.tasks == ["/w/b"]
