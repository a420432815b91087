"""Searches over a stored Optuna study, in this process: resume, the shared budget, dead trials,
the GP's constant liar, pruning over folds, and the study's name."""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from imblearn.pipeline import Pipeline
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from tests.factories import compose_cfg
from wtc.process import process_started
from wtc.tuning import GPSearcher, StudySpec, TPESearcher, search, study_name, tune
from wtc.tuning.study import GRACE_BEATS

#: C of every fit of a RecordingLogisticRegression, in order (one entry per fold fitted).
FITTED: list[float] = []


class RecordingLogisticRegression(LogisticRegression):
    """Records the C of every fit: how many times a parameter set was really evaluated."""

    def fit(self, X, y, sample_weight=None):
        FITTED.append(self.C)
        return super().fit(X, y, sample_weight)


SPACE = {"C": {"low": 1e-6, "high": 100.0, "log": True}}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(240, 8, n_informative=4, random_state=0)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    return sp.csr_matrix(X), y, folds


@pytest.fixture
def pipeline():
    FITTED.clear()
    return Pipeline([("model", RecordingLogisticRegression(max_iter=200))])


@pytest.fixture
def folder(tmp_path):
    """Where a test's study database lives: in memory (/dev/shm) where there is one, since
    every trial is a few SQLite commits, each an fsync on disk."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="wtc-study-test-") as scratch:
        yield Path(scratch)


@pytest.fixture
def spec(folder):
    return StudySpec(f"sqlite:///{folder}/optuna.db", "test-study", heartbeat_s=None)


def run_search(kind, n_trials, pipeline, data, spec, options=None, seed=0):
    X, y, folds = data
    searcher = kind(SPACE, n_trials, seed, **(options or ({"pruner": "none"} if kind is TPESearcher else {})))
    return search(pipeline, searcher, X, y, folds, 2, "log_loss", study=spec)


def evaluations():
    """Distinct C values fitted (each trial fits one C on every fold)."""
    return list(dict.fromkeys(FITTED))


@pytest.mark.parametrize("kind", [TPESearcher, GPSearcher], ids=lambda cls: cls.kind)
def test_a_stored_search_is_the_in_memory_search_and_resumes_without_reevaluating(kind, pipeline, data, spec):
    X, y, folds = data
    options = {"pruner": "none"} if kind is TPESearcher else {}
    memory = tune(pipeline, kind(SPACE, 3, 0, **options), X, y, folds, 2, "log_loss")
    first = run_search(kind, 3, pipeline, data, spec)
    assert [t.params for t in first.trials] == [t.params for t in memory.trials]  # same seed, same trials

    FITTED.clear()
    resumed = run_search(kind, 6, pipeline, data, spec)
    assert [t.index for t in resumed.trials] == list(range(6))
    assert [t.resumed for t in resumed.trials] == [True] * 3 + [False] * 3
    stored = [t.params["C"] for t in first.trials]
    trials_fitted = list(dict.fromkeys(FITTED[:3 * len(folds)]))
    assert len(trials_fitted) == 3 and not set(trials_fitted) & set(stored)  # 0 re-evaluated
    assert resumed.best_value == min(t.value for t in resumed.trials)
    # A resumed best gets its fold predictions again (for calibration, the CV ROC): one CV, no trial.
    assert FITTED[3 * len(folds):] == ([resumed.best.params["C"]] * len(folds) if resumed.best.resumed else [])
    assert len(resumed.best.fold_predictions) == len(folds)
    if kind is GPSearcher:  # the optimiser was told the stored points before proposing
        told = [x[0] for x in resumed.searcher.optimizer.Xi]
        assert told[:3] == pytest.approx(stored) and len(told) == 6

    FITTED.clear()
    again = run_search(kind, 6, pipeline, data, spec)  # a finished study: nothing left to evaluate
    assert FITTED == [again.best.params["C"]] * len(folds)  # only the best's fold predictions
    assert len(again.trials) == 6 and all(t.resumed for t in again.trials)


def test_a_dead_processs_trial_is_failed_at_once_and_a_live_ones_kept(pipeline, data, spec):
    from optuna.trial import TrialState

    dead = subprocess.Popen(["true"])
    dead.wait()
    shared = spec.open(4)
    study = shared.study
    distributions = TPESearcher(SPACE, 4, 0).distributions
    numbers = [shared.create_running({"C": c}, distributions) for c in (0.1, 0.2)]
    shared.set_attrs(numbers[0], {"wtc.owner": {"host": shared.host, "pid": dead.pid, "worker": 0}})
    shared.set_attrs(numbers[1], {"wtc.owner": {"host": shared.host, "pid": os.getppid(),
                                                "started": process_started(os.getppid()), "worker": 0}})
    assert shared.reap() == [numbers[0]]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {numbers[0]: TrialState.FAIL, numbers[1]: TrialState.RUNNING}
    assert study.get_trials()[0].user_attrs["wtc.failed"] == "its process is gone"
    # The live trial keeps its place, and is not waited on: 3 more fill the budget of 4.
    FITTED.clear()
    result = run_search(TPESearcher, 4, pipeline, data, spec)
    assert len(evaluations()) == 3 and len(result.trials) == 3
    assert study.get_trials()[1].state == TrialState.RUNNING
    shared.close()


@pytest.mark.parametrize("kind", [TPESearcher, GPSearcher], ids=lambda cls: cls.kind)
def test_a_trial_names_its_owner_from_its_creation(kind, spec, monkeypatch):
    """A process killed right after creating a trial (before anything else is stored) leaves a
    trial that says whose it was, so the next process fails it at once instead of it holding a
    budget place for ever."""
    shared = spec.open(4)
    searcher = kind(SPACE, 4, 0, **({"n_initial_points": 2} if kind is GPSearcher else {}))
    searcher.attach(shared)

    class Killed(BaseException):
        pass

    def killed(*args, **kwargs):  # the process dies here, right after the trial was created
        raise Killed

    monkeypatch.setattr(type(shared), "claim", killed)
    with pytest.raises(Killed):
        searcher.ask()
    (trial,) = shared.study.get_trials()
    assert trial.state.name == "RUNNING"
    assert trial.user_attrs["wtc.owner"] == {"host": shared.host, "pid": os.getpid(),
                                             "started": process_started(os.getpid()), "worker": 0}
    monkeypatch.undo()
    # The next process (another pid, on this host) finds the owner dead and fails the trial.
    later = spec.open(4)
    later.pid = -1
    monkeypatch.setattr("wtc.tuning.study.process_alive", lambda host, pid, started: pid != os.getpid())
    assert later.reap() == [trial.number] and later.remaining() == 4
    shared.close()
    later.close()


class InterruptedLogisticRegression(LogisticRegression):
    """Ctrl-C in the middle of the second trial's CV."""

    def fit(self, X, y, sample_weight=None):
        FITTED.append(self.C)
        if len(FITTED) == 4:
            raise KeyboardInterrupt
        return super().fit(X, y, sample_weight)


