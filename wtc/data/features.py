"""Feature views of a history: sparse CSR matrices of exit-code counts per site, tier or status."""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from wtc.data.history import History
from wtc.data.vocabulary import site_tier

log = logging.getLogger(__name__)

TIERS = ("T0", "T1", "T2", "T3", "unknown")
EXTRAS = ("campaign", "task_type", "total", "n_sites", "n_codes")


class FeatureNames(list):
    """The column names of a feature matrix, plus what a reused vocabulary had to drop.

    ``dropped`` counts, by kind, the error entries and extra values of the history that have
    no column in the vocabulary (codes or sites never seen in training): they are left out.
    """

    def __init__(self, names, dropped: dict | None = None):
        super().__init__(names)
        self.dropped = dropped or {}


def _site_axis(history: History) -> tuple[np.ndarray, list[str]]:
    """Each entry's site index and the site names (the identity axis)."""
    return history.entry_site, history.sites


def _tier_axis(history: History) -> tuple[np.ndarray, list[str]]:
    tier_of_site = np.array([TIERS.index(site_tier(s)) for s in history.sites], dtype=np.int32)
    if tier_of_site.size == 0:
        return np.zeros(0, np.int32), list(TIERS)
    return tier_of_site[history.entry_site], list(TIERS)


def _no_axis(history: History) -> tuple[np.ndarray, list[str]]:
    return np.zeros(history.nnz, dtype=np.int32), ["*"]


# A view = which statuses it keeps and what the site axis becomes. One entry per view, so a
# new view is one line here (and one YAML file in conf/data).
VIEWS: dict[str, tuple[Sequence[str] | None, Callable[[History], tuple[np.ndarray, list[str]]]]] = {
    "good": (("good",), _site_axis),
    "bad": (("bad",), _site_axis),
    "combined": (None, _site_axis),  # every status side by side (good, bad, then others)
    "tiers": (None, _tier_axis),
    "codes": (None, _no_axis),
}


def build_features(
    history: History,
    view: str = "combined",
    vocabulary: Sequence[str] | None = None,
    extras: Sequence[str] = (),
) -> tuple[sp.csr_matrix, FeatureNames]:
    """Featurise a history into a sparse matrix, one row per task.

    Parameters
    ----------
    history : History
        From :func:`wtc.data.load_history`.
    view : str
        ``good`` or ``bad`` (the code × site counts at sites of that status), ``combined``
        (every status side by side), ``tiers`` (sites collapsed to T0–T3 × status) or
        ``codes`` (sites summed out: code × status).
    vocabulary : sequence of str, optional
        Feature names of a training matrix to reproduce exactly (column for column). Entries
        of ``history`` without a column are dropped and counted in ``names.dropped``.
    extras : sequence of str
        Extra columns: ``campaign`` (one-hot ``campaign:<name>``), ``task_type``
        (``tasktype:<name>``), ``total`` (``total:errors``), ``n_sites`` (``n:sites``),
        ``n_codes`` (``n:codes``); the last three count over the view's statuses.

    Returns
    -------
    X : scipy.sparse.csr_matrix of float32, shape (n_tasks, n_features)
    names : FeatureNames
        ``"<status>:<code>:<site>"`` per error column (``tiers`` uses the tier as site,
        ``codes`` uses ``*``), then the extra columns.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of {', '.join(VIEWS)}")
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ValueError(f"unknown extra feature(s) {unknown}; choose from {', '.join(EXTRAS)}")
    keep_statuses, axis = VIEWS[view]
    keep = np.ones(history.nnz, dtype=bool)
    if keep_statuses is not None:
        wanted = [history.statuses.index(s) for s in keep_statuses if s in history.statuses]
        keep = np.isin(history.entry_status, wanted)
    site_idx, site_names = axis(history)
    n_codes, n_sites = len(history.codes), len(site_names)
    # One integer key per (status, code, site) cell, ordered status-major: sorting the keys
    # orders columns by status, then code (numerically), then site.
    keys = (history.entry_status[keep].astype(np.int64) * n_codes + history.entry_code[keep]) * n_sites + site_idx[keep]
    rows = history.entry_task[keep]
    counts = history.entry_count[keep]

    def key_names(col_keys: np.ndarray) -> list[str]:
        status, rest = np.divmod(col_keys, n_codes * n_sites)
        code, site = np.divmod(rest, n_sites)
        st, cd = history.statuses, history.codes
        return [f"{st[a]}:{cd[b]}:{site_names[c]}" for a, b, c in zip(status.tolist(), code.tolist(), site.tolist())]

    dropped: dict[str, int] = {}
    if vocabulary is None:
        col_keys = np.unique(keys)
        error_names = key_names(col_keys)
        cols = np.searchsorted(col_keys, keys)
        error_x = _csr(rows, cols, counts, history.n_tasks, len(col_keys))
        extra_x, extra_names = _extras(history, keep, rows, counts, extras, None, dropped)
        names = error_names + extra_names
    else:
        vocabulary = list(vocabulary)
        col_of_key = _vocabulary_keys(vocabulary, history, site_names)
        vocab_keys = np.fromiter(col_of_key, dtype=np.int64, count=len(col_of_key))
        order = np.argsort(vocab_keys)
        vocab_keys = vocab_keys[order]
        vocab_cols = np.fromiter(col_of_key.values(), dtype=np.int64, count=len(col_of_key))[order]
        pos = np.searchsorted(vocab_keys, keys)
        found = (pos < vocab_keys.size) & (vocab_keys[np.minimum(pos, max(vocab_keys.size - 1, 0))] == keys) \
            if vocab_keys.size else np.zeros(keys.size, dtype=bool)
        if (~found).any():
            dropped["error_entries"] = int((~found).sum())
            dropped["error_counts"] = int(counts[~found].sum())
        error_x = _csr(rows[found], vocab_cols[pos[found]], counts[found], history.n_tasks, len(vocabulary))
        extra_x, _ = _extras(history, keep, rows, counts, extras, vocabulary, dropped)
        names = vocabulary
        if extra_x is not None:
            error_x = error_x + extra_x
            extra_x = None
    X = error_x if extra_x is None else sp.hstack([error_x, extra_x], format="csr", dtype=np.float32)
    if dropped:
        log.warning("features of %s: dropped what the vocabulary has no column for: %s", history.path, dropped)
    return X.tocsr(), FeatureNames(names, dropped)


def _csr(rows, cols, values, n_rows: int, n_cols: int) -> sp.csr_matrix:
    # COO -> CSR sums duplicates, which is how tiers/codes aggregate several sites into a cell.
    matrix = sp.coo_matrix((values.astype(np.float32), (rows, cols)), shape=(n_rows, n_cols)).tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


def _vocabulary_keys(vocabulary: list[str], history: History, site_names: list[str]) -> dict[int, int]:
    """Map each error column of a vocabulary to this history's cell key (absent ones skipped)."""
    status_pos = {s: i for i, s in enumerate(history.statuses)}
    code_pos = {c: i for i, c in enumerate(history.codes)}
    site_pos = {s: i for i, s in enumerate(site_names)}
    n_codes, n_sites = len(history.codes), len(site_names)
    col_of_key = {}
    for col, name in enumerate(vocabulary):
        parts = name.split(":")
        if len(parts) != 3:
            continue
        status, code, site = parts
        if status in status_pos and code in code_pos and site in site_pos:
            col_of_key[(status_pos[status] * n_codes + code_pos[code]) * n_sites + site_pos[site]] = col
    return col_of_key


