"""The name-blind workflow oracle: ``P(z | all the workflow's tasks)`` with the traits marginalised jointly.

The workflow oracle (:func:`~wtc.data.synthetic.posterior.workflow_posterior`) reads a task's
siblings and its workflow's traits from the name's hash; the name-blind oracle
(:mod:`~wtc.data.synthetic.blind`) reads one task and treats the traits as unknown. This is
the two at once, the limit of a model that reads the siblings but cannot read the name:

    P(x_1 .. x_n | z) = E_traits[prod_tasks P(x_i | z, traits)],

one draw of the traits for the whole workflow (they are the workflow's), so the evidence the
siblings give about the whitelist, the signature code and the count scale is pooled. Given z
and the traits the tasks are independent, and the expectation splits as for one task, with
the workflow as the unit:

- **count scale**: Gauss-Hermite quadrature over the lognormal of the product of every
  sibling's count terms (``scale_nodes``, more than for one task since the pooled cells
  narrow the scale's posterior; a task's cells of one class enter through two sums);
- **signature and whitelist**: :func:`~wtc.data.synthetic.blind._presence_evidence` over the
  workflow's cells, each with its own task's class: the signature is summed exactly over the
  codes the workflow shows, the whitelist's part on the workflow's observed sites enumerated
  and its other slots sampled (``samples`` sequences per workflow) or, with few eligible
  sites, enumerated.

A workflow of one task gets the per-task name-blind posterior (same seed: the same numbers).
Error on the default benchmark: see docs/data.md (Monte Carlo standard error of the test
log-loss from independent seeds). This is a yardstick: no model, view or preset may use it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from wtc.data.names import workflow_of
from wtc.data.synthetic.blind import _presence_evidence
from wtc.data.synthetic.posterior import cell_rate, class_table, normalised_posterior, observed_cells, task_term
from wtc.data.synthetic.traits import TraitsPrior, traits_prior
from wtc.data.synthetic.world import DISPERSION, World, fixed_world

__all__ = ["workflow_blind_loglik", "workflow_blind_oracle_of", "workflow_blind_posterior"]


def workflow_blind_posterior(world: World, history: dict, prior: TraitsPrior | None = None, samples: int = 32,
                             scale_nodes: int = 96, seed: int = 0) -> np.ndarray:
    """``P(z | every task of the task's workflow in history)``, traits marginalised, shape (n_tasks, n_z).

    Parameters
    ----------
    world : World
    history : dict
        Tasks of the synthetic world (any subset of a generated history: only the tasks present count).
    prior : TraitsPrior, optional
        The traits' distribution; default :func:`~wtc.data.synthetic.traits.traits_prior`.
    samples : int
        Sequences of unobserved whitelist slots per workflow.
    scale_nodes : int
        Gauss-Hermite nodes over the count scale.
    seed : int
        Seeds the sampled slots: the same seed gives the same posterior.
    """
    tasks = list(history)
    camp, _, _ = world.context(tasks)
    loglik, task_wf = workflow_blind_loglik(world, history, prior, samples, scale_nodes, seed)
    return normalised_posterior(world.log_prior[camp], loglik[task_wf])


def workflow_blind_oracle_of(history: dict, samples: int = 32, scale_nodes: int = 96, seed: int = 0) -> pd.DataFrame:
    """The name-blind workflow oracle's ``P(class | the workflow's tasks)``: the columns of :func:`oracle_of`.

    Every task of a workflow gets the same row (see the module docstring).
    """
    world = fixed_world()
    post = workflow_blind_posterior(world, history, None, samples, scale_nodes, seed)
    return class_table(world, list(history), post)


def workflow_blind_loglik(world: World, history: dict, prior: TraitsPrior | None = None, samples: int = 32,
                          scale_nodes: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``log E_traits[prod_tasks P(task's matrix | z, traits)]`` of every workflow, shape (n_workflows, n_z),
    and each task's workflow (row of it), in order of first appearance."""
    if samples < 1 or scale_nodes < 1:
        raise ValueError(f"samples and scale_nodes must be at least 1, got {samples} and {scale_nodes}")
    prior = prior or traits_prior(world)
    tasks = list(history)
    _, week, cls = world.context(tasks)
    names = [workflow_of(task) for task in tasks]
    first = {}
    task_wf = np.array([first.setdefault(name, len(first)) for name in names], dtype=np.int64)
    n_wf = len(first)
    wf_week = np.empty(n_wf, dtype=np.int64)
    wf_week[task_wf] = week
    t, s, c, k, n = observed_cells(world, history, week)
    unit = task_wf[t]
    order = np.lexsort((c, unit))  # cells by workflow, then code: a workflow's cells of one code are adjacent
    t, s, c, k, n, unit = t[order], s[order], c[order], k[order], n[order], unit[order]
    loglik = np.zeros((n_wf, world.log_prior.shape[1]))
    np.add.at(loglik, task_wf, task_term(world, cls))
    loglik += _pooled_count_evidence(world, prior, unit, cls[t], n, n_wf, scale_nodes)
    rate = [cell_rate(world, cls[t], s, c, hit) for hit in (0.0, 1.0)]
    loglik += _presence_evidence(world, prior, wf_week, rate, (unit, s, c, k), samples, np.random.default_rng(seed))
    return loglik, task_wf


def _pooled_count_evidence(world, prior, unit, cell_cls, n, n_units, nodes) -> np.ndarray:
    """``log E_scale[prod_cells P(count | z, class, scale)]`` per unit by Gauss-Hermite quadrature.

    The negative binomial's log-probability is ``const(n) + r log(r / (r + m)) + (n - 1) log(m / (r + m))``
    with ``m`` the scaled mean of the cell's class and z, so per (unit, class) only the number
    of cells and the sum of ``n - 1`` enter each node (what :func:`count_term` sums cell by cell).
    """
    from scipy.special import gammaln

    r = DISPERSION
    n_cls = world.count_mean.shape[1]
    key = unit * n_cls + cell_cls
    groups, inverse = np.unique(key, return_inverse=True)
    cells = np.bincount(inverse).astype(float)
    excess = np.bincount(inverse, weights=(n - 1).astype(float))
    const = np.bincount(unit, weights=gammaln(n - 1 + r) - gammaln(r) - gammaln(n), minlength=n_units)
    base = (world.count_mean[:, groups % n_cls].T - 1)  # (group, z) mean at scale 1
    x, w = np.polynomial.hermite.hermgauss(nodes)
    total = np.full((n_units, base.shape[1]), -np.inf)
    group_unit = groups // n_cls
    for log_w, scale in zip(np.log(w / np.sqrt(np.pi)), np.exp(prior.scale_mu + prior.scale_sigma * np.sqrt(2.0) * x)):
        mean = base * scale
        value = cells[:, None] * r * np.log(r / (r + mean)) + excess[:, None] * np.log(mean / (r + mean))
        node = np.zeros_like(total)
        np.add.at(node, group_unit, value)
        np.logaddexp(total, log_w + node, out=total)
    return total + const[:, None]
