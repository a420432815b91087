"""The over-training check: train vs test score distributions per true class, with KS tests."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import ks_2samp

from wtc.evaluation.plots import _check

__all__ = ["MAX_PANELS", "overtraining_figure", "overtraining_ks"]

#: Panels of a multi-class over-training figure: the most populated classes beyond this are left out.
MAX_PANELS = 12


def _ks_rows(train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    if train.size == 0 or test.size == 0:
        return math.nan, math.nan
    result = ks_2samp(train, test)
    return float(result.statistic), float(result.pvalue)


def _metric_key(name: str) -> str:
    # MLflow refuses metric names outside [\w ./:-]; real class names hold "+" ("acdc_20x+").
    return re.sub(r"[^\w ./:-]", "_", name.replace("+", "plus"))


def overtraining_ks(y_train, train_proba, y_test, test_proba, classes: Sequence[str] | None = None) -> dict[str, float]:
    """Kolmogorov-Smirnov test between train and test scores of each true class.

    For class ``c`` the score is P(c) and the rows are those whose true class is ``c``; a
    model that memorised its training rows scores them more confidently than unseen ones,
    and the two distributions drift apart (large statistic, small p-value).

    Parameters
    ----------
    y_train, y_test : array-like of int
        True class indices of the training and the test rows.
    train_proba, test_proba : array-like of float, shape (n_rows, n_classes)
        Predicted class probabilities of those rows.
    classes : sequence of str, optional
        Class names used in the keys; class indices when omitted.

    Returns
    -------
    dict of str to float
        ``ks/<class>`` (statistic) and ``ks_pvalue/<class>`` for each class with rows in
        both splits (a class missing from either is left out); characters MLflow refuses
        in metric names are replaced (``acdc_20x+`` becomes ``acdc_20xplus``). For a binary model, class 0
        uses P(0) = 1 - P(1): the KS test is unchanged by that monotone flip, so both
        classes agree with the P(1) over-training plot.
    """
    y_train, train_proba = _check(y_train, train_proba)
    y_test, test_proba = _check(y_test, test_proba)
    if train_proba.shape[1] != test_proba.shape[1]:
        raise ValueError("train_proba and test_proba must have the same number of classes")
    out = {}
    for k in range(train_proba.shape[1]):
        name = _metric_key(str(classes[k])) if classes is not None else str(k)
        stat, pvalue = _ks_rows(train_proba[y_train == k, k], test_proba[y_test == k, k])
        if not math.isnan(stat):
            out[f"ks/{name}"], out[f"ks_pvalue/{name}"] = stat, pvalue
    return out


def _overtraining_panel(ax, train_score, train_signal, test_score, test_signal, names) -> str:
    """Train as filled density histograms, test as points with Poisson error bars; returns the KS text."""
    bins = np.linspace(0.0, 1.0, 26)
    centres, width = 0.5 * (bins[1:] + bins[:-1]), bins[1] - bins[0]
    ks_text = []
    for is_signal, name, color in ((True, names[0], "C0"), (False, names[1], "C3")):
        train = np.clip(train_score[train_signal == is_signal], 0, 1)
        test = np.clip(test_score[test_signal == is_signal], 0, 1)
        if train.size:
            ax.hist(train, bins=bins, density=True, histtype="stepfilled", alpha=0.3, color=color,
                    edgecolor=color, label=f"{name} train (n={train.size})")
        if test.size:
            counts, _ = np.histogram(test, bins=bins)
            scale = 1.0 / (test.size * width)
            shown = counts > 0
            ax.errorbar(centres[shown], counts[shown] * scale, yerr=np.sqrt(counts[shown]) * scale,
                        fmt="o", ms=3.5, color=color, elinewidth=1, label=f"{name} test (n={test.size})")
        stat, pvalue = _ks_rows(train, test)
        if not math.isnan(stat):
            ks_text.append(f"{name}: KS {stat:.3f}, p {pvalue:.2g}")
    return "\n".join(ks_text)


def overtraining_figure(y_train, train_proba, y_test, test_proba, classes: Sequence[str]) -> Figure:
    """The over-training check: train against test score distributions, per true class.

    Parameters
    ----------
    y_train, y_test : array-like of int
        True class indices of the training and the test rows.
    train_proba, test_proba : array-like of float, shape (n_rows, n_classes)
        Predicted class probabilities of those rows.
    classes : sequence of str
        Name of each class (column of the probabilities).

    Returns
    -------
    matplotlib.figure.Figure
        Binary: one panel of P(``classes[1]``), rows of each true class drawn separately.
        Multi-class: one panel per class ``c`` with score P(c), signal = rows of true class
        ``c``, background = all others; at most :data:`MAX_PANELS` panels, the classes with
        the most training rows. Train is a filled density histogram, test points with
        Poisson error bars; the KS statistic and p-value (train vs test, per distribution)
        are in each panel's title.
    """
    y_train, train_proba = _check(y_train, train_proba)
    y_test, test_proba = _check(y_test, test_proba)
    n_classes = train_proba.shape[1]
    if n_classes == 2:
        panels = [(1, (classes[1], classes[0]))]
    else:
        support = np.bincount(y_train, minlength=n_classes)[:n_classes]
        shown = [int(k) for k in np.argsort(-support, kind="stable")[:MAX_PANELS] if support[k] > 0]
        panels = [(k, (classes[k], "rest")) for k in sorted(shown)]
    n_cols = min(len(panels), 4) or 1
    n_rows = max(1, math.ceil(len(panels) / n_cols))
    width, height = (7.5, 5.5) if len(panels) == 1 else (4.6 * n_cols + 1.0, 3.9 * n_rows + 0.6)
    fig = Figure(figsize=(width, height), layout="constrained")
    for i, (k, names) in enumerate(panels):
        ax = fig.add_subplot(n_rows, n_cols, i + 1)
        ks = _overtraining_panel(ax, train_proba[:, k], y_train == k, test_proba[:, k], y_test == k, names)
        ax.set_title(f"P({classes[k]})\n{ks}", fontsize=9)
        # Scores pile up near 0 and 1; a log scale keeps the tails, where over-training shows, visible.
        ax.set_yscale("log")
        ax.set(xlabel=f"Predicted P({classes[k]})", ylabel="Density (log scale)", xlim=(0, 1))
        ax.legend(fontsize="x-small", loc="upper center")
    left_out = "" if n_classes == 2 or len(panels) == n_classes else f"; {n_classes - len(panels)} classes not shown"
    fig.suptitle(f"Over-training check, train filled vs test points: "
                 f"n={y_train.size} train, {y_test.size} test{left_out}", fontsize=10)
    return fig
