"""A raw WTC task to a decision, without MLflow: task validation, features, AUTO/REVIEW thresholds, the recovery logic."""

from wtc.inference.recovery import RECOVERY_TARGETS, RecoveryPart, recommend_tasks
from wtc.inference.tasks import (
    AUTO,
    REVIEW,
    TASK_COLUMNS,
    TaskModelSpec,
    infer_view,
    predict_tasks,
    validate_tasks,
)

__all__ = ["AUTO", "RECOVERY_TARGETS", "REVIEW", "TASK_COLUMNS", "RecoveryPart", "TaskModelSpec", "infer_view",
           "predict_tasks", "recommend_tasks", "validate_tasks"]
