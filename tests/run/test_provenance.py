"""Run names say what varies within a sweep; the class names outputs show are choices too."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

import wtc  # noqa: F401  (resolvers)
from tests.factories import CONF, compose_cfg, options
from wtc.run.provenance import canonical_overrides, choice_aliases, run_choices, run_name, step_name, varied_keys
from wtc.tuning import study_name

#: What each option's runs are called in outputs (run names, the resample/scaler params).
SHOWN = {"resample": {"smote": "SMOTE", "svmsmote": "SVMSMOTE", "under": "RandomUnderSampler",
                      "over": "RandomOverSampler", "smote_tomek": "SMOTETomek"},
         "scaler": {"robust": "RobustScaler", "standard": "StandardScaler", "maxabs": "MaxAbsScaler"}}


@pytest.mark.parametrize("group, option, shown", [(g, o, s) for g, names in SHOWN.items() for o, s in names.items()])
def test_the_name_an_output_shows_composes_the_same_run(group, option, shown):
    by_alias = compose_cfg(canonical_overrides([f"{group}={shown}", "search=none"], CONF))
    canonical = compose_cfg([f"{group}={option}", "search=none"])
    assert step_name(canonical[group]) == shown  # the name outputs show is the one accepted
    assert OmegaConf.to_yaml(by_alias) == OmegaConf.to_yaml(canonical)
    assert run_name(by_alias) == run_name(canonical) and study_name(by_alias) == study_name(canonical)
    assert run_choices(by_alias) == run_choices(canonical)


def test_every_option_of_an_aliased_group_is_reachable_by_its_class_name():
    for group, names in choice_aliases(CONF).items():
        assert set(options(group)) <= set(names.values())
        for option in options(group):
            shown = step_name(compose_cfg([f"{group}={option}"])[group])
            assert canonical_overrides([f"{group}={shown}"], CONF) == [f"{group}={option}"]


def test_only_scaler_and_resample_values_are_rewritten():
    args = ["-m", "resample=SMOTE,RandomUnderSampler", "scaler=choice(RobustScaler,none)", "+scaler=StandardScaler",
            "model=SMOTE", "data.path=/x/SMOTE.json", "resample=Bogus", "--help"]
    assert canonical_overrides(args, CONF) == [
        "-m", "resample=smote,under", "scaler=choice(robust,none)", "+scaler=standard",
        "model=SMOTE", "data.path=/x/SMOTE.json", "resample=Bogus", "--help"]


def test_varied_keys_are_those_given_several_values():
    assert varied_keys(["data=good,bad", "model=xgboost", "seed=range(3)", "resample=smote,smote",
                        "+experiment=champion", "search.n_trials=4", "scaler=choice(robust)"]) == {"data", "seed"}
    # A preset's sweeper params first, the command line after: its single value wins, as in the sweep.
    assert varied_keys(["target=binary,action_split", "model=a,b", "target=binary"]) == {"model"}


def test_a_sweep_names_its_runs_by_what_varies():
    cfg = compose_cfg(["model=xgboost", "data=good", "resample=smote"])
    full = run_name(cfg)
    assert full == "xgboost-good-SMOTE-RobustScaler-gp"  # a single run: everything
    assert run_name(cfg, varied={"model", "data"}) == "xgboost-good"
    assert run_name(cfg, varied={"resample", "data.view"}) == "good-SMOTE"
    assert run_name(cfg, varied={"model", "seed"}, overrides={"seed": "2", "model": "xgboost"}) == "xgboost-seed=2"
    assert run_name(cfg, varied=set()) == full
    # a nested key by its last component, unless two varied keys share it
    assert run_name(cfg, varied={"+model.estimator.alpha"}, overrides={"+model.estimator.alpha": "1.5"}) == "alpha=1.5"
    assert run_name(cfg, varied={"a.alpha", "b.alpha"}, overrides={"a.alpha": "1", "b.alpha": "2"}) == \
        "a.alpha=1-b.alpha=2"


def test_a_run_name_with_dots_is_a_valid_logged_model_name():
    """The leaderboard logs its top runs' models under their run names: MLflow refuses / : . % " ' in them."""
    from wtc.store.pyfunc import logged_model_name

    assert logged_model_name("alpha=1.5-a/b:c%d\"e'f") == "alpha=1_5-a_b_c_d_e_f"
    assert logged_model_name("") == "model"
