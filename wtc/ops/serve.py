"""``wtc serve``: a logged model behind wtc's guarded scoring server (MLflow's, :mod:`wtc.store.serving`) on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from wtc.errors import WtcError
from wtc.store.serving import MODEL_ENV

__all__ = ["serve", "serve_command", "serve_environment"]


def serve_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The uvicorn command line that serves the model named in the environment (:func:`serve_environment`)."""
    return [sys.executable, "-m", "uvicorn", "--factory", "wtc.store.serving:create_app_from_env",
            "--host", host, "--port", str(port)]


def serve_environment(model_uri: str, tracking_uri: str | None) -> dict[str, str]:
    """The environment of the server: the model to load, the store that resolves ``models:/``, this
    interpreter's bin dir first on PATH (what the model's own subprocesses, if any, would use)."""
    if importlib.util.find_spec("uvicorn") is None:
        raise WtcError(f"uvicorn is not installed beside {sys.executable} (MLflow's scoring server needs it)")
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir)])
    env[MODEL_ENV] = model_uri
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    return env


def serve(model_uri: str, port: int, tracking_uri: str | None) -> None:
    """Replace this process by the model server (Ctrl-C or a signal to its process group stops it)."""
    command = serve_command(port)
    env = serve_environment(model_uri, tracking_uri)
    print(f"serving {model_uri} on http://127.0.0.1:{port}/invocations: {' '.join(command)}", flush=True)
    os.execve(command[0], command, env)
