"""Runs left RUNNING by a dead process: marked KILLED on relaunch and by ``wtc runs cleanup``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import mlflow
import pytest
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from wtc.cli import main
from wtc.errors import WtcError
from wtc.interrupt import Terminated, deferred, interrupt_report, interrupts_unwind
from wtc.ops.cleanup import cleanup_runs
from wtc.store import RunTracker, init_store

EXPERIMENT = "wtc-test"
HOST = socket.gethostname()


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def client(tracking_uri):
    init_store(tracking_uri, EXPERIMENT)
    return mlflow.MlflowClient(tracking_uri)


def running(client, name, host, pid, parent=None, **tags):
    """A RUNNING run as a process that died would leave it."""
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    tags = {"wtc.host": host, "wtc.pid": str(pid), **tags}
    if parent is not None:
        tags[MLFLOW_PARENT_RUN_ID] = parent
    return client.create_run(experiment, run_name=name, tags=tags).info.run_id


def statuses(client):
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    return {r.info.run_name: r.info.status for r in client.search_runs([experiment])}


def test_a_relaunch_closes_its_own_dead_runs_only(tracking_uri, client, dead_pid):
    killed = running(client, "killed", HOST, dead_pid, **{"wtc.study": "s1"})
    running(client, "killed-trial", HOST, dead_pid, parent=killed)
    running(client, "alive", HOST, os.getppid(), **{"wtc.study": "s1"})
    running(client, "other-study", HOST, dead_pid, **{"wtc.study": "s2"})
    running(client, "other-host", "elsewhere", dead_pid, **{"wtc.study": "s1"})
    with RunTracker(tracking_uri, EXPERIMENT, run_name="relaunch", tags={"wtc.study": "s1"}) as tracker:
        assert tracker.close_dead_runs(**{"wtc.study": "s1"}) == [killed]
    assert statuses(client) == {"killed": "KILLED", "killed-trial": "KILLED", "alive": "RUNNING",
                                "other-study": "RUNNING", "other-host": "RUNNING", "relaunch": "FINISHED"}
    run = client.get_run(killed)
    assert run.data.tags["wtc.killed"] == f"its process was gone when run {tracker.run_id} started"
    assert client.get_run(tracker.run_id).data.tags["wtc.pid"] == str(os.getpid())


def test_cleanup_marks_dead_runs_and_lists_the_others(tracking_uri, client, dead_pid):
    dead = running(client, "dead", HOST, dead_pid)
    running(client, "dead-trial", HOST, dead_pid, parent=dead)
    running(client, "alive", HOST, os.getppid())
    lost = running(client, "lost", "elsewhere", 123)
    dry = cleanup_runs(tracking_uri, EXPERIMENT, dry_run=True)
    assert [r.info.run_name for r in dry.killed] == ["dead"]
    assert set(statuses(client).values()) == {"RUNNING"}  # a dry run changes nothing

    report = cleanup_runs(tracking_uri, EXPERIMENT, run_ids=[lost])
    assert sorted(r.info.run_name for r in report.killed) == ["dead", "lost"]
    assert [(r.info.run_name, reason) for r, reason in report.left] == [
        ("alive", f"process {os.getppid()} is still running on this host")]
    assert statuses(client) == {"dead": "KILLED", "dead-trial": "KILLED", "alive": "RUNNING", "lost": "KILLED"}
    with pytest.raises(WtcError, match="not a RUNNING run of wtc-test: nope"):
        cleanup_runs(tracking_uri, EXPERIMENT, run_ids=["nope"])
    with pytest.raises(WtcError, match="no experiment 'missing'"):
        cleanup_runs(tracking_uri, "missing")


def test_wtc_runs_cleanup(tracking_uri, client, dead_pid, capsys):
    dead = running(client, "dead", HOST, dead_pid)
    running(client, "lost", "elsewhere", 123)
    assert main(["runs", "cleanup", "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"marked KILLED: {dead} dead (experiment ")
    assert out[1].endswith("lost: started on host elsewhere: check it there, or pass --run-id")
    assert out[-1] == "1 run(s) marked KILLED, 1 left RUNNING"
    assert main(["runs", "cleanup", "--tracking-uri", tracking_uri, "--experiment", "missing"]) == 2
    assert capsys.readouterr().err.startswith("error: no experiment 'missing'")


def test_sigterm_raises_terminated_in_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as info:
        with interrupts_unwind():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler's exception ends the sleep at once
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) == before
    info.value.run_id = "abc"
    assert interrupt_report(info.value) == ("interrupted by SIGTERM: run abc marked KILLED", 143)
    assert interrupt_report(KeyboardInterrupt()) == ("interrupted by SIGINT: no run was open", 130)


def test_an_interruption_waits_for_a_deferred_block():
    done = []
    with pytest.raises(Terminated):
        with interrupts_unwind():
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)  # would have been cut here
                done.append("the bookkeeping")
            done.append("after the block")
    assert done == ["the bookkeeping"]


def test_a_reused_pid_does_not_keep_a_dead_run_running(tracking_uri, client, capsys):
    """A run whose pid now belongs to another process (the start time differs) is dead; the same pid
    with its own start time is alive; a run from before the start-time tag is judged by the pid alone."""
    from wtc.process import process_started

    child = subprocess.Popen(["sleep", "60"])
    try:
        started = process_started(child.pid)
        assert started is not None and started.isdigit()
        reused = running(client, "reused", HOST, child.pid, **{"wtc.pid_started": str(int(started) - 5)})
        running(client, "alive", HOST, child.pid, **{"wtc.pid_started": started})
        running(client, "untagged", HOST, child.pid)
        assert main(["runs", "cleanup", "--tracking-uri", tracking_uri]) == 0
        out = capsys.readouterr().out
        assert f"marked KILLED: {reused}" in out and out.strip().endswith("1 run(s) marked KILLED, 2 left RUNNING")
        assert statuses(client) == {"reused": "KILLED", "alive": "RUNNING", "untagged": "RUNNING"}
    finally:
        child.kill()
        child.wait()


def test_a_run_records_when_its_process_started(tracking_uri):
    from wtc.process import process_started

    with RunTracker(tracking_uri, EXPERIMENT, run_name="tagged") as tracker:
        tags = mlflow.MlflowClient(tracking_uri).get_run(tracker.run_id).data.tags
    assert tags["wtc.pid"] == str(os.getpid()) and tags["wtc.pid_started"] == process_started(os.getpid())
