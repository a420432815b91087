"""ProbabilityCalibrator and CalibratedClassifier on hand-made probabilities with a known truth."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from wtc.evaluation.metrics import REGISTRY, expected_calibration_error
from wtc.models import CalibratedClassifier
from wtc.models.calibration import (
    IdentityCalibrator,
    IsotonicCalibrator,
    ProbabilityCalibrator,
    SigmoidCalibrator,
    TemperatureCalibrator,
)


def log_loss(y, proba) -> float:
    return REGISTRY["log_loss"].compute(np.asarray(y), np.asarray(proba), np.shape(proba)[1])


def overconfident(n=4000, n_classes=3, seed=0):
    """Labels drawn from true probabilities, and a model that squares their logits (T = 1/2)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.2, size=(n, n_classes))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(n_classes, p=p) for p in truth])
    sharp = np.exp(2 * logits) / np.exp(2 * logits).sum(axis=1, keepdims=True)
    return y, truth, sharp


@pytest.mark.parametrize("n_classes", [2, 4])
def test_temperature_finds_the_overconfidence_and_lowers_the_log_loss(n_classes):
    y, truth, sharp = overconfident(n_classes=n_classes)
    fit_rows, held_out = np.arange(2000), np.arange(2000, 4000)
    calibrator = TemperatureCalibrator().fit(sharp[fit_rows], y[fit_rows])
    assert calibrator.temperature_ == pytest.approx(2.0, rel=0.2)  # the logits were doubled
    assert calibrator.metrics == {"temperature": calibrator.temperature_}  # logged as calibration/temperature
    calibrated = calibrator.transform(sharp[held_out])
    assert log_loss(y[held_out], calibrated) < log_loss(y[held_out], sharp[held_out]) - 0.02
    assert abs(log_loss(y[held_out], calibrated) - log_loss(y[held_out], truth[held_out])) < 0.02
    np.testing.assert_array_equal(calibrated.argmax(axis=1), sharp[held_out].argmax(axis=1))  # ranking kept
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)


@pytest.mark.parametrize("method", [SigmoidCalibrator, IsotonicCalibrator], ids=["sigmoid", "isotonic"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_one_vs_rest_maps_lower_the_error_and_renormalise(method, n_classes):
    y, _, sharp = overconfident(n_classes=n_classes, seed=1)
    calibrator = method().fit(sharp[:2000], y[:2000])
    calibrated = calibrator.transform(sharp[2000:])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated > 0).all()
    assert log_loss(y[2000:], calibrated) < log_loss(y[2000:], sharp[2000:])
    assert expected_calibration_error(y[2000:], calibrated) < expected_calibration_error(y[2000:], sharp[2000:])


def test_a_class_the_labels_never_show_is_kept_as_it_is():
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]] * 20)
    y = np.array([0, 1, 1, 0] * 20)
    for method in (SigmoidCalibrator, IsotonicCalibrator, TemperatureCalibrator, IdentityCalibrator):
        out = method().fit(proba, y).transform(proba)
        assert out.shape == proba.shape and np.isfinite(out).all()
        np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="proba must have shape"):
        TemperatureCalibrator().fit(np.full((4, 1), 1.0), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="columns"):
        TemperatureCalibrator().fit(np.full((4, 2), 0.5), [0, 1, 0, 1]).transform(np.full((4, 3), 1 / 3))


def test_from_predictions_wraps_a_fitted_model_and_fit_uses_its_own_folds():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(size=400) > 0).astype(int)
    fitted = LogisticRegression().fit(X, y)
    model = CalibratedClassifier.from_predictions(fitted, y, fitted.predict_proba(X), TemperatureCalibrator())
    assert model.estimator_ is fitted and model.n_features_in_ == 3
    np.testing.assert_allclose(model.predict_proba(X), model.calibrator_.transform(fitted.predict_proba(X)))
    own = CalibratedClassifier(LogisticRegression(), SigmoidCalibrator(), random_state=0).fit(X, y)
    assert own.predict_proba(X).shape == (400, 2) and set(own.predict(X)) <= {0, 1}


def _old(calibrator):
    """A fitted calibrator as an older wtc pickled it: a ProbabilityCalibrator naming its method."""
    old = ProbabilityCalibrator.__new__(ProbabilityCalibrator)
    old.__dict__.update({"method": calibrator.method, **vars(calibrator)})
    return old


@pytest.mark.parametrize("cls", [IdentityCalibrator, TemperatureCalibrator, SigmoidCalibrator, IsotonicCalibrator],
                         ids=lambda cls: cls.method)
def test_a_model_pickled_before_the_calibrator_classes_still_predicts(cls):
    """A model logged by an older wtc pickled a ProbabilityCalibrator with a ``method`` and a
    CalibratedClassifier with a ``method`` parameter: unpickled, they are today's classes, same numbers."""
    import pickle

    y, _, sharp = overconfident(n_classes=3, seed=2)
    fitted = cls().fit(sharp[:1000], y[:1000])
    loaded = pickle.loads(pickle.dumps(_old(fitted)))
    assert type(loaded) is cls and "method" not in vars(loaded)
    np.testing.assert_array_equal(loaded.transform(sharp[1000:]), fitted.transform(sharp[1000:]))

    X = np.random.default_rng(0).normal(size=(200, 3))
    model = CalibratedClassifier(LogisticRegression(), cls(), cv=3, random_state=0).fit(X, y[:200])
    old = CalibratedClassifier.__new__(CalibratedClassifier)
    old.__dict__.update({k: v for k, v in vars(model).items() if k != "calibrator"})
    old.__dict__.update(method=cls.method, calibrator_=_old(model.calibrator_))
    loaded = pickle.loads(pickle.dumps(old))
    assert type(loaded.calibrator) is cls and "method" not in vars(loaded)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
