"""``python -m wtc.bench serve``: the champion behind ``wtc serve`` against the same model in-process.

Three tiers on the same tasks, in one run, so their ratios compare on one machine load:
- ``floor``: the fitted pipeline's ``predict_proba`` on feature rows built beforehand;
- ``in-process``: the pyfunc on raw tasks (validation, featurisation, decision rows), no HTTP;
- ``served``: ``wtc serve`` on loopback, JSON over HTTP, 1 and 4 client threads.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from wtc.ops.server import free_port

BATCHES = (1, 10, 1000)
THREADS = (1, 4)


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def _row(tier: str, threads: int, batch: int, latencies: list[float], wall_s: float) -> dict:
    lat = np.asarray(latencies) * 1000
    return {"tier": tier, "threads": threads, "batch": batch, "requests": lat.size,
            "tasks_per_s": lat.size * batch / wall_s, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


def _requests_for(batch: int, seconds: float, per_call_s: float) -> int:
    """Enough calls to fill about ``seconds`` (at least 20, for a p99 worth the name)."""
    return int(max(20, min(5000, seconds / max(per_call_s, 1e-5))))


def _timed_calls(call, bodies: list, count: int) -> tuple[list[float], float]:
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        call(bodies[i % len(bodies)])
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - start


def _champion(history: str, tmp: str, trials: int | None) -> tuple[str, str]:
    """Train the champion preset (binary) into a scratch store; (model URI, tracking URI)."""
    from hydra import compose, initialize_config_dir

    from wtc.run.experiment import run
    from wtc.store.logged_models import find_run_model
    from wtc.store.query import store_client

    uri = f"sqlite:///{tmp}/mlruns/mlflow.db"
    overrides = ["+experiment=champion", "target=binary", f"data.path={history}", f"tracking.uri={uri}",
                 f"paths.mlruns={tmp}/mlruns", f"paths.cache_dir={tmp}/cache", "diagnostics=none",
                 "tracking.log_model=true", "quiet=true", *([f"search.n_trials={trials}"] if trials else [])]
    conf = Path(__file__).resolve().parents[2] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    start = time.perf_counter()
    result = run(cfg)
    print(f"trained the champion preset (binary) in {time.perf_counter() - start:.0f} s: run {result.run_id}",
          flush=True)
    client = store_client(uri)
    return find_run_model(client, uri, client.get_run(result.run_id)).model_uri, uri


def _start_server(model_uri: str, tracking_uri: str, log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("w") as out:  # the server writes to its own copy of the descriptor
        server = subprocess.Popen([sys.executable, "-m", "wtc.cli", "serve", "--model", model_uri, "--tracking-uri",
                                   tracking_uri, "--port", str(port)], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"error: wtc serve ended at start: {log.read_text()[-1000:]}")
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            probe.request("GET", "/ping")
            if probe.getresponse().status == 200:
                return server, port
        except OSError:
            pass
        time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    raise SystemExit(f"error: wtc serve did not answer in 180 s (its log: {log})")


def _served(port: int, bodies: list[bytes], threads: int, count: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def post(body: bytes) -> None:
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                raise SystemExit(f"error: wtc serve answered {answer.status}")

        mine, _ = _timed_calls(post, bodies[offset:] + bodies[:offset], count)
        connection.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, time.perf_counter() - start


def bench_serve(history: str | None, model_uri: str | None, tracking_uri: str | None, seconds: float,
                trials: int | None) -> list[dict]:
    """Print (and return) tasks/s and p50/p99 latency per tier, client threads and batch size."""
    import pandas as pd

    from wtc.data import build_features, load_history
    from wtc.models.pipeline import full_proba
    from wtc.store.pyfunc import load_model

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        if history is None:
            from wtc.data.synthetic import write_benchmark

            history = str(write_benchmark(Path(tmp) / "history.json"))
        if model_uri is None:
            model_uri, tracking_uri = _champion(history, tmp, trials)
        raw = json.loads(Path(history).read_text())
        names = list(raw)
        rng = np.random.default_rng(0)
        model = load_model(model_uri, tracking_uri).unwrap_python_model()
        spec = model.spec
        X, _ = build_features(load_history(history), spec.view, vocabulary=spec.feature_names, extras=spec.extras)
        n_classes = len(spec.class_names)
        server, port = _start_server(model_uri, tracking_uri, Path(tmp) / "serve.log")
        try:
            idle_mib = _rss_mib(server.pid)
            for batch in sorted({min(b, len(names)) for b in BATCHES}):  # distinct tasks in a call
                picks = [rng.permutation(len(names))[:batch] for _ in range(8)]
                frames = [pd.DataFrame({"task": [names[i] for i in p], "entry": [raw[names[i]] for i in p]})
                          for p in picks]
                bodies = [json.dumps({"dataframe_records": frame.to_dict("records")}).encode() for frame in frames]
                matrices = [X[p] for p in picks]
                full_proba(model.pipeline, matrices[0], n_classes)  # warm
                one = _timed_calls(lambda m: full_proba(model.pipeline, m, n_classes), matrices, 3)[1] / 3
                count = _requests_for(batch, seconds, one)
                rows.append(_row("floor", 1, batch, *_timed_calls(
                    lambda m: full_proba(model.pipeline, m, n_classes), matrices, count)))
                one = _timed_calls(lambda f: model.predict(None, f), frames, 3)[1] / 3
                count = _requests_for(batch, seconds, one)
                rows.append(_row("in-process", 1, batch, *_timed_calls(lambda f: model.predict(None, f), frames,
                                                                       count)))
                _served(port, bodies, 1, 3)  # warm the server's path for this size
                for threads in THREADS:
                    one = _served(port, bodies, 1, 3)[1] / 3
                    count = max(20 // threads, _requests_for(batch, seconds, one * threads) // threads)
                    rows.append(_row("served", threads, batch, *_served(port, bodies, threads, count)))
            busy_mib = _rss_mib(server.pid)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    _print(rows, idle_mib, busy_mib)
    return rows


def _print(rows: list[dict], idle_mib: float, busy_mib: float) -> None:
    print(f"{'tier':<11} {'threads':>7} {'batch':>6} {'requests':>8} {'tasks/s':>9} {'p50_ms':>8} {'p99_ms':>8} "
          f"{'x_floor':>7}")
    floor = {r["batch"]: r["tasks_per_s"] for r in rows if r["tier"] == "floor"}
    for r in rows:
        print(f"{r['tier']:<11} {r['threads']:>7} {r['batch']:>6} {r['requests']:>8} {r['tasks_per_s']:>9.0f} "
              f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {floor[r['batch']] / r['tasks_per_s']:>7.2f}")
    print(f"server RSS: {idle_mib:.0f} MiB after start, {busy_mib:.0f} MiB after the runs "
          "(x_floor: the floor's tasks/s over the tier's)")
