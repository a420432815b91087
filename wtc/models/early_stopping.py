"""Early stopping for boosted trees on an inner split of the rows a fit is given, never anyone else's."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.models.base import ProbabilisticClassifierMixin

__all__ = ["EarlyStoppingClassifier", "inner_split"]


def inner_split(y: np.ndarray, fraction: float, random_state=None,
                groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) positions of ``y`` that keep every class in train.

    Each class gives ``round(fraction * n_c)`` of its rows to validation, but always leaves at
    least one in train (a class with one row gives none), so the inner model sees every class.
    With ``groups`` whole groups (workflows) move instead: the groups are visited in a random
    order and one joins validation when no class of it would pass its share (``round(fraction *
    n_c)``, at most ``n_c - 1``), so no group has rows on both sides and every class keeps a row
    in train; validation may then fall a little short of ``fraction``.

    Parameters
    ----------
    y : array of int
        Encoded labels of the rows being fitted.
    fraction : float in [0, 1)
        Share of each class held out.
    random_state : int, RandomState or None
    groups : array-like of shape (n_samples,), optional
        The group (workflow) of each row; None splits rows.

    Returns
    -------
    train, validation : arrays of int, sorted positions into ``y``; validation may be empty.
    """
    rng = check_random_state(random_state)
    if groups is not None:
        validation = _grouped_validation(y, np.asarray(groups), fraction, rng)
    else:
        validation = []
        for label in np.unique(y):
            rows = np.flatnonzero(y == label)
            n_val = min(int(round(fraction * rows.size)), rows.size - 1)
            if n_val > 0:
                validation.append(rng.choice(rows, size=n_val, replace=False))
        validation = np.sort(np.concatenate(validation)) if validation else np.zeros(0, dtype=np.intp)
    train = np.setdiff1d(np.arange(y.size), validation)
    return train, validation


