"""Test doubles importable from configs (``_target_: tests.spies.RecordingSampler``, ``tests.spies.RowIdClassifier``)."""

from __future__ import annotations

import numpy as np
from imblearn.base import BaseSampler
from sklearn.base import BaseEstimator, ClassifierMixin

#: Row-id columns of every matrix a RecordingSampler was fitted on, in call order.
SEEN: list[np.ndarray] = []


class RecordingSampler(BaseSampler):
    """Returns its input unchanged and records the row ids it saw (from a given column)."""

    _sampling_type = "bypass"
    _parameter_constraints: dict = {}

    def __init__(self, id_column: int = -1):
        super().__init__()
        self.id_column = id_column

    def _fit_resample(self, X, y):
        column = X[:, self.id_column]
        SEEN.append(np.asarray(column.todense() if hasattr(column, "todense") else column).ravel().copy())
        return X, y


class RowIdClassifier(ClassifierMixin, BaseEstimator):
    """Binary 'model' whose P(class 1) is the row id (last column) over ``scale``: whatever
    receives its probabilities (a calibrator) can tell which rows they came from."""

    def __init__(self, scale: float = 1e6):
        self.scale = scale

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        column = X[:, -1]
        ids = np.asarray(column.todense() if hasattr(column, "todense") else column, dtype=float).ravel()
        p = ids / self.scale
        return np.column_stack([1 - p, p])


def ids_of(proba, scale: float = 1e6) -> np.ndarray:
    """The row ids behind a RowIdClassifier's probabilities."""
    return np.rint(np.asarray(proba)[:, 1] * scale)
