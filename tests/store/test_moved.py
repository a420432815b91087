"""Models pickled before the package moved still load (wtc.store.moved)."""

import pickle
import sys

import cloudpickle
import pytest

from wtc.inference.tasks import TaskModelSpec
from wtc.store.logged_models import ModelInputs
from wtc.store.moved import MOVED_MODULES, old_module_names


def _as_if_pickled_by_the_old_package(obj) -> bytes:
    # Protocol 0 writes module names as text lines: rename the module as the old package had it.
    raw = pickle.dumps(obj, protocol=0)
    assert b"wtc.inference.tasks\n" in raw
    return raw.replace(b"wtc.inference.tasks\n", b"wtc.serving.tasks\n")


def test_an_object_pickled_under_the_old_module_name_loads():
    spec = TaskModelSpec(view="combined", feature_names=["good|50660|T1_US_FNAL"], class_names=["acdc", "other"])
    raw = _as_if_pickled_by_the_old_package(spec)
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(raw)
    with old_module_names():
        again = cloudpickle.loads(raw)
    assert again == spec and type(again) is TaskModelSpec
    assert "wtc.serving.tasks" not in sys.modules and "wtc.serving" not in sys.modules  # only while loading


def test_every_moved_module_exists():
    with old_module_names():
        for old, new in MOVED_MODULES.items():
            assert sys.modules[old] is sys.modules[new]


def test_model_inputs_of_an_older_sweep_run_load():
    spec = TaskModelSpec(view="good", feature_names=["f"], class_names=["a", "b"])
    content = {"format": 1, "pipeline": spec, "X_example": None, "class_names": ["a", "b"], "feature_names": ["f"],
               "name": "old-run"}
    inputs = ModelInputs.load(_as_if_pickled_by_the_old_package(content))
    assert inputs.pipeline == spec and inputs.name == "old-run"
