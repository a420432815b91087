"""The exact oracle of a synthetic history: true class posteriors aligned with build_target."""

from __future__ import annotations

import numpy as np

from wtc.data.loader import load_history
from wtc.data.targets import build_target
from wtc.errors import HistoryError


def load_oracle(history_path, target: str, history=None, blind: bool = False, workflow: bool = False) -> tuple[np.ndarray, list[str]]:
    """The oracle's ``P(class | observed task)`` for every task of a generated history.

    Rows follow the history's tasks, columns ``build_target``'s classes (those present among
    the labelled tasks, in canonical order). Oracle mass on classes absent from the history is
    dropped and each row renormalised, since no model trained on the file can predict them.

    ``history``, when given, is the already loaded history of ``history_path`` (it is not
    read again). ``blind`` reads the name-blind oracle's sidecar instead (the limit of a model
    that cannot read a workflow's traits from its name; see ``wtc.data.synthetic.blind``),
    ``workflow`` the workflow oracle's (the limit of a model that also reads the task's siblings;
    see ``wtc.data.synthetic.posterior.workflow_oracle_of``), both the name-blind workflow oracle's
    (siblings read, traits unknown; see ``wtc.data.synthetic.workflow_blind``).

    Raises
    ------
    HistoryError
        When the history has no oracle sidecar (only generated histories do) or it does not
        match the history's tasks.
    """
    from wtc.data.synthetic import load_oracle_table, oracle_path

    if history is None:
        history = load_history(history_path)
    table = load_oracle_table(history_path, blind, workflow)
    sidecar = oracle_path(history_path, blind, workflow)
    if len(table) != history.n_tasks or list(table["task"]) != history.tasks:
        raise HistoryError(sidecar, "the oracle's tasks do not match the history's (regenerate both)")
    _, classes = build_target(history, target)
    columns = [f"{target}/{c}" for c in classes]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise HistoryError(sidecar, f"no oracle column for {missing[0]!r}", field=target)
    proba = table[columns].to_numpy(dtype=np.float64)
    total = proba.sum(axis=1, keepdims=True)
    return proba / np.where(total > 0, total, 1.0), classes


def has_oracle(history_path, blind: bool = False, workflow: bool = False) -> bool:
    """Whether a history comes with an oracle sidecar (synthetic benchmarks do), or with
    ``blind`` a name-blind oracle's, with ``workflow`` a workflow oracle's, with both a name-blind
    workflow oracle's (once something asked for it)."""
    from wtc.data.synthetic import oracle_path

    return oracle_path(history_path, blind, workflow).exists()
