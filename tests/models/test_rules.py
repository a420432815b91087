"""Tests of the WTC-procedures baseline: dominant exit code -> procedure -> class mix."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from wtc.models.rules import (
    PROCEDURES,
    RulesClassifier,
    procedure_of_code,
    procedure_of_response,
)

COLUMNS = [
    "good:50660:T1_US_FNAL",  # memory: "more memory"
    "bad:50660:T2_DE_DESY",
    "bad:71304:T2_DE_DESY",  # time, its own response: "acdc"
    "bad:134:T2_US_MIT",  # crash: "report immediately"
    "bad:99999:T2_US_MIT",  # unknown: default acdc
    "campaign:RunIIFall17",  # context columns, never codes
    "tasktype:Merge",
    "total:errors",
    "n:sites",
]


def matrix(rows):
    return sp.csr_matrix(np.asarray(rows, dtype=np.float32))


@pytest.mark.parametrize(
    "code, procedure",
    [
        (50660, "acdc_memory"),  # usual_response "more memory"
        ("71304", "acdc"),  # time code whose own response is plain acdc
        (50664, "acdc_split"),  # time code without a response: category default
        (134, "report"),  # "report immediately"
        (73, "report"),  # "report (open a software issue)"
        (137, "site_support"),  # "site support: drain the site"
        (8004, "site_support"),  # memory code, but the procedure says report to site support
        (99109, "acdc_if_temporary"),  # "check site readiness; acdc if temporary"
        (61202, "acdc_if_temporary"),
        (84, "acdc"),
        (123456, "acdc"),  # not in the vocabulary at all
    ],
)
def test_procedure_of_code_follows_the_vocabulary(code, procedure):
    assert procedure_of_code(code) == procedure


def test_every_vocabulary_code_has_a_procedure():
    from wtc.data.vocabulary import cms_vocabulary

    procedures = {procedure_of_code(code) for code in cms_vocabulary()["exit_codes"]}
    assert procedures <= set(PROCEDURES) - {"no_errors"}
    assert len(procedures) >= 5  # the buckets actually discriminate


def test_procedure_of_response_rejects_unknown_text():
    with pytest.raises(ValueError, match="no procedure bucket"):
        procedure_of_response("pray")


def test_dominant_code_sums_over_statuses_and_sites():
    X = matrix(
        [
            # 50660: 3+3=6 over two sites/statuses beats 71304's single 5
            [3, 3, 5, 0, 0, 1, 0, 11, 2],
            [0, 0, 0, 4, 1, 1, 1, 5, 1],  # 134 -> report
            [0, 0, 0, 0, 0, 1, 1, 0, 0],  # only context columns: no errors
            [0, 0, 2, 2, 0, 0, 0, 4, 1],  # tie 134 vs 71304: lowest code (134) wins
        ]
    )
    model = RulesClassifier(feature_names=COLUMNS).fit(X, ["a", "b", "a", "b"])
    assert list(model.procedures(X)) == ["acdc_memory", "report", "no_errors", "report"]
    assert model.codes_ == ["134", "50660", "71304", "99999"]


def test_class_mix_is_laplace_smoothed_and_empty_rows_get_the_prior():
    X = matrix(
        [
            [5, 0, 0, 0, 0, 0, 0, 0, 0],  # memory
            [5, 0, 0, 0, 0, 0, 0, 0, 0],  # memory
            [9, 0, 0, 0, 0, 0, 0, 0, 0],  # memory
            [0, 0, 4, 0, 0, 0, 0, 0, 0],  # acdc
            [0, 0, 0, 0, 0, 0, 0, 0, 0],  # no errors
        ]
    )
    y = np.array(["acdc", "acdc", "clone", "special", "acdc"])
    model = RulesClassifier(feature_names=COLUMNS).fit(X, y)
    assert list(model.classes_) == ["acdc", "clone", "special"]
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba[0], [3 / 6, 2 / 6, 1 / 6])  # (2, 1, 0) + 1
    np.testing.assert_allclose(proba[3], [1 / 4, 1 / 4, 2 / 4])  # (0, 0, 1) + 1
    np.testing.assert_allclose(proba[4], [3 / 5, 1 / 5, 1 / 5])  # the prior
    assert list(model.predict(X)) == ["acdc", "acdc", "acdc", "special", "acdc"]
    assert model.procedure_counts_ == {"acdc": 1, "acdc_memory": 3, "no_errors": 1}


def test_procedure_unseen_in_training_gets_the_prior():
    train = matrix([[5, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 4, 0, 0, 0, 0, 0, 0]])
    model = RulesClassifier(feature_names=COLUMNS).fit(train, [1, 0])
    crash = matrix([[0, 0, 0, 7, 0, 0, 0, 0, 0]])
    np.testing.assert_allclose(model.predict_proba(crash), [[0.5, 0.5]])


def test_learns_any_target_the_procedure_explains():
    # A target the twiki predicts: memory errors were answered with more memory.
    rng = np.random.default_rng(0)
    n = 400
    memory = rng.uniform(size=n) < 0.5
    rows = np.zeros((n, len(COLUMNS)), dtype=np.float32)
    rows[memory, 1] = rng.integers(5, 50, memory.sum())
    rows[~memory, 2] = rng.integers(5, 50, (~memory).sum())
    rows[:, 2] += rng.integers(0, 3, n)  # some time-outs everywhere, rarely dominant
    y = np.where(memory, "6-10GB", "unset")
    model = RulesClassifier(feature_names=COLUMNS).fit(matrix(rows), y)
    assert (model.predict(matrix(rows)) == y).mean() > 0.95


@pytest.mark.parametrize("view", ["codes", "tiers"])
def test_aggregated_views_parse(view):
    site = {"codes": "*", "tiers": "T2"}[view]
    columns = [f"bad:50660:{site}", f"bad:134:{site}", "total:errors"]
    X = matrix([[4, 1, 5], [0, 3, 3]])
    model = RulesClassifier(feature_names=columns).fit(X, [0, 1])
    assert list(model.procedures(X)) == ["acdc_memory", "report"]


def test_dataframe_column_names_are_used():
    X = pd.DataFrame([[5, 0, 0, 0, 0, 0, 0, 5, 1], [0, 0, 0, 3, 0, 0, 0, 3, 1]], columns=COLUMNS)
    model = RulesClassifier().fit(X, [0, 1])
    assert list(model.feature_names_in_) == COLUMNS
    assert list(model.predict(X)) == [0, 1]


def test_dense_and_sparse_agree():
    dense = np.array([[5, 0, 0, 0, 0, 0, 0, 5, 1], [0, 0, 1, 3, 0, 0, 0, 4, 2]], dtype=float)
    a = RulesClassifier(feature_names=COLUMNS).fit(dense, [0, 1]).predict_proba(dense)
    b = RulesClassifier(feature_names=COLUMNS).fit(sp.csr_matrix(dense), [0, 1]).predict_proba(sp.csr_matrix(dense))
    np.testing.assert_allclose(a, b)


def test_without_column_names_no_column_is_an_exit_code():
    model = RulesClassifier().fit(matrix([[5, 0, 0], [0, 3, 0], [0, 0, 1]]), [0, 1, 1])
    assert model.codes_ == []
    np.testing.assert_allclose(model.predict_proba(np.eye(3)), [[1 / 3, 2 / 3]] * 3)
    with pytest.raises(ValueError, match="2 names but X has 3 columns"):
        RulesClassifier(feature_names=["bad:1:x", "bad:2:x"]).fit(np.ones((2, 3)), [0, 1])


def test_no_error_columns_at_all_predicts_the_prior():
    model = RulesClassifier(feature_names=["campaign:X", "n:sites"]).fit(np.ones((3, 2)), [0, 0, 1])
    np.testing.assert_allclose(model.predict_proba(np.ones((2, 2))), [[2 / 3, 1 / 3]] * 2)


def test_contract_clone_pickle_unfitted():
    model = RulesClassifier(feature_names=COLUMNS, alpha=0.5)
    assert clone(model).get_params() == {"feature_names": COLUMNS, "alpha": 0.5}
    X = matrix([[5, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 3, 0, 0, 0, 0, 0]])
    with pytest.raises(NotFittedError):
        model.predict(X)
    model.fit(X, [0, 1])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
    with pytest.raises(ValueError, match="features"):
        model.predict(np.ones((1, 4)))
