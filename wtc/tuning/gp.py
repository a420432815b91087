"""Gaussian-process Bayesian optimisation (scikit-optimize, expected improvement) behind the ask/tell interface."""

from __future__ import annotations

import math
from collections.abc import Mapping

from wtc.tuning.base import Searcher

__all__ = ["GPSearcher", "initial_design_size"]


def _one_blas_thread():
    """Limit BLAS to one thread around the GP's work.

    The GP's matrices are n_trials x n_trials: far too small to split across threads, and
    on a busy 2-core machine OpenBLAS's threads made 12 GP trials take 5-6 s instead of 1.4 s.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def initial_design_size(n_trials: int) -> int:
    """Random points before the GP proposes: a third of the budget, 2 to 10, always leaving
    at least one GP proposal when the budget has two trials or more.

    scikit-optimize fits the GP only once ``n_initial_points`` values are told, so a budget
    at or below the initial design would be plain random search.
    """
    return max(1, min(max(2, n_trials // 3), 10, n_trials - 1))


class GPSearcher(Searcher):
    """Gaussian-process Bayesian optimisation with expected improvement (scikit-optimize).

    Parameters
    ----------
    space : mapping
        Search space, see :func:`parse_space`.
    n_trials : int
        Trials to run.
    seed : int or None
        Seeds the random initial points and the GP.
    n_initial_points : int or None
        Random trials before the GP proposes; default :func:`initial_design_size`.

    Notes
    -----
    Only the GP base estimator is offered: scikit-optimize 0.10.2's gbrt and dummy
    minimisers are broken with scikit-learn 1.9.
    """

    def __init__(
        self,
        space: Mapping | None,
        n_trials: int,
        seed: int | None = None,
        n_initial_points: int | None = None,
    ):
        super().__init__(space, n_trials, seed)
        if n_initial_points is None:
            n_initial_points = initial_design_size(self.n_trials)
        if n_initial_points < 1:
            raise ValueError(f"n_initial_points must be at least 1, got {n_initial_points!r}")
        self.n_initial_points = int(n_initial_points)
        self._labels = {}  # per categorical parameter: text label -> original choice
        self.optimizer = self._make_optimizer() if self.params else None

    def _make_optimizer(self):
        from skopt import Optimizer
        from skopt.space import Categorical, Integer, Real

        dimensions = []
        for p in self.params:
            if p.is_categorical:
                # Text labels keep any YAML value (None, bools, numbers) usable as a
                # category and readable on partial-dependence plots.
                self._labels[p.name] = {str(c): c for c in p.choices}
                dimensions.append(Categorical([str(c) for c in p.choices], name=p.name))
            elif p.type == "int":
                prior = "log-uniform" if p.log else "uniform"
                dimensions.append(Integer(p.low, p.high, prior=prior, name=p.name))
            else:
                prior = "log-uniform" if p.log else "uniform"
                dimensions.append(Real(p.low, p.high, prior=prior, name=p.name))
        return Optimizer(
            dimensions,
            base_estimator="GP",
            acq_func="EI",
            n_initial_points=self.n_initial_points,
            random_state=self.seed,
        )

    def _to_point(self, params: dict) -> list:
        return [str(params[p.name]) if p.is_categorical else params[p.name] for p in self.params]

    def _ask(self) -> dict:
        with _one_blas_thread():
            point = self.optimizer.ask()
        out = {}
        for p, value in zip(self.params, point):
            out[p.name] = self._labels[p.name][value] if p.is_categorical else value
        return out

    def _tell(self, params: dict, value: float) -> None:
        if not math.isfinite(value):
            # The GP cannot fit inf/nan. A failed trial is told as the worst value seen, so
            # the GP steers away from it; before any finite value there is nothing to
            # compare with, and leaving it untold keeps the optimiser in its random phase.
            finite = [v for _, v in self.history if math.isfinite(v)]
            if not finite:
                return
            value = max(finite)
        with _one_blas_thread():  # the GP is refitted and the acquisition optimised here
            self.optimizer.tell(self._to_point(params), value)

    @property
    def result(self):
        """scikit-optimize ``OptimizeResult`` of the trials told (None before any).

        What ``skopt.plots`` take for convergence and partial-dependence plots.
        """
        if self.optimizer is None or not self.optimizer.Xi:
            return None
        return self.optimizer.get_result()
