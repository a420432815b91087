"""``wtc predict``: a history file's tasks through a registered model; AUTO/REVIEW per task and the summary."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wtc.errors import WtcError, one_line
from wtc.inference.tasks import (
    AUTO,
    MAX_TASKS_PER_CALL,
    TaskModelSpec,
    infer_view,
    predict_tasks,
    validate_tasks,
)
from wtc.outputs import write_atomic
from wtc.store.pyfunc import NO_THRESHOLD, load_model
from wtc.store.query import StoreException
from wtc.store.registry import (
    TAG_CONFIDENCE,
    TAG_COVERAGE,
    TAG_METHOD,
    TAG_PRECISION,
    TAG_THRESHOLD,
    tag_float,
    version_tags,
)

__all__ = ["Prediction", "format_report", "load_predictor", "predict_history", "write_predictions"]

_TOP_CODES = 3


@dataclass
class Prediction:
    """The per-task table of a history and what an operator reads first."""

    table: pd.DataFrame
    model_uri: str
    threshold: float | None
    precision: float
    precision_source: str
    expected_coverage: float | None = None
    drivers: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    realised: dict[str, Any] | None = None
    part_thresholds: dict[str, float | None] | None = None
    gate: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The column the summary groups by: the action of a recovery recommender, else the recommendation."""
        return "action" if "action" in self.table.columns else "recommendation"

    @property
    def bad(self) -> pd.DataFrame:
        return self.table[self.table["error"] != ""]

    @property
    def good(self) -> pd.DataFrame:
        return self.table[self.table["error"] == ""]

    def summary(self) -> dict[str, Any]:
        good = self.good
        by_class = {}
        for cls, rows in good.groupby(self.key, sort=True):
            by_class[str(cls)] = {"tasks": len(rows), "auto": int((rows["decision"] == AUTO).sum()),
                                  "top_codes": [{"code": c, "tasks": n} for c, n in self.drivers.get(str(cls), [])]}
        return {
            "model": self.model_uri, "tasks": len(self.table), "predicted": len(good),
            "invalid": len(self.bad), "auto": int((good["decision"] == AUTO).sum()),
            "review": int((good["decision"] != AUTO).sum()), "threshold": self.threshold,
            "expected_precision": self.precision, "expected_precision_from": self.precision_source,
            "expected_coverage": self.expected_coverage, "by_recommendation": by_class,
            "part_thresholds": self.part_thresholds, "gate": self.gate, "realised": self.realised,
        }


def _read_tasks(path: Path) -> pd.DataFrame:
    """The ``task``/``entry`` rows of an actions-history file, entries unvalidated (the model checks
    them): read as the loader reads it (a regular file within the bound), nothing collapsed (a
    repeated task or key reaches the checks)."""
    from wtc.data.decode import history_entries

    pairs = history_entries(path)
    return pd.DataFrame({"task": [t for t, _ in pairs], "entry": [e for _, e in pairs]})


def _dominant_codes(history: Any, table: pd.DataFrame, key: str) -> dict[str, list[tuple[str, int]]]:
    """Per recommended class (``key`` column), the exit codes that most often dominate its tasks."""
    if history is None or history.nnz == 0:
        return {}
    per_code = np.zeros((history.n_tasks, len(history.codes)))
    np.add.at(per_code, (history.entry_task, history.entry_code), history.entry_count)
    dominant = {t: history.codes[int(per_code[i].argmax())] for i, t in enumerate(history.tasks)
                if per_code[i].max() > 0}
    counts: dict[str, Counter] = {}
    good = table["error"] == ""
    for task, cls in zip(table.loc[good, "task"], table.loc[good, key]):
        if task in dominant:
            counts.setdefault(str(cls), Counter())[dominant[task]] += 1
    return {cls: c.most_common(_TOP_CODES) for cls, c in sorted(counts.items())}


def _truth(parameters: Any, target: str | None, classes: list[str]) -> str | None:
    """The class a labelled task had under ``target`` (``other`` when the model merged it), or None."""
    from wtc.data.dataset import OTHER_CLASS
    from wtc.data.targets import label_of

    if parameters is None or target is None:
        return None
    label = label_of(parameters, target)
    return label if label in classes or OTHER_CLASS not in classes else OTHER_CLASS


