"""``wtc runs cleanup``: runs left RUNNING by a process that is gone (SIGKILL, an out-of-memory kill, a lost node), marked KILLED."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from wtc.errors import WtcError
from wtc.store.cleanup import mark_killed, process_alive_of, running_runs
from wtc.store.query import PARENT_RUN_TAG, store_client

__all__ = ["Cleanup", "cleanup_runs"]


@dataclass
class Cleanup:
    """What ``wtc runs cleanup`` found: runs marked KILLED, and RUNNING runs left alone with the reason."""

    killed: list = field(default_factory=list)  # mlflow Run entities
    left: list = field(default_factory=list)    # (Run, why it was left alone)


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
    client = store_client(uri)
    if experiment is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise WtcError(f"no experiment {experiment!r} in {uri}")
        experiment_ids = [found.experiment_id]
    named = set(run_ids)
    report = Cleanup()
    for run in running_runs(client, experiment_ids) if experiment_ids else []:
        if PARENT_RUN_TAG in run.data.tags and run.info.run_id not in named:
            continue  # a child follows its parent
        alive = process_alive_of(run)
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
