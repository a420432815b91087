"""Permutation importance of groups of columns: all columns of one exit code, site or status together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from matplotlib.figure import Figure
from sklearn.metrics import check_scoring
from sklearn.utils import check_random_state

__all__ = [
    "feature_groups",
    "feature_importance_figure",
    "importance_figure",
    "permutation_importance_by_group",
]

#: Which part of an error column name ``"<status>:<code>:<site>"`` each kind of group uses.
_PART = {"status": 0, "code": 1, "site": 2}


def feature_groups(feature_names: Sequence[str], kind: str) -> dict[str, np.ndarray]:
    """Column indices of each group of one kind.

    Parameters
    ----------
    feature_names : sequence of str
        Column names. Error columns are ``"<status>:<code>:<site>"``; any other name (extra
        columns such as ``total:errors``, ``n:sites``, ``campaign:<name>``) is a group of
        its own, under its full name.
    kind : {"code", "site", "status"}
        Group error columns by exit code, by site, or by site status.

    Returns
    -------
    dict of str to numpy.ndarray of int
        Group name to its column indices, groups in order of first appearance.
    """
    if kind not in _PART:
        raise ValueError(f"unknown group kind {kind!r}; choose from {', '.join(_PART)}")
    groups: dict[str, list[int]] = {}
    for col, name in enumerate(feature_names):
        parts = str(name).split(":")
        key = parts[_PART[kind]] if len(parts) == 3 else str(name)
        groups.setdefault(key, []).append(col)
    return {key: np.asarray(cols, dtype=np.intp) for key, cols in groups.items()}


def _permute_columns(X, cols: np.ndarray, rows: np.ndarray):
    """X with the sub-matrix of ``cols`` replaced by its rows in the order ``rows``.

    Sparse X stays sparse: only the group's columns are copied, never the whole matrix
    densified, so a 7k-column error table costs what its non-zeros cost.
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        sub = X[:, cols].tocsr()
        # The group's sub-matrix placed back at its own column positions in the full width.
        group = sp.csr_matrix((sub.data, cols[sub.indices], sub.indptr), shape=X.shape)
        keep = np.ones(X.shape[1], dtype=X.dtype)
        keep[cols] = 0
        rest = (X @ sp.diags(keep, format="csr")).tocsr()
        permuted = rest + group[rows]
        permuted.eliminate_zeros()
        return permuted
    X = np.array(X, copy=True)
    X[:, cols] = X[np.ix_(rows, cols)]
    return X


def permutation_importance_by_group(
    estimator,
    X,
    y,
    feature_names: Sequence[str],
    groups: Sequence[str] = ("code", "site"),
    scoring=None,
    n_repeats: int = 5,
    random_state=None,
    max_features: int | None = None,
) -> pd.DataFrame:
    """Drop in score when all columns of a group are shuffled together across rows.

    scikit-learn's ``permutation_importance`` shuffles one column at a time; an exit code
    spread over 60 site columns (or a site over 40 codes) then looks unimportant because
    each single column carries little. Here each group's columns are shuffled jointly (the
    same row permutation for all of them), which keeps the group's internal structure and
    breaks only its link to the label and to the other columns.

    Parameters
    ----------
    estimator : fitted estimator
        Scored with ``scoring`` on (possibly permuted) ``X`` and ``y``.
    X : array-like or scipy.sparse matrix, shape (n_samples, n_features)
        Rows to score on, usually held-out ones. Sparse input is permuted in CSR form.
    y : array-like, shape (n_samples,)
        True labels.
    feature_names : sequence of str
        Name of each column, see :func:`feature_groups`.
    groups : sequence of {"code", "site", "status"}, default ("code", "site")
        Kinds of grouping, each evaluated over all columns.
    scoring : str, callable or None
        As for :func:`sklearn.metrics.check_scoring` (None: the estimator's ``score``).
    n_repeats : int, default 5
        Permutations per group.
    random_state : int, numpy.random.RandomState or None
        Seeds the permutations.
    max_features : int or None
        Per kind, permute only this many groups, those with the most non-zero entries in
        ``X``; the others are left out of the table. None: every group.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``group``, ``importance_mean``, ``importance_std`` (over the
        repeats: baseline score minus permuted score, so positive means the group helps),
        ``n_columns`` and ``nnz`` (non-zero entries of the group in ``X``); sorted by kind,
        then by decreasing importance. ``attrs`` holds ``scoring`` and the ``baseline``
        score. A group with no non-zero entries is not scored: shuffling zeros changes
        nothing, its importance is exactly 0.
    """
    if X.shape[1] != len(feature_names):
        raise ValueError(f"X has {X.shape[1]} columns but there are {len(feature_names)} feature names")
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        nnz_per_col = np.bincount(X.indices, minlength=X.shape[1])
    else:
        X = np.asarray(X)
        nnz_per_col = np.count_nonzero(X, axis=0)
    scorer = check_scoring(estimator, scoring=scoring)
    rng = check_random_state(random_state)
    baseline = float(scorer(estimator, X, y))
    n_rows = X.shape[0]
    records = []
    for kind in groups:
        by_group = feature_groups(feature_names, kind)
        nnz = {name: int(nnz_per_col[cols].sum()) for name, cols in by_group.items()}
        names = sorted(by_group, key=lambda g: -nnz[g])
        if max_features is not None:
            names = names[:max_features]
        for name in names:
            cols = by_group[name]
            drops = np.zeros(n_repeats)
            if nnz[name]:
                for r in range(n_repeats):
                    permuted = _permute_columns(X, cols, rng.permutation(n_rows))
                    drops[r] = baseline - float(scorer(estimator, permuted, y))
            records.append((kind, name, drops.mean(), drops.std(), cols.size, nnz[name]))
    table = pd.DataFrame.from_records(
        records, columns=["kind", "group", "importance_mean", "importance_std", "n_columns", "nnz"]
    )
    kind_order = {kind: i for i, kind in enumerate(groups)}
    table = table.sort_values(
        ["kind", "importance_mean"], ascending=[True, False],
        key=lambda s: s.map(kind_order) if s.name == "kind" else s, kind="stable",
    ).reset_index(drop=True)
    label = scoring if isinstance(scoring, str) else getattr(scoring, "__name__", None) if scoring is not None else "score"
    table.attrs.update(scoring=label or "score", baseline=baseline)
    return table


