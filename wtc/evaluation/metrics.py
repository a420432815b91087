"""The metric registry (name -> function, direction, objective or not), score sets and the over-training check."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from imblearn.metrics import geometric_mean_score
from scipy.stats import ks_2samp
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)

__all__ = ["METRICS", "REGISTRY", "Metric", "ks_statistic", "objective_value", "score_all"]

#: Probabilities are clipped away from 0 and 1 before the log loss so one confident miss
#: gives a large but finite loss instead of inf (which would poison a GP surrogate).
_PROBA_EPS = 1e-15


def _check_proba(y_true, proba, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(int, copy=False).ravel()
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape != (y_true.shape[0], n_classes):
        raise ValueError(
            f"proba must have shape (n_samples, n_classes) = ({y_true.shape[0]}, {n_classes}), "
            f"got {proba.shape}"
        )
    if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
        raise ValueError(
            f"y_true must hold class indices in [0, {n_classes}), got {np.unique(y_true)}"
        )
    return y_true, proba


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    present = np.unique(y_true)
    if present.size < 2:
        # AUC needs both a positive and a negative; one class in a (small) test fold has neither.
        return float("nan")
    if n_classes == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    # Macro one-vs-rest over the classes present only: an absent class has no positives and
    # its AUC is undefined, while renormalising the multi-class proba over a subset would
    # change the scores. One binary AUC per present class, then their plain mean.
    aucs = [roc_auc_score(y_true == k, proba[:, k]) for k in present]
    return float(np.mean(aucs))


def _gmean(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    # Over the classes present in y_true: recall of a class with no true rows is undefined and
    # imblearn counts it as 0, which would zero the whole product.
    with warnings.catch_warnings():
        # imblearn warns about ill-defined recall even where we chose the labels on purpose.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        if n_classes > 2:
            present = np.unique(y_true).tolist()
            return float(geometric_mean_score(y_true, y_pred, labels=present, average="multiclass"))
        return float(geometric_mean_score(y_true, y_pred, average="binary"))


def _log_loss(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    clipped = np.clip(proba, _PROBA_EPS, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return float(log_loss(y_true, clipped, labels=list(range(n_classes))))


def _weighted(score):
    return lambda y_true, y_pred, n_classes: float(score(y_true, y_pred, average="weighted", zero_division=0))


@dataclass(frozen=True)
class Metric:
    """One evaluation metric: how it is computed, its direction, and whether a search may optimise it.

    ``from_proba`` metrics read the class probabilities, the others the argmax predictions;
    both get ``(y_true, values, n_classes)``.
    """

    name: str
    compute: Callable[[np.ndarray, np.ndarray, int], float]
    greater_is_better: bool
    from_proba: bool = False
    objective: bool = False
    description: str = ""

    @property
    def direction(self) -> str:
        """``"maximise"`` or ``"minimise"``."""
        return "maximise" if self.greater_is_better else "minimise"


#: Every metric a run reports, by name, in the order runs log them. A new metric is one entry.
REGISTRY: dict[str, Metric] = {m.name: m for m in (
    Metric("roc_auc", _roc_auc, True, from_proba=True, objective=True,
           description="ROC AUC (binary: column 1; multi-class: macro one-vs-rest over the classes present)"),
    Metric("log_loss", _log_loss, False, from_proba=True, objective=True,
           description="log-loss of the probabilities (clipped at 1e-15)"),
    Metric("accuracy", lambda y, p, k: float(accuracy_score(y, p)), True, description="accuracy of the argmax"),
    Metric("precision", _weighted(precision_score), True, description="precision, support-weighted"),
    Metric("recall", _weighted(recall_score), True, description="recall, support-weighted"),
    Metric("f1_weighted", _weighted(f1_score), True, objective=True, description="F1, support-weighted"),
    Metric("f1_macro", lambda y, p, k: float(f1_score(y, p, average="macro", zero_division=0)), True,
           description="F1, unweighted mean over classes"),
    Metric("gmean", _gmean, True, objective=True,
           description="geometric mean of the per-class recalls (classes present)"),
)}

#: The metrics a search may optimise (``metric=...`` in the config), by name.
METRICS: dict[str, Metric] = {name: m for name, m in REGISTRY.items() if m.objective}


def score_all(y_true, proba, n_classes: int) -> dict[str, float]:
    """Every metric of :data:`REGISTRY` for class probabilities.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices in ``[0, n_classes)``.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities; predictions are their argmax.
    n_classes : int
        Number of classes the model knows (columns of ``proba``).

    Returns
    -------
    dict of str to float
        One value per registered metric, by name (nan where undefined, e.g. the AUC of a
        single class).
    """
    y_true, proba = _check_proba(y_true, proba, n_classes)
    y_pred = proba.argmax(axis=1)
    counted = _class_averages(y_true, y_pred)
    return {name: counted[name] if name in counted else m.compute(y_true, proba if m.from_proba else y_pred, n_classes)
            for name, m in REGISTRY.items()}


def _class_averages(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """``precision``, ``recall``, ``f1_weighted`` and ``f1_macro`` from one count of the
    per-class scores (four scikit-learn calls would count them four times, ~5 ms each): the
    support-weighted and plain means scikit-learn takes of the same per-class values."""
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    return {"precision": float(np.average(precision, weights=support)),
            "recall": float(np.average(recall, weights=support)),
            "f1_weighted": float(np.average(f1, weights=support)), "f1_macro": float(np.mean(f1))}


def _score_of(proba) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must have shape (n_samples, n_classes>=2), got {proba.shape}")
    return proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)


def ks_statistic(train_proba, test_proba) -> float:
    """Kolmogorov-Smirnov distance between train and test score distributions.

    The over-training check: a model that memorised its training rows scores them far more
    confidently than unseen rows, and the two distributions drift apart.

    Parameters
    ----------
    train_proba, test_proba : array-like of float, shape (n_samples, n_classes)
        Class probabilities on the training and the test rows.

    Returns
    -------
    float
        The two-sample KS statistic in [0, 1] of the scores: column 1 for a binary model,
        the largest class probability for a multi-class one.
    """
    train, test = _score_of(train_proba), _score_of(test_proba)
    if np.shape(train_proba)[1] != np.shape(test_proba)[1]:
        raise ValueError("train_proba and test_proba must have the same number of classes")
    return float(ks_2samp(train, test).statistic)


def objective_value(metric: str, scores: dict[str, float]) -> float:
    """The value a search minimises for a metric.

    Parameters
    ----------
    metric : str
        A name in :data:`METRICS`.
    scores : dict of str to float
        Scores as returned by :func:`score_all` (or their CV means).

    Returns
    -------
    float
        ``scores[metric]``, negated when larger is better.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    value = float(scores[metric])
    return -value if METRICS[metric].greater_is_better else value


def expected_calibration_error(y_true, proba, n_bins: int = 10) -> float:
    """Expected calibration error: mean |observed - predicted| over equal-width bins, weighted by rows.

    Binary: the probability of class 1 against its frequency; multi-class: the top-class
    probability (confidence) against how often the top class is right (as the calibration
    figure draws them).

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
    proba : array-like of float, shape (n_samples, n_classes)
    n_bins : int, default 10

    Returns
    -------
    float
        In [0, 1]; 0 for perfectly calibrated probabilities.
    """
    y_true, proba = np.asarray(y_true, dtype=np.int64), np.asarray(proba, dtype=float)
    if proba.shape[1] == 2:
        score, hit = proba[:, 1], (y_true == 1).astype(float)
    else:
        score, hit = proba.max(axis=1), (proba.argmax(axis=1) == y_true).astype(float)
    bins = np.minimum((score * n_bins).astype(np.int64), n_bins - 1)
    rows = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=hit, minlength=n_bins) - np.bincount(bins, weights=score, minlength=n_bins))
    return float(gap.sum() / max(rows.sum(), 1))
