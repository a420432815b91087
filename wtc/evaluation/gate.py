"""The AUTO gate: a confidence threshold certified by Learn-then-Test, P(precision >= 1 - alpha) >= 1 - delta.

Learn-then-Test (Angelopoulos, Bates, Candès, Jordan, Lei, 2021) turns choosing a threshold into
multiple testing: for each candidate threshold ``t`` the null hypothesis "the precision of acting
when confidence >= t is below 1 - alpha" gets a p-value from the calibration rows, and the
thresholds are tested in a fixed sequence, from more confident down, each at level ``delta``,
stopping at the first one not rejected (the start is chosen from the confidences alone). The lowest rejected threshold keeps the family-wise error
at ``delta``: with probability at least 1 - delta over the calibration rows, its precision on new
tasks from the same distribution is at least 1 - alpha.

The p-value of a threshold acting on ``n`` rows with ``e`` wrong is the binomial tail
P(Binomial(n, alpha) <= e), exact when the rows are independent. Tasks of one workflow are not
(they share a decision and err together), so with ``groups`` each repetition keeps one task per
workflow drawn at random, which makes the rows independent again, and the repetitions' p-values
are combined validly under any dependence (Rüschendorf: ``R / k`` times the k-th smallest of R
p-values, here 40/36 times the 36th smallest of 40). ``method="betting"`` uses every task instead (a workflow's mean
excess, tested by betting); it is valid but certified less on the benchmark, so it is not the
default. docs/gate.md says why this method and what it guarantees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp
from scipy.stats import binom

__all__ = ["BETS", "KTH", "METHODS", "REPEATS", "GateResult", "ltt_threshold"]

#: Repetitions of the one-task-per-workflow draw whose p-values are combined (order-statistic rule).
REPEATS = 40
#: Which order statistic of the repetitions' p-values is taken (k = ceil(KTH * REPEATS), times REPEATS / k):
#: the draws' p-values lie close together, so a high one times 1.11 is smaller than the median times 2
#: (measured on six benchmark dumps: as much or more coverage everywhere, experiments/gate/README.md).
KTH = 0.9
#: The constant bets of the betting test, as shares of the largest safe bet 1 / (1 - alpha): log-spaced.
BETS = np.geomspace(1e-3, 0.99, 100)
#: The workflow-level p-values ``ltt_threshold`` offers (the first is the default).
METHODS = ("draws", "betting")


@dataclass(frozen=True)
class GateResult:
    """The certified AUTO threshold and what it was certified on.

    ``threshold`` is ``inf`` (act on nothing) when no threshold is certified; ``coverage`` and
    ``precision`` are those of the calibration rows at/above it (``precision`` NaN when none);
    ``n_certified`` counts the thresholds rejected in the sequence; ``p_value`` is the
    (combined) p-value of the chosen threshold (NaN when none).
    """

    threshold: float
    coverage: float
    n_certified: int
    alpha: float
    delta: float
    method: str
    n_rows: int
    n_groups: int
    precision: float = float("nan")
    p_value: float = float("nan")

    @property
    def certified(self) -> bool:
        return math.isfinite(self.threshold)


def _binomial_p(errors: np.ndarray, acted: np.ndarray, alpha: float) -> np.ndarray:
    """P(Binomial(acted, alpha) <= errors): small when ``errors / acted`` is well below ``alpha``; 1 when nothing acted."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = binom.cdf(errors, acted, alpha)
    return np.where(acted > 0, p, 1.0)


