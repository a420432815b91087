"""Faults of the tracking store: a full disk mid-run, a read-only store, a server that is no MLflow server.

Each ends in one line; a run interrupted by a full disk is not left RUNNING once space returns;
what was logged before the fault is kept."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from wtc.cli import main
from wtc.data.synthetic import write_benchmark

ROOT = Path(__file__).resolve().parents[2]

#: Run ``run.py`` with the store's writes failing with ENOSPC once ``log_batch`` has been called
#: ``LIMIT`` times: every write (``disk``) or only ``log_batch`` (``batch``: the end of the run still works).
FULL_DISK = textwrap.dedent("""
    import errno, runpy, sys
    import mlflow
    LIMIT, MODE = int(sys.argv[1]), sys.argv[2]
    state = {"batches": 0, "full": False}
    WRITES = ("log_batch", "log_text", "log_dict", "log_artifact", "log_artifacts", "log_figure", "log_inputs",
              "set_tag", "set_terminated", "create_run", "log_param", "log_metric", "log_table")

    def patch(name, original):
        def write(self, *args, **kwargs):
            if name == "log_batch":
                state["batches"] += 1
                state["full"] = state["full"] or state["batches"] > LIMIT
            if state["full"] and (MODE == "disk" or name == "log_batch"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(self, *args, **kwargs)
        return write

    for name in WRITES:
        setattr(mlflow.MlflowClient, name, patch(name, getattr(mlflow.MlflowClient, name)))
    sys.argv = ["run.py", *sys.argv[3:]]
    runpy.run_path("run.py", run_name="__main__")
""")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("bench") / "history.json", n_tasks=300, seed=4)


def _runs(uri: str):
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("wtc-faults")
    return {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}


@pytest.mark.parametrize("mode, status", [("disk", "KILLED"), ("batch", "FAILED")])
def test_a_full_disk_mid_run_is_one_line_and_the_run_is_not_left_running(history, tracking_uri, tmp_path, mode,
                                                                          status):
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    done = subprocess.run(
        [sys.executable, str(script), "3", mode, "model=logreg", "search=tpe", "search.n_trials=5", "cv.n_splits=2",
         "n_jobs=1", "diagnostics=none", f"data.path={history}", f"tracking.uri={tracking_uri}",
         "tracking.experiment=wtc-faults", f"hydra.run.dir={tmp_path}/out"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], output[-3000:]
    assert "the tracking store failed in run" in errors[0]
    # Space returns (the process, and its fault, are gone): no run is left RUNNING once cleaned up.
    assert main(["runs", "cleanup", "--tracking-uri", tracking_uri]) == 0
    runs = _runs(tracking_uri)
    parent = next(r for name, r in runs.items() if not name.startswith("trial-"))
    assert parent.info.status == status and all(r.info.status != "RUNNING" for r in runs.values())
    # What was logged before the fault is kept: the run's params and the first two trials' metrics.
    assert parent.data.params["model.name"] == "logreg" and parent.data.params["search.n_trials"] == "5"
    for name in ("trial-000", "trial-001"):
        assert runs[name].info.status == "FINISHED" and runs[name].data.metrics