def test_an_interrupted_trial_ends_failed_never_running(data, spec):
    X, y, folds = data
    FITTED.clear()
    searcher = TPESearcher(SPACE, 5, 0, pruner="none")
    with pytest.raises(KeyboardInterrupt):
        search(Pipeline([("model", InterruptedLogisticRegression(max_iter=200))]), searcher, X, y, folds, 2,
               "log_loss", study=spec)
    shared = spec.open(5)
    assert [(t.state.name, t.user_attrs.get("wtc.failed")) for t in shared.trials()] == [
        ("COMPLETE", None), ("FAIL", "interrupted")]
    shared.close()


def _let_time_pass(database: Path, seconds: int) -> None:
    """Move every stored heartbeat ``seconds`` into the past: what the stale-trial check sees once that
    much time has passed without a beat (it compares them with the database's clock, not ours)."""
    with sqlite3.connect(database) as db:
        moved = db.execute("UPDATE trial_heartbeats SET heartbeat = datetime(heartbeat, ?)", (f"-{seconds} seconds",))
        assert moved.rowcount == 1
    db.close()


def test_a_trial_of_another_host_is_failed_once_its_heartbeat_stops(folder):
    from optuna.trial import TrialState

    spec = StudySpec(f"sqlite:///{folder}/optuna.db", "beats", heartbeat_s=1)
    shared = spec.open(3)
    assert shared.storage.grace_period == GRACE_BEATS * spec.heartbeat_s == 5
    number = shared.create_running({"C": 0.5}, TPESearcher(SPACE, 3, 0).distributions)
    shared.set_attrs(number, {"wtc.owner": {"host": "elsewhere", "pid": 1, "worker": 0}})
    shared.start_heartbeat(number)  # beats at once, then every second
    shared.reap()
    assert shared.study.get_trials()[0].state == TrialState.RUNNING  # beating: alive
    shared.stop_heartbeat(number)
    assert f"wtc-heartbeat-{number}" not in {t.name for t in threading.enumerate()}  # no beat after this
    _let_time_pass(folder / "optuna.db", GRACE_BEATS - 2)  # beats missed, fewer than the grace
    shared.reap()
    assert shared.study.get_trials()[0].state == TrialState.RUNNING
    _let_time_pass(folder / "optuna.db", 3)  # one beat more than the grace missed
    shared.reap()
    assert shared.study.get_trials()[0].state == TrialState.FAIL
    shared.close()


