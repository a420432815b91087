"""The ask/tell interface every search back-end implements, and the best-trial rule (written once)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from wtc.interrupt import deferred
from wtc.tuning.space import parse_space
from wtc.tuning.trial import REPEAT_ATTEMPTS, derive_seed

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

    A ``search`` config option names one subclass (``_target_``) with its arguments beside
    the keys of how the search runs; the class's ``kind`` is the option's logged name
    (``search.kind``: in run and study names). Subclasses implement ``_ask`` and ``_tell`` over
    the searched parameters. An empty space
    means exactly one trial with the empty dict (the estimator's own defaults), whatever the
    back-end; a parameter with a single choice is fixed, and a space of only those is one
    trial too.

    After :meth:`attach`, trials live in a stored Optuna study shared with other processes
    (subclasses then implement ``_attach``, ``_ask_trial`` and ``_reseed``): ``ask`` returns
    None once the shared budget is spent, and every trial asked is either told or abandoned.

    Attributes
    ----------
    n_trials : int
        How many trials the search is meant to run (finished trials in all, when shared).
    history : list of (dict, float)
        Every told trial, in order (pruned ones with a nan value); when shared, the
        study's other finished trials join it as the back-end learns of them.
    shared : SharedStudy or None
        The stored study, once attached.
    """

    #: The logged name of the back-end (``search.kind``).
    kind: ClassVar[str]

    def __init__(self, space: Mapping | None = None, n_trials: int = 1, seed: int | None = None):
        self._args = {"space": space, "n_trials": n_trials, "seed": seed}
        self.shared = None
        self.worker = 0
        self._open: list[tuple[dict, int | None]] = []  # (searched params, study number) asked, not told
        self._evaluated: set[int] = set()         # trial numbers this searcher told
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

    # ------------------------------------------------------------------ settings
    @property
    def options(self) -> dict:
        """Back-end settings beyond space, budget and seed (what :meth:`fresh` passes on)."""
        return {}

    @property
    def settings(self) -> dict:
        """Constructor arguments of this searcher: space, budget, seed and :attr:`options`."""
        return {**self._args, **self.options}

    def fresh(self) -> Searcher:
        """A new, unattached searcher with the same settings (what a worker process builds)."""
        return type(self)(**self.settings)

    def refresh(self) -> None:
        """Learn of the shared study's trials finished elsewhere (a back-end that keeps its own
        model of the search, like the GP, does so before each ask anyway)."""

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> dict | None:
        """Parameters of the next trial, as plain Python values.

        None when the search is attached to a shared study whose budget is spent.
        """
        if not self.params:
            return dict(self.fixed)
        if self.shared is not None:
            with deferred():  # an interruption waits until the trial is created and recorded as open
                return self._ask_shared()
        searched = {name: _plain(value) for name, value in self._ask().items()}
        self._open.append((searched, None))
        return {**self.fixed, **searched}

    def tell(self, params: dict, value: float, state: str = "COMPLETE", attrs: Mapping | None = None) -> None:
        """Report the objective of a trial asked before.

        Parameters
        ----------
        params : dict
            The dict ``ask`` returned.
        value : float
            The objective, minimised. A non-finite value (a failed trial) is recorded but
            never becomes the best.
        state : {"COMPLETE", "PRUNED"}
            ``PRUNED``: the trial was stopped early (see :meth:`should_prune`); it is recorded
            with a nan value, so it never becomes the best.
        attrs : mapping, optional
            What to store with the trial in a shared study (its fold summary, timing).
        """
        value = float(value) if state == "COMPLETE" else math.nan
        missing = [p.name for p in self.params if p.name not in params]
        if missing:
            raise ValueError(f"tell() params lack the searched parameters {missing}")
        if not self.params:
            self.history.append((dict(params), value))
            return
        searched = {p.name: params[p.name] for p in self.params}
        with deferred():  # stored whole, or not at all
            number = self._close(searched)
            if number is not None:
                self.shared.set_attrs(number, {"wtc.result": dict(attrs or {})})
                self._evaluated.add(number)
            self._tell(searched, value, state, number)
            self.history.append((dict(params), value))

    def should_prune(self, params: dict, folds_done: int, value: float) -> bool:
        """Report a trial's running objective after ``folds_done`` folds; True when it should stop.

        Only back-ends with a pruner (TPE) ever say yes.
        """
        return False

    def abandon(self, params: dict, reason: str) -> None:
        """Give up a trial asked but never told (an error, an interruption): in a shared study it
        ends FAIL, with ``reason``, so no other process waits on it. A trial not open is left alone."""
        if not self.params:
            return
        searched = {p.name: params[p.name] for p in self.params}
        if not any(open_ == searched for open_, _ in self._open):
            return
        with deferred():
            number = self._close(searched)
            self._abandon(searched)
            if number is not None:
                self.shared.fail(number, reason)

    def abandon_open(self, reason: str) -> None:
        """:meth:`abandon` every trial asked and not yet told."""
        for searched, _ in list(self._open):
            self.abandon({**self.fixed, **searched}, reason)

    def trial_number(self, params: dict) -> int | None:
        """The study's number of an open (asked, not told) trial; None when not shared."""
        searched = {p.name: params[p.name] for p in self.params}
        return next((number for open_, number in self._open if open_ == searched), None)

    @property
    def done(self) -> bool:
        """Whether ``n_trials`` trials have been told (in a shared study: by every process)."""
        if self.shared is not None and self.params:
            return self.shared.remaining() <= 0
        return len(self.history) >= self.n_trials

    # ------------------------------------------------------------------ shared study
    def attach(self, shared, worker: int = 0) -> None:
        """Keep the trials in a stored study shared with other processes, from now on.

        Parameters
        ----------
        shared : SharedStudy
        worker : int
            This process's index among the local workers (0 for the main one): with the
            number of trials already stored, it derives this process's seed, so that workers
            and restarts never replay each other's random draws.
        """
        if not self.params:
            return  # one fixed trial: nothing to search, nothing to share
        self.shared, self.worker = shared, int(worker)
        self._attach(derive_seed(self.seed, shared.existing, worker))

    def _ask_shared(self) -> dict | None:
        shared = self.shared
        for attempt in range(REPEAT_ATTEMPTS + 1):
            own = {number for _, number in self._open} | self._evaluated
            shared.reap()
            if shared.remaining() <= 0:
                return None
            searched, number = self._ask_trial()
            shared.claim(number)
            searched = {name: _plain(value) for name, value in searched.items()}
            self._open.append((searched, number))
            verdict = shared.admit(number, searched, own, check_repeats=attempt < REPEAT_ATTEMPTS)
            if verdict == "full":
                self.abandon({**self.fixed, **searched}, "another process took the budget's last place")
                return None
            if verdict == "repeat":
                # Another process (or the run before a restart) has these parameters: draw
                # again from a stream of this trial's own.
                self.abandon({**self.fixed, **searched}, "repeats another trial's parameters")
                self._reseed(derive_seed(self.seed, number, self.worker + 1))
                continue
            break
        # Every trial is created with its owner; TPE's may have been popped from another process's
        # queue (owner: that process), so name this one again.
        shared.set_attrs(number, shared.owner_attrs(self.worker))
        shared.start_heartbeat(number)
        return {**self.fixed, **searched}

    def _close(self, searched: dict) -> int | None:
        """Take a trial off the open list; its study number (None in memory)."""
        for i, (open_, number) in enumerate(self._open):
            if open_ == searched:
                del self._open[i]
                if number is not None:
                    self.shared.release(number)
                return number
        if self.shared is not None:
            raise ValueError(f"tell() got parameters that ask() did not give: {searched!r}")
        return None  # in memory a back-end may be told any point

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

    def _tell(self, params: dict, value: float, state: str, number: int | None) -> None:  # pragma: no cover
        raise NotImplementedError

    def _abandon(self, params: dict) -> None:
        """Forget the back-end's handle of an open trial (nothing to do for most back-ends)."""

    def _attach(self, seed: int | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} cannot share a stored study")

    def _ask_trial(self) -> tuple[dict, int]:  # pragma: no cover - abstract
        """Create a RUNNING trial in the shared study; its searched parameters and number."""
        raise NotImplementedError

    def _reseed(self, seed: int | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        names = [p.name for p in self.params]
        kind = type(self).__name__
        return f"{kind}(params={names}, fixed={self.fixed}, n_trials={self.n_trials})"


class FixedSearcher(Searcher):
    """No search: one trial with the estimator's configured parameters (the empty dict), whatever
    the space and budget; a malformed space is still a config error."""

    kind = "none"

    def __init__(self, space: Mapping | None = None, n_trials: int = 1, seed: int | None = None):
        parse_space(space)
        super().__init__(None, 1, seed)
