"""The recovery recommender: the action, splitting, xrootd and memory models combined into one recommendation per task.

How a recommendation is made, per valid task:

- the **action** part's most probable class is the action (with its probability and the
  runner-up action);
- when the action is ``acdc``, the **splitting**, **xrootd** and **memory** parts each add
  their most probable value and its probability (the parameters only an acdc carries); for
  any other action they stay empty;
- the joint ``confidence`` is the product of the probabilities of the parts used (each part
  is a model of its own: the product treats them as independent given the task);
- with a **joint gate** (:class:`~wtc.inference.joint.JointGate`, certified at promotion on the
  parts' out-of-fold predictions): the task is ``AUTO`` when the whole recommendation's
  confidence clears the joint threshold (``auto_mode`` ``joint``: execute all of it) or, in mode
  ``action``, when the action's probability clears the action threshold (``auto_mode``
  ``action``: execute the action, the parameters are suggestions); a part predicting the merged
  rare class ``other`` is never AUTO; ``below_threshold`` says what held a task back (the
  whole's confidence and its weakest part, then the parts that miss their own thresholds,
  certified at promotion on each part's out-of-fold rows: reported, they decide nothing);
- without one (bundles promoted before it): ``AUTO`` only when every part used meets its own
  threshold (``auto_mode`` ``parts``), and ``below_threshold`` names the parts that missed;
- ``unseen_codes``/``unseen_sites``: the most, over the parts used, of the task's codes and
  sites that part's vocabulary lacks (ignored, not fatal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from wtc.data.dataset import OTHER_CLASS
from wtc.inference.joint import Combined, JointGate, below, combine
from wtc.inference.tasks import AUTO, REVIEW, TaskModelSpec, read_tasks, task_probabilities

__all__ = ["ACDC", "ACDC_PARTS", "RECOVERY_TARGETS", "RecoveryPart", "recommend_tasks", "recovery_columns"]

ACDC = "acdc"
#: The targets of a complete recovery, the action first.
RECOVERY_TARGETS = ("action", "splitting", "xrootd", "memory")
#: The parts that only apply when the recommended action is acdc.
ACDC_PARTS = RECOVERY_TARGETS[1:]


@dataclass
class RecoveryPart:
    """One model of the recommender: a fitted pipeline, how it reads raw tasks, its AUTO threshold.

    ``threshold`` None or ``inf`` means no threshold reached the precision asked at promotion:
    a task that needs this part is never AUTO.
    """

    pipeline: Any
    spec: TaskModelSpec
    threshold: float | None = None


def check_parts(parts: Mapping[str, RecoveryPart]) -> None:
    """ValueError unless ``parts`` has an action part with an ``acdc`` class and only recovery targets."""
    unknown = [p for p in parts if p not in RECOVERY_TARGETS]
    if unknown:
        raise ValueError(f"unknown recovery part(s) {unknown}; the parts are {', '.join(RECOVERY_TARGETS)}")
    if "action" not in parts:
        raise ValueError("a recovery recommender needs the action part")
    if ACDC not in parts["action"].spec.class_names:
        raise ValueError(f"the action part must have the class {ACDC!r}; it has {parts['action'].spec.class_names}")


def recovery_columns(action_classes: list[str]) -> list[str]:
    """The columns of :func:`recommend_tasks`' table, in order."""
    return ["task", "recommendation", "action", *(f"p_{c}" for c in action_classes), "action_p", "runner_up",
            "runner_up_p", *(c for part in ACDC_PARTS for c in (part, f"{part}_p")), "confidence", "decision",
            "auto_mode", "below_threshold", "unseen_codes", "unseen_sites", "error"]


def _meets(confidence: np.ndarray, threshold: float | None) -> np.ndarray:
    if threshold is None or not math.isfinite(threshold):
        return np.zeros(confidence.shape, dtype=bool)
    return confidence >= threshold


def _per_part_decision(parts: Mapping[str, RecoveryPart], combined: Combined) -> tuple[np.ndarray, list[str]]:
    """The older rule (a bundle without a joint gate): every part used meets its own threshold."""
    action, action_p = combined.values["action"], combined.probabilities["action"]
    auto = _meets(action_p, parts["action"].threshold) & (action != OTHER_CLASS)
    reasons: list[list[str]] = [[] for _ in range(action.size)]
    for i in np.flatnonzero(~auto):
        reasons[i].append(below("action", action_p[i], parts["action"].threshold)
                          if action[i] != OTHER_CLASS else "action: other (a rare action)")
    acdc = combined.acdc
    for name in ACDC_PARTS:
        if name not in combined.values:
            continue
        values, value_p = combined.values[name], combined.probabilities[name]
        ok = _meets(np.nan_to_num(value_p), parts[name].threshold) & (values != OTHER_CLASS)
        for i in np.flatnonzero(acdc & ~ok):
            reasons[i].append(below(name, value_p[i], parts[name].threshold) if values[i] != OTHER_CLASS
                              else f"{name}: other (a rare value)")
        auto &= ~acdc | ok
    return auto, ["; ".join(r) for r in reasons]


