"""How to look at stored searches: the ``optuna-dashboard`` command of this environment."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["STORAGE_TAG", "STUDY_TAG", "dashboard_command", "dashboard_executable"]

#: Tags of a parent run whose search was stored: the Optuna storage URL and the study's name.
STORAGE_TAG, STUDY_TAG = "wtc.optuna_storage", "wtc.optuna_study"


def dashboard_executable() -> Path:
    """The ``optuna-dashboard`` of this environment (installed with the project)."""
    return Path(sys.executable).parent / "optuna-dashboard"


def dashboard_command(storage_url: str) -> str:
    """The command that opens every study of an Optuna storage in ``optuna-dashboard``
    (on http://127.0.0.1:8080 by default; ``--port N`` for another)."""
    return f"{dashboard_executable()} {shlex.quote(storage_url)}"
