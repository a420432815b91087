"""Every option of every config group composes and instantiates; bad choices fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import wtc  # noqa: F401  (resolvers)
from wtc.errors import ConfigError
from wtc.experiment import check_config
from wtc.models.pipeline import build_pipeline
from wtc.tuning import config_space, parse_space

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["data", "target", "scaler", "resample", "model", "search", "cv"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_cfg(overrides=()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


REQUIRED = {
    "data": {"good", "bad", "combined", "tiers", "codes"},
    "target": {"binary", "action", "action_split", "action_split_aggregated", "splitting", "xrootd", "memory"},
    "scaler": {"none", "robust", "standard", "maxabs"},
    "resample": {"none", "smote", "svmsmote", "under", "over", "smote_tomek"},
    "model": {"dnn", "xgboost", "lightgbm", "logreg", "svm", "random_forest", "gradient_boosting", "dummy",
              "rules", "seed_dnn", "seed_xgb"},
    "search": {"none", "gp", "tpe"},
    "cv": {"stratified", "grouped", "temporal"},
}


@pytest.mark.parametrize("group", GROUPS)
def test_required_options_exist(group):
    assert REQUIRED[group] <= set(options(group))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_instantiates(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    check_config(cfg)
    pipeline = build_pipeline(cfg, feature_names=["good:85:T1_US_FNAL"])
    assert pipeline.steps[-1][0] == "model"
    parse_space(config_space(cfg))
    node = cfg[group]
    if "_target_" in node:
        assert instantiate(node, _convert_="all") is not None
    if group == "model":
        assert cfg.model.name == option
        model = pipeline.named_steps["model"]
        # every searched name is a parameter of the estimator, so set_params cannot fail later
        assert set(config_space(cfg)) <= set(model.get_params())


def test_primary_config_names_every_group():
    cfg = compose_cfg()
    for key in GROUPS + ["seed", "metric", "tracking", "device"]:
        assert key in cfg
    assert cfg.tracking.experiment == "wtc-binary"
    assert compose_cfg(["target=action"]).tracking.experiment == "wtc-action"


def test_seed_presets_match_the_study():
    dnn = compose_cfg(["model=seed_dnn"]).model.estimator
    assert (dnn.n_layers, dnn.n_neurons, dnn.l2, dnn.dropout) == (3, 51, 0.00147, 0.028)
    xgb = compose_cfg(["model=seed_xgb"]).model.estimator
    assert (xgb.n_estimators, xgb.max_depth) == (100, 4)


def test_device_selects_cpu_or_cuda():
    assert compose_cfg(["model=xgboost"]).model.estimator.device == "cpu"
    assert compose_cfg(["model=xgboost", "device=gpu"]).model.estimator.device == "cuda"
    assert compose_cfg(["model=dnn", "device=gpu"]).model.estimator.device == "gpu"
    with pytest.raises(Exception, match="device must be"):
        _ = compose_cfg(["model=xgboost", "device=tpu"]).model.estimator.device


@pytest.mark.parametrize("override, message", [
    ("metric=auc", "unknown metric 'auc'"),
    ("cv.kind=loo", "unknown cv.kind"),
    ("search.kind=random", "unknown search.kind"),
    ("search.n_trials=0", "n_trials"),
])
def test_bad_choices_fail_loudly(override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_cfg([override]))


def test_rules_skips_the_scaler():
    pipeline = build_pipeline(compose_cfg(["model=rules", "scaler=robust"]), feature_names=["good:85:X"])
    assert [name for name, _ in pipeline.steps] == ["model"]
    pipeline = build_pipeline(compose_cfg(["model=logreg", "scaler=robust", "resample=smote"]))
    assert [name for name, _ in pipeline.steps] == ["scaler", "resample", "model"]
