"""A peer's difference to the champion in test log-loss, with a paired bootstrap over test workflows."""

from __future__ import annotations

import numpy as np

#: Probabilities are clipped here before the log, as sklearn's log_loss does for float64.
_EPS = np.finfo(np.float64).eps


def task_losses(y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each task's log-loss: ``-log p(true class)`` (rows renormalised, clipped like sklearn's)."""
    proba = np.asarray(proba, dtype=float)
    proba = proba / proba.sum(axis=1, keepdims=True)
    return -np.log(np.clip(proba[np.arange(len(y)), np.asarray(y)], _EPS, 1.0))


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
    from scipy.stats import bootstrap

    _, workflow = np.unique(np.asarray(groups), return_inverse=True)
    delta = np.bincount(workflow, weights=np.asarray(peer_losses) - np.asarray(champion_losses))
    count = np.bincount(workflow).astype(float)
    point = float(delta.sum() / count.sum())
    if len(count) < 2:
        return point, float("nan"), float("nan")

    def statistic(d, n, axis=-1):
        return d.sum(axis=axis) / n.sum(axis=axis)

    result = bootstrap((delta, count), statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                       confidence_level=level, method="percentile", random_state=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return point, float(low), float(high)
