"""The benchmarks run and print their figures (no timing is asserted: machines are shared)."""

from __future__ import annotations

import numpy as np
import pytest

from wtc.bench import bench_quality, main


def test_data_benchmark_prints_figures(capsys, monkeypatch):
    import gc

    # The benchmark collects garbage before each of its ~50 timed loads, to time them alike; in a
    # test session's heap that is ~1 s a collection, and no timing is asserted here.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
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
    assert "diagnostics=light" in out
    # The share is of everything after the final fit (+ MLflow before it), split three ways.
    row = next(line for line in out.splitlines() if line.strip().startswith("dummy:"))
    assert "record" in row and "of job time" in row and "scoring" in row


@pytest.mark.slow
def test_quality_benchmark_prints_one_table_per_target(capsys, tracking_uri):
    """Tiny history and budget: every row printed (FLAML too: the test extra installs it)."""
    tables = bench_quality(None, generate_seed=3, tasks=400, budget_s=3, targets=["binary"], trials=1,
                           recipes=["champion", "seed_xgb", "rules", "dummy", "flaml"], tracking_uri=tracking_uri)
    out = capsys.readouterr().out
    assert "log_loss" in out and "x oracle" in out and "cov@95" in out and "wall_s" in out and "x blind" in out
    assert "name-blind oracle (32 whitelist samples per task)" in out
    names = [r["recipe"] for r in tables["binary"]]
    assert names[:4] == ["champion", "seed_xgb", "rules", "dummy"] and names[4].startswith("flaml (")
    for row in tables["binary"]:
        assert row["oracle_log_loss"] > 0 and row["wall_s"] > 0 and 0 <= row["coverage_p95"] <= 1
        assert row["oracle_blind_log_loss"] > 0 and 0 <= row["oracle_blind_coverage_p95"] <= 1
        assert row["recipe"].split()[0] in out
    # the limits' own rows come first: the oracle, then the name-blind oracle (its figures, both ratios)
    oracle, blind = (line.split() for line in out.splitlines() if line.split()[:1] in (["oracle"], ["blind"]))
    assert float(oracle[1]) == pytest.approx(tables["binary"][0]["oracle_log_loss"], abs=1e-4)
    assert float(blind[2]) == pytest.approx(tables["binary"][0]["oracle_blind_log_loss"], abs=1e-4)
    assert float(blind[4]) == pytest.approx(1.0) and float(oracle[2]) == pytest.approx(1.0)
    # the workflow oracle (reads siblings) follows the blind oracle's row: its log-loss, AUC, coverage
    assert "workflow oracle: " in out and all(row["oracle_workflow_log_loss"] > 0 for row in tables["binary"])
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["workflow", "oracle"])
    assert lines[at - 1].split()[:2] == ["blind", "oracle"]
    workflow = lines[at].split()
    assert float(workflow[2]) == pytest.approx(tables["binary"][0]["oracle_workflow_log_loss"], abs=1e-4)
    assert float(workflow[6]) == pytest.approx(tables["binary"][0]["oracle_workflow_coverage_p95"], abs=1e-3)


