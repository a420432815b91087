"""What operators use: raw WTC tasks in, AUTO/REVIEW recommendations out (``wtc predict``, ``wtc serve``)."""

from wtc.serving.recovery import RECOVERY_TARGETS, RecoveryPart, recommend_tasks
from wtc.serving.tasks import (
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
