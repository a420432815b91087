"""The refit of a run: fold and top-k ensembles, calibration on out-of-fold rows only, bound warnings.

The whole runs are marked ``slow``; the quick set keeps the refit itself (wtc.run.refit.fit_final_model).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests import spies
from tests.factories import fast_overrides, make_cfg, runs_of
from wtc.data.dataset import load_dataset
from wtc.data.splits import GroupedCV
from wtc.models import AveragingClassifier, CalibratedClassifier
from wtc.models.calibration import ProbabilityCalibrator
from wtc.run.experiment import run


@pytest.mark.slow
@pytest.mark.parametrize("ensemble", ["none", "folds"])
def test_calibration_never_sees_a_test_row(history_path, tracking_uri, monkeypatch, ensemble):
    """A 'model' whose probabilities are row ids: the calibrator is fitted on every training row
    once, each predicted by a model that did not train on it, and on no test row."""
    cfg = make_cfg(history_path, tracking_uri, [
        "model=dummy", "~model.estimator.strategy", "model.estimator._target_=tests.spies.RowIdClassifier",
        "scaler=none", "data.extras=[total]", f"ensemble={ensemble}", "calibration=temperature"])
    data = load_dataset(cfg)
    ids = np.arange(1, len(data.y) + 1, dtype=np.float32)
    import wtc.run.experiment as experiment

    original = experiment.load_dataset

    def with_ids(cfg_):
        loaded = original(cfg_)
        X = loaded.X.tolil()
        X[:, -1] = ids[:, None]
        loaded.X = X.tocsr()
        return loaded

    fitted_on = []
    fit = ProbabilityCalibrator.fit

    def recording_fit(self, proba, y):
        fitted_on.append(spies.ids_of(proba))
        return fit(self, proba, y)

    monkeypatch.setattr(experiment, "load_dataset", with_ids)
    monkeypatch.setattr(ProbabilityCalibrator, "fit", recording_fit)
    result = run(cfg)
    train, test = GroupedCV(2).holdout(data.y, data.groups, 0.2, 0, data.dates)
    (seen,) = fitted_on
    assert sorted(seen) == sorted(ids[train])  # every training row once, as out-of-fold rows
    assert not set(seen) & set(ids[test])
    folds = GroupedCV(2).folds(data.y[train], data.groups[train], 0)
    np.testing.assert_array_equal(seen, np.concatenate([ids[train][va] for _, va in folds]))  # fold order
    assert isinstance(result.pipeline, CalibratedClassifier)
    assert result.metrics["calibration/oof_rows"] == len(train)


@pytest.mark.slow
def test_fold_ensemble_with_calibration_is_the_logged_model(history_path, tracking_uri, tmp_path):
    cfg = make_cfg(history_path, tracking_uri, ["model=lightgbm_es", "search=tpe", "ensemble=folds",
                                                "calibration=temperature", "metric=log_loss",
                                                "tracking.log_model=true", "tracking.log_plots=true",
                                                "diagnostics=light", *fast_overrides("lightgbm_es")])
    result = run(cfg)
    model = result.pipeline
    assert isinstance(model, CalibratedClassifier) and isinstance(model.estimator_, AveragingClassifier)
    members = model.estimator_.estimators_
    assert len(members) == 2 and result.metrics["refit/members"] == 2
    # Each fold's member stopped on its own fold's validation rows, with its own rounds.
    assert all(m.named_steps["model"].best_iteration_ >= 1 for m in members)
    metrics = result.metrics
    for name in ("calibration/temperature", "calibration/oof_log_loss_before", "calibration/oof_log_loss_after",
                 "calibration/test_log_loss_before", "calibration/test_ece_before", "calibration/test_ece_after"):
        assert math.isfinite(metrics[name]), name
    assert metrics["calibration/oof_log_loss_after"] <= metrics["calibration/oof_log_loss_before"] + 1e-12
    client, parents, _ = runs_of(tracking_uri)
    parent = parents[0]
    assert parent.data.params["ensemble"] == "folds" and parent.data.params["calibration"] == "temperature"
    # The out-of-fold rows the AUTO gate is certified on: each member's predictions on its own fold's
    # validation rows, through the calibration, with each row's label and workflow; every training row once.
    from wtc.data.dataset import config_splits
    from wtc.models.pipeline import full_proba
    from wtc.run.refit import OOF_ARTIFACT

    data = load_dataset(cfg)
    splits = config_splits(cfg, data)
    X_train, y_train, groups = data.X[splits.train], data.y[splits.train], data.groups[splits.train]
    with np.load(client.download_artifacts(parent.info.run_id, OOF_ARTIFACT, str(tmp_path))) as oof:
        rows, y_oof, proba_oof, groups_oof = oof["rows"], oof["y"], oof["proba"], oof["groups"]
    assert sorted(rows) == list(range(len(y_train)))
    np.testing.assert_array_equal(y_oof, y_train[rows])
    np.testing.assert_array_equal(groups_oof, groups[rows].astype(str))
    expected = np.vstack([model.calibrator_.transform(full_proba(member, X_train[valid], len(result.classes)))
                          for member, (_, valid) in zip(members, splits.folds)])
    np.testing.assert_allclose(proba_oof, expected, rtol=1e-6)
    # A sweep's run (light) logs the figures' inputs, the probabilities before calibration among them.
    from wtc.evaluation.diagnostics import FIGURE_INPUTS, FigureInputs
    from wtc.ops.deferred import draw_run_figures

    inputs = FigureInputs.load(client.download_artifacts(parent.info.run_id, FIGURE_INPUTS, str(tmp_path)))
    assert inputs.test_proba_uncalibrated is not None and not np.allclose(inputs.test_proba_uncalibrated,
                                                                           inputs.test_proba)
    assert [d.outcome for d in draw_run_figures(tracking_uri, [parent.info.run_id])] == ["drawn"]
    assert "plots/calibration.png" in {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    # ... and kept what its model is made from: logged on demand, the raw-task model that `wtc predict`
    # and `wtc serve` load gives the calibrated probabilities.
    from wtc.store.logged_models import build_run_models

    assert not client.search_logged_models([parent.info.experiment_id])
    assert [b.outcome for b in build_run_models(tracking_uri, [parent.info.run_id])] == ["logged"]
    (logged,) = client.search_logged_models([parent.info.experiment_id])
    loaded = mlflow.pyfunc.load_model(logged.model_uri)
    raw = json.loads(Path(history_path).read_text())
    tasks = list(raw)[:6]
    out = loaded.predict(pd.DataFrame({"task": tasks, "entry": [raw[t] for t in tasks]}))
    from wtc.data import build_features, load_history

    history = load_history(history_path)
    X, _ = build_features(history, cfg.data.view, extras=list(cfg.data.extras))
    rows = [history.tasks.index(t) for t in tasks]
    columns = [f"p_{c}" for c in result.classes]
    np.testing.assert_allclose(out[columns].to_numpy(), model.predict_proba(X[rows]), rtol=1e-5)
    assert not np.allclose(model.predict_proba(X[rows]), model.estimator_.predict_proba(X[rows]))
    requirements = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"{logged.artifact_location}/requirements.txt")).read_text()
    assert "lightgbm==" in requirements  # found inside the ensemble's members


@pytest.mark.slow
def test_top_k_averages_the_refits_of_the_best_trials(history_path, tracking_uri):
    cfg = make_cfg(history_path, tracking_uri, ["model=logreg", "search=tpe", "search.n_trials=3",
                                                "ensemble=top_k", "ensemble.k=2", "metric=log_loss"])
    result = run(cfg)
    assert isinstance(result.pipeline, AveragingClassifier) and len(result.pipeline.estimators_) == 2
    client, parents, children = runs_of(tracking_uri)
    best_two = sorted(children, key=lambda c: c.data.metrics["objective"])[:2]
    cs = sorted(float(c.data.params["C"]) for c in best_two)
    assert sorted(m.named_steps["model"].C for m in result.pipeline.estimators_) == pytest.approx(cs)
    assert parents[0].data.params["ensemble.k"] == "2"


@pytest.mark.slow
def test_a_best_parameter_at_a_bound_is_a_warning_and_a_tag(history_path, tracking_uri, caplog):
    """An int range of two values: whatever the search picks sits at a bound."""
    cfg = make_cfg(history_path, tracking_uri, ["model=lightgbm_es", "search=tpe", *fast_overrides("lightgbm_es"),
                                                "model.space={estimator__num_leaves: {low: 7, high: 8, type: int}}"])
    with caplog.at_level(logging.WARNING, logger="wtc.run.experiment"):
        result = run(cfg)
    value = result.best_params["estimator__num_leaves"]
    side = "low" if value == 7 else "high"
    assert f"best estimator__num_leaves={value} at its {side} bound {value}" in caplog.text
    _, parents, _ = runs_of(tracking_uri)
    assert parents[0].data.tags["wtc.at_bound"] == "estimator__num_leaves"


def test_fold_members_train_on_their_fold_and_stop_on_its_validation_rows():
    """A recording booster: member k trains on fold k's training rows and early-stops on fold
    k's validation rows, never on anything else; its out-of-fold rows feed the calibrator."""
    from imblearn.pipeline import Pipeline
    from sklearn.model_selection import StratifiedKFold

    from tests.spies import BOOSTER_FITS, RecordingLGBM, lgbm, noisy_problem
    from wtc.models import EarlyStoppingClassifier
    from wtc.models.calibration import TemperatureCalibrator
    from wtc.run.refit import FoldsEnsemble, fit_final_model
    from wtc.tuning import FixedSearcher
    from wtc.tuning.objective import TuningResult
    from wtc.tuning.trial import TrialRecord

    X, y = noisy_problem(n=300)
    ids = np.arange(1, 301)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros(300), y))
    pipeline = Pipeline([("model", EarlyStoppingClassifier(lgbm(RecordingLGBM), patience=5, random_state=0))])
    trial = TrialRecord(0, {"estimator__num_leaves": 7}, {}, 0.5, 0.0, 1.0,
                        fold_predictions=[(y[va], np.full((va.size, 2), 0.5)) for _, va in folds],
                        fold_iterations=[50, 60, 70])
    tuning = TuningResult(FixedSearcher(), [trial])
    BOOSTER_FITS.clear()
    final = fit_final_model(pipeline, tuning, X, y, folds, 2, FoldsEnsemble(), TemperatureCalibrator())
    assert len(BOOSTER_FITS) == 3
    for (trained, stopped), (tr, va) in zip(BOOSTER_FITS, folds):
        assert set(trained) == set(ids[tr]) and set(stopped) == set(ids[va])
    members = final.model.estimator_.estimators_
    assert [m.named_steps["model"].estimator_.get_params()["num_leaves"] for m in members] == [7, 7, 7]
    assert final.metrics["calibration/oof_rows"] == 300
    BOOSTER_FITS.clear()