def test_quality_benchmark_without_flaml_says_so_in_one_line(capsys, monkeypatch, tracking_uri):
    import sys

    monkeypatch.setitem(sys.modules, "flaml", None)  # import flaml -> ImportError
    assert main(["quality", "--generate-seed", "3", "--tasks", "300", "--targets", "binary",
                 "--recipes", "dummy,flaml", "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert "FLAML is not installed (pip install -e .[bench]): its row is left out" in out
    assert "flaml (" not in out and "dummy" in out


@pytest.mark.slow
def test_serve_benchmark_prints_every_tier_against_the_floor(capsys, history_400, tmp_path):
    """A small logged model behind a real `wtc serve`: every tier, thread count and batch gets its row."""
    from tests.factories import train
    from wtc.bench.serve import BATCHES, THREADS, bench_serve
    from wtc.store.logged_models import find_run_model
    from wtc.store.query import store_client

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = train(history_400, uri, "wtc-binary", "model=logreg")
    client = store_client(uri)
    model_uri = find_run_model(client, uri, client.get_run(result.run_id)).model_uri
    rows = bench_serve(str(history_400), model_uri, uri, seconds=0.2, trials=None)
    out = capsys.readouterr().out
    sizes = [min(b, 400) for b in BATCHES]  # a call holds distinct tasks: at most the history's 400
    assert {(r["tier"], r["threads"], r["batch"]) for r in rows} == {
        *(("floor", 1, b) for b in sizes), *(("in-process", 1, b) for b in sizes),
        *(("served", t, b) for t in THREADS for b in sizes)}
    assert all(r["tasks_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 for r in rows)
    assert "x_floor" in out and "server RSS" in out


@pytest.mark.parametrize("argv, message", [
    (["serve", "--model", "models:/x@champion"], "--model needs the --tracking-uri"),
    (["quality", "--blind-samples", "-3"], "must be at least 0, got -3"),
    (["quality", "--tasks", "10"], "give --generate-seed too"),
    (["sweep", "--folds", "0"], "must be at least 1"),
])
def test_benchmark_arguments_are_checked_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_python_m_wtc_bench_checks_its_arguments(monkeypatch, capsys):
    """``python -m wtc.bench`` (wtc/bench/__main__.py) run in this process."""
    import runpy
    import sys

    monkeypatch.setattr(sys, "argv", ["python -m wtc.bench", "sweep", "--folds", "0"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("wtc.bench", run_name="__main__")
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_gate_benchmark_prints_its_table_and_draws_its_figure(capsys, tmp_path):
    """Tiny histories, a cheap recipe and five draws: every row printed, the figure and table written."""
    from wtc.bench import bench_gate

    tables = bench_gate(None, generate_seed=5, tasks=600, fresh_tasks=1500, targets=("binary",), draws=5,
                        draw_tasks=200, quick=True, out=str(tmp_path))
    out = capsys.readouterr().out
    assert "violation rate" in out and "cov ÷ oracle" in out
    names = [row["row"] for row in tables["binary"]]
    assert names == [f"{mode}: {method}" for mode in ("promoted", "re-certified")
                     for method in ("ltt-workflow", "ltt-betting", "ltt-iid", "point estimate")]
    assert all(0 <= row["violation_rate"] <= 1 and 0 <= row["coverage_mean"] <= 1 for row in tables["binary"])
    assert (tmp_path / "train_600_seed5_binary.png").stat().st_size > 0
    assert "| promoted: ltt-workflow |" in (tmp_path / "train_600_seed5_binary.md").read_text()


def test_a_gate_dump_is_read_back_and_measured_without_retraining(tmp_path):
    from wtc.bench.gate import load_dump, measure

    rng = np.random.default_rng(4)

    def rows(n):
        conf = rng.uniform(0.5, 1.0, n)
        return conf, rng.random(n) < conf, (np.arange(n) // 3).astype(str)
    conf, right, groups = rows(900)
    fresh_conf, fresh_right, fresh_groups = rows(3000)
    np.savez_compressed(tmp_path / "d.npz", oof_y=np.where(right, 0, 1), oof_proba=np.c_[conf, 1 - conf],
                        oof_groups=groups, fresh_confidence=fresh_conf, fresh_correct=fresh_right,
                        fresh_groups=fresh_groups, fresh_workflow_oracle_confidence=fresh_conf,
                        fresh_workflow_oracle_correct=fresh_right)
    oof, fresh = load_dump(tmp_path / "d.npz")
    assert set(oof) == {"y", "proba", "groups"} and set(fresh.oracle) == {"workflow oracle"}
    np.testing.assert_array_equal(fresh.correct, fresh_right)
    table, _ = measure(oof, fresh, 0.05, 0.1, draws=3, draw_tasks=300, calibration_tasks=900, seed=0)
    assert [r["row"] for r in table][:4] == [f"promoted: {m}" for m in ("ltt-workflow", "ltt-betting", "ltt-iid",
                                                                         "point estimate")]
    assert all(r["oracle"] == "workflow oracle" for r in table)


@pytest.mark.slow
def test_recovery_benchmark_prints_the_gates_the_oracle_and_the_rules(capsys, tmp_path):
    """Tiny history: every row of both tables printed and written; the figures are shares."""
    from wtc.bench import bench_recovery
    from wtc.data.synthetic import write_benchmark

    path = write_benchmark(tmp_path / "h.json", n_tasks=500, seed=4)
    out = tmp_path / "recovery.md"
    result = bench_recovery(str(path), fresh_seed=5, fresh_tasks=300, folds=2, alphas=(0.05, 0.5), out=str(out))
    text = capsys.readouterr().out
    assert "Certified on" in text and "held-out workflows" in text and "fresh history: seed 5, 300 tasks" in text
    assert set(result["gates"]) == {0.05, 0.5}
    for table in ("held_out", "fresh"):
        rows, limits = result[table]
        names = [r["model"] for r in rows]
        assert names[:3] == ["recommender: joint gate, certified ≥ 95% whole",
                             "recommender: joint gate, certified ≥ 50% whole",
                             "recommender: action gate, certified ≥ 95% action (parameters as suggestions)"]
        assert names[3:] == [f"production rules: recoveror ({s})" for s in ("unified", "static", "both")]
        assert all(0 <= r["coverage"] <= 1 and r["auto"] <= r["tasks"] for r in rows)
        assert rows[0]["tasks"] == (300 if table == "fresh" else rows[0]["tasks"])
        assert {"oracle: whole recommendation, ≥ 95% right", "workflow oracle: action alone, ≥ 95% right"} <= set(limits)
        assert all(0 <= value <= 1 for value, _ in limits.values())
    assert out.read_text().count("| production rules: recoveror (both) |") == 2
