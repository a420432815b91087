"""The search objective: CV over folds, fold summaries, and the trial loop that drives a searcher."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wtc.evaluation.metrics import objective_value, score_all
from wtc.models.pipeline import MODEL_STEP, full_proba, with_params
from wtc.tuning.base import Searcher, best_trial

__all__ = ["TrialRecord", "TuningResult", "cross_validate", "picked_iterations", "summarise_folds", "tune"]

Folds = Sequence[tuple[np.ndarray, np.ndarray]]


def picked_iterations(pipeline) -> int | None:
    """Rounds or epochs a fitted pipeline's early-stopping model kept, or None when it has none.

    ``best_iteration_`` of :class:`wtc.models.EarlyStoppingClassifier` (boosting rounds) or
    ``best_epoch_`` of a :class:`wtc.models.DNNClassifier` with a validation slice (epochs).
    Plain boosters are not asked: LightGBM's ``best_iteration_`` is 0 without early stopping.
    """
    from wtc.models import DNNClassifier, EarlyStoppingClassifier

    model = pipeline.named_steps[MODEL_STEP] if hasattr(pipeline, "named_steps") else pipeline
    if isinstance(model, EarlyStoppingClassifier):
        return int(model.best_iteration_)
    if isinstance(model, DNNClassifier) and model.validation_fraction > 0:
        return int(model.best_epoch_)
    return None


def cross_validate(
    pipeline, params: dict, X, y, folds: Folds, n_classes: int, predictions: list | None = None,
    iterations: list | None = None,
) -> list[dict[str, float]]:
    """Fit a fresh clone with ``params`` on each training fold; score every metric on its validation fold.

    Parameters
    ----------
    pipeline : imblearn Pipeline
        The unfitted scaler -> resampler -> model pipeline (cloned per fold).
    params : dict
        Parameters of the model step (``with_params``).
    X, y : sparse matrix, array
        The rows the folds index (the training split).
    folds : sequence of (train, validation) index arrays
    n_classes : int
        Classes of the target, so that a fold missing a class still scores all columns.
    predictions : list, optional
        When given, each fold's ``(y_valid, proba)`` is appended to it (for CV ROC curves).
    iterations : list, optional
        When given, each fold's early-stopped rounds/epochs (:func:`picked_iterations`) are
        appended to it; folds of a model without early stopping append nothing.

    Returns
    -------
    list of dict
        :func:`wtc.evaluation.metrics.score_all` of each fold, in fold order.
    """
    scores = []
    for train, valid in folds:
        model = with_params(pipeline, params).fit(X[train], y[train])
        proba = full_proba(model, X[valid], n_classes)
        scores.append(score_all(y[valid], proba, n_classes))
        if predictions is not None:
            predictions.append((y[valid], proba))
        if iterations is not None and (picked := picked_iterations(model)) is not None:
            iterations.append(picked)
    return scores


def summarise_folds(fold_scores: list[dict[str, float]]) -> dict[str, float]:
    """``<metric>_mean`` and ``<metric>_std`` over folds (non-finite fold values are left out)."""
    out = {}
    for name in fold_scores[0]:
        values = np.array([s[name] for s in fold_scores], dtype=float)
        finite = values[np.isfinite(values)]
        out[f"{name}_mean"] = float(finite.mean()) if finite.size else float("nan")
        out[f"{name}_std"] = float(finite.std()) if finite.size else float("nan")
    return out


@dataclass
class TrialRecord:
    """One evaluated trial: its parameters, fold summary, objective value and when it ran.

    ``fold_predictions`` holds each fold's ``(y_valid, proba)`` while the trial is the best
    so far (dropped from the others, to keep memory flat over long searches).
    ``fold_iterations`` holds the rounds/epochs each fold's early stopping picked (empty for
    a model without early stopping).
    """

    index: int
    params: dict
    summary: dict[str, float]
    value: float
    started: float                      # seconds since the epoch
    seconds: float
    fold_predictions: list | None = None
    fold_iterations: list[int] = field(default_factory=list)

    @property
    def ended(self) -> float:
        """When the trial finished (seconds since the epoch)."""
        return self.started + self.seconds

    @property
    def metrics(self) -> dict[str, float]:
        """What a trial logs: ``cv/<metric>_mean|std``, ``objective``, ``time/trial_s`` and, for an
        early-stopping model, ``cv/best_iteration_mean`` (rounds or epochs, mean over folds)."""
        out = {f"cv/{k}": v for k, v in self.summary.items()}
        if self.fold_iterations:
            out["cv/best_iteration_mean"] = float(np.mean(self.fold_iterations))
        out.update({"objective": self.value, "time/trial_s": self.seconds})
        return out


@dataclass
class TuningResult:
    """What a search found: the best trial (ties keep the earlier one) and every trial in order."""

    searcher: Searcher
    trials: list[TrialRecord] = field(default_factory=list)

    @property
    def best(self) -> TrialRecord | None:
        """The best trial, by :func:`wtc.tuning.base.best_trial`; None when no value was finite."""
        index = best_trial(self.values)
        return None if index is None else self.trials[index]

    @property
    def best_params(self) -> dict:
        """Parameters of the best trial ({} when none finished: the estimator's own defaults)."""
        best = self.best
        return dict(best.params) if best is not None else {}

    @property
    def best_summary(self) -> dict[str, float]:
        """CV summary of the best trial ({} when none finished)."""
        best = self.best
        return dict(best.summary) if best is not None else {}

    @property
    def best_value(self) -> float:
        """The objective of the best trial (nan when none finished)."""
        best = self.best
        return best.value if best is not None else float("nan")

    @property
    def best_iterations(self) -> int | None:
        """Rounds/epochs the best trial's folds agreed on (their median, rounded), for the
        refit's ``refit_iterations``; None without early stopping or a finished trial."""
        best = self.best
        if best is None or not best.fold_iterations:
            return None
        return max(1, int(round(float(np.median(best.fold_iterations)))))

    @property
    def values(self) -> list[float]:
        """Every trial's objective value, in trial order."""
        return [t.value for t in self.trials]


def tune(
    pipeline,
    searcher: Searcher,
    X,
    y,
    folds: Folds,
    n_classes: int,
    metric: str,
    on_trial: Callable[[TrialRecord], None] | None = None,
    progress: Callable | None = None,
) -> TuningResult:
    """Run the search: each trial is scored by the CV mean of ``metric`` (minimised, see ``objective_value``).

    Parameters
    ----------
    pipeline : imblearn Pipeline
        Unfitted; cloned for every fit.
    searcher : Searcher
        The back-end proposing parameters (``ask``) and learning from values (``tell``).
    X, y, folds, n_classes
        See :func:`cross_validate`.
    metric : str
        An objective metric of :data:`wtc.evaluation.metrics.METRICS`.
    on_trial : callable, optional
        Called with each finished :class:`TrialRecord` (e.g. to log a child run).
    progress : callable, optional
        Wraps the range of trial indices (e.g. a tqdm bar).

    Returns
    -------
    TuningResult
    """
    result = TuningResult(searcher)
    indices = range(searcher.n_trials)
    for index in progress(indices) if progress is not None else indices:
        params = searcher.ask()
        started, start = time.time(), time.perf_counter()
        predictions: list = []
        iterations: list = []
        summary = summarise_folds(cross_validate(pipeline, params, X, y, folds, n_classes, predictions, iterations))
        value = objective_value(metric, {metric: summary[f"{metric}_mean"]})
        searcher.tell(params, value)
        previous_best = result.best
        record = TrialRecord(index, params, summary, value, started, time.perf_counter() - start, predictions,
                             iterations)
        result.trials.append(record)
        if result.best is not record:
            record.fold_predictions = None
        elif previous_best is not None:
            previous_best.fold_predictions = None
        if on_trial is not None:
            on_trial(record)
    return result
