"""Held-out test split and cross-validation folds that keep a workflow's tasks together."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

log = logging.getLogger(__name__)

CV_KINDS = ("stratified", "grouped", "temporal")


def holdout_split(
    y: np.ndarray, groups: np.ndarray, test_size: float, seed: int, dates: pd.Series | None = None,
    temporal: bool = False, by_task: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test rows; no workflow (group) is in both.

    The test share is ``test_size``, stratified by class over workflows (one fold of a
    ``StratifiedGroupKFold`` with ``round(1 / test_size)`` folds). With ``temporal`` the test
    rows are the latest workflows by request date instead. With ``by_task`` workflows are
    ignored (one fold of a ``StratifiedKFold``): a workflow's tasks may sit on both sides,
    which is optimistic and kept only to measure that optimism.
    """
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    if temporal:
        order = _workflows_by_date(groups, dates)
        n_test = max(1, int(round(len(order) * test_size)))
        test_groups = set(order[-n_test:])
        is_test = np.fromiter((g in test_groups for g in groups), dtype=bool, count=len(groups))
        return np.flatnonzero(~is_test), np.flatnonzero(is_test)
    n_splits = max(2, int(round(1 / test_size)))
    if by_task:
        train, test = next(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
        return train, test
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(y)), y, groups))
    return train, test


def cv_folds(
    kind: str, n_splits: int, y: np.ndarray, groups: np.ndarray, seed: int, dates: pd.Series | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) index pairs over the rows given (the training split).

    ``grouped``: StratifiedGroupKFold by workflow. ``stratified``: StratifiedKFold on tasks
    (workflows may straddle folds: optimistic, kept for comparison). ``temporal``: expanding
    window over workflows ordered by date; fold k trains on the first k blocks, validates on
    block k + 1.
    """
    if kind not in CV_KINDS:
        raise ValueError(f"unknown cv kind {kind!r}; choose one of {', '.join(CV_KINDS)}")
    if n_splits < 2:
        raise ValueError(f"cv.n_splits must be at least 2, got {n_splits}")
    X = np.zeros(len(y))
    if kind == "grouped":
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(X, y, groups)]
    if kind == "stratified":
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return [(tr, va) for tr, va in splitter.split(X, y)]
    order = _workflows_by_date(groups, dates)
    blocks = np.array_split(np.asarray(order, dtype=object), n_splits + 1)
    block_of = {g: b for b, members in enumerate(blocks) for g in members}
    block = np.fromiter((block_of[g] for g in groups), dtype=np.int64, count=len(groups))
    return [(np.flatnonzero(block <= k), np.flatnonzero(block == k + 1)) for k in range(n_splits)]


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
    kind: str, n_splits: int, test_size: float, seed: int, y: np.ndarray, groups: np.ndarray,
    dates: pd.Series | None = None, cache_dir: Path | str | None = None,
) -> Splits:
    """The held-out split and the CV folds a ``cv.kind`` asks for (``temporal``: both by date).

    Parameters
    ----------
    kind : {"stratified", "grouped", "temporal"}
        See :func:`cv_folds`; with ``temporal`` the test rows are the latest workflows too,
        with ``stratified`` the test rows are drawn by task (workflows may straddle the split).
    n_splits, test_size, seed
        Folds of the training split, test share, and the seed of the shuffles.
    y, groups, dates
        Labels, workflow of each row, and request dates (needed by ``temporal`` only).
    cache_dir : path, optional
        Keep the splits there (``<cache_dir>/splits/<key>.npz``) and read them back for the
        same inputs: StratifiedGroupKFold assigns workflows in a Python loop (~1.8 s for the
        default history's 2,600 workflows), while a sweep's jobs share a handful of splits.
        The key hashes every input and scikit-learn's version; an unreadable entry is
        computed again and rewritten. None: always compute.
    """
    if kind not in CV_KINDS:
        raise ValueError(f"unknown cv kind {kind!r}; choose one of {', '.join(CV_KINDS)}")
    if cache_dir is None:
        return _compute_splits(kind, n_splits, test_size, seed, y, groups, dates)
    path = Path(cache_dir) / "splits" / f"{_splits_key(kind, n_splits, test_size, seed, y, groups, dates)}.npz"
    try:
        return _read_splits(path, len(y))
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - any damage means "compute them again"
        log.warning("ignoring the splits cache entry %s (%s: %s); computing the splits again",
                    path, type(exc).__name__, exc)
    splits = _compute_splits(kind, n_splits, test_size, seed, y, groups, dates)
    try:
        _write_splits(path, splits)
    except OSError as exc:
        log.warning("could not keep the splits in %s (%s); computed them for this run only", path.parent, exc)
    return splits


def _splits_key(kind: str, n_splits: int, test_size: float, seed: int, y: np.ndarray, groups: np.ndarray,
                dates: pd.Series | None) -> str:
    digest = hashlib.sha256(f"splits-v1|sklearn {sklearn.__version__}|{kind}|{n_splits}|{test_size!r}|{seed}|"
                            f"{len(y)}".encode())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    digest.update("\x1f".join(map(str, groups)).encode())
    if kind == "temporal" and dates is not None:
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


def _compute_splits(kind: str, n_splits: int, test_size: float, seed: int, y: np.ndarray, groups: np.ndarray,
                    dates: pd.Series | None) -> Splits:
    temporal = kind == "temporal"
    train, test = holdout_split(y, groups, test_size, seed, dates, temporal=temporal, by_task=kind == "stratified")
    train_dates = dates.iloc[train] if temporal and dates is not None else None
    folds = cv_folds(kind, n_splits, y[train], groups[train], seed, train_dates)
    return Splits(train, test, folds)