def test_a_value_told_after_another_process_failed_the_trial_is_kept(spec):
    shared = spec.open(3)
    number = shared.create_running({"C": 0.5}, TPESearcher(SPACE, 3, 0).distributions)
    shared.fail(number, "its process is gone")  # e.g. its heartbeat looked stale to another process
    shared.finish(number, 0.25)
    assert [(t.state.name, t.value, t.params) for t in shared.trials()] == [
        ("FAIL", None, {"C": 0.5}), ("COMPLETE", 0.25, {"C": 0.5})]
    shared.close()


def test_the_last_place_goes_to_one_trial_only(spec):
    shared = spec.open(2)
    distributions = TPESearcher(SPACE, 2, 0).distributions
    numbers = [shared.create_running({"C": c}, distributions) for c in (0.1, 0.2, 0.3)]
    assert [shared.admit(n, {"C": c}, set()) for n, c in zip(numbers, (0.1, 0.2, 0.3))] == [None, None, "full"]
    assert shared.admit(numbers[1], {"C": 0.1}, set()) == "repeat"  # another process's parameters
    assert shared.admit(numbers[1], {"C": 0.1}, {numbers[0]}) is None  # its own: allowed, as in memory
    assert shared.remaining() == -1
    shared.close()


def test_gp_asks_beside_the_points_being_evaluated(spec):
    """Past its random start the GP's next point is one point; with evaluations in flight (this
    worker's or another's) each ask lies about them (constant liar), so a batch stays distinct."""
    shared = spec.open(12)
    gp = GPSearcher(SPACE, 12, 0, n_initial_points=3)
    gp.attach(shared)
    for _ in range(4):
        params = gp.ask()
        gp.tell(params, (math.log10(params["C"]) + 1) ** 2)
    assert gp.optimizer.ask() == gp.optimizer.ask()  # no lie: the same point twice
    other = GPSearcher(SPACE, 12, 0, n_initial_points=3)
    other.attach(spec.open(12), worker=1)
    assert len(other.optimizer.Xi) == 4  # told the stored evaluations when it joined
    batch = [gp.ask()["C"], other.ask()["C"], gp.ask()["C"], other.ask()["C"]]
    assert len(set(batch)) == 4
    assert sorted(t.params["C"] for t in shared.trials() if t.state.name == "RUNNING") == sorted(batch)
    shared.close()
    other.shared.close()


