"""A two-stage cascade: one class (acdc) against the rest, then a multi-class model over the rest."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.models.base import ProbabilisticClassifierMixin

__all__ = ["CascadeClassifier"]


class CascadeClassifier(ProbabilisticClassifierMixin, ClassifierMixin, BaseEstimator):
    """Stage 1 tells ``first_class`` from the rest; stage 2 chooses among the rest.

    The operators' first question is "a plain acdc or not?", and acdc dominates the history:
    a binary model sees every task for that question, while the multi-class stage is trained
    only on the tasks that were not ``first_class``, so the rare actions are not drowned by
    it. The probabilities combine as ``P(first) = p1`` and ``P(c) = (1 - p1) * p2(c)``.

    Parameters
    ----------
    first : estimator or None
        Binary classifier with ``predict_proba`` (stage 1); ``LogisticRegression`` when None.
        Each stage is cloned before fitting; search spaces reach it as ``first__<param>``.
    second : estimator or None
        Multi-class classifier with ``predict_proba`` (stage 2, the other classes only);
        ``LogisticRegression`` when None. Search spaces reach it as ``second__<param>``.
    first_class : label or None
        The class of stage 1, as it appears in ``y`` (in a wtc run ``y`` holds class indices,
        so this is the index of e.g. ``acdc`` in the target's class order). None (default):
        the most frequent class of the training labels (ties: the smallest label).

    Attributes
    ----------
    classes_ : ndarray
        Class labels, sorted.
    first_class_ : label
        The stage-1 class actually used.
    first_ : estimator or None
        Fitted stage 1 (None when the training labels lack ``first_class``: then ``p1 = 0``).
    second_ : estimator or None
        Fitted stage 2 (None when the other classes are a single class: then ``p2 = 1``).
    rest_ : ndarray
        The labels stage 2 chooses among, in the order of its probability columns.
    n_features_in_ : int
        Number of columns.

    Notes
    -----
    Stages are trained on re-encoded labels (stage 1 on 0/1, stage 2 on 0..m-1), so
    estimators that demand contiguous integer labels (XGBoost) work as stages whatever
    labels the cascade is given.
    """

    def __init__(self, first=None, second=None, first_class=None):
        self.first = first
        self.second = second
        self.first_class = first_class

    def fit(self, X, y):
        """Fit stage 1 on every row and stage 2 on the rows not of ``first_class``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", reset=True)
        check_classification_targets(y)
        return self._fit(X, y)

    def _stage(self, estimator):
        return clone(estimator) if estimator is not None else LogisticRegression(max_iter=1000)

    def _fit(self, X, y):
        self.classes_, counts = np.unique(y, return_counts=True)
        if self.classes_.size < 2:
            raise ValueError(f"CascadeClassifier needs at least 2 classes; got {self.classes_.size} class")
        if self.first_class is None:
            self.first_class_ = self.classes_[np.argmax(counts)]
        else:
            self.first_class_ = self.first_class
        is_first = y == self.first_class_
        if is_first.any():
            self.first_ = self._stage(self.first).fit(X, is_first.astype(np.int64))
        else:
            # A CV fold without the first class has nothing to tell apart: p1 = 0.
            self.first_ = None
        self.rest_ = np.array([c for c in self.classes_ if c != self.first_class_], dtype=self.classes_.dtype)
        rest_rows = ~is_first
        if self.rest_.size >= 2:
            rest_index = np.searchsorted(self.rest_, y[rest_rows])
            self.second_ = self._stage(self.second).fit(X[rest_rows], rest_index)
        else:
            self.second_ = None
        return self

    def _p_first(self, X) -> np.ndarray:
        if self.first_ is None:  # the training labels lacked first_class: it gets no probability
            return np.zeros(X.shape[0])
        proba = self.first_.predict_proba(X)
        return np.asarray(proba[:, list(self.first_.classes_).index(1)], dtype=np.float64)

    def predict_proba(self, X):
        """Class probabilities: ``p1`` for ``first_class``, ``(1 - p1) * p2(c)`` for the others.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes), rows summing to one
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        n = X.shape[0]
        proba = np.zeros((n, self.classes_.size))
        p1 = self._p_first(X)
        first_col = np.searchsorted(self.classes_, self.first_class_)
        has_first = first_col < self.classes_.size and self.classes_[first_col] == self.first_class_
        if has_first:
            proba[:, first_col] = p1
        rest_cols = np.searchsorted(self.classes_, self.rest_)
        if self.second_ is not None:
            p2 = np.zeros((n, self.rest_.size))
            p2[:, np.asarray(self.second_.classes_, dtype=np.int64)] = self.second_.predict_proba(X)
            # Stages may answer in float32 (rows off one by ~1e-7): renormalise in float64.
            p2 /= np.maximum(p2.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        else:
            p2 = np.ones((n, self.rest_.size))
        proba[:, rest_cols] = (1.0 - p1)[:, None] * p2
        return proba
