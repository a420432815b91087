"""Held-out test split and cross-validation folds that keep a workflow's tasks together.

One class per ``cv`` option (its ``_target_``): :class:`GroupedCV`, :class:`StratifiedCV`,
:class:`TemporalCV`, each with the held-out split and the folds; :func:`make_splits` computes
(or reads back from the cache) both for a run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from wtc.errors import ConfigError

__all__ = ["CV", "GroupedCV", "Splits", "StratifiedCV", "TemporalCV", "make_splits"]

log = logging.getLogger(__name__)


class CV:
    """How a run splits its rows: the held-out test split and the CV folds of the training rows.

    A ``cv`` config option names one subclass (``_target_``) with its ``n_splits``; the class's
    ``kind`` is the option's logged name (``cv.kind``). Every subclass keeps a workflow's tasks
    on one side of both splits but :class:`StratifiedCV`.

    Parameters
    ----------
    n_splits : int
        Folds of the training split (at least 2).
    """

    #: The logged name of the split (``cv.kind``), in the splits cache key too.
    kind: ClassVar[str]
    #: Whether the split reads the workflows' request dates (then part of the cache key).
    uses_dates: ClassVar[bool] = False

    def __init__(self, n_splits: int):
        if int(n_splits) < 2:  # an integer, or its text from an environment interpolation
            raise ValueError(f"cv.n_splits must be at least 2, got {n_splits}")
        self.n_splits = int(n_splits)

    def holdout(self, y: np.ndarray, groups: np.ndarray, test_size: float, seed: int,
                dates: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the training and test rows; the test share is ``test_size``."""
        if not 0 < test_size < 1:
            raise ConfigError(f"test_size must be between 0 and 1 (the held-out share), got {test_size}")
        return self._holdout(y, groups, test_size, seed, dates)

    def folds(self, y: np.ndarray, groups: np.ndarray, seed: int,
              dates: pd.Series | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train, validation) index pairs over the rows given (the training split)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _holdout(self, y, groups, test_size, seed, dates):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_splits={self.n_splits})"


#: The most folds the held-out split is drawn from: shares are honoured to within 1/200 or so.
_MAX_TEST_FOLDS = 100
#: The most the held-out share may differ from test_size (else a ConfigError).
_SHARE_TOLERANCE = 0.05


def _test_folds(test_size: float, n_units: int, what: str) -> tuple[int, int]:
    """``(m, k)``: the held-out split is ``m`` of ``k`` stratified folds of ``n_units`` workflows
    (or tasks), ``m / k`` the closest to ``test_size``, the fewest folds on a tie (so ``0.2`` is
    1 fold of 5, ``0.25`` 1 of 4, as before; ``0.3`` is 3 of 10, ``0.99`` 99 of 100)."""
    best = None
    for k in range(2, min(_MAX_TEST_FOLDS, n_units) + 1):
        m = min(max(1, int(round(test_size * k))), k - 1)
        error = abs(m / k - test_size)
        if best is None or error < best[0] - 1e-12:
            best = (error, m, k)
    if best is None or best[0] > _SHARE_TOLERANCE:
        closest = f"; the closest share is {best[1]}/{best[2]}" if best else ""
        raise ConfigError(f"test_size={test_size} cannot be honoured with {n_units} {what}{closest}: "
                          f"choose a test_size the {what} can give, or more data")
    return best[1], best[2]


def _first_folds(splitter, m: int, y, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows when the test rows are the first ``m`` test folds of ``splitter``."""
    folds = islice(splitter.split(np.zeros(len(y)), y, groups), m)
    if m == 1:
        return next(folds)
    test = np.sort(np.concatenate([test for _, test in folds]))
    return np.setdiff1d(np.arange(len(y)), test, assume_unique=True), test


class GroupedCV(CV):
    """``cv=grouped``: StratifiedGroupKFold by workflow, for the test split (``m`` of ``k`` folds,
    ``m / k`` closest to ``test_size``) and the folds: a workflow's tasks share a decision, never split them."""

    kind = "grouped"

    def _holdout(self, y, groups, test_size, seed, dates):
        m, k = _test_folds(test_size, len(pd.unique(np.asarray(groups))), "workflows")
        return _first_folds(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed), m, y, groups)

    def folds(self, y, groups, seed, dates=None):
        splitter = StratifiedGroupKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(len(y)), y, groups)]


class StratifiedCV(CV):
    """``cv=stratified``: StratifiedKFold on tasks for the test split and the folds; workflows are
    ignored, so a workflow's tasks may sit on both sides (optimistic, kept to measure that optimism)."""

    kind = "stratified"

    def _holdout(self, y, groups, test_size, seed, dates):
        m, k = _test_folds(test_size, len(y), "tasks")
        return _first_folds(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed), m, y)

    def folds(self, y, groups, seed, dates=None):
        splitter = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(np.zeros(len(y)), y)]


