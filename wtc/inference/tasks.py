"""Raw WTC tasks (name + history entry) -> validated, featurised in a training vocabulary -> per-task decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wtc.data.blocks import distinct_pairs
from wtc.data.features import BLOCKS, EXTRAS, TIERS, VIEWS, build_features
from wtc.data.history import History
from wtc.inference.task_checks import MAX_ENTRY_CHARS, quiet, validate_tasks

__all__ = [
    "AUTO",
    "MAX_ENTRY_CHARS",
    "MAX_TASKS_PER_CALL",
    "REVIEW",
    "TASK_COLUMNS",
    "TaskBatch",
    "TaskModelSpec",
    "decision_table",
    "infer_view",
    "output_columns",
    "predict_tasks",
    "read_tasks",
    "task_probabilities",
    "tasks_frame",
    "validate_tasks",
]

AUTO, REVIEW = "AUTO", "REVIEW"
#: The input of a model on raw tasks: the task's ``/workflow/task`` key and its history entry
#: (the ``errors`` mapping, optionally ``parameters``) as a dict or as JSON text.
TASK_COLUMNS = ("task", "entry")
#: The most tasks one call (a request to the served model) may hold; ``wtc predict`` sends a
#: history file in batches of this size.
MAX_TASKS_PER_CALL = 100_000
_EXTRA_OF_PREFIX = {"campaign:": "campaign", "tasktype:": "task_type", "total:errors": "total",
                    "n:sites": "n_sites", "n:codes": "n_codes"}


@dataclass
class TaskModelSpec:
    """What featurising raw tasks for a fitted pipeline needs: the run's view, extras and vocabulary."""

    view: str
    feature_names: list[str]
    class_names: list[str]
    extras: list[str] = field(default_factory=list)
    target: str | None = None

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"unknown view {self.view!r}; choose one of {', '.join(VIEWS)}")
        unknown = [e for e in self.extras if e not in EXTRAS]
        if unknown:
            raise ValueError(f"unknown extra feature(s) {unknown}; choose from {', '.join(EXTRAS)}")


def infer_view(feature_names: Sequence[str]) -> tuple[str, list[str]]:
    """The view and extras a training vocabulary was built with, read from its column names.

    For models logged without their view: ``*`` sites mean ``codes``, tier sites mean
    ``tiers``, error columns of one status only mean that status's view (``good``/``bad``),
    anything else ``combined``. Extras are read from their column prefixes.
    """
    statuses, sites, extras = set(), set(), []
    for name in feature_names:
        parts = str(name).split(":")
        extra = next((e for p, e in _EXTRA_OF_PREFIX.items() if str(name).startswith(p)), None)
        if extra is not None:
            if extra not in extras:
                extras.append(extra)
        elif len(parts) == 3:
            statuses.add(parts[0])
            sites.add(parts[2])
    extras = [e for e in EXTRAS if e in extras]  # the order build_features writes them in
    if sites == {"*"}:
        return "codes", extras
    if sites and sites <= set(TIERS):
        return "tiers", extras
    if statuses in ({"good"}, {"bad"}):
        return statuses.pop(), extras
    return "combined", extras


