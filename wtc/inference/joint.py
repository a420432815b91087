"""The whole recommendation: the parts' probabilities combined, its correctness, and its AUTO gate.

An operator executes the whole recommendation (the action; for an acdc also its splitting,
xrootd and memory), so that is what AUTO must be right about. Per-part thresholds do not give it:
their precisions multiply (four parts at 95% each are right together far less often, and holding
each at 95% left 0.05% of a fresh history AUTO). Here:

- the recommendation's **confidence** is the product of the probabilities of the parts it uses
  (the action's alone for a clone or special). Each part is its own model, so the product is their
  joint probability if the parts are independent given the task. It need not be calibrated: the
  threshold is certified on realised joint correctness, so any score keeps the guarantee and a
  better ranking only buys coverage. The product needs no fitting of its own, so the
  out-of-fold rows that certify the threshold stay unseen by it (a learned combiner would need
  rows of its own);
- the **joint gate** (:func:`certify_gate`) certifies a threshold on that confidence by
  Learn-then-Test (:func:`wtc.evaluation.gate.ltt_threshold`) on the parts' out-of-fold
  predictions of the training split, workflows as the unit of independence: with probability
  ≥ 1-δ the whole recommendation is right on ≥ 1-α of the tasks it acts on;
- beside it, the **action gate** certifies the action's own probability on the action alone: in
  mode ``action`` a task that misses the joint gate but clears this one is AUTO for the action,
  its parameters shown as suggestions.

A part that predicts the merged rare class ``other`` is never AUTO (not an applicable value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from wtc.data.dataset import OTHER_CLASS

__all__ = ["ACDC", "MODES", "PARTS", "Combined", "JointGate", "certify_gate", "combine", "joint_correct"]

ACDC = "acdc"
#: The parts of a recommendation, the action first; the others apply to an acdc only.
PARTS = ("action", "splitting", "xrootd", "memory")
#: ``joint``: AUTO only for a whole recommendation that clears the joint gate; ``action``: also AUTO
#: for the action alone (clearing the action gate), the parameters as suggestions.
MODES = ("joint", "action")


@dataclass
class Combined:
    """The parts' most probable values per task and the whole recommendation's confidence.

    ``values``/``probabilities``: per part (``action`` included) its value and probability, empty
    and NaN where the part does not apply (a parameter of a non-acdc); ``confidence``: their
    product over the parts used; ``other``: a part used predicts ``other``.
    """

    values: dict[str, np.ndarray]
    probabilities: dict[str, np.ndarray]
    confidence: np.ndarray
    other: np.ndarray

    @property
    def acdc(self) -> np.ndarray:
        return self.values["action"] == ACDC

    def weakest(self, i: int) -> tuple[str, float]:
        """The part of task ``i`` with the lowest probability (what held a whole recommendation back)."""
        used = [(p, float(self.probabilities[p][i])) for p in self.values if not math.isnan(self.probabilities[p][i])]
        return min(used, key=lambda item: item[1])


def combine(probabilities: Mapping[str, np.ndarray], class_names: Mapping[str, Sequence[str]]) -> Combined:
    """Each part's argmax and probability, and the product over the parts a task's action uses.

    Parameters
    ----------
    probabilities : mapping of part name to ndarray (n_tasks, n_classes)
        ``action`` required; ``splitting``, ``xrootd``, ``memory`` optional.
    class_names : mapping of part name to its classes (the columns' names)
    """
    if "action" not in probabilities:
        raise ValueError("the whole recommendation needs the action part")
    action = _argmax(probabilities["action"], class_names["action"])
    acdc = action[0] == ACDC
    values, probs = {"action": action[0]}, {"action": action[1]}
    confidence = action[1].copy()
    other = action[0] == OTHER_CLASS
    for part in PARTS[1:]:
        if part not in probabilities:
            continue
        value, p = _argmax(probabilities[part], class_names[part])
        values[part] = np.where(acdc, value, "").astype(object)
        probs[part] = np.where(acdc, p, np.nan)
        confidence = np.where(acdc, confidence * p, confidence)
        other |= acdc & (value == OTHER_CLASS)
    return Combined(values, probs, confidence, other)


def _argmax(proba: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    proba = np.asarray(proba, dtype=float)
    best = proba.argmax(axis=1)
    return np.asarray(list(names), dtype=object)[best], proba[np.arange(proba.shape[0]), best]


def joint_correct(combined: Combined, truth: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Whether each whole recommendation, and each action, is what the operator did.

    Parameters
    ----------
    combined : Combined
    truth : sequence of tuple
        Each task's :func:`wtc.data.targets.recovery_key` ``(action, splitting, xrootd, memory)``.

    Returns
    -------
    whole, action : ndarray of bool
        ``whole``: the action is right and, for an acdc, every parameter the recommender has a
        part for; ``action``: the action is right.
    """
    truth_action = np.array([t[0] for t in truth], dtype=object)
    action = combined.values["action"] == truth_action
    whole = action.copy()
    for j, part in enumerate(PARTS[1:], start=1):
        if part in combined.values:
            value = np.array([t[j] for t in truth], dtype=object)
            whole &= ~combined.acdc | (combined.values[part] == value)
    return whole & ~combined.other, action & (combined.values["action"] != OTHER_CLASS)


@dataclass
class JointGate:
    """The recommender's AUTO thresholds, certified on out-of-fold predictions of its training split.

    ``joint_threshold`` on the whole recommendation's confidence, ``action_threshold`` on the
    action's probability (``inf``: never AUTO); ``mode`` one of :data:`MODES`; the rest says what
    they were certified on (``*_coverage``: the share of calibration rows AUTO).
    """

    joint_threshold: float
    action_threshold: float
    mode: str = "joint"
    alpha: float = 0.05
    delta: float = 0.1
    method: str = ""
    joint_coverage: float = 0.0
    action_coverage: float = 0.0
    n_rows: int = 0
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def decide(self, combined: Combined) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """AUTO/REVIEW per task: ``auto`` (bool), ``auto_mode`` (``joint``/``action``/empty) and
        ``below_threshold`` (what held a task back, empty when its whole recommendation is AUTO)."""
        whole = (combined.confidence >= self.joint_threshold) & ~combined.other
        action_p = combined.probabilities["action"]
        action_ok = (action_p >= self.action_threshold) & (combined.values["action"] != OTHER_CLASS)
        by_action = ~whole & action_ok & (self.mode == "action")
        auto_mode = np.where(whole, "joint", np.where(by_action, "action", "")).astype(object)
        reasons = []
        for i in range(combined.confidence.size):
            if whole[i]:
                reasons.append("")
                continue
            if combined.other[i]:
                part = next(p for p in combined.values if combined.values[p][i] == OTHER_CLASS)
                reasons.append(f"{part}: other (a rare value)")
                continue
            part, p = combined.weakest(i)
            text = f"{below('whole', combined.confidence[i], self.joint_threshold)} (weakest: {part} {p:.3g})"
            if self.mode == "action" and not action_ok[i]:
                text += f"; {below('action', action_p[i], self.action_threshold)}"
            reasons.append(text)
        return whole | by_action, auto_mode, reasons


def below(what: str, confidence: float, threshold: float | None) -> str:
    """What held a task back, for an operator: ``action 0.82<0.9``, or ``action 0.82, no threshold
    certified`` where the gate found none (then nothing of that kind is ever AUTO)."""
    if threshold is None or not math.isfinite(threshold):
        return f"{what} {confidence:.3g}, no threshold certified"
    return f"{what} {confidence:.3g}<{threshold:.3g}"


def certify_gate(combined: Combined, truth: Sequence[tuple], groups, mode: str = "joint", alpha: float = 0.05,
                 delta: float = 0.1, rng=0) -> JointGate:
    """Certify the joint and the action thresholds on out-of-fold rows (Learn-then-Test, workflow groups).

    Parameters
    ----------
    combined : Combined
        :func:`combine` of the parts' out-of-fold probabilities of the training split.
    truth : sequence of tuple
        The rows' recovery keys (:func:`wtc.data.targets.recovery_key`).
    groups : array-like
        The workflow of each row: the unit of independence.
    mode, alpha, delta, rng
        As for :class:`JointGate` and :func:`wtc.evaluation.gate.ltt_threshold`.
    """
    from wtc.evaluation.gate import ltt_threshold

    whole, action = joint_correct(combined, truth)
    # A row predicting "other" is never AUTO: confidence 0 keeps it below every certified threshold.
    joint_score = np.where(combined.other, 0.0, combined.confidence)
    action_score = np.where(combined.values["action"] == OTHER_CLASS, 0.0, combined.probabilities["action"])
    joint = ltt_threshold(joint_score, whole, groups=groups, alpha=alpha, delta=delta, rng=rng)
    alone = ltt_threshold(action_score, action, groups=groups, alpha=alpha, delta=delta, rng=rng)
    return JointGate(joint.threshold, alone.threshold, mode, alpha, delta, joint.method, joint.coverage,
                     alone.coverage, int(whole.size),
                     {"joint_precision": joint.precision, "action_precision": alone.precision,
                      "joint_p_value": joint.p_value, "action_p_value": alone.p_value})
