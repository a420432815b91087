"""Tests of the automation curve on a hand-made example whose answer is worked out below."""

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats

from wtc.evaluation.automation import automation_curve, automation_figure, coverage_at_precision

# Six tasks, three classes. Confidence (max probability) and whether the argmax is right:
#   task  confidence  argmax  true  right
#   0     0.9         0       0     yes
#   1     0.8         1       1     yes
#   2     0.8         0       2     no     <- ties with task 1: both are taken together
#   3     0.7         1       1     yes
#   4     0.6         0       0     yes
#   5     0.5         0       1     no
PROBA = np.array([
    [0.9, 0.05, 0.05],
    [0.1, 0.8, 0.1],
    [0.8, 0.1, 0.1],
    [0.2, 0.7, 0.1],
    [0.6, 0.3, 0.1],
    [0.5, 0.4, 0.1],
])
Y = np.array([0, 1, 2, 1, 0, 1])


@pytest.fixture(autouse=True)
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_curve_by_hand():
    curve = automation_curve(Y, PROBA)
    # Taking tasks by decreasing confidence: {0}, {0,1,2}, {..,3}, {..,4}, {..,5}.
    np.testing.assert_allclose(curve["threshold"], [0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_array_equal(curve["n_acted"], [1, 3, 4, 5, 6])
    np.testing.assert_array_equal(curve["n_correct"], [1, 2, 3, 4, 4])
    np.testing.assert_allclose(curve["coverage"], [1 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    np.testing.assert_allclose(curve["precision"], [1.0, 2 / 3, 3 / 4, 4 / 5, 2 / 3])


def test_ties_are_taken_together_whatever_the_row_order():
    order = [2, 0, 5, 1, 4, 3]  # the wrong 0.8 task now comes before the right one
    curve = automation_curve(Y[order], PROBA[order])
    assert 2 / 6 not in curve["coverage"].tolist()  # no threshold splits the tie
    np.testing.assert_allclose(curve["precision"], [1.0, 2 / 3, 3 / 4, 4 / 5, 2 / 3])


@pytest.mark.parametrize(("target", "coverage", "threshold"), [
    (0.95, 1 / 6, 0.9),   # only the most confident task is surely right
    (0.80, 5 / 6, 0.6),   # precision dips at 0.8 (the tie) and recovers: largest coverage wins
    (0.75, 5 / 6, 0.6),
    (0.60, 1.0, 0.5),     # everything
])
def test_coverage_at_precision_by_hand(target, coverage, threshold):
    got_coverage, got_threshold = coverage_at_precision(Y, PROBA, precision=target)
    assert got_coverage == pytest.approx(coverage)
    assert got_threshold == pytest.approx(threshold)


def test_coverage_at_precision_unreachable():
    wrong = np.array([1, 0, 0, 0, 1, 0])  # every argmax wrong
    assert coverage_at_precision(wrong, PROBA, 0.5) == (0.0, math.inf)
    assert coverage_at_precision(np.zeros(0, int), np.zeros((0, 3))) == (0.0, math.inf)


def test_figure_model_and_oracle():
    oracle = np.eye(3)[Y] * 0.98 + 0.01  # always right, always confident
    fig = automation_figure({"model": (Y, PROBA), "oracle": (Y, oracle)}, targets=(0.75, 0.95))
    assert plt.get_fignums() == []
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["model (n=6; coverage 83% at 75%, 17% at 95%)",
                      "oracle (n=6; coverage 100% at 75%, 100% at 95%)"]
    model_line, model_marks = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(model_line.get_xdata(), [0, 1 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    np.testing.assert_allclose(model_marks.get_xdata(), [5 / 6, 1 / 6])
    np.testing.assert_allclose(model_marks.get_ydata(), [0.75, 0.95])
    target_lines = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert sorted(line.get_ydata()[0] for line in target_lines) == [0.75, 0.95]
    assert "Coverage" in ax.get_xlabel() and "Precision" in ax.get_ylabel()
    assert ax.get_title()


def test_a_confidence_asks_the_lower_bound_of_the_precision_to_reach_the_target():
    """Clopper-Pearson by hand: n right out of n acted has the one-sided lower bound (1 - c)^(1/n),
    so at 90% confidence 95% needs n >= 45 (0.1^(1/45) = 0.9501) where the point estimate needs 1."""
    confidence = np.r_[np.linspace(0.99, 0.9, 60), np.linspace(0.89, 0.6, 40)]
    proba = np.c_[confidence, 1 - confidence]
    y = np.r_[np.zeros(60, int), np.ones(40, int)]  # the top 60 right, the rest wrong
    assert coverage_at_precision(y, proba, 0.95) == pytest.approx((0.63, confidence[62]))  # 60/63 = 0.952
    coverage, threshold = coverage_at_precision(y, proba, 0.95, confidence=0.9)
    lower = scipy.stats.beta.ppf(0.1, 60, 1)
    assert lower == pytest.approx(0.1 ** (1 / 60)) and coverage == pytest.approx(0.60) and threshold == confidence[59]
    assert coverage_at_precision(y[:44], proba[:44], 0.95, confidence=0.9) == (0.0, math.inf)  # 0.1^(1/44) < 0.95
    assert coverage_at_precision(y[:45], proba[:45], 0.95, confidence=0.9)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="confidence must be in"):
        coverage_at_precision(y, proba, 0.95, confidence=1.0)
