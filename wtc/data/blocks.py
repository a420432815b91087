"""The feature blocks of a history: raw cell views and derived per-task aggregates, as column parts.

Every block turns a :class:`~wtc.data.history.History` into a :class:`Part`: entry-level
triples ``(row, column, value)`` over the block's own column names. Duplicate triples are
summed when the part becomes a matrix, which is how views collapse sites into tiers or codes.

Every value is computed from one task's own error entries and name (row-local), except the
workflow-context blocks (:func:`over_workflow`, :func:`workflow_summary`), which sum the error
entries of the task's workflow: no block reads labels, and no block uses statistics across
workflows, so building features on the whole history and then splitting by workflow leaks no
value. Only the column *names* (which codes, sites,
campaigns exist) come from every row given; :func:`wtc.data.build_features` can learn them
from training rows only (``vocabulary_rows``) or reuse a training vocabulary (``vocabulary``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wtc.data.history import History
from wtc.data.vocabulary import site_tier

TIERS = ("T0", "T1", "T2", "T3", "unknown")
ROW_SUMMARY = ("total", "max", "codes", "sites", "bad_share_counts", "bad_share_cells")


@dataclass
class Part:
    """A block's columns: entry-level ``rows``/``cols``/``values`` (duplicates add up) and ``names``."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    names: list[str]


def unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` of non-negative integer keys; a key range not much
    wider than the keys is marked in a table instead of sorted (a served batch's cells: ~10x faster)."""
    keys = np.asarray(keys)
    if keys.size and keys.dtype.kind in "iu" and keys.min() >= 0 and keys.max() < 4 * keys.size + 65536:
        present = np.zeros(int(keys.max()) + 1, dtype=bool)
        present[keys] = True
        rank = np.cumsum(present) - 1  # each key's position among the distinct keys
        return np.flatnonzero(present).astype(keys.dtype), rank[keys]
    uniques, inverse = np.unique(keys, return_inverse=True)
    return uniques, inverse.reshape(-1)


def _grouped(rows: np.ndarray, keys: np.ndarray, values: np.ndarray, name_of) -> Part:
    """A part whose columns are the distinct ``keys`` (sorted), named by ``name_of(key array)``."""
    col_keys, cols = unique_inverse(keys)
    return Part(rows, cols, values.astype(np.float64), name_of(col_keys))


# --- views: the raw (status, code, site-axis) cells ----------------------------------------


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


def status_mask(history: History, statuses) -> np.ndarray:
    """Entries whose status is one of ``statuses`` (all entries for None)."""
    if statuses is None:
        return np.ones(history.nnz, dtype=bool)
    wanted = [history.statuses.index(s) for s in statuses if s in history.statuses]
    return np.isin(history.entry_status, wanted)


def cells(statuses, axis):
    """A view: the counts of the cells ``<status>:<code>:<site-axis>`` at ``statuses`` (None: all)."""

    def compute(history: History, keep: np.ndarray) -> Part:
        mine = status_mask(history, statuses)
        site_idx, site_names = axis(history)
        n_codes, n_sites = len(history.codes), len(site_names)
        # One integer key per cell, status-major: sorted keys order columns by status, then
        # code (numerically: history.codes is sorted so), then site.
        keys = (history.entry_status[mine].astype(np.int64) * n_codes + history.entry_code[mine]) * n_sites \
            + site_idx[mine]

        def names(col_keys):
            status, rest = np.divmod(col_keys, n_codes * n_sites)
            code, site = np.divmod(rest, n_sites)
            st, cd = history.statuses, history.codes
            return [f"{st[a]}:{cd[b]}:{site_names[c]}" for a, b, c in zip(status.tolist(), code.tolist(), site.tolist())]

        return _grouped(history.entry_task[mine], keys, history.entry_count[mine], names)

    return compute


# --- derived blocks over all statuses ------------------------------------------------------


def _status_code_keys(history: History) -> tuple[np.ndarray, callable]:
    n_codes = len(history.codes)
    keys = history.entry_status.astype(np.int64) * n_codes + history.entry_code

    def names(prefix):
        def name_of(col_keys):
            status, code = np.divmod(col_keys, n_codes)
            return [f"{prefix}:{history.statuses[a]}/{history.codes[b]}" for a, b in zip(status.tolist(), code.tolist())]
        return name_of

    return keys, names


def status_code_totals(history: History, keep: np.ndarray) -> Part:
    """``status_code_totals:<status>/<code>``: the (status, code) count summed over sites."""
    keys, names = _status_code_keys(history)
    return _grouped(history.entry_task, keys, history.entry_count, names("status_code_totals"))


def status_code_sites(history: History, keep: np.ndarray) -> Part:
    """``status_code_sites:<status>/<code>``: at how many sites the (status, code) occurred."""
    keys, names = _status_code_keys(history)
    # An entry is one (task, status, code, site) cell with a non-zero count: one site each.
    return _grouped(history.entry_task, keys, np.ones(history.nnz), names("status_code_sites"))


def code_totals(history: History, keep: np.ndarray) -> Part:
    """``code_totals:<code>``: the code's count summed over sites and statuses."""
    return _grouped(history.entry_task, history.entry_code.astype(np.int64), history.entry_count,
                    lambda k: [f"code_totals:{history.codes[c]}" for c in k.tolist()])


def site_totals(history: History, keep: np.ndarray) -> Part:
    """``site_totals:<site>``: the site's count summed over codes and statuses."""
    return _grouped(history.entry_task, history.entry_site.astype(np.int64), history.entry_count,
                    lambda k: [f"site_totals:{history.sites[s]}" for s in k.tolist()])


def _shares_of_task_total(history: History) -> np.ndarray:
    """Each entry's count as a share of its task's total count (over every status, code, site)."""
    counts = history.entry_count.astype(np.float64)
    total = np.bincount(history.entry_task, weights=counts, minlength=history.n_tasks)
    of_task = total[history.entry_task] if counts.size else counts
    return np.divide(counts, of_task, out=np.zeros_like(counts), where=of_task > 0)


def status_code_shares(history: History, keep: np.ndarray) -> Part:
    """``status_code_shares:<status>/<code>``: the (status, code) total over sites as a share of
    the task's total count. Scale-free: a workflow's job count multiplies every count of its
    tasks, and the shares (how operators read the table) do not move with it."""
    keys, names = _status_code_keys(history)
    return _grouped(history.entry_task, keys, _shares_of_task_total(history), names("status_code_shares"))


def site_shares(history: History, keep: np.ndarray) -> Part:
    """``site_shares:<site>``: the site's total over codes and statuses as a share of the task's total count."""
    return _grouped(history.entry_task, history.entry_site.astype(np.int64), _shares_of_task_total(history),
                    lambda k: [f"site_shares:{history.sites[s]}" for s in k.tolist()])


def distinct_pairs(first: np.ndarray, second: np.ndarray, return_counts: bool = False):
    """The ``first`` value of each distinct ``(first, second)`` pair of non-negative integers, in
    sorted pair order (and how often each pair occurs): ``np.unique(np.stack(...), axis=1)``'s
    first row, from a 1-D unique of one int64 key per pair (~10x faster than sorting pairs)."""
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    base = int(second.max()) + 1 if second.size else 1
    if return_counts:
        keys, counts = np.unique(first * base + second, return_counts=True)
        return keys // base, counts
    return unique_inverse(first * base + second)[0] // base


def _distinct_per_task(history: History, axis: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    rows = history.entry_task if mask is None else history.entry_task[mask]
    axis = axis if mask is None else axis[mask]
    if rows.size == 0:
        return np.zeros(history.n_tasks)
    return np.bincount(distinct_pairs(rows, axis), minlength=history.n_tasks).astype(np.float64)


def row_summary(history: History, keep: np.ndarray) -> Part:
    """``row_summary:<stat>``: total count, largest cell, distinct codes, distinct sites, and the
    share of the counts and of the cells at bad sites (0 for a task without errors)."""
    n, rows, counts = history.n_tasks, history.entry_task, history.entry_count.astype(np.float64)
    total = np.bincount(rows, weights=counts, minlength=n)
    largest = np.zeros(n)
    np.maximum.at(largest, rows, counts)
    n_cells = np.bincount(rows, minlength=n).astype(np.float64)
    bad = history.entry_status == history.statuses.index("bad") if "bad" in history.statuses \
        else np.zeros(history.nnz, dtype=bool)
    bad_counts = np.bincount(rows[bad], weights=counts[bad], minlength=n)
    bad_cells = np.bincount(rows[bad], minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_counts = np.where(total > 0, bad_counts / np.maximum(total, 1e-300), 0.0)
        share_cells = np.where(n_cells > 0, bad_cells / np.maximum(n_cells, 1.0), 0.0)
    stats = (total, largest, _distinct_per_task(history, history.entry_code),
             _distinct_per_task(history, history.entry_site), share_counts, share_cells)
    task = np.arange(n)
    return Part(np.tile(task, len(stats)), np.repeat(np.arange(len(stats)), n), np.concatenate(stats),
                [f"row_summary:{s}" for s in ROW_SUMMARY])


# --- workflow context: a block summed over the tasks of each task's workflow ------------------


def _workflow_of_task(history: History) -> tuple[np.ndarray, int]:
    """Each task's workflow index and the number of workflows."""
    index = history.workflow_ids  # computed once per history: three blocks need it
    return index, int(index.max()) + 1 if index.size else 0


def over_workflow(block, prefix: str):
    """A block summed over the tasks of each task's workflow (the task itself included), renamed ``<prefix>:<key>``.

    The one exception to row-locality: a task's value reads its siblings' error entries (never
    their labels). A workflow-grouped split keeps siblings on one side, so nothing crosses it;
    at serving time the siblings are the workflow's other tasks in the same history file.
    Tasks of one workflow share an error pattern (a signature code, sites, a job count): its
    siblings show a task's workflow's pattern more clearly than the task's own few counts.
    """

    def compute(history: History, keep: np.ndarray) -> Part:
        part = block(history, keep)
        workflow, n_workflows = _workflow_of_task(history)
        width = len(part.names)
        names = [f"{prefix}:{name.split(':', 1)[1]}" for name in part.names]
        if part.rows.size == 0:
            return Part(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), names)
        # The block's sum per (workflow, column): counts, so exact in float64 whatever the order.
        keys, inverse = unique_inverse(workflow[part.rows] * width + part.cols)
        sums = np.bincount(inverse, weights=part.values)
        key_workflow, key_col = np.divmod(keys, width)
        # Each sum goes to every task of its workflow: the tasks grouped by workflow, the j-th
        # copy of a key to the j-th task of its group.
        members = np.argsort(workflow, kind="stable")
        group_size = np.bincount(workflow, minlength=n_workflows)
        group_start = np.cumsum(group_size) - group_size
        copies = group_size[key_workflow]
        key_of = np.repeat(np.arange(keys.size), copies)
        within = np.arange(key_of.size) - np.repeat(np.cumsum(copies) - copies, copies)
        rows = members[group_start[key_workflow][key_of] + within]
        return Part(rows.astype(np.int64), key_col[key_of].astype(np.int64), sums[key_of], names)

    return compute


def _workflow_totals(history: History, workflow: np.ndarray, n_workflows: int) -> np.ndarray:
    """Per workflow: its tasks' total count (every status, code, site)."""
    return np.bincount(workflow[history.entry_task], weights=history.entry_count.astype(np.float64),
                       minlength=n_workflows)


def workflow_code_shares(history: History, keep: np.ndarray) -> Part:
    """``workflow_code_shares:<status>/<code>``: the (status, code) count summed over the task's
    workflow as a share of the workflow's total count (every status, code, site). Scale-free: a
    workflow's job count multiplies its counts, not their shares; the share of the failures an
    error makes up is how operators read a workflow (reads the siblings' entries, never labels)."""
    part = over_workflow(status_code_totals, "workflow_code_shares")(history, keep)
    workflow, n_workflows = _workflow_of_task(history)
    total = _workflow_totals(history, workflow, n_workflows)[workflow[part.rows]]
    return Part(part.rows, part.cols, np.divide(part.values, total, out=np.zeros_like(part.values), where=total > 0),
                part.names)


def workflow_summary(history: History, keep: np.ndarray) -> Part:
    """``workflow_summary:<stat>``: the tasks of the task's workflow in this history, their total
    count, and the task's share of that total."""
    workflow, n_workflows = _workflow_of_task(history)
    n = history.n_tasks
    total = np.bincount(history.entry_task, weights=history.entry_count.astype(np.float64), minlength=n)
    per_workflow = _workflow_totals(history, workflow, n_workflows)[workflow]
    tasks = np.bincount(workflow, minlength=n_workflows)[workflow].astype(np.float64) if n else total
    share = np.divide(total, per_workflow, out=np.zeros(n), where=per_workflow > 0)
    stats = (tasks, per_workflow, share)
    return Part(np.tile(np.arange(n), len(stats)), np.repeat(np.arange(len(stats)), n), np.concatenate(stats),
                [f"workflow_summary:{s}" for s in ("tasks", "total", "task_share")])


WORKFLOW_SHAPE = ("cells_per_task", "codes", "sites", "bad_share_cells", "log_count", "task_log_count",
                  "top_code_cells", "top_site_cells")


def _top_share(workflow: np.ndarray, axis: np.ndarray, n_workflows: int, cells: np.ndarray) -> np.ndarray:
    """Per workflow: the share of its cells on its commonest value of ``axis`` (code or site)."""
    first, count = distinct_pairs(workflow, axis, return_counts=True)
    top = np.zeros(n_workflows)
    np.maximum.at(top, first, count)
    return np.divide(top, cells, out=np.zeros(n_workflows), where=cells > 0)


def workflow_shape(history: History, keep: np.ndarray) -> Part:
    """``workflow_shape:<stat>``: the error pattern of the task's workflow, pooled over its tasks, by
    cells rather than counts (one heavy count weighs as much as a light one).

    Its active cells per task, distinct codes and sites, the share of its cells at bad sites, the
    mean log count of a cell (its count level, which the job count sets), this task's mean log
    count minus that (the task's level within its workflow: count-scale free) and the shares of
    its cells on its commonest code and on its commonest site (how much a signature code and a
    short site list dominate it). Reads the siblings' entries, never their labels.
    """
    n = history.n_tasks
    workflow, n_workflows = _workflow_of_task(history)
    entry_wf = workflow[history.entry_task]
    tasks = np.bincount(workflow, minlength=n_workflows).astype(np.float64)
    cells = np.bincount(entry_wf, minlength=n_workflows).astype(np.float64)
    distinct = [np.bincount(distinct_pairs(entry_wf, axis), minlength=n_workflows).astype(np.float64)
                for axis in (history.entry_code, history.entry_site)] if entry_wf.size else [cells, cells]
    bad = history.entry_status == history.statuses.index("bad") if "bad" in history.statuses \
        else np.zeros(history.nnz, dtype=bool)
    log_count = np.log(np.maximum(history.entry_count.astype(np.float64), 1.0))
    wf_log = np.divide(np.bincount(entry_wf, weights=log_count, minlength=n_workflows), cells,
                       out=np.zeros(n_workflows), where=cells > 0)
    task_cells = np.bincount(history.entry_task, minlength=n).astype(np.float64)
    task_log = np.divide(np.bincount(history.entry_task, weights=log_count, minlength=n), task_cells,
                         out=np.zeros(n), where=task_cells > 0)
    per_wf = [np.divide(cells, tasks, out=np.zeros(n_workflows), where=tasks > 0), *distinct,
              np.divide(np.bincount(entry_wf[bad], minlength=n_workflows), cells, out=np.zeros(n_workflows),
                        where=cells > 0), wf_log]
    tops = [_top_share(entry_wf, axis, n_workflows, cells) for axis in (history.entry_code, history.entry_site)] \
        if entry_wf.size else [cells, cells]
    stats = [v[workflow] for v in per_wf] + [np.where(task_cells > 0, task_log - wf_log[workflow], 0.0)] + \
        [v[workflow] for v in tops]
    return Part(np.tile(np.arange(n), len(stats)), np.repeat(np.arange(len(stats)), n), np.concatenate(stats),
                [f"workflow_shape:{s}" for s in WORKFLOW_SHAPE])


def one_hot(prefix: str, attribute: str):
    """A one-hot block ``<prefix>:<value>`` of a per-task attribute of the history."""

    def compute(history: History, keep: np.ndarray) -> Part:
        values = getattr(history, attribute)
        distinct = sorted(set(values))
        index = {v: i for i, v in enumerate(distinct)}
        cols = np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values))
        return Part(np.arange(len(values)), cols, np.ones(len(values)), [f"{prefix}:{v}" for v in distinct])

    return compute


# --- the original extras: counted over the view's statuses (``keep``) -----------------------


def legacy_total(history: History, keep: np.ndarray) -> Part:
    """``total:errors``: the view's total count (over the view's statuses)."""
    return Part(history.entry_task[keep], np.zeros(int(keep.sum()), np.int64),
                history.entry_count[keep].astype(np.float64), ["total:errors"])


def legacy_distinct(axis_name: str):
    """``n:sites`` / ``n:codes``: distinct sites or codes among the view's statuses."""

    def compute(history: History, keep: np.ndarray) -> Part:
        axis = history.entry_site if axis_name == "sites" else history.entry_code
        return Part(np.arange(history.n_tasks), np.zeros(history.n_tasks, np.int64),
                    _distinct_per_task(history, axis, keep), [f"n:{axis_name}"])

    return compute
