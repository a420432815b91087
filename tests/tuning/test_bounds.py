"""Best parameters at a bound of their search range: which, on which side, in linear and log ranges."""

from __future__ import annotations

import pytest

from wtc.tuning.bounds import params_at_bounds

SPACE = {
    "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
    "max_depth": {"low": 2, "high": 8, "type": "int"},
    "subsample": {"low": 0.5, "high": 1.0},
    "booster": {"choices": ["gbtree", "dart"]},
}


@pytest.mark.parametrize("params, expected", [
    ({"learning_rate": 0.0102, "max_depth": 5, "subsample": 0.75}, [("learning_rate", "low")]),  # within 1% in log
    ({"learning_rate": 0.05, "max_depth": 8, "subsample": 0.996}, [("max_depth", "high"), ("subsample", "high")]),
    ({"learning_rate": 0.012, "max_depth": 3, "subsample": 0.51, "booster": "gbtree"}, []),  # 5% in log, 2%
    ({"learning_rate": 0.3, "max_depth": 2}, [("learning_rate", "high"), ("max_depth", "low")]),
    ({}, []),
])
def test_params_at_bounds(params, expected):
    assert [(a.name, a.side) for a in params_at_bounds(SPACE, params)] == expected


def test_the_message_names_parameter_value_and_bound():
    (found,) = params_at_bounds(SPACE, {"learning_rate": 0.01})
    assert str(found) == "learning_rate=0.01 at its low bound 0.01"
