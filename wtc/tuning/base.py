"""The ask/tell interface every search back-end implements, and the best-trial rule (written once)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from wtc.tuning.space import parse_space

__all__ = ["FixedSearcher", "Searcher", "best_trial"]


def best_trial(values: Sequence[float]) -> int | None:
    """Index of the best (lowest finite) value; ties keep the earlier trial; None if none is finite."""
    best = None
    for i, value in enumerate(values):
        if math.isfinite(value) and (best is None or value < values[best]):
            best = i
    return best


def _plain(value: Any) -> Any:
    """Python scalar of a numpy scalar: trial parameters end up in YAML, MLflow and estimators."""
    return value.item() if isinstance(value, np.generic) else value


class Searcher:
    """Ask/tell hyper-parameter search; the value told is always minimised.

    Subclasses implement ``_ask`` and ``_tell`` over the searched parameters. An empty space
    means exactly one trial with the empty dict (the estimator's own defaults), whatever the
    back-end; a parameter with a single choice is fixed, and a space of only those is one
    trial too.

    Attributes
    ----------
    n_trials : int
        How many trials the search is meant to run.
    history : list of (dict, float)
        Every told trial, in order.
    """

    def __init__(self, space: Mapping | None = None, n_trials: int = 1, seed: int | None = None):
        parsed = parse_space(space)
        # A single choice is a fixed value written in the space (a YAML habit): it is
        # returned by every ask but not searched, so back-ends never see a constant
        # dimension (scikit-optimize would warn on every repeated point).
        self.fixed = {
            p.name: p.choices[0] for p in parsed if p.is_categorical and len(p.choices) == 1
        }
        self.params = [p for p in parsed if p.name not in self.fixed]
        is_int = isinstance(n_trials, (int, np.integer)) and not isinstance(n_trials, bool)
        if not is_int or n_trials < 1:
            raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
        self.n_trials = 1 if not self.params else int(n_trials)
        self.seed = seed
        self.history: list[tuple[dict, float]] = []

    def ask(self) -> dict:
        """Parameters of the next trial, as plain Python values."""
        searched = self._ask() if self.params else {}
        return {**self.fixed, **{name: _plain(value) for name, value in searched.items()}}

    def tell(self, params: dict, value: float) -> None:
        """Report the objective of a trial asked before.

        Parameters
        ----------
        params : dict
            The dict ``ask`` returned.
        value : float
            The objective, minimised. A non-finite value (a failed trial) is recorded but
            never becomes the best.
        """
        value = float(value)
        missing = [p.name for p in self.params if p.name not in params]
        if missing:
            raise ValueError(f"tell() params lack the searched parameters {missing}")
        if self.params:
            self._tell({p.name: params[p.name] for p in self.params}, value)
        self.history.append((dict(params), value))

    @property
    def done(self) -> bool:
        """Whether ``n_trials`` trials have been told."""
        return len(self.history) >= self.n_trials

    @property
    def best_params(self) -> dict | None:
        """Parameters of the lowest finite value told so far (None before any)."""
        best = self._best()
        return None if best is None else dict(best[0])

    @property
    def best_value(self) -> float:
        """Lowest finite value told so far (nan before any)."""
        best = self._best()
        return math.nan if best is None else best[1]

    def _best(self) -> tuple[dict, float] | None:
        index = best_trial([v for _, v in self.history])
        return None if index is None else self.history[index]

    def _ask(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tell(self, params: dict, value: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        names = [p.name for p in self.params]
        kind = type(self).__name__
        return f"{kind}(params={names}, fixed={self.fixed}, n_trials={self.n_trials})"


class FixedSearcher(Searcher):
    """No search: one trial with the estimator's configured parameters (the empty dict)."""

    def __init__(self, space: Mapping | None = None, n_trials: int = 1, seed: int | None = None):
        super().__init__(None, 1, seed)
