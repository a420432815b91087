"""Targets: turn the operator's recorded parameters into class labels for each prediction task."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
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


def check_action(value) -> str:
    """The action group of a raw ``parameters.action`` (ValueError when it is not a known action)."""
    if not isinstance(value, str) or value not in ACTION_GROUPS:
        raise ValueError(f"must be one of {', '.join(ACTION_GROUPS)}, got {value!r}")
    return ACTION_GROUPS[value]


#: How the loader validates each decision field of ``parameters`` (each raises ValueError on a
#: value it cannot interpret). A target's ``field`` names one of these.
FIELD_CHECKS: dict[str, Callable] = {
    "action": check_action,
    "splitting": normalise_splitting,
    "xrootd": normalise_xrootd,
    "memory": memory_bucket,
}


def _split_order(split: str) -> tuple:
    return (split_rank(split),)


def _action_split_order(name: str) -> tuple:
    action, _, split = name.partition("_")
    return (ACTIONS.index(action), split_rank(split))


@dataclass(frozen=True)
class Target:
    """One prediction target: the parameter field it reads, how a task is labelled, the class order.

    ``label`` maps a task's validated ``parameters`` to its class; ``order`` is the sort key of
    the class names (canonical order of probability columns, confusion matrices, oracle).
    """

    name: str
    field: str
    label: Callable[[Mapping], str]
    order: Callable[[str], tuple]
    description: str = ""


#: Every target a run can learn, by name (``target=<name>``). A new target is one entry here
#: and one file in ``conf/target/``.
TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("binary", "action", lambda p: "acdc" if action_group(p["action"]) == "acdc" else "non-acdc",
           lambda c: (("acdc", "non-acdc").index(c),), "acdc (recovery included) vs everything else"),
    Target("action", "action", lambda p: action_group(p["action"]), lambda c: (ACTIONS.index(c),),
           "acdc, clone or special"),
    Target("action_split", "splitting",
           lambda p: f"{action_group(p['action'])}_{normalise_splitting(p.get('splitting'))}",
           _action_split_order, "action and job splitting (acdc_1x, clone_10x, ...)"),
    Target("action_split_aggregated", "splitting",
           lambda p: f"{action_group(p['action'])}_{aggregate_splitting(normalise_splitting(p.get('splitting')))}",
           _action_split_order, "action and splitting, splittings of 20x and above (and max) as one class"),
    Target("splitting", "splitting", lambda p: normalise_splitting(p.get("splitting")), _split_order,
           "job splitting alone"),
    Target("xrootd", "xrootd", lambda p: normalise_xrootd(p.get("xrootd")),
           lambda c: (("disabled", "enabled").index(c),), "xrootd enabled or disabled"),
    Target("memory", "memory", lambda p: memory_bucket(p.get("memory")), lambda c: (MEMORY_BUCKETS.index(c),),
           "requested memory bucket"),
)}


#: The parts of a whole recovery: the action, and for an acdc its splitting, xrootd and memory.
RECOVERY_PARTS = ("action", "splitting", "xrootd", "memory")


def recovery_key(parameters: Mapping) -> tuple[str, str, str, str]:
    """The whole recommendation an operator executes, as ``(action, splitting, xrootd, memory)``.

    The action group (:data:`TARGETS` ``action``); for an ``acdc`` also the splitting, xrootd and
    memory bucket of ``splitting``/``xrootd``/``memory``; for any other action those three are
    empty (the recovery recommender proposes them only for an acdc).
    """
    action = action_group(parameters["action"])
    if action != "acdc":
        return (action, "", "", "")
    return (action, *(label_of(parameters, part) for part in RECOVERY_PARTS[1:]))


def target_of(name: str) -> Target:
    """The :class:`Target` called ``name`` (ValueError listing the valid names otherwise)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}") from None


def label_of(parameters: Mapping, target: str) -> str:
    """The class of one task's recorded ``parameters`` under ``target``.

    Raises KeyError/ValueError on values the target cannot interpret; ``load_history``
    validates every field first, so a loaded history never raises here.
    """
    return target_of(target).label(parameters)


def class_sort_key(target: str) -> Callable[[str], tuple]:
    """Canonical order of a target's classes (actions, then splitting from small to large)."""
    return target_of(target).order


def build_target(history: "History", target: str) -> tuple[np.ndarray, list[str]]:
    """Labels of every task of ``history`` under ``target``.

    Parameters
    ----------
    history : History
        A loaded actions history.
    target : str
        A name of :data:`TARGETS`.

    Returns
    -------
    y : ndarray of int64, shape (n_tasks,)
        Index into ``class_names`` for labelled tasks and ``-1`` for unlabelled ones (tasks
        without ``parameters``), which must be left out of training: select ``y >= 0``.
    class_names : list of str
        The classes that occur among the labelled tasks, in canonical order.
    """
    spec = target_of(target)
    labels = [spec.label(p) if p is not None else None for p in history.parameter_records]
    present = sorted({lab for lab in labels if lab is not None}, key=spec.order)
    index = {name: i for i, name in enumerate(present)}
    y = np.fromiter((index[lab] if lab is not None else -1 for lab in labels), dtype=np.int64, count=len(labels))
    n_unlabelled = int((y < 0).sum())
    if n_unlabelled:
        log.info("%s: %d of %d tasks have no parameters (unlabelled); they are left out of training",
                 history.path, n_unlabelled, len(y))
    return y, present
