"""``wtc ui``: the MLflow UI on the store, and the leaderboard URLs wtc prints (wtc.ops.ui)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wtc.cli import main
from wtc.errors import WtcError
from wtc.ops import ui as ui_module
from wtc.ops.ui import leaderboard_link, ui_command
from wtc.store.uri import init_store


def test_leaderboard_links_open_the_view_in_model_training_mode(tracking_uri):
    experiment_id = init_store(tracking_uri, "wtc-binary", objective="log_loss")
    assert leaderboard_link(tracking_uri, "wtc-binary", "log_loss") == (
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?viewStateShareKey=wtc-leaderboard-log-loss"
        "&workflowType=machine_learning")
    assert leaderboard_link(tracking_uri, "wtc-binary") == leaderboard_link(tracking_uri, "wtc-binary", "log_loss")
    assert leaderboard_link(tracking_uri, "nope").endswith("/#/experiments?workflowType=machine_learning")
    assert ui_command(tracking_uri) == f"{Path(sys.executable).parent / 'wtc'} ui --tracking-uri {tracking_uri}"


def test_wtc_ui_prints_each_leaderboard_then_starts_mlflow_ui(tracking_uri, monkeypatch, capsys):
    binary = init_store(tracking_uri, "wtc-binary")
    labels = init_store(tracking_uri, "wtc-labels", objective="log_loss")
    started = {}
    monkeypatch.setattr(ui_module.os, "execve", lambda path, argv, env: started.update(argv=argv, env=env))
    assert main(["ui", "--tracking-uri", tracking_uri, "--port", "5123"]) == 0
    out = capsys.readouterr().out
    base = "http://127.0.0.1:5123/#/experiments"
    assert f"wtc-binary: {base}/{binary}/runs?viewStateShareKey=wtc-leaderboard-roc-auc&workflowType=machine_learning" in out
    assert f"wtc-labels: {base}/{labels}/runs?viewStateShareKey=wtc-leaderboard-log-loss&workflowType=machine_learning" in out
    argv = started["argv"]
    assert argv[0] == str(Path(sys.executable).parent / "mlflow") and argv[1] == "ui"
    assert argv[argv.index("--backend-store-uri") + 1] == tracking_uri
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "5123"
    assert started["env"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_wtc_ui_needs_a_store(tmp_path, capsys):
    assert main(["ui", "--tracking-uri", f"sqlite:///{tmp_path}/none/mlflow.db"]) == 2
    assert "no tracking store at" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    with pytest.raises(WtcError, match="tracking server already"):
        ui_module.ui("http://127.0.0.1:1")
