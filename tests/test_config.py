"""Every option of every config group composes and instantiates; every option the defaults and the
docs name exists; bad choices fail loudly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate

import wtc  # noqa: F401  (resolvers)
from tests.factories import CONF, ROOT, compose_cfg, options
from wtc.config import build_option
from wtc.errors import ConfigError
from wtc.models.pipeline import build_pipeline
from wtc.run.config_checks import OPTION_NAMES
from wtc.run.experiment import check_config
from wtc.tuning import RUN_KEYS, config_space, make_searcher, parse_space, study_name


def _defaults() -> dict[str, str]:
    """The config groups conf/config.yaml picks, and the option it picks of each (hydra's own left out)."""
    picked = {}
    for entry in yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            if not group.startswith("override "):
                picked[group] = option
    return picked


#: {group: default option}, read from conf/config.yaml: the groups are what the primary config is made of.
DEFAULTS = _defaults()
GROUPS = list(DEFAULTS)


def test_the_groups_are_the_folders_of_conf():
    """Every folder of options under conf/ is a group the primary config picks (``experiment`` is added
    with ``+``, ``hydra`` is Hydra's), and the defaults name a real group for each core choice."""
    folders = {p.name for p in CONF.iterdir() if p.is_dir()} - {"experiment", "hydra"}
    assert set(GROUPS) == folders
    assert {"data", "target", "model", "search", "cv", "tracking"} <= set(GROUPS)


def test_every_default_option_exists_and_is_what_composes():
    choices = compose_cfg(hydra=True).hydra.runtime.choices
    for group, option in DEFAULTS.items():
        assert option in options(group), (group, option)
        assert choices[group] == option


#: ``group=option[,option...]`` and ``+experiment=name`` on a command line (not ``group.key=value``,
#: nor a placeholder such as ``+experiment=NAME``).
_CHOICE = re.compile(r"(?<![\w./+-])\+?([a-z_]+)=([a-z0-9_]+(?:,[a-z0-9_]+)*)\b(?![.:/-])")


def _documented_choices() -> dict[tuple[str, str], set[str]]:
    """(group, option) -> the files whose ``run.py`` command lines name it (README, docs, experiments, conf)."""
    sources = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *ROOT.glob("experiments/**/*.md"),
               *CONF.glob("**/*.yaml")]
    found: dict[tuple[str, str], set[str]] = {}
    for path in sources:
        for line in path.read_text(encoding="utf-8").splitlines():
            if "run.py" not in line:
                continue
            for group, values in _CHOICE.findall(line):
                if group in DEFAULTS or group == "experiment":
                    for option in values.split(","):
                        found.setdefault((group, option), set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_option_the_docs_and_comments_name_exists():
    """What users are told to run (``run.py model=xgboost_es``, ``-m +experiment=champion``, ...) names
    options that exist: a renamed or deleted option fails here with the files that still name it."""
    found = _documented_choices()
    # The parser reads the real docs: the README's main job and a preset of every kind are in them.
    assert ("experiment", "default_sweep") in found and ("experiment", "champion") in found
    assert len({group for group, _ in found}) >= 5 and len(found) >= 20
    missing = {f"{group}={option}": sorted(files) for (group, option), files in found.items()
               if option not in options(group)}
    assert not missing, missing


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes_and_instantiates(group, option):
    cfg = compose_cfg([f"{group}={option}"])
    check_config(cfg)
    pipeline = build_pipeline(cfg, feature_names=["good:85:T1_US_FNAL"])
    assert pipeline.steps[-1][0] == "model"
    parse_space(config_space(cfg))
    node = cfg[group]
    if "_target_" in node and group not in OPTION_NAMES:
        assert instantiate(node, _convert_="all") is not None
    if group == "model":
        assert cfg.model.name == option
        model = pipeline.named_steps["model"]
        # every searched name is a parameter of the estimator, so set_params cannot fail later
        assert set(config_space(cfg)) <= set(model.get_params())


def build(group: str, node, seed: int = 0):
    """What a run builds from an option of a group whose options name their class."""
    if group == "search":
        return make_searcher(node, {"C": {"low": 0.1, "high": 1.0}}, seed)
    return build_option(node, OPTION_NAMES[group])


@pytest.mark.parametrize("group, option", [(g, o) for g in OPTION_NAMES for o in options(g)])
def test_every_option_builds_the_class_it_names(group, option):
    """search, cv, ensemble and calibration options: ``_target_`` is the class that does the work,
    its other keys its arguments, but the option's logged name (declared by the class) and how a
    search runs; ``calibration=none`` names no class and builds nothing."""
    node = compose_cfg([f"{group}={option}"])[group]
    key = OPTION_NAMES[group]
    built = build(group, node)
    if "_target_" not in node:
        assert group == "calibration" and node[key] == "none" and built is None
        return
    assert f"{type(built).__module__}.{type(built).__qualname__}" == node._target_
    assert getattr(type(built), key) == node[key]
    arguments = set(node) - {"_target_", key, *(RUN_KEYS if group == "search" else ())}
    given = built.settings if group == "search" else vars(built)  # each argument reaches the object
    assert {name: given[name] for name in arguments} == {name: node[name] for name in arguments}


@pytest.mark.parametrize("group, option, text, check", [
    ("cv", "grouped10", "_target_: wtc.data.splits.GroupedCV\nkind: grouped\nn_splits: 10\n",
     lambda cv: cv.n_splits == 10),
    ("ensemble", "top_5", "_target_: wtc.run.refit.TopKEnsemble\nkind: top_k\nk: 5\n", lambda e: e.k == 5),
    ("search", "gp_quick", "_target_: wtc.tuning.gp.GPSearcher\nkind: gp\nn_trials: 4\nn_initial_points: 1\n"
                           "storage: null\nstudy: null\nn_workers: 1\nheartbeat_s: 60\n",
     lambda s: s.n_initial_points == 1 and s.n_trials == 4),
    ("calibration", "platt", "_target_: wtc.models.calibration.SigmoidCalibrator\nmethod: sigmoid\n",
     lambda c: c.method == "sigmoid"),
])
def test_a_new_option_is_one_yaml_file(tmp_path, group, option, text, check):
    """No table to edit: an option written into (a copy of) conf/ composes, passes the checks,
    builds its class and is logged under its class's name."""
    import shutil

    from wtc.run.provenance import run_choices

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / group / f"{option}.yaml").write_text(text)
    cfg = compose_cfg([f"{group}={option}"], conf=conf)
    check_config(cfg)
    assert check(build(group, cfg[group]))
    logged = {"search": "search.kind", "cv": "cv.kind", "ensemble": "ensemble", "calibration": "calibration"}[group]
    assert run_choices(cfg)[logged] == cfg[group][OPTION_NAMES[group]]


