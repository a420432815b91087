"""The params of a request to the served task model: checked, so a bad value gets HTTP 400, never wrong decisions."""

from __future__ import annotations

import math

import mlflow

__all__ = ["NO_THRESHOLD", "request_threshold"]

#: Default of the ``threshold`` param: "not given" (a param schema needs a typed default, and
#: JSON has no NaN): the threshold stored with the model is used, else every task is REVIEW.
NO_THRESHOLD = -1.0


def request_threshold(params: dict | None, default: float | None) -> float | None:
    """The AUTO threshold a request's ``params`` ask for: ``default`` (the model's own) when none is
    given (or :data:`NO_THRESHOLD`), else a finite number in [0, 1]; any other value (-5 would make
    every task AUTO, NaN every task REVIEW) is refused as MLflow's INVALID_PARAMETER_VALUE, which
    the scoring server answers with HTTP 400 and no decision at all."""
    value = (params or {}).get("threshold", NO_THRESHOLD)
    if value is None:
        return default
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if number == NO_THRESHOLD:
        return default
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        shown = " ".join(repr(value).split())[:80]
        raise mlflow.exceptions.MlflowException.invalid_parameter_value(
            f"params.threshold must be a number between 0 and 1 (or {NO_THRESHOLD}: the model's own), got {shown}")
    return number
