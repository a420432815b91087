"""A sweep's progress: how many jobs it launches, one whole line per finished job counted across
processes (k/N, elapsed, time left), silence under quiet=true."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from wtc.ops.progress import SweepProgressCallback, count_jobs, duration, job_line

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def sweep_config(folder, task=("seed=0,1,2", "model=logreg"), params=None, quiet=False, num=0):
    return OmegaConf.create({"quiet": quiet, "hydra": {
        "mode": RunMode.MULTIRUN, "sweep": {"dir": str(folder)}, "job": {"num": num},
        "sweeper": {"_target_": BASIC, "params": params or {}}, "overrides": {"task": list(task)}}})


def test_the_jobs_are_the_cross_product_of_preset_and_command_line(tmp_path):
    assert count_jobs(sweep_config(tmp_path, params={"data": "good,bad,combined", "resample": "none,smote"})) == 18
    assert count_jobs(sweep_config(tmp_path, params={"data": "good,bad"}, task=["data=good", "seed=0,1"])) == 2
    other = sweep_config(tmp_path)
    other.hydra.sweeper._target_ = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert count_jobs(other) is None  # another sweeper: no total, only k


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_parallel_jobs_count_each_other_and_each_says_one_line(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps({"jobs": 8, "started": time.time() - 80}))
    with ThreadPoolExecutor(4) as pool:
        lines = list(pool.map(lambda job: job_line(tmp_path, job, 10.0), range(8)))
    found = [re.fullmatch(r"job (\d)/8 \(#\d\) done in 10s, elapsed 1m2\ds(?:, about (\S+) left)?", line)
             for line in lines]
    assert all(found), lines
    assert sorted(int(m.group(1)) for m in found) == list(range(1, 9))  # no two jobs claim the same k
    last = next(m for m in found if m.group(1) == "8")
    assert last.group(2) is None  # nothing left after the last


def test_one_line_per_finished_job_and_none_when_quiet(tmp_path, capsys):
    callback = SweepProgressCallback()
    callback.on_multirun_start(sweep_config(tmp_path))
    assert json.loads((tmp_path / ".wtc_progress" / "sweep.json").read_text())["jobs"] == 3
    for num, status in enumerate((JobStatus.COMPLETED, JobStatus.FAILED)):
        callback.on_job_start(sweep_config(tmp_path, num=num))
        callback.on_job_end(sweep_config(tmp_path, num=num), JobReturn(status=status))
    callback.on_job_end(sweep_config(tmp_path, quiet=True, num=2), JobReturn(status=JobStatus.COMPLETED))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["job 1/3 (#0) done in 0s", "job 2/3 (#1) failed after 0s"]
    assert "left" in lines[1]


def test_a_single_run_says_no_job_line(tmp_path, capsys):
    config = sweep_config(tmp_path)
    config.hydra.mode = RunMode.RUN
    SweepProgressCallback().on_job_end(config, JobReturn(status=JobStatus.COMPLETED))
    assert capsys.readouterr().out == ""
