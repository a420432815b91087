"""One wtc run: data, held-out split, CV hyper-parameter search, refit, test scores, MLflow record."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from wtc.evaluation import plots
from wtc.errors import ConfigError
from wtc.data import HistoryError, build_features, build_target, has_oracle, load_history, load_oracle
from wtc.evaluation import METRICS, ks_statistic, objective_value, score_all
from wtc.pipeline import build_pipeline, config_space, cross_validate, full_proba, summarise, with_params
from wtc.search import SEARCHERS, make_searcher
from wtc.splits import CV_KINDS, cv_folds, holdout_split
from wtc.tracking import RunTracker

log = logging.getLogger(__name__)
OTHER_CLASS = "other"


@dataclass
class RunResult:
    """What one run produced: its metrics, MLflow run id, the refitted pipeline and its classes."""

    metrics: dict[str, float]
    run_id: str
    pipeline: object
    best_params: dict
    classes: list[str]
    feature_names: list[str]


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


def check_config(cfg: DictConfig) -> None:
    """Fail before any work when a choice has no implementation."""
    if cfg.metric not in METRICS:
        raise ConfigError(f"unknown metric {cfg.metric!r}; choose one of {', '.join(METRICS)}")
    if cfg.cv.kind not in CV_KINDS:
        raise ConfigError(f"unknown cv.kind {cfg.cv.kind!r}; choose one of {', '.join(CV_KINDS)}")
    if cfg.search.kind not in SEARCHERS:
        raise ConfigError(f"unknown search.kind {cfg.search.kind!r}; choose one of {', '.join(SEARCHERS)}")
    if int(cfg.search.n_trials) < 1:
        raise ConfigError("search.n_trials must be at least 1")


def resolve_data_path(cfg: DictConfig) -> Path:
    """The configured history, or the generated benchmark (written on first use)."""
    if cfg.data.path:
        return Path(cfg.data.path).expanduser()
    from wtc.data.synthetic import ensure_default_history

    return ensure_default_history()


class DataSetupCallback(Callback):
    """Hydra callback: before a sweep's jobs start, create the default benchmark (if used) and
    parse the history once, so parallel jobs neither race to write it nor all parse it."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            load_history(resolve_data_path(config))
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
    history = load_history(path)
    X, names = build_features(history, cfg.data.view, extras=list(cfg.data.get("extras") or []))
    y_all, classes = build_target(history, cfg.target.name)
    labelled = y_all >= 0
    if not labelled.any():
        raise ConfigError(f"{path}: no task has parameters, nothing to learn from")
    y, classes, mapping = merge_rare_classes(y_all[labelled], classes, int(cfg.target.get("min_class_count", 0)))
    if len(classes) < 2:
        raise ConfigError(f"{path}: target {cfg.target.name!r} has a single class {classes}")
    oracle = None
    if has_oracle(path):
        proba, _ = load_oracle(path, cfg.target.name, history=history)
        oracle = proba[labelled] @ mapping
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
    )


def _git_commit() -> str:
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


def _hydra_context() -> dict[str, str]:
    """Overrides and sweep directory when running under Hydra (empty under the compose API)."""
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


def _run_name(cfg: DictConfig) -> str:
    resample = cfg.resample.get("_target_", "none").rsplit(".", 1)[-1] if cfg.resample else "none"
    scaler = cfg.scaler.get("_target_", "none").rsplit(".", 1)[-1] if cfg.scaler else "none"
    return f"{cfg.model.name}-{cfg.data.view}-{resample}-{scaler}-{cfg.search.kind}"


def search(cfg, data: Dataset, pipeline, train: np.ndarray, tracker) -> tuple[dict, dict, object, list[float]]:
    """Search the model's space; every trial is scored by the CV mean of ``cfg.metric``."""
    X, y = data.X[train], data.y[train]
    folds = cv_folds(cfg.cv.kind, int(cfg.cv.n_splits), y, data.groups[train], int(cfg.seed),
                     data.dates.iloc[train] if cfg.cv.kind == "temporal" else None)
    searcher = make_searcher(cfg.search.kind, config_space(cfg), int(cfg.search.n_trials), int(cfg.seed))
    best_summary: dict[str, float] = {}
    best_value = float("inf")
    values: list[float] = []
    n_trials = searcher.n_trials
    for trial in tqdm(range(n_trials), desc=f"{cfg.model.name} trials", leave=False, disable=n_trials < 2):
        params = searcher.ask()
        start = time.perf_counter()
        summary = summarise(cross_validate(pipeline, params, X, y, folds, len(data.classes)))
        value = objective_value(cfg.metric, {m: summary[f"{m}_mean"] for m in METRICS})
        searcher.tell(params, value)
        values.append(value)
        if value < best_value:  # strict: ties keep the earlier trial, as the searchers do
            best_value, best_summary = value, summary
        metrics = {f"cv/{k}": v for k, v in summary.items()}
        metrics.update({"objective": value, "time/trial_s": time.perf_counter() - start})
        tracker.child_run(f"trial-{trial:03d}", params=params, metrics=metrics)
    return searcher.best_params or {}, best_summary, searcher, values


