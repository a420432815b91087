"""What the panel shows: a history's tasks, each with the model's recommendation, its errors and why.

Built once when the panel starts: the predictions of :func:`wtc.ops.predict.predict_history` (AUTO /
REVIEW and which part held a task back come from the model, as ``wtc predict`` prints them), the
valid tasks as one :class:`~wtc.data.history.History` (the error heatmaps), and each model part's
feature matrix (the explanations and the similar tasks).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wtc.data.names import campaign_of, request_date_of, workflow_of
from wtc.data.vocabulary import exit_code_info, site_tier
from wtc.errors import WtcError
from wtc.inference.recovery import ACDC, ACDC_PARTS
from wtc.ops.panel.decisions import finite, memory_default
from wtc.ops.panel.explain import contributions, similar_rows

__all__ = ["Part", "PanelData"]

log = logging.getLogger(__name__)


@dataclass
class Part:
    """One model of the panel's predictor: its pipeline, how it reads tasks, the field it decides."""

    name: str
    pipeline: Any
    spec: Any
    X: Any = None


def _parts(inner: Any) -> dict[str, Part]:
    if hasattr(inner, "parts"):
        return {name: Part(name, p.pipeline, p.spec) for name, p in inner.parts.items()}
    if hasattr(inner, "spec"):
        return {"recommendation": Part("recommendation", inner.pipeline, inner.spec)}
    return {}


