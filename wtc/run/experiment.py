"""One wtc run, orchestrated: dataset -> split -> tune -> refit -> evaluate -> record."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from wtc.config import build_option, project_home
from wtc.data.dataset import Dataset, config_splits, load_dataset
from wtc.evaluation.diagnostics import (
    FIGURE_INPUTS,
    FigureInputs,
    RunOutcome,
    automation_metrics,
    figures_on_demand,
    pr_points,
    roc_points,
    run_figures,
)
from wtc.evaluation.metrics import REGISTRY, expected_calibration_error, ks_statistic, score_all
from wtc.evaluation.overtraining import overtraining_ks
from wtc.evaluation.report import summary_markdown, terminal_line
from wtc.evaluation.tables import per_class_table
from wtc.models.pipeline import build_pipeline, full_proba
from wtc.process import git_commit
from wtc.run.config_checks import OPTION_NAMES, check_config, check_model_params, checked_splits
from wtc.run.provenance import hydra_context, in_multirun, run_choices, run_name, sweep_context
from wtc.run.refit import OOF_ARTIFACT, fit_final_model, oof_rows
from wtc.sqlite import optuna_storage_url
from wtc.store import RunTracker
from wtc.store.logged_models import TAG_LOGGED_MODEL, ModelInputs, save_model_inputs
from wtc.store.query import TAG_FIGURES
from wtc.tuning import config_space, make_searcher, search, study_name, study_spec
from wtc.tuning.bounds import params_at_bounds
from wtc.tuning.dashboard import STORAGE_TAG, STUDY_TAG, dashboard_command

__all__ = ["RunResult", "check_config", "run"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one run produced: its metrics, MLflow run id, the logged model (the refitted pipeline,
    or an ensemble and/or calibrated model around it) and its classes."""

    metrics: dict[str, float]
    run_id: str
    pipeline: object
    best_params: dict
    classes: list[str]
    feature_names: list[str]


def _model_params(pipeline) -> dict[str, str]:
    """``model.<param>``: the parameters the refitted model really has (None and nested estimators left out)."""
    params = pipeline.named_steps["model"].get_params(deep=False)
    return {f"model.{k}": v for k, v in params.items()
            if v is not None and not hasattr(v, "get_params") and k not in ("feature_names", "verbose")}


def _data_params(data: Dataset, n_train: int, n_test: int) -> dict:
    return {
        "data.content_hash": data.content_hash, "data.tasks": len(data.y) + data.n_unlabelled,
        "data.labelled": len(data.y), "data.unlabelled": data.n_unlabelled,
        "data.n_features": len(data.feature_names), "data.classes": ",".join(data.classes),
        "data.train_rows": n_train, "data.test_rows": n_test, "git.commit": git_commit(),
    }


def _scores(data: Dataset, splits, train_proba, test_proba) -> dict[str, float]:
    """``test/…``, ``train/…``, over-training KS, coverage at 90/95/99% precision, ``prior/…`` (the
    class-prior baseline: the training class frequencies for every test row) and, with an
    oracle, ``oracle/…`` on the same test rows (``oracle_blind/…`` for the name-blind oracle and
    ``oracle_workflow/…`` for the workflow oracle, ``oracle_workflow_blind/…`` for the name-blind
    workflow oracle when the history has their sidecars)."""
    n_classes = len(data.classes)
    y_train, y_test = data.y[splits.train], data.y[splits.test]
    metrics = {f"test/{k}": v for k, v in score_all(y_test, test_proba, n_classes).items()}
    metrics.update({f"train/{k}": v for k, v in score_all(y_train, train_proba, n_classes).items()})
    metrics["test/ks"] = ks_statistic(train_proba, test_proba)
    ks = overtraining_ks(y_train, train_proba, y_test, test_proba, data.classes)
    metrics.update({f"overtraining/{k}": v for k, v in ks.items()})
    metrics.update(automation_metrics(y_test, test_proba, "test"))
    prior = np.bincount(np.asarray(y_train, dtype=int), minlength=n_classes) / max(len(y_train), 1)
    metrics.update({f"prior/{k}": v for k, v in score_all(y_test, np.tile(prior, (len(y_test), 1)), n_classes).items()})
    for prefix, proba in (("oracle", data.oracle), ("oracle_blind", data.oracle_blind),
                          ("oracle_workflow", data.oracle_workflow),
                          ("oracle_workflow_blind", data.oracle_workflow_blind)):
        if proba is not None:
            metrics.update({f"{prefix}/{k}": v for k, v in score_all(y_test, proba[splits.test], n_classes).items()})
            metrics.update(automation_metrics(y_test, proba[splits.test], prefix))
    return metrics


