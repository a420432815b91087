"""The name-blind workflow oracle: the traits marginalised jointly over a workflow's tasks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.factories import small_traits_prior, traits_enumeration
from wtc.data import load_oracle
from wtc.data.names import workflow_of
from wtc.data.synthetic import blind as blind_module
from wtc.data.synthetic import (
    ensure_workflow_blind_oracle,
    generate_history,
    oracle_of,
    oracle_path,
    workflow_blind_oracle_of,
    write_benchmark,
)
from wtc.data.synthetic.blind import blind_loglik, blind_posterior
from wtc.data.synthetic.posterior import latent_loglik, normalised_posterior, workflow_posterior
from wtc.data.synthetic.sampling import sample_history
from wtc.data.synthetic.traits import TraitsPrior, WorkflowTraits
from wtc.data.synthetic.workflow_blind import workflow_blind_loglik, workflow_blind_posterior
from wtc.data.synthetic.world import fixed_world


@pytest.fixture(scope="module")
def world():
    return fixed_world()


@pytest.fixture(scope="module")
def tiny():
    history, _ = generate_history(80, seed=5)
    return history


def _workflow_sum(loglik: np.ndarray, task_wf: np.ndarray) -> np.ndarray:
    total = np.zeros((task_wf.max() + 1, loglik.shape[1]))
    np.add.at(total, task_wf, loglik)
    return total


def test_a_point_mass_prior_gives_the_workflow_oracle(world, tiny):
    """Traits known exactly: the workflow's evidence is the product of its tasks' named likelihoods,
    and the posterior is the workflow oracle's with those traits."""
    n_tasks, n_z = len(tiny), world.log_prior.shape[1]
    site, signature, scale = world.sites.index("T1_US_FNAL"), world.signature_prob.argmax(axis=1), 2.5
    known = WorkflowTraits(np.tile([site, -1, -1, -1, -1], (n_tasks, 1)), np.tile(signature, (n_tasks, 1)),
                           np.full(n_tasks, scale))
    one_hot = np.zeros_like(world.signature_prob)
    one_hot[np.arange(n_z), signature] = 1.0
    slot = np.zeros(len(world.sites))
    slot[site] = 1.0
    prior = TraitsPrior(slot, np.array([0, 0, 1.0, 0, 0, 0]), one_hot, np.log(scale), 0.0)
    loglik, task_wf = workflow_blind_loglik(world, tiny, prior, samples=3, scale_nodes=3)
    assert task_wf.max() + 1 < n_tasks  # some workflows have siblings
    named = _workflow_sum(latent_loglik(world, tiny, known), task_wf)
    np.testing.assert_allclose(loglik, named, rtol=0, atol=1e-9)
    camp, _, _ = world.context(list(tiny))
    np.testing.assert_allclose(workflow_blind_posterior(world, tiny, prior, samples=3, scale_nodes=3),
                               normalised_posterior(world.log_prior[camp], named[task_wf]), rtol=0, atol=1e-12)


def test_the_named_workflow_oracle_is_the_same_sum_with_each_workflows_own_traits(world, tiny):
    """The reference of the point-mass test is the workflow oracle's own construction."""
    _, task_wf = workflow_blind_loglik(world, tiny, samples=1, scale_nodes=1)
    camp, _, _ = world.context(list(tiny))
    named = _workflow_sum(latent_loglik(world, tiny), task_wf)
    np.testing.assert_allclose(workflow_posterior(world, tiny), normalised_posterior(world.log_prior[camp],
                                                                                     named[task_wf]), atol=1e-12)


def _brute_force(world, history, prior, sites, codes, nodes) -> np.ndarray:
    """``log E_traits prod_tasks P(x_i | z, traits)`` per workflow: every whitelist, code and node,
    one draw for the whole workflow."""
    n_tasks = len(history)
    _, task_wf = workflow_blind_loglik(world, history, prior, samples=1, scale_nodes=1)
    total = np.full((task_wf.max() + 1, world.log_prior.shape[1]), -np.inf)
    for whitelist, code, scale, weight in traits_enumeration(world, prior, sites, codes, nodes):
        traits = WorkflowTraits(np.tile(whitelist, (n_tasks, 1)), np.full((n_tasks, total.shape[1]), code),
                                np.full(n_tasks, scale))
        total = np.logaddexp(total, _workflow_sum(latent_loglik(world, history, traits), task_wf) + weight)
    return total