def _realised(history: Any, table: pd.DataFrame, inner: Any) -> dict[str, Any] | None:
    """How the decisions fared on the tasks that carry the operator's ``parameters`` (a back-test).

    A recommendation is right when it equals the recorded class; for a recovery recommender,
    when the action is right and, for an acdc, every parameter it recommends is right too.
    None when no task is labelled or the model does not say what it predicts.
    """
    from wtc.inference.recovery import ACDC, ACDC_PARTS

    if history is None or not hasattr(inner, "parts") and getattr(getattr(inner, "spec", None), "target", None) is None:
        return None
    records = dict(zip(history.tasks, history.parameter_records))
    rows = table[(table["error"] == "") & table["task"].map(lambda t: records.get(t) is not None)]
    if rows.empty:
        return None
    right, action_right = [], []
    for row in rows.itertuples(index=False):
        params = records[row.task]
        if hasattr(inner, "parts"):
            action = inner.parts["action"].spec
            ok = row.action == _truth(params, action.target, action.class_names)
            action_right.append(ok)
            for name in ACDC_PARTS:
                if row.action == ACDC and name in inner.parts:
                    spec = inner.parts[name].spec
                    ok = ok and getattr(row, name) == _truth(params, spec.target, spec.class_names)
            right.append(ok)
        else:
            right.append(row.recommendation == _truth(params, inner.spec.target, inner.spec.class_names))
    right = np.asarray(right, dtype=bool)
    auto = (rows["decision"] == AUTO).to_numpy()
    out = {"labelled": len(rows), "correct": int(right.sum()), "accuracy": float(right.mean()),
           "auto": int(auto.sum()), "auto_correct": int(right[auto].sum()), "auto_coverage": float(auto.mean()),
           "auto_precision": float(right[auto].mean()) if auto.any() else None}
    if action_right:
        action_right = np.asarray(action_right, dtype=bool)
        out["action_accuracy"] = float(action_right.mean())
        out["auto_action_precision"] = float(action_right[auto].mean()) if auto.any() else None
        out["auto_action_correct"] = int(action_right[auto].sum())
    return out


def _predict(model: Any, frame: pd.DataFrame, threshold: float | None) -> pd.DataFrame:
    """Run a loaded model on raw tasks; a matrix model (logged before raw tasks) is wrapped on the fly."""
    if len(frame) > MAX_TASKS_PER_CALL:  # one call reads at most this many tasks: batches, in order
        return pd.concat([_predict(model, frame.iloc[start:start + MAX_TASKS_PER_CALL], threshold)
                          for start in range(0, len(frame), MAX_TASKS_PER_CALL)], ignore_index=True)
    inner = model.unwrap_python_model()
    if hasattr(inner, "parts"):  # the recovery recommender: each part's threshold travels with it
        return model.predict(frame)
    if hasattr(inner, "spec"):  # a model on raw tasks
        return model.predict(frame, params={"threshold": NO_THRESHOLD if threshold is None else float(threshold)})
    view, extras = infer_view(inner.feature_names)
    spec = TaskModelSpec(view=view, feature_names=list(inner.feature_names), class_names=list(inner.class_names),
                         extras=extras)
    return predict_tasks(inner.pipeline, spec, frame, threshold=threshold)


def load_predictor(model_uri: str, tracking_uri: str | None = None) -> Any:
    """The model a URI names, or one WtcError line saying why it cannot be loaded."""
    try:
        return load_model(model_uri, tracking_uri=tracking_uri)
    except (StoreException, OSError) as exc:
        raise WtcError(f"cannot load the model {model_uri}: {one_line(exc, limit=300)}") from None


