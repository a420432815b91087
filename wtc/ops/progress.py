"""A sweep's progress: one line per finished job (k/N, its time, the time elapsed and left) and, when it
ends, the command that opens its stored searches in optuna-dashboard."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from wtc.errors import one_line

__all__ = ["SweepProgressCallback", "count_jobs", "duration", "job_line"]

#: Under the sweep dir: the sweep's start and size, and one line per finished job.
_FOLDER = ".wtc_progress"


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: a duration at a glance."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def count_jobs(config: DictConfig) -> int | None:
    """How many jobs a multirun launches: the cross product Hydra's basic sweeper makes of the sweep's
    parameters (``hydra.sweeper.params``, then the command line); None for another sweeper."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = OmegaConf.select(config, "hydra.sweeper._target_", default="")
    if not str(sweeper).endswith("BasicSweeper"):
        return None
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(config, "hydra.overrides.task") or [])
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(arguments), None)
    return sum(len(batch) for batch in batches)


def job_line(folder: Path, job: int, seconds: float, failed: bool = False) -> str:
    """Record a finished job in ``folder`` and say so: ``job k/N (#num) done in …, elapsed …, about … left``.

    k counts the jobs finished so far by every process of the sweep (the record is appended under a
    file lock, so parallel workers count 1, 2, 3... and each says one whole line).
    """
    from wtc.sqlite import sqlite_lock

    done = folder / "done"
    with sqlite_lock(done):
        with done.open("a") as out:
            out.write(f"{job}\n")
        finished = len(done.read_text().split())
    start = json.loads((folder / "sweep.json").read_text()) if (folder / "sweep.json").is_file() else {}
    total = start.get("jobs")
    said = (f"job {finished}/{total}" if total else f"job {finished}") + f" (#{job})"
    said += f" {'failed after' if failed else 'done in'} {duration(seconds)}"
    if "started" in start:
        elapsed = time.time() - start["started"]
        said += f", elapsed {duration(elapsed)}"
        if total and finished < total:
            said += f", about {duration(elapsed / finished * (total - finished))} left"
    return said


class SweepProgressCallback(Callback):
    """Hydra callback: a line per finished job of a sweep (none with ``quiet=true``) and, at its end,
    the ``optuna-dashboard`` command that opens the studies its jobs stored.

    With the joblib launcher a job's callbacks run in its worker process: the jobs count each other
    through a file under the sweep dir. Register it before the leaderboard (callbacks end in reverse
    order, so its last line comes after the leaderboard)::

        hydra:
          callbacks:
            progress:
              _target_: wtc.ops.progress.SweepProgressCallback
    """

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self._started = kwargs, None

    @staticmethod
    def _folder(config: DictConfig) -> Path:
        return Path(str(OmegaConf.select(config, "hydra.sweep.dir"))) / _FOLDER

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            folder = self._folder(config)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "sweep.json").write_text(json.dumps({"jobs": count_jobs(config), "started": time.time()}))
        except Exception as exc:  # noqa: BLE001 - progress must never stop a sweep
            print(f"progress: no job count ({one_line(exc)[:300]})", flush=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.time()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.utils import JobStatus
        from hydra.types import RunMode

        if OmegaConf.select(config, "hydra.mode") != RunMode.MULTIRUN or OmegaConf.select(config, "quiet"):
            return
        try:
            seconds = time.time() - (self._started or time.time())
            failed = getattr(job_return, "status", None) == JobStatus.FAILED
            print(job_line(self._folder(config), int(OmegaConf.select(config, "hydra.job.num") or 0), seconds,
                           failed), flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"progress: {one_line(exc)[:300]}", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            from wtc.ops.leaderboard import sweep_store
            from wtc.store.query import sweep_tag_values
            from wtc.tuning.dashboard import STORAGE_TAG, dashboard_command

            uri, sweep = sweep_store(config)
            for storage in sweep_tag_values(uri, sweep, STORAGE_TAG):
                print(f"\nOpen the sweep's searches (one Optuna study per job) in optuna-dashboard:\n"
                      f"  {dashboard_command(storage)}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a report must never fail the sweep it reports on
            print(f"optuna-dashboard: not available ({one_line(exc)[:300]})", flush=True)
