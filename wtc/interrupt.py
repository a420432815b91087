"""SIGTERM, what a cluster scheduler sends, handled like Ctrl-C: the run unwinds and ends KILLED, in one line."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["Terminated", "check", "deferred", "interrupt_report", "interrupts_unwind"]

_held = 0                                  # depth of deferred() blocks
_pending: KeyboardInterrupt | None = None  # an interruption that arrived inside one
_received: KeyboardInterrupt | None = None  # the interruption received in this block, raised or not


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM.

    A ``KeyboardInterrupt``, so that everything that cleans up after Ctrl-C (the run marked
    KILLED, a running search trial marked failed, worker processes stopped) does so for
    SIGTERM too.
    """


def _interrupt(signum, frame):
    global _pending, _received
    exc = Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()
    _received = _received or exc
    if signum == signal.SIGTERM:
        # One is enough: cleaning up must not be cut short (a scheduler that insists sends SIGKILL).
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if _held:
        _pending = _pending or exc
        return
    raise exc


@contextlib.contextmanager
def interrupts_unwind() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` and SIGINT ``KeyboardInterrupt`` in
    the main thread, except inside :func:`deferred` blocks, which they wait for.

    Outside the main thread, where Python cannot install handlers, the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _received
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    report_unraisable = sys.unraisablehook
    sys.unraisablehook = functools.partial(_unraisable, report_unraisable)
    try:
        yield
        check()  # an interruption swallowed on the way still ends the block interrupted
    finally:
        _received = None
        sys.unraisablehook = report_unraisable
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _unraisable(report_unraisable, report) -> None:
    """Python's "Exception ignored in ..." report, silent for our interruption: :func:`check`
    raises it again where it can unwind, and the run ends in its one line."""
    if not isinstance(report.exc_value, KeyboardInterrupt):
        report_unraisable(report)


def check() -> None:
    """Raise the interruption received in this :func:`interrupts_unwind` block, if any.

    A handler's exception can be lost: raised while Python runs a finaliser (a generator or a
    connection closed by the garbage collector) it is printed as "Exception ignored" and the
    code goes on. Called between units of work (search trials), this ends the run anyway.
    """
    if _received is not None and not _held:
        raise type(_received)(*_received.args)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold an interruption (under :func:`interrupts_unwind`) until the block ends, so that a
    bookkeeping step (a trial created and recorded as ours, a value stored) is never cut in half.

    Only the main thread receives the interruption, so only its blocks hold it: another thread's
    block (a server's request, say) neither delays it nor has it raised there."""
    global _held, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending is not None:
            exc, _pending = _pending, None
            raise exc


def interrupt_report(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The one line to print for an interrupted run, and the exit status (128 + the signal number).

    ``exc.run_id``, when the run tracker set it, names the run that was marked KILLED.
    """
    signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
    run_id = getattr(exc, "run_id", None)
    what = f"run {run_id} marked KILLED" if run_id else "no run was open"
    return f"interrupted by {signum.name}: {what}", 128 + int(signum)
