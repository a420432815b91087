"""What a run trains on: the configured history under one view and target, labelled rows only."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from wtc.config import build_option
from wtc.data.features import build_features
from wtc.data.loader import load_history
from wtc.data.oracle import has_oracle, load_oracle
from wtc.data.splits import Splits, make_splits
from wtc.data.targets import build_target
from wtc.errors import ConfigError, HistoryError

__all__ = ["OTHER_CLASS", "DataSetupCallback", "Dataset", "config_splits", "load_dataset", "merge_rare_classes", "resolve_data_path"]

log = logging.getLogger(__name__)
OTHER_CLASS = "other"


@dataclass
class Dataset:
    """The labelled rows of one history under one view and target."""

    path: Path
    content_hash: str
    X: object  # scipy.sparse.csr_matrix
    y: np.ndarray
    classes: list[str]
    feature_names: list[str]
    groups: np.ndarray
    dates: object  # pandas Series of request dates
    oracle: np.ndarray | None
    n_unlabelled: int
    oracle_blind: np.ndarray | None = None  # the name-blind oracle, when its sidecar exists
    oracle_workflow: np.ndarray | None = None  # the workflow oracle (reads siblings), when its sidecar exists
    oracle_workflow_blind: np.ndarray | None = None  # the name-blind workflow oracle, when its sidecar exists


def _paths(cfg: DictConfig) -> DictConfig:
    return OmegaConf.select(cfg, "paths", default=None) or OmegaConf.create({})


def resolve_data_path(cfg: DictConfig) -> Path:
    """The configured history (``data.path``), or the generated benchmark in ``paths.data_dir``
    (written on first use)."""
    if cfg.data.path:
        return Path(cfg.data.path).expanduser()
    from wtc.data.synthetic import ensure_default_history

    folder = _paths(cfg).get("data_dir")
    return ensure_default_history(Path(folder) if folder else None)


def cache_dir_of(cfg: DictConfig) -> Path | None:
    """The parsed-history cache folder of a config (``paths.cache_dir``), or None for the default."""
    folder = _paths(cfg).get("cache_dir")
    return Path(folder) if folder else None


def config_splits(cfg: DictConfig, data: Dataset) -> Splits:
    """The held-out split and CV folds a config asks for (the ``cv`` option's class, ``test_size``,
    ``seed``) on a loaded dataset, kept in the cache folder for the next job that asks for the same."""
    return make_splits(build_option(cfg.cv), float(cfg.test_size), int(cfg.seed), data.y, data.groups, data.dates,
                       cache_dir=cache_dir_of(cfg))


class DataSetupCallback(Callback):
    """Hydra callback: before a sweep's jobs start, create the default benchmark (if used) and
    parse the history once, so parallel jobs neither race to write it nor all parse it."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            load_history(resolve_data_path(config), cache_dir=cache_dir_of(config))
        except (HistoryError, OSError):
            pass  # each job reports the problem itself, as one line


def merge_rare_classes(y: np.ndarray, classes: list[str], min_count: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Merge classes rarer than ``min_count`` into ``other``.

    Returns the new labels, class names and a (old × new) 0/1 matrix that maps probability
    columns (e.g. the oracle's) to the merged classes.
    """
    counts = np.bincount(y, minlength=len(classes))
    rare = counts < min_count
    if min_count <= 0 or rare.sum() < 2:  # merging a single class would only rename it
        return y, list(classes), np.eye(len(classes))
    kept = [c for c, r in zip(classes, rare) if not r]
    new_classes = kept + [OTHER_CLASS]
    new_index = np.array([kept.index(c) if not r else len(kept) for c, r in zip(classes, rare)])
    mapping = np.zeros((len(classes), len(new_classes)))
    mapping[np.arange(len(classes)), new_index] = 1.0
    log.info("merged %d rare classes (< %d tasks) into %r: %s", rare.sum(), min_count, OTHER_CLASS,
             [c for c, r in zip(classes, rare) if r])
    return new_index[y], new_classes, mapping


def load_dataset(cfg: DictConfig) -> Dataset:
    """Load, featurise and label the configured history (parsed once, then cached)."""
    path = resolve_data_path(cfg)
    history = load_history(path, cache_dir=cache_dir_of(cfg))
    X, names = build_features(history, cfg.data.view, extras=list(cfg.data.get("extras") or []))
    y_all, classes = build_target(history, cfg.target.name)
    labelled = y_all >= 0
    if not labelled.any():
        raise ConfigError(f"{path}: no task has parameters, nothing to learn from")
    y, classes, mapping = merge_rare_classes(y_all[labelled], classes, int(cfg.target.get("min_class_count", 0)))
    if len(classes) < 2:
        raise ConfigError(f"{path}: target {cfg.target.name!r} has a single class {classes}")
    if X.shape[1] == 0:
        raise ConfigError(f"{path}: view {cfg.data.view!r} has no column on this history "
                          f"(statuses here: {', '.join(history.statuses)}); choose another data=…")
    oracle = oracle_blind = oracle_workflow = oracle_workflow_blind = None
    if has_oracle(path):
        proba, _ = load_oracle(path, cfg.target.name, history=history)
        oracle = proba[labelled] @ mapping
    if has_oracle(path, blind=True):
        proba, _ = load_oracle(path, cfg.target.name, history=history, blind=True)
        oracle_blind = proba[labelled] @ mapping
    if has_oracle(path, workflow=True):
        proba, _ = load_oracle(path, cfg.target.name, history=history, workflow=True)
        oracle_workflow = proba[labelled] @ mapping
    if has_oracle(path, blind=True, workflow=True):
        proba, _ = load_oracle(path, cfg.target.name, history=history, blind=True, workflow=True)
        oracle_workflow_blind = proba[labelled] @ mapping
    workflows = np.asarray(history.workflows, dtype=object)[labelled]
    return Dataset(
        path=path,
        content_hash=history.content_hash,
        X=X[labelled],
        y=y,
        classes=classes,
        feature_names=list(names),
        groups=workflows,
        dates=history.request_dates[labelled],
        oracle=oracle,
        n_unlabelled=int((~labelled).sum()),
        oracle_blind=oracle_blind,
        oracle_workflow=oracle_workflow,
        oracle_workflow_blind=oracle_workflow_blind,
    )
