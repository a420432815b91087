"""Shared fixtures: an isolated cache, the small hand-written history, generated benchmarks, tracking stores.

The functions behind them (composed configs, small runs, store copies) are in tests/factories.py.

``python3 dev.py test --quick`` runs ``pytest -m "not slow"``: everything but the tests marked
``slow`` (real sweeps and end-to-end runs, servers, notebooks, Python subprocesses). A test not
marked slow that starts a Python process fails (see ``_no_python_subprocess``), so the quick
selection cannot silently grow a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import SMALL_HISTORY, copy_store, write_json

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test parses into its own cache dir, so no test reads another's cache."""
    monkeypatch.setenv("WTC_CACHE_DIR", str(tmp_path_factory.mktemp("wtc-cache")))


def _is_python(args) -> bool:
    """Whether a Popen command runs a Python interpreter (a string command: its first word)."""
    if isinstance(args, (str, bytes)):
        words = os.fsdecode(args).split()
    else:
        words = [os.fsdecode(a) for a in ([args] if isinstance(args, os.PathLike) else list(args))]
    if not words:
        return False
    program = words[0]
    return Path(program).name.startswith("python") or os.path.realpath(program) == os.path.realpath(sys.executable)


@pytest.fixture(autouse=True)
def _no_python_subprocess(request, monkeypatch):
    """Outside tests marked ``slow``, starting a Python process (run.py, ``python -m wtc.cli``,
    ``wtc serve``, a notebook kernel) is an error: mark the test slow, or call the code in-process."""
    if request.node.get_closest_marker("slow") is not None:
        return
    import multiprocessing.util

    def refuse(args):
        raise AssertionError(f"{request.node.nodeid} starts a Python process ({args!r}) but is not marked "
                             "slow: mark it @pytest.mark.slow or call the code in this process")

    original = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        if _is_python(args):
            refuse(args)
        return original(self, args, *rest, **kwargs)

    spawnv_passfds = multiprocessing.util.spawnv_passfds

    def spawned(path, args, passfds):  # multiprocessing's "spawn" and "forkserver" start a fresh interpreter
        if not any("resource_tracker" in str(arg) for arg in args):  # the helper a semaphore may start is fine
            refuse(args)
        return spawnv_passfds(path, args, passfds)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", spawned)


@pytest.fixture
def small_history_path(tmp_path):
    return Path(write_json(tmp_path / "history.json", SMALL_HISTORY))


@pytest.fixture(scope="module")
def history_path(tmp_path_factory):
    """A generated benchmark of 700 tasks (seed 3): the end-to-end runs' history."""
    from wtc.data.synthetic import write_benchmark

    return write_benchmark(tmp_path_factory.mktemp("bench") / "history.json", n_tasks=700, seed=3)


@pytest.fixture(scope="module")
def history_400(tmp_path_factory):
    """A generated benchmark of 400 tasks (seed 3): promotion's history (see factories.SHARP)."""
    from wtc.data.synthetic import write_benchmark

    return write_benchmark(tmp_path_factory.mktemp("bench400") / "history.json", n_tasks=400, seed=3)


@pytest.fixture(scope="session")
def _migrated_store(tmp_path_factory):
    """An MLflow SQLite database with its schema created once (migrations take ~10 s)."""
    import mlflow

    folder = tmp_path_factory.mktemp("store-template")
    mlflow.MlflowClient(f"sqlite:///{folder}/mlflow.db").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture(scope="session")
def new_store(_migrated_store):
    """``new_store(folder, template=None)``: a tracking store at ``folder/mlruns/mlflow.db``, a copy of
    an empty migrated store (or of ``template``, a filled one); returns its URI. Module-scoped
    fixtures that fill a store once use it too."""

    def make(folder: Path, template: Path | None = None) -> str:
        return copy_store(template or _migrated_store, folder)

    return make


@pytest.fixture
def tracking_uri(tmp_path, new_store):
    """A fresh tracking store for one test: ``sqlite:///<tmp>/mlruns/mlflow.db``."""
    return new_store(tmp_path)
