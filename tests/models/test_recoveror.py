"""The production rules policy: one test per rule of Unified's recoveror and AIErrorHandling's StaticActions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from wtc.models.recoveror import RecoverorPolicy

#: codes-view columns: good and bad statuses of the codes the rules name, plus an unruled code (8001)
CODES = [50664, 50660, 61104, 8028, 71305, 99109, 8021, 8001, -1, 99303, 50513, 71304, 71104]
NAMES = [f"{status}:{code}:*" for status in ("good", "bad") for code in CODES] + ["row_summary:total"]


def row(good=None, bad=None):
    """One task's counts: ``{code: count}`` at ready (good) and not-ready (bad) sites."""
    x = np.zeros(len(NAMES))
    for status, counts in (("good", good or {}), ("bad", bad or {})):
        for code, n in counts.items():
            x[NAMES.index(f"{status}:{code}:*")] = n
    x[-1] = 999.0  # a context column is never an error count
    return x


def fitted(target="action", sources="both", classes=("acdc", "clone", "special")):
    X = np.vstack([row({8001: 5})] * len(classes))
    return RecoverorPolicy(feature_names=NAMES, class_names=list(classes), target=target,
                           sources=sources).fit(X, np.arange(len(classes)))


def recommend(good=None, bad=None, **kwargs):
    return fitted(**kwargs).recommendations(sp.csr_array(row(good, bad)[None, :])).iloc[0]


@pytest.mark.parametrize("good, splitting, memory", [
    ({50664: 3, 8001: 7}, "2x", ""),          # time-out above 20% of the failures: ACDC, splitting x2
    ({50660: 3, 8001: 7}, "1x", "3500"),      # memory excess: ACDC with +1000 MB on the base 2,500
    ({61104: 3, 8001: 7}, "1x", ""),          # failed submit: plain recovery
    ({8028: 3, 8001: 7}, "1x", ""),           # read error: plain recovery
    ({71305: 3, 8001: 7}, "1x", ""),          # long pending: plain recovery
    ({50664: 3, 50660: 3, 8001: 4}, "2x", "3500"),  # two rules: both solutions
])
def test_unified_recover_rules_fire_above_20_percent(good, splitting, memory):
    rec = recommend(good, sources="unified")
    assert rec["auto"] and rec["action"] == "acdc" and rec["xrootd"] == "disabled"
    assert (rec["splitting"], rec["memory"]) == (splitting, memory)
    assert rec["rule"].startswith("unified ")


def test_unified_needs_strictly_more_than_20_percent():
    assert not recommend({50664: 2, 8001: 8}, sources="unified")["auto"]  # exactly 20%: rate > 20 is false
    assert recommend({50664: 21, 8001: 79}, sources="unified")["auto"]


def test_unified_shares_count_every_status():
    # 3 of 10 failures, two of them at a not-ready site: still 30% of the task's failures
    assert recommend({50664: 1, 8001: 7}, {50664: 2}, sources="unified")["splitting"] == "2x"


def test_stage_out_blocks_automatic_recovery():
    rec = recommend({50664: 4, 99109: 3, 8001: 3}, sources="unified")
    assert not rec["auto"] and rec["action"] == "" and "block 99109" in rec["rule"]
    # ... and it vetoes StaticActions' own 99109 acdc too
    rec = recommend({99109: 8, 8001: 2}, sources="both")
    assert not rec["auto"] and "block 99109" in rec["rule"]
    assert recommend({99109: 8, 8001: 2}, sources="static")["auto"]


def test_details_rules_never_fire_without_error_details():
    # 8021 (FileReadError) and 8001 (no LHE event) need the jobs' error details, which a history lacks
    assert not recommend({8021: 9, 8001: 1}, sources="unified")["auto"]
    assert not recommend({8001: 10}, sources="both")["auto"]