@pytest.mark.parametrize("override, message", [
    ("cv._target_=wtc.data.splits.NoSuchCV", "cv._target_ 'wtc.data.splits.NoSuchCV' cannot be imported"),
    ("search._target_=wtc.data.splits.GroupedCV", "unknown search.kind 'gp': search._target_ "
                                                  "wtc.data.splits.GroupedCV is 'grouped'"),
    ("ensemble._target_=collections.OrderedDict", "ensemble._target_ 'collections.OrderedDict' is no ensemble class"),
    ("cv.kind=temporal", "unknown cv.kind 'temporal': cv._target_ wtc.data.splits.GroupedCV is 'grouped' "
                         "(choose the option of another class: cv=<option>)"),
])
def test_an_option_must_name_a_class_that_agrees_with_its_name(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        check_config(compose_cfg([override]))
    assert "\n" not in str(info.value)


#: Study names of configs composed before the search, cv, ensemble and calibration options named
#: their classes: the ``_target_`` keys are left out of the hash, so those stored studies resume.
STUDY_NAMES = {
    (): "wtc-binary-xgboost-gp-a1450c2cdaa6",
    ("+experiment=champion",): "wtc-binary-lightgbm_es-tpe-b7b892a6f6ae",  # its extras grew (2026-12-06, twice): a new study
    ("search=tpe", "search.pruner=none"): "wtc-binary-xgboost-tpe-8cad2db9d695",
    ("model=logreg", "search=tpe", "cv=temporal", "ensemble=top_k", "ensemble.k=2", "calibration=temperature"):
        "wtc-binary-logreg-tpe-e8c296ebd4fe",
    ("model=logreg", "search=gp", "cv=stratified", "ensemble=folds", "calibration=sigmoid"):
        "wtc-binary-logreg-gp-e132454f9840",
    ("model=logreg", "search=none", "calibration=isotonic", "ensemble=top_k"): "wtc-binary-logreg-none-03af6d163b38",
}


@pytest.mark.parametrize("overrides", list(STUDY_NAMES), ids=lambda o: " ".join(o) or "defaults")
def test_the_study_name_of_an_unchanged_config_is_unchanged(overrides):
    assert study_name(compose_cfg(overrides)) == STUDY_NAMES[overrides]


def test_primary_config_names_every_group():
    cfg = compose_cfg()
    for key in GROUPS + ["seed", "metric", "tracking", "device"]:
        assert key in cfg
    assert cfg.tracking.experiment == "wtc-binary"
    assert compose_cfg(["target=action"]).tracking.experiment == "wtc-action"


def test_the_recovery_preset_trains_each_part_with_the_champion_recipe():
    """Each part of +experiment=recovery is the champion (what the gate needs to certify AUTO: experiments/README.md,
    "The shipped recommender"); only the sweep over the four parts and its folder are its own."""
    champion = compose_cfg(["+experiment=champion", "target=memory"], hydra=True)
    recovery = compose_cfg(["+experiment=recovery", "target=memory"], hydra=True)
    for key in ("data", "model", "search", "cv", "ensemble", "calibration", "scaler", "metric", "n_jobs"):
        assert recovery[key] == champion[key], key
    assert study_name(recovery) == study_name(champion)  # the same search: a part's study is the champion's
    assert dict(recovery.hydra.sweeper.params) == {"target": "action,splitting,xrootd,memory"}
    assert recovery.hydra.sweep.dir.startswith("multirun/recovery/")


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
    ("search.storage=nonsense", "search.storage must be null, memory or a database URL"),
    ("search.storage=42", "search.storage must be null, memory or a database URL"),
    ("search.study=''", "search.study must be a name or null"),
    ("tracking.uri=foo://bar", "tracking.uri 'foo://bar' has a scheme no MLflow store opens ('foo')"),
    ("tracking.uri=42", "tracking.uri must be a tracking URI"),
    ("tracking.experiment=''", "tracking.experiment must be a non-empty name, got ''"),
    ("tracking.experiment=' '", "tracking.experiment must be a non-empty name"),
    ("search.n_initial_points=-1", "search.n_initial_points must be at least 1, got -1"),
    ("search.n_initial_points=0", "search.n_initial_points must be at least 1"),
    ("search.n_initial_points=two", "search.n_initial_points must be an integer"),
    ("data.extras=[total,total]", "data.extras names total more than once"),
    ("data.extras=[campaign,total,campaign]", "data.extras names campaign more than once"),
])
def test_bad_values_fail_in_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        check_config(compose_cfg([override]))
    key = override.split("=", 1)[0]
    assert str(info.value).count(key) >= 1 and "\n" not in str(info.value)


