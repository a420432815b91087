"""Which best parameters sit at a bound of their search range (the range may be cutting the optimum off)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from wtc.tuning.space import parse_space

__all__ = ["AtBound", "params_at_bounds"]

#: A value within this share of the range's width (in log units for a log range) of a bound sits at it.
TOLERANCE = 0.01


@dataclass(frozen=True)
class AtBound:
    """One parameter whose best value sits at a bound: ``side`` is ``low`` or ``high``."""

    name: str
    value: float
    side: str
    bound: float

    def __str__(self) -> str:
        return f"{self.name}={self.value:g} at its {self.side} bound {self.bound:g}"


def params_at_bounds(space: Mapping | None, params: Mapping, tolerance: float = TOLERANCE) -> list[AtBound]:
    """The numeric parameters of ``params`` at (or within ``tolerance`` of) a bound of ``space``.

    Parameters
    ----------
    space : mapping
        The search space (see :func:`wtc.tuning.parse_space`); choices are never at a bound.
    params : mapping
        The best trial's parameters.
    tolerance : float
        Share of the range's width, measured in log units for a ``log`` range.

    Returns
    -------
    list of AtBound
        In the space's order.
    """
    found = []
    for param in parse_space(space):
        if param.is_categorical or param.name not in params:
            continue
        value = float(params[param.name])
        scale = (lambda v: math.log(v)) if param.log else (lambda v: v)
        low, high = scale(param.low), scale(param.high)
        position = (scale(value) - low) / (high - low)
        if position <= tolerance:
            found.append(AtBound(param.name, value, "low", param.low))
        elif position >= 1 - tolerance:
            found.append(AtBound(param.name, value, "high", param.high))
    return found
