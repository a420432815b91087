"""What optuna-dashboard reads from a stored search: the objective named after the metric, with its
true direction and value (the searchers still minimise), the MLflow runs, and where a run's search
is stored by default (a study of its own) or on request (a shared, resumable one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
import scipy.sparse as sp
from imblearn.pipeline import Pipeline
from optuna.study import StudyDirection
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from tests.factories import compose_cfg
from wtc.sqlite import optuna_storage_url
from wtc.tuning import GPSearcher, StudySpec, TPESearcher, search, study_name, study_spec
from wtc.tuning.dashboard import dashboard_command

SPACE = {"C": {"low": 1e-4, "high": 10.0, "log": True}}


def pipeline():
    return Pipeline([("model", LogisticRegression(max_iter=200))])


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(200, 8, n_informative=3, flip_y=0.2, random_state=0)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    return sp.csr_matrix(X), y, folds


def searched(kind, metric, data, spec, n_trials=3, on_evaluated=None):
    X, y, folds = data
    options = {"pruner": "none"} if kind is TPESearcher else {}
    return search(pipeline(), kind(SPACE, n_trials, 0, **options), X, y, folds, 2, metric,
                  study=spec, on_evaluated=on_evaluated)


def stored(spec):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=spec.name, storage=spec.url)


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
@pytest.mark.parametrize(("metric", "direction"), [("roc_auc", StudyDirection.MAXIMIZE),
                                                   ("log_loss", StudyDirection.MINIMIZE)])
def test_the_study_holds_the_named_objective_with_its_true_direction_and_value(kind, metric, direction, data,
                                                                               tmp_path):
    spec = StudySpec(f"sqlite:///{tmp_path}/optuna.db", "s", heartbeat_s=None, metric=metric, run_id="parent-1")
    result = searched(kind, metric, data, spec)
    study = stored(spec)
    assert study.direction == direction and study.metric_names == [f"cv_{metric}"]
    assert study.user_attrs["mlflow_run_id"] == "parent-1"
    # The study holds the CV mean itself (an AUC of 0.7, not -0.7); the searcher minimised its objective.
    true = [t.summary[f"{metric}_mean"] for t in result.trials]
    assert [t.value for t in study.trials] == pytest.approx(true)
    sign = -1 if direction == StudyDirection.MAXIMIZE else 1
    assert [t.value for t in result.trials] == pytest.approx([sign * v for v in true])
    assert study.best_trial.number == result.best.index and study.best_value == pytest.approx(
        result.best.summary[f"{metric}_mean"])
    if metric == "roc_auc":
        assert all(0.5 < v <= 1 for v in true)  # a real AUC, stored positive


def test_a_maximised_study_resumes_as_the_same_search(data, tmp_path):
    spec = StudySpec(f"sqlite:///{tmp_path}/optuna.db", "s", heartbeat_s=None, metric="roc_auc")
    first = searched(GPSearcher, "roc_auc", data, spec, n_trials=3)
    resumed = searched(GPSearcher, "roc_auc", data, spec, n_trials=5)
    assert [t.resumed for t in resumed.trials] == [True] * 3 + [False] * 2
    assert [t.value for t in resumed.trials[:3]] == pytest.approx([t.value for t in first.trials])  # minimised again
    assert resumed.searcher.optimizer.yi[:3] == pytest.approx([t.value for t in first.trials])  # the GP is told them


def test_a_study_stored_minimised_before_keeps_its_sign(data, tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    spec = StudySpec(url, "old", heartbeat_s=None)  # what a search stored before: the negated AUC, unnamed
    searched(GPSearcher, "roc_auc", data, spec, n_trials=2)
    spec = StudySpec(url, "old", heartbeat_s=None, metric="roc_auc")
    resumed = searched(GPSearcher, "roc_auc", data, spec, n_trials=3)
    study = stored(spec)
    assert study.direction == StudyDirection.MINIMIZE and study.metric_names == ["neg_cv_roc_auc"]
    assert [t.value for t in study.trials] == pytest.approx([t.value for t in resumed.trials])
    assert all(t.value < 0 for t in study.trials)


def test_a_trial_names_its_child_run_while_running(data, tmp_path):
    spec = StudySpec(f"sqlite:///{tmp_path}/optuna.db", "s", heartbeat_s=None, metric="roc_auc")
    X, y, folds = data
    searcher = TPESearcher(SPACE, 2, 0, pruner="none")

    def link(record):  # what a run does: log the child run, then name it on the stored trial
        searcher.shared.link_run(record.index, f"child-{record.index}")

    search(pipeline(), searcher, X, y, folds, 2, "roc_auc", study=spec, on_evaluated=link)
    study = stored(spec)
    assert [t.user_attrs["mlflow_run_id"] for t in study.trials] == ["child-0", "child-1"]
    # A trial finished elsewhere (another worker) is frozen: the study names its run instead.
    shared = spec.open(3)
    shared.link_run(0, "another")  # trial 0 already names its run: kept
    number = shared.create_running({"C": 0.5}, searcher.distributions)
    shared.finish(number, -0.6)
    shared.link_run(number, "worker-run")
    shared.close()
    study = stored(spec)
    assert study.trials[0].user_attrs["mlflow_run_id"] == "child-0"
    assert study.user_attrs["mlflow_trial_run_ids"] == {str(number): "worker-run"}
    assert study.trials[number].value == pytest.approx(0.6)


def test_a_run_stores_its_search_as_a_study_of_its_own_by_default(tmp_path):
    cfg = compose_cfg(["search=tpe", "metric=log_loss"])
    default = f"sqlite:///{tmp_path}/optuna.db"
    spec = study_spec(cfg, default, "run-1")
    assert (spec.url, spec.name, spec.metric, spec.run_id, spec.temporary) == (
        default, f"{study_name(cfg)}-run-1", "log_loss", "run-1", None)
    assert study_spec(cfg, default, "run-2").name != spec.name  # a relaunch: a new study, a new search
    # An explicit storage keeps the shared, resumable study named after the config.
    shared = study_spec(compose_cfg(["search=tpe", "metric=log_loss", f"search.storage=sqlite:///{tmp_path}/s.db"]),
                        default, "run-1")
    assert (shared.url, shared.name) == (f"sqlite:///{tmp_path}/s.db", study_name(cfg))
    # memory: nothing stored (several workers share a temporary file)
    assert study_spec(compose_cfg(["search.storage=memory"]), default, "run-1") is None
    workers = study_spec(compose_cfg(["search.storage=memory", "search.n_workers=2"]), default, "run-1")
    assert workers.temporary and workers.url != default
    shutil.rmtree(workers.temporary)


def test_the_default_storage_lies_beside_the_mlflow_store(tmp_path):
    assert optuna_storage_url(f"sqlite:///{tmp_path}/mlruns/mlflow.db", "/elsewhere") == \
        f"sqlite:///{tmp_path}/mlruns/optuna.db"
    assert optuna_storage_url("http://127.0.0.1:5000", tmp_path / "mlruns") == f"sqlite:///{tmp_path}/mlruns/optuna.db"


def test_the_dashboard_command_is_this_environments():
    command = dashboard_command("sqlite:////x/mlruns/optuna.db").split()
    assert Path(command[0]).name == "optuna-dashboard" and Path(command[0]).is_file()
    assert command[1:] == ["sqlite:////x/mlruns/optuna.db"]
