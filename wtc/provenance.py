"""Where a run comes from: the git commit of the code, the Hydra overrides and sweep, its name."""

from __future__ import annotations

import subprocess
from pathlib import Path

from omegaconf import DictConfig

__all__ = ["git_commit", "hydra_context", "in_multirun", "run_name"]


def git_commit() -> str:
    """``HEAD`` of the wtc checkout (``-dirty`` with uncommitted changes), or ``unknown``."""
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return "unknown"
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hydra_context() -> dict[str, str]:
    """Tags of the Hydra job: overrides, and the sweep dir and job number of a multirun
    (empty under the compose API)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except (ImportError, ValueError):
        return {}
    context = {"wtc.overrides": " ".join(hc.overrides.task)}
    if hc.mode == RunMode.MULTIRUN:
        context["wtc.sweep"] = str(hc.sweep.dir)
        context["wtc.job"] = str(hc.job.num)
    else:
        context["wtc.run_dir"] = str(hc.run.dir)
    return context


def _short(node) -> str:
    return node.get("_target_", "none").rsplit(".", 1)[-1] if node else "none"


def run_name(cfg: DictConfig) -> str:
    """``<model>-<view>-<resampler>-<scaler>-<search>``, e.g. ``xgboost-combined-SMOTE-RobustScaler-gp``."""
    return f"{cfg.model.name}-{cfg.data.view}-{_short(cfg.resample)}-{_short(cfg.scaler)}-{cfg.search.kind}"


def in_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (a sweep), where jobs may run in parallel."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        return False
