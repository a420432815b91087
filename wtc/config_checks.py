"""Check a run config before any work is done or any run is opened: one ConfigError naming the key."""

from __future__ import annotations

import re

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wtc.data.features import EXTRAS, VIEWS
from wtc.data.targets import TARGETS
from wtc.errors import ConfigError
from wtc.evaluation.metrics import METRICS
from wtc.models.calibration import CALIBRATION_METHODS
from wtc.splits import CV_KINDS
from wtc.tuning import SEARCHERS

#: What ``ensemble.kind`` may name (see wtc.refit).
ENSEMBLE_KINDS = ("none", "folds", "top_k")

__all__ = ["check_config"]

_MISSING = object()
_INTEGER_TEXT = re.compile(r"-?[0-9]+")


def check_config(cfg: DictConfig) -> None:
    """Fail before any work when a choice has no implementation or a value cannot work.

    Parameters
    ----------
    cfg : DictConfig
        The composed config of ``conf/config.yaml``.

    Raises
    ------
    ConfigError
        One line naming the key at fault and what it must be.
    """
    _choice(cfg, "metric", METRICS)
    _choice(cfg, "cv.kind", CV_KINDS)
    _choice(cfg, "search.kind", SEARCHERS)
    _choice(cfg, "data.view", VIEWS)
    _choice(cfg, "target.name", TARGETS)
    _integer(cfg, "search.n_trials", low=1)
    if OmegaConf.select(cfg, "calibration", default=None) is not None:
        _choice(cfg, "calibration.method", CALIBRATION_METHODS)
    if OmegaConf.select(cfg, "ensemble", default=None) is not None:
        _choice(cfg, "ensemble.kind", ENSEMBLE_KINDS)
        _integer(cfg, "ensemble.k", low=1, optional=True)
    _integer(cfg, "cv.n_splits", low=2)
    _integer(cfg, "seed", low=0, high=2**32 - 1)  # what numpy and scikit-learn accept
    _integer(cfg, "n_jobs", low=1, optional=True)
    _integer(cfg, "target.min_class_count", low=0, optional=True)
    test_size = _value(cfg, "test_size")
    if type(test_size) not in (int, float) or not 0 < test_size < 1:
        raise ConfigError(f"test_size must be a number between 0 and 1 (exclusive), got {test_size!r}")
    extras = _value(cfg, "data.extras", optional=True)
    if extras is not _MISSING and extras is not None:
        if not isinstance(extras, (list, ListConfig)):
            raise ConfigError(f"data.extras must be a list of {', '.join(EXTRAS)}, got {extras!r}")
        unknown = [e for e in extras if e not in EXTRAS]
        if unknown:
            raise ConfigError(f"unknown data.extras {unknown}; choose from {', '.join(EXTRAS)}")


def _value(cfg: DictConfig, key: str, optional: bool = False):
    """The resolved value at ``key``; ConfigError when it is missing (unless optional) or cannot resolve."""
    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{key} cannot be resolved: {str(exc).splitlines()[0]}") from None
    if value is _MISSING and not optional:
        raise ConfigError(f"{key} is missing from the config")
    return value


def _choice(cfg: DictConfig, key: str, known) -> None:
    value = _value(cfg, key)
    if not isinstance(value, str) or value not in known:
        raise ConfigError(f"unknown {key} {value!r}; choose one of {', '.join(known)}")


def _integer(cfg: DictConfig, key: str, low: int, high: int | None = None, optional: bool = False) -> None:
    """An integer (or its decimal text, as an environment interpolation gives) in [low, high]."""
    value = _value(cfg, key, optional)
    if value is _MISSING:
        return
    number = value
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        number = int(value)
    if type(number) is not int:
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if number < low:
        raise ConfigError(f"{key} must be at least {low}, got {value!r}")
    if high is not None and number > high:
        raise ConfigError(f"{key} must be at most {high}, got {value!r}")
