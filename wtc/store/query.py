"""Reading runs back from a tracking store: parent runs as a table, their artifacts, comparison runs."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.exceptions
import pandas as pd
from mlflow.entities import RunStatus, ViewType
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from wtc.errors import WtcError
from wtc.evaluation.ranking import CHOICE_LABELS
from wtc.sqlite import sqlite_db_path
from wtc.store.runs import RunTracker
from wtc.store.uri import check_reachable

__all__ = [
    "CHOICE_PARAMS",
    "COMPARISON_KIND",
    "FINISHED",
    "PARENT_RUN_TAG",
    "METRIC_PREFIXES",
    "SWEEP_TAG",
    "TAG_FIGURES",
    "log_comparison",
    "parent_runs",
    "read_artifact",
    "read_json_artifact",
    "StoreException",
    "store_client",
    "sweep_tag_values",
    "warm_up",
]

#: What MLflow raises for a run, model, version or artifact it cannot find or read; code above the
#: store catches it by this name (only wtc.store imports mlflow).
StoreException = mlflow.exceptions.MlflowException
FINISHED = RunStatus.to_string(RunStatus.FINISHED)
#: The tag MLflow gives a child run (a trial): the id of its parent run.
PARENT_RUN_TAG = MLFLOW_PARENT_RUN_ID

#: The params that say what a run chose (config groups and the few top-level choices).
CHOICE_PARAMS = tuple(CHOICE_LABELS)
#: Metric families a parent run's row carries.
METRIC_PREFIXES = ("cv/", "test/", "oracle/", "oracle_blind/", "oracle_workflow/", "oracle_workflow_blind/",
                   "time/")
SWEEP_TAG = "wtc.sweep"
#: ``on_demand`` while a run's figures wait to be drawn (``wtc runs figures``), ``drawn`` once they are.
TAG_FIGURES = "wtc.figures"
KIND_TAG = "wtc.kind"
#: ``wtc.kind`` of the runs ``wtc compare`` logs; they are records of a comparison, not experiments.
COMPARISON_KIND = "comparison"
_DONE = (FINISHED, RunStatus.to_string(RunStatus.FAILED))
_PAGE = 1000


def store_client(tracking_uri: str) -> mlflow.MlflowClient:
    """A client on an existing store; a missing SQLite file or a server that does not answer is an error
    (MLflow would create the one and retry the other for minutes)."""
    check_reachable(tracking_uri)
    db_path = sqlite_db_path(tracking_uri)
    if db_path is not None and not db_path.is_file():
        raise WtcError(f"no tracking store at {tracking_uri} ({db_path} does not exist); "
                       "run an experiment first or pass --tracking-uri")
    return mlflow.MlflowClient(tracking_uri=tracking_uri)


def _experiments(client: mlflow.MlflowClient, tracking_uri: str, name: str | None) -> list:
    existing = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    if name is None:
        return existing
    chosen = [e for e in existing if e.name == name]
    if not chosen:
        names = ", ".join(sorted(e.name for e in existing)) or "none"
        raise WtcError(f"no experiment {name!r} in {tracking_uri}; experiments: {names}")
    return chosen


def _search_all(client: mlflow.MlflowClient, experiment_ids: list[str], filter_string: str = "") -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=_PAGE,
                                  page_token=token, run_view_type=ViewType.ACTIVE_ONLY)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _sweep_matching(sweeps: set[str], sweep: str) -> str:
    """The one sweep tag equal to ``sweep`` or ending with it at a path boundary."""
    if sweep in sweeps:
        return sweep
    wanted = sweep.rstrip("/")
    matches = sorted(s for s in sweeps if s.rstrip("/") == wanted or s.rstrip("/").endswith("/" + wanted.lstrip("/"))
                     or Path(s).resolve() == Path(sweep).resolve())
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(sorted(sweeps)[-5:]) or "none"
        raise WtcError(f"no sweep matches {sweep!r}; latest sweeps: {known}")
    raise WtcError(f"sweep {sweep!r} is ambiguous: it matches {', '.join(matches)}")


def _row(run, experiment_name: str) -> dict[str, Any]:
    info, data = run.info, run.data
    start = pd.to_datetime(info.start_time, unit="ms", utc=True) if info.start_time else pd.NaT
    end = pd.to_datetime(info.end_time, unit="ms", utc=True) if info.end_time else pd.NaT
    row: dict[str, Any] = {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "experiment": experiment_name,
        "experiment_id": info.experiment_id,
        "start_time": start,
        "end_time": end,
        "wall_s": (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else float("nan"),
    }
    for key in CHOICE_PARAMS:
        row[key] = data.params.get(key)  # runs log a scaler/resampler by class name, none when left out
    for key, value in data.metrics.items():
        if key.startswith(METRIC_PREFIXES):
            row[key] = value
    row[SWEEP_TAG] = data.tags.get(SWEEP_TAG)
    row["error"] = data.tags.get("error")
    return row


def sweep_tag_values(tracking_uri: str, sweep: str, tag: str) -> list[str]:
    """The distinct values of a tag among a sweep's parent runs (e.g. where they stored their searches,
    ``wtc.optuna_storage``), sorted; empty when no run has it or the store holds no such sweep."""
    client = store_client(tracking_uri)
    ids = [e.experiment_id for e in _experiments(client, tracking_uri, None)]
    runs = _search_all(client, ids, f"tags.`{SWEEP_TAG}` = '{sweep}'") if ids else []
    return sorted({r.data.tags[tag] for r in runs if tag in r.data.tags and MLFLOW_PARENT_RUN_ID not in r.data.tags})


def parent_runs(tracking_uri: str, experiment: str | None = None, sweep: str | None = None) -> pd.DataFrame:
    """One row per finished or failed parent run of a tracking store.

    Child runs (search trials), runs still running and the comparison runs that
    ``wtc compare`` logs are left out.

    Parameters
    ----------
    tracking_uri : str
        The store, e.g. ``sqlite:///<repo>/mlruns/mlflow.db``. A missing SQLite file is an
        error (it is not created).
    experiment : str, optional
        Only the runs of this experiment; every active experiment by default.
    sweep : str, optional
        Only the runs whose ``wtc.sweep`` tag is this sweep dir, or ends with it at a path
        boundary (e.g. ``2026-11-28/10-44-27``); an ambiguous suffix is an error.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id``, ``run_name``, ``status``, ``experiment``, ``start_time``,
        ``end_time`` (UTC timestamps), ``wall_s``, the choices of :data:`CHOICE_PARAMS`
        (``"none"`` for an empty resampler or scaler), every ``cv/*``, ``test/*``,
        ``oracle/*`` and ``time/*`` metric (NaN where a run has none), ``wtc.sweep`` and
        ``error`` (the one-line error of a failed run). Newest run first.

    Raises
    ------
    WtcError
        The store or the experiment does not exist (the message lists the experiments that
        do), or ``sweep`` matches no sweep or several.
    """
    client = store_client(tracking_uri)
    experiments = _experiments(client, tracking_uri, experiment)
    names = {e.experiment_id: e.name for e in experiments}
    runs = _search_all(client, list(names)) if names else []
    runs = [r for r in runs if MLFLOW_PARENT_RUN_ID not in r.data.tags
            and r.data.tags.get(KIND_TAG) != COMPARISON_KIND and r.info.status in _DONE]
    if sweep is not None:
        tag = _sweep_matching({r.data.tags[SWEEP_TAG] for r in runs if SWEEP_TAG in r.data.tags}, sweep)
        runs = [r for r in runs if r.data.tags.get(SWEEP_TAG) == tag]
    base = ["run_id", "run_name", "status", "experiment", "experiment_id", "start_time", "end_time", "wall_s",
            *CHOICE_PARAMS, SWEEP_TAG, "error"]
    frame = pd.DataFrame([_row(r, names[r.info.experiment_id]) for r in runs])
    if frame.empty:
        return pd.DataFrame(columns=base)
    metrics = sorted(c for c in frame.columns if c.startswith(METRIC_PREFIXES))
    frame = frame[[c for c in base if c not in (SWEEP_TAG, "error")] + metrics + [SWEEP_TAG, "error"]]
    return frame.sort_values("start_time", ascending=False, kind="stable").reset_index(drop=True)


def read_artifact(tracking_uri: str, run_id: str, path: str) -> bytes | None:
    """The bytes of one artifact of a run (e.g. ``plots/roc.png``), or ``None`` if it has none."""
    client = store_client(tracking_uri)
    folder, _, name = path.rpartition("/")
    try:
        if name not in {Path(a.path).name for a in client.list_artifacts(run_id, folder or None)}:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, path, tmp)
            return Path(local).read_bytes()
    except (OSError, mlflow.exceptions.MlflowException):
        return None


def read_json_artifact(tracking_uri: str, run_id: str, path: str) -> Any:
    """A JSON artifact of a run, parsed, or ``None`` if it has none (or it is not JSON)."""
    raw = read_artifact(tracking_uri, run_id, path)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def log_comparison(tracking_uri: str, experiment: str, run_name: str, files: Mapping[str, str],
                   tags: Mapping[str, Any] | None = None) -> str:
    """Log a comparison report as the text artifacts of a new run tagged ``wtc.kind=comparison``.

    Parameters
    ----------
    tracking_uri, experiment : str
        Where to log it (the experiment of the compared runs).
    run_name : str
        E.g. ``compare-20261128-104427``.
    files : mapping of str to str
        Artifact path -> text (``comparison.md``, ``comparison.csv``, ``comparison.html``).
    tags : mapping, optional
        Further tags (what was compared).

    Returns
    -------
    str
        The comparison run's id.
    """
    store_client(tracking_uri)  # refuse to create a store that does not exist
    with RunTracker(tracking_uri, experiment, run_name=run_name,
                    tags={**(tags or {}), KIND_TAG: COMPARISON_KIND}) as tracker:
        for artifact, text in files.items():
            tracker.log_text(text, artifact)
        return tracker.run_id


def warm_up(tracking_uri: str) -> None:
    """Pay once what a worker's first job would: MLflow's tracing provider (imported by the first
    ``set_tracking_uri``), its run-context lookups and, for logging models later, the scan of
    installed packages (used by the sweep benchmark to time jobs alike)."""
    from mlflow.tracking.context.registry import resolve_tags

    from wtc.store import pyfunc

    mlflow.set_tracking_uri(tracking_uri)
    resolve_tags()
    pyfunc._distributions_of_packages()
