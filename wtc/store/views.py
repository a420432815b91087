"""The leaderboard view of an experiment: the MLflow UI's runs table sorted by the CV objective.

MLflow 3.17's UI keeps a saved ("shared") view of the runs table in an experiment tag
``mlflow.sharedViewState.<key>`` and opens it from the URL
``#/experiments/<id>/runs?viewStateShareKey=<key>``. The tag holds what the UI itself writes
when a user saves a view (``mlflow/server/js`` of 3.17.2): an envelope
``{"name", "createdAt", "updatedAt", "state"}`` whose ``state`` is the JSON string of the
runs page's search facets (filter, sort) merged with its UI state (columns, ...). The format
is UI-internal: ``tests/ops/test_ui_render.py`` renders it in headless Chromium.

``workflowType=machine_learning`` opens the page in model-training mode (not GenAI's traces).
"""

from __future__ import annotations

import json
import time

import mlflow

from wtc.evaluation.metrics import REGISTRY

__all__ = ["PARENTS_ONLY", "UI_ADDRESS", "VIEW_TAG_PREFIX", "ensure_leaderboard_view", "experiment_ids",
           "held_objective", "leaderboard_state", "leaderboard_url", "leaderboards", "view_key"]

VIEW_TAG_PREFIX = "mlflow.sharedViewState."
#: Where ``wtc ui`` (``mlflow ui``) serves the store by default.
UI_ADDRESS = "http://127.0.0.1:5000"
#: The runs table's search filter of the leaderboard: parent runs (jobs) only, no trial, no comparison run.
PARENTS_ONLY = "tags.mlflow.parentRunId IS NULL AND tags.`wtc.model` IS NOT NULL"
#: The default objective (``metric`` of conf/config.yaml).
DEFAULT_OBJECTIVE = "roc_auc"
_CHOICES = ("model.name", "data.view", "resample", "scaler")


def _key(kind: str, name: str) -> str:
    return f"{kind}.`{name}`"


def view_key(objective: str = DEFAULT_OBJECTIVE) -> str:
    """The share key of the leaderboard ranked by ``cv/<objective>_mean``."""
    return f"wtc-leaderboard-{objective.replace('_', '-')}"


def leaderboard_state(objective: str = DEFAULT_OBJECTIVE) -> dict:
    """The runs page's state of the leaderboard: parents only, best first by the CV objective, its columns."""
    metrics = [f"cv/{objective}_mean", f"cv/{objective}_std", f"test/{objective}", f"oracle/{objective}"]
    for extra in ("roc_auc", "log_loss"):
        if extra != objective:
            metrics += [f"test/{extra}"]
    metrics += ["test/coverage_at_p95"]
    columns = [_key("metrics", m) for m in metrics] + [_key("params", p) for p in _CHOICES]
    columns += [_key("attributes", "Duration")]
    return {
        # search facets
        "searchFilter": PARENTS_ONLY,
        "orderByKey": _key("metrics", f"cv/{objective}_mean"),
        "orderByAsc": not getattr(REGISTRY.get(objective), "greater_is_better", True),
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        # UI state (the keys the UI leaves out of a shared view are left out)
        "selectedColumns": columns,
        "columnOrder": [],
        "columnWidths": {},
        "runsHiddenMode": "SHOW_ALL",
        "viewMaximized": False,
        "runListHidden": False,
        "isAccordionReordered": False,
        "useGroupedValuesInCharts": True,
        "hideEmptyCharts": True,
        "groupBy": None,
        "groupsExpanded": {},
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }


def _envelope(objective: str, now_ms: int) -> str:
    state = json.dumps(leaderboard_state(objective), separators=(",", ":"))
    return json.dumps({"name": f"Leaderboard (cv {objective})", "createdAt": now_ms, "updatedAt": now_ms,
                       "state": state}, separators=(",", ":"))


def ensure_leaderboard_view(client: mlflow.MlflowClient, experiment, objective: str = DEFAULT_OBJECTIVE) -> str:
    """Give ``experiment`` (an MLflow Experiment) its leaderboard view for ``objective`` if it lacks it
    or holds an older one; return the view's share key."""
    key = view_key(objective)
    tag = VIEW_TAG_PREFIX + key
    held = experiment.tags.get(tag)
    try:
        same = held is not None and json.loads(json.loads(held)["state"]) == leaderboard_state(objective)
    except (ValueError, KeyError, TypeError):
        same = False
    if not same:
        client.set_experiment_tag(experiment.experiment_id, tag, _envelope(objective, int(time.time() * 1000)))
    return key


def leaderboard_url(experiment_id: str, objective: str = DEFAULT_OBJECTIVE, address: str = UI_ADDRESS) -> str:
    """The URL that opens the experiment's leaderboard in the MLflow UI, in model-training mode."""
    return (f"{address.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={view_key(objective)}"
            "&workflowType=machine_learning")


def experiment_ids(tracking_uri: str, names) -> dict[str, tuple[str, str | None]]:
    """``name: (id, objective of its leaderboard view or None)`` of the named experiments a store holds."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = {}
    for name in dict.fromkeys(names):
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            found[name] = (experiment.experiment_id, held_objective(experiment))
    return found


def leaderboards(tracking_uri: str, address: str = UI_ADDRESS) -> list[tuple[str, str]]:
    """``(experiment name, leaderboard URL)`` of each active experiment of a store holding a leaderboard view
    (its own objective's where it has one beside the default's)."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    found = []
    for experiment in client.search_experiments():
        objective = held_objective(experiment)
        if objective is not None:
            found.append((experiment.name, leaderboard_url(experiment.experiment_id, objective, address)))
    return found


def held_objective(experiment) -> str | None:
    """The objective of the leaderboard view an experiment holds (its own, else the default), if any."""
    keys = [k[len(VIEW_TAG_PREFIX):] for k in experiment.tags if k.startswith(VIEW_TAG_PREFIX + "wtc-leaderboard-")]
    if not keys:
        return None
    chosen = next((k for k in sorted(keys) if k != view_key()), keys[0])
    return chosen[len("wtc-leaderboard-"):].replace("-", "_")