def test_marginal_equals_brute_force_enumeration_of_the_traits(world, tiny):
    """Few eligible sites: the unobserved slots are enumerated, so the whole sum is exact, and it is
    not the product of the tasks' own marginals (the traits are drawn once per workflow)."""
    prior, sites, codes = small_traits_prior(world, tiny)
    expected = _brute_force(world, tiny, prior, sites, codes, nodes=4)
    loglik, task_wf = workflow_blind_loglik(world, tiny, prior, samples=2, scale_nodes=4)
    np.testing.assert_allclose(loglik, expected, rtol=0, atol=1e-9)
    per_task = _workflow_sum(blind_loglik(world, tiny, prior, samples=2, scale_nodes=4), task_wf)
    siblings = np.bincount(task_wf) > 1
    assert np.abs(per_task - expected)[siblings].min(axis=1).max() > 1e-3
    np.testing.assert_allclose(per_task[~siblings], expected[~siblings], atol=1e-9)


def test_sampled_unobserved_slots_converge_to_the_exact_sum(world, tiny, monkeypatch):
    """The Monte Carlo path (forced on the small prior) lands near the exact posterior; a seed fixes it."""
    prior, _, _ = small_traits_prior(world, tiny)
    exact = workflow_blind_posterior(world, tiny, prior, scale_nodes=4)
    monkeypatch.setattr(blind_module, "EXACT_SEQUENCES", 0)
    sampled = workflow_blind_posterior(world, tiny, prior, samples=200, scale_nodes=4, seed=1)
    np.testing.assert_array_equal(sampled, workflow_blind_posterior(world, tiny, prior, samples=200, scale_nodes=4,
                                                                    seed=1))
    assert np.abs(sampled - exact).max() < 0.02
    assert np.abs(sampled - exact).max() < np.abs(exact - blind_posterior(world, tiny, prior, scale_nodes=4)).max() / 5


def test_a_workflow_of_one_task_gets_the_per_task_blind_oracle(world, tiny):
    """Same seed and nodes: the first task of each workflow alone gives the per-task numbers."""
    seen: set = set()
    alone = {task: tiny[task] for task in tiny if not (workflow_of(task) in seen or seen.add(workflow_of(task)))}
    loglik, task_wf = workflow_blind_loglik(world, alone, samples=6, scale_nodes=32, seed=3)
    np.testing.assert_array_equal(task_wf, np.arange(len(alone)))
    np.testing.assert_allclose(loglik, blind_loglik(world, alone, samples=6, scale_nodes=32, seed=3), atol=1e-9)


def test_the_table_shares_one_row_per_workflow_and_the_quadrature_has_converged(tiny):
    named, table = oracle_of(tiny), workflow_blind_oracle_of(tiny, samples=8)
    assert list(table.columns) == list(named.columns) and list(table["task"]) == list(tiny)
    values = table.drop(columns="task").to_numpy()
    for target in ("binary", "action_split"):
        cols = [c for c in table.columns if c.startswith(f"{target}/")]
        np.testing.assert_allclose(table[cols].sum(axis=1), 1.0)
    by_wf = {}
    for task, row in zip(tiny, values):
        np.testing.assert_array_equal(by_wf.setdefault(workflow_of(task), row), row)
    finer = workflow_blind_oracle_of(tiny, samples=8, scale_nodes=192).drop(columns="task").to_numpy()
    assert np.abs(finer - values).max() < 1e-4


def test_it_lies_between_the_named_workflow_oracle_and_the_per_task_blind_one(world):
    """Log-loss on the true z: siblings pool evidence about the traits the name would have given."""
    sample = sample_history(500, seed=9)
    rows = np.arange(len(sample.task_latent))
    loss = {name: -np.log(post[rows, sample.task_latent]).mean() for name, post in (
        ("named workflow", workflow_posterior(world, sample.history)),
        ("blind workflow", workflow_blind_posterior(world, sample.history, samples=8)),
        ("blind task", blind_posterior(world, sample.history, samples=8)))}
    assert loss["named workflow"] < loss["blind workflow"] < loss["blind task"], loss


def test_the_sidecar_is_written_once_and_read_like_the_oracle(tmp_path):
    path = write_benchmark(tmp_path / "h.json", n_tasks=80, seed=4)
    sidecar = ensure_workflow_blind_oracle(path, samples=4)
    assert sidecar == oracle_path(path, blind=True, workflow=True) and sidecar.name == "h.workflow_blind_oracle.parquet"
    stamp = sidecar.stat().st_mtime_ns
    assert ensure_workflow_blind_oracle(path, samples=4).stat().st_mtime_ns == stamp  # reused
    proba, classes = load_oracle(path, "action_split", blind=True, workflow=True)
    named, same = load_oracle(path, "action_split")
    assert classes == same and proba.shape == named.shape and np.allclose(proba.sum(axis=1), 1.0)
