"""Tests of grouped permutation importance with an estimator that looks at one exit code only."""


import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin

from wtc.evaluation.importance import (
    _permute_columns,
    feature_groups,
    importance_figure,
    permutation_importance_by_group,
)

NAMES = [
    "good:50660:T1_US_FNAL",
    "good:50660:T2_US_MIT",
    "bad:50660:T2_US_MIT",
    "good:71304:T1_US_FNAL",
    "bad:8001:T2_CH_CERN",
    "total:errors",
    "campaign:RunIIFall17GS",
]
CODE_50660 = [0, 1, 2]


class Code50660Rule(ClassifierMixin, BaseEstimator):
    """Predicts class 1 exactly when exit code 50660 was thrown anywhere."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X):
        thrown = X[:, CODE_50660].sum(axis=1)
        return (np.asarray(thrown).ravel() > 0).astype(int)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.4, size=(200, len(NAMES))).astype(np.float32)
    dense[:, 6] = rng.integers(0, 2, 200)
    X = sp.csr_matrix(dense)
    model = Code50660Rule().fit(X, None)
    return X, model.predict(X), model  # labels follow the rule: baseline accuracy 1


def test_feature_groups():
    assert {k: v.tolist() for k, v in feature_groups(NAMES, "code").items()} == {
        "50660": [0, 1, 2], "71304": [3], "8001": [4], "total:errors": [5], "campaign:RunIIFall17GS": [6]}
    assert feature_groups(NAMES, "site")["T2_US_MIT"].tolist() == [1, 2]
    assert feature_groups(NAMES, "status")["bad"].tolist() == [2, 4]
    with pytest.raises(ValueError, match="group kind"):
        feature_groups(NAMES, "tier")


def test_permute_columns_keeps_sparse_and_moves_rows_jointly(data):
    X, _, _ = data
    rows = np.random.default_rng(1).permutation(X.shape[0])
    cols = np.array([1, 2])
    permuted = _permute_columns(X, cols, rows)
    assert sp.issparse(permuted) and permuted.format == "csr"
    dense, expected = X.toarray(), X.toarray()
    expected[:, cols] = dense[rows][:, cols]  # the same row permutation for both columns
    np.testing.assert_array_equal(permuted.toarray(), expected)
    np.testing.assert_array_equal(_permute_columns(dense, cols, rows), expected)
    np.testing.assert_array_equal(X.toarray(), dense)  # the input is not touched


def test_only_the_known_code_matters(data):
    X, y, model = data
    table = permutation_importance_by_group(model, X, y, NAMES, scoring="accuracy", n_repeats=3, random_state=0)
    assert list(table.columns) == ["kind", "group", "importance_mean", "importance_std", "n_columns", "nnz"]
    assert table.attrs == {"scoring": "accuracy", "baseline": 1.0}
    codes = table[table["kind"] == "code"].set_index("group")
    assert codes.index[0] == "50660"  # sorted by importance
    assert codes.loc["50660", "importance_mean"] > 0.2
    assert codes.loc["50660", "n_columns"] == 3
    assert (codes.drop(index="50660")["importance_mean"] == 0).all()
    sites = table[table["kind"] == "site"].set_index("group")
    # Both sites holding a 50660 column matter; the one without it and the extras do not.
    assert sites.loc["T1_US_FNAL", "importance_mean"] > 0
    assert sites.loc["T2_US_MIT", "importance_mean"] > 0
    assert sites.loc[["T2_CH_CERN", "total:errors", "campaign:RunIIFall17GS"], "importance_mean"].eq(0).all()


def test_reproducible_and_max_features(data):
    X, y, model = data
    a = permutation_importance_by_group(model, X, y, NAMES, scoring="accuracy", n_repeats=2, random_state=3)
    b = permutation_importance_by_group(model, X.toarray(), y, NAMES, scoring="accuracy", n_repeats=2,
                                        random_state=3)
    np.testing.assert_allclose(a["importance_mean"], b["importance_mean"])  # sparse and dense agree
    top = permutation_importance_by_group(model, X, y, NAMES, groups=("code",), scoring="accuracy",
                                          n_repeats=1, random_state=0, max_features=2)
    nnz = {g: int(X[:, c].nnz) for g, c in feature_groups(NAMES, "code").items()}
    assert set(top["group"]) == set(sorted(nnz, key=lambda g: -nnz[g])[:2])


def test_name_count_mismatch(data):
    X, y, model = data
    with pytest.raises(ValueError, match="feature names"):
        permutation_importance_by_group(model, X, y, NAMES[:-1])


def test_importance_figure(data):
    X, y, model = data
    table = permutation_importance_by_group(model, X, y, NAMES, scoring="accuracy", n_repeats=2, random_state=0)
    fig = importance_figure(table, top=3)
    assert plt.get_fignums() == []
    fig.canvas.draw()
    code_ax, site_ax = fig.axes
    assert code_ax.get_title() == "By code: top 3 of 5" and site_ax.get_title() == "By site: top 3 of 5"
    assert code_ax.get_yticklabels()[0].get_text() == "50660 (3 cols)"
    assert len(code_ax.patches) == 3
    assert code_ax.get_xlabel() == "Drop in accuracy when shuffled"
    assert "baseline accuracy = 1.000" in fig.get_suptitle()
    widths = [p.get_width() for p in code_ax.patches]
    assert widths[0] == pytest.approx(table.iloc[0]["importance_mean"])
