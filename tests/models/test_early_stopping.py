"""EarlyStoppingClassifier: the inner split, early stopping, refit_iterations, and that its
eval rows are always a part of the rows it was given (never a fold's validation or test rows)."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.pipeline import Pipeline

from tests.factories import compose_cfg
from tests.spies import BOOSTER_FITS, RecordingLGBM, RecordingXGB, lgbm, noisy_problem, row_ids, xgb
from wtc.data.splits import GroupedCV
from wtc.models import DNNClassifier, EarlyStoppingClassifier
from wtc.models.early_stopping import inner_split
from wtc.tuning import FixedSearcher, cross_validate, tune


@pytest.fixture(autouse=True)
def clear_seen():
    BOOSTER_FITS.clear()
    yield
    BOOSTER_FITS.clear()


def test_inner_split_is_stratified_disjoint_and_keeps_every_class_in_train():
    y = np.array([0] * 50 + [1] * 10 + [2] * 1)
    train, val = inner_split(y, 0.2, random_state=0)
    assert not set(train) & set(val) and set(train) | set(val) == set(range(y.size))
    assert np.bincount(y[val], minlength=3).tolist() == [10, 2, 0]  # 20% per class; the singleton stays
    assert set(y[train]) == {0, 1, 2}
    again, _ = inner_split(y, 0.2, random_state=0)
    assert np.array_equal(train, again)
    assert inner_split(y, 0.0, random_state=0)[1].size == 0


def test_grouped_inner_split_moves_whole_workflows_and_keeps_every_class_in_train():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), 5)                 # 60 workflows of 5 tasks
    y = (rng.random(groups.size) < 0.3).astype(int)
    y[:2] = 2                                            # a rare class, all in workflow 0
    train, val = inner_split(y, 0.2, random_state=0, groups=groups)
    assert not set(train) & set(val) and set(train) | set(val) == set(range(y.size))
    assert not set(groups[train]) & set(groups[val])     # no workflow on both sides
    assert set(y[train]) == {0, 1, 2}
    for label in (0, 1):                                 # each class gives at most its share, most of it
        n_val, n = (y[val] == label).sum(), (y == label).sum()
        assert 0.1 * n < n_val <= round(0.2 * n)
    again, _ = inner_split(y, 0.2, random_state=0, groups=groups)
    assert np.array_equal(train, again)
    assert inner_split(y, 0.0, random_state=0, groups=groups)[1].size == 0
    with pytest.raises(ValueError, match="one entry per row"):
        inner_split(y, 0.2, random_state=0, groups=groups[:-1])


@pytest.mark.parametrize("recorder", [lambda: lgbm(RecordingLGBM), lambda: xgb(RecordingXGB)], ids=["lightgbm", "xgboost"])
def test_no_workflow_straddles_the_inner_split_of_a_cv_trial(recorder):
    """With the rows' workflows passed to the CV (as a run does), each fold's early stopping
    trains and stops on disjoint sets of that fold's workflows; without them it splits tasks."""
    X, y = noisy_problem(n=400)
    ids = row_ids(X)
    groups = np.repeat(np.arange(100), 4)  # workflows of 4 tasks
    group_of_id = dict(zip(ids, groups))
    folds = GroupedCV(3).folds(y, groups, 0)
    pipeline = Pipeline([("model", EarlyStoppingClassifier(recorder(), patience=5, random_state=0))])
    result = tune(pipeline, FixedSearcher(), X, y, folds, 2, "log_loss", groups=groups)
    assert len(result.best.fold_iterations) == len(BOOSTER_FITS) == len(folds)
    for (fitted, evaluated), (train, valid) in zip(BOOSTER_FITS, folds):
        assert evaluated.size > 0 and set(fitted) | set(evaluated) == set(ids[train])
        fitted_groups = {group_of_id[i] for i in fitted}
        assert fitted_groups and not fitted_groups & {group_of_id[i] for i in evaluated}
    BOOSTER_FITS.clear()
    cross_validate(pipeline, {}, X, y, folds, 2)  # no groups: the stratified split over tasks
    assert any({group_of_id[i] for i in fitted} & {group_of_id[i] for i in evaluated} for fitted, evaluated in BOOSTER_FITS)


