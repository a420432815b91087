"""Probability calibration fitted on out-of-fold predictions: one calibrator class per method
(temperature, sigmoid, isotonic), and the classifier that wraps a model with one."""

from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.models.base import ProbabilisticClassifierMixin
from wtc.models.pipeline import full_proba

__all__ = ["CalibratedClassifier", "IdentityCalibrator", "IsotonicCalibrator", "ProbabilityCalibrator",
           "SigmoidCalibrator", "TemperatureCalibrator"]

# Probabilities are clipped here before logs and after calibration: an isotonic step at exactly
# 0 would make one surprising test task cost an infinite log-loss.
_EPS = 1e-6


def _clip_normalise(proba: np.ndarray) -> np.ndarray:
    proba = np.clip(proba, _EPS, 1.0)
    return proba / proba.sum(axis=1, keepdims=True)


def _log_loss(y: np.ndarray, log_proba: np.ndarray) -> float:
    return float(-log_proba[np.arange(y.size), y].mean())


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-np.minimum(p, 1 - _EPS))


class ProbabilityCalibrator:
    """Maps a model's class probabilities to calibrated ones; fitted on (probabilities, labels).

    One subclass per method: a ``calibration`` config option names it (``_target_``), and its
    ``method`` is the option's logged name (``calibration``). Subclasses implement ``_fit`` and
    ``_transform`` on clipped, renormalised probabilities.

    Attributes
    ----------
    n_classes_ : int
        Columns of the probabilities it was fitted on.
    metrics : dict
        What was fitted, for the run's ``calibration/<name>`` metrics (e.g. the temperature).
    """

    #: The logged name of the method (``calibration``).
    method: ClassVar[str]

    def fit(self, proba, y) -> ProbabilityCalibrator:
        """Fit the map from ``proba`` (n_rows × n_classes; rows sum to 1) to the labels ``y`` (0..n_classes-1)."""
        proba, y = _clip_normalise(np.asarray(proba, dtype=np.float64)), np.asarray(y, dtype=np.int64)
        if proba.ndim != 2 or proba.shape[0] != y.size or proba.shape[1] < 2:
            raise ValueError(f"proba must have shape ({y.size}, n_classes >= 2), got {proba.shape}")
        self.n_classes_ = proba.shape[1]
        self._fit(proba, y)
        return self

    def transform(self, proba) -> np.ndarray:
        """Calibrated probabilities (rows sum to 1) of ``proba`` (n_rows × n_classes)."""
        proba = _clip_normalise(np.asarray(proba, dtype=np.float64))
        if proba.shape[1] != self.n_classes_:
            raise ValueError(f"proba has {proba.shape[1]} columns; the calibrator was fitted on {self.n_classes_}")
        return self._transform(proba)

    @property
    def metrics(self) -> dict[str, float]:
        return {}

    def _fit(self, proba: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, proba: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __setstate__(self, state: dict) -> None:
        # A model logged by an older wtc pickled a ProbabilityCalibrator naming its method: it
        # becomes the calibrator class of that method, so stored models keep predicting.
        method = state.pop("method", None) if type(self) is ProbabilityCalibrator else None
        if method is not None:
            self.__class__ = next(c for c in _subclasses(ProbabilityCalibrator) if getattr(c, "method", None) == method)
        self.__dict__.update(state)


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


class IdentityCalibrator(ProbabilityCalibrator):
    """No map: the probabilities as they are (clipped and renormalised). What a
    :class:`CalibratedClassifier` keeps when a class has too few rows to calibrate."""

    method = "none"

    def _fit(self, proba, y) -> None:
        pass

    def _transform(self, proba) -> np.ndarray:
        return proba


class TemperatureCalibrator(ProbabilityCalibrator):
    """Temperature scaling: the log-probabilities divided by one temperature ``T`` (chosen by
    ``scipy.optimize.minimize_scalar`` on the log-loss), then the softmax. One parameter for
    every class, so the ranking never changes.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature (> 1 softens over-confident predictions); logged as
        ``calibration/temperature``.
    """

    method = "temperature"

    def _fit(self, proba, y) -> None:
        logits = np.log(proba)

        def loss(log_t: float) -> float:
            return _log_loss(y, log_softmax(logits / np.exp(log_t), axis=1))

        # T in [e^-4, e^4]: wide enough for any boosted model, narrow enough to stay finite.
        self.temperature_ = float(np.exp(minimize_scalar(loss, bounds=(-4.0, 4.0), method="bounded").x))

    def _transform(self, proba) -> np.ndarray:
        return np.exp(log_softmax(np.log(proba) / self.temperature_, axis=1))

    @property
    def metrics(self) -> dict[str, float]:
        return {"temperature": self.temperature_}


class _OneVsRestCalibrator(ProbabilityCalibrator):
    """One map per class, one-vs-rest, then each row renormalised; a binary problem fits one map
    for the second class. A class the labels never show (or always show) keeps its probability.

    Attributes
    ----------
    maps_ : list
        One fitted map per calibrated class, or None for a class kept as it is.
    """

    def _fit(self, proba, y) -> None:
        columns = [1] if self.n_classes_ == 2 else range(self.n_classes_)
        self.maps_ = [self._fit_map(proba[:, k], (y == k).astype(int)) for k in columns]

    def _fit_map(self, p: np.ndarray, hit: np.ndarray):
        if hit.min() == hit.max():  # the class never (or always) occurs: nothing to learn
            return None
        return self._fit_one(p, hit)

    def _transform(self, proba) -> np.ndarray:
        out = proba.copy()
        if self.n_classes_ == 2:
            out[:, 1] = self._apply(self.maps_[0], proba[:, 1])
            out[:, 0] = 1.0 - out[:, 1]
        else:
            for k, model in enumerate(self.maps_):
                out[:, k] = self._apply(model, proba[:, k])
        return _clip_normalise(out)

    def _apply(self, model, p: np.ndarray) -> np.ndarray:
        return p if model is None else self._apply_one(model, p)

    def _fit_one(self, p: np.ndarray, hit: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_one(self, model, p: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class SigmoidCalibrator(_OneVsRestCalibrator):
    """Platt scaling one-vs-rest: a logistic regression on each class's log-odds, rows renormalised."""

    method = "sigmoid"

    def _fit_one(self, p, hit):
        return LogisticRegression(C=1e4).fit(_logit(p)[:, None], hit)

    def _apply_one(self, model, p):
        return model.predict_proba(_logit(p)[:, None])[:, 1]


class IsotonicCalibrator(_OneVsRestCalibrator):
    """``sklearn.isotonic.IsotonicRegression`` on each class's probability one-vs-rest, rows
    renormalised. Needs many rows per class."""

    method = "isotonic"

    def _fit_one(self, p, hit):
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, hit)

    def _apply_one(self, model, p):
        return model.predict(p)


class CalibratedClassifier(ProbabilisticClassifierMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier whose probabilities pass through a :class:`ProbabilityCalibrator`.

    ``fit(X, y)`` collects out-of-fold probabilities of ``estimator`` over ``cv`` stratified
    folds of the rows it is given, fits the calibrator on them, and fits the estimator on every
    row. A run builds it with :meth:`from_predictions` instead, from the model it refitted and
    the out-of-fold predictions its search already made (never from test rows).

    Parameters
    ----------
    estimator : classifier with ``predict_proba``
    calibrator : ProbabilityCalibrator, optional
        The unfitted calibrator (copied before it is fitted); None: a :class:`TemperatureCalibrator`.
    cv : int, default 5
        Folds for the out-of-fold probabilities (fewer when the rarest class has fewer rows;
        with under 2 rows in a class the calibrator is left as the identity).
    random_state : int, RandomState or None
        Shuffles the folds.

    Attributes
    ----------
    estimator_ : the fitted classifier
    calibrator_ : ProbabilityCalibrator
    classes_ : ndarray
    n_features_in_ : int
    """

    def __init__(self, estimator=None, calibrator=None, cv=5, random_state=None):
        self.estimator = estimator
        self.calibrator = calibrator
        self.cv = cv
        self.random_state = random_state

    @classmethod
    def from_predictions(cls, fitted, y_oof, proba_oof, calibrator: ProbabilityCalibrator) -> CalibratedClassifier:
        """A fitted instance over an already fitted classifier, calibrated on out-of-fold predictions.

        Parameters
        ----------
        fitted : fitted classifier
            Its ``predict_proba`` columns are the classes ``0 .. n_classes - 1`` (the run's
            encoded labels), all of them: see :func:`wtc.models.pipeline.full_proba`.
        y_oof : array of int
            Labels of the out-of-fold rows.
        proba_oof : array, shape (len(y_oof), n_classes)
            Out-of-fold probabilities of the same rows (e.g. the best trial's fold predictions).
        calibrator : ProbabilityCalibrator
            Unfitted; a copy of it is fitted.
        """
        model = cls(fitted, calibrator=calibrator)
        model.estimator_ = fitted
        model.calibrator_ = copy.deepcopy(calibrator).fit(proba_oof, y_oof)
        model.classes_ = np.arange(model.calibrator_.n_classes_)
        if hasattr(fitted, "n_features_in_"):
            model.n_features_in_ = fitted.n_features_in_
        return model

    def fit(self, X, y):
        """Fit the estimator on all rows and the calibrator on its out-of-fold probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        if self.estimator is None:
            raise ValueError("CalibratedClassifier needs an estimator")
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"))
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            raise ValueError(f"a classifier needs at least 2 classes in y; got the one class {self.classes_[0]!r}")
        encoded = encoder.transform(y)
        n_folds = min(int(self.cv), int(np.bincount(encoded).min()))
        calibrator = IdentityCalibrator()
        proba = np.tile(np.bincount(encoded) / encoded.size, (encoded.size, 1))
        if n_folds >= 2:
            calibrator = self.new_calibrator()
            folds = StratifiedKFold(n_folds, shuffle=True, random_state=self.random_state)
            proba = cross_val_predict(clone(self.estimator), X, encoded, cv=folds, method="predict_proba")
        self.calibrator_ = calibrator.fit(proba, encoded)
        self.estimator_ = clone(self.estimator).fit(X, encoded)
        return self

    def new_calibrator(self):
        """An unfitted copy of the calibrator this model fits on out-of-fold rows (temperature scaling when
        ``calibrator`` is None)."""
        return copy.deepcopy(self.calibrator) if self.calibrator is not None else TemperatureCalibrator()

    def predict_proba(self, X):
        """Calibrated class probabilities, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), reset=False)
        # The estimator predicts encoded labels; a class it never saw gets a zero column.
        return self.calibrator_.transform(full_proba(self.estimator_, X, self.classes_.size))

    def __setstate__(self, state: dict) -> None:
        # A model logged by an older wtc named its calibration ``method``; its fitted calibrator
        # (see ProbabilityCalibrator.__setstate__) tells which.
        if "method" in state and "calibrator" not in state:
            state.pop("method")
            fitted = state.get("calibrator_")
            state["calibrator"] = type(fitted)() if fitted is not None else None
        super().__setstate__(state)
