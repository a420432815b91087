"""End-to-end runs of wtc.run.experiment.run on a small generated history, tracked in a temp store.

Whole runs are marked ``slow`` (``dev.py test --quick`` leaves them out); the quick set keeps the
config errors a run stops at, the failed run, and one untuned run of two baselines.
"""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests import spies
from tests.factories import CONF, compose_cfg, fast_overrides, make_cfg, options, runs_of, write_json
from wtc.data import load_history
from wtc.data.dataset import load_dataset
from wtc.data.splits import GroupedCV, TemporalCV
from wtc.run.experiment import run

#: Every model family of conf/model/, read from the folder: a new YAML file is run end to end
#: below without a test edit (test_every_model_yaml_is_run_end_to_end holds the list to the folder).
MODELS = options("model")

METRIC_NAMES = ["roc_auc", "log_loss", "accuracy", "precision", "recall", "f1_weighted", "f1_macro", "gmean"]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_family_runs_end_to_end(history_path, tracking_uri, model):
    cfg = make_cfg(history_path, tracking_uri, [f"model={model}", "search=tpe", *fast_overrides(model)])
    metrics = run(cfg).metrics
    for name in METRIC_NAMES:
        assert math.isfinite(metrics[f"test/{name}"]), name
        assert f"cv/{name}_mean" in metrics and f"cv/{name}_std" in metrics
        assert math.isfinite(metrics[f"oracle/{name}"]), name
    assert 0 <= metrics["test/ks"] <= 1
    client, parents, children = runs_of(tracking_uri)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    n_trials = 2 if cfg.model.space else 1
    assert len(children) == n_trials
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert all("cv/roc_auc_mean" in c.data.metrics for c in children)
    assert parent.data.metrics["test/roc_auc"] == pytest.approx(metrics["test/roc_auc"])
    assert parent.data.params["model.name"] == model
    assert len(parent.data.params["data.content_hash"]) == 64
    assert parent.data.params["git.commit"]


def test_every_model_yaml_is_run_end_to_end():
    """The every-model test is parametrised by exactly the YAML files of conf/model/ (read here
    again): a family left out of it, or a hand-written list that forgets a new file, fails."""
    (mark,) = [m for m in test_every_model_family_runs_end_to_end.pytestmark if m.name == "parametrize"]
    argnames, values = mark.args
    on_disk = sorted(path.stem for path in (CONF / "model").glob("*.yaml"))
    assert argnames == "model" and list(values) == on_disk
    assert {"xgboost", "dnn", "rules", "dummy", "cascade"} <= set(on_disk)  # the real folder, not an empty glob
    # Each value is a family of its own name, so the parametrised run really runs that file.
    for model in ("xgboost", "rules"):
        assert compose_cfg([f"model={model}"]).model.name == model


def test_baselines_are_beaten_and_oracle_is_the_limit(history_path, tracking_uri):
    dummy = run(make_cfg(history_path, tracking_uri, ["model=dummy", "search=none"])).metrics
    xgb = run(make_cfg(history_path, tracking_uri, ["model=seed_xgb", "search=none"])).metrics
    assert dummy["test/roc_auc"] == pytest.approx(0.5)
    assert xgb["test/roc_auc"] > dummy["test/roc_auc"]
    assert xgb["oracle/log_loss"] < dummy["test/log_loss"]
    assert xgb["oracle/roc_auc"] == dummy["oracle/roc_auc"]  # same test rows, same oracle
    # Every run carries the class-prior baseline on its test rows: what the dummy scores.
    assert xgb["prior/log_loss"] == pytest.approx(dummy["test/log_loss"], rel=1e-3)
    assert xgb["prior/roc_auc"] == pytest.approx(0.5)


