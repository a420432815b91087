"""How much of the operators' work a model could take over: precision against coverage by confidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["automation_curve", "automation_figure", "coverage_at_precision"]


def automation_curve(y_true, proba) -> pd.DataFrame:
    """Precision and coverage of acting only on tasks above a confidence threshold.

    The model acts on a task when its confidence, the largest class probability, is at least
    the threshold; otherwise the task is left to an operator. Lowering the threshold takes
    tasks in order of decreasing confidence. Tasks with equal confidence are always taken
    together: one threshold cannot separate them.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities; the action taken is their argmax.

    Returns
    -------
    pandas.DataFrame
        One row per distinct confidence value, highest first, with columns ``threshold``
        (act when confidence >= threshold), ``coverage`` (share of all tasks acted on),
        ``precision`` (share of acted-on tasks whose argmax is the true class), ``n_acted``
        and ``n_correct``. Empty (with those columns) when there are no tasks.
    """
    y_true = np.asarray(y_true).astype(int, copy=False).ravel()
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[0] != y_true.size:
        raise ValueError(f"proba must have shape ({y_true.size}, n_classes), got {proba.shape}")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    n_correct = np.cumsum(correct)
    # The last task of each run of equal confidences closes a threshold: ties go in together.
    last_of_tie = np.r_[confidence[1:] != confidence[:-1], True] if confidence.size else np.zeros(0, bool)
    n_acted = np.flatnonzero(last_of_tie) + 1
    n_correct = n_correct[last_of_tie]
    return pd.DataFrame({
        "threshold": confidence[last_of_tie],
        "coverage": n_acted / max(y_true.size, 1),
        "precision": n_correct / n_acted,
        "n_acted": n_acted,
        "n_correct": n_correct,
    })


def coverage_at_precision(y_true, proba, precision: float = 0.95, confidence: float = 0.0) -> tuple[float, float]:
    """Largest share of tasks a model can act on while keeping a target precision.

    Parameters
    ----------
    y_true, proba
        As for :func:`automation_curve`.
    precision : float, default 0.95
        Target precision: share of acted-on tasks that must be right.
    confidence : float, default 0.0
        0: the measured precision must reach the target (the point estimate: on new tasks the
        realised precision falls below it about half the time). In (0, 1): its one-sided
        Clopper-Pearson lower bound at this confidence must, so that a threshold chosen on a
        few hundred tasks keeps the target on new ones with that probability, for less coverage.

    Returns
    -------
    coverage : float
        The largest coverage of :func:`automation_curve` whose precision is >= the target;
        0.0 when no threshold reaches it.
    threshold : float
        The confidence threshold giving that coverage (act when confidence >= it); ``inf``
        when no threshold reaches the target (act on nothing).
    """
    if not 0.0 <= confidence < 1.0:
        raise ValueError(f"confidence must be in [0, 1), got {confidence}")
    curve = automation_curve(y_true, proba)
    measured = curve["precision"].to_numpy()
    if confidence > 0:
        from scipy.stats import beta

        k, n = curve["n_correct"].to_numpy(), curve["n_acted"].to_numpy()
        with np.errstate(invalid="ignore"):
            measured = np.where(k > 0, beta.ppf(1.0 - confidence, k, n - k + 1), 0.0)
    reached = curve[measured >= precision]
    if reached.empty:
        return 0.0, float("inf")
    # Coverage grows down the table, so the last row reaching the target has the most.
    best = reached.iloc[-1]
    return float(best["coverage"]), float(best["threshold"])


def automation_figure(
    curves: Mapping[str, tuple[object, object]], targets: Sequence[float] = (0.90, 0.95, 0.99)
) -> Figure:
    """Precision against coverage of several models (e.g. the model and the oracle), on one axes.

    Parameters
    ----------
    curves : mapping of str to (y_true, proba)
        A name for each model and its true labels and class probabilities on the same tasks.
    targets : sequence of float, default (0.90, 0.95, 0.99)
        Target precisions: each is drawn as a horizontal line, and the coverage each model
        reaches at it is marked and given in the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(7.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, (y_true, proba)) in enumerate(curves.items()):
        color = f"C{i}"
        curve = automation_curve(y_true, proba)
        # Start at zero coverage so the line reads from "act on nothing" to "act on all".
        coverage = np.r_[0.0, curve["coverage"]]
        precision = np.r_[curve["precision"].iloc[0] if len(curve) else np.nan, curve["precision"]]
        reached = [coverage_at_precision(y_true, proba, t)[0] for t in targets]
        summary = ", ".join(f"{c:.0%} at {t:.0%}" for c, t in zip(reached, targets))
        label = f"{name} (n={len(np.ravel(y_true))}; coverage {summary})"
        ax.plot(coverage, precision, drawstyle="steps-pre", lw=1.8, color=color, label=label)
        ax.plot(reached, targets, "o", ms=6, color=color, mfc="white", mew=1.5)
    for target in targets:
        ax.axhline(target, ls=":", lw=1, color="grey")
        ax.annotate(f"{target:.0%}", (1.0, target), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", va="center", fontsize=8, color="grey")
    ax.set(xlabel="Coverage (share of tasks the model acts on)",
           ylabel="Precision (share of those acted on correctly)",
           title="Automation: precision vs coverage by confidence threshold", xlim=(0, 1.01))
    ax.legend(loc="lower left", fontsize="small")
    return fig
