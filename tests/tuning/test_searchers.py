"""Tests of the ask/tell searchers over GP (scikit-optimize) and TPE (Optuna)."""

import math

import numpy as np
import pytest

from wtc.tuning import (
    FixedSearcher,
    GPSearcher,
    TPESearcher,
    make_searcher,
    parse_space,
)

# A bowl with its minimum 0 at x=0.3, n=10, kind="b".
SPACE = {
    "x": {"low": -2.0, "high": 2.0},
    "n": {"low": 1, "high": 1000, "type": "int", "log": True},
    "kind": {"choices": ["a", "b", "c"]},
}


def bowl(p):
    return (p["x"] - 0.3) ** 2 + (math.log10(p["n"]) - 1) ** 2 + (0.0 if p["kind"] == "b" else 0.5)


def run(searcher, objective=bowl):
    while not searcher.done:
        params = searcher.ask()
        searcher.tell(params, objective(params))
    return searcher


@pytest.mark.parametrize(
    "space, message",
    [
        ({"lr": {"low": 0.1}}, "'lr'"),
        ({"lr": {"low": 1, "high": 0}}, "'lr': need low < high"),
        ({"lr": {"low": 0, "high": 1, "log": True}}, "'lr': a log range needs low > 0"),
        ({"depth": {"low": 1.5, "high": 4, "type": "int"}}, "'depth': an int range needs integer bounds"),
        ({"depth": {"low": 1, "high": 4, "type": "integer"}}, "'depth': type must be"),
        ({"lr": {"low": 0.1, "high": 1, "step": 0.1}}, "'lr'"),
        ({"booster": {"choices": []}}, "'booster': choices must not be empty"),
        ({"booster": {"choices": "gbtree"}}, "'booster': choices must be a list"),
        ({"booster": {"choices": ["a"], "low": 1}}, "'booster'"),
        ({"booster": {"choices": [1, "1"]}}, "'booster': choices must be distinct"),
        ({"lr": 0.1}, "'lr': expected a mapping"),
        ({"lr": {"low": "a", "high": 1}}, "'lr': low and high must be finite numbers"),
    ],
)
@pytest.mark.parametrize("kind", [FixedSearcher, GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_malformed_space_is_one_line_naming_the_parameter(kind, space, message):
    with pytest.raises(ValueError, match=message) as err:
        kind(space, 5, 0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("node, cls, options", [
    ({"_target_": "wtc.tuning.gp.GPSearcher", "kind": "gp", "n_trials": 5, "n_initial_points": 2}, GPSearcher,
     {"n_initial_points": 2}),
    ({"_target_": "wtc.tuning.tpe.TPESearcher", "kind": "tpe", "n_trials": "5", "pruner": "median"}, TPESearcher,
     {"pruner": "median", "prune_startup_trials": 5, "prune_min_folds": 2}),
    ({"_target_": "wtc.tuning.base.FixedSearcher", "kind": "none", "n_trials": 1}, FixedSearcher, {}),
])
def test_a_search_node_builds_the_class_it_names(node, cls, options):
    """``_target_`` is the back-end; its other keys are arguments, but ``kind`` and how the search runs."""
    run_keys = {"storage": "sqlite:///x.db", "study": "s", "n_workers": 2, "heartbeat_s": 5}
    searcher = make_searcher({**node, **run_keys}, SPACE, 7)
    assert type(searcher) is cls and searcher.kind == node["kind"] and searcher.options == options
    assert searcher.seed == 7 and searcher.n_trials == (5 if cls is not FixedSearcher else 1)


def test_parse_space_defaults():
    x, n, kind = parse_space(SPACE)
    assert (x.type, x.log, x.low, x.high) == ("float", False, -2.0, 2.0)
    assert (n.type, n.log, n.low, n.high) == ("int", True, 1, 1000)
    assert kind.is_categorical and kind.choices == ("a", "b", "c")


@pytest.mark.parametrize("kind", [FixedSearcher, GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
@pytest.mark.parametrize("space", [{}, None])
def test_empty_space_is_one_trial_with_empty_params(kind, space):
    searcher = kind(space, 20, 0)
    assert searcher.n_trials == 1
    assert searcher.ask() == {}
    searcher.tell({}, 0.5)
    assert searcher.done
    assert searcher.best_params == {} and searcher.best_value == 0.5


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_single_choice_is_fixed_not_searched(kind):
    searcher = kind({"booster": {"choices": ["gbtree"]}, "x": SPACE["x"]}, 6, 0)
    assert [p.name for p in searcher.params] == ["x"]
    run(searcher, lambda p: p["x"] ** 2)
    assert all(p["booster"] == "gbtree" for p, _ in searcher.history)
    only_fixed = kind({"booster": {"choices": ["gbtree"]}}, 6, 0)
    assert only_fixed.n_trials == 1 and only_fixed.ask() == {"booster": "gbtree"}


def test_tell_without_the_searched_params():
    searcher = GPSearcher(SPACE, 3, 0)
    searcher.ask()
    with pytest.raises(ValueError, match="lack the searched parameters"):
        searcher.tell({"x": 0.1}, 1.0)


def test_none_ignores_the_space():
    searcher = FixedSearcher(SPACE, 20, 0)
    assert isinstance(searcher, FixedSearcher)
    assert searcher.n_trials == 1 and searcher.ask() == {}


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_params_are_plain_python_within_bounds(kind):
    searcher = kind(SPACE, 6, 0)
    run(searcher)
    for params, _ in searcher.history:
        assert set(params) == {"x", "n", "kind"}
        assert type(params["x"]) is float and -2.0 <= params["x"] <= 2.0
        assert type(params["n"]) is int and 1 <= params["n"] <= 1000
        assert type(params["kind"]) is str and params["kind"] in {"a", "b", "c"}


def test_log_scale_reaches_the_backends():
    space = {"lr": {"low": 1e-4, "high": 1.0, "log": True}, "depth": {"low": 2, "high": 64, "type": "int", "log": True}}
    gp = GPSearcher(space, 5, 0)
    assert [d.prior for d in gp.optimizer.space.dimensions] == ["log-uniform", "log-uniform"]
    tpe = TPESearcher(space, 5, 0)
    assert tpe.distributions["lr"].log and tpe.distributions["depth"].log


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_log_scale_samples_small_values(kind):
    # Uniform on [1e-4, 1] puts ~0.1% of draws below 1e-3; log-uniform puts 25%.
    searcher = kind({"lr": {"low": 1e-4, "high": 1.0, "log": True}}, 12, 3)
    if kind is GPSearcher:
        searcher = GPSearcher({"lr": {"low": 1e-4, "high": 1.0, "log": True}}, 12, 3, n_initial_points=12)
    run(searcher, lambda p: 0.0)  # flat: every proposal is exploration
    assert sum(p["lr"] < 1e-3 for p, _ in searcher.history) >= 2


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_choices_keep_their_python_types(kind):
    space = {"weight": {"choices": [None, "balanced"]}, "flag": {"choices": [True, False]}}
    searcher = run(kind(space, 6, 0), lambda p: 0.0 if p["weight"] is None else 1.0)
    for params, _ in searcher.history:
        assert params["weight"] in (None, "balanced")
        assert type(params["flag"]) is bool


@pytest.mark.parametrize(
    "kind, space, n_trials, n_start",
    [
        # GP: 5 random points, then EI; kept to two numeric dimensions, where a GP shines
        # and each of its steps is cheap enough for a unit test.
        (GPSearcher, {"x": SPACE["x"], "n": SPACE["n"]}, 12, 5),
        (TPESearcher, SPACE, 30, 10),  # Optuna's TPE starts with 10 random trials
    ],
    ids=["gp", "tpe"],
)
def test_search_improves_over_its_random_start(kind, space, n_trials, n_start):
    objective = lambda p: bowl({"kind": "b", **p})  # noqa: E731
    searcher = run(kind(space, n_trials, 0), objective)
    values = [v for _, v in searcher.history]
    assert len(values) == n_trials
    assert searcher.best_value == min(values)
    assert min(values[n_start:]) < min(values[:n_start])
    assert searcher.best_value < 0.1
    assert searcher.best_params == searcher.history[int(np.argmin(values))][0]


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_deterministic_for_a_seed(kind):
    # Past the random start (GP: 5 points, TPE: 10) so the model's proposals are compared too.
    n_trials = 6 if kind is GPSearcher else 12
    first = run(kind(SPACE, n_trials, 42)).history
    again = run(kind(SPACE, n_trials, 42)).history
    other = run(kind(SPACE, n_trials, 43)).history
    assert first == again
    assert first != other


@pytest.mark.parametrize("kind", [GPSearcher, TPESearcher], ids=lambda cls: cls.kind)
def test_failed_trials_are_recorded_but_never_best(kind):
    searcher = kind({"x": {"low": 0.0, "high": 1.0}}, 7, 0)
    for i in range(7):
        params = searcher.ask()
        searcher.tell(params, math.nan if i % 3 == 0 else params["x"])
    assert len(searcher.history) == 7
    assert math.isfinite(searcher.best_value)
    assert searcher.best_value == min(v for _, v in searcher.history if math.isfinite(v))


def test_best_before_any_trial():
    searcher = TPESearcher(SPACE, 3, 0)
    assert searcher.best_params is None and math.isnan(searcher.best_value)


@pytest.mark.parametrize("n_trials, initial", [(1, 1), (2, 1), (3, 2), (4, 2), (6, 2), (9, 3), (12, 4), (60, 10)])
def test_gp_initial_design_is_sized_from_the_budget(n_trials, initial):
    from wtc.tuning.gp import initial_design_size

    assert initial_design_size(n_trials) == initial
    searcher = GPSearcher({"x": {"low": 0.0, "high": 1.0}}, n_trials, 0)
    assert searcher.n_initial_points == initial
    assert GPSearcher({"x": {"low": 0.0, "high": 1.0}}, n_trials, 0, n_initial_points=1).n_initial_points == 1


def test_gp_is_fitted_within_a_small_budget_and_has_a_result():
    searcher = GPSearcher({"x": {"low": 0.0, "high": 1.0}}, 4, 0)
    assert searcher.result is None
    run(searcher, lambda p: (p["x"] - 0.5) ** 2)
    result = searcher.result
    assert len(result.x_iters) == 4 and result.fun == pytest.approx(searcher.best_value)
    assert result.models, "the GP surrogate was fitted (not a random search)"


def test_tpe_tell_needs_asked_params():
    searcher = TPESearcher(SPACE, 3, 0)
    searcher.ask()
    with pytest.raises(ValueError, match="ask"):
        searcher.tell({"x": 9.0, "n": 1, "kind": "a"}, 1.0)


def test_n_trials_must_be_positive():
    with pytest.raises(ValueError, match="n_trials"):
        GPSearcher(SPACE, 0, 0)