def importance_figure(importances: pd.DataFrame, top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` most important groups, one panel per kind.

    Parameters
    ----------
    importances : pandas.DataFrame
        As returned by :func:`permutation_importance_by_group`.
    top : int, default 20
        Groups shown per kind, most important first.

    Returns
    -------
    matplotlib.figure.Figure
        Error bars are one standard deviation over the repeats.
    """
    kinds = list(dict.fromkeys(importances["kind"]))
    scoring = importances.attrs.get("scoring", "score")
    baseline = importances.attrs.get("baseline")
    rows = max([min(top, int((importances["kind"] == k).sum())) for k in kinds] or [1])
    fig = Figure(figsize=(5.5 * max(len(kinds), 1), max(3.0, 0.3 * rows + 1.8)), layout="constrained")
    for i, kind in enumerate(kinds):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        part = importances[importances["kind"] == kind]
        shown = part.nlargest(top, "importance_mean")
        y = np.arange(len(shown))
        ax.barh(y, shown["importance_mean"], xerr=shown["importance_std"], color=f"C{i}",
                error_kw={"lw": 1, "capsize": 2})
        ax.set_yticks(y, [f"{g} ({c} col{'s' if c > 1 else ''})" for g, c in zip(shown["group"], shown["n_columns"])],
                      fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="grey", lw=0.8)
        ax.set(xlabel=f"Drop in {scoring} when shuffled", ylabel=kind,
               title=f"By {kind}: top {len(shown)} of {len(part)}")
    suptitle = "Permutation importance by group"
    if baseline is not None:
        suptitle += f" (baseline {scoring} = {baseline:.3f})"
    fig.suptitle(suptitle)
    return fig


def feature_importance_figure(importances, feature_names: Sequence[str], top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` largest importances.

    Parameters
    ----------
    importances : array-like of float, shape (n_features,)
        One importance per feature (e.g. ``feature_importances_``, or |coefficients|).
    feature_names : sequence of str
        Name of each feature.
    top : int, default 20
        How many features to show, largest first.

    Returns
    -------
    matplotlib.figure.Figure
    """
    importances = np.asarray(importances, dtype=float).ravel()
    if importances.size != len(feature_names):
        raise ValueError(
            f"importances has {importances.size} values but there are "
            f"{len(feature_names)} feature names"
        )
    order = np.argsort(-importances, kind="stable")[:top]
    fig = Figure(figsize=(7.0, max(3.0, 0.3 * len(order) + 1.5)), layout="constrained")
    ax = fig.add_subplot()
    ax.barh(np.arange(len(order)), importances[order])
    ax.set_yticks(np.arange(len(order)), [feature_names[i] for i in order], fontsize=8)
    ax.invert_yaxis()  # largest on top
    ax.set(xlabel="Importance", ylabel="Feature", title=f"Top {len(order)} of {importances.size} features")
    return fig