def _extras(history, keep, rows, counts, extras, vocabulary, dropped):
    """Extra columns; with a vocabulary they are placed at its columns (unseen values dropped)."""
    if not extras:
        return None, []
    n = history.n_tasks
    columns: list[tuple[str, np.ndarray, np.ndarray]] = []  # (name, row indices, values)
    for extra in extras:
        if extra in ("campaign", "task_type"):
            prefix, values = ("campaign", history.campaigns) if extra == "campaign" else ("tasktype", history.task_types)
            by_value: dict[str, list[int]] = {}
            for i, v in enumerate(values):
                by_value.setdefault(v, []).append(i)
            for v in sorted(by_value):
                idx = np.asarray(by_value[v])
                columns.append((f"{prefix}:{v}", idx, np.ones(idx.size, np.float32)))
        elif extra == "total":
            columns.append(("total:errors", np.arange(n), np.bincount(rows, weights=counts, minlength=n)))
        else:
            axis = history.entry_site if extra == "n_sites" else history.entry_code
            pairs = np.unique(np.stack([rows.astype(np.int64), axis[keep].astype(np.int64)]), axis=1)
            columns.append(("n:sites" if extra == "n_sites" else "n:codes", np.arange(n),
                            np.bincount(pairs[0], minlength=n)))
    if vocabulary is None:
        names = [c[0] for c in columns]
        col_index = {name: i for i, name in enumerate(names)}
        width = len(names)
    else:
        col_index = {name: i for i, name in enumerate(vocabulary)}
        names, width = [], len(vocabulary)
    r, c, v = [], [], []
    for name, idx, values in columns:
        if name not in col_index:
            dropped[name] = int(len(idx))
            continue
        r.append(idx)
        c.append(np.full(len(idx), col_index[name]))
        v.append(np.asarray(values, dtype=np.float32))
    if not r:
        return sp.csr_matrix((n, width), dtype=np.float32), names
    return _csr(np.concatenate(r), np.concatenate(c), np.concatenate(v), n, width), names
