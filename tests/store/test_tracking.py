"""Tests for wtc.store: store setup, parent/child runs, failure handling, pyfunc models."""

import json
import multiprocessing
import os
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pytest
import scipy.sparse as sp
from mlflow.exceptions import MlflowException
from omegaconf import OmegaConf

from wtc.interrupt import Terminated
from wtc.store import (
    RunTracker,
    TrackingSetupCallback,
    default_tracking_uri,
    init_store,
    load_model,
)
from wtc.store.faults import StoreFault

EXPERIMENT = "wtc-test"


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# Heavy imports (xgboost, imblearn, matplotlib) stay inside the tests that need them:
# the spawned writer processes import this module too.


@pytest.fixture(scope="module")
def memory_dir(tmp_path_factory):
    """A scratch folder in memory (/dev/shm) where there is one, else on disk.

    A fresh SQLite store runs dozens of schema migrations, each with an fsync: ~10 s on a
    busy disk, ~1.5 s in memory. Tests that need a store made from nothing make it here.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("stores")
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="wtc-test-") as scratch:
        yield Path(scratch)


@pytest.fixture
def uri(tracking_uri):
    """A fresh store in tmp_path/mlruns, copied from the migrated template (tests/conftest.py)."""
    return tracking_uri


@pytest.fixture
def client(uri):
    init_store(uri, EXPERIMENT)
    return mlflow.MlflowClient(tracking_uri=uri)


def _all_runs(client):
    experiments = client.search_experiments()
    return client.search_runs([e.experiment_id for e in experiments], max_results=1000)


def _assert_nothing_running(client):
    running = [r.info.run_id for r in _all_runs(client) if r.info.status == "RUNNING"]
    assert running == []


# --------------------------------------------------------------------------- the store
def test_default_tracking_uri_points_into_mlruns(tmp_path, monkeypatch):
    uri = default_tracking_uri(tmp_path / "store")
    assert uri == f"sqlite:///{tmp_path.resolve()}/store/mlflow.db"
    assert (tmp_path / "store").is_dir()
    monkeypatch.chdir(tmp_path)
    assert default_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"


def test_init_store_is_idempotent_and_puts_artifacts_under_mlruns(uri, tmp_path):
    first = init_store(uri, EXPERIMENT)
    assert init_store(uri, EXPERIMENT) == first
    experiment = mlflow.MlflowClient(tracking_uri=uri).get_experiment(first)
    assert experiment.name == EXPERIMENT
    assert experiment.artifact_location == (tmp_path / "mlruns" / "artifacts").as_uri()


def test_init_store_defaults_to_the_mlruns_folder_not_to_the_environment(tmp_path, new_store, monkeypatch):
    new_store(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/elsewhere.db")
    experiment_id = init_store(None, EXPERIMENT, mlruns=tmp_path / "mlruns")
    client = mlflow.MlflowClient(tracking_uri=default_tracking_uri(tmp_path / "mlruns"))
    assert client.get_experiment(experiment_id).name == EXPERIMENT
    assert not (tmp_path / "elsewhere.db").exists()


def test_init_store_tolerates_a_concurrent_creator(uri, monkeypatch):
    """Another process creates the experiment between our lookup and our create."""
    existing = init_store(uri, EXPERIMENT)
    looked_up = []
    original = mlflow.MlflowClient.get_experiment_by_name

    def stale_lookup(self, name):
        looked_up.append(name)
        return None if len(looked_up) == 1 else original(self, name)

    monkeypatch.setattr(mlflow.MlflowClient, "get_experiment_by_name", stale_lookup)
    assert init_store(uri, EXPERIMENT) == existing
    assert looked_up == [EXPERIMENT, EXPERIMENT]


def test_init_store_restores_a_deleted_experiment(uri, client):
    experiment_id = init_store(uri, EXPERIMENT)
    client.delete_experiment(experiment_id)
    assert init_store(uri, EXPERIMENT) == experiment_id
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


def _write_runs(uri, worker, n_runs):
    for i in range(n_runs):
        with RunTracker(uri, "wtc-binary", run_name=f"w{worker}-{i}") as tracker:
            tracker.log_metrics({"cv/roc_auc_mean": i / n_runs})


@pytest.mark.slow
def test_hydra_callback_creates_a_fresh_store_that_parallel_writers_share(
    memory_dir, monkeypatch
):
    """The production path: the callback creates the store (tracking.uri null, so under
    the working directory) in the main process, then two spawned jobs log 10 runs each."""
    tmp_path = memory_dir / "fresh"
    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    config = OmegaConf.create({
        "target": {"name": "binary"},
        "tracking": {"uri": None, "experiment": "wtc-${target.name}"},
    })
    TrackingSetupCallback().on_multirun_start(config=config)
    uri = default_tracking_uri(tmp_path / "mlruns")
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("wtc-binary")
    assert experiment.artifact_location == (tmp_path / "mlruns" / "artifacts").as_uri()

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_runs, args=(uri, w, 10)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert sorted(r.info.run_name for r in runs) == sorted(
        f"w{w}-{i}" for w in range(2) for i in range(10)
    )
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert all("cv/roc_auc_mean" in r.data.metrics for r in runs)


def test_hydra_callback_on_run_start_creates_experiment(uri):
    config = OmegaConf.create({"tracking": {"uri": uri, "experiment": "wtc-action"}})
    TrackingSetupCallback(some_option=1).on_run_start(config=config)
    assert mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("wtc-action") is not None


def test_hydra_callback_without_tracking_config_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    TrackingSetupCallback().on_run_start(config=OmegaConf.create({"seed": 1}))
    assert list(tmp_path.iterdir()) == []


def test_hydra_callback_with_unresolvable_experiment_creates_no_experiment(uri):
    """A name that only resolves per job (e.g. a swept target) is left to the jobs."""
    config = OmegaConf.create({"tracking": {"uri": uri, "experiment": "wtc-${target.name}"}})
    TrackingSetupCallback().on_multirun_start(config=config)
    names = [e.name for e in mlflow.MlflowClient(tracking_uri=uri).search_experiments()]
    assert names == ["Default"]


# ---------------------------------------------------------------------------------- runs
def test_parent_and_children_are_queryable(uri, client):
    params = {
        "model": {"estimator": {"max_depth": 3, "learning_rate": 0.1}, "space": {"n": [1, 2]}},
        "seed": 7,
        "long": "x" * 10_000,
        **{f"p{i:03d}": i for i in range(150)},  # more than one batch of 100
    }
    metrics = {f"cv/m{i}_mean": i / 30 for i in range(28)}
    metrics |= {"test/gmean": 0.8, "oracle/log_loss": 0.3, "test/nan": float("nan")}
    metrics["test/none"] = None
    with RunTracker(uri, EXPERIMENT, run_name="parent", tags={"view": "combined"}) as tracker:
        tracker.log_params(params)
        tracker.log_metrics(metrics)
        tracker.set_tags({"seed": 7})
        children = [
            tracker.child_run(f"trial-{k}", {"max_depth": k}, {"cv/roc_auc_mean": 0.5 + k / 10})
            for k in range(3)
        ]
        with tracker.start_child("trial-3", tags={"sampler": "tpe"}) as child:
            child.log_metrics({"cv/roc_auc_mean": 0.9}, step=2)
        tracker.log_text("hello", "reports/summary.md")
        tracker.log_dict({"a": 1}, "config.yaml")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        tracker.log_figure(fig, "plots/roc.png")
    assert not plt.fignum_exists(fig.number)
    assert tracker.overhead_s > 0

    parent = client.get_run(tracker.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.experiment_id == tracker.experiment_id
    assert parent.data.params["model.estimator.max_depth"] == "3"
    assert parent.data.params["model.space.n"] == "[1, 2]"
    assert parent.data.params["p149"] == "149"
    assert len(parent.data.params["long"]) == 6000
    assert parent.data.metrics["cv/m27_mean"] == pytest.approx(0.9)
    assert parent.data.metrics["oracle/log_loss"] == pytest.approx(0.3)
    assert "test/nan" not in parent.data.metrics and "test/none" not in parent.data.metrics
    assert parent.data.tags["view"] == "combined" and parent.data.tags["seed"] == "7"
    artifacts = {a.path for a in client.list_artifacts(tracker.run_id)}
    assert artifacts == {"config.yaml", "plots", "reports"}
    assert client.list_artifacts(tracker.run_id, "plots")[0].path == "plots/roc.png"

    nested = client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{tracker.run_id}'"
    )
    assert {r.info.run_id for r in nested} == set(children) | {child.run_id}
    assert {r.info.status for r in nested} == {"FINISHED"}
    trial = client.get_run(children[2])
    assert trial.data.params == {"max_depth": "2"}
    assert trial.data.metrics == {"cv/roc_auc_mean": pytest.approx(0.7)}
    assert client.get_run(child.run_id).data.tags["sampler"] == "tpe"
    _assert_nothing_running(client)


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        (ValueError("bad\nthing " + "y" * 6000), "ValueError: bad thing ", "FAILED"),
        (KeyboardInterrupt(), "KeyboardInterrupt", "KILLED"),
        (Terminated("SIGTERM"), "Terminated: SIGTERM", "KILLED"),
    ],
)
def test_exception_marks_run_and_children_failed_or_killed(uri, client, error, expected, status):
    with pytest.raises(type(error)):
        with RunTracker(uri, EXPERIMENT) as tracker:
            tracker.child_run("done", {"k": 1}, {"cv/x_mean": 1.0})
            left_open = tracker.start_child("left-open")  # held: really left open, not closed by the GC
            left_open.__enter__()
            with tracker.start_child("failing"):
                raise error
    parent = client.get_run(tracker.run_id)
    assert parent.info.status == status
    assert getattr(error, "run_id", tracker.run_id) == tracker.run_id  # an interruption names its run
    assert parent.data.tags["error"].startswith(expected)
    assert "\n" not in parent.data.tags["error"]
    assert len(parent.data.tags["error"]) <= 5000
    statuses = {
        r.info.run_name: r.info.status
        for r in client.search_runs(
            [tracker.experiment_id], f"tags.mlflow.parentRunId = '{tracker.run_id}'"
        )
    }
    assert statuses == {"done": "FINISHED", "left-open": status, "failing": status}
    _assert_nothing_running(client)


def test_a_run_after_a_failed_run_starts_cleanly(uri, client):
    with pytest.raises(RuntimeError):
        with RunTracker(uri, EXPERIMENT):
            raise RuntimeError("boom")
    with RunTracker(uri, EXPERIMENT) as tracker:
        pass
    assert client.get_run(tracker.run_id).info.status == "FINISHED"
    assert mlflow.active_run() is None


# -------------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def fitted():
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import Pipeline
    from sklearn.preprocessing import RobustScaler
    from xgboost import XGBClassifier

    rng = np.random.default_rng(0)
    X = sp.random(150, 30, density=0.15, format="csr", dtype=np.float32, random_state=rng)
    X.data = np.ceil(X.data * 100).astype(np.float32)
    y = np.r_[np.zeros(110, dtype=int), np.ones(40, dtype=int)]
    pipeline = Pipeline([
        ("scaler", RobustScaler(with_centering=False)),
        ("resampler", SMOTE(random_state=0)),
        ("model", XGBClassifier(n_estimators=5, random_state=0)),
    ]).fit(X, y)
    return pipeline, X


def test_log_model_round_trip(uri, client, fitted):
    pipeline, X = fitted
    class_names = ["acdc", "clone"]
    feature_names = [f"f{i}" for i in range(X.shape[1])]
    with RunTracker(uri, EXPERIMENT) as tracker:
        model_uri = tracker.log_model(
            pipeline, X, class_names, feature_names, registered_model_name="wtc-test-model"
        )
    expected = pipeline.predict_proba(X)

    model = load_model(model_uri, tracking_uri=uri)
    for rows in (X.toarray(), X, X.tocsc()):
        predicted = model.predict(rows)
        assert list(predicted.columns) == class_names
        np.testing.assert_allclose(predicted.to_numpy(), expected, rtol=1e-6)
    with pytest.raises(MlflowException):  # the signature holds the number of features
        model.predict(X.toarray()[:, :-1])

    info = mlflow.models.get_model_info(model_uri)
    (tensor,) = info.signature.inputs.inputs
    assert (tensor.type, tensor.shape) == (np.dtype("float32"), (-1, X.shape[1]))
    assert info.signature.outputs.input_names() == class_names
    assert info.saved_input_example_info is not None
    assert info.run_id == tracker.run_id

    local = mlflow.artifacts.download_artifacts(model_uri)
    assert json.loads(open(f"{local}/artifacts/class_names.json").read()) == class_names
    assert json.loads(open(f"{local}/artifacts/feature_names.json").read()) == feature_names
    assert open(f"{local}/code/wtc/store/pyfunc.py").read().startswith('"""The logged model')
    versions = client.search_model_versions("name = 'wtc-test-model'")
    assert [v.run_id for v in versions] == [tracker.run_id]
    runs_uri_model = load_model(f"runs:/{tracker.run_id}/model", tracking_uri=uri)
    np.testing.assert_allclose(runs_uri_model.predict(X).to_numpy(), expected, rtol=1e-6)