def _warn_at_bounds(tracker, space: dict, best_params: dict) -> None:
    """A warning per best parameter at a bound of its range, and the run tag ``wtc.at_bound``."""
    found = params_at_bounds(space, best_params)
    for item in found:
        log.warning("best %s: the optimum may lie outside the searched range; widen it", item)
    if found:
        tracker.set_tags({"wtc.at_bound": ",".join(item.name for item in found)})


def _calibration_scores(y_test, before, after, n_classes: int) -> dict[str, float]:
    """``calibration/test_log_loss_before`` and the test ECE before and after calibration."""
    return {"calibration/test_log_loss_before": score_all(y_test, before, n_classes)["log_loss"],
            "calibration/test_ece_before": expected_calibration_error(y_test, before),
            "calibration/test_ece_after": expected_calibration_error(y_test, after)}


def _record_times(started: float, trained: float, trained_cpu: float, tracking_before: float,
                  tracking_s: float) -> dict[str, float]:
    """``time/total_s`` (the whole job so far), ``time/post_training_s`` (wall time since the final
    model was fitted), its CPU time ``time/post_training_cpu_s``, ``time/tracking_s`` (every MLflow
    call) and ``time/record_s``: what the record costs, i.e. the post-training time plus the MLflow
    calls before it (run start, params, dataset, one child run per trial)."""
    now = time.perf_counter()
    return {"time/total_s": now - started, "time/post_training_s": now - trained,
            "time/post_training_cpu_s": time.process_time() - trained_cpu, "time/tracking_s": tracking_s,
            "time/record_s": now - trained + tracking_before}


def _log_oof(tracker, oof, folds, y_train, groups_train) -> None:
    """Log :data:`~wtc.run.refit.OOF_ARTIFACT`: the out-of-fold rows ``wtc promote`` certifies the AUTO gate on."""
    if oof is None:
        return
    rows = oof_rows(folds)
    if rows.size != len(oof[0]) or not np.array_equal(np.asarray(y_train)[rows], oof[0]):
        log.warning("the out-of-fold predictions do not line up with the folds: %s not logged", OOF_ARTIFACT)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(OOF_ARTIFACT).name
        np.savez_compressed(path, y=np.asarray(oof[0], dtype=int), proba=np.asarray(oof[1], dtype=float),
                            groups=np.asarray(groups_train, dtype=str)[rows], rows=rows)
        tracker.log_artifact(path, str(Path(OOF_ARTIFACT).parent))