class PanelData:
    """A history, its recommendations and what explains them.

    Parameters
    ----------
    history : path
        The actions-history file whose tasks are reviewed.
    model_uri, tracking_uri : str
        The registered model and its store.
    model : PyFuncModel, optional
        ``model_uri`` already loaded (tests pass one built in memory).
    """

    def __init__(self, history: Path | str, model_uri: str, tracking_uri: str | None = None, model: Any = None,
                 model_label: str | None = None):
        from wtc.data.decode import history_entries
        from wtc.inference.tasks import validate_tasks
        from wtc.ops.predict import load_predictor, predict_history

        self.path = Path(history)
        self.model_uri = model_uri
        model = model if model is not None else load_predictor(model_uri, tracking_uri)
        self.model_label = model_label or model_uri
        self.prediction = predict_history(self.path, model_uri, tracking_uri, model=model)
        inner = model.unwrap_python_model()
        self.recovery = hasattr(inner, "parts")
        self.parts = _parts(inner)
        self.target = None if self.recovery else getattr(getattr(inner, "spec", None), "target", None)
        pairs = history_entries(self.path)
        table = self.prediction.table.copy()
        good = (table["error"] == "").to_numpy()
        entries = dict(p for p, ok in zip(pairs, good) if ok)
        self.history, _ = validate_tasks(list(entries), list(entries.values()))
        if self.history is None:
            raise WtcError(f"{self.path}: no task could be read (run wtc predict on it for the reasons)")
        self.errors = {t: json.loads(entries[t])["errors"] for t in self.history.tasks}
        self.row_of = {t: i for i, t in enumerate(self.history.tasks)}
        table["workflow"] = table["task"].map(workflow_of)
        table["campaign"] = table["workflow"].map(campaign_of)
        table["requested"] = pd.to_datetime(table["workflow"].map(request_date_of))
        self._by_task = self._entries_by_task()
        table["sites"] = table["task"].map(lambda t: " ".join(sorted(self.sites_of(t))))
        # Newest workflows first (by the request date in their names), a workflow's tasks together.
        table = table.sort_values(["requested", "workflow", "task"], ascending=[False, True, True],
                                  na_position="last", kind="stable")
        self.table = table.reset_index(drop=True)
        self.index = {t: i for i, t in enumerate(self.table["task"])}
        self._features()

    # ------------------------------------------------------------------ reading the history
    def _entries_by_task(self) -> dict[int, np.ndarray]:
        h = self.history
        order = np.argsort(h.entry_task, kind="stable")
        bounds = np.searchsorted(h.entry_task[order], np.arange(h.n_tasks + 1))
        return {i: order[bounds[i]:bounds[i + 1]] for i in range(h.n_tasks)}

    def sites_of(self, task: str) -> set[str]:
        i = self.row_of.get(task)
        if i is None:
            return set()
        return {self.history.sites[s] for s in self.history.entry_site[self._by_task[i]]}

    def heatmap(self, task: str) -> dict[str, Any]:
        """The task's errors as exit codes (rows, with their meaning) × sites (columns, good then bad, with tier)."""
        h, i = self.history, self.row_of[task]
        entries = self._by_task[i]
        cells: dict[tuple[str, str, str], int] = {}
        for e in entries:
            key = (h.statuses[h.entry_status[e]], h.codes[h.entry_code[e]], h.sites[h.entry_site[e]])
            cells[key] = cells.get(key, 0) + int(h.entry_count[e])
        statuses = sorted({k[0] for k in cells}, key=lambda s: (s != "good", s != "bad", s))
        columns = [(status, site, site_tier(site)) for status in statuses
                   for site in sorted({k[2] for k in cells if k[0] == status})]
        codes = sorted({k[1] for k in cells}, key=lambda c: -sum(v for k, v in cells.items() if k[1] == c))
        top = max(cells.values(), default=1)
        rows = [{"code": c, "meaning": exit_code_info(c)["meaning"],
                 "cells": [(cells.get((s, c, site), 0), cells.get((s, c, site), 0) / top) for s, site, _ in columns]}
                for c in codes]
        return {"columns": columns, "rows": rows, "total": sum(cells.values())}

    # ------------------------------------------------------------------ explanations
    def _features(self) -> None:
        from wtc.data.features import build_features

        quiet = logging.getLogger("wtc.data.features")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            for part in self.parts.values():
                part.X, _ = build_features(self.history, part.spec.view, vocabulary=part.spec.feature_names,
                                           extras=part.spec.extras)
        finally:
            quiet.setLevel(level)

    def _chosen(self, row: pd.Series, name: str) -> str | None:
        value = row.get(name if self.recovery else "recommendation")
        return None if value is None or value == "" or (isinstance(value, float) and np.isnan(value)) else str(value)

    def why(self, task: str) -> list[dict[str, Any]]:
        """Per part used for the task: the codes, sites and context that moved its recommendation most."""
        row, i = self.table.iloc[self.index[task]], self.row_of[task]
        h, entries = self.history, self._by_task[i]
        present = {("code", h.codes[c]) for c in h.entry_code[entries]} | {
            ("site", h.sites[s]) for s in h.entry_site[entries]}
        out = []
        for name, part in self.parts.items():
            if self.recovery and name in ACDC_PARTS and row.get("action") != ACDC:
                continue
            chosen = self._chosen(row, name)
            if chosen not in part.spec.class_names:
                continue
            klass = part.spec.class_names.index(chosen)
            items, unit = contributions(part.pipeline, part.spec.feature_names, part.X[i], klass,
                                        len(part.spec.class_names))
            out.append({"part": name, "value": chosen, "unit": unit,
                        "top": [(item, item.kind == "context" or (item.kind, item.name) in present) for item in items]})
        return out

    def similar(self, task: str, decided: dict[str, dict], k: int = 5) -> list[dict[str, Any]]:
        """The operators' decisions on the tasks most like this one (other workflows; the history's
        recorded decisions and this panel's)."""
        part = next(iter(self.parts.values()), None)
        if part is None:
            return []
        h, i = self.history, self.row_of[task]
        workflow = h.workflows[i]
        labelled = [j for j, t in enumerate(h.tasks)
                    if (h.parameter_records[j] is not None or t in decided) and h.workflows[j] != workflow]
        out = []
        for j, similarity in similar_rows(part.X, i, np.asarray(labelled, dtype=np.int64), k):
            other = h.tasks[j]
            params = decided[other]["parameters"] if other in decided else h.parameter_records[j]
            out.append({"task": other, "similarity": similarity, "parameters": params,
                        "source": "this panel" if other in decided else "the history"})
        return out

    # ------------------------------------------------------------------ accepting a recommendation
    def proposal(self, task: str) -> tuple[dict[str, str], list[str]]:
        """The form's values for accepting the task's recommendation, and the fields the operator must
        still choose (a special action's sub-action, an open memory bucket, a merged rare class)."""
        row = self.table.iloc[self.index[task]]
        form = {"action": "", "splitting": "", "xrootd": "", "memory": "", "sites": ""}
        missing = []
        values = {name: self._chosen(row, name) for name in ("action", *ACDC_PARTS)} if self.recovery else {
            self.target or "": self._chosen(row, "recommendation")}
        action = values.get("action") or ({"acdc": "acdc"}.get(values.get("binary") or ""))
        if action in ("acdc", "clone"):
            form["action"] = action
        else:
            missing.append("action")
        if form["action"] == ACDC:
            for name in ACDC_PARTS:
                value = values.get(name)
                if name == "memory" and value is not None:
                    value = memory_default(value) if value != "unset" else ""
                    if value == "" and values.get(name) != "unset":
                        missing.append(name)
                elif value in (None, "other", "20x+"):
                    if value is not None:  # a merged class names no value to write
                        missing.append(name)
                    value = ""
                form[name] = value or ""
        return form, missing

    def summary(self, task: str) -> dict[str, Any]:
        """The task's row of the queue, as the pages read it."""
        row = self.table.iloc[self.index[task]]
        classes = [c[2:] for c in self.table.columns if c.startswith("p_")]
        return {**{k: row[k] for k in self.table.columns if not k.startswith("p_")},
                "probabilities": [(c, finite(row[f"p_{c}"])) for c in classes]}