def test_log_model_logs_what_pyfunc_log_model_logs_without_loading_it_back(uri, client, fitted, monkeypatch):
    """The model is logged as mlflow.pyfunc.log_model logs it, minus MLflow's serving check
    (load the saved model, predict the example); the check itself passes when run here."""
    import mlflow.models.utils

    from wtc.store.pyfunc import WTCProbabilityModel

    pipeline, X = fitted
    class_names, feature_names = ["acdc", "clone"], [f"f{i}" for i in range(X.shape[1])]
    check = mlflow.models.utils._validate_serving_input
    checked = []
    monkeypatch.setattr(mlflow.models.utils, "_validate_serving_input", lambda *a, **k: checked.append(a))
    with RunTracker(uri, EXPERIMENT) as tracker:
        ours = tracker.log_model(pipeline, X, class_names, feature_names, name="ours")
    assert checked == []  # not loaded back and predicted a second time

    head = X[:5].toarray().astype(np.float32)
    python_model = WTCProbabilityModel(pipeline, class_names, feature_names)
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        theirs = mlflow.pyfunc.log_model(
            name="theirs", python_model=python_model, input_example=head,
            signature=mlflow.models.infer_signature(head, python_model.predict(None, head)))
    assert len(checked) == 1  # what pyfunc.log_model runs after saving

    ours_dir = Path(mlflow.artifacts.download_artifacts(ours))
    theirs_dir = Path(mlflow.artifacts.download_artifacts(theirs.model_uri))
    ours_model, theirs_model = mlflow.models.Model.load(ours_dir), mlflow.models.Model.load(theirs_dir)
    assert ours_model.flavors["python_function"]["loader_module"] == "mlflow.pyfunc.model"
    assert set(ours_model.flavors) == set(theirs_model.flavors) == {"python_function"}
    assert ours_model.signature == theirs_model.signature
    assert ours_model.saved_input_example_info == theirs_model.saved_input_example_info
    assert client.get_logged_model(ours.removeprefix("models:/")).tags.get("mlflow.modelFlavor") == \
        client.get_logged_model(theirs.model_id).tags.get("mlflow.modelFlavor")
    files = {p.name for p in ours_dir.iterdir()}
    assert {"MLmodel", "python_model.pkl", "input_example.json", "serving_input_example.json"} <= files
    served = check(str(ours_dir), (ours_dir / "serving_input_example.json").read_text())
    np.testing.assert_allclose(served.to_numpy(), pipeline.predict_proba(X[:5]), rtol=1e-6)


