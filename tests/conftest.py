"""Shared fixtures: an isolated cache, a small hand-written history."""

from __future__ import annotations

import json
import os

import pytest

WF = "pdmvserv_task_HIG-RunIIFall17DRStdmix-00451__v1_T_180412_131301_1234"
WF2 = "pdmvserv_task_SUS-RunIIFall17wmLHEGS-00012__v1_T_180530_101010_5678"
SMALL_HISTORY = {
    f"/{WF}/HIG-RunIIFall17DRStdmix-00451_0": {
        "errors": {
            "good_sites": {"50660": {"T1_US_FNAL": 6, "T2_CH_CERNBOX": 63}, "-1": {"T1_DE_KIT": 1}},
            "bad_sites": {"71304": {"T2_DE_DESY": 102}},
        },
        "parameters": {"action": "acdc", "splitting": "2x", "xrootd": "enabled", "memory": "3000",
                       "sites": ["T1_US_FNAL"], "cores": ""},
    },
    f"/{WF}/HIG-RunIIFall17DRStdmix-00451_0/HIG-RunIIFall17DRStdmix-00451_0MergeAODSIMoutput": {
        "errors": {
            "good_sites": {"codes": ["85", "50660"], "sites": ["T1_US_FNAL", "T2_US_MIT"],
                           "matrix": [[0, 2], [3, 0]]},
            "drain_sites": {"85": {"T2_US_MIT": 4}},
        },
        "parameters": {"action": "recovery", "splitting": "50x", "memory": 20000},
    },
    f"/{WF2}/SUS-RunIIFall17wmLHEGS-00012_0": {
        "errors": {"good_sites": {"8001": {"T2_US_MIT": 5, "T3_US_Rice": 1}}, "bad_sites": {}},
        "parameters": {"action": "by-pass"},
    },
    f"/{WF2}/SUS-RunIIFall17wmLHEGS-00012_0/SUS-RunIIFall17wmLHEGS-00012_0MergeRAWSIMoutput": {
        "errors": {"bad_sites": {"8001": {"T2_US_MIT": 2}, "139": {"Unknown": 7}}},
        "parameters": {"action": "clone", "splitting": "max", "xrootd": "disabled", "memory": "9000"},
    },
    f"/{WF2}/SUS-RunIIFall17wmLHEGS-00012_1": {
        "errors": {"good_sites": {"8001": {"T2_US_MIT": 1}}},
    },
}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test parses into its own cache dir, so no test reads another's cache."""
    monkeypatch.setenv("WTC_CACHE_DIR", str(tmp_path_factory.mktemp("wtc-cache")))


@pytest.fixture
def small_history_path(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(SMALL_HISTORY), encoding="utf-8")
    return path


def write_json(path, obj) -> str:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return str(path)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory):
    """An MLflow SQLite database with its schema created once (migrations take ~10 s)."""
    import mlflow

    folder = tmp_path_factory.mktemp("store-template")
    mlflow.MlflowClient(f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def tracking_uri(tmp_path, _migrated_store):
    """A fresh tracking store for one test: ``sqlite:///<tmp>/mlruns/mlflow.db``."""
    import shutil

    (tmp_path / "mlruns").mkdir()
    shutil.copy(_migrated_store, tmp_path / "mlruns" / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"
