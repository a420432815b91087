"""What a stored search is called: the study a run config names, and its objective's true direction."""

from __future__ import annotations

import hashlib
import json

__all__ = ["IN_MEMORY", "RUN_KEYS", "direction", "study_name"]

#: ``search.storage`` value of a search kept in memory only (no default study).
IN_MEMORY = "memory"

#: Keys of the ``search`` node that say how a search runs, not what it searches: never
#: passed to a back-end, never part of the study name.
RUN_KEYS = ("storage", "study", "n_workers", "heartbeat_s")

#: Config keys that do not change what a trial evaluates, left out of the study name: where
#: things are written, how many workers, the budget (a relaunch may extend it), logging.
#: (``n_jobs`` stays in: it reaches the estimators, and a booster's result may depend on its threads.)
_NOT_IN_NAME = {"tracking", "paths", "diagnostics", "verbose", "quiet", "hydra"}
_SEARCH_NOT_IN_NAME = {*RUN_KEYS, "n_trials"}
#: Groups whose option's class (``_target_``) is left out too: each option's logged name (``kind``,
#: ``method``), which the class declares, is in; so the studies stored before these options named
#: their classes keep their names, and stay resumable.
_TARGET_NOT_IN_NAME = ("search", "cv", "ensemble", "calibration")


def study_name(cfg) -> str:
    """The study a run's trials live in: ``search.study``, else derived from the config.

    ``wtc-<target>-<model>-<search kind>-<hash>``, the hash over the resolved config minus the
    keys that do not change a trial's outcome (storage, workers, budget, tracking, paths,
    diagnostics) and the ``_target_`` of the search, cv, ensemble and calibration options (their
    ``kind`` or ``method`` names the class). The same command therefore finds the same study again, and any
    change to the data, the split, the model, its space, the metric or the seed makes a new one.
    """
    from omegaconf import OmegaConf

    explicit = OmegaConf.select(cfg, "search.study", default=None)
    if explicit:
        return str(explicit)
    # Node by node, so that a key left out (e.g. an unset environment variable in tracking.uri)
    # is never resolved; interpolations inside the others still reach the whole config.
    plain = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
             for key in cfg if key not in _NOT_IN_NAME}
    plain["search"] = {k: v for k, v in plain.get("search", {}).items() if k not in _SEARCH_NOT_IN_NAME}
    for group in _TARGET_NOT_IN_NAME:
        if isinstance(plain.get(group), dict):
            plain[group] = {k: v for k, v in plain[group].items() if k != "_target_"}
    digest = hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"wtc-{cfg.target.name}-{cfg.model.name}-{cfg.search.kind}-{digest}"


def direction(metric: str | None) -> str:  # a metric's true direction (unknown: the value minimised)
    from wtc.evaluation.metrics import METRICS

    return "maximize" if metric in METRICS and METRICS[metric].greater_is_better else "minimize"