def _counts_at(candidates: np.ndarray, confidence: np.ndarray, correct: np.ndarray,
               alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """At each candidate threshold (act when confidence >= it): the p-value of the rows acted on,
    and the p-value the confidences alone predict (their expected errors, sum of 1 - confidence)."""
    order = np.argsort(confidence, kind="stable")
    sorted_conf = confidence[order]
    wrong_suffix = np.r_[np.cumsum((~correct[order])[::-1])[::-1], 0]
    expected_suffix = np.r_[np.cumsum(np.clip(1.0 - sorted_conf, 0.0, 1.0)[::-1])[::-1], 0.0]
    first = np.searchsorted(sorted_conf, candidates, side="left")
    acted = confidence.size - first
    return _binomial_p(wrong_suffix[first], acted, alpha), _binomial_p(np.floor(expected_suffix[first]), acted, alpha)


def _group_codes(groups, n: int) -> tuple[np.ndarray, int]:
    """Each row's workflow as an index 0..n_groups-1, and n_groups; refuses groups of another length."""
    groups = np.asarray(groups).ravel()
    if groups.size != n:
        raise ValueError(f"groups has {groups.size} rows, confidence {n}")
    _, codes = np.unique(groups, return_inverse=True)
    return codes, int(codes.max()) + 1 if n else 0


def _one_per_group(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one row per group, drawn uniformly within each group."""
    order = np.lexsort((rng.random(codes.size), codes))
    last_of_group = np.r_[codes[order][1:] != codes[order][:-1], True]
    return order[last_of_group]


def _betting_p(candidates: np.ndarray, confidence: np.ndarray, values: np.ndarray, codes: np.ndarray,
               alpha: float) -> np.ndarray:
    """At each candidate threshold, the betting p-value of "E[Y_w] <= 0", Y_w = mean over the workflow's tasks
    of (value - (1 - alpha)) * acted: 1 / the capital of a uniform mixture of constant bets (:data:`BETS`).

    Y_w is in [-(1 - alpha), alpha] and the workflows are independent, so under the null each bet's capital
    prod_w (1 + lam * Y_w) has expectation <= 1, and so has their mean: Markov makes 1 / mean a p-value. Constant
    bets make it independent of the workflows' order. ``values`` is the rows' correctness (the test) or their
    confidence (the label-free prediction). Computed incrementally: acting on one more row changes one Y_w.
    """
    order = np.argsort(-confidence, kind="stable")
    sizes = np.bincount(codes)
    group = codes[order]
    step = (values[order] - (1.0 - alpha)) / sizes[group]  # the change of Y_w when the row is acted on
    by_group = np.lexsort((np.arange(order.size), group))  # rows grouped, in acting order within a group
    within = np.empty(order.size)
    cum = np.cumsum(step[by_group])
    starts = np.r_[True, group[by_group][1:] != group[by_group][:-1]]
    offset = np.maximum.accumulate(np.where(starts, np.arange(order.size), 0))
    within[by_group] = cum - np.r_[0.0, cum][offset]  # Y_w just after the row is acted on
    lam = BETS / (1.0 - alpha)
    gain = np.log1p(np.outer(within, lam)) - np.log1p(np.outer(within - step, lam))
    log_capital = np.cumsum(gain, axis=0)
    acted = confidence.size - np.searchsorted(np.sort(confidence), candidates, side="left")
    at = log_capital[acted - 1]
    log_mean = logsumexp(at, axis=1) - np.log(lam.size)
    return np.minimum(1.0, np.exp(-log_mean))


def _sequence(p_values: np.ndarray, predicted: np.ndarray, delta: float) -> int:
    """The index of the last candidate (most confident first) fixed-sequence testing rejects; -1: none.

    The sequence starts at the candidate whose ``predicted`` p-value (from the confidences, never
    the labels) is smallest: a handful of top rows cannot show 95% precision and would stop a
    sequence started there at once. (Measured on the benchmark: a start placed for a model twice
    as wrong as it says, or five starts at fixed coverages sharing delta, certified less.) Choosing the start without a label keeps the test a fixed
    sequence given the confidences, so its level holds. From there it goes down, one candidate
    at a time, and stops at the first one not rejected.
    """
    if not p_values.size:
        return -1
    start = int(np.argmin(predicted))
    last = -1
    for i in range(start, p_values.size):
        if p_values[i] > delta:
            break
        last = i
    return last


def ltt_threshold(confidence, correct, groups=None, alpha: float = 0.05, delta: float = 0.1,
                  rng=None, method: str = "draws") -> GateResult:
    """The lowest confidence threshold Learn-then-Test certifies for precision >= 1 - alpha.

    Parameters
    ----------
    confidence : array-like of float, shape (n,)
        Each calibration row's score; AUTO acts when confidence >= threshold.
    correct : array-like of bool, shape (n,)
        Whether the action taken on the row would be right.
    groups : array-like, shape (n,), optional
        The workflow of each row. None: rows are independent (the plain binomial test on all
        rows). Given: each of :data:`REPEATS` repetitions keeps one row per workflow drawn at
        random, and the threshold's p-value is REPEATS / k times the k-th smallest of the repetitions'
        p-values (k = ceil(:data:`KTH` * REPEATS): 40/36 times the 36th of 40).
    alpha : float, default 0.05
        The tolerated share of wrong AUTO decisions (target precision 1 - alpha).
    delta : float, default 0.1
        The tolerated probability that the certified threshold misses the target.
    rng : numpy Generator or int, optional
        The draws of the workflow repetitions (None: seed 0, so the same rows give the same threshold).
    method : {"draws", "betting"}, default "draws"
        The workflow-level p-value (with ``groups``). ``"draws"``: one task per workflow, :data:`REPEATS`
        binomial p-values, 40/36 times their 36th smallest. ``"betting"``: every task; each workflow's mean excess
        (right - (1 - alpha)) over its acted-on tasks, tested by betting (see :func:`_betting_p`); no draws.

    Returns
    -------
    GateResult
    """
    confidence = np.asarray(confidence, dtype=float).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if confidence.shape != correct.shape:
        raise ValueError(f"confidence and correct differ in length: {confidence.size} vs {correct.size}")
    if not (0 < alpha < 1 and 0 < delta < 1):
        raise ValueError(f"alpha and delta must be in (0, 1), got alpha={alpha}, delta={delta}")
    if not np.isfinite(confidence).all():
        raise ValueError("confidence has non-finite values")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n = confidence.size
    candidates = np.unique(confidence)[::-1]  # the distinct confidences, most confident first
    if method == "betting":
        codes, n_groups = (np.arange(n), n) if groups is None else _group_codes(groups, n)
        if n:
            p_values = _betting_p(candidates, confidence, correct.astype(float), codes, alpha)
            predicted = _betting_p(candidates, confidence, np.clip(confidence, 0.0, 1.0), codes, alpha)
        else:
            p_values = predicted = np.empty(0)
        method = "ltt-betting (every task, workflow means, mixture of bets)"
    elif groups is None:
        p_values, predicted = _counts_at(candidates, confidence, correct, alpha)
        method, n_groups = "ltt-binomial (rows independent)", n
    else:
        codes, n_groups = _group_codes(groups, n)
        generator = np.random.default_rng(rng if rng is not None else 0)
        p_draws, predicted_draws = [], []
        for _ in range(REPEATS):
            rows = _one_per_group(codes, generator)
            p, predicted = _counts_at(candidates, confidence[rows], correct[rows], alpha)
            p_draws.append(p)
            predicted_draws.append(predicted)
        # Rüschendorf's order-statistic rule: R/k times the k-th smallest of R p-values is a
        # p-value whatever their dependence (k = 36 of 40: 1.11 times the 36th smallest).
        k = math.ceil(KTH * REPEATS)
        factor = REPEATS / k
        p_values = np.minimum(1.0, factor * np.sort(np.vstack(p_draws), axis=0)[k - 1])
        predicted = np.minimum(1.0, factor * np.sort(np.vstack(predicted_draws), axis=0)[k - 1])
        method = f"ltt-workflow (one task per workflow x {REPEATS}, {REPEATS}/{k} x the {k}th smallest p)"
    last = _sequence(p_values, predicted, delta)
    if last < 0:
        return GateResult(float("inf"), 0.0, 0, alpha, delta, method, n, n_groups)
    threshold = float(candidates[last])
    acted_rows = confidence >= threshold
    n_certified = last + 1 - int(np.argmin(predicted))
    return GateResult(threshold, float(acted_rows.mean()), n_certified, alpha, delta, method, n, n_groups,
                      precision=float(correct[acted_rows].mean()), p_value=float(p_values[last]))