def test_a_top_k_ensemble_needs_one_member():
    with pytest.raises(ConfigError, match=re.escape("ensemble.k must be at least 1, got 0")):
        check_config(compose_cfg(["ensemble=top_k", "ensemble.k=0"]))


@pytest.mark.parametrize("overrides", [["search.n_trials=2", "ensemble.k=10"], ["search=none"],
                                       ["search=tpe", "search.n_trials=4", "ensemble.k=5"]])
def test_a_top_k_ensemble_has_no_more_members_than_trials(overrides):
    """``ensemble=top_k ensemble.k=10`` with 2 trials would run and log k=10 for a 2-member ensemble: refused."""
    with pytest.raises(ConfigError, match=r"ensemble.k must be at most search.n_trials \(\d+\)") as info:
        check_config(compose_cfg(["ensemble=top_k", *overrides]))
    assert "\n" not in str(info.value)
    check_config(compose_cfg(["ensemble=top_k", "search.n_trials=3", "ensemble.k=3"]))
    check_config(compose_cfg(["ensemble=none", "search.n_trials=1"]))


@pytest.mark.parametrize("override", ["seed=0", "seed=${oc.env:WTC_TEST_SEED}", "test_size=0.5", "cv.n_splits=2",
                                      "n_jobs=1", "target.min_class_count=0", "data.extras=[campaign,total]",
                                      "search.n_trials=1", "search.storage=sqlite:///optuna.db",
                                      "search.storage=postgresql://wtc@db.example.org/optuna", "search.n_workers=3",
                                      "search.heartbeat_s=null", "search.n_initial_points=3",
                                      "tracking.uri=sqlite:///x/mlflow.db", "tracking.uri=http://127.0.0.1:5000",
                                      "tracking.uri=postgresql+psycopg2://u@h/db", "tracking.uri=/tmp/mlruns",
                                      "tracking.uri=databricks", "tracking.uri=null"])
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


