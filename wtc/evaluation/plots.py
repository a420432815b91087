"""Figures of a run (ROC, CV ROC, confusion, calibration, search, class balance); returned, never saved.

The over-training plot lives in :mod:`~wtc.evaluation.overtraining`, learning and training curves
in :mod:`~wtc.evaluation.curves`, importances in :mod:`~wtc.evaluation.importance`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import matplotlib

# Runs are headless (sweeps, CI, batch nodes): never let pyplot look for a display.
matplotlib.use("Agg")
# Choice values such as fold counts ("2", "5") are categories on purpose: not worth a log line each.
logging.getLogger("matplotlib.category").setLevel(logging.WARNING)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import auc, confusion_matrix, roc_curve  # noqa: E402

# Moved to importance.py with the grouped importances; kept importable from here for callers.
from wtc.evaluation.importance import feature_importance_figure  # noqa: E402

__all__ = [
    "calibration_figure",
    "class_balance_figure",
    "confusion_matrix_figure",
    "convergence_figure",
    "cv_roc_figure",
    "feature_importance_figure",
    "partial_dependence_figure",
    "roc_figure",
]

_FPR_GRID = np.linspace(0.0, 1.0, 201)


def _figure(width: float = 6.0, height: float = 5.0) -> tuple[Figure, plt.Axes]:
    # A bare Figure (not plt.figure) is not registered with pyplot, so a sweep that makes
    # thousands of figures and never closes them does not leak them into pyplot's registry.
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _as_labels(y) -> np.ndarray:
    return np.asarray(y).astype(int, copy=False).ravel()


def _check(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    y_true, proba = _as_labels(y_true), np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] != y_true.size or proba.shape[1] < 2:
        raise ValueError(f"proba must have shape ({y_true.size}, n_classes>=2), got {proba.shape}")
    return y_true, proba


def _interp_tpr(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    tpr = np.interp(_FPR_GRID, fpr, tpr)
    tpr[0] = 0.0  # the curve starts at the origin, whatever the first threshold gives
    return tpr


def _micro_roc(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One ROC over every (row, class) pair: each class column scored against "is this the class"."""
    onehot = y_true[:, None] == np.arange(proba.shape[1])[None, :]
    fpr, tpr, _ = roc_curve(onehot.ravel(), proba.ravel())
    return fpr, tpr


def _roc_axes_done(ax, title: str) -> None:
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=title)
    ax.set(xlim=(0, 1), ylim=(0, 1.01))


def roc_figure(y_true, proba, classes: Sequence[str]) -> Figure:
    """ROC curves with their AUC and number of true rows in the legend.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities.
    classes : sequence of str
        Name of each class (column of ``proba``).

    Returns
    -------
    matplotlib.figure.Figure
        Binary: one curve, P(``classes[1]``). Multi-class: one-vs-rest per class present
        (a class with no true rows, or with only true rows, has no curve), then the
        micro-average (every row-class pair pooled) and the macro-average (per-class curves
        averaged on a common false-positive grid; its AUC is the mean of the per-class AUCs,
        as the ``roc_auc`` metric).
    """
    y_true, proba = _check(y_true, proba)
    n = y_true.size
    if proba.shape[1] == 2:
        fig, ax = _figure()
        positives = y_true == 1
        if positives.any() and not positives.all():
            fpr, tpr, _ = roc_curve(positives, proba[:, 1])
            ax.plot(fpr, tpr, lw=2, label=f"{classes[1]} vs {classes[0]} (AUC {auc(fpr, tpr):.3f})")
        _roc_axes_done(ax, f"ROC of P({classes[1]}) (n={n}: {positives.sum()} {classes[1]})")
        ax.legend(loc="lower right", fontsize="small")
        return fig
    fig, ax = _figure(9.0, 6.0)
    aucs, tprs = [], []
    for k in range(proba.shape[1]):
        positives = y_true == k
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, proba[:, k])
        aucs.append(auc(fpr, tpr))
        tprs.append(_interp_tpr(fpr, tpr))
        ax.plot(fpr, tpr, lw=1, alpha=0.7, label=f"{classes[k]} (n={positives.sum()}, AUC {aucs[-1]:.3f})")
    if aucs:
        fpr, tpr = _micro_roc(y_true, proba)
        ax.plot(fpr, tpr, lw=2.5, color="black", ls=":", label=f"micro-average (AUC {auc(fpr, tpr):.3f})")
        ax.plot(_FPR_GRID, np.mean(tprs, axis=0), lw=2.5, color="black",
                label=f"macro-average (AUC {np.mean(aucs):.3f})")
    _roc_axes_done(ax, f"ROC one vs rest (n={n}, {len(aucs)} classes present)")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    return fig


