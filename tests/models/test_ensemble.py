"""AveragingClassifier: the mean of its members' probabilities, aligned on classes, and it pickles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from wtc.models import AveragingClassifier


def problem(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.digitize(X[:, 0] + 0.5 * rng.normal(size=n), [-0.5, 0.5])
    return X, y


def test_fit_averages_the_members_probabilities():
    X, y = problem()
    members = [LogisticRegression(), DecisionTreeClassifier(max_depth=3, random_state=0)]
    model = AveragingClassifier(members, weights=[3, 1]).fit(X, y)
    expected = 0.75 * model.estimators_[0].predict_proba(X) + 0.25 * model.estimators_[1].predict_proba(X)
    np.testing.assert_allclose(model.predict_proba(X), expected)
    assert (model.predict(X) == expected.argmax(axis=1)).all()


def test_from_fitted_aligns_members_that_missed_a_class_and_pickles():
    X, y = problem()
    full = LogisticRegression().fit(X, y)
    without_2 = LogisticRegression().fit(X[y < 2], y[y < 2])
    model = AveragingClassifier.from_fitted([full, without_2], classes=[0, 1, 2])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 2], full.predict_proba(X)[:, 2] / 2)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X), proba)


def test_bad_members_or_weights_are_one_clear_error():
    X, y = problem()
    with pytest.raises(ValueError, match="at least one"):
        AveragingClassifier([]).fit(X, y)
    with pytest.raises(ValueError, match="weights must be 2"):
        AveragingClassifier([LogisticRegression(), LogisticRegression()], weights=[1]).fit(X, y)
