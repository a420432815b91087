"""Reading parent runs back (wtc.store.query) and comparing them (wtc.ops.compare, ``wtc compare``).

The tests on the ``store`` of three trained runs are marked ``slow``; the ranking is tested on its own.
"""

from __future__ import annotations

import csv
import math

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.factories import make_cfg, store_db
from wtc.cli import main
from wtc.data.synthetic import write_benchmark
from wtc.errors import WtcError
from wtc.evaluation.diagnostics import FigureInputs, pr_points
from wtc.evaluation.ranking import markdown_table, rank_runs, summary_table
from wtc.ops.compare import _pr_points, compare
from wtc.run.experiment import run
from wtc.store.query import CHOICE_PARAMS, parent_runs

SWEEP_A = "/somewhere/multirun/2026-01-01/10-00-00"
SWEEP_B = "/somewhere/multirun/2026-01-02/10-00-00"


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """Three tiny runs (two sweeps), one failed parent run, one still running, in one store."""
    folder = tmp_path_factory.mktemp("compare")
    uri = new_store(folder)
    history = write_benchmark(folder / "history.json", n_tasks=300, seed=4)
    ids = {}
    for name, overrides in {"dummy": ["model=dummy"], "logreg": ["model=logreg", "tracking.log_plots=true"],
                            "logreg-good": ["model=logreg", "data=good"]}.items():
        ids[name] = run(make_cfg(history, uri, ["search=none", *overrides])).run_id
    client = mlflow.MlflowClient(uri)
    client.set_tag(ids["dummy"], "wtc.sweep", SWEEP_A)
    client.set_tag(ids["logreg"], "wtc.sweep", SWEEP_A)
    client.set_tag(ids["logreg-good"], "wtc.sweep", SWEEP_B)
    experiment = client.get_experiment_by_name("wtc-binary").experiment_id
    failed = client.create_run(experiment, run_name="broken", tags={"wtc.sweep": SWEEP_B, "error": "ValueError: x"})
    client.log_param(failed.info.run_id, "metric", "roc_auc")
    client.set_terminated(failed.info.run_id, "FAILED")
    ids["failed"] = failed.info.run_id
    ids["running"] = client.create_run(experiment, run_name="still-running").info.run_id
    return uri, ids, folder


@pytest.mark.slow
def test_parent_runs_one_row_per_finished_or_failed_parent(store):
    uri, ids, _ = store
    runs = parent_runs(uri)
    assert sorted(runs["run_id"]) == sorted([ids["dummy"], ids["logreg"], ids["logreg-good"], ids["failed"]])
    assert set(CHOICE_PARAMS) <= set(runs.columns)
    assert not [c for c in runs.columns if c.startswith("trial")]
    finished = runs[runs["status"] == "FINISHED"].set_index("run_id")
    assert finished.loc[ids["logreg"], "model.name"] == "logreg"
    assert finished.loc[ids["logreg-good"], "data.view"] == "good"
    assert set(finished["resample"]) == {"none"}  # resample=none: no sampler step
    assert set(finished["scaler"]) == {"RobustScaler"}
    assert set(finished["cv.n_splits"]) == {"2"} and set(finished["metric"]) == {"roc_auc"}
    for column in ("cv/roc_auc_mean", "cv/roc_auc_std", "test/roc_auc", "oracle/log_loss", "time/total_s"):
        assert finished[column].notna().all(), column
    assert (finished["wall_s"] > 0).all()
    assert runs.set_index("run_id").loc[ids["failed"], "error"] == "ValueError: x"


@pytest.mark.slow
def test_parent_runs_by_sweep_full_or_unique_suffix(store):
    uri, ids, _ = store
    assert sorted(parent_runs(uri, sweep=SWEEP_A)["run_id"]) == sorted([ids["dummy"], ids["logreg"]])
    assert sorted(parent_runs(uri, sweep="2026-01-02/10-00-00")["run_id"]) == sorted([ids["logreg-good"],
                                                                                      ids["failed"]])
    with pytest.raises(WtcError, match="ambiguous"):
        parent_runs(uri, sweep="10-00-00")
    with pytest.raises(WtcError, match="no sweep matches"):
        parent_runs(uri, sweep="1999-01-01/00-00-00")


@pytest.mark.slow
def test_parent_runs_errors_name_the_store_and_the_experiments(store, tmp_path):
    uri, _, _ = store
    with pytest.raises(WtcError, match=r"no experiment 'wtc-nope' .*experiments: .*wtc-binary"):
        parent_runs(uri, experiment="wtc-nope")
    missing = f"sqlite:///{tmp_path}/none/mlflow.db"
    with pytest.raises(WtcError, match="no tracking store"):
        parent_runs(missing)
    assert not (tmp_path / "none").exists()  # reading never creates a store