def tasks_frame(model_input: Any) -> pd.DataFrame:
    """The ``task``/``entry`` table of a model input: a DataFrame, a list of rows, or a history mapping."""
    if isinstance(model_input, pd.DataFrame):
        frame = model_input
    elif isinstance(model_input, dict):
        if set(model_input) == set(TASK_COLUMNS):  # columnar {"task": [...], "entry": [...]}
            frame = pd.DataFrame(model_input)
        else:  # a whole actions-history mapping {task: entry}
            frame = pd.DataFrame({"task": list(model_input), "entry": list(model_input.values())})
    else:
        frame = pd.DataFrame(list(model_input))
    missing = [c for c in TASK_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the input needs the columns task and entry (one row per task); missing {missing}")
    if len(frame) > MAX_TASKS_PER_CALL:
        raise ValueError(f"the input holds {len(frame)} tasks, more than the {MAX_TASKS_PER_CALL} one call may "
                         "hold: send them in batches")
    return frame.reset_index(drop=True)


def _task_columns(model_input: Any) -> tuple[list, list]:
    """The ``task`` and ``entry`` columns of a model input as lists (see :func:`tasks_frame`)."""
    if isinstance(model_input, dict) and set(model_input) == set(TASK_COLUMNS):
        tasks, entries = model_input["task"], model_input["entry"]
        # Text only: a DataFrame would give these lists back as they are (it may change other values).
        if (type(tasks) is list and type(entries) is list and len(tasks) == len(entries) <= MAX_TASKS_PER_CALL
                and all(type(v) is str for v in tasks) and all(type(v) is str for v in entries)):
            return tasks, entries
    frame = tasks_frame(model_input)
    return frame["task"].tolist(), frame["entry"].tolist()


def _vocabulary_axes(feature_names: Sequence[str]) -> tuple[set[str], set[str]]:
    codes, sites = set(), set()
    for name in feature_names:
        parts = str(name).split(":")
        if len(parts) == 3:
            codes.add(parts[1])
            sites.add(parts[2])
    return codes, sites


def _unseen(history: History, spec: TaskModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per task, the distinct codes and sites (of the view's statuses) the vocabulary lacks."""
    codes, sites = _vocabulary_axes(spec.feature_names)
    view = BLOCKS[spec.view]
    keep_statuses, axis = view.statuses, view.axis
    keep = np.ones(history.nnz, dtype=bool)
    if keep_statuses is not None:
        keep = np.isin(history.entry_status, [history.statuses.index(s) for s in keep_statuses
                                              if s in history.statuses])
    site_axis, axis_names = axis(history)
    code_unseen = np.array([c not in codes for c in history.codes], dtype=bool)
    axis_unseen = np.array([s not in sites for s in axis_names], dtype=bool)

    def distinct(mask: np.ndarray, what: np.ndarray) -> np.ndarray:
        return np.bincount(distinct_pairs(history.entry_task[mask], what[mask]), minlength=history.n_tasks)

    if history.nnz == 0:
        zero = np.zeros(history.n_tasks, dtype=np.int64)
        return zero, zero
    unseen_codes = distinct(keep & code_unseen[history.entry_code], history.entry_code)
    site_mask = keep & (axis_unseen[site_axis] if axis_unseen.size else np.zeros(history.nnz, bool))
    unseen_sites = distinct(site_mask, history.entry_site)
    return unseen_codes, unseen_sites


def output_columns(class_names: Sequence[str]) -> list[str]:
    """The columns of :func:`predict_tasks`' table, in order."""
    return ["task", *(f"p_{c}" for c in class_names), "recommendation", "confidence", "runner_up",
            "runner_up_p", "decision", "unseen_codes", "unseen_sites", "error"]


def decision_table(tasks: Sequence[str], errors: Sequence[str | None], proba: np.ndarray | None,
                   valid_rows: Sequence[int], class_names: Sequence[str], threshold: float | None,
                   unseen_codes: Sequence[int] = (), unseen_sites: Sequence[int] = ()) -> pd.DataFrame:
    """One row per input task: probabilities, recommendation, runner-up, AUTO/REVIEW, or the error.

    Rows of invalid tasks carry only ``task`` and ``error`` (numbers NaN/NA, texts empty).
    A task is ``AUTO`` when its confidence (largest probability) is at least ``threshold``;
    without a threshold every task is ``REVIEW``.
    """
    return pd.DataFrame(decision_columns(tasks, errors, proba, valid_rows, class_names, threshold, unseen_codes,
                                         unseen_sites))


def decision_columns(tasks: Sequence[str], errors: Sequence[str | None], proba: np.ndarray | None,
                     valid_rows: Sequence[int], class_names: Sequence[str], threshold: float | None,
                     unseen_codes: Sequence[int] = (), unseen_sites: Sequence[int] = ()) -> dict[str, Any]:
    """The columns of :func:`decision_table` by name (lists, arrays), before they become a DataFrame."""
    n, k = len(tasks), len(class_names)
    names = np.asarray([str(c) for c in class_names], dtype=object)
    full = np.full((n, k), np.nan)
    rows = np.asarray(valid_rows, dtype=np.int64)
    if proba is not None and rows.size:
        full[rows] = proba
    columns: dict[str, Any] = {"task": [str(t) for t in tasks]}
    for j, c in enumerate(names):
        columns[f"p_{c}"] = full[:, j]
    recommendation = np.full(n, "", dtype=object)
    runner_up = np.full(n, "", dtype=object)
    confidence = np.full(n, np.nan)
    runner_up_p = np.full(n, np.nan)
    decision = np.full(n, "", dtype=object)
    if rows.size:
        order = np.argsort(-full[rows], axis=1, kind="stable")
        recommendation[rows] = names[order[:, 0]]
        confidence[rows] = full[rows, order[:, 0]]
        if k > 1:
            runner_up[rows] = names[order[:, 1]]
            runner_up_p[rows] = full[rows, order[:, 1]]
        auto = confidence[rows] >= threshold if threshold is not None else np.zeros(rows.size, bool)
        decision[rows] = np.where(auto, AUTO, REVIEW)
    columns.update(recommendation=recommendation, confidence=confidence, runner_up=runner_up,
                   runner_up_p=runner_up_p, decision=decision)
    for column, values in (("unseen_codes", unseen_codes), ("unseen_sites", unseen_sites)):
        counts = np.zeros(n, dtype=np.int64)
        if rows.size:
            counts[rows] = np.asarray(values, dtype=np.int64)
        missing = np.ones(n, dtype=bool)
        missing[rows] = False
        columns[column] = pd.arrays.IntegerArray(counts, missing)  # NA where the task is invalid
    columns["error"] = ["" if e is None else str(e) for e in errors]
    return columns  # one DataFrame call makes the table: a column set at a time costs ~0.2 ms each


@dataclass
class TaskBatch:
    """Raw tasks read once: the valid ones as one History, a one-line error for each invalid row."""

    tasks: list[str]
    errors: list[str | None]
    history: History | None
    valid_rows: list[int]


def read_tasks(model_input: Any, json_checked: bool = False) -> TaskBatch:
    """Read and validate raw tasks (see :func:`tasks_frame` and :func:`validate_tasks`).

    ``valid_rows[i]`` is the input row of ``history.tasks[i]``; rows not in it have an error.
    """
    tasks, entries = _task_columns(model_input)
    history, errors = validate_tasks(tasks, entries, json_checked)
    valid_rows: list[int] = []
    if history is not None:
        row_of = {t: i for i, t in enumerate(tasks) if errors[i] is None}
        valid_rows = [row_of[t] for t in history.tasks]
    return TaskBatch(tasks, errors, history, valid_rows)


def task_probabilities(pipeline: Any, spec: TaskModelSpec, history: History) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """Class probabilities of validated tasks in a model's vocabulary, and what it had never seen.

    Returns
    -------
    proba : ndarray, shape (n_tasks, len(spec.class_names))
    unseen_codes, unseen_sites : ndarray of int, shape (n_tasks,)
        Distinct codes and sites of each task outside the vocabulary (ignored by the model).
    """
    from wtc.models.pipeline import full_proba

    with quiet("wtc.data.features"):
        X, _ = build_features(history, spec.view, vocabulary=spec.feature_names, extras=spec.extras)
    proba = full_proba(pipeline, X, len(spec.class_names))
    unseen_codes, unseen_sites = _unseen(history, spec)
    return proba, unseen_codes, unseen_sites


def predict_tasks(pipeline: Any, spec: TaskModelSpec, model_input: Any, threshold: float | None = None,
                  json_checked: bool = False) -> pd.DataFrame:
    """Validate, featurise and predict raw tasks with a fitted pipeline.

    Parameters
    ----------
    pipeline : estimator
        Fitted on the matrix of ``build_features(history, spec.view, extras=spec.extras)``,
        with class indices as labels (``spec.class_names`` in order).
    spec : TaskModelSpec
        View, extras, training vocabulary (``feature_names``) and class names.
    model_input : DataFrame, list of rows or mapping
        Columns ``task`` and ``entry`` (see :func:`tasks_frame`).
    threshold : float, optional
        Confidence at or above which a task is ``AUTO``; None: every task is ``REVIEW``.
    json_checked : bool
        Every entry given as text is known to be one JSON value (a parser found where it ends, as
        the served model's request decoder does): it is not parsed a second time to check it.

    Returns
    -------
    pandas.DataFrame
        :func:`output_columns`, one row per input row, in input order. Invalid tasks get their
        one-line ``error`` and nothing else; codes and sites outside the vocabulary are
        ignored and counted (``unseen_codes``, ``unseen_sites``).
    """
    return pd.DataFrame(task_decision_columns(pipeline, spec, model_input, threshold, json_checked))


def task_decision_columns(pipeline: Any, spec: TaskModelSpec, model_input: Any, threshold: float | None = None,
                          json_checked: bool = False) -> dict[str, Any]:
    """:func:`predict_tasks`' table as its columns by name (lists, arrays): for a caller that writes them out."""
    batch = read_tasks(model_input, json_checked)
    proba, unseen_codes, unseen_sites = None, [], []
    if batch.history is not None:
        proba, unseen_codes, unseen_sites = task_probabilities(pipeline, spec, batch.history)
    return decision_columns(batch.tasks, batch.errors, proba, batch.valid_rows, spec.class_names, threshold,
                            unseen_codes, unseen_sites)
