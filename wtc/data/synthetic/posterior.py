"""The exact oracle of the synthetic world: per-task likelihood, posterior and class probabilities.

The likelihood of one task's sparse matrix is exact thanks to Poisson thinning: the task's
``K ~ Poisson(lam)`` draws over cells hit each cell independently, so a cell is active with
probability ``1 - exp(-lam * pi_cell)`` and (conditioning on at least one active cell)

    log P(active set, counts | z) = -lam - log(1 - e^-lam)
                                    + sum_active [log(e^(lam pi_i) - 1) + log P_z(n_i)],

which needs only the non-zeros. ``pi_i`` and the count law ``P_z`` also depend on the task's
workflow traits (whitelist, signature code, count scale; see :mod:`~wtc.data.synthetic.traits`),
which are a function of the workflow's name and so known exactly from the task's own entry.
The oracle reads nothing but what the file shows (the task's matrix, its workflow name:
campaign, date and traits, and its task type), see :func:`oracle_of`.

The workflow oracle (:func:`workflow_oracle_of`) also reads the task's siblings: the
generator draws the campaign, the hidden cause z and the decision (hence every target's label)
once per workflow, and given z and the traits each task's matrix is an independent draw, while
how many tasks fail and of which types does not depend on z. So
``P(z | all the workflow's tasks) ∝ P(z | campaign) prod_tasks P(task's matrix | z, traits)``
and every task of a workflow shares that posterior and its class probabilities (``class_prob``
maps z to classes the same way for every task: a label never depends on the task's type).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import gammaln

from wtc.data.names import workflow_of
from wtc.data.synthetic.traits import WorkflowTraits, site_probability, workflow_traits
from wtc.data.synthetic.world import DISPERSION, SIGNATURE_SHARE, STATUSES, World, fixed_world
from wtc.data.targets import TARGETS, recovery_key


def observed_cells(world: World, history: dict, week: np.ndarray) -> list[np.ndarray]:
    """Non-zero cells of every task as arrays (task, status, code, site, count), file order."""
    code_pos = {c: i for i, c in enumerate(world.codes)}
    site_pos = {s: i for i, s in enumerate(world.sites)}
    cells = []
    for t, (task, record) in enumerate(history.items()):
        for status, matrix in record["errors"].items():
            if status not in STATUSES:
                raise ValueError(f"{task}: status {status!r} is not one of the synthetic world's {STATUSES}")
            s = STATUSES.index(status)
            cells.extend((t, s, code_pos[code], site_pos[site], n)
                         for code, row in matrix.items() for site, n in row.items() if n > 0)
    t, s, c, k, n = np.array(cells, dtype=np.int64).reshape(-1, 5).T
    if np.unique(t).size != len(history):
        raise ValueError("every task of a synthetic history has at least one error count")
    impossible = world.site_prob[week[t], s, k] == 0
    if impossible.any():
        i = int(np.argmax(impossible))
        raise ValueError(f"{list(history)[t[i]]}: site {world.sites[k[i]]} is not in {STATUSES[s[i]]} that week")
    return [t, s, c, k, n]


def _log_nbinom(n_minus_1: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """log P(n - 1) under a negative binomial of shape ``DISPERSION`` and the given mean."""
    r = DISPERSION
    return (gammaln(n_minus_1 + r) - gammaln(r) - gammaln(n_minus_1 + 1)
            + r * np.log(r / (r + mean)) + n_minus_1 * np.log(mean / (r + mean)))


def code_probability(world: World, cls: np.ndarray, status: np.ndarray, code: np.ndarray,
                     signature_hit) -> np.ndarray:
    """``P(code | z, status, task class, signature)`` of each cell, shape (cell, z).

    ``signature_hit`` (cell, z) or a scalar: whether the cell's code is its workflow's
    signature code for that z.
    """
    return (1 - SIGNATURE_SHARE) * world.code_prob[:, cls, status, code].T + SIGNATURE_SHARE * signature_hit


def cell_rate(world: World, cls: np.ndarray, status: np.ndarray, code: np.ndarray, signature_hit) -> np.ndarray:
    """``lam * bad_share * P(code)`` of each cell, shape (cell, z): its expected draws but for ``P(site)``."""
    return (world.draws[:, cls].T * world.bad_share[:, status].T
            * code_probability(world, cls, status, code, signature_hit))


def presence_term(rate: np.ndarray, p_site: np.ndarray) -> np.ndarray:
    """``log(e^(lam pi) - 1)`` of each active cell, shape (cell, z): the cell was hit at least once.

    ``lam pi`` is the cell's expected number of draws, ``rate`` (:func:`cell_rate`) times
    ``P(site)``, which depends on the whitelist (see
    :func:`~wtc.data.synthetic.traits.site_probability`).
    """
    return np.log(np.expm1(rate * p_site[:, None]))  # lam pi <= lam: no overflow


def count_term(world: World, cls: np.ndarray, count: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``log P(count | z, task class, count scale)`` of each active cell, shape (cell, z)."""
    mean = (world.count_mean[:, cls].T - 1) * scale[:, None]
    return _log_nbinom((count - 1)[:, None], mean)