@pytest.mark.slow
def test_model_and_plots_are_logged_and_reload(history_path, tracking_uri):
    cfg = make_cfg(history_path, tracking_uri, ["model=xgboost", "search=gp", "resample=smote",
                                            "tracking.log_model=true", "tracking.log_plots=true", *fast_overrides("xgboost")])
    result = run(cfg)
    client, parents, _ = runs_of(tracking_uri)
    parent = parents[0]
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/confusion_matrix.png", "plots/calibration.png",
            "plots/overtraining.png", "plots/convergence.png"} <= plots
    assert "config.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    models = client.search_logged_models([parent.info.experiment_id])
    assert len(models) == 1 and models[0].source_run_id == parent.info.run_id
    assert {"plots/partial_dependence.png", "plots/cv_roc.png", "plots/automation.png",
            "plots/training_curves.png"} <= plots  # the GP was fitted within 2 trials (1 random point)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.md", "search_space.yaml", "curves"} <= artifacts
    # The run page's Description is the summary: choices, CV and test metrics against the oracle.
    summary = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/summary.md")
    assert parent.data.tags["mlflow.note.content"] == summary and summary.startswith(f"**{parent.info.run_name}**: CV ")
    assert parent.inputs.dataset_inputs[0].dataset.digest == parent.data.params["data.content_hash"][:36]
    model = mlflow.pyfunc.load_model(models[0].model_uri)
    assert models[0].name == parent.info.run_name  # models are named after their run
    # The logged model reads raw tasks as the actions-history file holds them.
    import json

    import pandas as pd

    raw = json.loads(Path(history_path).read_text())
    tasks = list(raw)[:7]
    out = model.predict(pd.DataFrame({"task": tasks, "entry": [raw[t] for t in tasks]}))
    data = load_dataset(cfg)
    columns = [f"p_{c}" for c in data.classes]
    assert list(out["task"]) == tasks and set(columns) <= set(out.columns)
    np.testing.assert_allclose(out[columns].sum(axis=1), 1.0, rtol=1e-5)
    from wtc.data import build_features

    history = load_history(history_path)
    X, _ = build_features(history, cfg.data.view)
    rows = [history.tasks.index(t) for t in tasks]
    np.testing.assert_allclose(out[columns].to_numpy(), result.pipeline.predict_proba(X[rows]), rtol=1e-5)
    assert set(out["decision"]) <= {"AUTO", "REVIEW"} and model.metadata.signature is not None
    assert parent.data.params["model.max_depth"] and "best.max_depth" not in parent.data.params
    children = client.search_runs([parent.info.experiment_id], filter_string="tags.mlflow.parentRunId != ''")
    assert all(c.info.end_time - c.info.start_time >= 1000 * c.data.metrics["time/trial_s"] - 50 for c in children)
    # The scores are the model's metrics too, logged once (in one batch with the run's, not
    # copied by MLflow from each metric's history).
    linked = {m.key: m.value for m in models[0].metrics}
    assert linked["test/roc_auc"] == parent.data.metrics["test/roc_auc"] == result.metrics["test/roc_auc"]
    assert {"cv/roc_auc_mean", "test/coverage_at_p95", "oracle/log_loss"} <= set(linked)
    assert len(client.get_metric_history(parent.info.run_id, "test/roc_auc")) == 1
    # What the record costs: everything after the final fit plus the MLflow calls before it.
    times = result.metrics
    assert 0 < times["time/post_training_s"] < times["time/record_s"] <= times["time/total_s"]
    assert times["time/tracking_s"] + times["time/diagnostics_s"] <= times["time/record_s"]
    assert times["time/post_training_cpu_s"] > 0 and parent.data.metrics["time/record_s"] > 0


