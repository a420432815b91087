"""The workflow oracle: P(z | all the tasks of a task's workflow), the bound for sibling-reading models."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import compose_cfg
from wtc.config import build_option
from wtc.data import load_oracle
from wtc.data.dataset import load_dataset
from wtc.data.names import workflow_of
from wtc.data.splits import make_splits
from wtc.data.synthetic import (
    DEFAULT_TASKS,
    ensure_workflow_oracle,
    generate_history,
    oracle_of,
    oracle_path,
    workflow_oracle_of,
    write_benchmark,
)
from wtc.data.synthetic.posterior import latent_loglik, latent_posterior, workflow_posterior
from wtc.data.synthetic.world import fixed_world
from wtc.evaluation.metrics import score_all


@pytest.fixture(scope="module")
def world():
    return fixed_world()


@pytest.fixture(scope="module")
def tiny():
    history, _ = generate_history(120, seed=6)
    return history


def _by_workflow(history: dict) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for task in history:
        groups.setdefault(workflow_of(task), []).append(task)
    return groups


def test_a_workflow_of_one_task_gets_the_per_task_oracle(world, tiny):
    """First task of every workflow only: nothing to add, the two oracles agree row for row."""
    alone = {tasks[0]: tiny[tasks[0]] for tasks in _by_workflow(tiny).values()}
    np.testing.assert_allclose(workflow_posterior(world, alone), latent_posterior(world, alone), rtol=1e-12)
    named, wf = oracle_of(alone), workflow_oracle_of(alone)
    assert list(wf.columns) == list(named.columns) and list(wf["task"]) == list(alone)
    np.testing.assert_allclose(wf.drop(columns="task").to_numpy(), named.drop(columns="task").to_numpy(), rtol=1e-12)
    # in the full history too, a workflow of one task keeps its per-task row
    full = workflow_posterior(world, tiny)
    single = [i for i, task in enumerate(tiny) if len(_by_workflow(tiny)[workflow_of(task)]) == 1]
    assert single
    np.testing.assert_allclose(full[single], latent_posterior(world, tiny)[single], rtol=1e-10)


def test_a_workflow_of_two_tasks_multiplies_the_evidence(world, tiny):
    """P(z | a, b) = P(z | a) P(z | b) / P(z), normalised: checked by hand on one workflow."""
    pair = next(tasks for tasks in _by_workflow(tiny).values() if len(tasks) == 2)
    sub = {task: tiny[task] for task in pair}
    camp, _, _ = world.context(pair)
    assert camp[0] == camp[1]
    prior = np.exp(world.log_prior[camp[0]])
    a, b = latent_posterior(world, sub)
    by_hand = a * b / prior
    by_hand /= by_hand.sum()
    post = workflow_posterior(world, sub)
    np.testing.assert_allclose(post, np.stack([by_hand, by_hand]), rtol=1e-9)
    # the same from the likelihoods, and unchanged when the pair sits in the whole history
    loglik = latent_loglik(world, sub)
    direct = np.exp(world.log_prior[camp[0]] + loglik.sum(axis=0) - (world.log_prior[camp[0]] + loglik.sum(axis=0)).max())
    np.testing.assert_allclose(post[0], direct / direct.sum(), rtol=1e-9)
    rows = [list(tiny).index(task) for task in pair]
    np.testing.assert_allclose(workflow_posterior(world, tiny)[rows], post, rtol=1e-9)
    # every target's class probabilities follow: both tasks share one row
    table = workflow_oracle_of(sub).drop(columns="task").to_numpy()
    np.testing.assert_array_equal(table[0], table[1])
    columns = list(workflow_oracle_of(sub).columns[1:])
    for target in ("binary", "action_split"):
        cols = [i for i, c in enumerate(columns) if c.startswith(f"{target}/")]
        np.testing.assert_allclose(table[:, cols].sum(axis=1), 1.0)


def test_the_sidecar_is_written_once_and_read_like_the_oracle(tmp_path):
    path = write_benchmark(tmp_path / "h.json", n_tasks=80, seed=4)
    sidecar = ensure_workflow_oracle(path)
    assert sidecar == oracle_path(path, workflow=True) and sidecar.name == "h.workflow_oracle.parquet"
    stamp = sidecar.stat().st_mtime_ns
    assert ensure_workflow_oracle(path).stat().st_mtime_ns == stamp  # reused
    proba, classes = load_oracle(path, "action_split", workflow=True)
    named, same = load_oracle(path, "action_split")
    assert classes == same and proba.shape == named.shape and np.allclose(proba.sum(axis=1), 1.0)
    assert oracle_path(path, blind=True, workflow=True).name == "h.workflow_blind_oracle.parquet"  # both: its own


@pytest.fixture(scope="module")
def default_benchmark(tmp_path_factory):
    """The default benchmark (seed 0, 7,582 tasks) with its workflow oracle sidecar."""
    path = write_benchmark(tmp_path_factory.mktemp("default") / "default.json", DEFAULT_TASKS, seed=0)
    ensure_workflow_oracle(path)
    return path


@pytest.mark.parametrize("target", ["binary", "action_split"])
def test_on_the_default_benchmarks_test_rows_it_beats_the_per_task_oracle(default_benchmark, target):
    """The default benchmark's grouped test split: reading the siblings lowers the log-loss
    below the exact per-task oracle's."""
    path = default_benchmark
    cfg = compose_cfg(["data=good", f"target={target}", f"data.path={path}", "cv=grouped",
                       f"paths.cache_dir={path.parent / 'cache'}"])
    data = load_dataset(cfg)
    splits = make_splits(build_option(cfg.cv), float(cfg.test_size), int(cfg.seed), data.y, data.groups, data.dates)
    y = data.y[splits.test]
    exact = score_all(y, data.oracle[splits.test], len(data.classes))["log_loss"]
    wf = score_all(y, data.oracle_workflow[splits.test], len(data.classes))["log_loss"]
    assert wf < exact, (wf, exact)
