"""The search objective: CV over folds, fold summaries, and the trial loop that drives a searcher."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from wtc import interrupt
from wtc.errors import one_line
from wtc.evaluation.metrics import objective_value, score_all
from wtc.models.pipeline import MODEL_STEP, fit_grouped, full_proba, with_params
from wtc.tuning.base import Searcher, best_trial
from wtc.tuning.trial import TrialRecord

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
    iterations: list | None = None, stop: Callable[[list[dict[str, float]]], bool] | None = None,
    groups: np.ndarray | None = None,
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
    stop : callable, optional
        Called with the scores so far after each fold but the last; True stops the CV there
        (a pruned trial).
    groups : array, optional
        The workflow of each row of ``X``: a model whose ``fit`` takes ``groups`` (the inner
        early-stopping split of :class:`wtc.models.EarlyStoppingClassifier`) gets its training
        fold's, so no workflow straddles that split either (:func:`wtc.models.pipeline.fit_grouped`).

    Returns
    -------
    list of dict
        :func:`wtc.evaluation.metrics.score_all` of each fold run, in fold order.
    """
    scores = []
    for k, (train, valid) in enumerate(folds):
        if k and stop is not None and stop(scores):
            break
        model = fit_grouped(with_params(pipeline, params), X[train], y[train],
                            None if groups is None else groups[train])
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
    groups: np.ndarray | None = None,
    on_evaluated: Callable[[TrialRecord], None] | None = None,
) -> TuningResult:
    """Run the search: each trial is scored by the CV mean of ``metric`` (minimised, see ``objective_value``).

    A back-end with a pruner hears each trial's running mean after every fold and may stop
    it (a ``PRUNED`` record). A searcher attached to a shared study (:meth:`Searcher.attach`)
    starts from the study's finished trials (records marked ``resumed``), picks up those
    other processes finish, and stops when the study holds ``n_trials`` finished trials.

    Parameters
    ----------
    pipeline : imblearn Pipeline
        Unfitted; cloned for every fit.
    searcher : Searcher
        The back-end proposing parameters (``ask``) and learning from values (``tell``).
    X, y, folds, n_classes, groups
        See :func:`cross_validate`.
    metric : str
        An objective metric of :data:`wtc.evaluation.metrics.METRICS`.
    on_trial : callable, optional
        Called with each finished :class:`TrialRecord` (e.g. to log a child run), including
        the stored ones of a shared study.
    progress : callable, optional
        Wraps the range of trial indices (e.g. a tqdm bar).
    on_evaluated : callable, optional
        Called with each trial evaluated here before the searcher is told (in a shared study the
        trial is still RUNNING, so what it records may be stored with it), before ``on_trial``.

    Returns
    -------
    TuningResult
        Its trials in order (by study number when shared).
    """
    result = TuningResult(searcher)
    shared = searcher.shared if searcher.params else None
    seen: set[int] = set()
    if shared is not None:
        shared.reap()
        collect_stored(result, shared, seen, on_trial)
    indices = range(searcher.n_trials if shared is None else max(shared.remaining(), 0))
    for index in progress(indices) if progress is not None else indices:
        try:
            interrupt.check()  # a SIGTERM whose exception a finaliser swallowed
            params = searcher.ask()
            if params is None:
                break  # the shared budget is spent
            number = searcher.trial_number(params) if shared is not None else index
            record = _evaluate(pipeline, searcher, params, X, y, folds, n_classes, metric, groups)
            record.index = number
            if shared is not None:
                record.worker = f"{shared.host}:{shared.pid}"
            if on_evaluated is not None:
                on_evaluated(record)
            searcher.tell(params, record.value, record.state, record.stored())
        except BaseException as exc:
            # Nothing may wait on a trial of ours: in a shared study it ends FAIL, with the reason.
            searcher.abandon_open("interrupted" if isinstance(exc, KeyboardInterrupt) else
                                  one_line(exc, limit=500, with_type=True))
            raise
        previous_best = result.best
        seen.add(record.index)
        result.trials.append(record)
        if result.best is not record:
            record.fold_predictions = None
        elif previous_best is not None:
            previous_best.fold_predictions = None
        if on_trial is not None:
            on_trial(record)
        if shared is not None:
            collect_stored(result, shared, seen, on_trial)
    return result


def collect_stored(result: TuningResult, shared, seen: set[int],
                   on_trial: Callable[[TrialRecord], None] | None = None) -> None:
    """Add the shared study's finished trials not in ``seen`` (resumed, or other processes') to
    ``result`` (kept in study order) and ``seen``, calling ``on_trial`` with each."""
    for record in shared.records(result.searcher.fixed, skip=seen):
        seen.add(record.index)
        result.trials.append(record)
        if on_trial is not None:
            on_trial(record)
    result.trials.sort(key=lambda t: t.index)


def _evaluate(pipeline, searcher: Searcher, params: dict, X, y, folds: Folds, n_classes: int,
              metric: str, groups: np.ndarray | None = None) -> TrialRecord:
    """CV of one trial, stopped early when the searcher's pruner says so; its record (index 0)."""
    started, start = time.time(), time.perf_counter()
    predictions: list = []
    iterations: list = []

    def pruned(scores: list[dict[str, float]]) -> bool:
        value = objective_value(metric, {metric: summarise_folds(scores)[f"{metric}_mean"]})
        return math.isfinite(value) and searcher.should_prune(params, len(scores), value)

    scores = cross_validate(pipeline, params, X, y, folds, n_classes, predictions, iterations, stop=pruned,
                            groups=groups)
    summary = summarise_folds(scores)
    seconds = time.perf_counter() - start
    if len(scores) < len(folds):
        return TrialRecord(0, params, summary, math.nan, started, seconds, predictions, iterations,
                           state="PRUNED", n_folds=len(scores))
    value = objective_value(metric, {metric: summary[f"{metric}_mean"]})
    return TrialRecord(0, params, summary, value, started, seconds, predictions, iterations)