def test_a_table_is_what_mlflow_load_table_reads_and_the_ui_lists(uri, client):
    import pandas as pd

    first = pd.DataFrame({"class": ["acdc", "clone"], "support": [3, 1], "f1": [0.5, float("nan")]})
    second = pd.DataFrame({"class": ["acdc"], "support": [7]})
    with RunTracker(uri, EXPERIMENT) as tracker:
        tracker.log_table(first, "tables/per_class_test.json")
        tracker.log_table(second, "tables/other.json")
        with pytest.raises(ValueError, match="does not end in .json"):
            tracker.log_table(second, "tables/other.csv")
    run = client.get_run(tracker.run_id)
    assert json.loads(run.data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "tables/per_class_test.json", "type": "table"}, {"path": "tables/other.json", "type": "table"}]
    loaded = client.load_table(tracker.experiment_id, "tables/per_class_test.json", run_ids=[tracker.run_id])
    pd.testing.assert_frame_equal(loaded, first, check_dtype=False)
    assert {a.path for a in client.list_artifacts(tracker.run_id, "tables")} == {
        "tables/per_class_test.json", "tables/other.json"}


def test_log_model_rejects_mismatched_feature_names(uri, client, fitted):
    pipeline, X = fitted
    with pytest.raises(ValueError, match="expected 29 columns"):
        with RunTracker(uri, EXPERIMENT) as tracker:
            tracker.log_model(pipeline, X, ["a", "b"], [f"f{i}" for i in range(29)])
    assert client.get_run(tracker.run_id).info.status == "FAILED"


