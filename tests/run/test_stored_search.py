"""A run's search is stored by default, for optuna-dashboard: a study of its own beside the MLflow
store (a relaunch trains anew), its objective named and truly signed, each trial naming its MLflow run;
an explicit ``search.storage`` is still the one shared, resumable study."""

from __future__ import annotations

import logging

import optuna
import pytest
from optuna.study import StudyDirection

from tests.factories import make_cfg, runs_of, store_db, train
from wtc.run.experiment import run
from wtc.tuning import study_name
from wtc.tuning.dashboard import dashboard_command


def studies(url: str) -> dict:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=url)
            for s in optuna.get_all_study_summaries(url)}


def test_two_runs_of_one_config_train_twice_into_two_studies(history_400, tracking_uri, caplog):
    cfg = make_cfg(history_400, tracking_uri, ["model=logreg", "diagnostics=none"])
    with caplog.at_level(logging.INFO, logger="wtc.run.experiment"):
        first, second = run(cfg), run(cfg)
    url = f"sqlite:///{store_db(tracking_uri).parent / 'optuna.db'}"
    found = studies(url)
    assert set(found) == {f"{study_name(cfg)}-{first.run_id}", f"{study_name(cfg)}-{second.run_id}"}
    client, parents, children = runs_of(tracking_uri)
    assert len(parents) == 2 and len(children) == 4  # trained twice: 2 trials each, none resumed
    assert not any(c.data.tags.get("wtc.resumed") for c in children)
    child = {c.info.run_id: c for c in children}
    for parent in parents:
        study = found[parent.data.tags["wtc.optuna_study"]]
        assert parent.data.tags["wtc.optuna_storage"] == url
        assert study.user_attrs["mlflow_run_id"] == parent.info.run_id
        assert study.direction == StudyDirection.MAXIMIZE and study.metric_names == ["cv_roc_auc"]
        for trial in study.trials:
            logged = child[trial.user_attrs["mlflow_run_id"]]
            assert logged.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert trial.value == pytest.approx(logged.data.metrics["cv/roc_auc_mean"])  # the AUC itself
        assert study.best_value == pytest.approx(parent.data.metrics["cv/roc_auc_mean"])
    said = [r.getMessage() for r in caplog.records if "optuna-dashboard" in r.getMessage()]
    assert len(said) == 2 and all(line.endswith(dashboard_command(url)) for line in said)


def test_an_explicit_storage_resumes_its_one_study(history_400, tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path}/shared.db"
    cfg = make_cfg(history_400, tracking_uri, ["model=logreg", "diagnostics=none", "search=tpe",
                                               f"search.storage={storage}"])
    run(cfg)
    run(cfg)  # the same command: the study is finished, nothing is evaluated again
    found = studies(storage)
    assert list(found) == [study_name(cfg)] and len(found[study_name(cfg)].trials) == 2
    assert len(found[study_name(cfg)].user_attrs["mlflow_run_ids"]) == 2
    _, _, children = runs_of(tracking_uri)
    assert sorted(c.data.tags.get("wtc.resumed", "false") for c in children) == ["false"] * 2 + ["true"] * 2
    assert not (store_db(tracking_uri).parent / "optuna.db").exists()


def test_a_fixed_search_stores_no_study(history_400, tracking_uri, caplog):
    with caplog.at_level(logging.INFO, logger="wtc.run.experiment"):
        train(history_400, tracking_uri, "wtc-binary", "model=logreg")
    assert not (store_db(tracking_uri).parent / "optuna.db").exists()
    assert not [r for r in caplog.records if "optuna-dashboard" in r.getMessage()]
