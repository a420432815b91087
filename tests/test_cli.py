"""The wtc command line: describe, check, generate; errors are one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.factories import SMALL_HISTORY, write_json
from wtc.cli import main
from wtc.data.synthetic import load_oracle_table


def test_describe_text(small_history_path, capsys):
    assert main(["data", "describe", str(small_history_path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert lines["tasks"].split()[1:] == ["5", "(4", "labelled,", "1", "unlabelled)"]
    assert lines["workflows"].split()[1] == "2" and lines["sites"].split()[1] == "7"
    assert "drain" in lines["statuses"]
    assert lines["action_split:"].split(":", 1)[1].strip() == "acdc_2x 1, acdc_50x 1, clone_max 1, special_1x 1"


def test_describe_json(small_history_path, capsys):
    assert main(["data", "describe", str(small_history_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks"] == 5 and summary["labelled"] == 4 and summary["unlabelled"] == 1
    assert summary["workflows"] == 2 and summary["codes"] == 6 and summary["sites"] == 7
    assert summary["nonzeros"] == 12
    assert summary["classes"]["binary"] == {"acdc": 2, "non-acdc": 2}
    assert summary["campaigns"] == {"RunIIFall17wmLHEGS": 3, "RunIIFall17DRStdmix": 2}


def test_check_clean_file(small_history_path, capsys):
    assert main(["data", "check", str(small_history_path)]) == 0
    out = capsys.readouterr().out
    assert "5 valid task(s), 0 malformed, 1 unlabelled" in out
    assert "drain" in out  # statuses beyond good/bad are reported


def test_check_reports_every_bad_task(tmp_path, capsys):
    content = dict(SMALL_HISTORY)
    content["/w/one"] = {"errors": {"good_sites": {"85": {"T1_US_FNAL": -4}}}}
    content["/w/two"] = {"errors": {}, "parameters": {"action": "acdc", "splitting": "often"}}
    path = write_json(tmp_path / "mixed.json", content)
    assert main(["data", "check", path]) == 1
    out = capsys.readouterr().out
    assert "2 malformed" in out
    # Each bad task with its field *and* the reason it failed.
    assert "task '/w/one': field errors.good_sites.85.T1_US_FNAL: count must be a non-negative integer, got -4" in out
    assert "task '/w/two': field parameters.splitting: splitting must be '<n>x' or 'max', got 'often'" in out


def test_check_counts_the_problems_beyond_the_listed_ones_by_reason(tmp_path, capsys):
    content = dict(SMALL_HISTORY)
    content.update({f"/w/neg{i}": {"errors": {"good_sites": {"85": {f"T2_US_S{i}": -i - 1}}}} for i in range(5)})
    content["/w/code"] = {"errors": {"bad_sites": {"x85": {"T1_US_FNAL": 1}}}}
    path = write_json(tmp_path / "many.json", content)
    assert main(["data", "check", path, "--max-problems", "2"]) == 1
    out = capsys.readouterr().out
    assert sum(line.startswith("  ERROR") for line in out.splitlines()) == 2
    assert "... and 4 more; every problem by kind:" in out
    counts = {line.split(None, 1)[1]: int(line.split()[0]) for line in out.splitlines() if line.startswith("    ")}
    assert counts == {"count must be a non-negative integer": 5, "exit code must be an integer": 1}


def test_check_fatal_file(tmp_path, capsys):
    path = tmp_path / "cut.json"
    path.write_text('{"/w/a": {"errors": ')
    assert main(["data", "check", str(path)]) == 1
    assert "FATAL" in capsys.readouterr().out


def test_generate_writes_the_name_blind_oracle_on_request(tmp_path, capsys):
    out_path = tmp_path / "gen.json"
    assert main(["data", "generate", "--tasks", "60", "--seed", "2", "--out", str(out_path), "--blind-samples", "2"]) == 0
    blind = load_oracle_table(out_path, blind=True)
    out = capsys.readouterr().out
    assert len(blind) == 60 and "name-blind oracle (2 whitelist samples" in out
    assert len(load_oracle_table(out_path, blind=True, workflow=True)) == 60
    assert "name-blind workflow oracle (2 whitelist samples per workflow)" in out


def test_generate_then_describe(tmp_path, capsys):
    out_path = tmp_path / "gen.json"
    assert main(["data", "generate", "--tasks", "300", "--seed", "2", "--out", str(out_path)]) == 0
    assert out_path.exists() and out_path.with_name("gen.oracle.parquet").exists()
    assert out_path.with_name("gen.workflow_oracle.parquet").exists()
    assert not out_path.with_name("gen.blind_oracle.parquet").exists()  # minutes: only on request
    assert not out_path.with_name("gen.workflow_blind_oracle.parquet").exists()
    capsys.readouterr()
    assert main(["data", "describe", str(out_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == 300


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00", b'{"/w/t": {"errors": {"good_sites": {"x": {}}}}}'])
def test_errors_are_one_line_without_traceback(tmp_path, content, capsys):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    # In this process: an exception escaping main() (a traceback at the prompt) fails the test.
    assert main(["data", "describe", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]


def _actions(parser, seen=None):
    """Every argument of every (sub)command, with the parser it belongs to."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        if not isinstance(action, argparse._HelpAction):
            yield parser.prog, action


