"""build_target: every target's classes on a hand-written history; unlabelled tasks excluded."""

from __future__ import annotations

import pytest

from wtc.data import TARGETS, build_target, load_history
from wtc.data.targets import aggregate_splitting, memory_bucket, normalise_splitting

# tasks: acdc 2x xrootd 3000 | recovery 50x mem 20000 | by-pass | clone max disabled 9000 | unlabelled
EXPECTED = {
    "binary": (["acdc", "acdc", "non-acdc", "non-acdc"], ["acdc", "non-acdc"]),
    "action": (["acdc", "acdc", "special", "clone"], ["acdc", "clone", "special"]),
    "action_split": (["acdc_2x", "acdc_50x", "special_1x", "clone_max"],
                     ["acdc_2x", "acdc_50x", "clone_max", "special_1x"]),
    "action_split_aggregated": (["acdc_2x", "acdc_20x+", "special_1x", "clone_20x+"],
                                ["acdc_2x", "acdc_20x+", "clone_20x+", "special_1x"]),
    "splitting": (["2x", "50x", "1x", "max"], ["1x", "2x", "50x", "max"]),
    "xrootd": (["enabled", "disabled", "disabled", "disabled"], ["disabled", "enabled"]),
    "memory": (["<=3GB", ">16GB", "unset", "6-10GB"], ["unset", "<=3GB", "6-10GB", ">16GB"]),
}


@pytest.mark.parametrize("target", TARGETS)
def test_target_labels(small_history_path, target):
    history = load_history(small_history_path)
    y, classes = build_target(history, target)
    labels, expected_classes = EXPECTED[target]
    assert classes == expected_classes
    assert [classes[i] for i in y[:4]] == labels
    assert y[4] == -1  # the unlabelled task


def test_unknown_target(small_history_path):
    with pytest.raises(ValueError, match="unknown target"):
        build_target(load_history(small_history_path), "weather")


@pytest.mark.parametrize("raw, canonical, aggregated", [
    (None, "1x", "1x"), ("", "1x", "1x"), ("2X", "2x", "2x"), ("10x", "10x", "10x"),
    ("20x", "20x", "20x+"), ("100x", "100x", "20x+"), ("max", "max", "20x+"),
])
def test_splitting(raw, canonical, aggregated):
    assert normalise_splitting(raw) == canonical
    assert aggregate_splitting(canonical) == aggregated


@pytest.mark.parametrize("raw, bucket", [
    (None, "unset"), ("", "unset"), ("2000", "<=3GB"), (3000, "<=3GB"), ("3001", "3-6GB"),
    ("9000", "6-10GB"), ("16000", "10-16GB"), (180000, ">16GB"),
])
def test_memory_buckets(raw, bucket):
    assert memory_bucket(raw) == bucket
