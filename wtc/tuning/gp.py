"""Gaussian-process Bayesian optimisation (scikit-optimize, expected improvement) behind the ask/tell interface."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from wtc.tuning.base import Searcher, _plain

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
    minimisers are broken with scikit-learn 1.9. There is no pruning: a GP trial always runs
    every fold.

    Attached to a shared study (:meth:`attach`), the optimiser is told every finished trial
    already stored (a relaunch re-evaluates none), learns of the other processes' finished
    trials before each ask, and lies about the points they are still evaluating: scikit-
    optimize's constant liar (``cl_min``: each pending point told as the best value so far),
    the strategy of its ``ask(n_points=k)``, so parallel workers never propose the same point.
    Each evaluation is checkpointed in the study as it is told.
    """

    kind = "gp"

    def __init__(
        self,
        space: Mapping | None,
        n_trials: int,
        seed: int | None = None,
        n_initial_points: int | None = None,
    ):
        super().__init__(space, n_trials, seed)
        self._n_initial_given = n_initial_points
        if n_initial_points is None:
            n_initial_points = initial_design_size(self.n_trials)
        if n_initial_points < 1:
            raise ValueError(f"n_initial_points must be at least 1, got {n_initial_points!r}")
        self.n_initial_points = int(n_initial_points)
        self._labels = {}  # per categorical parameter: text label -> original choice
        self._told: set[int] = set()  # study trials the optimiser knows (when shared)
        self.optimizer = self._make_optimizer(seed) if self.params else None

    @property
    def options(self) -> dict:
        return {"n_initial_points": self._n_initial_given}

    def _make_optimizer(self, seed):
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
            random_state=seed,
        )

    def _to_point(self, params: dict) -> list:
        return [str(params[p.name]) if p.is_categorical else params[p.name] for p in self.params]

    def _from_point(self, point) -> dict:
        return {p.name: self._labels[p.name][value] if p.is_categorical else value
                for p, value in zip(self.params, point)}

    def _ask(self) -> dict:
        with _one_blas_thread():
            point = self.optimizer.ask()
        return self._from_point(point)

    def _worst(self, value: float, extra: list[float] = ()) -> float | None:
        """The value to tell for ``value``: itself when finite; for a failed trial the worst value
        seen, so the GP steers away from it (None before any finite value: nothing to compare
        with, and leaving it untold keeps the optimiser in its random phase)."""
        if math.isfinite(value):
            return value
        finite = [v for _, v in self.history if math.isfinite(v)] + [v for v in extra if math.isfinite(v)]
        return max(finite) if finite else None

    def _tell(self, params: dict, value: float, state: str, number: int | None) -> None:
        told = self._worst(value)  # the GP cannot fit inf/nan
        if told is not None:
            with _one_blas_thread():  # the GP is refitted and the acquisition optimised here
                self.optimizer.tell(self._to_point(params), told)
        if number is not None:
            self._told.add(number)
            self.shared.finish(number, value, state)

    # ------------------------------------------------------------------ shared study
    def _attach(self, seed: int | None) -> None:
        from wtc.tuning.space import optuna_distributions

        self.distributions = optuna_distributions(self.params)
        self.optimizer = self._make_optimizer(seed)
        self._sync()

    def refresh(self) -> None:
        if self.shared is not None and self.params:
            self._sync()

    def _sync(self) -> None:
        """Tell the optimiser, in one refit, the study's finished trials it does not know yet."""
        new = [t for t in self.shared.trials(finished_only=True) if t.number not in self._told]
        values = [self.shared.minimised(t) if t.state.name == "COMPLETE" else math.nan for t in new]
        points, told = [], []
        for trial, value in zip(new, values):
            self._told.add(trial.number)
            if set(trial.params) != {p.name for p in self.params}:
                continue  # not a point of this space (added to the study by hand)
            self.history.append(({**self.fixed, **trial.params}, value))
            worst = self._worst(value, values)
            if worst is not None:
                points.append(self._to_point(trial.params))
                told.append(worst)
        if points:
            with _one_blas_thread():
                self.optimizer.tell(points, told)

    def _ask_trial(self) -> tuple[dict, int]:
        self._sync()
        names = {p.name for p in self.params}
        pending = [self._to_point(t.params) for t in self.shared.trials()
                   if t.state.name == "RUNNING" and set(t.params) == names]
        with _one_blas_thread():
            point = self._ask_beside(pending)
        params = {name: _plain(value) for name, value in self._from_point(point).items()}
        number = self.shared.create_running(params, self.distributions, self.worker)
        return params, number

    def _ask_beside(self, pending: list) -> list:
        """The next point, given the points being evaluated (constant liar, ``cl_min``)."""
        if not pending:
            return self.optimizer.ask()
        liar = self.optimizer.copy(random_state=self.optimizer.rng.randint(0, np.iinfo(np.int32).max))
        lie = min(self.optimizer.yi) if self.optimizer.yi else 0.0
        liar.tell(pending, [lie] * len(pending))
        return liar.ask()

    def _reseed(self, seed: int | None) -> None:
        self.optimizer.rng = np.random.RandomState(seed)

    @property
    def result(self):
        """scikit-optimize ``OptimizeResult`` of the trials told (None before any).

        What ``skopt.plots`` take for convergence and partial-dependence plots.
        """
        if self.optimizer is None or not self.optimizer.Xi:
            return None
        return self.optimizer.get_result()
