"""The search-space schema every model config writes and every back-end reads."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Param", "config_space", "optuna_distributions", "parse_space"]

_RANGE_KEYS = {"low", "high", "type", "log"}
_TYPES = ("int", "float")


@dataclass(frozen=True)
class Param:
    """One validated search dimension: a numeric range or a list of choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    type: str = "float"
    log: bool = False
    choices: tuple | None = None

    @property
    def is_categorical(self) -> bool:
        """Whether the dimension is a list of choices."""
        return self.choices is not None


def _parse_param(name: str, spec: Any) -> Param:
    if not isinstance(spec, Mapping):
        raise ValueError(f"search space parameter {name!r}: expected a mapping, got {spec!r}")
    keys = set(spec)
    if "choices" in keys:
        if keys != {"choices"}:
            raise ValueError(
                f"search space parameter {name!r}: 'choices' cannot be combined with "
                f"{sorted(keys - {'choices'})}"
            )
        choices = spec["choices"]
        if isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
            raise ValueError(f"search space parameter {name!r}: choices must be a list")
        choices = tuple(choices)
        if not choices:
            raise ValueError(f"search space parameter {name!r}: choices must not be empty")
        # Both back-ends key categories by their text; two choices with the same text
        # (1 and "1") could not be told apart afterwards.
        if len({str(c) for c in choices}) != len(choices):
            raise ValueError(f"search space parameter {name!r}: choices must be distinct")
        return Param(name, choices=choices)
    unknown = keys - _RANGE_KEYS
    if unknown or not {"low", "high"} <= keys:
        raise ValueError(
            f"search space parameter {name!r}: expected 'choices' or 'low'/'high' "
            f"(optional 'type', 'log'), got keys {sorted(keys)}"
        )
    kind = spec.get("type", "float")
    if kind not in _TYPES:
        raise ValueError(
            f"search space parameter {name!r}: type must be 'int' or 'float', got {kind!r}"
        )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"search space parameter {name!r}: log must be true or false, got {log!r}")
    low, high = spec["low"], spec["high"]
    for bound in (low, high):
        is_number = isinstance(bound, (int, float)) and not isinstance(bound, bool)
        if not is_number or not math.isfinite(bound):
            raise ValueError(
                f"search space parameter {name!r}: low and high must be finite numbers, "
                f"got low={low!r} high={high!r}"
            )
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(
            f"search space parameter {name!r}: an int range needs integer bounds, "
            f"got low={low!r} high={high!r}"
        )
    if not low < high:
        raise ValueError(
            f"search space parameter {name!r}: need low < high, got low={low!r} high={high!r}"
        )
    if log and low <= 0:
        raise ValueError(f"search space parameter {name!r}: a log range needs low > 0, got {low!r}")
    if kind == "int":
        low, high = int(low), int(high)
    else:
        low, high = float(low), float(high)
    return Param(name, low=low, high=high, type=kind, log=log)


def parse_space(space: Mapping | None) -> list[Param]:
    """Validate a search space given as plain dicts.

    Parameters
    ----------
    space : mapping of str to mapping, or None
        ``{name: {"low": ..., "high": ..., "type": "int"|"float", "log": bool}}`` or
        ``{name: {"choices": [...]}}``; ``type`` defaults to float and ``log`` to false.

    Returns
    -------
    list of Param
        One entry per parameter, in the order given.

    Raises
    ------
    ValueError
        One line naming the first malformed parameter.
    """
    if space is None:
        return []
    if not isinstance(space, Mapping):
        raise ValueError(
            f"search space must be a mapping of parameter names, got {type(space).__name__}"
        )
    return [_parse_param(str(name), spec) for name, spec in space.items()]


def config_space(cfg) -> dict:
    """The ``model.space`` node of a run config as plain Python (both GP and TPE read this format)."""
    from omegaconf import DictConfig, OmegaConf

    space = cfg.model.get("space") or {}
    return OmegaConf.to_container(space, resolve=True) if isinstance(space, DictConfig) else dict(space)


def optuna_distributions(params: list[Param]) -> dict:
    """Optuna distributions of parsed parameters: how TPE samples them and how a study stores any trial."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for p in params:
        if p.is_categorical:
            out[p.name] = CategoricalDistribution(p.choices)
        elif p.type == "int":
            out[p.name] = IntDistribution(p.low, p.high, log=p.log)
        else:
            out[p.name] = FloatDistribution(p.low, p.high, log=p.log)
    return out
