"""The wtc command line: describe, check, generate; errors are one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import SMALL_HISTORY, write_json
from wtc.cli import main


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
    assert "task '/w/one': errors.good_sites.85.T1_US_FNAL" in out
    assert "task '/w/two': parameters.splitting" in out


def test_check_fatal_file(tmp_path, capsys):
    path = tmp_path / "cut.json"
    path.write_text('{"/w/a": {"errors": ')
    assert main(["data", "check", str(path)]) == 1
    assert "FATAL" in capsys.readouterr().out


def test_generate_then_describe(tmp_path, capsys):
    out_path = tmp_path / "gen.json"
    assert main(["data", "generate", "--tasks", "300", "--seed", "2", "--out", str(out_path)]) == 0
    assert out_path.exists() and out_path.with_name("gen.oracle.parquet").exists()
    capsys.readouterr()
    assert main(["data", "describe", str(out_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"] == 300


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00", b'{"/w/t": {"errors": {"good_sites": {"x": {}}}}}'])
def test_errors_are_one_line_without_traceback(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "wtc.cli", "data", "describe", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
