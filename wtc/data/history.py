"""The parsed actions history: tasks, their error counts as COO entries, and what derives from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from wtc.data.names import campaign_of, request_date_of, task_type_of, workflow_of

__all__ = ["PARAMETER_FIELDS", "History"]

#: The operator's decision fields a labelled task may carry.
PARAMETER_FIELDS = ("action", "splitting", "xrootd", "memory", "sites", "cores")


@dataclass
class History:
    """A parsed actions history: tasks in file order and their error counts as COO entries.

    Each non-zero count is one entry ``(task, status, code, site, count)``; nothing here is
    ever a dense task × code × site array, so memory grows with the non-zeros.
    ``parameter_records`` holds each task's ``parameters`` (None when unlabelled); tasks whose
    parameters are the same text in the file may share one dict: treat them as read-only.
    """

    path: Path
    content_hash: str
    tasks: list[str]
    statuses: list[str]
    codes: list[str]
    sites: list[str]
    entry_task: np.ndarray
    entry_status: np.ndarray
    entry_code: np.ndarray
    entry_site: np.ndarray
    entry_count: np.ndarray
    parameter_records: list[dict | None]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def nnz(self) -> int:
        return int(self.entry_count.size)

    @cached_property
    def workflows(self) -> list[str]:
        """The workflow of each task (first path component)."""
        return [workflow_of(t) for t in self.tasks]

    @cached_property
    def workflow_ids(self) -> np.ndarray:
        """Each task's workflow as an index into the sorted distinct workflows (int64)."""
        # What np.unique(..., return_inverse=True) gives, without sorting an array of Python objects.
        position = {w: i for i, w in enumerate(sorted(set(self.workflows)))}
        return np.fromiter(map(position.__getitem__, self.workflows), dtype=np.int64, count=self.n_tasks)

    @cached_property
    def campaigns(self) -> list[str]:
        """The campaign of each task, parsed from its workflow name."""
        per_workflow = {w: campaign_of(w) for w in dict.fromkeys(self.workflows)}
        return [per_workflow[w] for w in self.workflows]

    @cached_property
    def task_types(self) -> list[str]:
        """The task type of each task (DataProcessing, Production, Merge, Cleanup, ...)."""
        campaign = dict(zip(self.workflows, self.campaigns))  # parsed once per workflow
        return [task_type_of(t, campaign[w]) for t, w in zip(self.tasks, self.workflows)]

    @cached_property
    def request_dates(self) -> pd.Series:
        """Request date encoded in each task's workflow name (NaT when absent)."""
        per_workflow = {w: request_date_of(w) for w in dict.fromkeys(self.workflows)}
        return pd.Series(pd.to_datetime([per_workflow[w] for w in self.workflows]), index=self.tasks)

    @cached_property
    def labelled(self) -> np.ndarray:
        """Boolean mask of tasks that carry operator ``parameters``."""
        return np.fromiter((p is not None for p in self.parameter_records), dtype=bool, count=self.n_tasks)

    @cached_property
    def parameters(self) -> pd.DataFrame:
        """The raw operator parameters, one row per task (all missing for unlabelled tasks)."""
        rows = [
            {k: (p.get(k) if p is not None else None) for k in PARAMETER_FIELDS}
            for p in self.parameter_records
        ]
        return pd.DataFrame(rows, index=pd.Index(self.tasks, name="task"), columns=list(PARAMETER_FIELDS))
