"""Hyper-parameter search: the space schema, one module per back-end, and the CV objective.

- :mod:`~wtc.tuning.space`: the ``space`` node of a model config, validated (:class:`Param`);
- :mod:`~wtc.tuning.base`: the ask/tell :class:`Searcher` and the best-trial rule;
  :func:`make_searcher` builds the back-end a ``search`` option names (``_target_``);
- :mod:`~wtc.tuning.gp`, :mod:`~wtc.tuning.tpe`: scikit-optimize GP and Optuna TPE back-ends;
- :mod:`~wtc.tuning.objective`: CV over folds, fold summaries and the trial loop (:func:`tune`);
- :mod:`~wtc.tuning.naming`: the study a run config names, its objective's true direction;
- :mod:`~wtc.tuning.study`: trials in a stored Optuna study (resume, a shared budget, dead trials);
- :mod:`~wtc.tuning.dashboard`: the ``optuna-dashboard`` command that opens a storage;
- :mod:`~wtc.tuning.workers`: :func:`search`, the loop over a stored study with local worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping

from wtc.config import build_option
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
    "study_name",
    "study_spec",
    "summarise_folds",
    "tune",
]


def make_searcher(search: Mapping, space: Mapping | None, seed: int | None) -> Searcher:
    """The searcher a ``search`` config node builds: its ``_target_`` class (:class:`FixedSearcher`,
    :class:`GPSearcher`, :class:`TPESearcher`...) called with the node's keys.

    Parameters
    ----------
    search : mapping or DictConfig
        The ``search`` node: ``_target_``, ``n_trials`` and the back-end's settings (e.g. GP's
        ``n_initial_points``, whose null means a third of the budget), beside its logged ``kind``
        and the keys of how the search runs (:data:`RUN_KEYS`), which are not passed on.
    space : mapping or None
        Search space, see :func:`parse_space`. An empty space runs one trial whatever the back-end.
    seed : int or None
        Seeds the back-end, so a search is reproducible.

    Returns
    -------
    Searcher
    """
    n_trials = search.get("n_trials", 1)
    if isinstance(n_trials, str):
        n_trials = int(n_trials)  # its text, as an environment interpolation gives
    return build_option(search, "kind", RUN_KEYS, space=space, n_trials=n_trials, seed=seed)
