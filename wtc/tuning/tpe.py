"""Tree-structured Parzen estimator search (Optuna) behind the ask/tell interface."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from wtc.tuning.base import Searcher

__all__ = ["TPESearcher"]


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