def test_model_requirements_come_from_the_pipeline_steps():
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import Pipeline
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MaxAbsScaler
    from xgboost import XGBClassifier

    from wtc.store import pipeline_requirements

    def names(pipeline):
        return {pin.split("==")[0] for pin in pipeline_requirements(pipeline)}

    plain = names(Pipeline([("scaler", MaxAbsScaler()), ("model", LogisticRegression())]))
    assert {"mlflow", "scikit-learn", "imbalanced-learn", "numpy"} <= plain and "xgboost" not in plain
    boosted = names(Pipeline([("resample", SMOTE()), ("model", XGBClassifier())]))
    assert "xgboost" in boosted and "lightgbm" not in boosted
    nested = names(Pipeline([("model", CalibratedClassifierCV(XGBClassifier()))]))  # a meta-estimator's inner one
    assert "xgboost" in nested
    assert all("==" in pin for pin in pipeline_requirements(Pipeline([("model", XGBClassifier())])))


def test_a_dataset_logged_by_two_jobs_at_once_is_linked_not_lost(tracking_uri, monkeypatch):
    """The loser of the insert race (a unique-key error from the store) tries again and links the winner's row."""
    calls = []
    original = mlflow.MlflowClient.log_inputs

    def racing(self, run_id, datasets=None, models=None):
        calls.append(run_id)
        if len(calls) == 1:  # what PostgreSQL answered a parallel sweep behind an MLflow server
            raise MlflowException('duplicate key value violates unique constraint "dataset_pk"')
        return original(self, run_id, datasets=datasets, models=models)

    monkeypatch.setattr(mlflow.MlflowClient, "log_inputs", racing)
    with RunTracker(tracking_uri, EXPERIMENT) as tracker:
        tracker.log_dataset("history.json", "a" * 64, "/data/history.json")
        run_id = tracker.run_id
    run = mlflow.MlflowClient(tracking_uri).get_run(run_id)
    assert len(calls) == 2 and [d.dataset.name for d in run.inputs.dataset_inputs] == ["history.json"]
    monkeypatch.setattr(mlflow.MlflowClient, "log_inputs",
                        lambda *a, **k: (_ for _ in ()).throw(MlflowException("INVALID_PARAMETER_VALUE: bad")))
    # (a store error inside a run is one line: a StoreFault naming MLflow's error)
    with pytest.raises(StoreFault, match="bad"), RunTracker(tracking_uri, EXPERIMENT) as tracker:
        tracker.log_dataset("history.json", "b" * 64, "/data/history.json")  # other errors are not retried
