"""A search over a stored study, with local worker processes running the same trial loop beside this one."""

from __future__ import annotations

import contextlib
import multiprocessing
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

from wtc.errors import one_line
from wtc.tuning.base import Searcher
from wtc.tuning.objective import Folds, TuningResult, collect_stored, cross_validate, tune
from wtc.tuning.study import StudySpec
from wtc.tuning.trial import TrialRecord

__all__ = ["search"]

#: Seconds a worker gets to fail its running trial and exit after SIGTERM, before SIGKILL.
_STOP_GRACE_S = 30


@dataclass
class _Job:
    """What a worker process needs (pickled to it)."""

    searcher: type
    settings: dict
    study: StudySpec
    pipeline: object
    X: object
    y: object
    folds: Folds
    n_classes: int
    metric: str
    groups: object = None


def _work(job: _Job, index: int, errors) -> None:
    """A worker process: the trial loop against the shared study, until its budget is spent."""
    from wtc.interrupt import interrupts_unwind

    try:
        with interrupts_unwind():
            searcher = job.searcher(**job.settings)
            shared = job.study.open(searcher.n_trials)
            try:
                searcher.attach(shared, worker=index)
                tune(job.pipeline, searcher, job.X, job.y, job.folds, job.n_classes, job.metric, groups=job.groups)
            finally:
                shared.close()
    except KeyboardInterrupt:
        sys.exit(1)  # its running trial is already failed; the parent knows why it stopped us
    except BaseException as exc:
        errors.put(f"worker {index}: {one_line(exc, with_type=True)}"[:2000])
        sys.exit(1)


def search(
    pipeline,
    searcher: Searcher,
    X,
    y,
    folds: Folds,
    n_classes: int,
    metric: str,
    study: StudySpec | None = None,
    n_workers: int = 1,
    on_trial: Callable[[TrialRecord], None] | None = None,
    progress: Callable | None = None,
    groups=None,
    on_evaluated: Callable[[TrialRecord], None] | None = None,
) -> TuningResult:
    """Run a search in memory, or over a stored study with ``n_workers`` processes in all.

    Parameters
    ----------
    pipeline, searcher, X, y, folds, n_classes, metric, on_trial, progress, groups, on_evaluated
        See :func:`wtc.tuning.objective.tune`.
    study : StudySpec, optional
        Where the trials live; None searches in memory (``n_workers`` must then be 1).
    n_workers : int
        Processes evaluating trials, this one included: ``n_workers - 1`` are started (spawned)
        and each runs the trial loop against the study until it holds ``n_trials`` finished
        trials. This process then waits for them and gathers every trial, so the result (and
        ``on_trial``) covers the whole study; when the best was evaluated elsewhere (or before
        a restart), its fold predictions are computed again (one more CV of its parameters).

    Returns
    -------
    TuningResult
    """
    if study is None or not searcher.params:
        if study is not None and study.temporary:
            shutil.rmtree(study.temporary, ignore_errors=True)
        return tune(pipeline, searcher, X, y, folds, n_classes, metric, on_trial=on_trial, progress=progress,
                    groups=groups, on_evaluated=on_evaluated)
    shared = study.open(searcher.n_trials)
    workers = []
    try:
        searcher.attach(shared, worker=0)
        if n_workers > 1:
            context = multiprocessing.get_context("spawn")  # no fork of a process holding DB connections
            errors = context.Queue()
            job = _Job(type(searcher), searcher.settings, study, pipeline, X, y, folds, n_classes, metric, groups)
            for index in range(1, n_workers):
                worker = context.Process(target=_work, args=(job, index, errors), name=f"wtc-search-worker-{index}")
                worker.start()
                workers.append(worker)
        result = tune(pipeline, searcher, X, y, folds, n_classes, metric, on_trial=on_trial, progress=progress,
                      groups=groups, on_evaluated=on_evaluated)
        for worker in workers:
            worker.join()
        failed = [worker for worker in workers if worker.exitcode != 0]
        if failed:
            message = errors.get() if not errors.empty() else f"exit code {failed[0].exitcode}"
            raise RuntimeError(f"search worker failed: {message}")
        collect_stored(result, shared, {t.index for t in result.trials}, on_trial)
        searcher.refresh()  # e.g. the GP learns the last trials, for its plots
        best = result.best
        if best is not None and best.fold_predictions is None:
            # Evaluated before a restart or by another process: its fold predictions (what
            # calibration and the CV ROC read) are computed again, the same folds and parameters.
            best.fold_predictions = []
            cross_validate(pipeline, best.params, X, y, folds, n_classes, best.fold_predictions, groups=groups)
        return result
    finally:
        _stop(workers)
        shared.close()
        if study.temporary:
            shutil.rmtree(study.temporary, ignore_errors=True)


def _stop(workers: list) -> None:
    """SIGTERM the workers still running (each fails its trial and exits), SIGKILL any that linger."""
    for worker in workers:
        if worker.is_alive():
            worker.terminate()
    for worker in workers:
        worker.join(_STOP_GRACE_S)
        if worker.is_alive():
            with contextlib.suppress(Exception):
                worker.kill()
                worker.join()