def test_rank_runs_follows_the_metric_direction():
    runs = pd.DataFrame({"run_id": list("abc"), "run_name": list("abc"), "status": ["FINISHED"] * 3,
                         "experiment": ["e"] * 3, "metric": ["log_loss"] * 3, "model.name": ["x", "y", "z"],
                         "cv/log_loss_mean": [0.5, 0.2, np.nan], "cv/log_loss_std": [0.1, 0.1, np.nan],
                         "wall_s": [1.0, 2.0, 3.0]})
    ranked = rank_runs(runs)
    assert list(ranked.runs["run_id"]) == ["b", "a", "c"]  # lower is better; no score last
    assert ranked.varied == ["model.name"] and ranked.fixed["metric"] == "log_loss"
    table = summary_table(ranked)
    assert list(table["CV log_loss (mean ± std)"]) == ["0.200 ± 0.100", "0.500 ± 0.100", "—"]
    assert set(table["coverage@p95"]) == {"—"}
    runs["metric"] = "roc_auc"
    runs["cv/roc_auc_mean"] = [0.5, 0.2, 0.9]
    assert list(rank_runs(runs).runs["run_id"]) == ["c", "a", "b"]


def test_markdown_table_is_aligned():
    text = markdown_table(pd.DataFrame({"a": ["1", "22"], "b|c": ["x|y", "z"]}))
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[1].startswith("|---")
    assert "x\\|y" in text


