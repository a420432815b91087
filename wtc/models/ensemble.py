"""An ensemble that averages the class probabilities of several classifiers (fitted here or already fitted)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.models.base import ProbabilisticClassifierMixin

__all__ = ["AveragingClassifier"]


def _aligned(member, X, classes: np.ndarray) -> np.ndarray:
    """A member's probabilities over ``classes`` (a class it never saw gets a zero column)."""
    proba = member.predict_proba(X)
    own = np.asarray(member.classes_)
    if own.size == classes.size and np.array_equal(own, classes):
        return proba
    full = np.zeros((proba.shape[0], classes.size))
    full[:, np.searchsorted(classes, own)] = proba
    return full


class AveragingClassifier(ProbabilisticClassifierMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """The (weighted) mean of its members' class probabilities.

    ``fit(X, y)`` fits a clone of every member on the same rows (a soft-voting ensemble). A
    run builds it with :meth:`from_fitted` instead, over members it already fitted on other
    rows: the models of the best trial's CV folds (bagging over folds), or the refits of the
    best trials. Members may have seen different classes; their columns are aligned on
    ``classes_`` (a member that never saw a class gives it probability 0).

    Parameters
    ----------
    estimators : list of classifiers with ``predict_proba``
    weights : list of float, optional
        One weight per member (normalised); equal weights by default.

    Attributes
    ----------
    estimators_ : list of fitted classifiers
    classes_ : ndarray
    n_features_in_ : int
    """

    def __init__(self, estimators=None, weights=None):
        self.estimators = estimators
        self.weights = weights

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = all(get_tags(e).input_tags.sparse for e in self.estimators or [])
        return tags

    def _weights(self) -> np.ndarray:
        n = len(self.estimators_)
        if self.weights is None:
            return np.full(n, 1.0 / n)
        weights = np.asarray(self.weights, dtype=np.float64)
        if weights.shape != (n,) or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"weights must be {n} non-negative numbers, not all zero; got {self.weights!r}")
        return weights / weights.sum()

    @classmethod
    def from_fitted(cls, estimators: list, classes, weights=None) -> AveragingClassifier:
        """A fitted ensemble over already fitted members.

        Parameters
        ----------
        estimators : list of fitted classifiers
        classes : array-like
            Every class the ensemble predicts (a member's ``classes_`` are a subset of them).
        weights : list of float, optional
        """
        if not estimators:
            raise ValueError("an ensemble needs at least one member")
        model = cls(list(estimators), weights)
        model.estimators_ = list(estimators)
        model.classes_ = np.asarray(classes)
        model._weights()
        n_features = {getattr(e, "n_features_in_", None) for e in estimators}
        if len(n_features) == 1 and None not in n_features:
            model.n_features_in_ = n_features.pop()
        return model

    def fit(self, X, y):
        """Fit a clone of every member on ``X, y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        if not self.estimators:
            raise ValueError("AveragingClassifier needs at least one estimator")
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"))
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if encoder.classes_.size < 2:
            raise ValueError(f"a classifier needs at least 2 classes in y; got the one class {encoder.classes_[0]!r}")
        self.classes_ = encoder.classes_
        self.estimators_ = [clone(e).fit(X, y) for e in self.estimators]
        self._weights()
        return self

    def predict_proba(self, X):
        """The weighted mean of the members' probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), reset=False)
        weights = self._weights()
        return sum(w * _aligned(m, X, self.classes_) for w, m in zip(weights, self.estimators_))