def run(cfg: DictConfig) -> RunResult:
    """Run one experiment: metrics (``cv/…``, ``test/…``, ``oracle/…``, ``time/…``) and the model.

    Parameters
    ----------
    cfg : DictConfig
        The composed config of ``conf/config.yaml``.
    """
    started = time.perf_counter()
    check_config(cfg)
    data = load_dataset(cfg)
    train, test = holdout_split(data.y, data.groups, float(cfg.test_size), int(cfg.seed), data.dates,
                                temporal=cfg.cv.kind == "temporal")
    pipeline = build_pipeline(cfg, data.feature_names)
    tags = {"wtc.model": cfg.model.name, "wtc.view": cfg.data.view, "wtc.target": cfg.target.name,
            **_hydra_context()}
    with RunTracker(cfg.tracking.uri, cfg.tracking.experiment, run_name=_run_name(cfg), tags=tags) as tracker:
        tracker.log_params(OmegaConf.to_container(cfg, resolve=True))
        tracker.log_params({
            "data.content_hash": data.content_hash, "data.tasks": len(data.y) + data.n_unlabelled,
            "data.labelled": len(data.y), "data.unlabelled": data.n_unlabelled,
            "data.n_features": len(data.feature_names), "data.classes": ",".join(data.classes),
            "data.train_rows": len(train), "data.test_rows": len(test), "git.commit": _git_commit(),
        })
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")

        search_start = time.perf_counter()
        best_params, cv_summary, searcher, values = search(cfg, data, pipeline, train, tracker)
        search_s = time.perf_counter() - search_start

        refit_start = time.perf_counter()
        final = with_params(pipeline, best_params).fit(data.X[train], data.y[train])
        refit_s = time.perf_counter() - refit_start
        n_classes = len(data.classes)
        test_proba = full_proba(final, data.X[test], n_classes)
        train_proba = full_proba(final, data.X[train], n_classes)

        metrics = {f"cv/{k}": v for k, v in cv_summary.items()}
        metrics.update({f"test/{k}": v for k, v in score_all(data.y[test], test_proba, n_classes).items()})
        metrics.update({f"train/{k}": v for k, v in score_all(data.y[train], train_proba, n_classes).items()})
        metrics["test/ks"] = ks_statistic(train_proba, test_proba)
        if data.oracle is not None:
            metrics.update({f"oracle/{k}": v for k, v in score_all(data.y[test], data.oracle[test], n_classes).items()})
        metrics["objective"] = searcher.best_value
        tracker.log_params({f"best.{k}": v for k, v in best_params.items()})
        tracker.log_metrics(metrics)

        if cfg.tracking.get("log_plots", True):
            _log_plots(tracker, cfg, data, final, test, test_proba, train_proba, metrics, searcher, values)
        if cfg.tracking.get("log_model", True):
            tracker.log_model(final, data.X[test[:5]], class_names=data.classes, feature_names=data.feature_names)
        total = time.perf_counter() - started
        timing = {"time/total_s": total, "time/search_s": search_s, "time/refit_s": refit_s,
                  "time/trial_mean_s": search_s / len(values), "time/tracking_s": tracker.overhead_s}
        tracker.log_metrics(timing)
        metrics.update(timing)
        metrics["time/tracking_s"] = tracker.overhead_s
        run_id = tracker.run_id
    return RunResult(metrics, run_id, final, best_params, data.classes, data.feature_names)


def _log_plots(tracker, cfg, data, final, test, test_proba, train_proba, metrics, searcher, values) -> None:
    y_test, classes = data.y[test], data.classes
    tracker.log_figure(plots.roc_figure(y_test, test_proba, classes), "plots/roc.png")
    tracker.log_figure(plots.confusion_matrix_figure(y_test, test_proba.argmax(axis=1), classes),
                       "plots/confusion_matrix.png")
    tracker.log_figure(plots.calibration_figure(y_test, test_proba, classes), "plots/calibration.png")
    tracker.log_figure(plots.score_distribution_figure(train_proba, test_proba, metrics["test/ks"]),
                       "plots/score_distribution.png")
    tracker.log_figure(plots.class_balance_figure(np.bincount(data.y, minlength=len(classes)), classes),
                       "plots/class_balance.png")
    if len(values) > 1:
        tracker.log_figure(plots.convergence_figure(values), "plots/convergence.png")
    result = getattr(searcher, "result", None)
    if callable(result):
        figure = plots.partial_dependence_figure(result())
        if figure is not None:
            tracker.log_figure(figure, "plots/partial_dependence.png")
    model = final.named_steps["model"]
    importances = getattr(model, "feature_importances_", None)
    if importances is None and getattr(model, "coef_", None) is not None:
        importances = np.abs(np.asarray(model.coef_)).sum(axis=0)
    if importances is not None and len(importances) == len(data.feature_names):
        tracker.log_figure(plots.feature_importance_figure(np.asarray(importances), data.feature_names),
                           "plots/feature_importance.png")