def cv_roc_figure(folds: Sequence[tuple[object, object]], classes: Sequence[str]) -> Figure:
    """ROC of each cross-validation fold, their mean and a ±1 standard deviation band.

    Parameters
    ----------
    folds : sequence of (y_true, proba)
        True class indices and predicted class probabilities of each fold's held-out rows.
    classes : sequence of str
        Name of each class (column of ``proba``).

    Returns
    -------
    matplotlib.figure.Figure
        Binary: the ROC of P(``classes[1]``) per fold. Multi-class: the micro-average ROC
        per fold. Fold curves are interpolated on a common false-positive grid to average
        them; the AUC shown is the mean ± standard deviation of the fold AUCs. A fold with
        a single class present has no ROC and is left out (the legend says how many count).
    """
    fig, ax = _figure(7.0, 5.5)
    aucs, tprs, n_rows = [], [], 0
    for i, (y_true, proba) in enumerate(folds):
        y_true, proba = _check(y_true, proba)
        if np.unique(y_true).size < 2:
            continue
        if proba.shape[1] == 2:
            fpr, tpr, _ = roc_curve(y_true == 1, proba[:, 1])
        else:
            fpr, tpr = _micro_roc(y_true, proba)
        aucs.append(auc(fpr, tpr))
        tprs.append(_interp_tpr(fpr, tpr))
        n_rows += y_true.size
        ax.plot(fpr, tpr, lw=1, alpha=0.35, color="C0", label="single fold" if len(aucs) == 1 else None)
    kind = f"P({classes[1]})" if len(classes) == 2 else "micro-average"
    title = f"Cross-validated ROC, {kind}"
    if aucs:
        mean, std = np.mean(tprs, axis=0), np.std(tprs, axis=0)
        counted = f"k = {len(aucs)} folds" + (f" of {len(folds)}" if len(aucs) < len(folds) else "")
        label = f"mean AUC = {np.mean(aucs):.3f} ± {np.std(aucs):.3f} ({counted}, n={n_rows})"
        ax.plot(_FPR_GRID, mean, lw=2.5, color="C3", label=label)
        ax.fill_between(_FPR_GRID, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1),
                        color="C3", alpha=0.2, label="±1 std. dev.")
        title += f": AUC {np.mean(aucs):.3f} ± {np.std(aucs):.3f}"
    _roc_axes_done(ax, title)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def confusion_matrix_figure(y_true, y_pred, classes: Sequence[str]) -> Figure:
    """Confusion matrix as counts and row-normalised, side by side; rows are true classes.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_samples,)
        True and predicted class indices.
    classes : sequence of str
        Name of each class index.

    Returns
    -------
    matplotlib.figure.Figure
        Left: counts. Right: each row as fractions of its true class (recall on the
        diagonal); a class with no true rows is a zero row.
    """
    n = len(classes)
    y_true = _as_labels(y_true)
    counts = confusion_matrix(y_true, _as_labels(y_pred), labels=list(range(n)))
    totals = counts.sum(axis=1, keepdims=True)
    # Divide only rows with support: an absent class would otherwise be 0/0.
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    # Grow with the number of classes so 20 labels and their cell values stay legible.
    side = max(4.5, 0.45 * n + 2.5)
    fig = Figure(figsize=(2 * side + 2.0, side + 0.5), layout="constrained")
    # Empty cells stay blank: a 20x20 grid of "0" and "0.00" hides the few cells that matter.
    texts = (np.where(counts > 0, counts.astype(str), ""),
             np.where(counts > 0, np.char.mod("%.2f", share), ""))
    for i, (matrix, text, title) in enumerate(((counts, texts[0], "Counts"),
                                               (share, texts[1], "Row-normalised (recall on diagonal)"))):
        ax = fig.add_subplot(1, 2, i + 1)
        sns.heatmap(matrix, ax=ax, annot=text if n <= 25 else False, fmt="",
                    annot_kws={"fontsize": 9 if n <= 8 else 8 if n <= 16 else 6}, cmap="Blues", vmin=0,
                    vmax=1 if i else None, square=True, cbar_kws={"shrink": 0.7},
                    xticklabels=list(classes), yticklabels=list(classes))
        ax.set(xlabel="Predicted", ylabel="True", title=title)
        ax.tick_params(axis="x", labelrotation=90 if n > 6 else 0, labelsize=8)
        ax.tick_params(axis="y", labelrotation=0, labelsize=8)
    fig.suptitle(f"Confusion matrix (n={y_true.size}, accuracy {np.trace(counts) / max(y_true.size, 1):.3f})")
    return fig