def test_groups_reach_only_a_model_that_takes_them_and_never_after_a_sampler():
    from imblearn.over_sampling import RandomOverSampler

    from wtc.models.pipeline import fit_grouped, takes_groups

    X, y = noisy_problem(n=200)
    groups = np.repeat(np.arange(50), 4)
    stopping = EarlyStoppingClassifier(lgbm(RecordingLGBM), patience=5, random_state=0)
    assert takes_groups(Pipeline([("model", stopping)]))
    assert not takes_groups(Pipeline([("model", lgbm())]))
    assert not takes_groups(Pipeline([("resample", RandomOverSampler(random_state=0)), ("model", stopping)]))
    fit_grouped(Pipeline([("model", lgbm(n_estimators=5))]), X, y, groups)  # a plain model: a plain fit
    fit_grouped(Pipeline([("resample", RandomOverSampler(random_state=0)), ("model", stopping)]), X, y, groups)
    assert len(BOOSTER_FITS) == 1 and BOOSTER_FITS[0][1].size  # stopped on an inner split of the resampled rows


@pytest.mark.parametrize("booster", [lgbm, xgb], ids=["lightgbm", "xgboost"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_stops_early_and_predicts_with_the_best_round(booster, n_classes):
    X, y = noisy_problem(n_classes=n_classes)
    model = EarlyStoppingClassifier(booster(), patience=10, random_state=0).fit(X, y)
    assert 1 <= model.best_iteration_ < 400  # a noisy problem at lr 0.2 never needs 400 rounds
    assert model.validation_rows_.size == pytest.approx(0.2 * y.size, abs=n_classes)
    proba = model.predict_proba(X)
    assert proba.shape == (y.size, n_classes) and np.allclose(proba.sum(1), 1)
    # the early-stopped model beats the same booster run to all 400 rounds on fresh rows
    X_new, y_new = noisy_problem(n_classes=n_classes, seed=1)
    full = booster().fit(X[np.sort(np.setdiff1d(np.arange(y.size), model.validation_rows_))],
                         y[np.sort(np.setdiff1d(np.arange(y.size), model.validation_rows_))])
    from sklearn.metrics import log_loss

    assert log_loss(y_new, model.predict_proba(X_new)) < log_loss(y_new, full.predict_proba(X_new))


def test_labels_of_any_type_come_back():
    X, y = noisy_problem()
    names = np.array(["clone", "acdc"])[y]
    model = EarlyStoppingClassifier(lgbm(), patience=5, random_state=0).fit(X, names)
    assert list(model.classes_) == ["acdc", "clone"] and set(model.predict(X)) <= {"acdc", "clone"}


@pytest.mark.parametrize("booster, recorder", [(lgbm, RecordingLGBM), (xgb, RecordingXGB)], ids=["lightgbm", "xgboost"])
def test_refit_iterations_trains_exactly_n_rounds_on_every_row(booster, recorder):
    X, y = noisy_problem()
    model = EarlyStoppingClassifier(booster(recorder), refit_iterations=17, random_state=0).fit(X, y)
    assert model.best_iteration_ == 17 and model.estimator_.n_estimators == 17
    (fitted, evaluated), = BOOSTER_FITS
    assert np.array_equal(np.sort(fitted), np.arange(1, y.size + 1)) and evaluated.size == 0
    assert model.validation_rows_.size == 0


def test_is_clone_safe_and_validates_its_params():
    from sklearn.base import clone

    model = EarlyStoppingClassifier(lgbm(), patience=3)
    assert clone(model).get_params()["patience"] == 3 and "estimator__num_leaves" in model.get_params()
    X, y = noisy_problem(n=60)
    with pytest.raises(TypeError, match="XGBoost or LightGBM"):
        EarlyStoppingClassifier(DNNClassifier()).fit(X, y)
    for bad in ({"validation_fraction": 1.0}, {"patience": 0}, {"refit_iterations": 0}):
        with pytest.raises(ValueError):
            EarlyStoppingClassifier(lgbm(), **bad).fit(X, y)


@pytest.mark.parametrize("recorder", [lambda: lgbm(RecordingLGBM), lambda: xgb(RecordingXGB)], ids=["lightgbm", "xgboost"])
def test_inner_split_of_every_cv_fold_is_inside_its_training_rows(recorder):
    """The leakage test: each fold's early stopping trains and stops on that fold's training
    rows only: its eval rows are a subset of them, disjoint from the fold's validation rows."""
    X, y = noisy_problem(n=400)
    ids = row_ids(X)
    groups = np.repeat(np.arange(100), 4)  # workflows of 4 tasks
    folds = GroupedCV(3).folds(y, groups, 0)
    pipeline = Pipeline([("model", EarlyStoppingClassifier(recorder(), patience=5, random_state=0))])
    iterations: list = []
    cross_validate(pipeline, {}, X, y, folds, 2, iterations=iterations)
    assert len(BOOSTER_FITS) == len(folds) == len(iterations)
    for (fitted, evaluated), (train, valid) in zip(BOOSTER_FITS, folds):
        assert evaluated.size > 0 and not set(fitted) & set(evaluated)
        assert set(fitted) | set(evaluated) == set(ids[train])  # every training row, nothing else
        assert not set(evaluated) & set(ids[valid]) and not set(fitted) & set(ids[valid])


def test_trials_log_the_picked_rounds_and_the_result_agrees_on_their_median():
    X, y = noisy_problem(n=400)
    folds = GroupedCV(3).folds(y, np.repeat(np.arange(100), 4), 0)
    pipeline = Pipeline([("model", EarlyStoppingClassifier(lgbm(), patience=5, random_state=0))])
    result = tune(pipeline, FixedSearcher(), X, y, folds, 2, "log_loss")
    record = result.best
    assert len(record.fold_iterations) == 3
    assert record.metrics["cv/best_iteration_mean"] == pytest.approx(np.mean(record.fold_iterations))
    assert result.best_iterations == int(round(np.median(record.fold_iterations)))
    # a model without early stopping logs no such metric and agrees on nothing
    plain = tune(Pipeline([("model", lgbm(n_estimators=5))]), FixedSearcher(), X, y, folds, 2, "log_loss")
    assert "cv/best_iteration_mean" not in plain.best.metrics and plain.best_iterations is None


@pytest.mark.parametrize("model", ["xgboost_es", "lightgbm_es"])
def test_configs_wrap_the_booster_and_search_it_by_estimator_prefix(model):
    from hydra.utils import instantiate

    cfg = compose_cfg([f"model={model}"])
    estimator = instantiate(cfg.model.estimator, _convert_="all")
    assert isinstance(estimator, EarlyStoppingClassifier)
    assert cfg.model.space and all(k.startswith("estimator__") for k in cfg.model.space)
    assert set(cfg.model.space) <= set(estimator.get_params())


def test_a_whole_run_never_early_stops_on_validation_or_test_rows(tmp_path, tracking_uri):
    """Through wtc.run.experiment.run: every fit of the early-stopped booster (each CV fold, then
    the refit) trains and stops on training-split rows; the folds' fits on exactly theirs."""
    import wtc.run.experiment as experiment
    from wtc.data.dataset import load_dataset
    from wtc.data.synthetic import write_benchmark

    path = tmp_path / "history.json"
    write_benchmark(path, n_tasks=400, seed=3)
    overrides = [f"data.path={path}", f"tracking.uri={tracking_uri}", "search=none", "cv.n_splits=2", "n_jobs=1",
                 "tracking.log_plots=false", "tracking.log_model=false", "scaler=none", "resample=none",
                 "model=lightgbm_es", "data.extras=[total]", "model.estimator.patience=5",
                 "model.estimator.estimator._target_=tests.spies.RecordingLGBM"]
    cfg = compose_cfg(overrides)
    data = load_dataset(cfg)
    data_ids = np.arange(1, len(data.y) + 1, dtype=np.float32)
    original = experiment.load_dataset

    def with_ids(cfg_):  # the last column (total) becomes a row id the recorder reads
        loaded = original(cfg_)
        X = loaded.X.tolil()
        X[:, -1] = data_ids[:, None]
        loaded.X = X.tocsr()
        return loaded

    experiment.load_dataset = with_ids
    try:
        experiment.run(cfg)
    finally:
        experiment.load_dataset = original
    train, test = GroupedCV(2).holdout(data.y, data.groups, 0.2, 0, data.dates)
    folds = GroupedCV(2).folds(data.y[train], data.groups[train], 0)
    assert len(BOOSTER_FITS) >= len(folds) + 1
    train_ids, test_ids = set(data_ids[train]), set(data_ids[test])
    for (fitted, evaluated), (tr, va) in zip(BOOSTER_FITS, folds):
        assert evaluated.size and set(fitted) | set(evaluated) == set(data_ids[train][tr])
        assert not set(evaluated) & set(data_ids[train][va])
    for fitted, evaluated in BOOSTER_FITS[len(folds):]:  # the refit and anything after it
        assert set(fitted) | set(evaluated) <= train_ids and not set(evaluated) & test_ids
