"""Check a run config before any work is done or any run is opened: one ConfigError naming the key."""

from __future__ import annotations

import re

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wtc.data.features import EXTRAS, VIEWS
from wtc.data.targets import TARGETS
from wtc.errors import ConfigError, one_line
from wtc.evaluation.metrics import METRICS
from wtc.store.uri import tracking_uri_problem
from wtc.tuning import PRUNERS
from wtc.tuning.naming import IN_MEMORY

__all__ = ["FIGURE_TIMINGS", "OPTION_NAMES", "check_config", "check_model_params", "checked_splits"]

#: The groups whose option names its class (``_target_``) and, beside it, the option's logged name
#: under this key, which the class declares as a class attribute of the same name.
OPTION_NAMES = {"search": "kind", "cv": "kind", "ensemble": "kind", "calibration": "method"}
#: Groups older run configs may lack (their runs had one model, uncalibrated).
_OPTIONAL_GROUPS = ("ensemble", "calibration")

#: ``diagnostics.figures``: drawn in the job, or their inputs logged and drawn by ``wtc runs figures``.
FIGURE_TIMINGS = ("now", "on_demand")
#: ``diagnostics.model``: the MLflow model logged in the job, or its inputs kept and the model
#: logged by promotion, the leaderboard or ``wtc runs model``.
MODEL_TIMINGS = ("now", "on_demand")

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
    for group, key in OPTION_NAMES.items():
        _option(cfg, group, key)
    _choice(cfg, "data.view", VIEWS)
    _choice(cfg, "target.name", TARGETS)
    _integer(cfg, "search.n_trials", low=1)
    _search_run(cfg)
    _integer(cfg, "ensemble.k", low=1, optional=True)
    _ensemble_size(cfg)
    _tracking(cfg)
    _integer(cfg, "cv.n_splits", low=2)
    for key, timings in (("diagnostics.figures", FIGURE_TIMINGS), ("diagnostics.model", MODEL_TIMINGS)):
        timing = _value(cfg, key, optional=True)
        if timing is not _MISSING and timing not in timings:
            raise ConfigError(f"unknown {key} {timing!r}; choose one of {', '.join(timings)}")
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
        repeated = sorted({e for e in extras if list(extras).count(e) > 1})
        if repeated:
            raise ConfigError(f"data.extras names {', '.join(repeated)} more than once: {list(extras)}")


def _ensemble_size(cfg: DictConfig) -> None:
    """A top-k ensemble cannot have more members than the search has trials."""
    k, n_trials = (_value(cfg, key, optional=True) for key in ("ensemble.k", "search.n_trials"))
    if k is _MISSING or n_trials is _MISSING or OmegaConf.select(cfg, "ensemble", default=None) is None:
        return
    k, n_trials = (int(v) if isinstance(v, str) else v for v in (k, n_trials))
    if k > n_trials:
        raise ConfigError(f"ensemble.k must be at most search.n_trials ({n_trials}): a top-k ensemble refits "
                          f"the k best trials, got {k}")


def _tracking(cfg: DictConfig) -> None:
    """``tracking.uri``: null or a store MLflow can open; ``tracking.experiment``: a name."""
    if OmegaConf.select(cfg, "tracking", default=None) is None:
        return
    experiment = _value(cfg, "tracking.experiment", optional=True)
    if experiment is not _MISSING and (not isinstance(experiment, str) or not experiment.strip()):
        raise ConfigError(f"tracking.experiment must be a non-empty name, got {experiment!r}")
    uri = _value(cfg, "tracking.uri", optional=True)
    if uri in (_MISSING, None, ""):
        return
    problem = tracking_uri_problem(uri)
    if problem:
        raise ConfigError(f"tracking.uri {problem}")


def check_model_params(pipeline, cfg: DictConfig) -> None:
    """The model's parameters are ones its estimator accepts (scikit-learn's own parameter checks),
    checked before any run is opened: ConfigError naming ``model.estimator.<param>``."""
    model = pipeline.steps[-1][1]
    validate = getattr(model, "_validate_params", None)
    if validate is None or not isinstance(getattr(model, "_parameter_constraints", None), dict):
        return  # not a scikit-learn estimator that declares its parameters' constraints
    try:
        validate()
    except (ValueError, TypeError) as exc:  # sklearn's InvalidParameterError is both
        found = re.search(r"The '(\w+)' parameter", str(exc))
        key = f"model.estimator.{found.group(1)}" if found else "model.estimator"
        raise ConfigError(f"{key} is refused by {type(model).__name__} (model={cfg.model.name}): "
                          f"{one_line(exc, limit=300)}") from None