def recommend_tasks(parts: Mapping[str, RecoveryPart], model_input: Any, gate: JointGate | None = None) -> pd.DataFrame:
    """One recommendation per raw task (see the module docstring for how the parts combine).

    Parameters
    ----------
    parts : mapping of str to RecoveryPart
        ``action`` (required) and any of ``splitting``, ``xrootd``, ``memory``.
    model_input : DataFrame, list of rows or mapping
        Raw tasks, columns ``task`` and ``entry`` (:func:`wtc.inference.tasks.tasks_frame`); they
        are read and validated once for every part.
    gate : JointGate, optional
        The certified joint (and action) thresholds; None: each part's own threshold (bundles
        promoted before the joint gate).

    Returns
    -------
    pandas.DataFrame
        :func:`recovery_columns`, one row per input row in input order; an invalid task has only
        ``task`` and its one-line ``error``.
    """
    check_parts(parts)
    batch = read_tasks(model_input)
    action_classes = list(parts["action"].spec.class_names)
    n = len(batch.tasks)
    table = pd.DataFrame({column: pd.Series([""] * n, dtype=object) for column in recovery_columns(action_classes)})
    table["task"] = [str(t) for t in batch.tasks]
    numeric = [c for c in table.columns if c.startswith("p_") or c.endswith("_p") or c == "confidence"]
    for column in numeric:
        table[column] = np.nan
    for column in ("unseen_codes", "unseen_sites"):
        table[column] = pd.array([pd.NA] * n, dtype="Int64")
    table["error"] = ["" if e is None else str(e) for e in batch.errors]
    if batch.history is None:
        return table

    rows = np.asarray(batch.valid_rows, dtype=np.int64)
    m = rows.size
    probabilities, unseen = {}, {}
    for name in RECOVERY_TARGETS:
        if name in parts:
            proba, codes, sites = task_probabilities(parts[name].pipeline, parts[name].spec, batch.history)
            probabilities[name], unseen[name] = proba, (codes, sites)
    combined = combine(probabilities, {name: parts[name].spec.class_names for name in probabilities})
    proba = probabilities["action"]
    names = np.asarray(action_classes, dtype=object)
    order = np.argsort(-proba, axis=1, kind="stable")
    for j, c in enumerate(action_classes):
        table.loc[rows, f"p_{c}"] = proba[:, j]
    table.loc[rows, "action"] = combined.values["action"]
    table.loc[rows, "action_p"] = combined.probabilities["action"]
    if len(action_classes) > 1:
        table.loc[rows, "runner_up"] = names[order[:, 1]]
        table.loc[rows, "runner_up_p"] = proba[np.arange(m), order[:, 1]]
    acdc = combined.acdc
    recommendation = combined.values["action"].astype(object).copy()
    unseen_codes, unseen_sites = unseen["action"]
    for name in ACDC_PARTS:
        if name not in combined.values:
            continue
        table.loc[rows[acdc], name] = combined.values[name][acdc]
        table.loc[rows[acdc], f"{name}_p"] = combined.probabilities[name][acdc]
        codes, sites = unseen[name]
        unseen_codes = np.where(acdc, np.maximum(unseen_codes, codes), unseen_codes)
        unseen_sites = np.where(acdc, np.maximum(unseen_sites, sites), unseen_sites)
        recommendation = np.where(acdc, recommendation + f" {name}=" + combined.values[name].astype(object),
                                  recommendation)
    if gate is None:
        auto, reasons = _per_part_decision(parts, combined)
        auto_mode = np.where(auto, "parts", "")
    else:
        auto, auto_mode, reasons = gate.decide(combined)
        if any(p.threshold is not None for p in parts.values()):
            _, own = _per_part_decision(parts, combined)
            reasons = [f"{r}; own thresholds: {o}" if r.startswith("whole") and o else r for r, o in zip(reasons, own)]
    table.loc[rows, "recommendation"] = recommendation
    table.loc[rows, "confidence"] = combined.confidence
    table.loc[rows, "decision"] = np.where(auto, AUTO, REVIEW)
    table.loc[rows, "auto_mode"] = auto_mode
    table.loc[rows, "below_threshold"] = reasons
    table.loc[rows, "unseen_codes"] = np.asarray(unseen_codes, dtype=np.int64)
    table.loc[rows, "unseen_sites"] = np.asarray(unseen_sites, dtype=np.int64)
    return table