def test_pruning_stops_clearly_worse_trials_and_never_picks_them(pipeline, data):
    X, y, folds = data
    searcher = TPESearcher(SPACE, 16, 0, pruner="median", prune_startup_trials=3, prune_min_folds=1)
    result = tune(pipeline, searcher, X, y, folds, 2, "log_loss")
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    assert len(result.trials) == 16 and pruned and complete
    assert all(t.n_folds < len(folds) and math.isnan(t.value) for t in pruned)
    assert all(t.tags["wtc.trial_state"] == "PRUNED" and t.metrics["cv/n_folds"] == t.n_folds for t in pruned)
    assert result.best.state == "COMPLETE" and result.best_value == min(t.value for t in complete)
    # Each pruned trial ran fewer folds than a complete one: the fits saved.
    assert len(FITTED) == 3 * len(complete) + sum(t.n_folds for t in pruned) < 3 * 16
    assert {t.state.name for t in searcher.study.trials} == {"COMPLETE", "PRUNED"}


def test_gp_never_prunes(pipeline, data):
    X, y, folds = data
    result = tune(pipeline, GPSearcher(SPACE, 3, 0), X, y, folds, 2, "log_loss")
    assert {t.state for t in result.trials} == {"COMPLETE"} and len(FITTED) == 3 * 3


def test_the_study_name_follows_what_the_trials_evaluate():
    base = study_name(compose_cfg(["search=tpe"]))
    assert base.startswith("wtc-binary-xgboost-tpe-") and base == study_name(compose_cfg(["search=tpe"]))
    # How the search runs, where it logs, and its budget do not change the trials.
    for same in ["search.n_workers=4", "search.storage=sqlite:///x.db", "search.n_trials=50", "tracking.uri=sqlite:///y",
                 "paths.root=/elsewhere", "diagnostics=light", "search.heartbeat_s=5",
                 "tracking.uri=${oc.env:WTC_NO_SUCH_VARIABLE_SET}"]:
        assert study_name(compose_cfg(["search=tpe", same])) == base, same
    names = {study_name(compose_cfg(["search=tpe", other])) for other in
             ["seed=1", "model=logreg", "metric=log_loss", "cv.n_splits=3", "data=codes", "search.pruner=none",
              "model.space.max_depth.high=9", "test_size=0.3", "target=action"]}
    assert len(names) == 9 and base not in names
    assert study_name(compose_cfg(["search=gp"])) != base
    assert study_name(compose_cfg(["search=tpe", "search.study=mine"])) == "mine"


def test_an_unreachable_storage_is_one_config_error(tmp_path):
    from wtc.errors import ConfigError

    with pytest.raises(ConfigError, match="search.storage 'nosuchdb://x' cannot be opened") as info:
        StudySpec("nosuchdb://x", "s").open(3)
    assert "\n" not in str(info.value)


def test_derived_seeds_keep_the_first_worker_of_a_fresh_study():
    from wtc.tuning.trial import derive_seed

    assert derive_seed(7, 0, 0) == 7 and derive_seed(None, 3, 1) is None
    seeds = {derive_seed(7, existing, worker) for existing in range(3) for worker in range(3)}
    assert len(seeds) == 9 and all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds)
    assert np.random.RandomState(derive_seed(7, 3, 0)).rand() != np.random.RandomState(7).rand()


def test_a_trial_whose_pid_was_given_to_another_process_is_failed(pipeline, data, spec):
    """The owner's pid runs, but it is another process (started at another time): the trial is reaped."""
    shared = spec.open(2)
    number = shared.create_running({"C": 0.1}, TPESearcher(SPACE, 2, 0).distributions)
    shared.set_attrs(number, {"wtc.owner": {"host": shared.host, "pid": os.getppid(), "started": "0", "worker": 0}})
    assert shared.reap() == [number]
    assert shared.study.get_trials()[0].user_attrs["wtc.failed"] == "its process is gone"
    shared.close()