def checked_splits(cfg: DictConfig, data, make):
    """``make(cfg, data)`` (the held-out split and CV folds), its refusals as one ConfigError naming the
    ``cv`` key: a temporal cv on workflows without dates, more folds than the training workflows allow."""
    n_splits = cfg.cv.n_splits
    n_workflows = len(set(data.groups.tolist()))
    try:
        splits = make(cfg, data)
    except ValueError as exc:
        if getattr(cfg.cv, "kind", None) == "temporal" and "date" in str(exc):
            raise ConfigError(f"cv=temporal cannot split {data.path.name}: {one_line(exc)}") from None
        raise ConfigError(f"cv.n_splits={n_splits} cannot split the {n_workflows} workflows of {data.path.name} "
                          f"(test_size={cfg.test_size}): choose fewer splits ({one_line(exc, limit=200)})") from None
    if any(len(fit) == 0 or len(valid) == 0 for fit, valid in splits.folds):
        raise ConfigError(f"cv.n_splits={n_splits} is more folds than the {n_workflows} workflows of "
                          f"{data.path.name} fill (test_size={cfg.test_size}): choose fewer splits")
    return splits


def _search_run(cfg: DictConfig) -> None:
    """The keys of how a search runs and prunes (all optional: older configs lack them)."""
    _integer(cfg, "search.n_workers", low=1, optional=True)
    _integer(cfg, "search.n_initial_points", low=1, optional=True, nullable=True)
    _integer(cfg, "search.heartbeat_s", low=1, optional=True, nullable=True)
    _integer(cfg, "search.prune_startup_trials", low=0, optional=True)
    _integer(cfg, "search.prune_min_folds", low=1, optional=True)
    pruner = _value(cfg, "search.pruner", optional=True)
    if pruner is not _MISSING and pruner not in PRUNERS:
        raise ConfigError(f"unknown search.pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    study = _value(cfg, "search.study", optional=True)
    if study not in (_MISSING, None) and (not isinstance(study, str) or not study.strip()):
        raise ConfigError(f"search.study must be a name or null, got {study!r}")
    storage = _value(cfg, "search.storage", optional=True)
    if storage in (_MISSING, None, IN_MEMORY):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        if not isinstance(storage, str):
            raise ArgumentError(storage)
        make_url(storage)
    except ArgumentError:
        raise ConfigError("search.storage must be null, memory or a database URL such as sqlite:///optuna.db or "
                          f"postgresql://user@host/db, got {storage!r}") from None


def _value(cfg: DictConfig, key: str, optional: bool = False):
    """The resolved value at ``key``; ConfigError when it is missing (unless optional) or cannot resolve."""
    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{key} cannot be resolved: {str(exc).splitlines()[0]}") from None
    if value is _MISSING and not optional:
        raise ConfigError(f"{key} is missing from the config")
    return value


def _option(cfg: DictConfig, group: str, key: str) -> None:
    """The option of ``group`` names an importable class (``_target_``) whose ``key`` attribute is the
    option's ``<group>.<key>``; an option without ``_target_`` builds nothing and is named ``none``."""
    if group in _OPTIONAL_GROUPS and OmegaConf.select(cfg, group, default=None) is None:
        return
    value = _value(cfg, f"{group}.{key}")
    target = _value(cfg, f"{group}._target_", optional=True)
    if target is _MISSING:
        expected, named_by = "none", "an option without _target_"
    else:
        from hydra.utils import get_class

        try:
            expected = getattr(get_class(target), key, None)
        except Exception as exc:  # noqa: BLE001 - a missing module or class, a bad path
            raise ConfigError(f"{group}._target_ {target!r} cannot be imported: {one_line(exc, limit=300)}") from None
        if not isinstance(expected, str):
            raise ConfigError(f"{group}._target_ {target!r} is no {group} class: it declares no {key}")
        named_by = f"{group}._target_ {target}"
    if value != expected:
        raise ConfigError(f"unknown {group}.{key} {value!r}: {named_by} is {expected!r} "
                          f"(choose the option of another class: {group}=<option>)")


def _choice(cfg: DictConfig, key: str, known) -> None:
    value = _value(cfg, key)
    if not isinstance(value, str) or value not in known:
        raise ConfigError(f"unknown {key} {value!r}; choose one of {', '.join(known)}")


def _integer(cfg: DictConfig, key: str, low: int, high: int | None = None, optional: bool = False,
             nullable: bool = False) -> None:
    """An integer (or its decimal text, as an environment interpolation gives) in [low, high]
    (or null when ``nullable``)."""
    value = _value(cfg, key, optional)
    if value is _MISSING or (nullable and value is None):
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
