"""Why a task got its recommendation: the exit codes and sites that moved it most, and similar decided tasks.

For a pipeline whose model is a LightGBM booster (directly, or inside wtc's early-stopping
wrapper), the booster's own per-prediction contributions (``pred_contrib=True``, SHAP values in
log-odds of the recommended class) on the task's transformed row; otherwise an ablation of the
task's row (each of its non-zero features set to zero in turn, the change of the recommended
class's probability). Features are folded onto what an operator reads: the exit code and the site
a feature name holds (``bad:71304:*``, ``good:85:T2_US_MIT``, ``code_totals:85``,
``site_totals:T1_US_FNAL``); the rest (task type, campaign, summaries) is ``context``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["Contribution", "contributions", "feature_targets", "similar_rows"]

#: The most non-zero features an ablation scores (one prediction each).
MAX_ABLATED = 80


@dataclass
class Contribution:
    """How much one exit code or site moved the recommended class, and in which unit."""

    kind: str  # "code", "site" or "context"
    name: str
    value: float


def feature_targets(name: str) -> list[tuple[str, str]]:
    """The (kind, name) pairs a feature speaks of: its exit code and/or site, else its context."""
    parts = name.split(":")
    block = parts[0]
    if block in ("good", "bad") or (len(parts) == 3 and parts[2] and block not in ("campaign", "tasktype")):
        out = [("code", parts[1])] if len(parts) > 1 and parts[1] not in ("*", "") else []
        if len(parts) > 2 and parts[2] not in ("*", ""):
            out.append(("site", parts[2]))
        return out or [("context", name)]
    if block in ("code_totals", "status_code_sites", "status_code_totals") and len(parts) > 1:
        return [("code", parts[1].split("/")[-1])]
    if block == "site_totals" and len(parts) > 1:
        return [("site", parts[1])]
    return [("context", block)]


def _booster(pipeline: Any) -> tuple[Any, Any] | None:
    """(the pipeline before its model, the LightGBM model) when the model is a LightGBM booster."""
    steps = getattr(pipeline, "steps", None)
    if not steps:
        return None
    model = steps[-1][1]
    for candidate in (model, getattr(model, "estimator_", None)):
        if candidate is not None and hasattr(candidate, "booster_") and type(candidate).__module__.startswith(
                "lightgbm"):
            return pipeline[:-1], candidate
    return None


def _booster_contrib(pipeline: Any, row: sp.csr_matrix, klass: int, n_classes: int) -> tuple[np.ndarray, str] | None:
    found = _booster(pipeline)
    if found is None:
        return None
    head, model = found
    model_classes = [int(c) for c in getattr(model, "classes_", range(n_classes))]
    if klass not in model_classes:  # a class the booster never saw: nothing of its own moved it
        return None
    position, n_model = model_classes.index(klass), len(model_classes)
    Xt = sp.csr_matrix(head.transform(row) if len(head.steps) else row, dtype=np.float32)
    contrib = model.predict(Xt, pred_contrib=True)
    if isinstance(contrib, list):  # sparse multiclass input: one matrix per class
        contrib = contrib[position if len(contrib) > 1 else 0]
        values = np.asarray(contrib.todense() if sp.issparse(contrib) else contrib)[0]
    else:
        values = np.asarray(contrib.todense() if sp.issparse(contrib) else contrib)[0]
        width = row.shape[1] + 1
        if values.size == width * n_model and n_model > 2:
            values = values[position * width:(position + 1) * width]
    values = values[:row.shape[1]]  # the last column is the expected value (bias)
    if n_model == 2 and position == 0:
        values = -values  # a binary booster's contributions are towards class 1
    return values, "LightGBM contribution (log-odds)"


def _ablation(pipeline: Any, row: sp.csr_matrix, klass: int, n_classes: int) -> tuple[np.ndarray, str]:
    from wtc.models.pipeline import full_proba

    row = sp.csr_matrix(row, dtype=np.float32)
    columns = row.indices[np.argsort(-np.abs(row.data))][:MAX_ABLATED]
    base = full_proba(pipeline, row, n_classes)[0, klass]
    variants = sp.vstack([row] * len(columns)).tolil() if len(columns) else None
    values = np.zeros(row.shape[1])
    if variants is not None:
        for i, column in enumerate(columns):
            variants[i, column] = 0.0
        proba = full_proba(pipeline, variants.tocsr(), n_classes)[:, klass]
        values[columns] = base - proba
    return values, "change of probability when the feature is removed"


def contributions(pipeline: Any, feature_names: list[str], row: sp.csr_matrix, klass: int, n_classes: int,
                  top: int = 8) -> tuple[list[Contribution], str]:
    """The codes, sites and context that moved ``row`` most towards (positive) or away from class ``klass``.

    Returns the ``top`` largest by magnitude and the unit of the values.
    """
    found = _booster_contrib(pipeline, row, klass, n_classes)
    values, unit = found if found is not None else _ablation(pipeline, row, klass, n_classes)
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for j in np.flatnonzero(values):
        targets = feature_targets(feature_names[j])
        for target in targets:
            totals[target] += float(values[j]) / len(targets)
    ranked = sorted(totals.items(), key=lambda item: -abs(item[1]))[:top]
    return [Contribution(kind, name, value) for (kind, name), value in ranked if abs(value) > 1e-12], unit


def similar_rows(X: sp.csr_matrix, index: int, candidates: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` rows of ``candidates`` most like row ``index`` (cosine of log-counts), with their similarity."""
    from sklearn.preprocessing import normalize

    if not len(candidates):
        return []
    rows = X[np.append(candidates, index)].astype(np.float64)
    rows.data = np.log1p(np.abs(rows.data))
    rows = normalize(rows)
    similarity = np.asarray((rows[:-1] @ rows[-1].T).todense()).ravel()
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(int(candidates[i]), float(similarity[i])) for i in order if similarity[i] > 0]