@pytest.mark.parametrize("good, bad, auto", [
    ({99303: 4, 8001: 3}, None, True),           # condor issue: acdc
    ({50513: 4, 8001: 3}, None, True),           # scram/site issue: acdc
    ({-1: 4, 8001: 3}, None, True),              # unknown error, its sites are back: acdc
    ({-1: 1, 8001: 3}, {-1: 3}, False),          # ... at a site still not ready: automatic-wait
    ({71304: 4, 8001: 3}, None, True),           # time-out, no site in drain: acdc
    ({71304: 4, 8001: 2}, {8001: 1}, False),     # ... any code at a not-ready site: automatic-wait
    ({71104: 4, 8001: 3}, None, True),           # site was drained, it is back: acdc
    ({99303: 3, 8001: 7}, None, False),          # the dominant code is not a ruled one
    ({99303: 31, 8001: 29, 50513: 20, 71304: 20}, None, True),  # 31% dominant: acts
])
def test_static_actions_act_when_the_dominant_code_exceeds_30_percent(good, bad, auto):
    rec = recommend(good, bad, sources="static")
    assert rec["auto"] == auto
    if auto:
        assert (rec["action"], rec["splitting"], rec["memory"]) == ("acdc", "1x", "")
    assert ("static" in rec["rule"]) == (rec["rule"] != "no rule fires")


def test_static_needs_strictly_more_than_30_percent():
    assert not recommend({99303: 3, 8001: 3, 50513: 2, 71304: 2}, sources="static")["auto"]  # ties at 30%


def test_proba_puts_mass_one_on_the_rules_class_and_the_prior_elsewhere():
    policy = RecoverorPolicy(feature_names=NAMES, class_names=["1x", "2x", "other"], target="splitting")
    X = np.vstack([row({50664: 5, 8001: 5}), row({61104: 5, 8001: 5}), row({8001: 10}), row({8001: 10})])
    policy.fit(X, np.array([1, 0, 0, 2]))
    proba = policy.predict_proba(X)
    np.testing.assert_allclose(proba[0], [0, 1, 0])
    np.testing.assert_allclose(proba[1], [1, 0, 0])
    np.testing.assert_allclose(proba[2], [0.5, 0.25, 0.25])  # no rule: the training prior
    assert policy.auto(X).tolist() == [True, True, False, False]


@pytest.mark.parametrize("target, classes, label", [
    ("binary", ["acdc", "non-acdc"], "acdc"),
    ("action", ["acdc", "clone", "special"], "acdc"),
    ("memory", ["unset", "<=3GB", "3-6GB"], "3-6GB"),
    ("xrootd", ["disabled", "enabled"], "disabled"),
    ("action_split", ["acdc_1x", "acdc_2x", "clone_1x"], "acdc_1x"),
])
def test_the_recommendation_is_translated_to_each_target(target, classes, label):
    policy = fitted(target=target, classes=classes)
    proba = policy.predict_proba(row({50660: 5, 8001: 5})[None, :])
    assert classes[int(proba.argmax())] == label and proba.max() == 1.0


def test_a_rules_class_the_target_lacks_is_review():
    # a 2x splitting merged into "other" at training: the time-out rule cannot answer for this target
    policy = fitted(target="splitting", classes=["1x", "other"])
    X = np.vstack([row({50664: 5, 8001: 5}), row({61104: 5, 8001: 5})])
    assert policy.auto(X).tolist() == [False, True]


def test_without_exit_code_columns_nothing_fires():
    policy = RecoverorPolicy().fit(np.ones((4, 3)), np.array(["a", "b", "a", "b"]))
    assert not policy.auto(np.ones((2, 3))).any()
    np.testing.assert_allclose(policy.predict_proba(np.ones((2, 3))), 0.5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="sources"):
        RecoverorPolicy(sources="nope").fit(np.ones((2, 1)), [0, 1])
    with pytest.raises(ValueError, match="unknown target"):
        RecoverorPolicy(target="nope").fit(np.ones((2, 1)), [0, 1])
