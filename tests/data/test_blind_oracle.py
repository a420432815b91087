"""The name-blind oracle: exact where it claims to be, a true marginal of the traits' prior, and on the bench path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.factories import small_traits_prior, traits_enumeration
from wtc.data import load_oracle
from wtc.data.synthetic import blind as blind_module
from wtc.data.synthetic import blind_oracle_of, ensure_blind_oracle, generate_history, oracle_of, write_benchmark
from wtc.data.synthetic.blind import blind_loglik, blind_posterior
from wtc.data.synthetic.posterior import latent_loglik, latent_posterior
from wtc.data.synthetic.sampling import sample_history
from wtc.data.synthetic.traits import TraitsPrior, WorkflowTraits, traits_prior, workflow_traits
from wtc.data.synthetic.world import COUNT_SCALE_SIGMA, WHITELIST_SITES, fixed_world


@pytest.fixture(scope="module")
def world():
    return fixed_world()


@pytest.fixture(scope="module")
def tiny():
    history, _ = generate_history(60, seed=5)
    return history


def test_a_point_mass_prior_gives_the_named_oracle(world, tiny):
    """Traits known exactly (one-hot signature rows, one whitelist site, scale sigma 0): no integral left."""
    n_tasks, n_z = len(tiny), world.log_prior.shape[1]
    site, signature, scale = world.sites.index("T1_US_FNAL"), world.signature_prob.argmax(axis=1), 2.5
    known = WorkflowTraits(np.tile([site, -1, -1, -1, -1], (n_tasks, 1)), np.tile(signature, (n_tasks, 1)),
                           np.full(n_tasks, scale))
    one_hot = np.zeros_like(world.signature_prob)
    one_hot[np.arange(n_z), signature] = 1.0
    slot = np.zeros(len(world.sites))
    slot[site] = 1.0
    prior = TraitsPrior(slot, np.array([0, 0, 1.0, 0, 0, 0]), one_hot, np.log(scale), 0.0)
    np.testing.assert_allclose(blind_loglik(world, tiny, prior, samples=3, scale_nodes=3),
                               latent_loglik(world, tiny, known), rtol=0, atol=1e-9)


def _brute_force(world, history, prior, sites, codes, nodes) -> np.ndarray:
    """``log E_traits P(x | z, traits)`` by enumerating every slot sequence, code and node."""
    n_tasks = len(history)
    total = np.full((n_tasks, world.log_prior.shape[1]), -np.inf)
    for whitelist, code, scale, weight in traits_enumeration(world, prior, sites, codes, nodes):
        traits = WorkflowTraits(np.tile(whitelist, (n_tasks, 1)), np.full((n_tasks, total.shape[1]), code),
                                np.full(n_tasks, scale))
        total = np.logaddexp(total, latent_loglik(world, history, traits) + weight)
    return total


def test_marginal_equals_brute_force_enumeration_of_the_traits(world, tiny):
    """Few eligible sites: the unobserved slots are enumerated, so the whole sum is exact."""
    prior, sites, codes = small_traits_prior(world, tiny)
    expected = _brute_force(world, tiny, prior, sites, codes, nodes=4)
    np.testing.assert_allclose(blind_loglik(world, tiny, prior, samples=2, scale_nodes=4), expected,
                               rtol=0, atol=1e-9)


def test_sampled_unobserved_slots_converge_to_the_exact_sum(world, tiny, monkeypatch):
    """The Monte Carlo path (forced on the small prior) lands near the exact posterior, and the
    same seed gives the same numbers."""
    prior, _, _ = small_traits_prior(world, tiny)
    exact = blind_posterior(world, tiny, prior, scale_nodes=4)
    monkeypatch.setattr(blind_module, "EXACT_SEQUENCES", 0)
    sampled = blind_posterior(world, tiny, prior, samples=200, scale_nodes=4, seed=1)
    np.testing.assert_array_equal(sampled, blind_posterior(world, tiny, prior, samples=200, scale_nodes=4, seed=1))
    assert np.abs(sampled - exact).max() < 0.02
    assert np.abs(sampled - exact).max() < np.abs(exact - latent_posterior(world, tiny)).max() / 5


def test_traits_prior_is_what_names_induce(world):
    """The prior the blind oracle integrates over against the traits of 20,000 random names."""
    names = [f"pdmvserv_task_HIG-RunIIFall17GS-{i:05d}__v1_T_180412_131301_1234" for i in range(20_000)]
    drawn, prior = workflow_traits(world, names), traits_prior(world)
    on_list = np.bincount(drawn.whitelist[drawn.whitelist >= 0], minlength=len(world.sites)) / len(names)
    n = np.arange(prior.n_slots_prob.size)
    expected = 1 - (prior.n_slots_prob[None, :] * (1 - prior.slot_prob[:, None]) ** n).sum(axis=1)
    assert np.abs(on_list - expected).max() < 0.015 and (on_list[prior.slot_prob == 0] == 0).all()
    sizes = np.bincount((drawn.whitelist >= 0).sum(axis=1), minlength=WHITELIST_SITES[1] + 1) / len(names)
    assert sizes[0] == 0 and sizes[WHITELIST_SITES[1]] > 0.15  # duplicates only ever shrink a list
    for z in (0, 7, 23):
        freq = np.bincount(drawn.signature[:, z], minlength=len(world.codes)) / len(names)
        assert np.abs(freq - prior.signature_prob[z]).max() < 0.015, z
    log_scale = np.log(drawn.count_scale)
    assert abs(log_scale.mean()) < 0.03 and abs(log_scale.std() - COUNT_SCALE_SIGMA) < 0.03


def test_blind_oracle_table_on_a_tiny_history(tiny):
    """Same columns as the named oracle, rows are distributions, a seed fixes it, the quadrature
    has converged, and it is less sure than the named oracle about the true labels."""
    named, blind = oracle_of(tiny), blind_oracle_of(tiny, samples=16)
    assert list(blind.columns) == list(named.columns) and list(blind["task"]) == list(tiny)
    for target in ("binary", "action_split"):
        cols = [c for c in blind.columns if c.startswith(f"{target}/")]
        np.testing.assert_allclose(blind[cols].sum(axis=1), 1.0)
        assert (blind[cols].to_numpy() > 0).all()
    values = blind.drop(columns="task").to_numpy()
    np.testing.assert_array_equal(values, blind_oracle_of(tiny, samples=16).drop(columns="task").to_numpy())
    finer = blind_oracle_of(tiny, samples=16, scale_nodes=64).drop(columns="task").to_numpy()
    assert np.abs(finer - values).max() < 1e-3


def test_blind_posterior_of_the_hidden_cause_lies_between_the_named_one_and_the_prior(world):
    """Log-loss on the true z: the traits carry evidence the blind oracle only has on average."""
    sample = sample_history(800, seed=9)
    camp, _, _ = world.context(list(sample.history))
    rows = np.arange(len(sample.task_latent))
    loss = {name: -np.log(post[rows, sample.task_latent]).mean() for name, post in (
        ("named", latent_posterior(world, sample.history)),
        ("blind", blind_posterior(world, sample.history, samples=8)),
        ("prior", np.exp(world.log_prior[camp])))}
    assert loss["named"] < loss["blind"] < loss["prior"], loss


def test_the_sidecar_is_written_once_and_read_like_the_oracle(tmp_path):
    path = write_benchmark(tmp_path / "h.json", n_tasks=80, seed=4)
    sidecar = ensure_blind_oracle(path, samples=4)
    stamp = sidecar.stat().st_mtime_ns
    assert ensure_blind_oracle(path, samples=4).stat().st_mtime_ns == stamp  # reused
    proba, classes = load_oracle(path, "binary", blind=True)
    named, same = load_oracle(path, "binary")
    assert classes == same and proba.shape == named.shape and np.allclose(proba.sum(axis=1), 1.0)
    history = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(dict(list(history.items())[:50])), encoding="utf-8")  # other tasks: recomputed
    assert len(pd.read_parquet(ensure_blind_oracle(path, samples=4), columns=["task"])) == 50
