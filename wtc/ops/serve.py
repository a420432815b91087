"""``wtc serve``: ``mlflow models serve`` of a registered model on 127.0.0.1, started so that it works from a venv."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["serve_command", "serve_environment"]


def serve_command(model_uri: str, port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``mlflow models serve`` command line (``--env-manager local``: this environment, offline)."""
    mlflow = Path(sys.executable).parent / "mlflow"
    program = [str(mlflow)] if mlflow.is_file() else [sys.executable, "-m", "mlflow"]
    return [*program, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", host, "-p", str(port)]


def serve_environment(tracking_uri: str | None) -> dict[str, str]:
    """The environment of the server: this interpreter's bin dir first on PATH, the store to resolve ``models:/``.

    ``mlflow models serve`` execs ``uvicorn`` from PATH: from a venv that is not activated it
    fails with ``exec: uvicorn: not found`` (STACK.md) unless the venv's bin dir leads PATH.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir)])
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if shutil.which("uvicorn", path=env["PATH"]) is None:
        from wtc.errors import WtcError

        raise WtcError(f"uvicorn is not installed beside {sys.executable} (mlflow models serve needs it)")
    return env


def serve(model_uri: str, port: int, tracking_uri: str | None) -> None:
    """Replace this process by the model server (Ctrl-C or a signal to its process group stops it)."""
    command = serve_command(model_uri, port)
    env = serve_environment(tracking_uri)
    print(f"serving {model_uri} on http://127.0.0.1:{port}/invocations: {' '.join(command)}", flush=True)
    os.execve(command[0], command, env)
