"""One common suite: scikit-learn's estimator checks over every custom estimator in wtc.models.

A new estimator joins by one entry in ESTIMATORS (with the checks it is known to fail, and
why). The test below fails when a class of wtc.models is missing from the list.
"""

from __future__ import annotations

import inspect

import lightgbm
import pytest
import xgboost
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

import wtc.models
from wtc.models import (
    AveragingClassifier,
    CalibratedClassifier,
    CascadeClassifier,
    DNNClassifier,
    EarlyStoppingClassifier,
    RecoverorPolicy,
    RulesClassifier,
)
from wtc.models.calibration import IsotonicCalibrator, TemperatureCalibrator

#: estimator instance (small settings) -> {check name: why it fails}
ESTIMATORS = {
    AveragingClassifier([LogisticRegression(), DecisionTreeClassifier(max_depth=3, random_state=0)]): {},
    CalibratedClassifier(LogisticRegression(), TemperatureCalibrator(), cv=3, random_state=0): {},
    CalibratedClassifier(DecisionTreeClassifier(max_depth=3, random_state=0), IsotonicCalibrator(), cv=3,
                         random_state=0): {},
    CascadeClassifier(): {},
    DNNClassifier(max_epochs=2, random_state=0): {
        # float32 inference: a row's probabilities change in the 7th digit with the batch around it.
        "check_methods_sample_order_invariance": "float32 network: outputs differ ~1e-7 with batch order",
    },
    EarlyStoppingClassifier(lightgbm.LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1), patience=5,
                            random_state=0): {},
    EarlyStoppingClassifier(xgboost.XGBClassifier(n_estimators=30, n_jobs=1), patience=5, random_state=0): {},
    EarlyStoppingClassifier(lightgbm.LGBMClassifier(n_estimators=30, n_jobs=1, verbose=-1), refit_iterations=10): {},
    RecoverorPolicy(): {
        # No '<status>:<code>:<site>' column names: no rule can fire, every row gets the class prior.
        "check_classifiers_train": "a rules policy without exit-code columns is the class prior",
    },
    RulesClassifier(): {
        # The check's random columns carry no '<status>:<code>:<site>' names, so no column is an
        # exit code and the baseline predicts the class prior (documented behaviour).
        "check_classifiers_train": "a procedure baseline without exit-code columns is the class prior",
    },
}


def test_every_custom_estimator_is_in_the_suite():
    classes = {obj for _, obj in inspect.getmembers(wtc.models, inspect.isclass) if issubclass(obj, BaseEstimator)}
    assert classes == {type(e) for e in ESTIMATORS}


@pytest.mark.slow
@parametrize_with_checks(list(ESTIMATORS), expected_failed_checks=lambda est: ESTIMATORS[est])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
