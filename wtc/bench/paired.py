"""A peer's difference to the champion in test log-loss (and the champion's ratio to a limit), with a paired
bootstrap over test workflows."""

from __future__ import annotations

import numpy as np

#: Probabilities are clipped here before the log, as sklearn's log_loss does for float64.
_EPS = np.finfo(np.float64).eps


def task_losses(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each task's log-loss: ``-log p(true class)`` (rows renormalised, clipped like sklearn's)."""
    proba = np.asarray(proba, dtype=float)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return -np.log(np.clip(proba[np.arange(len(y)), np.asarray(y)], _EPS, 1.0))


def _bootstrap(statistic, per_workflow: tuple[np.ndarray, ...], n_resamples: int, seed: int,
               level: float) -> tuple[float, float]:
    """The percentile interval of ``statistic`` over workflows resampled with replacement (NaN: fewer than 2)."""
    from scipy.stats import bootstrap

    if len(per_workflow[0]) < 2:
        return float("nan"), float("nan")
    result = bootstrap(per_workflow, statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                       confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return float(low), float(high)


def _sums(groups: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per workflow: the sum of each of ``values`` over its tasks, and its task count (last)."""
    _, workflow = np.unique(np.asarray(groups), return_inverse=True)
    return (*(np.bincount(workflow, weights=np.asarray(v, dtype=float)) for v in values),
            np.bincount(workflow).astype(float))


def paired_difference(peer_losses: np.ndarray, champion_losses: np.ndarray, groups: np.ndarray,
                      n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean test log-loss of the peer minus the champion's, and its percentile interval.

    Both predict the same test tasks; the workflows (``groups``) are resampled with replacement,
    each carrying all its tasks, since a workflow's tasks share one decision and are not
    independent. The statistic is the difference of the two mean per-task log-losses over the
    resampled tasks (``scipy.stats.bootstrap``, paired, percentile method).

    Returns
    -------
    (difference, low, high) : tuple of float
        Negative: the peer's log-loss is lower (better) than the champion's.
    """
    delta, count = _sums(groups, np.asarray(peer_losses) - np.asarray(champion_losses))

    def statistic(d, n, axis=-1):
        return d.sum(axis=axis) / n.sum(axis=axis)

    return (float(delta.sum() / count.sum()), *_bootstrap(statistic, (delta, count), n_resamples, seed, level))


def paired_ratio(losses: np.ndarray, limit_losses: np.ndarray, groups: np.ndarray, n_resamples: int = 2000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """A model's test log-loss over a limit's (an oracle's) on the same tasks, and its percentile interval.

    As :func:`paired_difference`, the workflows are resampled with their tasks; the statistic is the
    ratio of the two mean log-losses over the resampled tasks. It tells whether a goal such as
    "≤ 1.05× the limit" is within what the test rows can tell apart.
    """
    model, limit, _ = _sums(groups, losses, limit_losses)

    def statistic(a, b, axis=-1):
        return a.sum(axis=axis) / b.sum(axis=axis)

    return (float(model.sum() / limit.sum()), *_bootstrap(statistic, (model, limit), n_resamples, seed, level))