@pytest.mark.slow
def test_run_py_refuses_a_bad_seed_before_opening_a_run(tmp_path):
    """``python run.py seed=abc``: one ``error:`` line, no traceback, nothing in the tracking store."""
    root = ROOT
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


@pytest.fixture(scope="module")
def bench_history(tmp_path_factory):
    from wtc.data.synthetic import write_benchmark

    return write_benchmark(tmp_path_factory.mktemp("bench") / "history.json", n_tasks=160, seed=5)


def _undated(history, tmp_path) -> Path:
    """The same tasks, their workflow names without the request date (``_YYMMDD_HHMMSS_``)."""
    import json

    tasks = json.loads(Path(history).read_text())
    path = tmp_path / "undated.json"
    path.write_text(json.dumps({re.sub(r"_\d{6}_\d{6}_", "_", name): task for name, task in tasks.items()}))
    return path


@pytest.mark.parametrize("overrides, message", [
    (["cv=temporal"], "cv=temporal cannot split undated.json: temporal splits need a request date"),
    (["cv.n_splits=500"], "cv.n_splits=500 cannot split the"),
    (["cv=stratified", "cv.n_splits=500"], "cv.n_splits=500 cannot split the"),
    (["cv=temporal", "cv.n_splits=500", "+dated=true"], "cv.n_splits=500 is more folds than the"),
    (["model.estimator.C=-1"], "model.estimator.C is refused by LogisticRegression (model=logreg): The 'C' parameter"),
    (["model.estimator.max_iter=-1"], "model.estimator.max_iter is refused by LogisticRegression"),
    (["model=random_forest", "model.estimator.n_estimators=0"],
     "model.estimator.n_estimators is refused by RandomForestClassifier"),
])
def test_values_the_data_or_the_estimator_refuse_fail_in_one_line_before_a_run_opens(
        bench_history, tracking_uri, tmp_path, overrides, message):
    """Values only the history or the estimator can judge: one ConfigError naming the key, before any
    run is opened (no FAILED run left in the store), not scikit-learn's message from inside the run."""
    from wtc.run.experiment import run

    history = bench_history if "+dated=true" in overrides else _undated(bench_history, tmp_path)
    overrides = [o for o in overrides if o != "+dated=true"]
    cfg = compose_cfg(["model=logreg", "search=none", "n_jobs=1", "diagnostics=none", f"data.path={history}",
                       f"tracking.uri={tracking_uri}", "tracking.experiment=wtc-config", *overrides])
    with pytest.raises(ConfigError) as info:
        run(cfg)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert message.split(" ", 1)[0].split("=")[0] in ("cv", "cv.n_splits", overrides[-1].split("=")[0])
    assert not _runs_in(Path(tracking_uri.removeprefix("sqlite:///")))
