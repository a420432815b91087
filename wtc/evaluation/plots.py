"""Figures of a run (ROC, confusion, calibration, over-training, search); they are returned, never saved."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

# Runs are headless (sweeps, CI, batch nodes): never let pyplot look for a display.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import auc, confusion_matrix, roc_curve  # noqa: E402

__all__ = [
    "calibration_figure",
    "class_balance_figure",
    "confusion_matrix_figure",
    "convergence_figure",
    "feature_importance_figure",
    "partial_dependence_figure",
    "roc_figure",
    "score_distribution_figure",
]


def _figure(width: float = 6.0, height: float = 5.0) -> tuple[Figure, plt.Axes]:
    # A bare Figure (not plt.figure) is not registered with pyplot, so a sweep that makes
    # thousands of figures and never closes them does not leak them into pyplot's registry.
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _as_labels(y) -> np.ndarray:
    return np.asarray(y).astype(int, copy=False).ravel()


def roc_figure(y_true, proba, class_names: Sequence[str]) -> Figure:
    """One-vs-rest ROC curves with their AUC in the legend.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities.
    class_names : sequence of str
        Name of each class (column of ``proba``).

    Returns
    -------
    matplotlib.figure.Figure
        A binary problem gets one curve (the positive class); a class absent from
        ``y_true`` (no positives) or the only one present (no negatives) gets no curve.
    """
    y_true, proba = _as_labels(y_true), np.asarray(proba, dtype=float)
    fig, ax = _figure()
    classes = [1] if proba.shape[1] == 2 else range(proba.shape[1])
    for k in classes:
        positives = y_true == k
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, proba[:, k])
        ax.plot(fpr, tpr, lw=1.5, label=f"{class_names[k]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (one vs rest)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def confusion_matrix_figure(
    y_true, y_pred, class_names: Sequence[str], normalize: bool = True
) -> Figure:
    """Confusion matrix heatmap, rows are true classes.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_samples,)
        True and predicted class indices.
    class_names : sequence of str
        Name of each class index.
    normalize : bool, default True
        Show each row as fractions of its true class (recall on the diagonal); a class with
        no true rows shows a zero row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(class_names)
    cm = confusion_matrix(_as_labels(y_true), _as_labels(y_pred), labels=list(range(n)))
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        # Divide only rows with support: an absent class would otherwise be 0/0.
        cm = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    # Grow with the number of classes so 20 labels and their cell values stay legible.
    side = max(5.0, 0.45 * n + 2.5)
    fig, ax = _figure(side + 1.0, side)
    sns.heatmap(
        cm,
        ax=ax,
        annot=n <= 25,
        fmt=".2f" if normalize else "d",
        annot_kws={"fontsize": 8 if n <= 12 else 6},
        cmap="Blues",
        vmin=0,
        vmax=1 if normalize else None,
        square=True,
        cbar_kws={"shrink": 0.7},
        xticklabels=class_names,
        yticklabels=class_names,
    )
    title = "Confusion matrix" + (" (row-normalised)" if normalize else "")
    ax.set(xlabel="Predicted", ylabel="True", title=title)
    ax.tick_params(axis="x", labelrotation=90, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0, labelsize=8)
    return fig


def calibration_figure(y_true, proba, class_names: Sequence[str], n_bins: int = 10) -> Figure:
    """Reliability curve: predicted probability against observed frequency.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities.
    class_names : sequence of str
        Name of each class.
    n_bins : int, default 10
        Quantile bins of the predicted probability.

    Returns
    -------
    matplotlib.figure.Figure
        Binary: probability of the positive class against its frequency. Multi-class: the
        top-class probability (confidence) against how often the top class is right.
    """
    y_true, proba = _as_labels(y_true), np.asarray(proba, dtype=float)
    if proba.shape[1] == 2:
        hit, score, label = y_true == 1, proba[:, 1], f"P({class_names[1]})"
    else:
        hit = proba.argmax(axis=1) == y_true
        score, label = proba.max(axis=1), "top-class probability"
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    # Quantile bins keep every bin populated when the scores bunch up near 0 or 1.
    frac, mean_pred = calibration_curve(hit.astype(int), score, n_bins=n_bins, strategy="quantile")
    ax.plot(mean_pred, frac, marker="o", lw=1.5, label="model")
    ax.set(xlabel=f"Mean predicted {label}", ylabel="Observed frequency", title="Calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper left", fontsize="small")
    return fig


def score_distribution_figure(train_scores, test_scores, ks: float | None = None) -> Figure:
    """Train and test score distributions overlaid: the over-training check.

    Parameters
    ----------
    train_scores, test_scores : array-like of float, shape (n_samples,)
        One score per row (positive-class or top-class probability).
    ks : float or None
        Kolmogorov-Smirnov statistic between the two, shown in the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _figure(6.0, 4.0)
    bins = np.linspace(0.0, 1.0, 26)
    for scores, name, style in (
        (train_scores, "train", {"histtype": "stepfilled", "alpha": 0.35}),
        (test_scores, "test", {"histtype": "step", "lw": 2}),
    ):
        scores = np.asarray(scores, dtype=float).ravel()
        label = f"{name} (n={scores.size})"
        ax.hist(np.clip(scores, 0.0, 1.0), bins=bins, density=True, label=label, **style)
    title = "Score distributions"
    if ks is not None:
        title += f" (KS = {ks:.3f})"
    ax.set(xlabel="Score", ylabel="Density", title=title)
    ax.legend(fontsize="small")
    return fig


def convergence_figure(values: Sequence[float]) -> Figure:
    """Best objective so far against trial number.

    Parameters
    ----------
    values : sequence of float
        The minimised objective of each trial, in order; non-finite ones (failed trials)
        are shown as gaps in the per-trial points and do not count as best.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(values, dtype=float).ravel()
    trials = np.arange(1, values.size + 1)
    finite = np.where(np.isfinite(values), values, np.inf)
    best = np.minimum.accumulate(finite) if values.size else finite
    best = np.where(np.isfinite(best), best, np.nan)
    fig, ax = _figure(6.0, 4.0)
    ax.plot(trials, values, "o", ms=4, alpha=0.5, label="trial")
    ax.step(trials, best, where="post", lw=2, label="best so far")
    ax.set(xlabel="Trial", ylabel="Objective (minimised)", title="Search convergence")
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


def feature_importance_figure(importances, feature_names: Sequence[str], top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` largest importances.

    Parameters
    ----------
    importances : array-like of float, shape (n_features,)
        One importance per feature (e.g. ``feature_importances_``, or |coefficients|).
    feature_names : sequence of str
        Name of each feature.
    top : int, default 20
        How many features to show, largest first.

    Returns
    -------
    matplotlib.figure.Figure
    """
    importances = np.asarray(importances, dtype=float).ravel()
    if importances.size != len(feature_names):
        raise ValueError(
            f"importances has {importances.size} values but there are "
            f"{len(feature_names)} feature names"
        )
    order = np.argsort(-importances, kind="stable")[:top]
    fig, ax = _figure(7.0, max(3.0, 0.3 * len(order) + 1.5))
    ax.barh(np.arange(len(order)), importances[order])
    ax.set_yticks(np.arange(len(order)), [feature_names[i] for i in order], fontsize=8)
    ax.invert_yaxis()  # largest on top
    ax.set(xlabel="Importance", title=f"Top {len(order)} features")
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
    ax.set(ylabel="Rows", title=f"Class balance (n={total})")
    if total and counts.max() / max(counts[counts > 0].min(), 1) > 100:
        # A 1000:1 imbalance leaves the rare classes invisible on a linear axis.
        ax.set_yscale("log")
    return fig
