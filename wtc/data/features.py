"""Feature views and blocks of a history, composed into one sparse CSR matrix, one row per task."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from wtc.data import blocks as b
from wtc.data import category_blocks
from wtc.data.history import History

log = logging.getLogger(__name__)

TIERS = b.TIERS
LOG_SUFFIX = ".log1p"


class FeatureNames(list):
    """The column names of a feature matrix, plus what a reused vocabulary had to drop.

    ``dropped`` counts, by kind, what the history has and the vocabulary has no column for
    (codes, sites, campaigns never seen in training): views count ``error_entries`` and
    ``error_counts``, count blocks ``<block>:entries`` and ``<block>:counts``, one-hot blocks
    the rows of each unseen ``<prefix>:<value>``. Those values are left out.
    """

    def __init__(self, names, dropped: dict | None = None):
        super().__init__(names)
        self.dropped = dropped or {}


@dataclass(frozen=True)
class Block:
    """One entry of the feature table.

    compute : (history, view entry mask) -> :class:`wtc.data.blocks.Part`
    kind : ``view`` (raw cells; the view's statuses fix the mask legacy extras count over),
        ``counts`` (may be log-scaled) or ``one_hot`` (drops are counted per value).
    statuses : the statuses a view keeps (None: all); ignored for other kinds.
    axis : a view's site axis, ``history -> (site index of each entry, axis names)``.
    """

    compute: Callable[[History, np.ndarray], b.Part]
    kind: str = "counts"
    statuses: Sequence[str] | None = None
    axis: Callable | None = None


# The one table of views and blocks: a new block is one entry here (and, for a view, one YAML
# file in conf/data). Any entry may be the view or one of the extras; ``<name>.log1p`` scales
# a count entry by log(1 + x) after summing.
BLOCKS: dict[str, Block] = {
    # views: the counts of every (status, code, site-axis) cell
    "good": Block(b.cells(("good",), b._site_axis), "view", ("good",), b._site_axis),
    "bad": Block(b.cells(("bad",), b._site_axis), "view", ("bad",), b._site_axis),
    "combined": Block(b.cells(None, b._site_axis), "view", None, b._site_axis),  # every status side by side
    "tiers": Block(b.cells(None, b._tier_axis), "view", None, b._tier_axis),  # sites collapsed to T0-T3/unknown
    "codes": Block(b.cells(None, b._no_axis), "view", None, b._no_axis),  # sites summed out
    # derived blocks, over every status whatever the view
    "status_code_totals": Block(b.status_code_totals),
    "status_code_sites": Block(b.status_code_sites),
    "code_totals": Block(b.code_totals),
    "site_totals": Block(b.site_totals),
    "row_summary": Block(b.row_summary),
    # scale-free: shares of the task's total count
    "status_code_shares": Block(b.status_code_shares),
    "site_shares": Block(b.site_shares),
    # workflow context: summed over the task's workflow (siblings' entries, never their labels)
    "workflow_code_totals": Block(b.over_workflow(b.status_code_totals, "workflow_code_totals")),
    "workflow_site_totals": Block(b.over_workflow(b.site_totals, "workflow_site_totals")),
    "workflow_summary": Block(b.workflow_summary),
    # the workflow's pattern by cells, not counts, and its count level (issue 23's levers)
    "workflow_code_cells": Block(b.over_workflow(b.status_code_sites, "workflow_code_cells")),
    "workflow_shape": Block(b.workflow_shape),
    "workflow_code_shares": Block(b.workflow_code_shares),  # the workflow's (status, code) counts as shares
    # by the CMS vocabulary's code category (memory, time, site, input, ...): the task's shares, its workflow's
    "category_shares": Block(category_blocks.category_shares),
    "workflow_categories": Block(category_blocks.workflow_categories),
    "task_type": Block(b.one_hot("task_type", "task_types"), "one_hot"),
    "campaign": Block(b.one_hot("campaign", "campaigns"), "one_hot"),
    # the first extras, counted over the view's statuses only (kept for existing configs)
    "total": Block(b.legacy_total),
    "n_sites": Block(b.legacy_distinct("sites")),
    "n_codes": Block(b.legacy_distinct("codes")),
}
VIEWS = tuple(name for name, block in BLOCKS.items() if block.kind == "view")
EXTRAS = tuple(name for name, block in BLOCKS.items() if block.kind != "view")


def _parse(spec: str, what: str) -> tuple[str, bool]:
    name, scaled = (spec[: -len(LOG_SUFFIX)], True) if spec.endswith(LOG_SUFFIX) else (spec, False)
    if name not in BLOCKS:
        choices = VIEWS if what == "view" else tuple(BLOCKS)
        noun = "view" if what == "view" else "extra feature(s)"
        raise ValueError(f"unknown {noun} {spec!r}; choose one of {', '.join(choices)} (optionally + {LOG_SUFFIX!r})")
    if scaled and BLOCKS[name].kind == "one_hot":
        raise ValueError(f"{spec!r}: a one-hot block has nothing to log-scale")
    return name, scaled


def build_features(
    history: History,
    view: str = "combined",
    vocabulary: Sequence[str] | None = None,
    extras: Sequence[str] = (),
    vocabulary_rows: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, FeatureNames]:
    """Featurise a history into a sparse matrix, one row per task: a view and further blocks.

    Every value is computed from the task's own errors and name, or for the workflow-context
    blocks from the errors of its workflow's tasks (never from labels, never across workflows),
    so building on the whole history and splitting by workflow afterwards leaks no value. The
    column *names* are learned from all rows unless ``vocabulary_rows`` or ``vocabulary`` says
    otherwise: a column that only test rows have is all-zero in training, so it carries nothing
    a model could learn, but the strict way is ``vocabulary_rows=train``.

    Parameters
    ----------
    history : History
        From :func:`wtc.data.load_history`.
    view : str
        The first entry of :data:`BLOCKS`: ``good`` or ``bad`` (the code × site counts at sites
        of that status), ``combined`` (every status side by side), ``tiers`` (sites collapsed to
        T0–T3 × status) or ``codes`` (sites summed out: code × status); any block name works.
    vocabulary : sequence of str, optional
        Feature names of a training matrix to reproduce exactly (column for column). Entries
        of ``history`` without a column are dropped and counted in ``names.dropped``.
    extras : sequence of str
        Further entries of :data:`BLOCKS`, in order: ``status_code_totals``,
        ``status_code_sites`` (sites per status and code), ``code_totals``, ``site_totals``,
        ``row_summary`` (total, max, distinct codes and sites, bad share of counts and cells),
        ``status_code_shares`` and ``site_shares`` (those totals as shares of the task's total),
        ``workflow_code_totals``, ``workflow_site_totals`` and ``workflow_summary`` (the workflow's
        context: totals over the tasks of the task's workflow; its tasks, total and this task's share),
        ``workflow_code_cells`` (the workflow's cells per status and code) and ``workflow_shape``
        (its cells per task, distinct codes and sites, bad share of cells, mean log count, this
        task's mean log count relative to it, commonest code's and site's share of its cells),
        ``workflow_code_shares`` (the workflow's (status, code) counts as shares of its total),
        ``category_shares`` and ``workflow_categories`` (the same by the vocabulary's code category:
        the task's shares of its count and cells; the workflow's shares and cells),
        ``task_type`` and ``campaign`` (one-hots), any other view, and the first extras
        ``total`` (``total:errors``), ``n_sites`` (``n:sites``), ``n_codes`` (``n:codes``)
        that count over the view's statuses only. ``<entry>.log1p`` log-scales an entry.
    vocabulary_rows : array of int or bool, optional
        Learn the column names from these rows only (e.g. the training split); values of the
        other rows without a column are dropped and counted. Ignored with ``vocabulary``.

    Returns
    -------
    X : scipy.sparse.csr_matrix of float32, shape (n_tasks, n_features)
    names : FeatureNames
        ``"<status>:<code>:<site>"`` per view column (``tiers`` uses the tier as site,
        ``codes`` uses ``*``), ``"<block>:<key>"`` per block column (``status_code_totals:
        bad/50660``, ``row_summary:max``, ``campaign:<name>``), in the order of the entries.
    """
    specs = [_parse(view, "view")] + [_parse(e, "extra") for e in extras]
    seen = [name for name, _ in specs]
    if len(set(seen)) != len(seen):
        raise ValueError(f"an entry appears twice in view + extras: {seen}")
    if vocabulary is None and vocabulary_rows is not None:
        X, names = build_features(history, view, extras=extras)
        fit_rows = np.zeros(history.n_tasks, dtype=bool)
        fit_rows[np.asarray(vocabulary_rows)] = True
        used = np.diff(X[fit_rows].tocsc().indptr) > 0
        vocabulary = [n for n, u in zip(names, used) if u]
    keep = b.status_mask(history, BLOCKS[specs[0][0]].statuses)
    col_index = None if vocabulary is None else {name: i for i, name in enumerate(vocabulary)}
    dropped: dict[str, int] = {}
    matrices, names = [], []
    for name, scaled in specs:
        block = BLOCKS[name]
        part = block.compute(history, keep)
        if col_index is None:
            width, rows, cols, values = len(part.names), part.rows, part.cols, part.values
            names.extend(part.names)
        else:
            width = len(vocabulary)
            target = np.array([col_index.get(n, -1) for n in part.names], dtype=np.int64)
            mapped = target[part.cols] if part.cols.size else np.zeros(0, np.int64)
            found = mapped >= 0
            _count_dropped(dropped, name, block, part, found)
            rows, cols, values = part.rows[found], mapped[found], part.values[found]
        matrix = _csr(rows, cols, values, history.n_tasks, width)
        if scaled:
            np.log1p(matrix.data, out=matrix.data)
        matrices.append(matrix)
    if col_index is None:
        if len(set(names)) != len(names):
            raise ValueError(f"entries {seen} produce duplicate column names")
        X = sp.hstack(matrices, format="csr", dtype=np.float32) if matrices else sp.csr_matrix((history.n_tasks, 0))
    else:
        names = list(vocabulary)
        X = _disjoint_sum(matrices, history.n_tasks, len(vocabulary))
    if dropped:
        log.warning("features of %s: dropped what the vocabulary has no column for: %s", history.path, dropped)
    return X.tocsr().astype(np.float32), FeatureNames(names, dropped)


def _count_dropped(dropped: dict, name: str, block: Block, part: b.Part, found: np.ndarray) -> None:
    lost = ~found
    if not lost.any():
        return
    if block.kind == "one_hot":
        for col in np.unique(part.cols[lost]).tolist():
            dropped[part.names[col]] = dropped.get(part.names[col], 0) + int((part.cols[lost] == col).sum())
        return
    entries, counts = ("error_entries", "error_counts") if block.kind == "view" else (f"{name}:entries", f"{name}:counts")
    dropped[entries] = dropped.get(entries, 0) + int(lost.sum())
    dropped[counts] = dropped.get(counts, 0) + int(part.values[lost].sum())


def _disjoint_sum(matrices: list[sp.csr_matrix], n_rows: int, n_cols: int) -> sp.csr_matrix:
    """The sum of matrices that fill disjoint columns (each block its own vocabulary columns): their
    entries side by side in one CSR, in one pass instead of a sparse addition per block."""
    coo = [m.tocoo() for m in matrices]
    rows = np.concatenate([c.row for c in coo])
    cols = np.concatenate([c.col for c in coo])
    values = np.concatenate([c.data for c in coo])
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(n_rows, n_cols))
    matrix.sum_duplicates()  # none to sum (disjoint columns): sorts each row's columns, as addition did
    return matrix


def _csr(rows, cols, values, n_rows: int, n_cols: int) -> sp.csr_matrix:
    # COO -> CSR sums duplicates, which is how tiers/codes aggregate several sites into a cell.
    matrix = sp.coo_matrix((np.asarray(values, dtype=np.float64), (rows, cols)), shape=(n_rows, n_cols)).tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix
