"""Real ``python run.py -m`` sweeps in a subprocess, with the basic and the joblib launcher; optuna-dashboard on a sweep's studies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import optuna
import pytest

from tests.factories import free_port, stop_group, store_db
from wtc.data.synthetic import write_benchmark
from wtc.tuning.dashboard import dashboard_command

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_multirun_sweep_lands_every_job(tmp_path, tracking_uri, launcher):
    history = write_benchmark(tmp_path / "history.json", n_tasks=400, seed=5)
    command = [
        sys.executable, "run.py", "-m",
        f"hydra/launcher={launcher}",
        f"hydra.sweep.dir={tmp_path}/multirun",
        "data=good,bad", "model=dummy,logreg", "search=none", "cv.n_splits=2",
        "scaler=StandardScaler",  # the class name outputs show is a choice (scaler=standard)
        f"data.path={history}", f"tracking.uri={tracking_uri}",
        "tracking.log_model=false", "tracking.log_plots=false", "n_jobs=1",
    ]
    if launcher == "joblib":
        command.append("hydra.launcher.n_jobs=2")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("wtc-binary")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["wtc.sweep"] for r in parents}) == 1
    assert {(r.data.tags["wtc.view"], r.data.tags["wtc.model"]) for r in parents} == {
        ("good", "dummy"), ("good", "logreg"), ("bad", "dummy"), ("bad", "logreg")}
    # A run is named by what varies within the sweep; what every job shares is in its params.
    assert {r.info.run_name for r in parents} == {"dummy-good", "logreg-good", "dummy-bad", "logreg-bad"}
    assert {r.data.params["scaler"] for r in parents} == {"StandardScaler"}


@pytest.mark.slow
def test_unknown_metric_fails_loudly_from_the_command_line(tmp_path, tracking_uri):
    done = subprocess.run(
        [sys.executable, "run.py", "metric=auc", f"tracking.uri={tracking_uri}", f"hydra.run.dir={tmp_path}/out",
         "data.path=/nonexistent.json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode != 0
    assert "unknown metric 'auc'" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_bad_history_is_one_line_not_a_traceback(tmp_path, tracking_uri):
    bad = tmp_path / "bad.json"
    bad.write_text('{"/w/t": {"errors": {"good_sites": {"85": {"T1_US_FNAL": -2}}}}}')
    done = subprocess.run(
        [sys.executable, "run.py", f"data.path={bad}", f"tracking.uri={tracking_uri}", f"hydra.run.dir={tmp_path}/out"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert str(bad) in last and "/w/t" in last and "errors.good_sites.85.T1_US_FNAL" in last


@pytest.mark.slow
def test_a_parallel_sweep_stores_a_study_per_job_says_its_progress_and_opens_in_optuna_dashboard(tmp_path,
                                                                                                    tracking_uri):
    history = write_benchmark(tmp_path / "history.json", n_tasks=400, seed=5)
    command = [sys.executable, "run.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               f"hydra.sweep.dir={tmp_path}/multirun", "model=logreg", "seed=0,1", "search=tpe", "search.n_trials=2",
               "cv.n_splits=2", f"data.path={history}", f"tracking.uri={tracking_uri}", "tracking.log_model=false",
               "tracking.log_plots=false", "n_jobs=1", "hydra.callbacks.leaderboard.top=0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    said = (done.stdout + done.stderr).splitlines()
    jobs = [line for line in said if line.startswith("job ")]  # whole lines, never two workers' in one
    assert sorted(line[:7] for line in jobs) == ["job 1/2", "job 2/2"], said
    assert all(re.fullmatch(r"job [12]/2 \(#[01]\) done in \S+, elapsed \S+(, about \S+ left)?", line) for line in jobs)
    storage = f"sqlite:///{store_db(tracking_uri).parent / 'optuna.db'}"
    assert said[-1].strip() == dashboard_command(storage)  # the sweep's last word
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summaries = optuna.get_all_study_summaries(storage)  # two jobs wrote one SQLite file at once
    assert len(summaries) == 2 and all(s.n_trials == 2 for s in summaries)

    port = free_port()
    server = subprocess.Popen([*dashboard_command(storage).split(), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as answer:
                    studies = json.load(answer)["study_summaries"]
            except OSError:
                time.sleep(0.5)
        assert studies is not None, "optuna-dashboard did not answer"
        assert [s["directions"] for s in studies] == [["maximize"]] * 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}") as answer:
            detail = json.load(answer)
        assert detail["objective_names"] == ["cv_roc_auc"]
        assert all(0 < t["values"][0] <= 1 for t in detail["trials"])  # the AUC itself, not its negation
        assert {a["key"] for a in detail["trials"][0]["user_attrs"]} >= {"mlflow_run_id"}
    finally:
        stop_group(server)
