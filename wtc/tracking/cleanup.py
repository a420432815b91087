"""Runs left RUNNING by a process that is gone (SIGKILL, an out-of-memory kill, a lost node): found and marked KILLED."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from wtc.errors import WtcError
from wtc.provenance import process_alive

__all__ = ["Cleanup", "cleanup_runs", "dead_runs", "mark_killed"]

_RUNNING = "attributes.status = 'RUNNING'"


def _running(client: mlflow.MlflowClient, experiment_ids: list[str], tags: Mapping[str, str] | None = None) -> list[Run]:
    """RUNNING runs carrying ``tags`` (compared here, not in the filter string: a value may hold quotes)."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, _RUNNING, max_results=1000, page_token=token)
        runs.extend(run for run in page if all(run.data.tags.get(k) == str(v) for k, v in (tags or {}).items()))
        token = page.token
        if not token:
            return runs


def _alive(run: Run) -> bool | None:
    return process_alive(run.data.tags.get("wtc.host"), run.data.tags.get("wtc.pid"))


def dead_runs(client: mlflow.MlflowClient, experiment_ids: list[str], tags: Mapping[str, str] | None = None) -> list[Run]:
    """RUNNING runs (with these tags) whose process, on this host, is gone."""
    return [run for run in _running(client, experiment_ids, tags) if _alive(run) is False]


def mark_killed(client: mlflow.MlflowClient, run_ids: Iterable[str], note: str) -> None:
    """End runs KILLED, with the tag ``wtc.killed`` saying why; their RUNNING child runs too."""
    for run_id in run_ids:
        experiment_id = client.get_run(run_id).info.experiment_id
        children = client.search_runs([experiment_id], f"{_RUNNING} and tags.`{MLFLOW_PARENT_RUN_ID}` = '{run_id}'")
        for run in [*children, client.get_run(run_id)]:
            client.set_tag(run.info.run_id, "wtc.killed", note)
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))


@dataclass
class Cleanup:
    """What ``wtc runs cleanup`` found: runs marked KILLED, and RUNNING runs left alone with the reason."""

    killed: list[Run] = field(default_factory=list)
    left: list[tuple[Run, str]] = field(default_factory=list)


def cleanup_runs(uri: str, experiment: str | None = None, run_ids: Iterable[str] = (), dry_run: bool = False) -> Cleanup:
    """Mark KILLED every RUNNING run whose process on this host is gone, and the runs named in ``run_ids``.

    Parameters
    ----------
    uri : str
        Tracking URI.
    experiment : str, optional
        Only this experiment (default: every experiment).
    run_ids : iterable of str
        RUNNING runs to mark KILLED whatever their host (a job lost on another machine).
    dry_run : bool
        Report what would be marked; change nothing.
    """
    client = mlflow.MlflowClient(uri)
    if experiment is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise WtcError(f"no experiment {experiment!r} in {uri}")
        experiment_ids = [found.experiment_id]
    named = set(run_ids)
    report = Cleanup()
    for run in _running(client, experiment_ids) if experiment_ids else []:
        if MLFLOW_PARENT_RUN_ID in run.data.tags and run.info.run_id not in named:
            continue  # a child follows its parent
        alive = _alive(run)
        if alive is False or run.info.run_id in named:
            report.killed.append(run)
            named.discard(run.info.run_id)
        elif alive:
            report.left.append((run, f"process {run.data.tags['wtc.pid']} is still running on this host"))
        elif "wtc.host" in run.data.tags:
            report.left.append((run, f"started on host {run.data.tags['wtc.host']}: check it there, or pass --run-id"))
        else:
            report.left.append((run, "no wtc.host/wtc.pid tags: pass --run-id if its process is gone"))
    if named:
        raise WtcError(f"not a RUNNING run{' of ' + experiment if experiment else ''}: {', '.join(sorted(named))}")
    if not dry_run:
        mark_killed(client, [run.info.run_id for run in report.killed], "marked by wtc runs cleanup")
    return report
