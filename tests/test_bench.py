"""The benchmarks run and print their figures (no timing is asserted: machines are shared)."""

from __future__ import annotations

from wtc.bench import main


def test_data_benchmark_prints_figures(capsys):
    assert main(["data", "--sizes", "300"]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert "json.load_s" in header and "cached_s" in header and "peak_MB" in header
    assert row.split()[0] == "300" and len(row.split()) == len(header.split())


def test_sweep_benchmark_prints_figures(capsys):
    assert main(["sweep", "--tasks", "300", "--trials", "1", "--folds", "2", "--models", "dummy",
                 "--views", "good", "--resamplers", "none"]) == 0
    out = capsys.readouterr().out
    assert "s/job" in out and "figures" in out and "tracking" in out and "all 1 jobs" in out
    assert "(diagnostics=light)" in out
