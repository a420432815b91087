"""The whole recommendation: how the parts combine, when it is right, and its certified joint and action gates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wtc.inference.joint import JointGate, certify_gate, combine, joint_correct

NAMES = {"action": ["acdc", "clone", "other"], "splitting": ["1x", "2x"], "xrootd": ["disabled", "enabled"],
         "memory": ["unset", "3-6GB", "other"]}


def combined_of(action, splitting, xrootd, memory):
    return combine({"action": np.array(action), "splitting": np.array(splitting), "xrootd": np.array(xrootd),
                    "memory": np.array(memory)}, NAMES)


@pytest.fixture
def three():
    """An acdc (0.9 x 0.8 x 0.95 x 0.6), a clone (0.7) and an acdc whose memory is 'other'."""
    return combined_of(action=[[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.95, 0.05, 0]],
                       splitting=[[0.2, 0.8], [0.9, 0.1], [0.99, 0.01]],
                       xrootd=[[0.95, 0.05], [0.5, 0.5], [0.99, 0.01]],
                       memory=[[0.6, 0.3, 0.1], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])


def test_confidence_is_the_product_of_the_parts_an_action_uses(three):
    assert three.values["action"].tolist() == ["acdc", "clone", "acdc"]
    assert three.values["splitting"].tolist() == ["2x", "", "1x"]
    assert three.confidence == pytest.approx([0.9 * 0.8 * 0.95 * 0.6, 0.7, 0.95 * 0.99 * 0.99 * 0.8])
    assert math.isnan(three.probabilities["memory"][1])
    assert three.other.tolist() == [False, False, True]
    assert three.weakest(0) == ("memory", pytest.approx(0.6))


def test_the_whole_is_right_only_when_every_part_an_acdc_uses_is(three):
    truth = [("acdc", "2x", "disabled", "unset"), ("clone", "", "", ""), ("acdc", "1x", "disabled", "other")]
    whole, action = joint_correct(three, truth)
    assert whole.tolist() == [True, True, False]  # an "other" recommendation is never right
    assert action.tolist() == [True, True, True]
    wrong_memory = [("acdc", "2x", "disabled", "3-6GB"), ("acdc", "1x", "disabled", "unset"), truth[2]]
    whole, action = joint_correct(three, wrong_memory)
    assert whole.tolist() == [False, False, False] and action.tolist() == [True, False, True]


def test_the_gate_decides_on_the_whole_and_in_mode_action_on_the_action_alone(three):
    gate = JointGate(joint_threshold=0.45, action_threshold=0.85)
    auto, mode, reasons = gate.decide(three)
    assert auto.tolist() == [False, True, False] and mode.tolist() == ["", "joint", ""]
    assert reasons[0] == "whole 0.41<0.45 (weakest: memory 0.6)" and reasons[1] == ""
    assert reasons[2] == "memory: other (a rare value)"
    gate.mode = "action"
    auto, mode, reasons = gate.decide(three)
    # the acdcs' actions (0.9, 0.95) clear 0.85: AUTO for the action, the parameters are suggestions
    # (the "other" memory too: nothing but the action is executed)
    assert auto.tolist() == [True, True, True] and mode.tolist() == ["action", "joint", "action"]
    never = JointGate(math.inf, math.inf, "action")
    auto, mode, reasons = never.decide(three)
    assert not auto.any() and reasons[1] == "whole 0.7, no threshold certified (weakest: action 0.7); action 0.7, no threshold certified"


def test_a_bad_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be one of joint, action"):
        JointGate(0.5, 0.5, mode="parts")


def test_certified_thresholds_hold_on_fresh_rows_from_the_same_law():
    """Parts whose probabilities are the truth's law: the certified whole is right >= 95% on new rows,
    and the action alone (one part, not four) is AUTO on more of them."""
    rng = np.random.default_rng(0)

    def draw(n):
        p = {part: 1 - rng.beta(0.3, 15.0, n) for part in ("action", "splitting", "xrootd", "memory")}
        probabilities = {"action": np.c_[p["action"], 1 - p["action"], np.zeros(n)],
                         "splitting": np.c_[p["splitting"], 1 - p["splitting"]],
                         "xrootd": np.c_[p["xrootd"], 1 - p["xrootd"]],
                         "memory": np.c_[p["memory"], 1 - p["memory"], np.zeros(n)]}
        hit = {part: rng.random(n) < p[part] for part in p}
        truth = [("acdc" if hit["action"][i] else "clone",
                  *(("1x" if hit["splitting"][i] else "2x"), ("disabled" if hit["xrootd"][i] else "enabled"),
                    ("unset" if hit["memory"][i] else "3-6GB")))
                 if hit["action"][i] else ("clone", "", "", "") for i in range(n)]
        return combine(probabilities, NAMES), truth

    calibration, truth = draw(4000)
    gate = certify_gate(calibration, truth, groups=np.arange(4000), mode="action")
    assert 0 < gate.joint_coverage < gate.action_coverage <= 1
    assert gate.action_threshold < gate.joint_threshold < 1
    fresh, fresh_truth = draw(20000)
    whole, action = joint_correct(fresh, fresh_truth)
    auto, mode, _ = gate.decide(fresh)
    assert whole[mode == "joint"].mean() >= 0.95
    assert action[auto].mean() >= 0.95
    assert (mode == "action").any()
