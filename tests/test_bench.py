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
    assert "name-blind oracle (32 whitelist samples per task)" in out and "x wblind" in out
    assert "name-blind workflow oracle (32 whitelist samples per workflow)" in out
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
    assert float(workflow[7]) == pytest.approx(tables["binary"][0]["oracle_workflow_coverage_p95"], abs=1e-3)
    # then the name-blind workflow oracle, the tight yardstick of the x wblind columns
    wf_blind = lines[at + 1].split()
    assert wf_blind[:3] == ["name-blind", "wf", "oracle"] and float(wf_blind[6]) == pytest.approx(1.0)
    assert float(wf_blind[3]) == pytest.approx(tables["binary"][0]["oracle_workflow_blind_log_loss"], abs=1e-4)
    assert float(wf_blind[11]) == pytest.approx(1.0)  # its coverage against itself
    # the champion's ratio to the name-blind workflow oracle, with its interval (the table's x wblind)
    ratio_line = next(line for line in lines if line.startswith("champion ÷ name-blind wf oracle"))
    ratio, low, high = (float(x.strip("[],")) for x in ratio_line.split()[7:10])
    champion = tables["binary"][0]
    assert ratio == pytest.approx(champion["log_loss"] / champion["oracle_workflow_blind_log_loss"], abs=2e-3)
    assert low <= ratio <= high
    # every peer's difference to the champion, with its paired bootstrap interval over the test workflows
    at = next(i for i, line in enumerate(lines) if line.startswith("difference to the champion"))
    differences = {line.split()[0]: line for line in lines[at + 1:at + 5]}
    assert set(differences) == {"seed_xgb", "rules", "dummy", "flaml"}
    for name, line in differences.items():
        row = next(r for r in tables["binary"] if r["recipe"].split()[0] == name)
        diff, low, high = (float(x.strip("[],")) for x in line.split()[-3:])
        assert diff == pytest.approx(row["log_loss"] - tables["binary"][0]["log_loss"], abs=2e-3)
        assert low <= diff <= high


def test_quality_benchmark_without_autogluon_says_why_in_one_line(capsys, monkeypatch, tracking_uri):
    import sys

    monkeypatch.setitem(sys.modules, "autogluon.tabular", None)  # import autogluon.tabular -> ImportError
    assert main(["quality", "--generate-seed", "3", "--tasks", "300", "--targets", "binary",
                 "--recipes", "dummy,autogluon", "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("AutoGluon is not installed"))
    assert "pandas<2.4.0" in line and "its row is left out" in line and "--autogluon-python" in line
    assert "autogluon (" not in out and "dummy" in out


def test_paired_bootstrap_over_workflows():
    import numpy as np

    from wtc.bench.paired import paired_difference, task_losses

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), 5)
    y = rng.integers(0, 2, size=groups.size)
    proba = np.column_stack([1 - (p := rng.uniform(0.2, 0.8, groups.size)), p])
    same = task_losses(y, proba)
    assert paired_difference(same, same, groups) == (0.0, 0.0, 0.0)
    # a model that puts 0.9 on the true class beats one that guesses: its interval lies below zero
    sharp = np.where(np.eye(2)[y] == 1, 0.9, 0.1)
    diff, low, high = paired_difference(task_losses(y, sharp), same, groups)
    assert low <= diff <= high < 0
    assert diff == pytest.approx(task_losses(y, sharp).mean() - same.mean())
    # swapped, the same difference with the opposite sign
    assert paired_difference(same, task_losses(y, sharp), groups)[0] == pytest.approx(-diff)


def test_paired_ratio_to_a_limit_over_workflows():
    from wtc.bench.paired import paired_ratio, task_losses

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(80), 4)
    y = rng.integers(0, 2, size=groups.size)
    limit = task_losses(y, np.where(np.eye(2)[y] == 1, 0.8, 0.2))
    assert paired_ratio(limit, limit, groups) == (1.0, 1.0, 1.0)
    # a model 0.2 nats worse on every task of a quarter of the workflows: the ratio is the ratio of the means,
    # and its interval (workflows resampled) covers it and stays above 1
    worse = limit + np.where(groups < 20, 0.2, 0.0)
    ratio, low, high = paired_ratio(worse, limit, groups)
    assert ratio == pytest.approx(worse.sum() / limit.sum())
    assert 1.0 < low < ratio < high
    # whole workflows resampled: a wider interval than if every task were its own unit
    _, task_low, task_high = paired_ratio(worse, limit, np.arange(groups.size))
    assert high - low > task_high - task_low
    # one workflow: no interval
    assert np.isnan(paired_ratio(worse[:4], limit[:4], groups[:4])[1:]).all()


