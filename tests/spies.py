"""Test doubles importable from configs (``_target_: tests.spies.RecordingSampler``)."""

from __future__ import annotations

import numpy as np
from imblearn.base import BaseSampler

#: Row-id columns of every matrix a RecordingSampler was fitted on, in call order.
SEEN: list[np.ndarray] = []


class RecordingSampler(BaseSampler):
    """Returns its input unchanged and records the row ids it saw (from a given column)."""

    _sampling_type = "bypass"
    _parameter_constraints: dict = {}

    def __init__(self, id_column: int = -1):
        super().__init__()
        self.id_column = id_column

    def _fit_resample(self, X, y):
        column = X[:, self.id_column]
        SEEN.append(np.asarray(column.todense() if hasattr(column, "todense") else column).ravel().copy())
        return X, y