@pytest.mark.slow
def test_light_diagnostics_log_the_figures_inputs_and_draw_them_on_demand(history_path, tracking_uri, tmp_path):
    from wtc.ops.deferred import draw_run_figures

    light = ["model=logreg", "search=gp", "search.n_trials=3", "diagnostics=light", "tracking.log_plots=true",
             "tracking.log_model=false", *fast_overrides("logreg")]
    result = run(make_cfg(history_path, tracking_uri, light))
    client, parents, _ = runs_of(tracking_uri)
    run_id = parents[0].info.run_id
    # The job draws nothing: it logs what the figures are drawn from, and says how to draw them.
    assert not client.list_artifacts(run_id, "plots")
    assert [a.path for a in client.list_artifacts(run_id, "figures")] == ["figures/inputs.npz"]
    assert parents[0].data.tags["wtc.figures"] == "on_demand"
    assert f"`wtc runs figures {run_id}`" in parents[0].data.tags["mlflow.note.content"]
    assert result.metrics["time/diagnostics_s"] < result.metrics["time/record_s"]

    done = list(draw_run_figures(tracking_uri, [run_id]))
    assert [d.outcome for d in done] == ["drawn"]
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert plots == set(done[0].figures)
    assert {"plots/roc.png", "plots/cv_roc.png", "plots/confusion_matrix.png", "plots/overtraining.png",
            "plots/calibration.png", "plots/class_balance.png", "plots/automation.png", "plots/convergence.png",
            "plots/feature_importance.png"} == plots
    # The GP was fitted (3 trials, 2 random points) but its surface is not drawn in a sweep.
    drawn = client.get_run(run_id)
    assert drawn.data.tags["wtc.figures"] == "drawn"
    summary = drawn.data.tags["mlflow.note.content"]
    assert "## Figures\n" in summary and "- `plots/automation.png`" in summary and "wtc runs figures" not in summary
    assert [d.outcome for d in draw_run_figures(tracking_uri, [run_id])] == ["already drawn"]

    # The same run drawing its figures in the job draws the very same pictures.
    now_uri = f"sqlite:///{tmp_path}/now.db"
    run(make_cfg(history_path, now_uri, [*light, "diagnostics.figures=now"]))
    now_client, now_parents, _ = runs_of(now_uri)
    now_id = now_parents[0].info.run_id
    assert {a.path for a in now_client.list_artifacts(now_id, "plots")} == plots
    assert not now_client.list_artifacts(now_id, "figures")
    for artifact in ("plots/roc.png", "plots/overtraining.png", "plots/cv_roc.png"):
        assert (Path(client.download_artifacts(run_id, artifact, str(tmp_path / "a"))).read_bytes()
                == Path(now_client.download_artifacts(now_id, artifact, str(tmp_path / "b"))).read_bytes()), artifact


def test_figures_on_demand_is_checked(history_path, tracking_uri):
    from wtc.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown diagnostics.figures 'later'; choose one of now, on_demand"):
        run(make_cfg(history_path, tracking_uri, ["diagnostics.figures=later"]))


@pytest.mark.slow
def test_same_seed_same_numbers(history_path, tracking_uri):
    overrides = ["model=logreg", "search=gp", "resample=smote"]
    first = run(make_cfg(history_path, tracking_uri, overrides)).metrics
    second = run(make_cfg(history_path, tracking_uri, overrides)).metrics
    for key in first:
        if not key.startswith("time/"):
            assert first[key] == second[key] or (math.isnan(first[key]) and math.isnan(second[key])), key
    other = run(make_cfg(history_path, tracking_uri, overrides + ["seed=1"])).metrics
    assert other["test/log_loss"] != first["test/log_loss"]


def test_failed_run_is_marked_failed(history_path, tracking_uri, monkeypatch):
    # (model.estimator.C=-1 used to fail inside the run; it is now refused before one opens: test_config.py)
    def refit_fails(*args, **kwargs):
        raise ValueError("the refit of C failed")

    monkeypatch.setattr("wtc.run.experiment.fit_final_model", refit_fails)
    cfg = make_cfg(history_path, tracking_uri, ["model=logreg", "search=none"])
    with pytest.raises(Exception, match="C"):
        run(cfg)
    _, parents, children = runs_of(tracking_uri)
    assert [p.info.status for p in parents] == ["FAILED"]
    assert "C" in parents[0].data.tags["error"]
    assert all(c.info.status != "RUNNING" for c in children)


def test_no_workflow_straddles_train_and_test(history_path, tracking_uri):
    data = load_dataset(make_cfg(history_path, tracking_uri))
    train, test = GroupedCV(2).holdout(data.y, data.groups, 0.2, 0, data.dates)
    assert not set(data.groups[train]) & set(data.groups[test])
    assert abs(len(test) / len(data.y) - 0.2) < 0.05
    for cv in (GroupedCV(3), TemporalCV(3)):
        for tr, va in cv.folds(data.y[train], data.groups[train], 0, data.dates.iloc[train]):
            assert not set(data.groups[train][tr]) & set(data.groups[train][va])
    temporal_train, temporal_test = TemporalCV(2).holdout(data.y, data.groups, 0.2, 0, data.dates)
    assert data.dates.iloc[temporal_train].max() <= data.dates.iloc[temporal_test].min()


