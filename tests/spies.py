"""Test doubles, importable from configs (``_target_: tests.spies.RecordingSampler``, ``tests.spies.RowIdClassifier``,
``tests.spies.RecordingLGBM``) and shared by the test modules that use them."""

from __future__ import annotations

import lightgbm
import msgspec
import numpy as np
import scipy.sparse as sp
import xgboost
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


# --------------------------------------------------------------------------- boosters that record their rows
#: (row ids fitted on, row ids of the eval set) of every fit of a recording booster, in order.
BOOSTER_FITS: list[tuple[np.ndarray, np.ndarray]] = []


def row_ids(X) -> np.ndarray:
    """The last column of a matrix: the row ids a recording double reads."""
    column = X[:, -1]
    return np.asarray(column.todense() if sp.issparse(column) else column).ravel().copy()


class RecordingLGBM(lightgbm.LGBMClassifier):
    """LightGBM that records the row ids (last column) it trains and early-stops on."""

    def fit(self, X, y, **kwargs):
        eval_X = kwargs.get("eval_X")
        BOOSTER_FITS.append((row_ids(X), row_ids(eval_X) if eval_X is not None else np.zeros(0)))
        return super().fit(X, y, **kwargs)


class RecordingXGB(xgboost.XGBClassifier):
    """XGBoost that records the row ids (last column) it trains and early-stops on."""

    def fit(self, X, y, **kwargs):
        eval_set = kwargs.get("eval_set")
        BOOSTER_FITS.append((row_ids(X), row_ids(eval_set[0][0]) if eval_set else np.zeros(0)))
        return super().fit(X, y, **kwargs)


def noisy_problem(n=600, n_classes=2, seed=0):
    """Rows whose label depends on 2 of 10 columns plus noise: boosting overfits late."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=1.5, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    ids = np.arange(1, n + 1, dtype=float)[:, None]  # last column: the row id
    return sp.csr_matrix(np.hstack([X, ids])), y


def lgbm(cls=lightgbm.LGBMClassifier, **kw):
    return cls(**{"n_estimators": 400, "learning_rate": 0.2, "num_leaves": 15, "n_jobs": 1, "verbose": -1, **kw})


def xgb(cls=xgboost.XGBClassifier, **kw):
    return cls(**{"n_estimators": 400, "learning_rate": 0.2, "max_depth": 4, "n_jobs": 1, **kw})


# --------------------------------------------------------------------------- the history loader
class BrokenDecoder:
    """Stands in for the loader's typed decoder so that every load takes the careful, per-task path."""

    def decode(self, raw):
        raise msgspec.DecodeError("forced")
