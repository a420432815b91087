"""One wtc run, orchestrated: dataset -> split -> tune -> refit -> evaluate -> record."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from wtc.data.dataset import Dataset, load_dataset
from wtc.errors import ConfigError
from wtc.evaluation.diagnostics import RunOutcome, run_figures
from wtc.evaluation.metrics import METRICS, ks_statistic, score_all
from wtc.models.pipeline import build_pipeline, full_proba, with_params
from wtc.provenance import git_commit, hydra_context, run_name
from wtc.splits import CV_KINDS, make_splits
from wtc.tracking import RunTracker
from wtc.tuning import SEARCHERS, config_space, make_searcher, tune

__all__ = ["RunResult", "check_config", "run"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one run produced: its metrics, MLflow run id, the refitted pipeline and its classes."""

    metrics: dict[str, float]
    run_id: str
    pipeline: object
    best_params: dict
    classes: list[str]
    feature_names: list[str]


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


def _data_params(data: Dataset, n_train: int, n_test: int) -> dict:
    return {
        "data.content_hash": data.content_hash, "data.tasks": len(data.y) + data.n_unlabelled,
        "data.labelled": len(data.y), "data.unlabelled": data.n_unlabelled,
        "data.n_features": len(data.feature_names), "data.classes": ",".join(data.classes),
        "data.train_rows": n_train, "data.test_rows": n_test, "git.commit": git_commit(),
    }


def _scores(data: Dataset, splits, train_proba, test_proba) -> dict[str, float]:
    """``test/…``, ``train/…``, ``test/ks`` and, with an oracle, ``oracle/…`` on the same test rows."""
    n_classes = len(data.classes)
    y_train, y_test = data.y[splits.train], data.y[splits.test]
    metrics = {f"test/{k}": v for k, v in score_all(y_test, test_proba, n_classes).items()}
    metrics.update({f"train/{k}": v for k, v in score_all(y_train, train_proba, n_classes).items()})
    metrics["test/ks"] = ks_statistic(train_proba, test_proba)
    if data.oracle is not None:
        oracle = score_all(y_test, data.oracle[splits.test], n_classes)
        metrics.update({f"oracle/{k}": v for k, v in oracle.items()})
    return metrics


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
    splits = make_splits(cfg.cv.kind, int(cfg.cv.n_splits), float(cfg.test_size), int(cfg.seed),
                         data.y, data.groups, data.dates)
    train, test = splits.train, splits.test
    pipeline = build_pipeline(cfg, data.feature_names)
    searcher = make_searcher(cfg.search.kind, config_space(cfg), int(cfg.search.n_trials), int(cfg.seed))
    tags = {"wtc.model": cfg.model.name, "wtc.view": cfg.data.view, "wtc.target": cfg.target.name,
            **hydra_context()}
    mlruns = OmegaConf.select(cfg, "paths.mlruns", default=None)
    with RunTracker(cfg.tracking.uri, cfg.tracking.experiment, run_name=run_name(cfg), tags=tags,
                    mlruns=mlruns) as tracker:
        tracker.log_params(OmegaConf.to_container(cfg, resolve=True))
        tracker.log_params(_data_params(data, len(train), len(test)))
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")

        search_start = time.perf_counter()
        n_trials = searcher.n_trials
        tuning = tune(
            pipeline, searcher, data.X[train], data.y[train], splits.folds, len(data.classes), cfg.metric,
            on_trial=lambda t: tracker.child_run(f"trial-{t.index:03d}", params=t.params, metrics=t.metrics),
            progress=lambda r: tqdm(r, desc=f"{cfg.model.name} trials", leave=False, disable=n_trials < 2),
        )
        search_s = time.perf_counter() - search_start

        refit_start = time.perf_counter()
        final = with_params(pipeline, tuning.best_params).fit(data.X[train], data.y[train])
        refit_s = time.perf_counter() - refit_start
        test_proba = full_proba(final, data.X[test], len(data.classes))
        train_proba = full_proba(final, data.X[train], len(data.classes))

        metrics = {f"cv/{k}": v for k, v in tuning.best_summary.items()}
        metrics.update(_scores(data, splits, train_proba, test_proba))
        metrics["objective"] = tuning.best_value
        tracker.log_params({f"best.{k}": v for k, v in tuning.best_params.items()})
        tracker.log_metrics(metrics)

        if cfg.tracking.get("log_plots", True):
            outcome = RunOutcome(data.classes, data.feature_names, data.y, train, test, train_proba, test_proba,
                                 final, searcher, tuning.values, metrics, cfg.metric)
            for artifact, figure in run_figures(outcome):
                tracker.log_figure(figure, artifact)
        if cfg.tracking.get("log_model", True):
            tracker.log_model(final, data.X[test[:5]], class_names=data.classes, feature_names=data.feature_names)
        timing = {"time/total_s": time.perf_counter() - started, "time/search_s": search_s, "time/refit_s": refit_s,
                  "time/trial_mean_s": search_s / len(tuning.trials), "time/tracking_s": tracker.overhead_s}
        tracker.log_metrics(timing)
        metrics.update(timing)
        metrics["time/tracking_s"] = tracker.overhead_s
        run_id = tracker.run_id
    return RunResult(metrics, run_id, final, tuning.best_params, data.classes, data.feature_names)
