"""One evaluated trial (:class:`TrialRecord`) and the seeds of a search's workers and restarts: the leaf the searchers, the objective and the stored study share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["REPEAT_ATTEMPTS", "TrialRecord", "derive_seed"]

#: Attempts at a parameter set no other trial of the study has, before one is evaluated anyway
#: (a small categorical space may hold fewer points than the budget).
REPEAT_ATTEMPTS = 3


def derive_seed(seed: int | None, *keys: int) -> int | None:
    """A seed for one worker or one restart of a search: ``seed`` itself when every key is 0
    (the first worker of a fresh study: the same trials as an in-memory search), else a seed
    mixed from all of them, so that workers and restarts never replay each other's draws."""
    if seed is None or not any(keys):
        return seed
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


@dataclass
class TrialRecord:
    """One evaluated trial: its parameters, fold summary, objective value and when it ran.

    ``fold_predictions`` holds each fold's ``(y_valid, proba)`` while the trial is the best
    so far (dropped from the others, to keep memory flat over long searches).
    ``fold_iterations`` holds the rounds/epochs each fold's early stopping picked (empty for
    a model without early stopping). A ``PRUNED`` trial has a nan value (never the best), the
    summary of the folds it ran and their number in ``n_folds``. In a shared study ``index``
    is the trial's number there, ``worker`` the ``host:pid`` that evaluated it and
    ``resumed`` says it was finished before this run started.
    """

    index: int
    params: dict
    summary: dict[str, float]
    value: float
    started: float                      # seconds since the epoch
    seconds: float
    fold_predictions: list | None = None
    fold_iterations: list[int] = field(default_factory=list)
    state: str = "COMPLETE"
    n_folds: int | None = None
    worker: str | None = None
    resumed: bool = False

    @property
    def ended(self) -> float:
        """When the trial finished (seconds since the epoch)."""
        return self.started + self.seconds

    @property
    def metrics(self) -> dict[str, float]:
        """What a trial logs: ``cv/<metric>_mean|std``, ``objective``, ``time/trial_s`` and, for an
        early-stopping model, ``cv/best_iteration_mean`` (rounds or epochs, mean over folds)."""
        out = {f"cv/{k}": v for k, v in self.summary.items()}
        if self.fold_iterations:
            out["cv/best_iteration_mean"] = float(np.mean(self.fold_iterations))
        out.update({"objective": self.value, "time/trial_s": self.seconds})
        if self.n_folds is not None:
            out["cv/n_folds"] = float(self.n_folds)
        return out

    @property
    def tags(self) -> dict[str, str]:
        """``wtc.trial_state`` (COMPLETE or PRUNED); in a shared study also ``wtc.trial_number``,
        ``wtc.worker`` and, for a trial finished before this run, ``wtc.resumed``."""
        tags = {"wtc.trial_state": self.state}
        if self.worker is not None:
            tags.update({"wtc.trial_number": str(self.index), "wtc.worker": self.worker})
        if self.resumed:
            tags["wtc.resumed"] = "true"
        return tags

    def stored(self) -> dict:
        """What a shared study keeps with the trial (its ``wtc.result``), to rebuild this record elsewhere."""
        out = {"summary": self.summary, "started": self.started, "seconds": self.seconds,
               "fold_iterations": [int(i) for i in self.fold_iterations]}
        if self.n_folds is not None:
            out["n_folds"] = self.n_folds
        return out
