"""What operators use: raw WTC tasks in, AUTO/REVIEW recommendations out (``wtc predict``, ``wtc serve``)."""

from wtc.serving.tasks import (
    AUTO,
    REVIEW,
    TASK_COLUMNS,
    TaskModelSpec,
    infer_view,
    predict_tasks,
    validate_tasks,
)

__all__ = ["AUTO", "REVIEW", "TASK_COLUMNS", "TaskModelSpec", "infer_view", "predict_tasks", "validate_tasks"]
