"""The recovery recommender as an MLflow model: one pyfunc bundling the action, splitting, xrootd and memory parts."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.models
import mlflow.pyfunc
import pandas as pd

from wtc.inference.joint import JointGate
from wtc.inference.recovery import RECOVERY_TARGETS, RecoveryPart, check_parts, recommend_tasks, recovery_columns
from wtc.store.pyfunc import pipeline_requirements

__all__ = ["WTCRecoveryModel", "log_recovery_model"]


class WTCRecoveryModel(mlflow.pyfunc.PythonModel):
    """Pyfunc on raw WTC tasks: one row per task (``task``, ``entry``) in, one combined recommendation out.

    Parameters
    ----------
    parts : mapping of str to RecoveryPart
        ``action`` and any of ``splitting``, ``xrootd``, ``memory``: each a fitted pipeline, how
        it reads raw tasks and its AUTO threshold (see :func:`wtc.inference.recovery.recommend_tasks`).
    gate : JointGate, optional
        The certified joint and action thresholds; None: each part's own threshold decides.
    """

    def __init__(self, parts: dict[str, RecoveryPart], gate: JointGate | None = None):
        check_parts(parts)
        self.parts = {t: parts[t] for t in RECOVERY_TARGETS if t in parts}
        self.gate = gate

    @property
    def thresholds(self) -> dict[str, float | None]:
        return {t: p.threshold for t, p in self.parts.items()}

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Return one recommendation row per task (:func:`wtc.inference.recovery.recovery_columns`)."""
        # A bundle pickled before the joint gate has no ``gate``: its parts' thresholds decide.
        return recommend_tasks(self.parts, model_input, getattr(self, "gate", None))


def _signature(action_classes: list[str]):
    from mlflow.types.schema import ColSpec, Schema

    texts = {"task", "recommendation", "action", "runner_up", "decision", "auto_mode", "below_threshold", "error",
             *RECOVERY_TARGETS[1:]}
    longs = {"unseen_codes", "unseen_sites"}
    outputs = Schema([ColSpec("string" if c in texts else "long" if c in longs else "double", c,
                              required=c in ("task", "error")) for c in recovery_columns(action_classes)])
    inputs = Schema([ColSpec("string", "task"), ColSpec("string", "entry")])
    return mlflow.models.ModelSignature(inputs=inputs, outputs=outputs)


def log_recovery_model(parts: dict[str, RecoveryPart], tasks_example: dict[str, dict], name: str = "recovery",
                       gate: JointGate | None = None) -> Any:
    """Log the recommender to the active run; returns MLflow's ``ModelInfo``.

    ``tasks_example`` (``{task: entry}``) becomes the input example; each part's view, extras,
    target, class names and threshold, and the joint gate, are also written as ``recovery_spec.json``.
    """
    import wtc

    python_model = WTCRecoveryModel(parts, gate)
    example = pd.DataFrame({"task": list(tasks_example), "entry": [json.dumps(e) for e in tasks_example.values()]})
    answer = python_model.predict(None, example)
    failed = answer[answer["error"] != ""]
    if len(failed):
        raise ValueError(f"input example task {failed['task'].iloc[0]!r} is invalid: {failed['error'].iloc[0]}")
    spec = {t: {"view": p.spec.view, "extras": p.spec.extras, "target": p.spec.target,
                "class_names": p.spec.class_names, "threshold": p.threshold} for t, p in python_model.parts.items()}
    if gate is not None:
        spec["gate"] = gate.to_dict()
    requirements: list[str] = []
    for part in python_model.parts.values():
        requirements += [r for r in pipeline_requirements(part.pipeline) if r not in requirements]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "recovery_spec.json")
        path.write_text(json.dumps(spec, indent=2))
        pyfunc_logger = logging.getLogger("mlflow.pyfunc")
        level = pyfunc_logger.level
        pyfunc_logger.setLevel(logging.ERROR)  # MLflow's generic cloudpickle advice (see pyfunc.py)
        try:
            return mlflow.pyfunc.log_model(
                name=name, python_model=python_model, artifacts={"recovery_spec": str(path)},
                code_paths=[str(Path(wtc.__file__).parent)], signature=_signature(parts["action"].spec.class_names),
                input_example=example, pip_requirements=requirements)
        finally:
            pyfunc_logger.setLevel(level)
