"""``wtc ui``: the MLflow UI on the project's store, opened on each experiment's leaderboard view."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from wtc.errors import WtcError
from wtc.sqlite import sqlite_db_path
from wtc.store.views import UI_ADDRESS, experiment_ids, leaderboard_url, leaderboards

__all__ = ["leaderboard_link", "ui", "ui_address", "ui_command", "ui_server_command", "wtc_executable"]


def ui_address(tracking_uri: str, port: int = 5000) -> str:
    """Where a browser sees the store: the tracking server itself, else ``wtc ui``'s 127.0.0.1:<port>."""
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return UI_ADDRESS if port == 5000 else f"http://127.0.0.1:{port}"


def wtc_executable() -> Path:
    """The ``wtc`` command of this environment (what the messages tell a user to run)."""
    return Path(sys.executable).parent / "wtc"


def ui_command(tracking_uri: str) -> str:
    """How to look at a store: ``wtc ui`` of this environment, or nothing to start for a tracking server."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    return f"{wtc_executable()} ui --tracking-uri {tracking_uri}"


def leaderboard_link(tracking_uri: str, experiment: str, objective: str | None = None) -> str:
    """The URL of an experiment's leaderboard (its runs, best first by ``cv/<objective>_mean``; by default the
    objective of the view it holds), or the experiments page when the store does not know the experiment."""
    found = experiment_ids(tracking_uri, [experiment])
    address = ui_address(tracking_uri)
    if experiment not in found:
        return f"{address}/#/experiments?workflowType=machine_learning"
    experiment_id, held = found[experiment]
    return leaderboard_url(experiment_id, objective or held or "roc_auc", address)


def ui_server_command(tracking_uri: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow ui`` command line of this environment serving ``tracking_uri``."""
    return [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", tracking_uri,
            "--host", host, "--port", str(port), "--workers", "1"]


def ui(tracking_uri: str, port: int = 5000) -> None:
    """Print each experiment's leaderboard URL, then replace this process by ``mlflow ui`` on 127.0.0.1.

    Raises
    ------
    WtcError
        ``tracking_uri`` is a tracking server (open it instead) or a SQLite store that does not exist.
    """
    if tracking_uri.startswith(("http://", "https://")):
        raise WtcError(f"{tracking_uri} is a tracking server already: open it in a browser")
    db = sqlite_db_path(tracking_uri)
    if db is not None and not Path(db).is_file():
        raise WtcError(f"no tracking store at {db}: run a job first (python3 dev.py run) or pass --tracking-uri")
    address = ui_address(tracking_uri, port)
    boards = leaderboards(tracking_uri, address)
    for name, url in boards:
        print(f"{name}: {url}", flush=True)
    if not boards:
        print(f"no experiment yet: {address}/#/experiments?workflowType=machine_learning", flush=True)
    command = ui_server_command(tracking_uri, port)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    print(f"starting the MLflow UI on {address} (Ctrl-C stops it)", flush=True)
    os.execve(command[0], command, env)
