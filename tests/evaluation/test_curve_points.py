"""The ROC and precision-recall points a run logs for reports, and their overlay of several runs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.preprocessing import label_binarize

from wtc.evaluation.diagnostics import PR_POINTS, pr_points, roc_points
from wtc.evaluation.ranking import roc_overlay_figure


def _data(n_classes: int, n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += 1.5
    return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_binary_pr_points_are_scikit_learns_curve_for_class_1_thinned():
    y, proba = _data(2)
    points = pr_points(y, proba)
    precision, recall, _ = precision_recall_curve(y == 1, proba[:, 1], drop_intermediate=True)
    assert len(points["recall"]) <= PR_POINTS < len(recall)  # thinned, ends kept
    assert points["recall"][0] == 1.0 and points["recall"][-1] == 0.0 and points["precision"][-1] == 1.0
    assert np.all(np.diff(points["recall"]) <= 0)
    curve = np.column_stack([precision, recall])
    for point in zip(points["precision"], points["recall"]):  # every kept point is one of the curve's
        assert np.abs(curve - point).max(axis=1).min() < 1e-5
    assert points["average_precision"] == pytest.approx(average_precision_score(y, proba[:, 1]))
    assert points["prevalence"] == pytest.approx((y == 1).mean())


def test_multiclass_pr_points_are_the_micro_average_like_the_roc():
    y, proba = _data(5)
    points = pr_points(y, proba)
    micro = average_precision_score(label_binarize(y, classes=range(5)), proba, average="micro")
    assert points["average_precision"] == pytest.approx(micro)
    assert points["prevalence"] == pytest.approx(1 / 5)
    assert roc_points(y, proba) and 0.5 < roc_points(y, proba)["auc"] < 1


def test_one_class_only_has_no_curve():
    y = np.ones(10, dtype=int)
    assert pr_points(y, np.full((10, 2), 0.5)) == {} == roc_points(y, np.full((10, 2), 0.5))


def test_overlay_draws_precision_recall_beside_the_roc():
    y, proba = _data(2)
    noisy = np.clip(proba + np.random.default_rng(1).normal(0, 0.2, proba.shape), 0, 1)
    runs = [("#1 run", (y, proba)), ("#2 run", (y, noisy))]  # two models, one test split
    fig = roc_overlay_figure([(label, roc_points(*data)) for label, data in runs],
                             [(label, pr_points(*data)) for label, data in runs])
    assert plt.get_fignums() == []
    fig.canvas.draw()
    roc_ax, pr_ax = fig.axes
    assert "ROC" in roc_ax.get_title() and "Precision-recall" in pr_ax.get_title()
    labels = [t.get_text() for t in pr_ax.get_legend().get_texts()]
    aps = [pr_points(*data)["average_precision"] for _, data in runs]
    assert [label for label in labels if "AP" in label and "run" in label] == [
        f"#{i} run (AP = {ap:.2f})" for i, ap in zip((1, 2), aps)]
    assert sum("Chance" in label for label in labels) == 1  # one random-ranking line for one test split
    assert len(roc_overlay_figure([(label, roc_points(*data)) for label, data in runs]).axes) == 1