@pytest.mark.slow
def test_resampling_sees_only_training_rows(history_path, tracking_uri):
    """A recording sampler in the resample slot: every fit sees training rows only."""
    history = load_history(history_path)
    cfg = make_cfg(history_path, tracking_uri, ["model=logreg", "search=none", "scaler=none", "data.extras=[total]",
                                            "+resample._target_=tests.spies.RecordingSampler"])
    data = load_dataset(cfg)
    # Replace the extra column by a row id so the spy can tell which rows it was given.
    data_ids = np.arange(1, len(data.y) + 1, dtype=np.float32)
    import wtc.run.experiment as experiment

    original = experiment.load_dataset

    def with_ids(cfg_):
        loaded = original(cfg_)
        X = loaded.X.tolil()
        X[:, -1] = data_ids[:, None]
        loaded.X = X.tocsr()
        return loaded

    spies.SEEN.clear()
    experiment_load = experiment.load_dataset
    experiment.load_dataset = with_ids
    try:
        run(cfg)
    finally:
        experiment.load_dataset = experiment_load
    train, test = GroupedCV(2).holdout(data.y, data.groups, 0.2, 0, data.dates)
    test_ids = set(data_ids[test])
    folds = GroupedCV(2).folds(data.y[train], data.groups[train], 0)
    assert len(spies.SEEN) == len(folds) + 1  # each CV fold, then the refit
    for seen, (tr, va) in zip(spies.SEEN, folds):
        assert set(seen) == set(data_ids[train][tr])
        assert not set(seen) & set(data_ids[train][va]) and not set(seen) & test_ids
    assert set(spies.SEEN[-1]) == set(data_ids[train])
    assert len(history.tasks) == len(data.y) + data.n_unlabelled


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["cv=temporal", "search=gp"],
    ["cv=stratified", "search=tpe", "metric=log_loss"],
    ["cv=grouped", "search=gp", "metric=gmean", "scaler=standard", "resample=under"],
    ["cv=grouped", "search=tpe", "metric=f1_weighted", "scaler=maxabs", "resample=svmsmote"],
])
def test_cv_search_and_objective_choices_run(history_path, tracking_uri, overrides):
    metrics = run(make_cfg(history_path, tracking_uri, ["model=logreg", *overrides])).metrics
    assert math.isfinite(metrics["test/roc_auc"]) and math.isfinite(metrics["cv/log_loss_mean"])
    metric = next((o.split("=")[1] for o in overrides if o.startswith("metric=")), "roc_auc")
    sign = 1 if metric == "log_loss" else -1
    assert metrics["objective"] == pytest.approx(sign * metrics[f"cv/{metric}_mean"])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["action", "action_split", "action_split_aggregated", "splitting", "xrootd",
                                    "memory"])
def test_multiclass_targets_merge_rare_classes_and_align_the_oracle(history_path, tracking_uri, target):
    cfg = make_cfg(history_path, tracking_uri, [f"target={target}", "model=logreg", "search=none"])
    data = load_dataset(cfg)
    counts = np.bincount(data.y, minlength=len(data.classes))
    rare = [c for c, n in zip(data.classes, counts) if n < 20 and c != "other"]
    assert len(rare) <= 1  # a lone rare class is kept as it is: merging it would only rename it
    np.testing.assert_allclose(data.oracle.sum(axis=1), 1.0, rtol=1e-9)
    assert data.oracle.shape == (len(data.y), len(data.classes))
    result = run(cfg)
    assert result.classes == data.classes
    assert math.isfinite(result.metrics["oracle/log_loss"]) and math.isfinite(result.metrics["test/f1_macro"])
    _, parents, _ = runs_of(tracking_uri, f"wtc-{target}")
    assert len(parents) == 1 and parents[0].info.run_id == result.run_id


