"""What ``wtc data describe`` prints: the counts a researcher looks at first in a history."""

from __future__ import annotations

from collections import Counter

import numpy as np

from wtc.data.history import History
from wtc.data.targets import TARGETS, build_target

__all__ = ["describe_history"]


def describe_history(history: History) -> dict:
    """Summarise a history as plain, JSON-ready values.

    Parameters
    ----------
    history : History
        From :func:`wtc.data.load_history`.

    Returns
    -------
    dict
        ``path``, ``content_hash``, ``tasks``, ``labelled``, ``unlabelled``, ``skipped``,
        ``workflows``, ``campaigns`` and ``task_types`` (value -> tasks, most common first),
        ``statuses``, ``codes``, ``sites``, ``nonzeros``, ``nonzeros_by_status``,
        ``total_errors`` and ``classes`` (target -> class -> labelled tasks).
    """
    status_nnz = np.bincount(history.entry_status, minlength=len(history.statuses))
    entry_counts = history.entry_count
    # Counts are int64 each, but their sum can pass 2**63: add them as Python ints when it might.
    fits = entry_counts.size == 0 or int(entry_counts.max()) <= (2**63 - 1) // entry_counts.size
    classes = {}
    for target in TARGETS:
        y, names = build_target(history, target)
        counts = np.bincount(y[y >= 0], minlength=len(names))
        classes[target] = {name: int(c) for name, c in zip(names, counts)}
    return {
        "path": str(history.path),
        "content_hash": history.content_hash,
        "tasks": history.n_tasks,
        "labelled": int(history.labelled.sum()),
        "unlabelled": int((~history.labelled).sum()),
        "skipped": len(history.skipped),
        "workflows": len(set(history.workflows)),
        "campaigns": dict(Counter(history.campaigns).most_common()),
        "task_types": dict(Counter(history.task_types).most_common()),
        "statuses": history.statuses,
        "codes": len(history.codes),
        "sites": len(history.sites),
        "nonzeros": history.nnz,
        "nonzeros_by_status": {s: int(n) for s, n in zip(history.statuses, status_nnz)},
        "total_errors": int(entry_counts.sum()) if fits else sum(entry_counts.tolist()),
        "classes": classes,
    }
