"""The guarded scoring server of ``wtc serve`` (wtc.store.serving), driven in-process over ASGI:
any body gets a 2xx with per-row results or a 4xx with a one-line reason, never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import asgi_call as call
from tests.factories import fit_small_pipeline, stop_group
from wtc.inference.tasks import MAX_TASKS_PER_CALL
from wtc.store import RunTracker
from wtc.store.pyfunc import log_pipeline_model
from wtc.store.serving import MAX_DEPTH, GuardedScoring, create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory, new_store):
    """The guarded app of a raw-task model logged from a small pipeline, the raw tasks and the probabilities."""
    pipeline, X, names, classes, raw, history = fit_small_pipeline(
        tmp_path_factory.mktemp("bench") / "history.json", 300, 5, "binary")
    uri = new_store(tmp_path_factory.mktemp("store"))
    with RunTracker(uri, "wtc-serving"):
        model_uri = log_pipeline_model(pipeline, X[:5], classes, names, name="model", view="combined",
                                       target="binary", threshold=0.7)
    return create_app(model_uri, tracking_uri=uri), raw, history, pipeline.predict_proba(X), classes, model_uri, uri


def good_body(raw, tasks, **extra) -> bytes:
    return json.dumps({"dataframe_records": [{"task": t, "entry": raw[t]} for t in tasks], **extra}).encode()


def strict_json(body: bytes):
    """``body`` parsed as strict JSON: a NaN or Infinity literal fails the test."""
    def refuse(name):
        raise AssertionError(f"{name} in the answer: not strict JSON")

    return json.loads(body, parse_constant=refuse)


def assert_one_line_error(status: int, body: bytes) -> str:
    assert 400 <= status < 500, (status, body[:300])
    error = strict_json(body)
    message = error["message"]
    assert set(error) == {"error_code", "message"} and "\n" not in message and len(message) <= 500
    assert "Traceback" not in message and "/work/" not in message and "site-packages" not in message
    return message


def test_a_good_request_is_answered_row_by_row(served):
    app, raw, history, proba, classes, *_ = served
    tasks = history.tasks[:4]
    status, body = call(app, good_body(raw, tasks))
    assert status == 200
    rows = json.loads(body)["predictions"]
    assert [r["task"] for r in rows] == tasks
    np.testing.assert_allclose([[r[f"p_{c}"] for c in classes] for r in rows], proba[:4], rtol=1e-6)


@pytest.mark.parametrize("form", ["instances", "inputs", "dataframe_split"])
def test_an_entry_sent_as_an_object_is_read_in_every_format(served, form):
    app, raw, history, proba, classes, *_ = served
    tasks = history.tasks[:3]
    if form == "dataframe_split":
        payload = {form: {"columns": ["task", "entry"], "data": [[t, raw[t]] for t in tasks]}}
    else:
        payload = {form: [{"task": t, "entry": raw[t]} for t in tasks]}
    status, body = call(app, json.dumps(payload).encode())
    assert status == 200, body[:500]
    rows = json.loads(body)["predictions"]
    assert all(r["error"] == "" for r in rows)
    np.testing.assert_allclose([r[f"p_{classes[1]}"] for r in rows], proba[:3, 1], rtol=1e-6)


def test_bad_rows_are_answered_in_strict_json(served):
    app, raw, history, *_ = served
    payload = {"dataframe_records": [{"task": history.tasks[0], "entry": raw[history.tasks[0]]},
                                     {"task": "/wf/bad", "entry": {"errors": {"good_sites": {"85": {"T1_US_FNAL": -3}}}}}]}
    status, body = call(app, json.dumps(payload).encode())
    assert status == 200
    rows = strict_json(body)["predictions"]
    assert rows[0]["error"] == "" and "non-negative integer" in rows[1]["error"]


@pytest.mark.parametrize("body, content_type, reason", [
    (b"[" * 1000 + b"]" * 1000, "application/json", "nested deeper"),
    (b'{"dataframe_records": [{"task": "/a/b", "entry": {"x": ' + b"[" * 70 + b"1" + b"]" * 70 + b"}}]}",
     "application/json", "nested deeper"),
    (b'{"dataframe_records": [' + b'{"task": "/a/b", "entry": {}},' * (MAX_TASKS_PER_CALL) + b'{"task": "/a/c", "entry": {}}]}',
     "application/json", "more than the"),
    (b"x" * 10_000_000, "application/json", "not valid JSON"),
    (b"\xff\xfe{}", "application/json", "not UTF-8"),
    (b"task,entry\n/a/b,{}", "text/csv", "application/json"),
    (b"{}", "application/json", "exactly one of"),
    (b'{"instances": [], "inputs": []}', "application/json", "exactly one of"),
    (b'{"inputs": [], "oops": 1}', "application/json", "unknown keys"),
    (b'{"inputs": [], "params": [1]}', "application/json", "params must be an object"),
    (b'{"dataframe_split": {"columns": ["task"], "data": 5}}', "application/json", "list of rows"),
    (b"NaN", "application/json", "NaN is not JSON"),
    (b'{"inputs": [{"task": "/a/b", "entry": {"errors": {"good_sites": {"85": {"T1_US_FNAL": 1, "T1_US_FNAL": 9}}}}}]}',
     "application/json", "'T1_US_FNAL' appears twice"),
    (b'{"inputs": [], "inputs": []}', "application/json", "'inputs' appears twice"),
    (b'{"inputs": [{"task": "/a/b", "entry": {"x": Infinity}}]}', "application/json", "Infinity is not JSON"),
])
def test_hostile_bodies_get_a_one_line_4xx(served, body, content_type, reason):
    app = served[0]
    status, answer = call(app, body, content_type)
    message = assert_one_line_error(status, answer)
    assert reason in message
    assert len(answer) < 2000  # never an echo of the request


def test_a_body_above_the_bound_is_refused_before_it_is_read(served):
    app = GuardedScoring(served[0].app, max_body_bytes=100_000)
    for declared in (True, False):  # a declared length, or chunks counted as they come
        status, answer = call(app, b" " * 200_000, declare_length=declared)
        assert status == 413 and "more than the 100000 bytes allowed" in assert_one_line_error(status, answer)


def test_an_error_of_mlflow_loses_its_stack_trace_and_the_echoed_input(served):
    app, raw, history, *_ = served
    # Rows without the columns the signature asks for: MLflow's own schema error, with its stack trace and
    # the whole input quoted back; the guard keeps one line of it.
    payload = {"dataframe_records": [{"name": "x" * 5000}]}
    status, answer = call(app, json.dumps(payload).encode())
    message = assert_one_line_error(status, answer)
    assert "x" * 600 not in message


def test_other_routes_are_mlflows(served):
    app = served[0]
    assert call(app, b"", path="/ping", method="GET")[0] == 200
    assert call(app, b"", path="/version", method="GET")[0] == 200


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                            max_size=4), max_leaves=20)
near_valid = st.fixed_dictionaries({"dataframe_records": st.lists(st.fixed_dictionaries(
    {"task": st.one_of(st.text(max_size=30), st.just("/wf/t"), json_values), "entry": json_values}), max_size=4)},
    optional={"params": st.dictionaries(st.sampled_from(["threshold", "other"]), json_values, max_size=2)})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                      near_valid.map(lambda v: json.dumps(v).encode())))
def test_any_body_gets_a_2xx_or_a_one_line_4xx_and_the_server_goes_on(served, body):
    app, raw, history, proba, classes, *_ = served
    status, answer = call(app, body)
    if status == 200:
        assert isinstance(strict_json(answer)["predictions"], list)
    else:
        assert_one_line_error(status, answer)
    status, answer = call(app, good_body(raw, history.tasks[:1]))
    assert status == 200
    assert json.loads(answer)["predictions"][0][f"p_{classes[1]}"] == pytest.approx(proba[0, 1], rel=1e-6)


def test_the_depth_bound_is_what_the_guard_says():
    from wtc.store.serving import _depth

    nested = value = []
    for _ in range(MAX_DEPTH + 5):
        value.append([])
        value = value[0]
    assert _depth(json.dumps(nested).encode()) == MAX_DEPTH + 6
    assert _depth(json.dumps({"a": [1, {"b": 2}]}).encode()) == 3
    # brackets inside strings (escaped quotes included) are text, not nesting
    assert _depth(json.dumps({"t[{": ["x\\\"[[", {"b": "]]}}{{"}]}).encode()) == 3
    assert _depth(b"") == 0 and _depth(b"5") == 0


HOSTILE = [
    (b"[" * 5000, "application/json"), (b"x" * 1_000_000, "application/json"), (b"{}", "application/json"),
    (b"NaN", "application/json"), (b"task,entry", "text/csv"), (b'{"inputs": 5}', "application/json"),
    (b'{"dataframe_records": [{"task": "/a/b", "entry": "[[[["}]}', "application/json"),
    (b'{"dataframe_records": [{"task": "/a/b", "entry": {"errors": {"good_sites": {"x": {"T1": 1}}}}}]}',
     "application/json"),
    (b'{"dataframe_records": [{"task": 5, "entry": []}], "params": {"threshold": "abc"}}', "application/json"),
    (b"\xff" * 100, "application/json"),
]


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


@pytest.mark.slow
def test_soak_of_wtc_serve_on_loopback(served, tmp_path):
    """`wtc serve` for real, 4 client threads of mixed good and hostile requests: no 5xx, every good request
    answered as `wtc predict` answers the same tasks, memory bounded. WTC_SOAK_REQUESTS sets the count."""
    import http.client
    import os
    import random
    import socket
    import subprocess
    import sys
    import threading
    import time

    from wtc.ops.predict import predict_history

    _, raw, history, _, classes, model_uri, uri = served
    tasks = history.tasks[:60]
    subset = tmp_path / "subset.json"
    subset.write_text(json.dumps({t: raw[t] for t in tasks}))
    expected = predict_history(subset, model_uri, tracking_uri=uri).table.set_index("task")
    columns = [f"p_{c}" for c in classes]
    n_requests = int(os.environ.get("WTC_SOAK_REQUESTS", "4000"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "wtc.cli", "serve", "--model", model_uri, "--tracking-uri", uri,
                               "--port", str(port)], env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    results: list[tuple[int, bool]] = []
    wrong: list[str] = []
    lock = threading.Lock()

    def client(seed: int, count: int) -> None:
        rng = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(count):
            if rng.random() < 0.5:
                chosen = rng.sample(tasks, 1 if rng.random() < 0.8 else 10)
                body, kind, good = good_body(raw, chosen), "application/json", True
            else:
                (body, kind), good = rng.choice(HOSTILE), False
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": kind})
            answer = connection.getresponse()
            content = answer.read()
            if answer.getheader("connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            problem = None
            if good:
                rows = json.loads(content)["predictions"] if answer.status == 200 else []
                if [r["task"] for r in rows] != chosen or any(
                        not np.allclose([r[c] for c in columns], expected.loc[r["task"], columns].to_numpy(float),
                                        rtol=1e-6) for r in rows):
                    problem = f"{answer.status}: {content[:200]!r}"
            with lock:
                results.append((answer.status, good))
                if problem:
                    wrong.append(problem)
        connection.close()

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                probe.request("GET", "/ping")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.5)
        client(99, 100)  # warm up
        before = _rss_kib(server.pid)
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(seed, n_requests // 4)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=1200)
        seconds = time.monotonic() - started
        after = _rss_kib(server.pid)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
    finally:
        stop_group(server)
        log.close()
    statuses = [status for status, _ in results]
    print(f"soak: {len(results)} requests in {seconds:.1f} s ({len(results) / seconds:.0f}/s), "
          f"{sum(s >= 500 for s in statuses)} 5xx, {sum(400 <= s < 500 for s in statuses)} 4xx; "
          f"server RSS {before / 1024:.0f} MiB after warm-up, {after / 1024:.0f} MiB at the end")
    assert len(results) == 100 + 4 * (n_requests // 4)
    assert all(s < 500 for s in statuses)
    assert all(s == 200 for s, good in results if good) and wrong == []
    assert sum(400 <= s < 500 for s, good in results if not good) > 0  # the guard answered some itself
    assert after - before < 200 * 1024  # bounded: no growth with the number of requests
