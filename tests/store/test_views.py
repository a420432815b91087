"""The leaderboard view every experiment wtc creates carries (wtc.store.views)."""

from __future__ import annotations

import json

import mlflow

from wtc.store.runs import RunTracker
from wtc.store.uri import init_store
from wtc.store.views import (
    PARENTS_ONLY,
    VIEW_TAG_PREFIX,
    leaderboard_state,
    leaderboard_url,
    view_key,
)


def _view(uri: str, experiment_id: str, key: str) -> dict:
    tag = mlflow.MlflowClient(uri).get_experiment(experiment_id).tags[VIEW_TAG_PREFIX + key]
    envelope = json.loads(tag)  # what the MLflow 3.17 UI writes when a user saves a view
    assert set(envelope) == {"name", "createdAt", "updatedAt", "state"} and isinstance(envelope["state"], str)
    assert isinstance(envelope["createdAt"], int)
    return {"name": envelope["name"], **json.loads(envelope["state"])}


def test_a_new_experiment_opens_on_its_leaderboard(tracking_uri):
    experiment_id = init_store(tracking_uri, "wtc-binary")
    view = _view(tracking_uri, experiment_id, "wtc-leaderboard-roc-auc")
    assert view["name"] == "Leaderboard (cv roc_auc)"
    assert view["orderByKey"] == "metrics.`cv/roc_auc_mean`" and view["orderByAsc"] is False
    assert view["searchFilter"] == PARENTS_ONLY
    for column in ("metrics.`cv/roc_auc_mean`", "metrics.`cv/roc_auc_std`", "metrics.`test/roc_auc`",
                   "metrics.`oracle/roc_auc`", "metrics.`test/log_loss`", "metrics.`test/coverage_at_p95`",
                   "params.`model.name`", "params.`data.view`", "params.`resample`", "attributes.`Duration`"):
        assert column in view["selectedColumns"], column
    for left_out in ("runsExpanded", "runsPinned", "runsHidden", "runsVisibilityMap", "autoRefreshEnabled"):
        assert left_out not in view  # the UI leaves these out of a shared view
    assert leaderboard_url(experiment_id) == (
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?viewStateShareKey=wtc-leaderboard-roc-auc"
        "&workflowType=machine_learning")


def test_a_lower_is_better_objective_sorts_ascending_and_the_view_is_written_once(tracking_uri):
    experiment_id = init_store(tracking_uri, "wtc-labels", objective="log_loss")
    view = _view(tracking_uri, experiment_id, view_key("log_loss"))
    assert view["orderByKey"] == "metrics.`cv/log_loss_mean`" and view["orderByAsc"] is True
    assert "metrics.`test/roc_auc`" in view["selectedColumns"]
    before = mlflow.MlflowClient(tracking_uri).get_experiment(experiment_id).tags
    assert init_store(tracking_uri, "wtc-labels", objective="log_loss") == experiment_id
    assert mlflow.MlflowClient(tracking_uri).get_experiment(experiment_id).tags == before  # not rewritten


def test_an_older_experiment_gets_the_view(tracking_uri):
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("old")
    init_store(tracking_uri, "old")
    assert VIEW_TAG_PREFIX + view_key() in client.get_experiment(experiment_id).tags


def test_the_view_filter_shows_parent_runs_only(tracking_uri):
    with RunTracker(tracking_uri, "wtc-binary", run_name="lr", tags={"wtc.model": "logreg"}) as tracker:
        tracker.child_run("trial-000", {"C": 1}, {"cv/roc_auc_mean": 0.9})
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("wtc-binary").experiment_id
    client.create_run(experiment_id, run_name="comparison-x")  # a run without wtc.model (wtc compare's)
    names = [r.info.run_name for r in client.search_runs([experiment_id], leaderboard_state()["searchFilter"])]
    assert names == ["lr"]