def test_merge_rare_classes():
    from wtc.data.dataset import merge_rare_classes

    y = np.array([0] * 30 + [1] * 25 + [2] * 3 + [3] * 2)
    merged, classes, mapping = merge_rare_classes(y, ["a", "b", "c", "d"], min_count=20)
    assert classes == ["a", "b", "other"]
    assert np.bincount(merged).tolist() == [30, 25, 5]
    proba = np.array([[0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_allclose(proba @ mapping, [[0.1, 0.2, 0.7]])
    same, names, _ = merge_rare_classes(y, ["a", "b", "c", "d"], min_count=0)
    assert names == ["a", "b", "c", "d"] and (same == y).all()
    lone, names, _ = merge_rare_classes(y[:-2], ["a", "b", "c"], min_count=20)
    assert names == ["a", "b", "c"]


EXTRA_TREES = """\
# Written by the test: a model family nobody configured before.
name: extra_trees
estimator:
  _target_: sklearn.ensemble.ExtraTreesClassifier
  n_estimators: 20
  random_state: ${seed}
space:
  max_depth: {low: 2, high: 12, type: int}
  max_features: {choices: [sqrt, log2]}
"""


@pytest.mark.slow
def test_a_new_model_family_is_one_yaml_file(history_path, tracking_uri, tmp_path):
    """Copy conf/, add one YAML file, and the family runs end to end with its library in the model's requirements."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "model" / "extra_trees.yaml").write_text(EXTRA_TREES)
    cfg = compose_cfg([f"data.path={history_path}", f"tracking.uri={tracking_uri}", "model=extra_trees", "search=gp",
                       "search.n_trials=2", "cv.n_splits=2", "n_jobs=1", "tracking.log_plots=false"], conf=conf)
    result = run(cfg)
    assert type(result.pipeline.named_steps["model"]).__name__ == "ExtraTreesClassifier"
    assert math.isfinite(result.metrics["test/roc_auc"])
    client, parents, children = runs_of(tracking_uri)
    assert len(children) == 2 and parents[0].data.params["model.name"] == "extra_trees"
    (logged,) = client.search_logged_models([parents[0].info.experiment_id])
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"{logged.artifact_location}/requirements.txt")
    requirements = Path(local).read_text()
    assert "scikit-learn==" in requirements
    assert "xgboost" not in requirements and "lightgbm" not in requirements  # derived, not a hand list


PRESETS = options("experiment")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_composes(preset):
    """The preset composes, and so does every job of the sweep it declares."""
    from wtc.run.experiment import check_config

    cfg = compose_cfg([f"+experiment={preset}"], hydra=True)
    check_config(cfg)
    params = dict(cfg.hydra.sweeper.params or {})
    for key, values in params.items():
        for value in str(values).split(","):
            job = compose_cfg([f"+experiment={preset}", f"{key}={value}"], hydra=True)
            check_config(job)
            assert job.hydra.runtime.choices.get(key, value) == value
    # On a cluster the launcher is replaced whole; nothing in the preset may assume joblib's keys.
    for launcher in ("slurm", "local"):
        job = compose_cfg([f"+experiment={preset}", f"hydra/launcher={launcher}"], hydra=True)
        assert job.hydra.runtime.choices["hydra/launcher"] == launcher


def test_a_view_without_columns_is_a_config_error(tmp_path, tracking_uri):
    """A good-sites view of a history with bad sites only: one clear error before any run is opened."""
    from wtc.errors import ConfigError

    history = {f"/wf{i}_T_180412_131301_1/task": {"errors": {"bad_sites": {"8001": {"T2_US_MIT": i + 1}}},
                                                  "parameters": {"action": "acdc" if i % 2 else "clone"}}
               for i in range(12)}
    path = write_json(tmp_path / "bad_only.json", history)
    with pytest.raises(ConfigError, match="view 'good' has no column"):
        run(make_cfg(path, tracking_uri, ["data=good", "search=none", "model=logreg", "target.min_class_count=0"]))
    client = mlflow.MlflowClient(tracking_uri)
    assert client.get_experiment_by_name("wtc-binary") is None or not runs_of(tracking_uri)[1]