def task_term(world: World, cls: np.ndarray) -> np.ndarray:
    """``-lam - log(1 - e^-lam)`` of each task, shape (task, z): the inactive cells and the
    truncation at one draw (the same whatever the traits: the shares of all cells sum to 1)."""
    lam = world.draws[:, cls].T
    return -lam - np.log(-np.expm1(-lam))


def latent_loglik(world: World, history: dict, traits: WorkflowTraits | None = None,
                  chunk: int = 200_000) -> np.ndarray:
    """``log P(task's matrix | z, traits)`` for every task, shape (n_tasks, n_z).

    Parameters
    ----------
    world : World
    history : dict
    traits : WorkflowTraits, optional
        One row per task; by default each task's workflow traits, read from its name.
    chunk : int
        Cells per vectorised block (bounds the memory).
    """
    tasks = list(history)
    _, week, cls = world.context(tasks)
    t, s, c, k, n = observed_cells(world, history, week)
    if traits is None:
        workflows, task_wf = np.unique([workflow_of(task) for task in tasks], return_inverse=True)
        traits = workflow_traits(world, list(workflows))
    else:
        task_wf = np.arange(len(tasks))
    loglik = task_term(world, cls)
    for lo in range(0, t.size, chunk):
        sl = slice(lo, lo + chunk)
        tt, ss, cc = t[sl], s[sl], c[sl]
        wf = task_wf[tt]
        p_site = site_probability(world, traits.whitelist[wf], week[tt], ss, k[sl])
        term = presence_term(cell_rate(world, cls[tt], ss, cc, cc[:, None] == traits.signature[wf]), p_site)
        term += count_term(world, cls[tt], n[sl], traits.count_scale[wf])
        _add_rows(loglik, tt, term)
    return loglik


def normalised_posterior(log_prior: np.ndarray, loglik: np.ndarray) -> np.ndarray:
    """``P(z | task)`` from ``log P(z)`` and ``log P(task | z)`` (rows sum to 1)."""
    log_post = log_prior + loglik
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)


def latent_posterior(world: World, history: dict, chunk: int = 200_000) -> np.ndarray:
    """``P(z | task)`` for every task, shape (n_tasks, n_z).

    The workflow's traits (whitelist, signature code, count scale) follow from its name,
    which is part of the task's entry, so they enter each cell's probability and count
    term as known values; siblings are never read.
    """
    camp, _, _ = world.context(list(history))
    return normalised_posterior(world.log_prior[camp], latent_loglik(world, history, chunk=chunk))


