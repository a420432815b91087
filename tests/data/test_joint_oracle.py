"""The joint oracle of the whole recovery: P(action, splitting, xrootd, memory | task) from the generator's posterior."""

from __future__ import annotations

import numpy as np
import pytest

from wtc.data.synthetic import generate_history, joint_oracle_of, oracle_of
from wtc.data.targets import recovery_key


@pytest.fixture(scope="module")
def tiny():
    history, _ = generate_history(150, seed=8)
    return history


def test_rows_are_distributions_over_whole_recommendations(tiny):
    keys, proba = joint_oracle_of(tiny)
    assert proba.shape == (len(tiny), len(keys)) and len(set(keys)) == len(keys)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert ("clone", "", "", "") in keys and ("special", "", "", "") in keys
    assert all(k[0] == "acdc" and all(k[1:]) for k in keys if k[0] not in ("clone", "special"))


@pytest.mark.parametrize("workflow", [False, True])
def test_its_margins_are_the_per_target_oracles(tiny, workflow):
    """Summed over the parameters it is the action oracle; over xrootd and memory, action_split's acdc columns."""
    from wtc.data.synthetic import workflow_oracle_of

    keys, proba = joint_oracle_of(tiny, workflow=workflow)
    table = (workflow_oracle_of if workflow else oracle_of)(tiny)
    for action in ("acdc", "clone", "special"):
        margin = proba[:, [i for i, k in enumerate(keys) if k[0] == action]].sum(axis=1)
        np.testing.assert_allclose(margin, table[f"action/{action}"], rtol=1e-9, atol=1e-12)
    for split in ("1x", "2x", "10x"):
        margin = proba[:, [i for i, k in enumerate(keys) if k[:2] == ("acdc", split)]].sum(axis=1)
        np.testing.assert_allclose(margin, table[f"action_split/acdc_{split}"], rtol=1e-9, atol=1e-12)


def test_the_key_of_a_decision():
    assert recovery_key({"action": "recovery", "splitting": "2x", "xrootd": "enabled", "memory": "3500"}) == (
        "acdc", "2x", "enabled", "3-6GB")
    assert recovery_key({"action": "acdc"}) == ("acdc", "1x", "disabled", "unset")
    assert recovery_key({"action": "clone", "splitting": "10x", "memory": "4000"}) == ("clone", "", "", "")
    assert recovery_key({"action": "on-hold"}) == ("special", "", "", "")


def test_the_truth_of_a_generated_history_is_among_the_keys(tiny):
    keys, proba = joint_oracle_of(tiny)
    truth = [keys.index(recovery_key(entry["parameters"])) for entry in tiny.values()]
    # the oracle gives the recorded decision nonzero mass, more than chance on average
    assert (proba[np.arange(len(truth)), truth] > 0).all()
    assert proba[np.arange(len(truth)), truth].mean() > 5 / len(keys)