def predict_history(path: Path | str, model_uri: str, tracking_uri: str | None = None,
                    precision: float = 0.95, model: Any = None) -> Prediction:
    """Predict every task of an actions-history file with a (registered) model.

    Parameters
    ----------
    path : path
        An actions-history JSON file; its malformed tasks get a one-line error each, the
        others a prediction.
    model_uri : str
        ``models:/NAME@champion``, ``models:/NAME/VERSION``, ``models:/<model_id>``, ``runs:/…`` or a path.
    tracking_uri : str, optional
        The store that resolves ``models:/`` URIs.
    precision : float
        The precision asked for; the AUTO threshold comes from the version's tags (stored by
        ``wtc promote``) or from the model itself; without either, every task is REVIEW.
    model : PyFuncModel, optional
        ``model_uri`` already loaded (``wtc panel`` keeps it for its explanations).

    Returns
    -------
    Prediction
    """
    frame = _read_tasks(Path(path))
    if model is None:
        model = load_predictor(model_uri, tracking_uri)
    tags = version_tags(tracking_uri, model_uri) if tracking_uri else {}
    inner = model.unwrap_python_model()
    notes = []
    threshold = tag_float(tags, TAG_THRESHOLD)
    coverage = tag_float(tags, TAG_COVERAGE)
    tagged = tag_float(tags, TAG_PRECISION)
    gate = getattr(inner, "gate", None) if hasattr(inner, "parts") else None
    if gate is not None:  # the recovery recommender's joint gate (and the action's, in mode action)
        threshold, coverage = gate.joint_threshold, gate.joint_coverage
        if gate.mode == "action":  # AUTO: the whole clears its gate or the action its own; at least the larger share
            coverage = max(gate.joint_coverage, gate.action_coverage)
        source = (f"the joint gate, certified at promotion on the parts' out-of-fold tasks with probability "
                  f">= {1 - gate.delta:.0%} (mode {gate.mode})")
        precision = 1 - gate.alpha
        if not np.isfinite(gate.joint_threshold):
            notes.append(f"no threshold on the whole recommendation was certified at {precision:.0%}: "
                         + ("only actions clearing the action gate are AUTO" if gate.mode == "action"
                            else "every task is REVIEW (mode action would automate the action alone)"))
    elif hasattr(inner, "parts"):
        threshold, coverage = inner.parts["action"].threshold, None
        source = ("each part's own threshold, certified at promotion on its out-of-fold tasks; AUTO needs every "
                  "part used to meet its own")
        if tagged is not None:
            precision = tagged
        never = [t for t, v in inner.thresholds.items() if v is None or not np.isfinite(v)]
        if never:
            notes.append(f"no threshold of the part(s) {', '.join(never)} was certified for {precision:.0%} "
                         "precision: every task that needs them is REVIEW")
    elif threshold is not None and tagged is not None:
        confidence = tag_float(tags, TAG_CONFIDENCE)
        if tags.get(TAG_METHOD):
            source = (f"the version's tags (certified at promotion on out-of-fold training tasks: precision >= "
                      f"{tagged:.0%} with probability >= {confidence:.0%}, {tags[TAG_METHOD]})")
        else:
            source = "the version's tags (chosen at promotion on held-out tasks" + (
                f", where its {confidence:.0%} lower bound reached it)" if confidence else ")")
        if abs(tagged - precision) > 1e-9:
            notes.append(f"the AUTO threshold was chosen at promotion for {tagged:.0%} precision, not the "
                         f"{precision:.0%} asked; promote again with --precision {precision} to change it")
        precision = tagged
    else:
        threshold = getattr(inner, "threshold", None)
        source = "the request (the model is not a promoted version)"
        if threshold is None:
            notes.append("no AUTO threshold: this model was not promoted (wtc promote chooses one), so every "
                         "task is REVIEW")
    if threshold is not None and not np.isfinite(threshold) and not hasattr(inner, "parts"):
        notes.append(f"no confidence threshold was certified for {precision:.0%} precision at promotion: every "
                     "task is REVIEW")
    table = _predict(model, frame, threshold)
    good = table["error"] == ""
    history, _ = validate_tasks(frame.loc[good, "task"].tolist(), frame.loc[good, "entry"].tolist())
    prediction = Prediction(table, model_uri, threshold, precision, source, coverage, notes=notes,
                            realised=_realised(history, table, inner),
                            part_thresholds=inner.thresholds if hasattr(inner, "parts") else None,
                            gate=gate.to_dict() if gate is not None else None)
    prediction.drivers = _dominant_codes(history, table, prediction.key)
    return prediction


def _threshold_text(value: float | None) -> str:
    return f">= {value:.3g}" if value is not None and np.isfinite(value) else "never"


