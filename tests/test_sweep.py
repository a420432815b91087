"""Real ``python run.py -m`` sweeps in a subprocess, with the basic and the joblib launcher."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from wtc.data.synthetic import write_benchmark

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
