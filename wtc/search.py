"""One ask/tell interface over hyper-parameter search back-ends: none, GP (scikit-optimize), TPE (Optuna)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FixedSearcher",
    "GPSearcher",
    "Param",
    "Searcher",
    "TPESearcher",
    "make_searcher",
    "parse_space",
]

SEARCHERS = ("none", "gp", "tpe")
_RANGE_KEYS = {"low", "high", "type", "log"}
_TYPES = ("int", "float")


@dataclass(frozen=True)
class Param:
    """One validated search dimension: a numeric range or a list of choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    type: str = "float"
    log: bool = False
    choices: tuple | None = None

    @property
    def is_categorical(self) -> bool:
        """Whether the dimension is a list of choices."""
        return self.choices is not None


def _parse_param(name: str, spec: Any) -> Param:
    if not isinstance(spec, Mapping):
        raise ValueError(f"search space parameter {name!r}: expected a mapping, got {spec!r}")
    keys = set(spec)
    if "choices" in keys:
        if keys != {"choices"}:
            raise ValueError(
                f"search space parameter {name!r}: 'choices' cannot be combined with "
                f"{sorted(keys - {'choices'})}"
            )
        choices = spec["choices"]
        if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
            raise ValueError(f"search space parameter {name!r}: choices must be a list")
        choices = tuple(choices)
        if not choices:
            raise ValueError(f"search space parameter {name!r}: choices must not be empty")
        # Both back-ends key categories by their text; two choices with the same text
        # (1 and "1") could not be told apart afterwards.
        if len({str(c) for c in choices}) != len(choices):
            raise ValueError(f"search space parameter {name!r}: choices must be distinct")
        return Param(name, choices=choices)
    unknown = keys - _RANGE_KEYS
    if unknown or not {"low", "high"} <= keys:
        raise ValueError(
            f"search space parameter {name!r}: expected 'choices' or 'low'/'high' "
            f"(optional 'type', 'log'), got keys {sorted(keys)}"
        )
    kind = spec.get("type", "float")
    if kind not in _TYPES:
        raise ValueError(
            f"search space parameter {name!r}: type must be 'int' or 'float', got {kind!r}"
        )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"search space parameter {name!r}: log must be true or false, got {log!r}")
    low, high = spec["low"], spec["high"]
    for bound in (low, high):
        is_number = isinstance(bound, (int, float)) and not isinstance(bound, bool)
        if not is_number or not math.isfinite(bound):
            raise ValueError(
                f"search space parameter {name!r}: low and high must be finite numbers, "
                f"got low={low!r} high={high!r}"
            )
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(
            f"search space parameter {name!r}: an int range needs integer bounds, "
            f"got low={low!r} high={high!r}"
        )
    if not low < high:
        raise ValueError(
            f"search space parameter {name!r}: need low < high, got low={low!r} high={high!r}"
        )
    if log and low <= 0:
        raise ValueError(f"search space parameter {name!r}: a log range needs low > 0, got {low!r}")
    if kind == "int":
        low, high = int(low), int(high)
    else:
        low, high = float(low), float(high)
    return Param(name, low=low, high=high, type=kind, log=log)


def parse_space(space: Mapping | None) -> list[Param]:
    """Validate a search space given as plain dicts.

    Parameters
    ----------
    space : mapping of str to mapping, or None
        ``{name: {"low": ..., "high": ..., "type": "int"|"float", "log": bool}}`` or
        ``{name: {"choices": [...]}}``; ``type`` defaults to float and ``log`` to false.

    Returns
    -------
    list of Param
        One entry per parameter, in the order given.

    Raises
    ------
    ValueError
        One line naming the first malformed parameter.
    """
    if space is None:
        return []
    if not isinstance(space, Mapping):
        raise ValueError(
            f"search space must be a mapping of parameter names, got {type(space).__name__}"
        )
    return [_parse_param(str(name), spec) for name, spec in space.items()]


def _one_blas_thread():
    """Limit BLAS to one thread around the GP's work.

    The GP's matrices are n_trials x n_trials: far too small to split across threads, and
    on a busy 2-core machine OpenBLAS's threads made 12 GP trials take 5-6 s instead of 1.4 s.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


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
        finite = [(p, v) for p, v in self.history if math.isfinite(v)]
        # min keeps the first of equal values, so ties go to the earlier trial.
        return min(finite, key=lambda pv: pv[1]) if finite else None

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
        Random trials before the GP proposes; default ``min(5, n_trials)``.

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
            n_initial_points = min(5, self.n_trials)
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


class TPESearcher(Searcher):
    """Tree-structured Parzen estimator search (Optuna), in memory.

    Parameters
    ----------
    space : mapping
        Search space, see :func:`parse_space`.
    n_trials : int
        Trials to run.
    seed : int or None
        Seeds the sampler.
    """

    def __init__(self, space: Mapping | None, n_trials: int, seed: int | None = None):
        super().__init__(space, n_trials, seed)
        self._pending: list[tuple[dict, Any]] = []
        self.study = self._make_study() if self.params else None

    def _make_study(self):
        import optuna
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        # Optuna logs every trial at INFO; the run logs its own trial lines.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.distributions = {}
        for p in self.params:
            if p.is_categorical:
                dist = CategoricalDistribution(p.choices)
            elif p.type == "int":
                dist = IntDistribution(p.low, p.high, log=p.log)
            else:
                dist = FloatDistribution(p.low, p.high, log=p.log)
            self.distributions[p.name] = dist
        sampler = optuna.samplers.TPESampler(seed=self.seed)
        return optuna.create_study(direction="minimize", sampler=sampler)

    def _ask(self) -> dict:
        trial = self.study.ask(self.distributions)
        params = dict(trial.params)
        self._pending.append((params, trial))
        return params

    def _tell(self, params: dict, value: float) -> None:
        from optuna.trial import TrialState

        for i, (pending, trial) in enumerate(self._pending):
            if pending == params:
                del self._pending[i]
                break
        else:
            raise ValueError(f"tell() got parameters that ask() did not give: {params!r}")
        if math.isfinite(value):
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=TrialState.FAIL)


_KINDS = {"none": FixedSearcher, "gp": GPSearcher, "tpe": TPESearcher}


def make_searcher(kind: str, space: Mapping | None, n_trials: int, seed: int | None) -> Searcher:
    """Build the searcher a run configuration names.

    Parameters
    ----------
    kind : {"none", "gp", "tpe"}
        ``none`` runs one trial with the estimator's configured parameters; ``gp`` is
        scikit-optimize GP + EI; ``tpe`` is Optuna's TPE sampler.
    space : mapping or None
        Search space, see :func:`parse_space`. An empty space runs one trial whatever ``kind``.
    n_trials : int
        Trials to run (ignored for ``none`` or an empty space).
    seed : int or None
        Seeds the back-end, so a search is reproducible.

    Returns
    -------
    Searcher
    """
    if kind not in _KINDS:
        raise ValueError(f"unknown searcher {kind!r}; valid searchers: {', '.join(SEARCHERS)}")
    if kind == "none":
        parse_space(space)  # a malformed space is a config error even when not searched
        return FixedSearcher()
    return _KINDS[kind](space, n_trials, seed)
