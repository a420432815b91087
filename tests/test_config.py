"""Every option of every config group composes and instantiates; bad choices fail loudly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

import wtc  # noqa: F401  (resolvers)
from wtc.errors import ConfigError
from wtc.models.pipeline import build_pipeline
from wtc.run.experiment import check_config
from wtc.tuning import config_space, parse_space

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ["data", "target", "scaler", "resample", "model", "search", "cv", "ensemble", "calibration"]


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
    "ensemble": {"none", "folds", "top_k"},
    "calibration": {"none", "sigmoid", "isotonic", "temperature"},
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
    ("search.n_trials=0", "search.n_trials must be at least 1"),
    ("search.n_trials=-3", "search.n_trials must be at least 1"),
    ("search.n_trials=2.5", "search.n_trials must be an integer"),
    ("search.n_trials=many", "search.n_trials must be an integer"),
    ("cv.n_splits=1", "cv.n_splits must be at least 2"),
    ("cv.n_splits=0", "cv.n_splits must be at least 2"),
    ("cv.n_splits=2.0", "cv.n_splits must be an integer"),
    ("cv.n_splits=true", "cv.n_splits must be an integer"),
    ("test_size=1.5", "test_size must be a number between 0 and 1"),
    ("test_size=0", "test_size must be a number between 0 and 1"),
    ("test_size=1", "test_size must be a number between 0 and 1"),
    ("test_size=-0.2", "test_size must be a number between 0 and 1"),
    ("test_size=nan", "test_size must be a number between 0 and 1"),
    ("test_size=abc", "test_size must be a number between 0 and 1"),
    ("test_size=null", "test_size must be a number between 0 and 1"),
    ("seed=abc", "seed must be an integer, got 'abc'"),
    ("seed=1.5", "seed must be an integer"),
    ("seed=true", "seed must be an integer"),
    ("seed=-1", "seed must be at least 0"),
    ("seed=99999999999", "seed must be at most"),
    ("seed=null", "seed must be an integer"),
    ("n_jobs=0", "n_jobs must be at least 1"),
    ("n_jobs=-1", "n_jobs must be at least 1"),
    ("n_jobs=two", "n_jobs must be an integer"),
    ("target.min_class_count=-1", "target.min_class_count must be at least 0"),
    ("target.min_class_count=0.5", "target.min_class_count must be an integer"),
    ("data.view=everything", "unknown data.view 'everything'"),
    ("data.extras=[campaign,weather]", "unknown data.extras ['weather']"),
    ("data.extras=campaign", "data.extras must be a list"),
    ("target.name=weather", "unknown target.name 'weather'"),
    ("calibration.method=platt", "unknown calibration.method 'platt'"),
    ("ensemble.kind=stack", "unknown ensemble.kind 'stack'"),
    ("seed=${oc.env:WTC_NO_SUCH_VARIABLE_SET}", "seed cannot be resolved"),
    ("search.n_workers=0", "search.n_workers must be at least 1"),
    ("search.n_workers=two", "search.n_workers must be an integer"),
    ("search.heartbeat_s=0", "search.heartbeat_s must be at least 1"),
    ("search.storage=nonsense", "search.storage must be null or a database URL"),
    ("search.storage=42", "search.storage must be null or a database URL"),
    ("search.study=''", "search.study must be a name or null"),
])
def test_bad_values_fail_in_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        check_config(compose_cfg([override]))
    key = override.split("=", 1)[0]
    assert str(info.value).count(key) >= 1 and "\n" not in str(info.value)


def test_a_top_k_ensemble_needs_one_member():
    with pytest.raises(ConfigError, match=re.escape("ensemble.k must be at least 1, got 0")):
        check_config(compose_cfg(["ensemble=top_k", "ensemble.k=0"]))


@pytest.mark.parametrize("override", ["seed=0", "seed=${oc.env:WTC_TEST_SEED}", "test_size=0.5", "cv.n_splits=2",
                                      "n_jobs=1", "target.min_class_count=0", "data.extras=[campaign,total]",
                                      "search.n_trials=1", "search.storage=sqlite:///optuna.db",
                                      "search.storage=postgresql://wtc@db.example.org/optuna", "search.n_workers=3",
                                      "search.heartbeat_s=null"])
def test_good_values_pass(override, monkeypatch):
    monkeypatch.setenv("WTC_TEST_SEED", "7")
    check_config(compose_cfg([override]))


@pytest.mark.parametrize("override, message", [
    ("search.pruner=hyperband", "unknown search.pruner 'hyperband'; choose one of none, median"),
    ("search.prune_min_folds=0", "search.prune_min_folds must be at least 1"),
    ("search.prune_startup_trials=-1", "search.prune_startup_trials must be at least 0"),
])
def test_bad_pruner_values_fail_in_one_line(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(compose_cfg(["search=tpe", override]))


def test_run_py_refuses_a_bad_seed_before_opening_a_run(tmp_path):
    """``python run.py seed=abc``: one ``error:`` line, no traceback, nothing in the tracking store."""
    root = CONF.parent
    store = tmp_path / "mlflow.db"
    done = subprocess.run(
        [sys.executable, str(root / "run.py"), "seed=abc", f"tracking.uri=sqlite:///{store}",
         f"hydra.run.dir={tmp_path}/out", f"paths.cache_dir={tmp_path}/cache", f"paths.data_dir={tmp_path}/data"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
        env={**os.environ, "PYTHONPATH": str(root), "WTC_CACHE_DIR": str(tmp_path / "cache")})
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "seed" in errors[0]
    assert not _runs_in(store)


def _runs_in(store) -> list:
    if not store.exists():
        return []
    import sqlite3

    with sqlite3.connect(store) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
        return db.execute("select run_uuid, status from runs").fetchall() if "runs" in tables else []


def test_rules_skips_the_scaler():
    pipeline = build_pipeline(compose_cfg(["model=rules", "scaler=robust"]), feature_names=["good:85:X"])
    assert [name for name, _ in pipeline.steps] == ["model"]
    pipeline = build_pipeline(compose_cfg(["model=logreg", "scaler=robust", "resample=smote"]))
    assert [name for name, _ in pipeline.steps] == ["scaler", "resample", "model"]