def _table(markdown: str) -> list[dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.mark.slow
def test_compare_writes_ranked_report_and_logs_a_comparison_run(store, tmp_path):
    uri, _, _ = store
    report = compare(uri, tmp_path / "out", sweep=SWEEP_A, top=3)
    rows = _table(report.markdown)
    assert [r["model"] for r in rows] == list(report.comparison.runs["model.name"])
    cv = [float(r["CV roc_auc (mean ± std)"].split("±")[0]) for r in rows]
    assert cv == sorted(cv, reverse=True) and cv[0] > cv[-1]
    best = report.comparison.runs.iloc[0]
    ratio = best["test/log_loss"] / best["oracle/log_loss"]
    assert rows[0]["log-loss ÷ oracle"] == f"{ratio:.2f}"
    assert rows[0]["oracle AUC − AUC"] == f"{best['oracle/roc_auc'] - best['test/roc_auc']:.3f}"
    assert rows[0]["coverage@p95"] == f"{best['test/coverage_at_p95']:.3f}"
    assert rows[0]["oracle coverage@p95"] == f"{best['oracle/coverage_at_p95']:.3f}"

    with open(report.paths["comparison.csv"], newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["run_id"] for r in csv_rows] == list(report.comparison.runs["run_id"])
    assert math.isclose(float(csv_rows[0]["gap/log_loss_ratio"]), ratio)
    page = report.paths["comparison.html"].read_text()
    assert page.count("data:image/png;base64,") == 2  # the choice figure + the overlay of the runs' ROC points
    assert "Drawn from the ROC points" in page
    for _, ranked in report.comparison.runs.iterrows():  # each run named, with its id and a link to its page
        link = f'href="http://127.0.0.1:5000/#/experiments/{ranked["experiment_id"]}/runs/{ranked["run_id"]}?'
        assert link in page and f">{ranked['run_name']}</a>" in page
        assert f'<code class="id">{ranked["run_id"]}</code>' in page
    assert [r["run"] for r in rows] == list(report.comparison.runs["run_name"])
    assert report.paths["comparison.md"].read_text().count("\n| ") == 3  # header + two runs

    client = mlflow.MlflowClient(uri)
    logged = client.get_run(report.run_id)
    assert logged.data.tags["wtc.kind"] == "comparison"
    assert logged.info.run_name.startswith("compare-")
    assert {a.path for a in client.list_artifacts(report.run_id)} == {
        "comparison.md", "comparison.csv", "comparison.html"}
    assert report.run_id not in set(parent_runs(uri)["run_id"])


@pytest.mark.slow
def test_compare_shows_coverage_and_draws_logged_roc_points(store, tmp_path, new_store):
    uri, ids, _ = store
    # A scratch copy: these extra metrics and artifacts must not leak into the other tests.
    uri = new_store(tmp_path, store_db(uri))
    client = mlflow.MlflowClient(uri)
    client.log_metric(ids["logreg"], "test/coverage_at_p95", 0.42)
    for run_id in (ids["dummy"], ids["logreg"]):
        client.log_dict(run_id, {"fpr": [0, 0.3, 1], "tpr": [0, 0.8, 1]}, "curves/roc.json")
    report = compare(uri, tmp_path / "out", sweep="2026-01-01/10-00-00", top=2, log_run=False)
    rows = {r["model"]: r for r in _table(report.markdown)}
    dummy_coverage = client.get_run(ids["dummy"]).data.metrics["test/coverage_at_p95"]
    assert rows["logreg"]["coverage@p95"] == "0.420" and rows["dummy"]["coverage@p95"] == f"{dummy_coverage:.3f}"
    page = report.paths["comparison.html"].read_text()
    assert "Drawn from the ROC points" in page and page.count("data:image/png;base64,") == 2
    # The runs logged their precision-recall points too: drawn beside the ROC, none missing.
    assert "precision-recall curves of the same test predictions" in page and "No precision-recall" not in page
    assert report.run_id is None


def test_precision_recall_from_logged_points_else_the_stored_test_predictions(tmp_path, new_store):
    uri = new_store(tmp_path)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("wtc-binary")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    proba = np.column_stack([1 - (p := np.clip(0.4 * y + rng.uniform(0, 0.6, 200), 0, 1)), p])
    inputs = FigureInputs(["no", "yes"], y, proba, y, proba, np.bincount(y), [0.5], "roc_auc")
    inputs.save(tmp_path / "inputs.npz")
    sweep_run, logged_run, bare_run = (client.create_run(experiment).info.run_id for _ in range(3))
    client.log_artifact(sweep_run, str(tmp_path / "inputs.npz"), "figures")  # a sweep's run: predictions only
    client.log_dict(logged_run, {"precision": [0.5, 1.0], "recall": [1.0, 0.0]}, "curves/pr.json")
    assert _pr_points(uri, sweep_run) == pr_points(y, proba)
    assert _pr_points(uri, logged_run) == {"precision": [0.5, 1.0], "recall": [1.0, 0.0]}
    assert _pr_points(uri, bare_run) is None


@pytest.mark.slow
def test_compare_shows_a_figure_of_each_run_side_by_side(store, tmp_path):
    uri, ids, _ = store
    report = compare(uri, tmp_path, sweep="2026-01-01/10-00-00", top=2, log_run=False,
                     figures=["plots/confusion_matrix.png", "plots/nothing.png"])
    page = report.paths["comparison.html"].read_text()
    section = page.split("<h2>plots/confusion_matrix.png of each run, side by side</h2>")[1].split("<h2>")[0]
    # Only the logreg run logged plots; its caption names what varies between the runs.
    assert section.count("data:image/png;base64,") == 1 and "model=logreg</figcaption>" in section
    assert "<h2>plots/nothing.png of each run, side by side</h2>\n<p>None of the runs logged it.</p>" in page
    assert "plots/confusion_matrix.png of each run, side by side: comparison.html (1 run(s) logged it)" in \
        report.paths["comparison.md"].read_text()


@pytest.mark.slow
def test_cli_compare_prints_the_table(store, tmp_path, capsys):
    uri, _, _ = store
    assert main(["compare", "--tracking-uri", uri, "--sweep", "2026-01-02/10-00-00", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert len(rows) == 2 and rows[-1]["status"] == "FAILED" and rows[-1]["test roc_auc"] == "—"
    assert (tmp_path / "comparison.html").exists() and "logged as comparison run" in out
    experiment_id = mlflow.MlflowClient(uri).get_experiment_by_name("wtc-binary").experiment_id
    assert (f"leaderboard: http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?viewStateShareKey="
            "wtc-leaderboard-roc-auc&workflowType=machine_learning  (start the UI: ") in out


@pytest.mark.slow
def test_cli_compare_errors_are_one_line(store, tmp_path, capsys):
    uri, _, _ = store
    assert main(["compare", "--tracking-uri", uri, "--experiment", "wtc-nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no experiment 'wtc-nope'") and "wtc-binary" in err[0]
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "--experiment", "a", "--sweep", "b", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_compare_never_writes_over_a_report_without_force(store, tmp_path, capsys):
    """A report already in --out is refused (one line naming the file, before any work); --force writes over it."""
    uri, _, _ = store
    args = ["compare", "--tracking-uri", uri, "--sweep", "2026-01-02/10-00-00", "--out", str(tmp_path)]
    (tmp_path / "comparison.csv").write_text("mine\n")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --out {tmp_path / 'comparison.csv'} exists: pass --force to write over it, "
                   "or choose another file"]
    assert (tmp_path / "comparison.csv").read_text() == "mine\n" and not (tmp_path / "comparison.md").exists()
    assert main([*args, "--force"]) == 0
    assert (tmp_path / "comparison.csv").read_text() != "mine\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / "file").write_text("x")
    assert main([*args[:-1], str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