def _grouped_validation(y: np.ndarray, groups: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Sorted positions of the whole groups :func:`inner_split` holds out (see there)."""
    if groups.shape != y.shape:
        raise ValueError(f"groups must have one entry per row: {groups.shape[0]} for {y.size} rows")
    group_ids, group_of = np.unique(groups, return_inverse=True)
    classes, label_of = np.unique(y, return_inverse=True)
    counts = np.zeros((group_ids.size, classes.size), dtype=np.int64)  # rows of each class per group
    np.add.at(counts, (group_of, label_of), 1)
    totals = counts.sum(axis=0)
    room = np.minimum(np.round(fraction * totals).astype(np.int64), totals - 1)
    held = np.zeros(group_ids.size, dtype=bool)
    for g in rng.permutation(group_ids.size):
        if (counts[g] <= room).all():
            room -= counts[g]
            held[g] = True
    return np.flatnonzero(held[group_of])


def _from_package(estimator, package: str) -> bool:
    """Whether the estimator's class (or a base of it: subclasses count) comes from ``package``."""
    return any(cls.__module__.split(".")[0] == package for cls in type(estimator).__mro__)


def _is_xgboost(estimator) -> bool:
    return _from_package(estimator, "xgboost")


def _is_lightgbm(estimator) -> bool:
    return _from_package(estimator, "lightgbm")


def _fit_xgboost(estimator, X, y, X_val, y_val, patience: int) -> int:
    estimator.set_params(early_stopping_rounds=patience)
    estimator.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    # best_iteration is 0-based; predictions use rounds [0, best_iteration] from here on.
    return int(estimator.best_iteration) + 1


def _fit_lightgbm(estimator, X, y, X_val, y_val, patience: int) -> int:
    import lightgbm

    # LightGBM 4.7 deprecates eval_set for eval_X/eval_y (the pinned version; see STACK.md).
    estimator.fit(X, y, eval_X=X_val, eval_y=y_val, callbacks=[lightgbm.early_stopping(patience, verbose=False)])
    # best_iteration_ counts rounds (1-based); predict uses it by default.
    return int(estimator.best_iteration_) or int(estimator.n_estimators)


#: How each supported family is fitted with an eval set and early stopping.
_FITTERS = ((_is_xgboost, _fit_xgboost), (_is_lightgbm, _fit_lightgbm))


class EarlyStoppingClassifier(ProbabilisticClassifierMixin, MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit an XGBoost or LightGBM classifier with early stopping on an inner split of its own rows.

    ``fit(X, y)`` holds out a stratified ``validation_fraction`` of the rows it is given
    (whole workflows when ``fit`` gets their ``groups``, as in a CV trial),
    boosts on the rest with that slice as the eval set until ``patience`` rounds bring no
    better loss, and predicts with the best round. Inside a CV fold those are the fold's
    training rows (its validation rows are never passed in); inside the refit, the training
    split (never the test rows). With ``refit_iterations`` set it skips the split and trains
    exactly that many rounds on every row: what the refit uses once the folds agreed.

    The Keras :class:`wtc.models.DNNClassifier` stops early by itself the same way
    (``validation_fraction``, ``patience``); it is not wrapped.

    Parameters
    ----------
    estimator : xgboost.XGBClassifier or lightgbm.LGBMClassifier
        The booster; its ``n_estimators`` is the upper bound on rounds. Cloned by ``fit``.
    validation_fraction : float, default 0.2
        Share of each class held out as the inner eval set (one row of each class always stays
        in train). When nothing can be held out, all ``n_estimators`` rounds are trained.
    patience : int, default 20
        Rounds without a better eval loss before stopping.
    refit_iterations : int or None, default None
        Train exactly this many rounds on all rows, without an inner split.
    random_state : int, RandomState or None, default None
        Seeds the inner split.

    Attributes
    ----------
    estimator_ : the fitted booster (trained on the inner train rows, or on all rows)
    classes_ : ndarray
        Class labels, in the order of ``predict_proba``'s columns.
    n_features_in_ : int
    best_iteration_ : int
        Rounds the predictions use (the early-stopped best, or ``refit_iterations``).
    validation_rows_ : ndarray of int
        Positions, among the rows given to ``fit``, of the inner eval set (empty without one).
    """

    def __init__(self, estimator=None, validation_fraction=0.2, patience=20, refit_iterations=None,
                 random_state=None):
        self.estimator = estimator
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.refit_iterations = refit_iterations
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.estimator is None:
            raise ValueError("EarlyStoppingClassifier needs an estimator (XGBoost or LightGBM)")
        if not any(is_family(self.estimator) for is_family, _ in _FITTERS):
            raise TypeError(f"EarlyStoppingClassifier wraps XGBoost or LightGBM classifiers, "
                            f"not {type(self.estimator).__name__}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if int(self.patience) < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience!r}")
        if self.refit_iterations is not None and int(self.refit_iterations) < 1:
            raise ValueError(f"refit_iterations must be at least 1 or None, got {self.refit_iterations!r}")

    def fit(self, X, y, validation=None, groups=None):
        """Fit the booster with early stopping on an inner split of these rows (see the class doc).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        validation : (X_val, y_val), optional
            Other rows to stop on instead of an inner split: all of ``X`` is trained on. A
            fold-ensemble member stops on its CV fold's validation rows this way (grouped by
            workflow, unlike the inner split). Rows of a class ``y`` lacks are left out of it;
            ignored with ``refit_iterations``.
        groups : array-like of shape (n_samples,), optional
            The workflow of each row: the inner split then keeps each workflow's rows on one side
            (:func:`inner_split`), so the rounds are not chosen on sibling tasks of the rows
            trained on. A CV trial passes them (``model__groups``); None splits rows.

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"))
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            raise ValueError(f"a classifier needs at least 2 classes in y; got the one class {self.classes_[0]!r}")
        if validation is not None and self.refit_iterations is None:
            X_val, y_val = validation
            X_val = validate_data(self, X_val, accept_sparse=("csr", "csc"), reset=False)
            known = np.isin(np.asarray(y_val), self.classes_)
            return self._fit_on(X, encoder.transform(y), X_val[known], encoder.transform(np.asarray(y_val)[known]))
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (X.shape[0],):
                raise ValueError(f"groups must have one entry per row: got shape {groups.shape} for {X.shape[0]} rows")
        return self._fit(X, encoder.transform(y), groups)

    def _fit_on(self, X, y, X_val, y_val):
        """Boost on every row of ``X``, stopping on the given validation rows."""
        estimator = clone(self.estimator)
        self.validation_rows_ = np.zeros(0, dtype=np.intp)  # none of the rows given to fit
        if y_val.size == 0:
            self.estimator_ = estimator.fit(X, y)
            self.best_iteration_ = int(estimator.get_params()["n_estimators"])
            return self
        fit_with_eval = next(fit for is_family, fit in _FITTERS if is_family(estimator))
        self.best_iteration_ = fit_with_eval(estimator, X, y, X_val, y_val, int(self.patience))
        self.estimator_ = estimator
        return self

    def _fit(self, X, y, groups=None):
        estimator = clone(self.estimator)
        if self.refit_iterations is not None:
            self.validation_rows_ = np.zeros(0, dtype=np.intp)
            estimator.set_params(n_estimators=int(self.refit_iterations))
            self.estimator_ = estimator.fit(X, y)
            self.best_iteration_ = int(self.refit_iterations)
            return self
        train, validation = inner_split(y, self.validation_fraction, self.random_state, groups)
        self.validation_rows_ = validation
        if validation.size == 0:
            self.estimator_ = estimator.fit(X, y)
            self.best_iteration_ = int(estimator.get_params()["n_estimators"])
            return self
        fit_with_eval = next(fit for is_family, fit in _FITTERS if is_family(estimator))
        self.best_iteration_ = fit_with_eval(estimator, X[train], y[train], X[validation], y[validation],
                                             int(self.patience))
        self.estimator_ = estimator
        return self

    def predict_proba(self, X):
        """Class probabilities at the best round, columns in the order of ``classes_``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), reset=False)
        return self.estimator_.predict_proba(X)