def test_every_argument_has_a_help_text():
    from wtc.cli import build_parser

    actions = list(_actions(build_parser()))
    assert len(actions) > 10
    missing = [f"{prog} {action.dest}" for prog, action in actions if not action.help]
    assert not missing, missing


@pytest.mark.parametrize("argv, message", [
    (["data"], "the following arguments are required: ACTION"),
    (["data", "frobnicate"], "invalid choice: 'frobnicate'"),
    (["data", "generate", "--tasks", "0", "--out", "x.json"], "argument --tasks: must be at least 1, got 0"),
    (["data", "generate", "--blind-samples", "-1", "--out", "x.json"], "argument --blind-samples: must be at least 0"),
    (["data", "describe", "a.json", "--colour"], "unrecognized arguments: --colour"),
    (["compare", "--top", "3"], "the following arguments are required: --out"),
    (["promote", "--experiment", "e", "--name", "n", "--delta", "1"], "argument --delta: must be in [0, 1)"),
    (["promote", "--experiment", "e", "--name", "n", "--alpha", "0.1", "--precision", "0.9"],
     "argument --precision: not allowed with argument --alpha"),
])
def test_wrong_arguments_give_usage_and_one_error_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's exit, nothing else
        main(argv)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("usage: wtc")
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and errors[0] == lines[-1] and message in errors[0], err


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(tmp_path):
    """``wtc data describe FILE | head -1``: the reader goes away; no 'Broken pipe' error, no traceback."""
    history = tmp_path / "gen.json"
    assert main(["data", "generate", "--tasks", "200", "--out", str(history)]) == 0
    process = subprocess.Popen([sys.executable, "-m", "wtc.cli", "data", "describe", str(history), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before wtc writes its first line
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 1, stderr  # 1: what Python's documented recipe exits with
    assert stderr == ""



def test_python_m_wtc_cli_is_the_wtc_command(small_history_path, monkeypatch, capsys):
    """``python -m wtc.cli ARGS`` (wtc/cli/__main__.py) run in this process: main's exit code becomes the exit status."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["wtc", "data", "describe", str(small_history_path), "--json"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("wtc.cli", run_name="__main__")
    assert exit_.value.code == 0 and json.loads(capsys.readouterr().out)["tasks"] == 5
    monkeypatch.setattr(sys, "argv", ["wtc", "data", "describe", str(small_history_path.with_name("missing.json"))])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("wtc.cli", run_name="__main__")
    assert exit_.value.code == 2 and capsys.readouterr().err.startswith("error: ")


def test_generate_never_writes_over_an_existing_file_without_force(tmp_path, capsys):
    """An existing history (or an oracle beside it) is refused in one line naming the file; --force writes over it."""
    out_path = tmp_path / "gen.json"
    out_path.write_text('{"mine": 1}')
    args = ["data", "generate", "--tasks", "40", "--seed", "2", "--out", str(out_path)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: --out {out_path} exists: pass --force to write over it, or choose another file"]
    assert out_path.read_text() == '{"mine": 1}' and not out_path.with_name("gen.oracle.parquet").exists()
    other = tmp_path / "other.json"
    other.with_name("other.oracle.parquet").write_text("theirs")
    assert main([*args[:-1], str(other)]) == 2
    assert f"--out's oracle {other.with_name('other.oracle.parquet')} exists" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert json.loads(out_path.read_text()) != {"mine": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