class _TrialLines:
    """One line per finished trial: k/N, its CV objective and the best so far (none with ``quiet=true``).
    Whole lines, so the jobs of a parallel sweep never overwrite each other's."""

    def __init__(self, name: str, metric: str, n_trials: int, quiet: bool):
        self.name, self.metric, self.n_trials, self.quiet = name, metric, n_trials, quiet
        self.greater = REGISTRY[metric].greater_is_better if metric in REGISTRY else True
        self.seen, self.best = 0, None

    def __call__(self, trial) -> None:
        self.seen += 1
        value = trial.summary.get(f"{self.metric}_mean", float("nan"))
        if trial.state == "COMPLETE" and np.isfinite(value):
            if self.best is None or (value > self.best if self.greater else value < self.best):
                self.best = value
        if self.quiet:
            return
        said = f"cv {self.metric} {value:.4g}" if trial.state == "COMPLETE" else f"{trial.state.lower()}"
        best = f" (best {self.best:.4g})" if self.best is not None else ""
        log.info(f"{self.name} trial {self.seen}/{self.n_trials}: {said}{best}")


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
    splits = checked_splits(cfg, data, config_splits)
    train, test = splits.train, splits.test
    pipeline = build_pipeline(cfg, data.feature_names, data.classes)
    check_model_params(pipeline, cfg)  # a value the estimator refuses fails here, not in an opened run
    space = config_space(cfg)
    searcher = make_searcher(cfg.search, space, int(cfg.seed))
    # The ensemble and calibration options' objects, built before any work is recorded.
    ensemble = build_option(OmegaConf.select(cfg, "ensemble", default=None))
    calibrator = build_option(OmegaConf.select(cfg, "calibration", default=None), OPTION_NAMES["calibration"])
    name = run_name(cfg, *sweep_context())  # in a sweep, only what varies across it
    tags = {"wtc.model": cfg.model.name, "wtc.view": cfg.data.view, "wtc.target": cfg.target.name,
            "wtc.study": study_name(cfg), **hydra_context()}
    diagnostics = OmegaConf.to_container(cfg.get("diagnostics") or OmegaConf.create({"level": "full"}), resolve=True)
    log_plots = cfg.tracking.get("log_plots", True) and diagnostics.get("level") != "none"
    mlruns = OmegaConf.select(cfg, "paths.mlruns", default=None)
    with RunTracker(cfg.tracking.uri, cfg.tracking.experiment, run_name=name, tags=tags, mlruns=mlruns,
                    objective=str(cfg.metric)) as tracker:
        tracker.close_dead_runs(**{"wtc.study": tags["wtc.study"]})  # the same search, killed before
        choices = run_choices(cfg)
        tracker.log_params({**choices, **_data_params(data, len(train), len(test))})
        tracker.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        tracker.log_dict(space, "search_space.yaml")
        tracker.log_dataset(data.path.name, data.content_hash, str(data.path.resolve()),
                            profile={"tasks": len(data.y) + data.n_unlabelled, "labelled": len(data.y),
                                     "features": len(data.feature_names)})

        search_start = time.perf_counter()
        lines = _TrialLines(name, cfg.metric, searcher.n_trials, bool(cfg.get("quiet", False)))
        # A search is stored (optuna-dashboard reads it): in search.storage, else as a study of this run's own
        # beside the MLflow store; a fixed trial is not a search.
        study = study_spec(cfg, optuna_storage_url(tracker.uri, mlruns or project_home() / "mlruns"),
                           tracker.run_id) if searcher.params else None
        if study is not None and not study.temporary:
            tracker.set_tags({STORAGE_TAG: study.url, STUDY_TAG: study.name})

        logged: set[int] = set()

        def log_trial(t) -> None:  # its child run; a stored trial names it (mlflow_run_id)
            child = tracker.child_run(f"trial-{t.index:03d}", params=t.params, metrics=t.metrics, tags=t.tags,
                                      start_time=t.started, end_time=t.ended)
            logged.add(t.index)
            if searcher.shared is not None:
                searcher.shared.link_run(t.index, child)

        def on_trial(t) -> None:  # trials evaluated here were logged before the study was told, the others now
            if t.index not in logged:
                log_trial(t)
            lines(t)

        tuning = search(
            pipeline, searcher, data.X[train], data.y[train], splits.folds, len(data.classes), cfg.metric,
            study=study, n_workers=int(cfg.search.get("n_workers") or 1), on_trial=on_trial,
            groups=data.groups[train], on_evaluated=log_trial,
        )
        search_s = time.perf_counter() - search_start

        _warn_at_bounds(tracker, space, tuning.best_params)

        refit_start = time.perf_counter()
        # An early-stopped model refits with the rounds its folds agreed on; an ensemble averages
        # the folds' models or the best trials' refits; a calibrator learns from out-of-fold rows.
        fitted = fit_final_model(pipeline, tuning, data.X[train], data.y[train], splits.folds, len(data.classes),
                                 ensemble=ensemble, calibrator=calibrator)
        final, unfitted = fitted.model, fitted.unfitted
        trained = time.perf_counter()
        refit_s = trained - refit_start
        # What follows the training is what the record costs: predictions for the metrics,
        # metrics, tables, figures, the model, the summary and the end of the run.
        trained_cpu, tracking_before = time.process_time(), tracker.overhead_s
        test_proba = full_proba(final, data.X[test], len(data.classes))
        train_proba = full_proba(final, data.X[train], len(data.classes))
        uncalibrated_test = None
        if fitted.uncalibrated is not final:
            uncalibrated_test = full_proba(fitted.uncalibrated, data.X[test], len(data.classes))

        metrics = {f"cv/{k}": v for k, v in tuning.best_summary.items()}
        metrics.update(_scores(data, splits, train_proba, test_proba))
        metrics["objective"] = tuning.best_value
        if tuning.best_iterations is not None:
            metrics["refit/iterations"] = float(tuning.best_iterations)
        metrics.update(fitted.metrics)
        if uncalibrated_test is not None:
            metrics.update(_calibration_scores(data.y[test], uncalibrated_test, test_proba, len(data.classes)))
        tracker.log_params(_model_params(fitted.base))  # before the model, which copies the run's params
        model_inputs = None
        if cfg.tracking.get("log_model", True):
            model_inputs = ModelInputs(final, data.X[test[:5]], list(data.classes), list(data.feature_names), name,
                                       {"view": cfg.data.view, "extras": list(cfg.data.get("extras") or []),
                                        "target": cfg.target.name})
        model_on_demand = model_inputs is not None and diagnostics.get("model", "now") == "on_demand"
        try:
            if model_on_demand:
                # A sweep keeps what the model is made from; promotion or `wtc runs model` logs it.
                save_model_inputs(tracker, model_inputs)
            elif model_inputs is not None:
                # The model first, then the metrics in one batch linked to it: logged after the
                # metrics, MLflow would link them itself with one history query per metric.
                tracker.log_model(model_inputs.pipeline, model_inputs.X_example, class_names=model_inputs.class_names,
                                  feature_names=model_inputs.feature_names, name=name, **model_inputs.raw_tasks)
        except BaseException:
            tracker.log_metrics(metrics)  # a run whose model failed to log keeps its scores
            raise
        tracker.log_metrics(metrics, model_id=tracker.model_id)
        _log_oof(tracker, fitted.oof, splits.folds, data.y[train], data.groups[train])
        tracker.log_table(per_class_table(data.y[test], test_proba, data.classes), "tables/per_class_test.json")
        tracker.log_dict(roc_points(data.y[test], test_proba), "curves/roc.json")
        tracker.log_dict(pr_points(data.y[test], test_proba), "curves/pr.json")

        figures, diagnostics_s = [], 0.0
        if log_plots:
            best = tuning.best
            outcome = RunOutcome(
                data.classes, data.feature_names, data.X, data.y, train, test, train_proba, test_proba, fitted.base,
                unfitted, searcher, tuning.values, cfg.metric, folds=splits.folds,
                fold_predictions=best.fold_predictions if best is not None else None,
                oracle_test=data.oracle[test] if data.oracle is not None else None,
                options=diagnostics, seed=int(cfg.seed), model=final, test_proba_uncalibrated=uncalibrated_test)
            if figures_on_demand(diagnostics):
                # A sweep logs what the everyday figures are drawn from; `wtc runs figures` draws them.
                start = time.perf_counter()
                with tempfile.TemporaryDirectory() as tmp:
                    inputs = Path(tmp) / Path(FIGURE_INPUTS).name
                    FigureInputs.from_outcome(outcome).save(inputs)
                    diagnostics_s += time.perf_counter() - start
                    tracker.log_artifact(inputs, str(Path(FIGURE_INPUTS).parent))
            # Time only the computing of each figure: saving it is tracking time (tracker.overhead_s).
            pending = run_figures(outcome)
            while True:
                start = time.perf_counter()
                item = next(pending, None)
                diagnostics_s += time.perf_counter() - start
                if item is None:
                    break
                tracker.log_figure(item[1], item[0])
                figures.append(item[0])
            for artifact, table in outcome.tables.items():
                tracker.log_text(table.to_csv(index=False), artifact)
        on_demand = tracker.run_id if log_plots and figures_on_demand(diagnostics) else None
        summary = summary_markdown(name, choices, metrics, cfg.metric, figures, len(train), len(test), on_demand,
                                   model_on_demand=tracker.run_id if model_on_demand else None, run_id=tracker.run_id)
        tracker.log_text(summary, "summary.md")
        end_tags = {"mlflow.note.content": summary}  # the run page's Description, rendered
        if on_demand:
            end_tags[TAG_FIGURES] = "on_demand"
        if model_on_demand:
            end_tags[TAG_LOGGED_MODEL] = "on_demand"
        timing = {"time/search_s": search_s, "time/refit_s": refit_s, "time/trial_mean_s": search_s / len(tuning.trials),
                  "time/diagnostics_s": diagnostics_s, **_record_times(started, trained, trained_cpu, tracking_before,
                                                                       tracker.overhead_s)}
        tracker.log_batch(metrics=timing, tags=end_tags)
        run_id = tracker.run_id
    # The returned times include the last batch and the end of the run, which the logged ones cannot.
    metrics.update(timing)
    metrics.update(_record_times(started, trained, trained_cpu, tracking_before, tracker.overhead_s))
    log.info(terminal_line(name, metrics, run_id, tracker.uri, cfg.metric))
    if study is not None and not study.temporary and not in_multirun():  # a sweep says it once, at its end
        log.info(f"{name} search: Optuna study {study.name}; to open it: {dashboard_command(study.url)}")
    return RunResult(metrics, run_id, final, tuning.best_params, data.classes, data.feature_names)
