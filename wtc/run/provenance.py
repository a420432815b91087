"""Where a run comes from: the Hydra overrides and sweep, its choices and its name."""

from __future__ import annotations

from omegaconf import DictConfig

__all__ = ["hydra_context", "in_multirun", "run_choices", "run_name", "step_name"]


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


def step_name(node) -> str:
    """The class name a scaler/resampler config node builds (``none`` when the group is empty)."""
    return node.get("_target_", "none").rsplit(".", 1)[-1] if node else "none"


def run_name(cfg: DictConfig) -> str:
    """``<model>-<view>-<resampler>-<scaler>-<search>``, e.g. ``xgboost-combined-SMOTE-RobustScaler-gp``."""
    return f"{cfg.model.name}-{cfg.data.view}-{step_name(cfg.resample)}-{step_name(cfg.scaler)}-{cfg.search.kind}"


def run_choices(cfg: DictConfig) -> dict[str, str]:
    """The choices that define a run, by the names researchers compare runs on (its params)."""
    choices = {
        "model.name": cfg.model.name, "data.view": cfg.data.view, "target.name": cfg.target.name,
        "scaler": step_name(cfg.scaler), "resample": step_name(cfg.resample), "search.kind": cfg.search.kind,
        "search.n_trials": cfg.search.n_trials, "cv.kind": cfg.cv.kind, "cv.n_splits": cfg.cv.n_splits,
        "metric": cfg.metric, "seed": cfg.seed, "test_size": cfg.test_size, "device": cfg.device,
    }
    ensemble, calibration = cfg.get("ensemble"), cfg.get("calibration")
    if ensemble is not None:
        choices["ensemble"] = ensemble.get("kind", "none")
        # The ensemble class's arguments (top_k's k): ensemble.<argument>.
        choices.update({f"ensemble.{key}": value for key, value in ensemble.items() if key not in ("_target_", "kind")})
    if calibration is not None:
        choices["calibration"] = calibration.get("method", "none")
    if cfg.data.get("extras"):
        choices["data.extras"] = ",".join(cfg.data.extras)
    if cfg.data.path:
        choices["data.path"] = str(cfg.data.path)
    return {k: str(v) for k, v in choices.items()}


def in_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (a sweep), where jobs may run in parallel."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except (ImportError, ValueError):
        return False
