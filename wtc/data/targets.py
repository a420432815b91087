"""Targets: turn the operator's recorded parameters into class labels for each prediction task."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

if TYPE_CHECKING:
    from wtc.data.history import History

log = logging.getLogger(__name__)

#: Raw ``parameters.action`` values and the action group each belongs to.
ACTION_GROUPS = {
    "acdc": "acdc",
    "recovery": "acdc",
    "clone": "clone",
    "by-pass": "special",
    "force-complete": "special",
    "on-hold": "special",
}
ACTIONS = ("acdc", "clone", "special")
SPECIAL_ACTIONS = ("by-pass", "force-complete", "on-hold")

_SPLIT_RE = re.compile(r"^(\d+)x$")
#: Splittings at or above this factor (and ``max``) are one class in the aggregated target.
AGGREGATE_SPLIT_FROM = 20
AGGREGATED_SPLIT = f"{AGGREGATE_SPLIT_FROM}x+"

#: Upper edges (MB, inclusive) of the requested-memory buckets, and their labels.
MEMORY_EDGES_MB = (3000, 6000, 10000, 16000)
MEMORY_BUCKETS = ("unset", "<=3GB", "3-6GB", "6-10GB", "10-16GB", ">16GB")

TARGETS = (
    "binary",
    "action",
    "action_split",
    "action_split_aggregated",
    "splitting",
    "xrootd",
    "memory",
)


def action_group(action: str) -> str:
    """acdc (recovery included), clone or special."""
    return ACTION_GROUPS[action]


def normalise_splitting(value) -> str:
    """Canonical splitting: missing or empty means ``1x``; otherwise ``<n>x`` or ``max``."""
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return "1x"
    text = str(value).strip().lower()
    if text == "max" or _SPLIT_RE.match(text):
        return text
    raise ValueError(f"splitting must be '<n>x' or 'max', got {value!r}")


def split_rank(split: str) -> float:
    """Order of splittings: 1x < 2x < ... < 100x < 20x+ (aggregated) < max."""
    if split == "max":
        return float("inf")
    if split == AGGREGATED_SPLIT:
        return 1e9
    return float(_SPLIT_RE.match(split).group(1))


def aggregate_splitting(split: str) -> str:
    """Merge splittings of 20x and above, and max, into one class (as in the seed study)."""
    if split == "max" or split_rank(split) >= AGGREGATE_SPLIT_FROM:
        return AGGREGATED_SPLIT
    return split


def normalise_xrootd(value) -> str:
    """``enabled`` or ``disabled``; missing or empty means disabled."""
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return "disabled"
    if isinstance(value, bool):
        return "enabled" if value else "disabled"
    text = str(value).strip().lower()
    if text in ("enabled", "disabled"):
        return text
    raise ValueError(f"xrootd must be 'enabled' or 'disabled', got {value!r}")


def memory_bucket(value) -> str:
    """Bucket of a requested memory in MB; missing or empty means ``unset``."""
    if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
        return "unset"
    try:
        mb = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"memory must be a number of MB, got {value!r}") from None
    if not np.isfinite(mb) or mb <= 0:
        raise ValueError(f"memory must be a positive number of MB, got {value!r}")
    return MEMORY_BUCKETS[1 + int(np.searchsorted(MEMORY_EDGES_MB, mb, side="left"))]


def _binary(p: Mapping) -> str:
    return "acdc" if action_group(p["action"]) == "acdc" else "non-acdc"


def _action(p: Mapping) -> str:
    return action_group(p["action"])


def _action_split(p: Mapping) -> str:
    return f"{action_group(p['action'])}_{normalise_splitting(p.get('splitting'))}"


def _action_split_aggregated(p: Mapping) -> str:
    split = aggregate_splitting(normalise_splitting(p.get("splitting")))
    return f"{action_group(p['action'])}_{split}"


def _splitting(p: Mapping) -> str:
    return normalise_splitting(p.get("splitting"))


def _xrootd(p: Mapping) -> str:
    return normalise_xrootd(p.get("xrootd"))


def _memory(p: Mapping) -> str:
    return memory_bucket(p.get("memory"))


_LABELLERS: dict[str, Callable[[Mapping], str]] = {
    "binary": _binary,
    "action": _action,
    "action_split": _action_split,
    "action_split_aggregated": _action_split_aggregated,
    "splitting": _splitting,
    "xrootd": _xrootd,
    "memory": _memory,
}


def label_of(parameters: Mapping, target: str) -> str:
    """The class of one task's recorded ``parameters`` under ``target``.

    Raises KeyError/ValueError on values the target cannot interpret; ``load_history``
    validates every field first, so a loaded history never raises here.
    """
    try:
        labeller = _LABELLERS[target]
    except KeyError:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}") from None
    return labeller(parameters)


def class_sort_key(target: str) -> Callable[[str], tuple]:
    """Canonical order of a target's classes (actions, then splitting from small to large)."""

    def split_key(split: str) -> tuple:
        return (split_rank(split),)

    def action_key(name: str) -> tuple:
        action, _, split = name.partition("_")
        return (ACTIONS.index(action), split_rank(split))

    keys: dict[str, Callable[[str], tuple]] = {
        "binary": lambda c: (("acdc", "non-acdc").index(c),),
        "action": lambda c: (ACTIONS.index(c),),
        "action_split": action_key,
        "action_split_aggregated": action_key,
        "splitting": split_key,
        "xrootd": lambda c: (("disabled", "enabled").index(c),),
        "memory": lambda c: (MEMORY_BUCKETS.index(c),),
    }
    return keys[target]


def build_target(history: "History", target: str) -> tuple[np.ndarray, list[str]]:
    """Labels of every task of ``history`` under ``target``.

    Parameters
    ----------
    history : History
        A loaded actions history.
    target : str
        One of ``binary``, ``action``, ``action_split``, ``action_split_aggregated``,
        ``splitting``, ``xrootd``, ``memory``.

    Returns
    -------
    y : ndarray of int64, shape (n_tasks,)
        Index into ``class_names`` for labelled tasks and ``-1`` for unlabelled ones (tasks
        without ``parameters``), which must be left out of training: select ``y >= 0``.
    class_names : list of str
        The classes that occur among the labelled tasks, in canonical order.
    """
    if target not in _LABELLERS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    labels = [label_of(p, target) if p is not None else None for p in history.parameter_records]
    present = sorted({lab for lab in labels if lab is not None}, key=class_sort_key(target))
    index = {name: i for i, name in enumerate(present)}
    y = np.fromiter((index[lab] if lab is not None else -1 for lab in labels), dtype=np.int64, count=len(labels))
    n_unlabelled = int((y < 0).sum())
    if n_unlabelled:
        log.info("%s: %d of %d tasks have no parameters (unlabelled); they are left out of training",
                 history.path, n_unlabelled, len(y))
    return y, present
