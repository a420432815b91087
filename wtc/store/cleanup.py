"""Runs left RUNNING by a process that is gone (SIGKILL, an out-of-memory kill, a lost node): found and marked KILLED."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from wtc.process import process_alive

__all__ = ["dead_runs", "mark_killed", "process_alive_of", "running_runs"]

_RUNNING = "attributes.status = 'RUNNING'"


def running_runs(client: mlflow.MlflowClient, experiment_ids: list[str],
                 tags: Mapping[str, str] | None = None) -> list[Run]:
    """RUNNING runs carrying ``tags`` (compared here, not in the filter string: a value may hold quotes)."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, _RUNNING, max_results=1000, page_token=token)
        runs.extend(run for run in page if all(run.data.tags.get(k) == str(v) for k, v in (tags or {}).items()))
        token = page.token
        if not token:
            return runs


def process_alive_of(run: Run) -> bool | None:
    """Whether the process that started ``run`` (its ``wtc.host``/``wtc.pid`` tags, and ``wtc.pid_started`` where
    it has one: a pid reused by another process is not its process) still runs; None when unknowable."""
    tags = run.data.tags
    return process_alive(tags.get("wtc.host"), tags.get("wtc.pid"), tags.get("wtc.pid_started"))


def dead_runs(client: mlflow.MlflowClient, experiment_ids: list[str], tags: Mapping[str, str] | None = None) -> list[Run]:
    """RUNNING runs (with these tags) whose process, on this host, is gone."""
    return [run for run in running_runs(client, experiment_ids, tags) if process_alive_of(run) is False]


def mark_killed(client: mlflow.MlflowClient, run_ids: Iterable[str], note: str) -> None:
    """End runs KILLED, with the tag ``wtc.killed`` saying why; their RUNNING child runs too."""
    for run_id in run_ids:
        experiment_id = client.get_run(run_id).info.experiment_id
        children = client.search_runs([experiment_id], f"{_RUNNING} and tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}'")
        for run in [*children, client.get_run(run_id)]:
            client.set_tag(run.info.run_id, "wtc.killed", note)
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
