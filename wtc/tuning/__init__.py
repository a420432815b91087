"""Hyper-parameter search: the space schema, one module per back-end, and the CV objective.

- :mod:`~wtc.tuning.space`: the ``space`` node of a model config, validated (:class:`Param`);
- :mod:`~wtc.tuning.base`: the ask/tell :class:`Searcher` and the best-trial rule;
- :mod:`~wtc.tuning.gp`, :mod:`~wtc.tuning.tpe`: scikit-optimize GP and Optuna TPE back-ends;
- :mod:`~wtc.tuning.objective`: CV over folds, fold summaries and the trial loop (:func:`tune`);
- :mod:`~wtc.tuning.study`: trials in a stored Optuna study (resume, a shared budget, dead trials);
- :mod:`~wtc.tuning.workers`: :func:`search`, the loop over a stored study with local worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping

from wtc.tuning.base import FixedSearcher, Searcher, best_trial
from wtc.tuning.gp import GPSearcher
from wtc.tuning.objective import TuningResult, cross_validate, summarise_folds, tune
from wtc.tuning.space import Param, config_space, parse_space
from wtc.tuning.study import RUN_KEYS, StudySpec, study_name, study_spec
from wtc.tuning.tpe import PRUNERS, TPESearcher
from wtc.tuning.workers import search

__all__ = [
    "PRUNERS",
    "RUN_KEYS",
    "SEARCHERS",
    "FixedSearcher",
    "GPSearcher",
    "Param",
    "Searcher",
    "StudySpec",
    "TPESearcher",
    "TuningResult",
    "best_trial",
    "config_space",
    "cross_validate",
    "make_searcher",
    "parse_space",
    "search",
    "search_options",
    "study_name",
    "study_spec",
    "summarise_folds",
    "tune",
]

#: Search back-ends by the name a config gives (``search.kind``): one entry per back-end.
SEARCHERS: dict[str, type[Searcher]] = {"none": FixedSearcher, "gp": GPSearcher, "tpe": TPESearcher}


def make_searcher(
    kind: str, space: Mapping | None, n_trials: int, seed: int | None, options: Mapping | None = None,
) -> Searcher:
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
    options : mapping, optional
        Back-end settings from the ``search`` config node (e.g. ``n_initial_points`` for GP);
        None values mean the back-end's default.

    Returns
    -------
    Searcher
    """
    if kind not in SEARCHERS:
        raise ValueError(f"unknown searcher {kind!r}; valid searchers: {', '.join(SEARCHERS)}")
    if kind == "none":
        parse_space(space)  # a malformed space is a config error even when not searched
        return FixedSearcher()
    options = {k: v for k, v in (options or {}).items() if v is not None}
    return SEARCHERS[kind](space, n_trials, seed, **options)


def search_options(search: Mapping) -> dict:
    """The back-end settings of a ``search`` config node (plain mapping): everything but its kind,
    budget and the keys of how it runs (:data:`RUN_KEYS`: storage, study, workers, heartbeat)."""
    return {k: v for k, v in search.items() if k not in ("kind", "n_trials", *RUN_KEYS)}
