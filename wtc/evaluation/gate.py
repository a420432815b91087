"""The AUTO gate: a confidence threshold certified by Learn-then-Test, P(precision >= 1 - alpha) >= 1 - delta.

Learn-then-Test (Angelopoulos, Bates, Candès, Jordan, Lei, 2021) turns choosing a threshold into
multiple testing: for each candidate threshold ``t`` the null hypothesis "the precision of acting
when confidence >= t is below 1 - alpha" gets a p-value from the calibration rows, and the
thresholds are tested in a fixed sequence, from the most confident down, each at level ``delta``,
stopping at the first one not rejected. The lowest rejected threshold keeps the family-wise error
at ``delta``: with probability at least 1 - delta over the calibration rows, its precision on new
tasks from the same distribution is at least 1 - alpha.

The p-value of a threshold acting on ``n`` rows with ``e`` wrong is the binomial tail
P(Binomial(n, alpha) <= e), exact when the rows are independent. Tasks of one workflow are not
(they share a decision and err together), so with ``groups`` each repetition keeps one task per
workflow drawn at random, which makes the rows independent again, and the repetitions' p-values
are combined validly under any dependence (Rüschendorf: ``R / k`` times the k-th smallest of R
p-values, here twice the median). docs/gate.md says why this method and what it guarantees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

__all__ = ["REPEATS", "GateResult", "ltt_threshold"]

#: Repetitions of the one-task-per-workflow draw whose p-values are combined (median rule).
REPEATS = 40


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


def _one_per_group(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one row per group, drawn uniformly within each group."""
    order = np.lexsort((rng.random(codes.size), codes))
    last_of_group = np.r_[codes[order][1:] != codes[order][:-1], True]
    return order[last_of_group]


def _sequence(p_values: np.ndarray, predicted: np.ndarray, delta: float) -> int:
    """The index of the last candidate (most confident first) fixed-sequence testing rejects; -1: none.

    The sequence starts at the candidate whose ``predicted`` p-value (from the confidences, never
    the labels) is smallest: a handful of top rows cannot show 95% precision and would stop a
    sequence started there at once. Choosing the start without a label keeps the test a fixed
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
                  rng=None) -> GateResult:
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
        random, and the threshold's p-value is twice the median of the repetitions' p-values.
    alpha : float, default 0.05
        The tolerated share of wrong AUTO decisions (target precision 1 - alpha).
    delta : float, default 0.1
        The tolerated probability that the certified threshold misses the target.
    rng : numpy Generator or int, optional
        The draws of the workflow repetitions (None: seed 0, so the same rows give the same threshold).

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
    n = confidence.size
    candidates = np.unique(confidence)[::-1]  # the distinct confidences, most confident first
    if groups is None:
        p_values, predicted = _counts_at(candidates, confidence, correct, alpha)
        method, n_groups = "ltt-binomial (rows independent)", n
    else:
        groups = np.asarray(groups).ravel()
        if groups.size != n:
            raise ValueError(f"groups has {groups.size} rows, confidence {n}")
        _, codes = np.unique(groups, return_inverse=True)
        n_groups = int(codes.max()) + 1 if n else 0
        generator = np.random.default_rng(rng if rng is not None else 0)
        p_draws, predicted_draws = [], []
        for _ in range(REPEATS):
            rows = _one_per_group(codes, generator)
            p, predicted = _counts_at(candidates, confidence[rows], correct[rows], alpha)
            p_draws.append(p)
            predicted_draws.append(predicted)
        # Rüschendorf's order-statistic rule: R/k times the k-th smallest of R p-values is a
        # p-value whatever their dependence (k = R/2: twice the median).
        k = math.ceil(REPEATS / 2)
        factor = REPEATS / k
        p_values = np.minimum(1.0, factor * np.sort(np.vstack(p_draws), axis=0)[k - 1])
        predicted = np.minimum(1.0, factor * np.sort(np.vstack(predicted_draws), axis=0)[k - 1])
        method = f"ltt-workflow (one task per workflow x {REPEATS}, {factor:g} x median p)"
    last = _sequence(p_values, predicted, delta)
    if last < 0:
        return GateResult(float("inf"), 0.0, 0, alpha, delta, method, n, n_groups)
    threshold = float(candidates[last])
    acted_rows = confidence >= threshold
    n_certified = last + 1 - int(np.argmin(predicted))
    return GateResult(threshold, float(acted_rows.mean()), n_certified, alpha, delta, method, n, n_groups,
                      precision=float(correct[acted_rows].mean()), p_value=float(p_values[last]))
