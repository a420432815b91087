"""The name-blind oracle: ``P(z | task)`` with the workflow's traits marginalised over their prior.

The exact oracle (:mod:`~wtc.data.synthetic.posterior`) reads each workflow's traits
(whitelist, signature code, count scale) from a hash of its name. No model can: the hash is
as good as random, and a workflow-grouped split never shows a test workflow in training. The
honest limit for such a model conditions on the same task entry but treats the traits as
unknown, drawn from the distribution names induce (:func:`~wtc.data.synthetic.traits.traits_prior`):

    P(x | z) = E_traits[P(x | z, traits)],

with the per-cell terms of the exact oracle. The traits are independent, so the expectation
splits into a count factor (scale) and a presence factor (whitelist and signature jointly,
since both enter each cell's share):

- **count scale**: Gauss-Hermite quadrature over the lognormal (``scale_nodes`` nodes);
- **signature**: exact. Given z only the signature of that z matters, and it only matters
  whether it is one of the task's codes: a sum over the task's codes plus "none of them";
- **whitelist**: stratified. The slots that land on the task's observed eligible sites give
  the set ``A``, enumerated exactly with its probability (inclusion-exclusion over the
  ``n ~ P(n)`` slots); the other slots only move the whitelist's pull totals and are
  sampled: for each ``A``, its "no slot elsewhere" part exactly, the rest by ``samples``
  sequences per task from the prior restricted to the unobserved sites (the number of them,
  m, drawn from ``P(m | A, m > 0)``), shared by every ``A`` so the estimate is smooth in
  ``A``. With few eligible sites (tests, point masses) every (m, sequence) is enumerated
  instead, and the whole posterior is exact.

All sums run in log space, in blocks of whole tasks. Error, measured on the default benchmark's
1,516 test rows (binary; action_split alike): the Monte Carlo standard error of the test
log-loss is ~1e-4 at 32 samples (seeds 0 and 1 differ by 1.0e-4, 16 and 64 samples by 2e-5);
16 and 64 quadrature nodes move it by 6e-6 and 2e-7. About 80 s for 7,582 tasks on one core.
This is a yardstick: no model, view or preset may use it.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd

from wtc.data.synthetic.posterior import (
    cell_rate,
    class_table,
    count_term,
    normalised_posterior,
    observed_cells,
    presence_term,
    task_term,
)
from wtc.data.synthetic.sampling import draw_rows
from wtc.data.synthetic.traits import TraitsPrior, site_probability, traits_prior
from wtc.data.synthetic.world import World, fixed_world

__all__ = ["blind_loglik", "blind_oracle_of", "blind_posterior"]

#: Enumerate the unobserved slots instead of sampling them when (eligible sites)^slots is at most this.
EXACT_SEQUENCES = 4096
#: Cell x row entries per vectorised block: bounds the memory (~40 MB per (entry, z) array).
_ENTRIES = 200_000


def blind_posterior(world: World, history: dict, prior: TraitsPrior | None = None, samples: int = 32,
                    scale_nodes: int = 32, seed: int = 0) -> np.ndarray:
    """``P(z | task)`` of every task with the traits marginalised, shape (n_tasks, n_z).

    Parameters
    ----------
    world : World
    history : dict
        Tasks of the synthetic world (any subset of a generated history).
    prior : TraitsPrior, optional
        The traits' distribution; default :func:`~wtc.data.synthetic.traits.traits_prior`.
    samples : int
        Sequences of unobserved whitelist slots per task (see the module docstring).
    scale_nodes : int
        Gauss-Hermite nodes over the count scale.
    seed : int
        Seeds the sampled slots: the same seed gives the same posterior.
    """
    camp, _, _ = world.context(list(history))
    return normalised_posterior(world.log_prior[camp],
                                blind_loglik(world, history, prior, samples, scale_nodes, seed))


def blind_oracle_of(history: dict, samples: int = 32, scale_nodes: int = 32, seed: int = 0) -> pd.DataFrame:
    """The name-blind ``P(class | task)`` of every target: the columns of :func:`oracle_of`.

    The limit of a model that sees each task's matrix, campaign, date and task type but
    cannot read its workflow's traits from the name (see the module docstring).
    """
    world = fixed_world()
    return class_table(world, list(history), blind_posterior(world, history, None, samples, scale_nodes, seed))


def blind_loglik(world: World, history: dict, prior: TraitsPrior | None = None, samples: int = 32,
                 scale_nodes: int = 32, seed: int = 0) -> np.ndarray:
    """``log E_traits[P(task's matrix | z, traits)]`` of every task, shape (n_tasks, n_z)."""
    if samples < 1 or scale_nodes < 1:
        raise ValueError(f"samples and scale_nodes must be at least 1, got {samples} and {scale_nodes}")
    prior = prior or traits_prior(world)
    tasks = list(history)
    _, week, cls = world.context(tasks)
    t, s, c, k, n = observed_cells(world, history, week)
    order = np.lexsort((c, t))  # cells by task, then code: a task's cells of one code are adjacent
    t, s, c, k, n = t[order], s[order], c[order], k[order], n[order]
    loglik = task_term(world, cls)
    loglik += _count_evidence(world, prior, cls, t, n, scale_nodes)
    rate = [cell_rate(world, cls[t], s, c, hit) for hit in (0.0, 1.0)]
    loglik += _presence_evidence(world, prior, week, rate, (t, s, c, k), samples, np.random.default_rng(seed))
    return loglik


def _count_evidence(world, prior, cls, t, n, nodes) -> np.ndarray:
    """``log E_scale[prod_cells P(count | z, scale)]`` per task by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite.hermgauss(nodes)
    total = np.full((cls.size, world.log_prior.shape[1]), -np.inf)
    first = np.searchsorted(t, np.arange(cls.size))  # every task has a cell
    for log_w, scale in zip(np.log(w / np.sqrt(np.pi)), np.exp(prior.scale_mu + prior.scale_sigma * np.sqrt(2.0) * x)):
        node = np.add.reduceat(count_term(world, cls[t], n, np.full(t.size, scale)), first, axis=0)
        np.logaddexp(total, log_w + node, out=total)
    return total


def _unobserved_slots(prior, observed: np.ndarray, samples: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Slot sequences off each task's observed sites: (task, seq, slot) sites, (task, seq) log
    weights, the prior mass of the unobserved eligible sites per task, and whether the
    sequences are enumerated (exact) rather than sampled."""
    q_off = np.where(observed, 0.0, prior.slot_prob[None, :])
    mass = q_off.sum(axis=1)
    eligible = np.flatnonzero(prior.slot_prob > 0)
    n_slots = prior.n_slots_prob.size - 1
    if eligible.size ** n_slots <= EXACT_SEQUENCES:
        seq = eligible[np.stack(np.unravel_index(np.arange(eligible.size ** n_slots),
                                                 (eligible.size,) * n_slots), axis=1)].reshape(-1, n_slots)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_q = np.log(q_off / mass[:, None])
        weight = log_q[:, seq].sum(axis=2)
        return np.broadcast_to(seq, (observed.shape[0], *seq.shape)), weight, mass, True
    rows = np.where(mass[:, None] > 0, q_off, prior.slot_prob[None, :])  # mass 0: never used
    seq = draw_rows(rng, rows, np.repeat(np.arange(observed.shape[0]), samples * n_slots))
    return seq.reshape(-1, samples, n_slots), np.full((observed.shape[0], samples), -np.log(samples)), mass, False


def _subset_masses(q_sets: np.ndarray, n_bits: int, power: int) -> np.ndarray:
    """``P(j iid slots land exactly on A)`` for every subset A (bitmask, last axis) of a set of
    sites: the Möbius transform of ``q(A)^j`` over subsets (inclusion-exclusion)."""
    f = q_sets ** power
    for bit in range(n_bits):
        has = (np.arange(f.shape[-1]) >> bit) & 1 == 1
        f[..., has] -= f[..., np.flatnonzero(has) ^ (1 << bit)]
    return np.maximum(f, 0.0)


def _strata(prior, sites: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every whitelist part ``A`` on the observed eligible sites of tasks that have ``o`` of them.

    ``sites`` (task, o): those sites; ``mass`` (task,): the prior mass of the other eligible
    sites. Returns, per stratum of positive probability, its task (row of ``sites``), ``A`` as
    sites (-1 padded) and ``P(A, m slots off the observed sites)`` for every m.
    """
    n_tasks, o = sites.shape
    max_slots = prior.n_slots_prob.size - 1
    masks = np.arange(1 << o)
    bits = (masks[:, None] >> np.arange(o)) & 1
    size = bits.sum(axis=1)
    q_sets = prior.slot_prob[sites] @ bits.T.astype(float)  # (task, mask)
    inside = [np.where(size <= j, _subset_masses(q_sets.copy(), o, j), 0.0) for j in range(max_slots + 1)]
    prob = np.zeros((n_tasks, masks.size, max_slots + 1))
    for n_slots, p_n in enumerate(prior.n_slots_prob):
        for m in range(n_slots + 1):  # m of the n slots off the observed sites, n - m on them
            prob[:, :, m] += p_n * comb(n_slots, m) * mass[:, None] ** m * inside[n_slots - m]
    task, mask = np.nonzero(prob.sum(axis=2) > 0)
    chosen = bits[mask].astype(bool)
    a_sites = np.full((task.size, max(max_slots, 1)), -1)
    rows, cols = np.nonzero(chosen)
    a_sites[rows, (np.cumsum(chosen, axis=1) - 1)[rows, cols]] = sites[task[rows], cols]
    return task, a_sites, prob[task, mask]


def _rows(task: np.ndarray, m_prob: np.ndarray, n_seq: int, seq_weight: np.ndarray, exact: bool,
          uniform: np.ndarray) -> tuple[np.ndarray, ...]:
    """The whitelists to evaluate for some strata: (stratum, m, sequence, log weight) per row.

    A stratum's m = 0 part is one row. Its m > 0 part is every (m, sequence) when the
    sequences are enumerated; else ``n_seq`` rows, the l-th with sequence l and m drawn from
    ``P(m | A, m > 0)`` by the task's l-th uniform (common to all its strata).
    """
    n_strata, n_m = m_prob.shape
    zero = np.flatnonzero(m_prob[:, 0] > 0)
    parts = [(zero, np.zeros_like(zero), np.zeros_like(zero), np.log(m_prob[zero, 0]))]
    with np.errstate(divide="ignore"):
        if exact:
            stratum, m, seq = (x.ravel() for x in np.meshgrid(np.arange(n_strata), np.arange(1, n_m),
                                                                np.arange(n_seq), indexing="ij"))
            keep = m_prob[stratum, m] > 0
            stratum, m, seq = stratum[keep], m[keep], seq[keep]
            parts.append((stratum, m, seq, np.log(m_prob[stratum, m]) + seq_weight[task[stratum], seq]))
        else:
            off = m_prob[:, 1:].sum(axis=1)
            stratum = np.repeat(np.flatnonzero(off > 0), n_seq)
            seq = np.tile(np.arange(n_seq), stratum.size // n_seq)
            cum = np.cumsum(m_prob[stratum, 1:], axis=1)
            m = 1 + (cum < uniform[task[stratum], seq][:, None] * cum[:, -1:]).sum(axis=1)
            m = np.minimum(m, n_m - 1)
            parts.append((stratum, m, seq, np.log(off[stratum]) + seq_weight[task[stratum], seq]))
    stratum, m, seq, weight = (np.concatenate(x) for x in zip(*parts))
    order = np.argsort(stratum, kind="stable")  # rows of a task adjacent
    return stratum[order], m[order], seq[order], weight[order]


def _presence_evidence(world, prior, week, rate, cells, samples, rng) -> np.ndarray:
    """``log E_{whitelist, signature}[prod_cells e^(lam pi) - 1]`` per unit (see the module docstring).

    A unit shares one whitelist and signature: a task here, a whole workflow in
    :mod:`~wtc.data.synthetic.workflow_blind`. ``week`` (unit,); ``rate`` the (cell, z) rates of
    :func:`cell_rate` off and on the signature; ``cells`` (unit, status, code, site) sorted by unit, then code.
    """
    t, s, c, k = cells
    n_tasks, n_sites, n_z = week.size, len(world.sites), world.log_prior.shape[1]
    observed = np.zeros((n_tasks, n_sites), dtype=bool)
    observed[t, k] = True
    observed &= prior.slot_prob > 0
    seq, seq_weight, mass, exact = _unobserved_slots(prior, observed, samples, rng)
    uniform = rng.random((n_tasks, seq.shape[1]))
    # Signature: log P(sig_z = code) of each code a task shows, and of "none of them".
    task_code = np.unique(t * len(world.codes) + c)
    shown = np.zeros((n_tasks, n_z))
    np.add.at(shown, task_code // len(world.codes), prior.signature_prob[:, task_code % len(world.codes)].T)
    with np.errstate(divide="ignore"):
        log_none = np.log(np.clip(1.0 - shown, 0.0, None))
        log_sig = np.log(prior.signature_prob)
    cell_start = np.searchsorted(t, np.arange(n_tasks + 1))
    out = np.empty((n_tasks, n_z))
    n_obs = observed.sum(axis=1)
    for o in np.unique(n_obs):
        group = np.flatnonzero(n_obs == o)
        g_task, a_sites, m_prob = _strata(prior, np.nonzero(observed[group])[1].reshape(group.size, o), mass[group])
        task = group[g_task]
        stratum, m, which, weight = _rows(task, m_prob, seq.shape[1], seq_weight, exact, uniform)
        # Blocks of whole tasks of about _ENTRIES rows x cells each.
        row_task = task[stratum]
        cost = cell_start[row_task + 1] - cell_start[row_task]
        block = (np.cumsum(cost) - cost) // _ENTRIES
        block = block[np.searchsorted(row_task, row_task)]  # a task's rows stay in one block
        bounds = np.flatnonzero(np.r_[True, block[1:] != block[:-1], True])
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            sl = slice(lo, hi)
            tail = seq[row_task[sl], which[sl]].copy()
            tail[np.arange(tail.shape[1])[None, :] >= m[sl, None]] = -1
            for j in range(1, tail.shape[1]):  # a site named twice is one whitelist entry
                tail[:, j][(tail[:, :j] == tail[:, j:j + 1]).any(axis=1)] = -1
            whitelist = np.concatenate([a_sites[stratum[sl]], tail], axis=1)
            done, value = _evidence_of_rows(world, week, (t, s, c, k), cell_start, rate, row_task[sl], whitelist,
                                            weight[sl], log_sig, log_none)
            out[done] = value
    return out


def _evidence_of_rows(world, week, cells, cell_start, rate, row_task, whitelist, weight, log_sig,
                      log_none) -> tuple[np.ndarray, np.ndarray]:
    """``log sum_rows weight * E_signature[prod_cells e^(lam pi) - 1]`` of the tasks of some rows
    (all rows of each, adjacent): (tasks, (task, z) values)."""
    t, s, c, k = cells
    # Entries: every row crossed with its task's cells (a task's cells of one code adjacent).
    n_cells = cell_start[row_task + 1] - cell_start[row_task]
    first_cell = np.cumsum(n_cells) - n_cells
    row = np.repeat(np.arange(row_task.size), n_cells)
    cell = np.arange(row.size) - first_cell[row] + cell_start[row_task][row]
    p_site = site_probability(world, whitelist[row], week[t[cell]], s[cell], k[cell])
    off = presence_term(rate[0][cell], p_site)
    gain = presence_term(rate[1][cell], p_site) - off
    base = np.add.reduceat(off, first_cell, axis=0)
    # Signature mixture per row: P(none) + sum over the task's codes P(sig = code) e^(gain of its cells).
    key = row * len(world.codes) + c[cell]
    first_code = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    option = log_sig[:, c[cell[first_code]]].T + np.add.reduceat(gain, first_code, axis=0)
    option_row = row[first_code]
    row_first_option = np.searchsorted(option_row, np.arange(row_task.size))
    top = np.maximum(log_none[row_task], np.maximum.reduceat(option, row_first_option, axis=0))
    total = np.exp(log_none[row_task] - top) + np.add.reduceat(np.exp(option - top[option_row]), row_first_option,
                                                               axis=0)
    value = weight[:, None] + base + top + np.log(total)
    first_row = np.flatnonzero(np.r_[True, row_task[1:] != row_task[:-1]])
    peak = np.maximum.reduceat(value, first_row, axis=0)
    spread = np.exp(value - np.repeat(peak, np.diff(np.r_[first_row, row_task.size]), axis=0))
    return row_task[first_row], peak + np.log(np.add.reduceat(spread, first_row, axis=0))
