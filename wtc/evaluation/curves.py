"""Learning curves (score vs training-set size) and training curves (loss and metric per epoch/round)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from wtc.evaluation.plots import _figure

__all__ = ["learning_curve_figure", "training_curves_figure"]


def learning_curve_figure(train_sizes, train_scores, valid_scores, metric: str) -> Figure:
    """Train and validation score against training rows, mean ± one standard deviation over folds.

    Parameters
    ----------
    train_sizes : array-like of int, shape (n_sizes,)
    train_scores, valid_scores : array-like of float, shape (n_sizes, n_folds)
        As returned by :func:`sklearn.model_selection.learning_curve`.
    metric : str
        The score's name, the y label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sizes = np.asarray(train_sizes).ravel()
    fig, ax = _figure(6.5, 4.5)
    for scores, name, color in ((train_scores, "train", "C0"), (valid_scores, "validation", "C1")):
        scores = np.atleast_2d(np.asarray(scores, dtype=float))
        mean, std = scores.mean(axis=1), scores.std(axis=1)
        ax.plot(sizes, mean, "o-", color=color, label=f"{name} (mean of k={scores.shape[1]} folds)")
        ax.fill_between(sizes, mean - std, mean + std, color=color, alpha=0.2)
    ax.set(xlabel="Training rows", ylabel=metric, title=f"Learning curve ({metric}, band = ±1 std. dev.)")
    ax.legend(fontsize="small")
    return fig


def _split_history_key(key: str) -> tuple[str, str]:
    """("validation", "auc") from "validation auc", "val_auc" or "valid_auc"; bare "loss" is train."""
    for prefix, split in (("val_", "validation"), ("valid_", "validation"), ("validation ", "validation"),
                          ("validation_", "validation"), ("train ", "train"), ("train_", "train"),
                          ("test ", "held-out test")):
        if key.startswith(prefix):
            return split, key[len(prefix):]
    return "train", key


def training_curves_figure(history: Mapping[str, Sequence[float]], best_iteration: int | None = None,
                           xlabel: str = "epoch", steps: Sequence[int] | None = None) -> Figure:
    """Train and validation curves of an iterative fit, one panel per quantity (loss first).

    Parameters
    ----------
    history : mapping of str to sequence of float
        Curves by name: ``"train loss"``, ``"validation loss"``, ``"train auc"``, … (Keras
        names ``loss``, ``val_loss``, ``val_auc`` are understood too).
    best_iteration : int, optional
        The early-stopping point on the x axis, which counts from 1 (first epoch/iteration
        is 1; add 1 to a 0-based index such as XGBoost's ``best_iteration``).
    xlabel : str, default "epoch"
    steps : sequence of int, optional
        The epoch/round of each point when the curves are sampled (default 1, 2, ...).

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels: dict[str, dict[str, np.ndarray]] = {}
    for key, curve in history.items():
        split, quantity = _split_history_key(key)
        panels.setdefault(quantity, {})[split] = np.asarray(curve, dtype=float)
    order = sorted(panels, key=lambda q: (q != "loss", list(panels).index(q)))
    fig = Figure(figsize=(5.0 * max(len(order), 1), 4.0), layout="constrained")
    for i, quantity in enumerate(order):
        ax = fig.add_subplot(1, len(order), i + 1)
        for split, style in (("train", {"color": "C0"}), ("validation", {"color": "C1", "ls": "--"}),
                             ("held-out test", {"color": "C3", "ls": "-."})):
            if split in panels[quantity]:
                curve = panels[quantity][split]
                x = np.arange(1, curve.size + 1) if steps is None else np.asarray(steps)[: curve.size]
                ax.plot(x, curve, lw=1.8, label=split, **style)
        if best_iteration is not None:
            ax.axvline(best_iteration, color="grey", ls=":", lw=1.5, label=f"early stop ({xlabel} {best_iteration})")
        ax.set(xlabel=xlabel, ylabel=quantity, title=quantity)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    fig.suptitle("Training curves")
    return fig
