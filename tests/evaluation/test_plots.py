"""Tests that every figure builds from realistic inputs, returns a Figure and warns about nothing."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from wtc.evaluation import plots
from wtc.tuning import GPSearcher

N_CLASSES = 20
NAMES = [f"acdc_{i}x" for i in range(N_CLASSES)]


@pytest.fixture(autouse=True)
def no_warnings():
    # Any warning while plotting (ours, matplotlib's, seaborn's) fails the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.fixture
def multiclass():
    rng = np.random.default_rng(0)
    y = rng.integers(0, N_CLASSES, 400)
    y[y == 7] = 6  # class 7 absent from y_true, as happens in a test fold
    logits = rng.normal(size=(400, N_CLASSES))
    logits[np.arange(400), y] += 2.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.fixture
def binary():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p1 = np.clip(0.5 * y + rng.uniform(0, 0.5, 300), 0, 1)
    return y, np.column_stack([1 - p1, p1])


def check(fig):
    assert isinstance(fig, Figure)
    assert fig.axes
    # Our figures are not registered with pyplot, so sweeps that never close them leak nothing.
    assert plt.get_fignums() == []
    fig.canvas.draw()  # layout and text rendering warnings only show up when drawn
    return fig


def test_roc_multiclass_skips_absent_class(multiclass):
    y, proba = multiclass
    fig = check(plots.roc_figure(y, proba, NAMES))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == N_CLASSES - 1 + 1  # 19 present classes + chance line
    assert not any(label.startswith("acdc_7x") for label in labels)
    assert all("AUC" in label for label in labels[:-1])


def test_roc_binary_one_curve(binary):
    y, proba = binary
    fig = check(plots.roc_figure(y, proba, ["non-acdc", "acdc"]))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == 2 and labels[0].startswith("acdc (AUC")


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_twenty_classes(multiclass, normalize):
    y, proba = multiclass
    fig = check(plots.confusion_matrix_figure(y, proba.argmax(1), NAMES, normalize=normalize))
    heat = fig.axes[0]
    assert [t.get_text() for t in heat.get_yticklabels()] == NAMES
    assert fig.get_figwidth() >= 10  # grows with the number of classes
    if normalize:
        values = heat.collections[0].get_array().reshape(N_CLASSES, N_CLASSES)
        np.testing.assert_allclose(values.sum(axis=1)[np.arange(N_CLASSES) != 7], 1.0)
        assert values[7].sum() == 0  # an absent class is a zero row, not nan


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_calibration(kind, request):
    y, proba = request.getfixturevalue(kind)
    names = NAMES if kind == "multiclass" else ["non-acdc", "acdc"]
    fig = check(plots.calibration_figure(y, proba, names))
    assert len(fig.axes[0].lines) == 2  # diagonal + model


def test_score_distribution(binary):
    _, proba = binary
    fig = check(plots.score_distribution_figure(proba[:200, 1], proba[200:, 1], ks=0.123))
    assert "0.123" in fig.axes[0].get_title()


def test_convergence_is_running_minimum_and_skips_failures():
    fig = check(plots.convergence_figure([3.0, 2.0, math.nan, 2.5, 1.0]))
    best = fig.axes[0].lines[1].get_ydata()
    np.testing.assert_allclose(best, [3.0, 2.0, 2.0, 2.0, 1.0])


def test_convergence_empty():
    check(plots.convergence_figure([]))


def gp_result(n_trials, space):
    searcher = GPSearcher(space, n_trials, seed=0, n_initial_points=3)
    while not searcher.done:
        params = searcher.ask()
        searcher.tell(params, sum((v - 0.3) ** 2 for v in params.values() if isinstance(v, float)))
    return searcher.result


def test_partial_dependence_figure():
    fig = check(plots.partial_dependence_figure(gp_result(4, {"a": {"low": 0.0, "high": 1.0}, "b": {"low": 0.0, "high": 1.0}})))
    assert len(fig.axes) >= 4  # the 2x2 grid plus the frame it is laid out in


def test_partial_dependence_none_without_a_fitted_gp():
    assert plots.partial_dependence_figure(None) is None
    # Two trials, three random initial points: the GP never fitted.
    assert plots.partial_dependence_figure(gp_result(2, {"a": {"low": 0.0, "high": 1.0}})) is None
    # Only a constant dimension: nothing varies.
    assert plots.partial_dependence_figure(gp_result(4, {"c": {"choices": ["only"]}})) is None


def test_feature_importance_top():
    rng = np.random.default_rng(2)
    names = [f"bad:{c}:T2_US_MIT" for c in range(100)]
    importances = rng.uniform(size=100)
    fig = check(plots.feature_importance_figure(importances, names, top=20))
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(shown) == 20
    assert shown[0] == names[int(np.argmax(importances))]


def test_feature_importance_length_mismatch():
    with pytest.raises(ValueError, match="feature names"):
        plots.feature_importance_figure([1.0, 2.0], ["a"])


@pytest.mark.parametrize("counts", [[500, 40, 3], [5000, 2, 1, 0]])
def test_class_balance(counts):
    names = [f"c{i}" for i in range(len(counts))]
    fig = check(plots.class_balance_figure(counts, names))
    assert len(fig.axes[0].patches) == len(counts)
