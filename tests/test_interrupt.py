"""A SIGTERM is never lost: its exception swallowed by a finaliser still ends the block, the
search and the run interrupted."""

from __future__ import annotations

import gc
import os
import signal

import pytest

from wtc import interrupt
from wtc.interrupt import Terminated, interrupts_unwind


class _SignalledInFinaliser:
    """Receives SIGTERM while Python runs its finaliser: the handler's exception is "ignored"."""

    finalised = 0

    def __del__(self):
        type(self).finalised += 1
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, here
            pass


def _lose_a_sigterm() -> None:
    obj = _SignalledInFinaliser()
    del obj
    gc.collect()


def test_a_swallowed_sigterm_still_ends_the_block(capfd):
    before = _SignalledInFinaliser.finalised
    with pytest.raises(Terminated):
        with interrupts_unwind():
            _lose_a_sigterm()  # the code goes on, as after a swallowed exception
            assert _SignalledInFinaliser.finalised == before + 1
    assert capfd.readouterr().err == ""  # no "Exception ignored" report: the run's one line stays one
    interrupt.check()  # leaving the block forgets it: a later block starts clean
    assert signal.getsignal(signal.SIGTERM) is not interrupt._interrupt


def test_check_raises_between_units_of_work_not_inside_deferred():
    with pytest.raises(Terminated), interrupts_unwind():
        _lose_a_sigterm()
        with interrupt.deferred():
            interrupt.check()  # a bookkeeping step is never cut in half
        interrupt.check()
        raise AssertionError("not reached")


def test_check_is_quiet_without_a_signal():
    with interrupts_unwind():
        interrupt.check()
    interrupt.check()


def test_a_run_whose_sigterm_was_swallowed_ends_killed(tracking_uri):
    from tests.factories import runs_of
    from wtc.store.runs import RunTracker

    with pytest.raises(Terminated) as raised, interrupts_unwind():
        with RunTracker(tracking_uri, "swallowed") as tracker:
            _lose_a_sigterm()
    client, parents, _ = runs_of(tracking_uri, "swallowed")
    assert raised.value.run_id == tracker.run_id
    assert [p.info.status for p in parents] == ["KILLED"]
    assert parents[0].data.tags["error"] == "Terminated: SIGTERM"


def _sigterm_during(obj, name: str, after: bool) -> None:
    """Make ``obj.name`` receive a SIGTERM just before (or just after) its real call writes."""
    real = getattr(obj, name)

    def call(*args, **kwargs):
        if not after:
            os.kill(os.getpid(), signal.SIGTERM)
        result = real(*args, **kwargs)
        if after:
            os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, here
            pass
        return result

    setattr(obj, name, call)


@pytest.mark.parametrize("where", ["create_run after", "set_terminated before", "set_terminated after"])
def test_a_sigterm_inside_a_child_runs_start_or_end_leaves_no_run_running(tracking_uri, where):
    from tests.factories import runs_of
    from wtc.store.runs import RunTracker

    name, when = where.split()
    with pytest.raises(Terminated), interrupts_unwind():
        with RunTracker(tracking_uri, "mid-child") as tracker:
            tracker.child_run("trial-0", {"C": 1.0}, {"cv/loss": 0.5})
            _sigterm_during(tracker._client, name, after=when == "after")
            tracker.child_run("trial-1", {"C": 2.0}, {"cv/loss": 0.4})
    _, parents, children = runs_of(tracking_uri, "mid-child")
    assert [p.info.status for p in parents] == ["KILLED"]
    assert len(children) == 2 and "RUNNING" not in {c.info.status for c in children}, \
        [(c.info.run_name, c.info.status) for c in children]


def test_a_sigterm_while_the_run_starts_ends_it_killed(tracking_uri, monkeypatch):
    import mlflow

    from tests.factories import runs_of
    from wtc.store.runs import RunTracker

    monkeypatch.setattr(mlflow, "start_run", mlflow.start_run)  # so that the test's end puts the real one back
    _sigterm_during(mlflow, "start_run", after=True)
    tracker = RunTracker(tracking_uri, "mid-start")
    with pytest.raises(Terminated) as raised, interrupts_unwind():
        with tracker:
            raise AssertionError("not reached: the run is interrupted as it starts")
    _, parents, _ = runs_of(tracking_uri, "mid-start")
    assert [p.info.status for p in parents] == ["KILLED"] and raised.value.run_id == parents[0].info.run_id
    assert mlflow.active_run() is None


def test_another_threads_deferred_block_neither_holds_nor_receives_the_interruption():
    import threading

    inside, release, raised_there = threading.Event(), threading.Event(), []

    def bookkeeping():
        try:
            with interrupt.deferred():
                inside.set()
                release.wait(10)
        except BaseException as exc:  # noqa: BLE001 - what the test looks for
            raised_there.append(exc)

    worker = threading.Thread(target=bookkeeping)
    worker.start()
    inside.wait(10)
    try:
        with pytest.raises(Terminated), interrupts_unwind():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # raised here, in the main thread, while the other block is still open
                pass
            raise AssertionError("not reached")
    finally:
        release.set()
        worker.join(10)
    assert raised_there == []