def format_report(prediction: Prediction) -> str:
    """The per-task lines, the bad tasks' messages and the summary, as printed by ``wtc predict``."""
    lines = []
    held = "below_threshold" in prediction.table.columns
    for row in prediction.good.itertuples(index=False):
        line = (f"{row.decision:<6}  {row.recommendation} {row.confidence:.2f}  "
                f"(runner-up {row.runner_up} {row.runner_up_p:.2f})  {row.task}")
        if held and row.below_threshold:
            # An action-only AUTO: what held back the whole recommendation (its parameters are suggestions).
            what = "whole recommendation held back by" if getattr(row, "auto_mode", "") == "action" else "held back by"
            line += f"  [{what}: {row.below_threshold}]"
        lines.append(line)
    summary = prediction.summary()
    lines.append("")
    share = summary["auto"] / summary["predicted"] if summary["predicted"] else 0.0
    threshold = summary["threshold"]
    gate = prediction.gate
    by_action = gate is not None and gate["mode"] == "action"  # AUTO promises the action; the parameters are suggestions
    if gate is not None:
        rule = f"; AUTO when the whole recommendation's confidence {_threshold_text(gate['joint_threshold'])}" + (
            f", or the action's {_threshold_text(gate['action_threshold'])} (the parameters as suggestions)"
            if by_action else "")
        if prediction.part_thresholds is not None and any(v is not None for v in prediction.part_thresholds.values()):
            rule += " (the parts' own thresholds, reported in what held a task back: " + ", ".join(
                f"{part} {_threshold_text(value)}" for part, value in prediction.part_thresholds.items()) + ")"
    elif prediction.part_thresholds is not None:
        rule = "; AUTO when every part used meets its threshold: " + ", ".join(
            f"{part} {_threshold_text(value)}" for part, value in prediction.part_thresholds.items())
    else:
        rule = f"; AUTO when confidence >= {threshold:.3g}" if threshold is not None and np.isfinite(threshold) else ""
    lines.append(f"{summary['predicted']} of {summary['tasks']} task(s) predicted; {summary['auto']} AUTO "
                 f"({share:.0%}), {summary['review']} REVIEW" + rule)
    expected = (f"expected precision of AUTO decisions{' (the action)' if by_action else ''}: "
                f"{summary['expected_precision']:.0%} (from {summary['expected_precision_from']})")
    if summary["expected_coverage"] is not None:
        expected += f"; expected coverage {summary['expected_coverage']:.0%}" + (
            f" or more (the action alone {gate['action_coverage']:.0%}, the whole recommendation "
            f"{gate['joint_coverage']:.0%})" if by_action else "")
    lines.append(expected)
    realised = summary["realised"]
    if realised is not None:
        auto = (f"realised precision of AUTO {realised['auto_precision']:.1%} ({realised['auto_correct']}/"
                f"{realised['auto']})" if realised["auto"] else "no AUTO decision")
        if realised["auto"] and "auto_action_correct" in realised:  # a recommender: the whole, and the action alone
            auto += (f" for the whole recommendation, {realised['auto_action_precision']:.1%} "
                     f"({realised['auto_action_correct']}/{realised['auto']}) for the action")
        lines.append(f"labelled tasks (the file records the operators' decisions): {realised['labelled']}; "
                     f"recommendation right for {realised['accuracy']:.1%}; AUTO {realised['auto_coverage']:.1%} "
                     f"of them, {auto}")
    for cls, info in summary["by_recommendation"].items():
        codes = ", ".join(f"{c['code']} x{c['tasks']}" for c in info["top_codes"]) or "no errors"
        lines.append(f"  {cls}: {info['tasks']} task(s), {info['auto']} AUTO; dominant exit codes: {codes}")
    for note in prediction.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def write_predictions(prediction: Prediction, out: Path | str) -> Path:
    """Write the per-task table as ``.csv``, or table and summary as ``.json`` (atomically: whole or not at all;
    whether ``out`` may be written, see :func:`wtc.outputs.check_output`)."""
    out = Path(out)
    if out.suffix not in (".csv", ".json"):
        raise WtcError(f"--out must end in .csv or .json, got {out.name!r}")
    if out.suffix == ".csv":
        return write_atomic(out, prediction.table.to_csv(index=False))
    records = json.loads(prediction.table.to_json(orient="records"))
    return write_atomic(out, json.dumps({"summary": prediction.summary(), "tasks": records}, indent=2))