def workflow_posterior(world: World, history: dict, chunk: int = 200_000) -> np.ndarray:
    """``P(z | every task of the task's workflow in history)`` for every task, shape (n_tasks, n_z).

    ``normalise(log P(z | campaign) + sum over the workflow's tasks of log P(matrix | z, traits))``
    with the per-task likelihood of :func:`latent_loglik`: the bound for a model that reads a
    task's siblings in the same file (their errors, never their labels). Only the tasks present
    in ``history`` count, so on a subset (e.g. a workflow-grouped test split) it conditions on
    what that subset shows. A workflow of one task gets :func:`latent_posterior`.
    """
    tasks = list(history)
    camp, _, _ = world.context(tasks)
    _, task_wf = np.unique([workflow_of(task) for task in tasks], return_inverse=True)
    loglik = latent_loglik(world, history, chunk=chunk)
    total = np.zeros((task_wf.max() + 1, loglik.shape[1]))
    np.add.at(total, task_wf, loglik)
    return normalised_posterior(world.log_prior[camp], total[task_wf])


def _add_rows(total: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``total[rows] += values`` summing repeated (sorted) rows, faster than ``np.add.at``."""
    uniq, first = np.unique(rows, return_index=True)
    total[uniq] += np.add.reduceat(values, first, axis=0)


def oracle_of(history: dict) -> pd.DataFrame:
    """The exact ``P(class | task)`` of every target for a history of the synthetic world.

    Uses only what the file shows of each task: its own error matrix, the campaign and
    request date in its workflow name, and its task type. Sibling tasks share the hidden cause
    but the oracle ignores them, so it is the limit of any per-task model.

    Parameters
    ----------
    history : dict
        A history produced by :func:`generate_history` (or any subset of its tasks).

    Returns
    -------
    DataFrame
        One row per task in file order: ``task``, then ``"<target>/<class>"`` for every target
        in ``targets.TARGETS`` and every class with nonzero prior mass (canonical order).
    """
    world = fixed_world()
    return class_table(world, list(history), latent_posterior(world, history))


def workflow_oracle_of(history: dict) -> pd.DataFrame:
    """The exact ``P(class | all the tasks of the task's workflow)`` of every target.

    The limit of a model that reads, besides the task's own entry, the error matrices of the
    other tasks of its workflow in the same file (see :func:`workflow_posterior`); columns and
    rows as :func:`oracle_of`. Every task of a workflow gets the same row of probabilities.
    """
    world = fixed_world()
    return class_table(world, list(history), workflow_posterior(world, history))


def class_table(world: World, tasks: list[str], post: np.ndarray) -> pd.DataFrame:
    """``P(class | task)`` of every target from ``P(z | task)`` (the columns of :func:`oracle_of`)."""
    columns: dict = {"task": tasks}
    for target in TARGETS:
        classes, matrix = world.class_prob[target]
        proba = post @ matrix
        proba /= proba.sum(axis=1, keepdims=True)
        for i, name in enumerate(classes):
            columns[f"{target}/{name}"] = proba[:, i]
    return pd.DataFrame(columns)


def joint_oracle_of(history: dict, workflow: bool = False) -> tuple[list[tuple], np.ndarray]:
    """The exact ``P(action, splitting, xrootd, memory | task)`` of the whole recovery (bench only).

    The generator draws one decision tuple per workflow from ``P(decision | z)``; each tuple maps
    to its :func:`~wtc.data.targets.recovery_key` (the acdc's parameters, only the action for
    any other), so ``P(key | task) = sum_z P(z | task) P(key | z)``.

    Parameters
    ----------
    history : dict
        A generated history (or a subset of its tasks).
    workflow : bool
        Condition on every task of the task's workflow (:func:`workflow_posterior`) instead of the
        task alone (:func:`latent_posterior`).

    Returns
    -------
    keys : list of tuple
        The recovery keys with nonzero prior mass, in a fixed order.
    proba : ndarray, shape (n_tasks, len(keys))
        Rows in file order, each summing to 1.
    """
    world = fixed_world()
    post = workflow_posterior(world, history) if workflow else latent_posterior(world, history)
    labels = [recovery_key(d) for d in world.decisions]
    keys = sorted(set(labels))
    onehot = np.zeros((len(labels), len(keys)))
    onehot[np.arange(len(labels)), [keys.index(k) for k in labels]] = 1.0
    matrix = world.decision_prob @ onehot
    keep = matrix.max(axis=0) > 0
    proba = post @ matrix[:, keep]
    return [k for k, kept in zip(keys, keep) if kept], proba / proba.sum(axis=1, keepdims=True)
