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


@pytest.mark.slow  # a real run.py in a subprocess whose disk fills mid-run
@pytest.mark.parametrize("mode, status", [("disk", "KILLED"), ("batch", "FAILED")])
def test_a_full_disk_mid_run_is_one_line_and_the_run_is_not_left_running(history, tracking_uri, tmp_path, mode,
                                                                          status):
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    done = subprocess.run(
        # 4 batches: the params, the study's storage tags, trial-000's and trial-001's; the fault comes in trial-002
        [sys.executable, str(script), "4", mode, "model=logreg", "search=tpe", "search.n_trials=5", "cv.n_splits=2",
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


@pytest.mark.parametrize("fault", ["enospc", "database"])
def test_runs_cleanup_on_a_full_disk_is_one_line(tracking_uri, monkeypatch, capsys, fault):
    """Marking a dead run KILLED on a full disk: one line, the run untouched (cleanup works once space returns)."""
    import errno

    from mlflow.exceptions import MlflowException

    from wtc.process import process_tags
    from wtc.store import init_store

    client = mlflow.MlflowClient(tracking_uri)
    experiment = init_store(tracking_uri, "wtc-faults")
    proc = subprocess.Popen(["true"])
    proc.wait()
    dead = client.create_run(experiment, run_name="dead", tags={**process_tags(), "wtc.pid": str(proc.pid),
                                                                   "wtc.pid_started": "1"}).info.run_id
    error = (OSError(errno.ENOSPC, "No space left on device") if fault == "enospc"
             else MlflowException("(sqlite3.OperationalError) database or disk is full\n[SQL: UPDATE runs ...]"))

    def full(self, *args, **kwargs):
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(mlflow.MlflowClient, "set_tag", full)
        patch.setattr(mlflow.MlflowClient, "set_terminated", full)
        assert main(["runs", "cleanup", "--tracking-uri", tracking_uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and ("No space left" in err[0] or "disk is full" in err[0])
    assert client.get_run(dead).info.status == "RUNNING"
    assert main(["runs", "cleanup", "--tracking-uri", tracking_uri]) == 0  # space returned
    assert client.get_run(dead).info.status == "KILLED"


def test_a_read_only_store_is_one_line_naming_the_store(tmp_path, monkeypatch, capsys):
    """The store's lock file cannot be opened (a read-only folder): one line naming the store, not ``OSError ... .lock``."""
    import errno

    import wtc.sqlite

    real_open = open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(wtc.sqlite, "open", read_only, raising=False)
    uri = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    from wtc.errors import TrackingError
    from wtc.store import init_store

    with pytest.raises(TrackingError) as info:
        init_store(uri, "wtc-faults")
    assert str(info.value).startswith(f"cannot open the tracking store {uri}: its folder is read-only or not writable")
    assert "\n" not in str(info.value)


@pytest.fixture
def html_server():
    """A web server on 127.0.0.1 answering every request with 200 and an HTML page (no MLflow server)."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            body = b"<!doctype html><html><body>Welcome</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("args", [
    ["runs", "figures", "0123456789abcdef0123456789abcdef"],
    ["promote", "--experiment", "wtc-binary", "--name", "wtc-m"],
    ["runs", "cleanup"],
    ["runs", "model", "0123456789abcdef0123456789abcdef"],
])
def test_a_server_answering_html_is_no_tracking_server(html_server, capsys, args):
    assert main([*args, "--tracking-uri", html_server]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: tracking server {html_server} does not answer as an MLflow server (GET /health: an HTML "
                   "page, text/html); check tracking.uri / --tracking-uri"]


@pytest.mark.slow
def test_run_py_on_a_server_answering_html_is_one_line(html_server, tmp_path, history):
    done = subprocess.run(
        [sys.executable, "run.py", "model=logreg", "search=none", f"data.path={history}", f"tracking.uri={html_server}",
         f"hydra.run.dir={tmp_path}/out"], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not answer as an MLflow server (GET /health: an HTML page" in errors[0]
