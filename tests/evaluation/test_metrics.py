"""Tests of the metric registry, score sets and the over-training check."""

import math
import warnings

import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from wtc.evaluation import METRICS, ks_statistic, objective_value, score_all

EXPECTED_KEYS = {"roc_auc", "log_loss", "accuracy", "precision", "recall", "f1_weighted", "f1_macro", "gmean"}


@pytest.fixture
def multiclass():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), y] += 1.5  # informative but imperfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def test_registry_directions():
    assert set(METRICS) == {"roc_auc", "log_loss", "f1_weighted", "gmean"}
    assert METRICS["log_loss"].direction == "minimise"
    assert all(METRICS[m].direction == "maximise" for m in ("roc_auc", "f1_weighted", "gmean"))


def test_binary_scores_match_sklearn():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p1 = np.array([0.1, 0.6, 0.8, 0.7, 0.4, 0.2, 0.9, 0.3])
    proba = np.column_stack([1 - p1, p1])
    scores = score_all(y, proba, 2)
    assert set(scores) == EXPECTED_KEYS
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(y, p1))
    assert scores["log_loss"] == pytest.approx(log_loss(y, proba))
    y_pred = (p1 > 0.5).astype(int)
    assert scores["accuracy"] == pytest.approx(np.mean(y_pred == y))
    assert scores["gmean"] == pytest.approx(geometric_mean_score(y, y_pred))
    assert all(isinstance(v, float) for v in scores.values())


def test_multiclass_auc_is_macro_ovr_when_all_present(multiclass):
    y, proba = multiclass
    scores = score_all(y, proba, 4)
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert scores["f1_weighted"] == pytest.approx(f1_score(y, proba.argmax(1), average="weighted"))
    assert scores["gmean"] == pytest.approx(
        geometric_mean_score(y, proba.argmax(1), average="multiclass")
    )


def test_multiclass_auc_only_over_present_classes(multiclass):
    y, proba = multiclass
    keep = y != 2  # class 2 absent from y_true: its AUC is undefined and must not count
    y, proba = y[keep], proba[keep]
    expected = np.mean([roc_auc_score(y == k, proba[:, k]) for k in (0, 1, 3)])
    assert score_all(y, proba, 4)["roc_auc"] == pytest.approx(expected)


def test_gmean_not_zeroed_by_a_predicted_class_absent_from_y_true(multiclass):
    y, proba = multiclass
    keep = y != 2
    scores = score_all(y[keep], proba[keep], 4)
    assert (proba[keep].argmax(1) == 2).any()  # the model does predict the absent class
    assert scores["gmean"] > 0


def test_single_class_present_gives_nan_auc_and_no_warning():
    y = np.zeros(5, dtype=int)
    proba = np.tile([0.7, 0.2, 0.1], (5, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_all(y, proba, 3)
    assert math.isnan(scores["roc_auc"])
    assert scores["accuracy"] == 1.0


def test_log_loss_is_finite_for_confident_misses():
    y = np.array([0, 1, 2])
    proba = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    value = score_all(y, proba, 3)["log_loss"]
    assert math.isfinite(value) and value > 10


def test_log_loss_counts_every_class_even_if_unseen():
    # labels=range(n_classes): a 3-class model scored on a fold holding 2 classes.
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.2, 0.7, 0.1]])
    assert score_all(y, proba, 3)["log_loss"] == pytest.approx(log_loss(y, proba, labels=[0, 1, 2]))


@pytest.mark.parametrize(
    "y, proba, n_classes",
    [
        ([0, 1], [[0.5, 0.5]], 2),  # rows differ
        ([0, 1], [[0.5, 0.5], [0.5, 0.5]], 3),  # columns differ from n_classes
        ([0, 3], [[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], 3),  # label out of range
    ],
)
def test_score_all_rejects_bad_shapes(y, proba, n_classes):
    with pytest.raises(ValueError):
        score_all(y, proba, n_classes)


def test_objective_value_signs():
    scores = {"roc_auc": 0.8, "log_loss": 0.4, "f1_weighted": 0.7, "gmean": 0.6}
    assert objective_value("roc_auc", scores) == -0.8
    assert objective_value("log_loss", scores) == 0.4
    assert objective_value("gmean", scores) == -0.6


def test_objective_value_unknown_metric_lists_valid_ones():
    with pytest.raises(ValueError, match="roc_auc.*log_loss.*f1_weighted.*gmean"):
        objective_value("accuracy_typo", {"accuracy_typo": 1.0})


def test_ks_statistic_binary_and_multiclass():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=300)
    binary = np.column_stack([1 - p, p])
    assert ks_statistic(binary, binary) == 0.0
    low = np.column_stack([1 - p * 0.4, p * 0.4])  # positive scores all < 0.4
    high = np.column_stack([0.4 - p * 0.4, 0.6 + p * 0.4])  # all > 0.6
    assert ks_statistic(low, high) == 1.0
    # Multi-class compares the top-class probability.
    confident = np.tile([0.9, 0.05, 0.05], (50, 1))
    unsure = np.tile([0.4, 0.3, 0.3], (50, 1))
    assert ks_statistic(confident, unsure) == 1.0


def test_ks_statistic_rejects_mismatched_classes():
    with pytest.raises(ValueError):
        ks_statistic(np.full((3, 2), 0.5), np.full((3, 3), 1 / 3))


@pytest.mark.parametrize("seed", range(6))
def test_score_all_counts_the_class_scores_once_with_sklearns_values(seed):
    """precision, recall, f1_weighted and f1_macro come from one per-class count: exactly the
    values of the four scikit-learn calls, also with a class absent from y_true or never predicted."""
    from sklearn.metrics import precision_score, recall_score

    rng = np.random.default_rng(seed)
    n_classes = 2 + seed % 3
    y = rng.integers(0, n_classes, 200)
    if seed % 2:
        y = np.minimum(y, n_classes - 2)  # the last class never true
    proba = rng.dirichlet(np.ones(n_classes), 200)
    proba[:, 0] *= seed % 3 != 0  # class 0 never predicted in some cases
    proba /= proba.sum(axis=1, keepdims=True)
    y_pred = proba.argmax(axis=1)
    scores = score_all(y, proba, n_classes)
    assert scores["precision"] == precision_score(y, y_pred, average="weighted", zero_division=0)
    assert scores["recall"] == recall_score(y, y_pred, average="weighted", zero_division=0)
    assert scores["f1_weighted"] == f1_score(y, y_pred, average="weighted", zero_division=0)
    assert scores["f1_macro"] == f1_score(y, y_pred, average="macro", zero_division=0)
