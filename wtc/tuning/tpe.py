"""Tree-structured Parzen estimator search (Optuna) behind the ask/tell interface, with pruning over folds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from wtc.tuning.base import Searcher

__all__ = ["PRUNERS", "TPESearcher"]

#: ``search.pruner`` choices.
PRUNERS = ("none", "median")


class TPESearcher(Searcher):
    """Tree-structured Parzen estimator search (Optuna), in memory or in a shared study.

    Parameters
    ----------
    space : mapping
        Search space, see :func:`parse_space`.
    n_trials : int
        Trials to run.
    seed : int or None
        Seeds the sampler.
    pruner : {"none", "median"}
        ``median``: Optuna's ``MedianPruner`` over folds. After each fold a trial reports the
        running mean of its fold objectives and stops when that is worse than the median of
        the earlier trials' at the same fold; a pruned trial never becomes the best.
    prune_startup_trials : int
        Trials that always run every fold before any trial is pruned.
    prune_min_folds : int
        Folds a trial always runs before it may be pruned (it is never pruned after its last).

    Notes
    -----
    Attached to a shared study (:meth:`attach`), the study *is* the search: every process's
    sampler sees every stored trial, and those still running count as bad ones (Optuna's
    ``constant_liar``), so parallel workers spread out instead of proposing the same point.
    """

    kind = "tpe"

    def __init__(self, space: Mapping | None, n_trials: int, seed: int | None = None, pruner: str = "none",
                 prune_startup_trials: int = 5, prune_min_folds: int = 2):
        super().__init__(space, n_trials, seed)
        if pruner not in PRUNERS:
            raise ValueError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
        for name, value, low in (("prune_startup_trials", prune_startup_trials, 0), ("prune_min_folds", prune_min_folds, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")
        self.pruner, self.prune_startup_trials, self.prune_min_folds = pruner, prune_startup_trials, prune_min_folds
        self._pending: list[tuple[dict, Any]] = []
        self.study = self._make_study() if self.params else None

    @property
    def options(self) -> dict:
        return {"pruner": self.pruner, "prune_startup_trials": self.prune_startup_trials,
                "prune_min_folds": self.prune_min_folds}

    def _make_pruner(self):
        import optuna

        if self.pruner == "none":
            return optuna.pruners.NopPruner()
        # Steps are folds done (1, 2, ...): the earliest a trial can be pruned is after prune_min_folds.
        return optuna.pruners.MedianPruner(n_startup_trials=self.prune_startup_trials,
                                           n_warmup_steps=self.prune_min_folds)

    def _make_study(self):
        import optuna

        from wtc.tuning.space import optuna_distributions

        # Optuna logs every trial at INFO; the run logs its own trial lines.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.distributions = optuna_distributions(self.params)
        sampler = optuna.samplers.TPESampler(seed=self.seed)
        return optuna.create_study(direction="minimize", sampler=sampler, pruner=self._make_pruner())

    def _ask(self) -> dict:
        trial = self.study.ask(self.distributions)
        params = dict(trial.params)
        self._pending.append((params, trial))
        return params

    def _pop(self, params: dict):
        for i, (pending, trial) in enumerate(self._pending):
            if pending == params:
                del self._pending[i]
                return trial
        raise ValueError(f"tell() got parameters that ask() did not give: {params!r}")

    def _tell(self, params: dict, value: float, state: str, number: int | None) -> None:
        from optuna.trial import TrialState

        trial = self._pop(params)
        if number is not None:
            self.shared.finish(number, value, state)
        elif state == "PRUNED":
            self.study.tell(trial, state=TrialState.PRUNED)  # its value: the last one reported
        elif math.isfinite(value):
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=TrialState.FAIL)

    def should_prune(self, params: dict, folds_done: int, value: float) -> bool:
        if self.pruner == "none" or not self.params:
            return False
        searched = {p.name: params[p.name] for p in self.params}
        trial = next(trial for pending, trial in self._pending if pending == searched)
        # A shared study holds the true objective (a maximised AUC): report it in the study's sign.
        trial.report(value if self.shared is None else self.shared.sign * value, folds_done)
        return trial.should_prune()

    def _abandon(self, params: dict) -> None:
        from optuna.trial import TrialState

        trial = self._pop(params)
        if self.shared is None:  # a shared trial is failed, with its reason, by the caller
            self.study.tell(trial, state=TrialState.FAIL)

    # ------------------------------------------------------------------ shared study
    def _attach(self, seed: int | None) -> None:
        self.study = self.shared.study
        self.study.sampler = self._sampler(seed)
        self.study.pruner = self._make_pruner()

    @staticmethod
    def _sampler(seed: int | None):
        import optuna

        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)

    def _ask_trial(self) -> tuple[dict, int]:
        from wtc.tuning.study import _quiet_optuna

        with _quiet_optuna():
            # The owner travels with the trial from its creation (queued with it, then popped by
            # ask), as a GP trial's does: a process killed between creating a trial and naming
            # itself would leave a RUNNING trial no one can tell is dead, holding a budget place.
            self.study.enqueue_trial({}, user_attrs=self.shared.owner_attrs(self.worker))
            trial = self.study.ask(self.distributions)
        params = dict(trial.params)
        self._pending.append((params, trial))
        return params, trial.number

    def _reseed(self, seed: int | None) -> None:
        self.study.sampler = self._sampler(seed)
