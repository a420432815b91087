"""The logged model on raw WTC tasks: dict or JSON entries in, decisions out; unseen codes, bad tasks."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import MaxAbsScaler

from tests.factories import fit_small_pipeline
from wtc.data import build_features, build_target, load_history
from wtc.inference.tasks import infer_view, output_columns
from wtc.store import RunTracker, load_model
from wtc.store.pyfunc import WTCTaskModel, log_pipeline_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A pipeline fitted on a small benchmark (view ``combined`` + the ``total`` extra, target ``action``)."""
    return fit_small_pipeline(tmp_path_factory.mktemp("bench") / "history.json", 400, 3, "action", extras=["total"])


@pytest.fixture(scope="module")
def logged(trained, tmp_path_factory, new_store):
    uri = new_store(tmp_path_factory.mktemp("store"))
    pipeline, X, names, classes, _, _ = trained
    with RunTracker(uri, "wtc-raw") as tracker:
        model_uri = log_pipeline_model(pipeline, X[:5], classes, names, name="model", view="combined",
                                       extras=["total"], target="action", threshold=0.6)
    return uri, model_uri, tracker.run_id


def _frame(raw, tasks, as_text=False):
    return pd.DataFrame({"task": tasks, "entry": [json.dumps(raw[t]) if as_text else raw[t] for t in tasks]})


