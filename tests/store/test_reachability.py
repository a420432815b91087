"""``tracking=local|server``, and a tracking server that does not answer: one line in seconds, never retries."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time

import pytest

import wtc  # noqa: F401  (resolvers)
from tests.factories import ROOT, compose_cfg
from wtc.errors import TrackingError
from wtc.store.uri import check_reachable, init_store


def compose_tracking(*overrides):
    return compose_cfg(overrides).tracking


def test_tracking_local_is_the_default_and_server_reads_the_environment(monkeypatch):
    local = compose_tracking()
    assert (local.uri, local.experiment, local.log_model, local.log_plots) == (None, "wtc-binary", True, True)
    monkeypatch.delenv("WTC_TRACKING_URI", raising=False)
    assert compose_tracking("tracking=server").uri == "http://127.0.0.1:5000"
    monkeypatch.setenv("WTC_TRACKING_URI", "http://mlflow.example:5000")
    server = compose_tracking("tracking=server", "target=action")
    assert (server.uri, server.experiment) == ("http://mlflow.example:5000", "wtc-action")
    assert compose_tracking("tracking=server", "tracking.uri=http://h:1").uri == "http://h:1"
    assert compose_tracking("tracking=server", "+experiment=labels").experiment == "wtc-labels"


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_probe_fails_in_one_line_naming_the_uri():
    uri = f"http://127.0.0.1:{closed_port()}"
    start = time.perf_counter()
    with pytest.raises(TrackingError) as raised:
        init_store(uri, "wtc-binary")
    assert time.perf_counter() - start < 5
    assert uri in str(raised.value) and "\n" not in str(raised.value)
    check_reachable("sqlite:///nowhere/mlflow.db")  # only servers are probed


@pytest.mark.parametrize("code, reachable", [(200, True), (401, True), (403, True), (404, False), (503, False)])
def test_what_an_http_answer_says(code, reachable):
    """A login in front of the server (401/403) lets MLflow's credentials decide; 404 is no MLflow
    server there, 503 a proxy whose server is down (MLflow's client would retry it for minutes)."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        if reachable:
            check_reachable(uri)
        else:
            with pytest.raises(TrackingError, match=f"{uri} does not answer as an MLflow server .*HTTP {code}"):
                check_reachable(uri)
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["run", "multirun", "compare", "promote"])
def test_an_unreachable_server_stops_every_entry_point_in_one_line(tmp_path, entry):
    uri = f"http://127.0.0.1:{closed_port()}"
    command = {
        "run": [sys.executable, "run.py", f"tracking.uri={uri}", f"hydra.run.dir={tmp_path}/out"],
        "multirun": [sys.executable, "run.py", "-m", "hydra/launcher=joblib", "model=dummy,logreg", "tracking=server",
                     f"tracking.uri={uri}", f"hydra.sweep.dir={tmp_path}/multirun"],
        "compare": [sys.executable, "-m", "wtc.cli", "compare", "--tracking-uri", uri, "--out", str(tmp_path)],
        "promote": [sys.executable, "-m", "wtc.cli", "promote", "--experiment", "wtc-binary", "--name", "m",
                    "--tracking-uri", uri],
    }[entry]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - start
    print(f"{entry}: failed in {seconds:.1f} s")  # the figure; imports dominate it
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: tracking server " + uri) and "unreachable" in lines[0]
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "out").exists()  # no job started
