"""The leaderboard view and a run page as a fresh browser shows them: a real ``mlflow server`` over a small
store, rendered by Debian's headless Chromium (``/usr/bin/chromium`` or ``$WTC_CHROMIUM``; ``.ci/run``
installs it). The view's tag format is MLflow-UI-internal (wtc.store.views): this pins it.

``$WTC_SCREENSHOTS=DIR`` keeps the screenshots (``leaderboard.png``, ``run.png``) in DIR to look at.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.factories import free_port, stop_group
from wtc.evaluation.report import summary_markdown
from wtc.store.runs import RunTracker
from wtc.store.views import leaderboard_url

pytestmark = pytest.mark.slow

#: (run name, model, CV roc_auc): the leaderboard must show them best first.
JOBS = [("logreg-full", "logreg", 0.81), ("xgboost-full", "xgboost", 0.93), ("forest-full", "forest", 0.87)]


def _chromium() -> str:
    chromium = os.environ.get("WTC_CHROMIUM", "/usr/bin/chromium")
    assert Path(chromium).is_file(), f"{chromium} is missing: apt-get install chromium (.ci/run does)"
    return chromium


def _fill(uri: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = {}
    for name, model, auc in JOBS:
        with RunTracker(uri, "wtc-binary", run_name=name, tags={"wtc.model": model}, objective="roc_auc") as run:
            run.log_params({"model.name": model, "data.view": "full", "resample": "smote", "scaler": "none"})
            for i in range(2):  # trials score higher than their parent: sorted among the jobs they would lead
                run.child_run(f"trial-{name}-{i}", {"C": i}, {"cv/roc_auc_mean": auc + 0.05})
            metrics = {"cv/roc_auc_mean": auc, "cv/roc_auc_std": 0.0123, "test/roc_auc": auc - 0.011,
                       "oracle/roc_auc": 0.9712, "test/log_loss": 0.3456, "oracle/log_loss": 0.2011,
                       "test/coverage_at_p95": 0.5432}
            run.log_metrics(metrics)
            figure, axes = plt.subplots(figsize=(4, 3))
            axes.plot([0, 0.1, 1], [0, 0.8, 1])
            axes.set_title(f"ROC of {name}")
            run.log_figure(figure, "plots/roc.png")
            summary = summary_markdown(name, {"model": model, "view": "full"}, metrics, "roc_auc",
                                       ["plots/roc.png"], 200, 80, run_id=run.run_id)
            run.set_tags({"mlflow.note.content": summary})
            ids[name] = run.run_id
    return ids


@contextlib.contextmanager
def _server(uri: str, tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    mlflow = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen([mlflow, "server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port",
                               str(port), "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                with urllib.request.urlopen(f"{address}/health", timeout=2):
                    break
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not answer within 120 s"
            time.sleep(1)
        yield address
    finally:
        stop_group(server, grace=20)
        log.close()


def _browse(url: str, tmp_path: Path, shot: str) -> tuple[str, str]:
    """The page's DOM and its visible text, as a fresh headless Chromium renders it; a screenshot beside."""
    profile = tmp_path / f"chromium-{shot}"
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--virtual-time-budget=15000", "--window-size=1600,1000"]
    dom = subprocess.run([*command, "--dump-dom", url], capture_output=True, text=True, timeout=180).stdout
    png = tmp_path / f"{shot}.png"
    subprocess.run([*command, f"--screenshot={png}", url], capture_output=True, timeout=180)
    assert png.stat().st_size > 10_000
    if os.environ.get("WTC_SCREENSHOTS"):
        keep = Path(os.environ["WTC_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(png, keep / png.name)
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))
    return dom, text


def test_the_leaderboard_and_a_run_page_render_in_a_fresh_browser(tmp_path, new_store):
    uri = new_store(tmp_path)
    ids = _fill(uri)
    import mlflow

    experiment_id = mlflow.MlflowClient(uri).get_experiment_by_name("wtc-binary").experiment_id
    with _server(uri, tmp_path) as address:
        dom, text = _browse(leaderboard_url(experiment_id, "roc_auc", address), tmp_path, "leaderboard")
        assert "Leaderboard (cv roc_auc)" in text, text[:2000]
        assert "Model training" in text and "3 matching runs" in text, text[:3000]
        for column in ("cv/roc_auc_mean", "cv/roc_auc_std", "oracle/roc_auc", "test/coverage_at_p95",
                       "test/log_loss", "test/roc_auc", "Duration"):
            assert column in text, column
        assert "Sort: cv/roc_auc_mean" in text
        shown = [text.index(name) for name in ("xgboost-full", "forest-full", "logreg-full")]
        assert shown == sorted(shown), "runs not best first by cv/roc_auc_mean"
        assert "trial-" not in text  # no trial row
        assert "0.93" in text and "0.9712" in text

        best = ids["xgboost-full"]
        dom, text = _browse(f"{address}/#/experiments/{experiment_id}/runs/{best}?workflowType=machine_learning",
                            tmp_path, "run")
        assert "Description" in text and "Oracle gap" in text, text[:3000]
        assert "0.93 ± 0.0123" in text  # the summary's metrics table, at 4 significant digits
        src = f"get-artifact?path=plots%2Froc.png&amp;run_uuid={best}"
        assert f'<img src="{src}"' in dom  # the figure inline in the Description
        with urllib.request.urlopen(f"{address}/{html.unescape(src)}", timeout=30) as answer:
            assert answer.read(8) == b"\x89PNG\r\n\x1a\n"  # ... and the server serves it