class TemporalCV(CV):
    """``cv=temporal``: the test rows are the latest workflows by request date; the folds an
    expanding window over the workflows ordered by date (fold k trains on the first k blocks,
    validates on block k + 1)."""

    kind = "temporal"
    uses_dates = True

    def _holdout(self, y, groups, test_size, seed, dates):
        order = _workflows_by_date(groups, dates)
        if len(order) < 2:
            raise ConfigError(f"test_size: a temporal held-out split needs at least 2 workflows, got {len(order)}")
        n_test = min(max(1, int(round(len(order) * test_size))), len(order) - 1)
        test_groups = set(order[-n_test:])
        is_test = np.fromiter((g in test_groups for g in groups), dtype=bool, count=len(groups))
        return np.flatnonzero(~is_test), np.flatnonzero(is_test)

    def folds(self, y, groups, seed, dates=None):
        order = _workflows_by_date(groups, dates)
        blocks = np.array_split(np.asarray(order, dtype=object), self.n_splits + 1)
        block_of = {g: b for b, members in enumerate(blocks) for g in members}
        block = np.fromiter((block_of[g] for g in groups), dtype=np.int64, count=len(groups))
        return [(np.flatnonzero(block <= k), np.flatnonzero(block == k + 1)) for k in range(self.n_splits)]


def _workflows_by_date(groups: np.ndarray, dates: pd.Series | None) -> list:
    if dates is None or pd.isna(dates).any():
        missing = int(pd.isna(dates).sum()) if dates is not None else len(groups)
        raise ValueError(
            f"temporal splits need a request date in every workflow name (_YYMMDD_HHMMSS_); "
            f"{missing} task(s) have none: use cv=grouped"
        )
    first = pd.Series(np.asarray(dates)).groupby(np.asarray(groups)).min()
    # Ties broken by workflow name so the order is deterministic.
    return list(first.sort_index().sort_values(kind="stable").index)


@dataclass
class Splits:
    """The held-out split of a run and the CV folds of its training rows.

    ``train`` and ``test`` index the dataset's rows; each fold's (train, validation) index
    arrays index ``train``'s rows.
    """

    train: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]


def make_splits(
    cv: CV, test_size: float, seed: int, y: np.ndarray, groups: np.ndarray,
    dates: pd.Series | None = None, cache_dir: Path | str | None = None,
) -> Splits:
    """The held-out split and the CV folds of a ``cv`` option (:class:`CV`).

    Parameters
    ----------
    cv : CV
        How to split (:class:`GroupedCV`, :class:`StratifiedCV`, :class:`TemporalCV`...), with
        its ``n_splits``: the folds of the training split.
    test_size, seed
        Test share, and the seed of the shuffles.
    y, groups, dates
        Labels, workflow of each row, and request dates (read by a ``cv`` that ``uses_dates``).
    cache_dir : path, optional
        Keep the splits there (``<cache_dir>/splits/<key>.npz``) and read them back for the
        same inputs: StratifiedGroupKFold assigns workflows in a Python loop (~1.8 s for the
        default history's 2,600 workflows), while a sweep's jobs share a handful of splits.
        The key hashes every input and scikit-learn's version; an unreadable entry is
        computed again and rewritten. None: always compute.
    """
    if cache_dir is None:
        return _compute_splits(cv, test_size, seed, y, groups, dates)
    path = Path(cache_dir) / "splits" / f"{_splits_key(cv, test_size, seed, y, groups, dates)}.npz"
    try:
        return _read_splits(path, len(y))
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - any damage means "compute them again"
        log.warning("ignoring the splits cache entry %s (%s: %s); computing the splits again",
                    path, type(exc).__name__, exc)
    splits = _compute_splits(cv, test_size, seed, y, groups, dates)
    try:
        _write_splits(path, splits)
    except OSError as exc:
        log.warning("could not keep the splits in %s (%s); computed them for this run only", path.parent, exc)
    return splits


def _splits_key(cv: CV, test_size: float, seed: int, y: np.ndarray, groups: np.ndarray,
                dates: pd.Series | None) -> str:
    digest = hashlib.sha256(f"splits-v2|sklearn {sklearn.__version__}|{cv.kind}|{cv.n_splits}|{test_size!r}|{seed}|"
                            f"{len(y)}".encode())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    digest.update("\x1f".join(map(str, groups)).encode())
    if cv.uses_dates and dates is not None:
        digest.update("\x1f".join(map(str, np.asarray(dates))).encode())
    return digest.hexdigest()


def _read_splits(path: Path, n_rows: int) -> Splits:
    with np.load(path, allow_pickle=False) as entry:
        train, test = entry["train"], entry["test"]
        n_folds = int(entry["n_folds"])
        folds = [(entry[f"fold{k}_train"], entry[f"fold{k}_valid"]) for k in range(n_folds)]
    if len(train) + len(test) != n_rows or np.union1d(train, test).size != n_rows:
        raise ValueError(f"train and test do not cover the {n_rows} rows once")
    for fit, valid in folds:
        if fit.size and fit.max() >= len(train) or valid.size and valid.max() >= len(train):
            raise ValueError("a fold indexes past the training rows")
    return Splits(train, test, folds)


def _write_splits(path: Path, splits: Splits) -> None:
    """Written whole or not at all (parallel jobs may write the same entry)."""
    from wtc.data.cache import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"train": splits.train, "test": splits.test, "n_folds": np.array(len(splits.folds))}
    for k, (fit, valid) in enumerate(splits.folds):
        arrays[f"fold{k}_train"], arrays[f"fold{k}_valid"] = fit, valid
    atomic_write(path, lambda out: np.savez(out, **arrays))


def _compute_splits(cv: CV, test_size: float, seed: int, y: np.ndarray, groups: np.ndarray,
                    dates: pd.Series | None) -> Splits:
    train, test = cv.holdout(y, groups, test_size, seed, dates)
    train_dates = dates.iloc[train] if cv.uses_dates and dates is not None else None
    return Splits(train, test, cv.folds(y[train], groups[train], seed, train_dates))
