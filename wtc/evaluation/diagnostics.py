"""Which figures a run logs, from what the run produced (decided here, not in the orchestrator)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from wtc.evaluation import plots
from wtc.evaluation.importance import feature_importance_figure
from wtc.evaluation.metrics import METRICS
from wtc.evaluation.overtraining import overtraining_figure

__all__ = ["RunOutcome", "model_importances", "run_figures"]


@dataclass
class RunOutcome:
    """What a finished run hands to its diagnostics: labels, probabilities and the search."""

    classes: list[str]
    feature_names: list[str]
    y: np.ndarray               # every labelled row's class
    train: np.ndarray           # row indices of the training split
    test: np.ndarray            # row indices of the held-out split
    train_proba: np.ndarray
    test_proba: np.ndarray
    pipeline: object            # the refitted pipeline
    searcher: object            # the search back-end after the last trial
    values: list[float]         # every trial's objective value
    metrics: dict[str, float]
    metric: str                 # the search objective's metric name


def model_importances(pipeline, n_features: int) -> np.ndarray | None:
    """The model step's own importances (``feature_importances_``, else summed ``|coef_|``), if it
    has one per input column."""
    model = pipeline.named_steps["model"]
    importances = getattr(model, "feature_importances_", None)
    if importances is None and getattr(model, "coef_", None) is not None:
        importances = np.abs(np.asarray(model.coef_)).sum(axis=0)
    if importances is None or len(importances) != n_features:
        return None
    return np.asarray(importances)


def run_figures(outcome: RunOutcome) -> Iterator[tuple[str, object]]:
    """``(artifact path, figure)`` for every figure the run's record holds."""
    y_test, classes = outcome.y[outcome.test], outcome.classes
    yield "plots/roc.png", plots.roc_figure(y_test, outcome.test_proba, classes)
    yield "plots/confusion_matrix.png", plots.confusion_matrix_figure(y_test, outcome.test_proba.argmax(axis=1),
                                                                      classes)
    yield "plots/calibration.png", plots.calibration_figure(y_test, outcome.test_proba, classes)
    yield "plots/overtraining.png", overtraining_figure(outcome.y[outcome.train], outcome.train_proba, y_test,
                                                        outcome.test_proba, classes)
    yield "plots/class_balance.png", plots.class_balance_figure(np.bincount(outcome.y, minlength=len(classes)),
                                                                classes)
    if len(outcome.values) > 1:
        yield "plots/convergence.png", plots.convergence_figure(outcome.values, outcome.metric,
                                                                METRICS[outcome.metric].greater_is_better)
    # Only the GP back-end has a surrogate to show (``result`` is its OptimizeResult).
    figure = plots.partial_dependence_figure(getattr(outcome.searcher, "result", None))
    if figure is not None:
        yield "plots/partial_dependence.png", figure
    importances = model_importances(outcome.pipeline, len(outcome.feature_names))
    if importances is not None:
        yield "plots/feature_importance.png", feature_importance_figure(importances, outcome.feature_names)
