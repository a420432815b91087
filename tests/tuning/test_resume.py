"""Real processes and real signals: a search killed (SIGKILL) and relaunched, a run terminated
(SIGTERM), and several processes sharing one stored study."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from sklearn.linear_model import LogisticRegression

from tests.factories import make_cfg, runs_of
from wtc.data.synthetic import write_benchmark
from wtc.run.experiment import run
from wtc.tuning import GPSearcher, TPESearcher

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("bench") / "history.json", n_tasks=400, seed=5)


def command(history, tracking_uri, tmp_path, *overrides):
    return [sys.executable, "run.py", "model=logreg", "search=tpe", "cv.n_splits=3", f"data.path={history}",
            f"tracking.uri={tracking_uri}", f"hydra.run.dir={tmp_path}/out", "tracking.log_model=false",
            "tracking.log_plots=false", "n_jobs=1", *overrides]


def the_study(storage: str):
    """The one study of a storage (its name is derived from the config), or None before it exists."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        summaries = optuna.get_all_study_summaries(storage)
    except Exception:  # the file is still being created
        return None
    return optuna.load_study(study_name=summaries[0].study_name, storage=storage) if summaries else None


def wait_for(storage: str, proc, enough, timeout=300):
    """Poll the study until ``enough(trials)``; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended early: {proc.stderr.read()[-3000:]}"
        study = the_study(storage)
        if study is not None and enough(study.trials):
            return study.trials
        time.sleep(0.3)
    raise AssertionError("timed out waiting for trials")


def finished(trials):
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]


def owner_pid(trial):
    return trial.user_attrs["wtc.owner"]["pid"]


def test_a_search_killed_after_3_trials_resumes_where_it_stopped(history, tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    argv = command(history, tracking_uri, tmp_path, "search.n_trials=8", f"search.storage={storage}")
    first = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(storage, first, lambda trials: sum(t.state.name == "COMPLETE" for t in trials) >= 3)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = finished(the_study(storage).trials)
    client, parents, _ = runs_of(tracking_uri)
    assert [p.info.status for p in parents] == ["RUNNING"]  # what SIGKILL leaves

    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = the_study(storage).trials
    after = finished(trials)
    assert len(after) == 8
    assert {t.state.name for t in trials if t not in after} <= {"FAIL"}  # nothing left RUNNING
    by_first = [t for t in after if owner_pid(t) == first.pid]
    by_second = [t for t in after if owner_pid(t) != first.pid]
    assert [t.number for t in by_first] == [t.number for t in before] and len(before) >= 3
    assert len(by_second) == 8 - len(before)
    assert not {t.params["C"] for t in by_second} & {t.params["C"] for t in before}  # 0 re-evaluated
    killed = [t for t in trials if t.state.name == "FAIL"]
    assert all(t.user_attrs["wtc.failed"] == "its process is gone" for t in killed)

    client, parents, children = runs_of(tracking_uri)
    by_pid = {p.data.tags["wtc.pid"]: p for p in parents}
    dead, alive = by_pid[str(first.pid)], next(p for pid, p in by_pid.items() if pid != str(first.pid))
    assert dead.info.status == "KILLED" and "its process was gone" in dead.data.tags["wtc.killed"]
    assert alive.info.status == "FINISHED"
    mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == alive.info.run_id]
    assert len(mine) == 8  # the new run's trial table is complete
    assert sum(c.data.tags.get("wtc.resumed") == "true" for c in mine) == len(before)
    print(f"\nresume: {len(before)} trials before SIGKILL, {len(after)} after the relaunch "
          f"({len(by_second)} new, 0 re-evaluated); killed run {dead.info.status}, new run {alive.info.status}")


def test_sigterm_ends_the_run_killed_in_one_line(history, tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    argv = command(history, tracking_uri, tmp_path, "search.n_trials=50", f"search.storage={storage}")
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(storage, proc, lambda trials: any(t.state.name == "COMPLETE" for t in trials)
             and trials[-1].state.name == "RUNNING")
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=120)[1]
    _, parents, children = runs_of(tracking_uri)
    lines = stderr.strip().splitlines()
    assert proc.returncode == 128 + signal.SIGTERM
    assert lines == [f"error: interrupted by SIGTERM: run {parents[0].info.run_id} marked KILLED"], stderr[-3000:]
    assert "Traceback" not in stderr
    assert parents[0].info.status == "KILLED" and parents[0].data.tags["error"] == "Terminated: SIGTERM"
    assert {c.info.status for c in children} <= {"FINISHED", "KILLED"}
    trials = the_study(storage).trials
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert all(t.user_attrs.get("wtc.failed") == "interrupted" for t in trials if t.state.name == "FAIL")
    print(f"\nSIGTERM: exit {proc.returncode}, stderr {lines[0]!r}, run {parents[0].info.status}")


class SlowLogisticRegression(LogisticRegression):
    """A logistic regression whose fits take 0.2 s: long enough that both processes get trials."""

    def fit(self, X, y, sample_weight=None):
        time.sleep(0.2)
        return super().fit(X, y, sample_weight)


def _separate_job(storage: str, kind: type, n_trials: int, start) -> None:
    """One of two processes started alike (the same config and seed) on one study: cluster jobs."""
    import scipy.sparse as sp
    from imblearn.pipeline import Pipeline
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold

    from wtc.tuning import StudySpec, search

    X, y = make_classification(240, 8, n_informative=4, random_state=0)
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    searcher = kind({"C": {"low": 1e-4, "high": 100.0, "log": True}}, n_trials, 0,
                    **({"pruner": "none"} if kind is TPESearcher else {"n_initial_points": 3}))
    start.wait()
    search(Pipeline([("model", SlowLogisticRegression(max_iter=200))]), searcher, sp.csr_matrix(X), y, folds, 2,
           "log_loss", study=StudySpec(storage, f"shared-{kind.kind}", heartbeat_s=None))


@pytest.mark.parametrize("kind", [TPESearcher, GPSearcher], ids=lambda cls: cls.kind)
def test_two_processes_on_one_study_share_its_budget_and_never_repeat_a_trial(tmp_path, kind):
    from wtc.tuning import StudySpec

    storage = f"sqlite:///{tmp_path}/optuna.db"
    StudySpec(storage, f"shared-{kind.kind}").open(6).close()  # the tables exist before the race starts
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    jobs = [context.Process(target=_separate_job, args=(storage, kind, 6, start)) for _ in range(2)]
    for job in jobs:
        job.start()
    start.set()
    for job in jobs:
        job.join(300)
    assert [job.exitcode for job in jobs] == [0, 0]
    trials = optuna.load_study(study_name=f"shared-{kind.kind}", storage=storage).trials
    done = finished(trials)
    params = [t.params["C"] for t in done]
    assert len(done) == 6 and len(set(params)) == 6  # exactly the budget, no parameter set twice
    assert {owner_pid(t) for t in done} == {job.pid for job in jobs}  # both evaluated trials
    assert not [t for t in trials if t.state.name == "RUNNING"]
    print(f"\n{kind.kind}, 2 processes: {len(done)} finished of 6, {len(params) - len(set(params))} duplicates, "
          f"{sum(owner_pid(t) == jobs[0].pid for t in done)}/{sum(owner_pid(t) == jobs[1].pid for t in done)} "
          f"by process, {len(trials) - len(done)} failed (budget or repeat)")


def test_n_workers_2_end_to_end(history, tracking_uri):
    cfg = make_cfg(history, tracking_uri, ["model=logreg", "search=tpe", "search.n_trials=6", "cv.n_splits=3",
                                           "search.n_workers=2"])
    result = run(cfg)
    client, parents, children = runs_of(tracking_uri)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert len(children) == 6 and {c.info.status for c in children} == {"FINISHED"}
    numbers = sorted(int(c.data.tags["wtc.trial_number"]) for c in children)
    assert len(set(numbers)) == 6
    assert len({c.data.params["C"] for c in children}) == 6
    workers = {c.data.tags["wtc.worker"] for c in children}
    assert f"{socket.gethostname()}:{os.getpid()}" in workers
    assert result.metrics["objective"] == pytest.approx(min(
        c.data.metrics["objective"] for c in children if "objective" in c.data.metrics))
    print(f"\nn_workers=2: {len(children)} child runs from {len(workers)} process(es)")