@pytest.mark.parametrize("as_text", [False, True], ids=["dict", "json-text"])
def test_round_trip_on_raw_tasks_gives_the_pipelines_probabilities(trained, logged, as_text):
    pipeline, X, names, classes, raw, history = trained
    uri, model_uri, _ = logged
    model = load_model(model_uri, tracking_uri=uri)
    tasks = history.tasks[:25]
    out = model.predict(_frame(raw, tasks, as_text))
    assert list(out.columns) == output_columns(classes)
    assert out["task"].tolist() == tasks and (out["error"] == "").all()
    expected = pipeline.predict_proba(X[:25])
    np.testing.assert_allclose(out[[f"p_{c}" for c in classes]].to_numpy(), expected, rtol=1e-6)
    assert out["recommendation"].tolist() == [classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(out["confidence"], expected.max(axis=1), rtol=1e-6)
    runner = np.sort(expected, axis=1)[:, -2]
    np.testing.assert_allclose(out["runner_up_p"], runner, rtol=1e-6)
    # The stored threshold (0.6) decides when no threshold is passed.
    assert (out["decision"] == np.where(out["confidence"] >= 0.6, "AUTO", "REVIEW")).all()
    assert (out["unseen_codes"] == 0).all() and (out["unseen_sites"] == 0).all()


def test_threshold_param_overrides_the_stored_one(trained, logged):
    _, _, _, _, raw, history = trained
    uri, model_uri, _ = logged
    model = load_model(model_uri, tracking_uri=uri)
    frame = _frame(raw, history.tasks[:10])
    assert (model.predict(frame, params={"threshold": 0.0})["decision"] == "AUTO").all()
    out = model.predict(frame, params={"threshold": 1.0})
    assert ((out["decision"] == "AUTO") == (out["confidence"].astype(float) >= 1.0)).all()


def test_unseen_codes_and_sites_are_ignored_and_counted(trained, logged):
    _, X, names, classes, raw, history = trained
    uri, model_uri, _ = logged
    model = load_model(model_uri, tracking_uri=uri)
    task = history.tasks[0]
    entry = json.loads(json.dumps(raw[task]))
    known_code = next(iter(entry["errors"]["good_sites"]))
    entry["errors"]["good_sites"].setdefault("424242", {})["T2_XX_Nowhere"] = 4   # new code, new site
    entry["errors"]["good_sites"]["424243"] = {"T2_XX_Nowhere": 1}               # another new code
    entry["errors"]["good_sites"][known_code]["T3_XX_Elsewhere"] = 2            # known code, new site
    unseen = "/pdmvserv_task_NEW-Campaign-00001__v1_T_190101_000000_0001/NEW-Campaign-00001_0"
    out = model.predict(pd.DataFrame({"task": [unseen], "entry": [entry]}))
    row = out.iloc[0]
    assert row["error"] == ""
    assert row["unseen_codes"] == 2 and row["unseen_sites"] == 2
    # Ignored: without the total extra (which counts every error) the probabilities are those of
    # the known part alone.
    error_columns = [i for i, n in enumerate(names) if n.count(":") == 2]
    bare = Pipeline([("model", LogisticRegression(max_iter=2000))])
    y, _ = build_target(history, "action")
    bare.fit(X[:, error_columns][y >= 0], y[y >= 0])
    model = WTCTaskModel(bare, classes, [names[i] for i in error_columns], view="combined")
    with_unseen = model.predict(None, pd.DataFrame({"task": [unseen], "entry": [entry]}))
    known = model.predict(None, pd.DataFrame({"task": [unseen], "entry": [raw[task]]}))
    columns = [f"p_{c}" for c in classes]
    np.testing.assert_allclose(with_unseen[columns].to_numpy(), known[columns].to_numpy())
    assert known.loc[0, "unseen_codes"] == 0 and known.loc[0, "unseen_sites"] == 0


def test_a_malformed_task_among_good_ones_gets_one_line(trained, logged):
    _, _, _, classes, raw, history = trained
    uri, model_uri, _ = logged
    model = load_model(model_uri, tracking_uri=uri)
    good = history.tasks[:3]
    bad_counts = {"errors": {"good_sites": {"50660": {"T2_US_MIT": -3}}}}
    rows = pd.DataFrame({
        "task": [good[0], "/wf/bad_count", good[1], "/wf/not_json", "no-slash", good[2], good[0]],
        "entry": [raw[good[0]], bad_counts, json.dumps(raw[good[1]]), "{not json", raw[good[2]], raw[good[2]],
                  raw[good[0]]],
    })
    out = model.predict(rows)
    assert out["task"].tolist() == rows["task"].tolist()
    errors = out["error"].tolist()
    assert errors[2] == errors[5] == ""
    assert "count must be a non-negative integer" in errors[1] and "errors.good_sites.50660" in errors[1]
    assert errors[3].startswith("entry: not valid JSON")
    assert "<name>" in errors[4]
    # A task name sent twice: both rows refused, as the loader refuses it in a file.
    assert errors[0] == errors[6] == "<name>: duplicate task name"
    for i in (0, 1, 3, 4, 6):
        assert "\n" not in errors[i]
        assert out.loc[i, "recommendation"] == "" and out.loc[i, "decision"] == ""
        assert out.loc[i, [f"p_{c}" for c in classes]].isna().all() and pd.isna(out.loc[i, "unseen_codes"])
    assert set(out.loc[[2, 5], "decision"]) <= {"AUTO", "REVIEW"}


def test_only_bad_tasks_each_get_their_reason(trained, logged):
    uri, model_uri, _ = logged
    model = load_model(model_uri, tracking_uri=uri)
    out = model.predict(pd.DataFrame({"task": ["/wf/a", "/wf/b"],
                                      "entry": [{"errors": []}, {"errors": {"bad_sites": {"x": {"T1": 1}}}}]}))
    assert out["error"].str.len().gt(0).all()
    assert "errors" in out.loc[0, "error"] and "exit code must be an integer" in out.loc[1, "error"]


def test_signature_example_and_artifacts_describe_raw_tasks(trained, logged):
    _, _, names, classes, _, _ = trained
    uri, model_uri, run_id = logged
    mlflow.set_tracking_uri(uri)
    info = mlflow.models.get_model_info(model_uri)
    assert info.signature.inputs.input_names() == ["task", "entry"]
    assert [c.type.name for c in info.signature.inputs.inputs] == ["string", "string"]
    assert info.signature.outputs.input_names() == output_columns(classes)
    assert info.signature.params.to_dict()[0]["name"] == "threshold"
    assert info.saved_input_example_info is not None and info.run_id == run_id
    local = mlflow.artifacts.download_artifacts(model_uri)
    spec = json.loads(open(f"{local}/artifacts/model_spec.json").read())
    assert spec == {"kind": "wtc-tasks", "view": "combined", "extras": ["total"], "target": "action",
                    "threshold": 0.6, "class_names": classes}
    assert json.loads(open(f"{local}/artifacts/feature_names.json").read()) == names
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert list(example.columns) == ["task", "entry"] and isinstance(example["entry"].iloc[0], str)
    assert json.loads(example["entry"].iloc[0])["errors"]


def test_the_view_and_extras_are_read_from_a_vocabulary():
    assert infer_view(["good:1:T2_US_MIT", "bad:2:T1_US_FNAL"]) == ("combined", [])
    assert infer_view(["good:1:T2_US_MIT", "total:errors", "campaign:X"]) == ("good", ["campaign", "total"])
    assert infer_view(["good:1:T2", "bad:1:unknown"]) == ("tiers", [])
    assert infer_view(["good:1:*", "n:codes"]) == ("codes", ["n_codes"])


def test_tiers_view_model_reads_raw_sites(trained):
    _, _, _, _, raw, history = trained
    tiers_X, tiers_names = build_features(history, "tiers")
    y, classes = build_target(history, "binary")
    keep = y >= 0
    pipeline = Pipeline([("model", LogisticRegression(max_iter=2000))]).fit(tiers_X[keep], y[keep])
    model = WTCTaskModel(pipeline, classes, list(tiers_names), view="tiers")
    tasks = history.tasks[:8]
    out = model.predict(None, _frame(raw, tasks))
    np.testing.assert_allclose(out[[f"p_{c}" for c in classes]].to_numpy(), pipeline.predict_proba(tiers_X[:8]))
    assert (out["unseen_sites"] == 0).all() and (out["decision"] == "REVIEW").all()  # no threshold: REVIEW


def test_a_workflow_context_model_reads_the_siblings_in_the_same_batch(trained, tmp_path):
    """Workflow blocks (``data=workflow_evidence``) sum over the workflow's tasks of the batch: a
    whole history served at once gets its training features; a task served alone, its own counts
    as its workflow's."""
    _, _, _, _, raw, history = trained
    extras = ["total", "workflow_code_totals", "workflow_summary"]
    X, names = build_features(history, "codes", extras=extras)
    y, classes = build_target(history, "binary")
    keep = y >= 0
    pipeline = Pipeline([("scaler", MaxAbsScaler()), ("model", LogisticRegression(max_iter=2000))]).fit(X[keep], y[keep])
    model = WTCTaskModel(pipeline, classes, list(names), view="codes", extras=extras)
    columns = [f"p_{c}" for c in classes]
    whole = model.predict(None, _frame(raw, history.tasks))
    np.testing.assert_allclose(whole[columns].to_numpy(), pipeline.predict_proba(X), rtol=1e-6)
    by_workflow = pd.Series(history.tasks).str.split("/").str[1]
    sibling = next(t for t, w in zip(history.tasks, by_workflow) if (by_workflow == w).sum() > 1)
    alone = model.predict(None, _frame(raw, [sibling]))
    (tmp_path / "one.json").write_text(json.dumps({sibling: raw[sibling]}))
    single = load_history(tmp_path / "one.json", use_cache=False)
    X_alone, _ = build_features(single, "codes", extras=extras, vocabulary=list(names))
    np.testing.assert_allclose(alone[columns].to_numpy(), pipeline.predict_proba(X_alone), rtol=1e-6)
    assert not np.allclose(alone[columns].to_numpy(), whole.loc[history.tasks.index(sibling), columns].to_numpy())


_LOAD_WITH_ONLY_THE_REQUIREMENTS = """
import importlib.abc, json, sys
blocked = set(json.loads(sys.argv[2]))
class OnlyTheRequirements(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the model's requirements)", name=name)
        return None
sys.meta_path.insert(0, OnlyTheRequirements())
import mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
answer = model.predict(model.metadata.load_input_example(sys.argv[1]))
assert (answer["error"] == "").all(), answer["error"].tolist()
print("served", len(answer))
"""


@pytest.mark.slow
def test_the_model_loads_and_serves_with_only_its_requirements_installed(logged, tmp_path):
    """What `mlflow models serve` builds from requirements.txt: every module the model imports
    on loading belongs to a listed distribution or to one they require (the wtc code travels)."""
    import importlib.metadata
    import subprocess
    import sys

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    uri, model_uri, _ = logged
    mlflow.set_tracking_uri(uri)
    local = mlflow.artifacts.download_artifacts(model_uri, dst_path=str(tmp_path / "model"))
    needed = [Requirement(line).name for line in open(f"{local}/requirements.txt").read().split() if line]
    closure, todo = set(), [canonicalize_name(n) for n in needed]
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    blocked = sorted(module for module, dists in importlib.metadata.packages_distributions().items()
                     if module != "wtc" and not any(canonicalize_name(d) in closure for d in dists))
    assert "omegaconf" not in blocked and "xgboost" in blocked  # listed, and not needed by a logreg pipeline
    done = subprocess.run([sys.executable, "-c", _LOAD_WITH_ONLY_THE_REQUIREMENTS, local, json.dumps(blocked)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "served 5"
