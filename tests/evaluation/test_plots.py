"""Tests that every figure builds, shows what it says (labels, counts, numbers) and warns about nothing."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from wtc.evaluation import curves, overtraining, plots
from wtc.tuning import GPSearcher

N_CLASSES = 20
NAMES = [f"acdc_{i}x" for i in range(N_CLASSES)]


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


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --- ROC ---------------------------------------------------------------------------------


def test_roc_binary_one_curve_with_auc_and_counts():
    y = np.array([0, 0, 1, 1])
    proba = np.column_stack([1 - np.array([0.1, 0.4, 0.35, 0.8]), [0.1, 0.4, 0.35, 0.8]])
    fig = check(plots.roc_figure(y, proba, ["non-acdc", "acdc"]))
    ax = fig.axes[0]
    labels = legend_texts(ax)
    assert labels == ["acdc vs non-acdc (AUC 0.750)", "chance"]  # 3 of 4 pairs ordered right
    assert "n=4" in ax.get_title() and "2 acdc" in ax.get_title()
    assert ax.get_xlabel() == "False positive rate" and ax.get_ylabel() == "True positive rate"


def test_roc_multiclass_per_class_micro_and_macro(multiclass):
    y, proba = multiclass
    fig = check(plots.roc_figure(y, proba, NAMES))
    labels = legend_texts(fig.axes[0])
    assert len(labels) == N_CLASSES - 1 + 3  # 19 present classes + micro + macro + chance
    assert not any(label.startswith("acdc_7x") for label in labels)
    first = f"acdc_0x (n={(y == 0).sum()}, AUC {roc_auc_score(y == 0, proba[:, 0]):.3f})"
    assert labels[0] == first
    present = [k for k in range(N_CLASSES) if k != 7]
    macro = np.mean([roc_auc_score(y == k, proba[:, k]) for k in present])
    micro = roc_auc_score(np.eye(N_CLASSES)[y].ravel(), proba.ravel())
    assert f"macro-average (AUC {macro:.3f})" in labels
    assert f"micro-average (AUC {micro:.3f})" in labels


def test_cv_roc_mean_and_band():
    rng = np.random.default_rng(3)
    folds = []
    for _ in range(4):
        y = rng.integers(0, 2, 80)
        p1 = np.clip(0.3 * y + rng.uniform(0, 0.7, 80), 0, 1)
        folds.append((y, np.column_stack([1 - p1, p1])))
    # A fold with a single class has no ROC: it is left out and the legend says so.
    folds.append((np.ones(10, int), np.full((10, 2), 0.5)))
    fig = check(plots.cv_roc_figure(folds, ["non-acdc", "acdc"]))
    ax = fig.axes[0]
    aucs = [roc_auc_score(y, p[:, 1]) for y, p in folds[:4]]
    expected = f"mean AUC = {np.mean(aucs):.3f} ± {np.std(aucs):.3f} (k = 4 folds of 5, n=320)"
    assert expected in legend_texts(ax)
    assert len([line for line in ax.lines if line.get_alpha() == 0.35]) == 4  # one faint line per fold
    assert any(isinstance(c, PolyCollection) for c in ax.collections)  # the ±1 sigma band
    assert f"{np.mean(aucs):.3f}" in ax.get_title()


def test_cv_roc_multiclass_uses_micro_average(multiclass):
    y, proba = multiclass
    folds = [(y[:200], proba[:200]), (y[200:], proba[200:])]
    fig = check(plots.cv_roc_figure(folds, NAMES))
    aucs = [roc_auc_score(np.eye(N_CLASSES)[f[0]].ravel(), f[1].ravel()) for f in folds]
    assert "micro-average" in fig.axes[0].get_title()
    assert any(f"mean AUC = {np.mean(aucs):.3f}" in t for t in legend_texts(fig.axes[0]))


# --- confusion, calibration, class balance -----------------------------------------------


def test_confusion_matrix_counts_and_normalised():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 0, 2]
    names = ["acdc", "clone", "special", "absent"]
    fig = check(plots.confusion_matrix_figure(y_true, y_pred, names))
    counts_ax, share_ax = (ax for ax in fig.axes if ax.get_title())
    assert counts_ax.get_title() == "Counts" and share_ax.get_title().startswith("Row-normalised")
    for ax in (counts_ax, share_ax):
        assert [t.get_text() for t in ax.get_yticklabels()] == names
        assert [t.get_text() for t in ax.get_xticklabels()] == names
        assert ax.get_xlabel() == "Predicted" and ax.get_ylabel() == "True"
    counts = counts_ax.collections[0].get_array().reshape(4, 4)
    np.testing.assert_array_equal(counts[:3, :3], [[2, 1, 0], [1, 1, 0], [0, 0, 1]])
    share = share_ax.collections[0].get_array().reshape(4, 4)
    np.testing.assert_allclose(share[0, :2], [2 / 3, 1 / 3])
    assert share[3].sum() == 0  # an absent class is a zero row, not nan
    assert "n=6" in fig.get_suptitle() and "0.667" in fig.get_suptitle()


def test_confusion_matrix_twenty_classes_grows(multiclass):
    y, proba = multiclass
    fig = check(plots.confusion_matrix_figure(y, proba.argmax(1), NAMES))
    assert fig.get_figwidth() >= 20  # two panels, each grows with the number of classes


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_calibration(kind, request):
    y, proba = request.getfixturevalue(kind)
    names = NAMES if kind == "multiclass" else ["non-acdc", "acdc"]
    fig = check(plots.calibration_figure(y, proba, names))
    ax = fig.axes[0]
    assert len(ax.lines) == 2  # diagonal + model
    assert any(f"n={len(y)}" in t for t in legend_texts(ax))
    assert ("P(acdc)" if kind == "binary" else "top-class") in ax.get_title()


@pytest.mark.parametrize("counts", [[500, 40, 3], [5000, 2, 1, 0]])
def test_class_balance(counts):
    names = [f"c{i}" for i in range(len(counts))]
    fig = check(plots.class_balance_figure(counts, names))
    ax = fig.axes[0]
    assert len(ax.patches) == len(counts)
    assert f"n={sum(counts)}" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == names


# --- over-training -----------------------------------------------------------------------


def test_overtraining_binary_counts_rows_not_matrix_cells():
    # The old plot flattened (n, 2) matrices and counted 2n scores; each row counts once here.
    rng = np.random.default_rng(4)
    y_train, y_test = rng.integers(0, 2, 120), rng.integers(0, 2, 50)
    p_train = np.clip(0.4 * y_train + rng.uniform(0, 0.6, 120), 0, 1)
    p_test = np.clip(0.4 * y_test + rng.uniform(0, 0.6, 50), 0, 1)
    train, test = np.column_stack([1 - p_train, p_train]), np.column_stack([1 - p_test, p_test])
    fig = check(overtraining.overtraining_figure(y_train, train, y_test, test, ["non-acdc", "acdc"]))
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    labels = legend_texts(ax)
    assert f"acdc train (n={(y_train == 1).sum()})" in labels
    assert f"acdc test (n={(y_test == 1).sum()})" in labels
    assert f"non-acdc train (n={(y_train == 0).sum()})" in labels
    assert f"non-acdc test (n={(y_test == 0).sum()})" in labels
    ks = ks_2samp(p_train[y_train == 1], p_test[y_test == 1])
    assert f"acdc: KS {ks.statistic:.3f}, p {ks.pvalue:.2g}" in ax.get_title()
    assert ax.get_xlabel() == "Predicted P(acdc)" and ax.get_ylabel().startswith("Density")
    # Test points are densities: their bins integrate to 1 like the train histogram.
    points = ax.lines[0].get_ydata()
    assert math.isclose(points.sum() * 0.04, 1.0)


def test_overtraining_multiclass_panels_and_ks(multiclass):
    y, proba = multiclass
    fig = check(overtraining.overtraining_figure(y[:300], proba[:300], y[300:], proba[300:], NAMES))
    panels = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert len(panels) == overtraining.MAX_PANELS
    assert "8 classes not shown" in fig.get_suptitle()
    ax = panels[0]
    k = int(ax.get_xlabel().removeprefix("Predicted P(acdc_").removesuffix("x)"))
    labels = legend_texts(ax)
    assert f"acdc_{k}x train (n={(y[:300] == k).sum()})" in labels
    assert f"rest test (n={(y[300:] != k).sum()})" in labels
    ks = ks_2samp(proba[:300][y[:300] == k, k], proba[300:][y[300:] == k, k])
    assert f"KS {ks.statistic:.3f}" in ax.get_title()


def test_overtraining_ks_per_class():
    y_train = np.array([0, 0, 0, 1, 1, 1])
    y_test = np.array([0, 0, 1, 1])
    train = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    test = np.array([[0.9, 0.1], [0.85, 0.15], [0.6, 0.4], [0.5, 0.5]])
    out = overtraining.overtraining_ks(y_train, train, y_test, test, ["non-acdc", "acdc"])
    assert set(out) == {"ks/non-acdc", "ks_pvalue/non-acdc", "ks/acdc", "ks_pvalue/acdc"}
    # acdc: train {0.7, 0.8, 0.9} vs test {0.4, 0.5}: fully separated.
    assert out["ks/acdc"] == 1.0
    assert out["ks_pvalue/acdc"] == pytest.approx(ks_2samp([0.7, 0.8, 0.9], [0.4, 0.5]).pvalue)
    # non-acdc: P(0) train {0.7, 0.8, 0.9} vs test {0.85, 0.9}: largest CDF gap 2/3 at 0.8.
    assert out["ks/non-acdc"] == pytest.approx(2 / 3)
    # Keys are valid MLflow metric names even for the aggregated "20x+" classes.
    from mlflow.utils.validation import _validate_metric_name

    keys = overtraining.overtraining_ks(y_train, train, y_test, test, ["acdc_1x", "acdc_20x+"])
    assert set(keys) == {"ks/acdc_1x", "ks_pvalue/acdc_1x", "ks/acdc_20xplus", "ks_pvalue/acdc_20xplus"}
    for key in keys:
        _validate_metric_name(key)
    # Without names the keys are class indices; a class absent from one split is left out.
    assert set(overtraining.overtraining_ks(y_train, train, np.zeros(4, int), test)) == {"ks/0", "ks_pvalue/0"}


# --- search and training -----------------------------------------------------------------


def test_convergence_unnegates_a_maximised_metric_and_skips_failures():
    fig = check(plots.convergence_figure([-0.7, -0.8, math.nan, -0.75, -0.9], "roc_auc", True))
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.7, 0.8, math.nan, 0.75, 0.9])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.7, 0.8, 0.8, 0.8, 0.9])
    assert ax.get_ylabel() == "roc_auc"
    assert "best roc_auc = 0.9 at trial 5" in ax.get_title()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 5]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert "trial (n=4)" in legend_texts(ax)


def test_convergence_minimised_metric_is_running_minimum():
    fig = check(plots.convergence_figure([3.0, 2.0, 2.5, 1.0], "log_loss", False))
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), [3.0, 2.0, 2.0, 1.0])
    assert "at trial 4" in fig.axes[0].get_title()


def test_convergence_empty():
    check(plots.convergence_figure([], "roc_auc", True))


def test_learning_curve_mean_and_band():
    sizes = [100, 200, 400]
    train = [[0.9, 1.0], [0.85, 0.95], [0.8, 0.9]]
    valid = [[0.5, 0.7], [0.6, 0.7], [0.7, 0.8]]
    fig = check(curves.learning_curve_figure(sizes, train, valid, "roc_auc"))
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.95, 0.9, 0.85])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.6, 0.65, 0.75])
    assert len(ax.collections) == 2  # two std bands
    assert ax.get_ylabel() == "roc_auc" and ax.get_xlabel() == "Training rows"
    assert legend_texts(ax) == ["train (mean of k=2 folds)", "validation (mean of k=2 folds)"]


def test_training_curves_panels_and_early_stop():
    history = {"train loss": [1.0, 0.8, 0.6, 0.5], "validation loss": [1.1, 0.9, 0.95, 1.0],
               "train auc": [0.6, 0.7, 0.8, 0.9], "val_auc": [0.55, 0.65, 0.6, 0.6]}
    fig = check(curves.training_curves_figure(history, best_iteration=2))
    loss_ax, auc_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and auc_ax.get_ylabel() == "auc"
    for ax in (loss_ax, auc_ax):
        assert legend_texts(ax) == ["train", "validation", "early stop (epoch 2)"]
        assert ax.get_xlabel() == "epoch"
        np.testing.assert_array_equal(ax.lines[0].get_xdata(), [1, 2, 3, 4])
        assert list(ax.lines[2].get_xdata()) == [2, 2]
    np.testing.assert_allclose(auc_ax.lines[1].get_ydata(), history["val_auc"])


def test_training_curves_keras_names_loss_first():
    fig = check(curves.training_curves_figure({"auc": [0.5, 0.6], "loss": [1.0, 0.9], "val_loss": [1.2, 1.1]},
                                             xlabel="iteration"))
    assert [ax.get_title() for ax in fig.axes] == ["loss", "auc"]
    assert legend_texts(fig.axes[0]) == ["train", "validation"]


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
    assert fig.axes[0].get_title() == "Top 20 of 100 features"


def test_feature_importance_length_mismatch():
    with pytest.raises(ValueError, match="feature names"):
        plots.feature_importance_figure([1.0, 2.0], ["a"])


# --- per-class table (wtc.evaluation.tables; kept here until tests/evaluation/test_tables.py exists) ---