def test_learning_answer_names_the_first_size_close_to_the_limit_and_the_largest():
    from wtc.bench.learning import answer_line

    rows = [{"size": size, "excess_pct": excess} for size, excess in
            [(1000, 9.0), (1000, 11.0), (4000, 0.5), (4000, 1.3), (16000, -2.0), (16000, -2.4)]]
    line = answer_line(rows, "oracle_blind")
    assert line.startswith("with 4,000 tasks you are within 0.9% of the limit (oracle_blind, test log-loss, "
                           "mean of 2 seeds); with 16,000 tasks 2.2% below it (seeds -2.4 to -2.0%)")
    far = answer_line([{"size": 1000, "excess_pct": 5.0}], "oracle")
    assert far.startswith("no size came within 1% of the limit: with 1,000 tasks you are 5.0% above it")
    rows = [{"size": size, "excess_pct": excess} for size, excess in [(4000, 17.0), (8000, 14.7), (32000, 11.0)]]
    assert answer_line(rows, "w").startswith("no size came within 1% of the limit: with 8,000 tasks you are 14.7% "
                                             "above it (w, test log-loss, mean of 1 seeds); with 32,000 tasks 11.0%")


@pytest.mark.slow
def test_learning_benchmark_prints_rows_and_writes_the_figure(capsys, tmp_path):
    assert main(["learning", "--sizes", "300", "600", "--seeds", "0", "1", "--holdout", "300", "--trials", "1",
                 "--blind-samples", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["size", "seed"])
    rows = [line.split() for line in lines[at + 1:] if line.split()[:1] in (["300"], ["600"])]
    assert [(r[0], r[1]) for r in rows] == [("300", "0"), ("600", "0"), ("300", "1"), ("600", "1")]
    limits = {r[5] for r in rows}
    assert len(limits) == 1  # one held-out set, one limit for every row
    for r in rows:
        assert float(r[6]) == pytest.approx(100 * (float(r[4]) / float(r[5]) - 1), abs=0.1)  # 4 decimals printed
        assert abs(int(r[2]) - int(r[0])) < 0.1 * int(r[0])  # about `size` training tasks
    answer = (tmp_path / "answer.txt").read_text()
    assert answer.startswith(("with 300 tasks you are within", "with 600 tasks you are within", "no size came"))
    assert answer.strip() in out
    assert (tmp_path / "learning.png").stat().st_size > 0
    assert len((tmp_path / "learning.csv").read_text().splitlines()) == 5


@pytest.mark.slow
def test_scale_benchmark_prints_time_by_step_and_memory(capsys):
    assert main(["scale", "--sizes", "300", "600", "--sweep-sizes", "300", "--trials", "1", "--sweep-trials", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0].split()
    assert {"load_s", "search_s", "refit_s", "post_s", "peak_MB", "B/nnz"} <= set(header)
    rows = [line.split() for line in lines[1:4]]
    assert [(r[0], r[1]) for r in rows] == [("champion", "300"), ("default", "300"), ("champion", "600")]
    for r in rows:
        assert len(r) == len(header) and int(r[2]) > 0 and float(r[header.index("total_s")]) > 0
    assert "champion: 300 -> 600 tasks" in out and "largest step at 600" in out


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
    (["learning", "--limit", "nope"], "--limit must be one of oracle, oracle_blind"),
    (["scale", "--sizes", "0"], "must be at least 1"),
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
    from wtc.bench.gate import HINDSIGHT

    tables = bench_gate(None, generate_seed=5, tasks=600, fresh_tasks=1500, targets=("binary",), draws=5,
                        draw_tasks=200, quick=True, out=str(tmp_path))
    out = capsys.readouterr().out
    assert "violation rate" in out and "cov ÷ oracle" in out
    names = [row["row"] for row in tables["binary"]]
    assert names == [f"{mode}: {method}" for mode in ("promoted", "re-certified")
                     for method in ("ltt-workflow", "ltt-betting", "ltt-iid", "point estimate")] + [HINDSIGHT]
    assert all(0 <= row["violation_rate"] <= 1 and 0 <= row["coverage_mean"] <= 1 for row in tables["binary"])
    assert (tmp_path / "train_600_seed5_binary.png").stat().st_size > 0
    assert "| promoted: ltt-workflow |" in (tmp_path / "train_600_seed5_binary.md").read_text()


def test_a_gate_dump_is_read_back_and_measured_without_retraining(tmp_path):
    from wtc.bench.gate import HINDSIGHT, load_dump, measure

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
    table, per_draw = measure(oof, fresh, 0.05, 0.1, draws=3, draw_tasks=300, calibration_tasks=900, seed=0)
    # The figure draws every row, hindsight included, one point per draw.
    assert list(per_draw) == [r["row"] for r in table] and all(v.shape == (3, 2) for v in per_draw.values())
    assert [r["row"] for r in table][:4] == [f"promoted: {m}" for m in ("ltt-workflow", "ltt-betting", "ltt-iid",
                                                                         "point estimate")]
    assert all(r["oracle"] == "workflow oracle" for r in table)
    # Hindsight picks the best threshold on all the fresh labels: the target on the whole fresh
    # history, and no promoted threshold that keeps the target there covers more of it.
    last = table[-1]
    assert last["row"] == HINDSIGHT and last["population_precision"] >= 0.95
    assert 0.1 < last["population_coverage"] < 0.35  # conf ~ U(0.5, 1), right w.p. conf: 95% above ~0.9
    for r in table[:4]:
        if r.get("population_precision", 0) >= 0.95:
            assert r["population_coverage"] <= last["population_coverage"] + 1e-12


@pytest.mark.slow
def test_recovery_benchmark_prints_the_gates_the_oracle_and_the_rules(capsys, tmp_path):
    """Tiny history: every row of both tables printed and written; the figures are shares."""
    from wtc.bench import bench_recovery
    from wtc.data.synthetic import write_benchmark

    path = write_benchmark(tmp_path / "h.json", n_tasks=500, seed=4)
    out = tmp_path / "recovery.md"
    result = bench_recovery(str(path), fresh_seed=5, fresh_tasks=300, recipe="quick", folds=2, alphas=(0.05, 0.5),
                            out=str(out))
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


@pytest.mark.slow
def test_recovery_benchmark_measures_the_shipped_recipe(capsys, tmp_path):
    """The default recipe: each part a run of +experiment=recovery (one trial here), out-of-fold rows as promote makes
    them; the parts' runs split by their own targets, so only the fresh history is scored (and the bench says so)."""
    from wtc.bench import bench_recovery
    from wtc.data.synthetic import write_benchmark

    path = write_benchmark(tmp_path / "h.json", n_tasks=500, seed=4)
    result = bench_recovery(str(path), fresh_seed=5, fresh_tasks=300, trials=1, folds=2, alphas=(0.05,),
                            out=str(tmp_path / "r.md"))
    text = capsys.readouterr().out
    written = (tmp_path / "r.md").read_text()
    assert "`python -m wtc.bench recovery --recipe recovery --fresh-seed 5 --fresh-tasks 300 --folds 2 --trials 1`" \
        in written and "`+experiment=recovery` runs" in written
    assert ("held-out workflows" in text) and (("not scored" in text) == ("held_out" not in result))
    rows, limits = result["fresh"]
    assert [r["model"] for r in rows][:2] == ["recommender: joint gate, certified ≥ 95% whole",
                                              "recommender: action gate, certified ≥ 95% action (parameters as "
                                              "suggestions)"]
    assert all(r["tasks"] == 300 for r in rows) and result["gates"][0.05].n_rows > 0
    with pytest.raises(ValueError, match="recipe must be one of recovery, quick, got 'best'"):
        bench_recovery(str(path), recipe="best")


def test_recovery_benchmark_refuses_trials_for_the_quick_recipe(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["recovery", "--recipe", "quick", "--trials", "2"])
    assert exit_.value.code == 2
    assert "--trials sets the recovery recipe's search; the quick recipe has none" in capsys.readouterr().err
