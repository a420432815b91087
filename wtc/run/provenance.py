"""Where a run comes from: the Hydra overrides and sweep, its choices and its name; the class names
of the scaler and resampler options, accepted as choices."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

__all__ = ["canonical_overrides", "choice_aliases", "hydra_context", "in_multirun", "run_choices", "run_name",
           "step_name", "sweep_context", "varied_keys"]

#: The groups whose options build one class each: their outputs (run names, params) say the class name.
ALIASED_GROUPS = ("resample", "scaler")
#: The parts of a run's name, in order, and the override keys that decide each.
_NAME_PARTS = (("model", ("model", "model.name")), ("view", ("data", "data.view")), ("resample", ("resample",)),
               ("scaler", ("scaler",)), ("search", ("search", "search.kind")))


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


def run_name(cfg: DictConfig, varied: Iterable[str] | None = None, overrides: Mapping[str, str] | None = None) -> str:
    """A run's name: ``<model>-<view>-<resampler>-<scaler>-<search>`` for a single run, e.g.
    ``xgboost-combined-SMOTE-RobustScaler-gp``; in a sweep, only what varies across it.

    Parameters
    ----------
    cfg : DictConfig
        The run's composed config.
    varied : iterable of str, optional
        The override keys the sweep gives several values (:func:`varied_keys`); None for a single run.
    overrides : mapping of str to str, optional
        This job's override values by key: a varied key outside the five parts is named ``key=value``,
        by its last component when that is unambiguous (``alpha=1.5`` for ``+model.estimator.alpha``).

    Examples
    --------
    ``python run.py -m data=good,bad model=xgboost,dnn resample=smote`` names its jobs ``xgboost-good``,
    ``dnn-bad``, ...: the resampler, scaler and search they share are in the leaderboard's header.
    """
    parts = {"model": cfg.model.name, "view": cfg.data.view, "resample": step_name(cfg.resample),
             "scaler": step_name(cfg.scaler), "search": cfg.search.kind}
    full = "-".join(str(v) for v in parts.values())
    varied = set(varied or ())
    if not varied:
        return full
    named = {key for _, keys in _NAME_PARTS for key in keys}
    kept = [str(parts[part]) for part, keys in _NAME_PARTS if varied & set(keys)]
    others = sorted(varied - named)
    short = {key: key.lstrip("+~").rsplit(".", 1)[-1] for key in others}  # model.estimator.alpha -> alpha
    if len(set(short.values())) < len(short):
        short = {key: key.lstrip("+~") for key in others}
    kept += [f"{short[key]}={(overrides or {}).get(key, '?')}" for key in others]
    return "-".join(kept) or full


def varied_keys(overrides: Sequence[str]) -> set[str]:
    """The keys a sweep's overrides (``data=good,bad``, ``seed=range(3)``, ``model=dnn``) give more than one value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    last = {}  # as Hydra's basic sweeper: a later override of a key (the command line's) replaces an earlier one
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        last[override.key_or_group] = override
    varied = set()
    for key, override in last.items():
        if not override.is_sweep_override():
            continue
        try:
            several = len(set(override.sweep_string_iterator())) > 1
        except Exception:  # noqa: BLE001 - a glob or an interval (another sweeper's): values vary
            several = True
        if several:
            varied.add(key)
    return varied


def sweep_context() -> tuple[set[str] | None, dict[str, str]]:
    """In a Hydra multirun job: the keys its sweep varies (read from the sweep's ``multirun.yaml``:
    the command line's overrides and ``hydra.sweeper.params``) and this job's override values by key.
    ``(None, {})`` for a single run or when the sweep's file cannot be read."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            return None, {}
        sweep = OmegaConf.load(Path(hc.runtime.cwd) / hc.sweep.dir / "multirun.yaml")
        params = OmegaConf.select(sweep, "hydra.sweeper.params", default=None) or {}
        overrides = [f"{k}={v}" for k, v in params.items()] + list(sweep.hydra.overrides.task)
        varied = varied_keys(overrides)
        job = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(list(hc.overrides.task))}
    except Exception:  # noqa: BLE001 - the name is a convenience: the full name when anything is amiss
        return None, {}
    return varied, {key: str(value) for key, value in job.items()}


def choice_aliases(conf_dir: Path | str) -> dict[str, dict[str, str]]:
    """Per group of :data:`ALIASED_GROUPS`: each option's class name (what outputs say, e.g. ``SMOTE``,
    ``RobustScaler``) and the option's own name, lower-cased, to the option (``smote``, ``robust``)."""
    aliases: dict[str, dict[str, str]] = {}
    for group in ALIASED_GROUPS:
        names = aliases.setdefault(group, {})
        for path in sorted(Path(conf_dir, group).glob("*.yaml")):
            node = OmegaConf.load(path)
            names.setdefault(path.stem.lower(), path.stem)
            names.setdefault(step_name(node).lower(), path.stem)
    return aliases


_OVERRIDE = re.compile(r"^(?P<key>[+~]{0,2}(?P<group>\w+)(?:@[\w.]*)?=)(?P<value>.*)$", re.DOTALL)


def canonical_overrides(args: Sequence[str], conf_dir: Path | str) -> list[str]:
    """Command-line arguments with the class names of scaler and resampler options turned into the
    options' names: ``resample=SMOTE`` -> ``resample=smote``, ``scaler=RobustScaler,none`` ->
    ``scaler=robust,none``; every other argument (and any unknown name, for Hydra to refuse) unchanged."""
    aliases = choice_aliases(conf_dir)
    out = []
    for arg in args:
        match = _OVERRIDE.match(arg)
        names = aliases.get(match["group"]) if match else None
        if names:
            value = re.sub(r"\w+", lambda m: names.get(m[0].lower(), m[0]), match["value"])
            arg = match["key"] + value
        out.append(arg)
    return out


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
