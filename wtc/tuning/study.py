"""Trials kept in an Optuna RDB storage: the study's shared budget, dead trials, stored records.

A search with ``search.storage=sqlite:///…`` or ``postgresql://…`` writes every trial to an
Optuna study. Relaunching the same command finds the study again (its name is derived from
the config: :mod:`wtc.tuning.naming`) and continues from its finished trials; several processes
started on the same study share one budget of ``search.n_trials`` finished trials and never
evaluate the same trial twice. Without one, a run records its search as a study of its own in a
default storage (a relaunch searches anew). A study stores the objective named after the metric,
with its true direction and value; the searchers still minimise.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from wtc.errors import ConfigError, one_line
from wtc.process import process_alive, process_started
from wtc.sqlite import sqlite_db_path, sqlite_lock
from wtc.tuning.naming import IN_MEMORY, RUN_KEYS, direction, study_name
from wtc.tuning.trial import TrialRecord

__all__ = ["GRACE_BEATS", "IN_MEMORY", "RUN_KEYS", "SharedStudy", "StudySpec", "study_name", "study_spec"]

#: Heartbeats a trial of another host may miss before it is failed: its heartbeat thread may wait
#: on a long fit holding the GIL. The grace period is ``GRACE_BEATS * heartbeat_s`` seconds.
GRACE_BEATS = 5

#: Trials open (asked, not yet told) in this process, by (storage URL, study, number): a RUNNING
#: trial of this host and pid that is not here was left by an earlier process with the same pid.
_OPEN_HERE: set[tuple[str, str, int]] = set()


@dataclass(frozen=True)
class StudySpec:
    """Where a search's trials live (picklable: worker processes open it themselves).

    ``temporary`` names a folder to delete when the search ends (the SQLite file of a
    multi-worker search kept in memory). ``metric`` names the objective stored (``cv_<metric>``,
    its true direction and value; None: the minimised value, unnamed); ``run_id`` is the MLflow
    parent run searching it (the study's user attribute ``mlflow_run_id``).
    """

    url: str
    name: str
    heartbeat_s: int | None = 60
    temporary: str | None = None
    metric: str | None = None
    run_id: str | None = None

    def open(self, n_trials: int) -> SharedStudy:
        """Connect to the storage and create or load the study."""
        return SharedStudy(self, n_trials)


def study_spec(cfg, default: str | None = None, run_id: str | None = None) -> StudySpec | None:
    """The :class:`StudySpec` of a run config, or None for an in-memory search.

    ``search.storage`` names it: the study of :func:`study_name`, resumed and shared. Without one
    (null), the ``default`` storage records it as a study of its own, ``<study_name>-<run_id>`` (a
    relaunch searches anew). ``search.storage=memory`` (or no default) keeps it in memory; with
    ``search.n_workers`` > 1 in a temporary SQLite file (deleted afterwards: no resume).
    """
    from omegaconf import OmegaConf

    url = OmegaConf.select(cfg, "search.storage", default=None)
    n_workers = int(OmegaConf.select(cfg, "search.n_workers", default=1) or 1)
    name, temporary = study_name(cfg), None
    if not url and default:
        url, name = default, f"{name}-{run_id}" if run_id else name
    elif not url or url == IN_MEMORY:
        if n_workers < 2:
            return None
        temporary = tempfile.mkdtemp(prefix="wtc-study-")
        url = f"sqlite:///{temporary}/study.db"
    heartbeat = OmegaConf.select(cfg, "search.heartbeat_s", default=60)
    metric = OmegaConf.select(cfg, "metric", default=None)
    return StudySpec(str(url), name, None if heartbeat is None else int(heartbeat), temporary,
                     None if metric is None else str(metric), run_id)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna calls its heartbeat and stale-trial API experimental and says heartbeats are meant
    for ``Study.optimize``; we drive them from our own ask/tell loop on purpose."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


def _finished(trial) -> bool:
    """COMPLETE, PRUNED, or evaluated with a non-finite value (Optuna stores those as FAIL)."""
    from optuna.trial import TrialState

    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and "wtc.result" in trial.user_attrs)


def _counted(trial) -> bool:
    """Whether a trial holds a place in the budget: finished, running or queued."""
    from optuna.trial import TrialState

    return _finished(trial) or trial.state in (TrialState.RUNNING, TrialState.WAITING)


class SharedStudy:
    """One process's connection to a stored study, with the budget every process shares.

    Parameters
    ----------
    spec : StudySpec
    n_trials : int
        Finished trials (complete or pruned) the search is to have in all.

    Attributes
    ----------
    study : optuna.Study
        The study; a searcher sets its ``sampler`` and ``pruner``.
    """

    def __init__(self, spec: StudySpec, n_trials: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.n_trials = int(n_trials)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.started = process_started(self.pid)  # with the pid: a pid reused since is not the owner
        # SQLite: wait for a busy file instead of failing at once (several workers write to it).
        engine = {"connect_args": {"timeout": 60}} if spec.url.startswith("sqlite") else {"pool_pre_ping": True}
        heartbeat = spec.heartbeat_s
        try:
            with sqlite_lock(sqlite_db_path(spec.url)), _quiet_optuna():
                self.storage = optuna.storages.RDBStorage(
                    spec.url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                    # A trial's heartbeat thread may wait on a long fit holding the GIL:
                    # declare it dead only after GRACE_BEATS missed beats.
                    grace_period=None if heartbeat is None else GRACE_BEATS * heartbeat)
                self.study = optuna.create_study(study_name=spec.name, storage=self.storage,
                                                 direction=direction(spec.metric), load_if_exists=True)
                self._describe()
        except Exception as exc:  # a missing driver, a bad URL, a server that does not answer
            raise ConfigError(f"search.storage {spec.url!r} cannot be opened: {one_line(exc, limit=300, with_type=True)}") from None
        self.study_id = self.storage.get_study_id_from_name(spec.name)
        trials = self.study.get_trials(deepcopy=False)
        self.existing = len(trials)  # trials of any state when this process joined
        #: Trials finished before this process joined: a relaunch's resumed trials.
        self.resumed = {t.number for t in trials if _finished(t)}
        self._beats: dict[int, tuple[threading.Event, threading.Thread]] = {}

    def _describe(self) -> None:
        """The sign between searchers and study, the objective's name, the parent run ids. A study
        keeps its direction: one stored minimised (negated AUC, before) stays so, as ``neg_cv_<metric>``."""
        from optuna.study import StudyDirection

        #: Stored value = sign * minimised value (-1 in a maximised study).
        self.sign = -1.0 if self.study.direction == StudyDirection.MAXIMIZE else 1.0
        if (metric := self.spec.metric) is not None and self.study.metric_names is None:
            negated = self.sign > 0 and direction(metric) == "maximize"
            self.study.set_metric_names([f"{'neg_' if negated else ''}cv_{metric}"])
        if self.spec.run_id is not None:
            runs = list(self.study.user_attrs.get("mlflow_run_ids", []))
            if self.spec.run_id not in runs:  # a relaunch adds its own; a worker finds it there
                self.study.set_user_attr("mlflow_run_ids", [*runs, self.spec.run_id])
                self.study.set_user_attr("mlflow_run_id", self.spec.run_id)

    def minimised(self, trial) -> float:  # a stored value as the searchers see it
        return math.nan if trial.value is None else self.sign * trial.value

    # ------------------------------------------------------------------------ budget
    def trials(self, finished_only: bool = False) -> list:
        """The study's trials by number (only the finished ones when asked)."""
        trials = self.study.get_trials(deepcopy=False)
        return [t for t in trials if _finished(t)] if finished_only else trials

    def remaining(self) -> int:
        """Places left in the budget: ``n_trials`` minus the finished, running and queued trials."""
        return self.n_trials - sum(map(_counted, self.trials()))

    def admit(self, number: int, params: Mapping[str, Any], own: set[int], check_repeats: bool = True) -> str | None:
        """Whether a trial just created may run: None if so; ``"full"`` when ``n_trials`` counted
        trials come before it (two processes asked for the last place at the same moment: trial
        numbers are unique and ordered, so exactly one gets it); ``"repeat"`` when another
        process's trial (running, or finished, e.g. before a restart) has the same ``params``."""
        trials = self.trials()
        if sum(1 for t in trials if t.number < number and _counted(t)) >= self.n_trials:
            return "full"
        if check_repeats and any(t.number != number and t.number not in own and _counted(t) and t.params == dict(params)
                                 for t in trials):
            return "repeat"
        return None

    # ------------------------------------------------------------------- dead trials
    def claim(self, number: int) -> None:
        """Record that this process evaluates trial ``number`` (until :meth:`release`)."""
        _OPEN_HERE.add((self.spec.url, self.spec.name, number))

    def release(self, number: int) -> None:
        """Trial ``number`` is told or failed: stop its heartbeat, forget the claim."""
        self.stop_heartbeat(number)
        _OPEN_HERE.discard((self.spec.url, self.spec.name, number))

    def reap(self) -> list[int]:
        """Fail the RUNNING trials whose process is gone, so they are never waited on.

        A trial of this host whose process has died (or that names this process's pid but
        is not open here: an earlier process with the same pid, as in a restarted container)
        is failed at once; a trial of another host once its heartbeat is older than the grace
        period. Returns the trials failed here by process check.
        """
        from optuna.trial import TrialState

        failed = []
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = trial.user_attrs.get("wtc.owner", {})
            if (self.spec.url, self.spec.name, trial.number) in _OPEN_HERE or owner.get("host") != self.host:
                continue
            if owner.get("pid") == self.pid or process_alive(self.host, owner.get("pid"), owner.get("started")) is False:
                self.fail(trial.number, "its process is gone")
                failed.append(trial.number)
        if self.spec.heartbeat_s is not None:
            import optuna

            with _quiet_optuna():
                optuna.storages.fail_stale_trials(self.study)
        return failed

    def fail(self, number: int, reason: str) -> None:
        """End a trial FAIL, with ``wtc.failed`` saying why (a trial already finished is left)."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        self.release(number)
        with contextlib.suppress(UpdateFinishedTrialError):
            self.set_attrs(number, {"wtc.failed": reason})
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)

    # ------------------------------------------------------------------ one trial
    def finish(self, number: int, value: float, state: str = "COMPLETE") -> None:
        """Tell the study a trial's outcome: ``PRUNED`` (its last reported value), a finite value
        (COMPLETE), or FAIL for a non-finite one.

        A trial another process failed meanwhile (its heartbeat looked stale: a fit held the
        interpreter for minutes) keeps its FAIL; a value is then stored as a new finished
        trial, so the evaluation is not lost.
        """
        from optuna.trial import TrialState, create_trial

        value = self.sign * value
        if state == "PRUNED":
            outcome = {"state": TrialState.PRUNED}
        elif math.isfinite(value):
            outcome = {"values": value}
        else:
            outcome = {"state": TrialState.FAIL}
        trial = self.storage.get_trial(self.trial_id(number))
        if trial.state == TrialState.RUNNING:
            self.study.tell(number, **outcome, skip_if_finished=True)
        elif "values" in outcome:
            attrs = {k: v for k, v in trial.user_attrs.items() if k != "wtc.failed"}
            self.study.add_trial(create_trial(params=trial.params, distributions=trial.distributions, value=value,
                                              user_attrs=attrs))

    def link_run(self, number: int, run_id: str) -> None:
        """Name a trial's MLflow child run: its user attribute ``mlflow_run_id`` while it runs (Optuna
        freezes a finished trial), else, for one finished elsewhere and not named there, an entry of
        the study's ``mlflow_trial_run_ids`` (trial number -> run id)."""
        from optuna.trial import TrialState

        trial = self.storage.get_trial(trial_id := self.trial_id(number))
        if trial.state == TrialState.RUNNING:
            self.storage.set_trial_user_attr(trial_id, "mlflow_run_id", run_id)
        elif "mlflow_run_id" not in trial.user_attrs:
            links = dict(self.study.user_attrs.get("mlflow_trial_run_ids", {}))
            self.study.set_user_attr("mlflow_trial_run_ids", {**links, str(number): run_id})

    def trial_id(self, number: int) -> int:
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    def set_attrs(self, number: int, attrs: Mapping[str, Any]) -> None:
        """Store user attributes on a trial (JSON values)."""
        trial_id = self.trial_id(number)
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(trial_id, key, value)

    def create_running(self, params: Mapping[str, Any], distributions: Mapping, worker: int = 0) -> int:
        """A RUNNING trial with given parameters (a point another back-end proposed); its number."""
        from optuna.trial import TrialState, create_trial

        template = create_trial(state=TrialState.RUNNING, params=dict(params), distributions=dict(distributions),
                                user_attrs=self.owner_attrs(worker))
        return self.storage.get_trial_number_from_id(self.storage.create_new_trial(self.study_id, template))

    def owner_attrs(self, worker: int = 0) -> dict[str, Any]:
        """``wtc.owner``: the host, pid (with its start time, where known) and worker index evaluating a trial
        (how a dead one is recognised, even when its pid was given to another process since)."""
        started = {} if self.started is None else {"started": self.started}
        return {"wtc.owner": {"host": self.host, "pid": self.pid, **started, "worker": int(worker)}}

    def start_heartbeat(self, number: int) -> None:
        """Beat for a running trial every ``heartbeat_s`` seconds until :meth:`stop_heartbeat`."""
        if self.spec.heartbeat_s is None or number in self._beats:
            return
        trial_id, stop = self.trial_id(number), threading.Event()

        def beat():
            while True:
                with contextlib.suppress(Exception):  # a missed beat is not worth a crash
                    self.storage.record_heartbeat(trial_id)
                if stop.wait(self.spec.heartbeat_s):
                    return

        thread = threading.Thread(target=beat, name=f"wtc-heartbeat-{number}", daemon=True)
        thread.start()
        self._beats[number] = (stop, thread)

    def stop_heartbeat(self, number: int) -> None:
        stop, thread = self._beats.pop(number, (None, None))
        if stop is not None:
            stop.set()
            thread.join()

    def records(self, fixed: Mapping[str, Any], skip: set[int] = frozenset()) -> list:
        """:class:`~wtc.tuning.objective.TrialRecord` of every finished trial not in ``skip``, by number.

        Trials finished before this process joined the study are marked ``resumed``.
        ``fixed`` (single-choice parameters, never stored as searched) is merged back in.
        """

        out = []
        for trial in self.trials(finished_only=True):
            if trial.number in skip:
                continue
            result, owner = trial.user_attrs.get("wtc.result", {}), trial.user_attrs.get("wtc.owner")
            state = "PRUNED" if trial.state.name == "PRUNED" else "COMPLETE"
            value = self.minimised(trial) if trial.state.name == "COMPLETE" else math.nan
            started = result.get("started", trial.datetime_start.timestamp() if trial.datetime_start else 0.0)
            out.append(TrialRecord(
                trial.number, {**fixed, **trial.params}, dict(result.get("summary", {})), value, started,
                float(result.get("seconds", 0.0)), fold_iterations=list(result.get("fold_iterations", [])),
                state=state, n_folds=result.get("n_folds"), resumed=trial.number in self.resumed,
                worker=f"{owner['host']}:{owner['pid']}" if owner else None))
        return out

    def close(self) -> None:
        """Stop heartbeats and release the database connections."""
        for number in list(self._beats):
            self.release(number)
        self.storage.remove_session()
        with contextlib.suppress(Exception):
            self.storage.engine.dispose()