def calibration_figure(y_true, proba, classes: Sequence[str], n_bins: int = 10, before=None) -> Figure:
    """Reliability curve: predicted probability against observed frequency.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities.
    classes : sequence of str
        Name of each class.
    n_bins : int, default 10
        Quantile bins of the predicted probability.
    before : array-like of float, shape (n_samples, n_classes), optional
        The same model's probabilities before calibration: drawn too, so the figure shows
        the reliability before and after.

    Returns
    -------
    matplotlib.figure.Figure
        Binary: probability of the positive class against its frequency. Multi-class: the
        top-class probability (confidence) against how often the top class is right.
    """
    y_true, proba = _check(y_true, proba)
    if proba.shape[1] == 2:
        hit, score, label = y_true == 1, proba[:, 1], f"P({classes[1]})"
        observed = f"Observed frequency of {classes[1]}"
    else:
        hit = proba.argmax(axis=1) == y_true
        score, label, observed = proba.max(axis=1), "top-class probability", "Observed accuracy"
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    curves = [("model", hit, score)]
    if before is not None:
        before = np.asarray(before, dtype=float)
        hit_before = hit if before.shape[1] == 2 else before.argmax(axis=1) == y_true
        score_before = before[:, 1] if before.shape[1] == 2 else before.max(axis=1)
        curves = [("before calibration", hit_before, score_before), ("after calibration", hit, score)]
    for name, hits, scores in curves:
        # Quantile bins keep every bin populated when the scores bunch up near 0 or 1.
        frac, mean_pred = calibration_curve(hits.astype(int), scores, n_bins=n_bins, strategy="quantile")
        ax.plot(mean_pred, frac, marker="o", lw=1.5, label=f"{name} (n={y_true.size}, {len(frac)} quantile bins)")
    ax.set(xlabel=f"Mean predicted {label}", ylabel=observed, title=f"Calibration of {label}")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02))  # a margin so points at 1.0 are not cut in half
    ax.legend(loc="upper left", fontsize="small")
    return fig


def convergence_figure(values: Sequence[float], metric: str, greater_is_better: bool) -> Figure:
    """Each trial's metric and the best so far against trial number.

    Parameters
    ----------
    values : sequence of float
        The value the search minimised at each trial, in order (the metric, negated when
        greater is better); non-finite ones (failed trials) are left out of the points and
        never count as best.
    metric : str
        The metric's name, the y label.
    greater_is_better : bool
        Whether the metric was negated for the search; it is shown un-negated.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(values, dtype=float).ravel()
    shown = -values if greater_is_better else values
    trials = np.arange(1, values.size + 1)
    finite = np.where(np.isfinite(values), values, np.inf)
    best = np.minimum.accumulate(finite) if values.size else finite
    best = np.where(np.isfinite(best), -best if greater_is_better else best, np.nan)
    fig, ax = _figure(6.5, 4.0)
    ax.plot(trials, shown, "o", ms=5, alpha=0.6, label=f"trial (n={int(np.isfinite(values).sum())})")
    ax.step(trials, best, where="post", lw=2, label="best so far")
    title = f"Search convergence ({'higher' if greater_is_better else 'lower'} is better)"
    if np.isfinite(best).any():
        at = int(np.nanargmin(finite)) + 1
        title += f": best {metric} = {best[-1]:.4g} at trial {at}"
    ax.set(xlabel="Trial", ylabel=metric, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if values.size:
        ax.set_xlim(0.5, values.size + 0.5)
    ax.legend(fontsize="small")
    return fig


def partial_dependence_figure(skopt_result) -> Figure | None:
    """Partial dependence of the GP surrogate on each searched parameter.

    Parameters
    ----------
    skopt_result : scipy.optimize.OptimizeResult or None
        ``GPSearcher.result``.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is nothing to show: no result, no non-constant dimension, or the
        GP was never fitted (fewer trials than random initial points).
    """
    if skopt_result is None or not getattr(skopt_result, "models", None):
        return None
    space = skopt_result.space
    if not any(not dim.is_constant for dim in space.dimensions):
        return None
    from skopt.plots import plot_objective

    n_dims = sum(not dim.is_constant for dim in space.dimensions)
    side = max(3.0, 2.2 * n_dims)
    fig = Figure(figsize=(side, side))
    # plot_objective lays its grid out inside the axis it is given; passing our own keeps
    # the figure off pyplot's registry, as for every other figure here. Fewer samples than
    # its defaults: the plot is for eyes, and the full default costs seconds per dimension.
    plot_objective(skopt_result, ax=fig.add_subplot(), n_samples=100, n_points=20)
    return fig


def class_balance_figure(counts, class_names: Sequence[str]) -> Figure:
    """Bar chart of rows per class, with the count on each bar.

    Parameters
    ----------
    counts : array-like of int, shape (n_classes,)
        Rows of each class.
    class_names : sequence of str
        Name of each class.

    Returns
    -------
    matplotlib.figure.Figure
    """
    counts = np.asarray(counts).ravel()
    if counts.size != len(class_names):
        raise ValueError(f"{counts.size} counts for {len(class_names)} class names")
    fig, ax = _figure(max(5.0, 0.45 * counts.size + 2.0), 4.0)
    bars = ax.bar(np.arange(counts.size), counts)
    ax.bar_label(bars, fontsize=7)
    rotation = 90 if counts.size > 6 else 0
    ax.set_xticks(np.arange(counts.size), list(class_names), rotation=rotation, fontsize=8)
    total = counts.sum()
    ax.set(xlabel="Class", ylabel="Rows", title=f"Class balance (n={total}, {np.count_nonzero(counts)} classes present)")
    if total and counts.max() / max(counts[counts > 0].min(), 1) > 100:
        # A 1000:1 imbalance leaves the rare classes invisible on a linear axis.
        ax.set_yscale("log")
    return fig
