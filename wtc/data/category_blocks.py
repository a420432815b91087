"""Feature blocks by the CMS vocabulary's exit-code category (memory, time, site, input, stageout,
software, crash, merge, generic; ``unknown`` for a code it does not document): the task's own
shares and its workflow's, pooled over its tasks (siblings' entries, never their labels).

An operator reads the table by kind of error ("mostly memory errors at good sites"); grouping
codes that are rare one by one pools their evidence. The categories are the vocabulary's, the
same for a generated and a real history.
"""

from __future__ import annotations

import numpy as np

from wtc.data.blocks import Part, _grouped, _shares_of_task_total, _workflow_of_task, _workflow_totals, over_workflow
from wtc.data.history import History
from wtc.data.vocabulary import exit_code_info

__all__ = ["category_shares", "workflow_categories"]


def _status_category_keys(history: History) -> tuple[np.ndarray, callable]:
    """Each entry's (status, code category) key, the category the CMS vocabulary gives its code
    (``unknown`` for a code it does not document), and a namer of such keys."""
    category_of = [exit_code_info(code)["category"] for code in history.codes]
    categories = sorted(set(category_of))
    of_code = np.array([categories.index(category) for category in category_of], dtype=np.int64)
    keys = history.entry_status.astype(np.int64) * len(categories) + of_code[history.entry_code]

    def name_of(prefix, stat):
        def names(col_keys):
            status, category = np.divmod(col_keys, len(categories))
            return [f"{prefix}:{history.statuses[a]}/{categories[c]}/{stat}" for a, c in zip(status.tolist(), category.tolist())]
        return names

    return keys, name_of


def _category_part(history: History, prefix: str, stats: dict[str, np.ndarray]) -> Part:
    """One column per (status, category, stat): each entry adds ``stats[stat]`` to its task's column."""
    keys, name_of = _status_category_keys(history)
    parts = [_grouped(history.entry_task, keys, values, name_of(prefix, stat)) for stat, values in stats.items()]
    offsets = np.cumsum([0] + [len(part.names) for part in parts[:-1]])
    return Part(np.concatenate([part.rows for part in parts]),
                np.concatenate([part.cols + offset for part, offset in zip(parts, offsets)]),
                np.concatenate([part.values for part in parts]), [name for part in parts for name in part.names])


def category_shares(history: History, keep: np.ndarray) -> Part:
    """``category_shares:<status>/<category>/{counts,cells}``: the share of the task's count and of
    its cells whose code is of that category of the CMS vocabulary (memory, time, site, input,
    stageout, software, crash, merge, generic, unknown). How an operator reads the table: "mostly
    memory errors at good sites"; pools the evidence of related codes that are rare one by one."""
    n_cells = np.bincount(history.entry_task, minlength=history.n_tasks).astype(np.float64)[history.entry_task]
    cells = np.divide(1.0, n_cells, out=np.zeros_like(n_cells), where=n_cells > 0)
    return _category_part(history, "category_shares", {"counts": _shares_of_task_total(history), "cells": cells})


def workflow_categories(history: History, keep: np.ndarray) -> Part:
    """``workflow_categories:<status>/<category>/{share,cell_share,cells}``: the task's workflow
    pooled over its tasks, per (status, code category): its share of the workflow's total count,
    of the workflow's cells, and its number of cells (reads the siblings' entries, never labels)."""
    workflow, n_workflows = _workflow_of_task(history)
    entry_wf = workflow[history.entry_task]
    total = _workflow_totals(history, workflow, n_workflows)[entry_wf]
    n_cells = np.bincount(entry_wf, minlength=n_workflows).astype(np.float64)[entry_wf]
    counts, ones = history.entry_count.astype(np.float64), np.ones(history.nnz)
    part = _category_part(history, "workflow_categories", {
        "share": np.divide(counts, total, out=np.zeros_like(counts), where=total > 0),
        "cell_share": np.divide(ones, n_cells, out=np.zeros_like(ones), where=n_cells > 0), "cells": ones})
    return over_workflow(lambda *_: part, "workflow_categories")(history, keep)
