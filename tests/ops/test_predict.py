"""``wtc predict`` on a history with good and bad tasks, through a registered champion on a temp store."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.factories import fit_small_pipeline, served
from wtc.cli import main
from wtc.store import RunTracker
from wtc.store.pyfunc import log_pipeline_model
from wtc.store.uri import using_tracking_uri

THRESHOLD = 0.7
N_GOOD = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """A store with ``wtc-p@champion`` (a raw-task model, promoted-style tags) and an unpromoted matrix model."""
    root = tmp_path_factory.mktemp("predict")
    uri = new_store(root)
    path = root / "history.json"
    pipeline, X, names, classes, _, history = fit_small_pipeline(path, 400, 3, "action")
    with RunTracker(uri, "wtc-predict"):
        log_pipeline_model(pipeline, X[:5], classes, list(names), view="combined", target="action",
                           registered_model_name="wtc-p")
    with RunTracker(uri, "wtc-predict"):
        matrix_uri = log_pipeline_model(pipeline, X[:5], classes, list(names))
    client = mlflow.MlflowClient(uri)
    client.set_registered_model_alias("wtc-p", "champion", "1")
    for key, value in {"wtc.auto_threshold": THRESHOLD, "wtc.auto_precision": 0.9, "wtc.auto_coverage": 0.4,
                       "wtc.auto_confidence": 0.8}.items():
        client.set_model_version_tag("wtc-p", "1", key, str(value))
    raw = json.loads(path.read_text())
    tasks = {t: raw[t] for t in list(raw)[:N_GOOD]}
    tasks["/wf_bad/negative_count"] = {"errors": {"good_sites": {"50660": {"T2_US_MIT": -2}}}}
    tasks["/wf_bad/no_errors"] = {"parameters": {"action": "acdc"}}
    mixed = root / "mixed.json"
    mixed.write_text(json.dumps(tasks))
    expected = pipeline.predict_proba(X[[history.tasks.index(t) for t in list(raw)[:N_GOOD]]])
    return uri, mixed, classes, expected, matrix_uri


def test_predict_a_file_with_good_and_bad_tasks(store, tmp_path, capsys):
    uri, mixed, classes, expected, _ = store
    out = tmp_path / "predictions.csv"
    code = main(["predict", str(mixed), "--model", "models:/wtc-p@champion", "--tracking-uri", uri,
                 "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 1  # some tasks could not be predicted; the others were
    errors = stderr.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert "negative_count" in errors[0] and "count must be a non-negative integer" in errors[0]
    assert "no_errors" in errors[1] and "errors" in errors[1]
    assert "Traceback" not in stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == N_GOOD + 2
    good = table[table["error"] == ""]
    assert len(good) == N_GOOD
    confidence = expected.max(axis=1)
    np.testing.assert_allclose(good["confidence"].astype(float), confidence, rtol=1e-6)
    auto = confidence >= THRESHOLD
    assert (good["decision"] == np.where(auto, "AUTO", "REVIEW")).all()
    assert good["recommendation"].tolist() == [classes[i] for i in expected.argmax(axis=1)]
    lines = stdout.splitlines()
    assert sum(line.startswith(("AUTO", "REVIEW")) for line in lines) == N_GOOD
    assert f"{N_GOOD} of {N_GOOD + 2} task(s) predicted; {auto.sum()} AUTO" in stdout
    assert "expected precision of AUTO decisions: 90%" in stdout and "expected coverage 40%" in stdout
    assert "held-out tasks, where its 80% lower bound reached it" in stdout
    assert "dominant exit codes:" in stdout
    assert "note: the AUTO threshold was chosen at promotion for 90% precision" in stdout


def test_json_output_and_summary(store, tmp_path, capsys):
    uri, mixed, classes, expected, _ = store
    out = tmp_path / "p.json"
    main(["predict", str(mixed), "--model", "models:/wtc-p@champion", "--tracking-uri", uri, "--precision", "0.9",
          "--out", str(out)])
    stdout = capsys.readouterr().out
    assert "note:" not in stdout
    written = json.loads(out.read_text())
    summary = written["summary"]
    assert summary["tasks"] == N_GOOD + 2 and summary["invalid"] == 2 and summary["predicted"] == N_GOOD
    assert summary["auto"] == int((expected.max(axis=1) >= THRESHOLD).sum())
    assert summary["expected_precision"] == 0.9 and summary["threshold"] == THRESHOLD
    by_class = summary["by_recommendation"]
    assert sum(v["tasks"] for v in by_class.values()) == N_GOOD
    assert all(v["top_codes"] for v in by_class.values())
    assert len(written["tasks"]) == N_GOOD + 2


def test_an_unpromoted_matrix_model_still_predicts_raw_tasks_all_review(store, capsys):
    uri, mixed, classes, expected, matrix_uri = store
    code = main(["predict", str(mixed), "--model", matrix_uri, "--tracking-uri", uri])
    stdout = capsys.readouterr().out
    assert code == 1
    assert f"{N_GOOD} of {N_GOOD + 2} task(s) predicted; 0 AUTO" in stdout
    assert "note: no AUTO threshold" in stdout


@pytest.mark.parametrize("args, message", [
    (["predict", "missing.json", "--model", "models:/wtc-p@champion"], "cannot read the file"),
    (["predict", "{mixed}", "--model", "models:/nope@champion"], "cannot load the model models:/nope@champion"),
    (["predict", "{mixed}", "--model", "models:/wtc-p@champion", "--out", "x.txt"], "--out must end in .csv"),
])
def test_errors_are_one_line(store, capsys, args, message):
    uri, mixed, *_ = store
    code = main([a.replace("{mixed}", str(mixed)) for a in args] + ["--tracking-uri", uri])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def _deep(levels: int) -> dict:
    entry: dict = {}
    for _ in range(levels):
        entry = {"errors": entry}
    return entry


def test_hostile_entries_are_refused_per_task_in_bounded_work(store):
    """Oversized and deeply nested entries (as text or as objects) become one error each; good tasks still predict."""
    from wtc.inference.tasks import MAX_ENTRY_CHARS

    uri, mixed, classes, expected, _ = store
    tasks = json.loads(mixed.read_text())
    good = list(tasks)[:2]
    with using_tracking_uri(uri):
        model = mlflow.pyfunc.load_model("models:/wtc-p@champion")
    rows = [
        {"task": good[0], "entry": tasks[good[0]]},
        {"task": "/wf/deep_text", "entry": "[" * 100_000},
        {"task": "/wf/deep_object", "entry": _deep(5_000)},
        {"task": "/wf/huge_text", "entry": json.dumps(tasks[good[1]]) + " " * MAX_ENTRY_CHARS},
        {"task": "/wf/huge_object", "entry": {"errors": {"good_sites": {"50660": {f"T2_X_{i}": 1 for i in range(60_000)}}}}},
        {"task": good[1], "entry": json.dumps(tasks[good[1]])},
    ]
    out = model.predict(pd.DataFrame(rows))
    errors = out["error"].tolist()
    assert errors[0] == "" and errors[5] == ""
    np.testing.assert_allclose(out.loc[[0, 5], [f"p_{c}" for c in classes]].to_numpy(), expected[:2], rtol=1e-6)
    assert "nested too deeply" in errors[1] and "nested too deeply" in errors[2]
    assert f"more than the {MAX_ENTRY_CHARS}" in errors[3] and f"more than the {MAX_ENTRY_CHARS}" in errors[4]
    assert all("\n" not in e for e in errors)


def test_a_call_holds_a_bounded_number_of_tasks_and_predict_sends_batches(store, tmp_path, monkeypatch, capsys):
    import wtc.inference.tasks as tasks_module
    import wtc.ops.predict as predict

    uri, mixed, classes, expected, _ = store
    whole = tmp_path / "whole.json"
    assert main(["predict", str(mixed), "--model", "models:/wtc-p@champion", "--tracking-uri", uri,
                 "--out", str(whole)]) == 1
    monkeypatch.setattr(tasks_module, "MAX_TASKS_PER_CALL", 7)
    monkeypatch.setattr(predict, "MAX_TASKS_PER_CALL", 7)
    with using_tracking_uri(uri):
        model = mlflow.pyfunc.load_model("models:/wtc-p@champion")
    tasks = json.loads(mixed.read_text())
    with pytest.raises(Exception, match="more than the 7 one call may hold"):
        model.predict(pd.DataFrame({"task": list(tasks), "entry": list(tasks.values())}))
    batched = tmp_path / "batched.json"
    assert main(["predict", str(mixed), "--model", "models:/wtc-p@champion", "--tracking-uri", uri,
                 "--out", str(batched)]) == 1  # 1: the file has bad tasks
    assert json.loads(batched.read_text()) == json.loads(whole.read_text())


def test_a_deeply_nested_history_file_is_one_line(store, tmp_path, capsys):
    uri, *_ = store
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    code = main(["predict", str(path), "--model", "models:/wtc-p@champion", "--tracking-uri", uri])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "nested too deeply" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("threshold", [-5, -0.5, 1.0001, 7, float("nan"), float("inf"), float("-inf"), True, "abc",
                                       [0.5]])
def test_a_request_threshold_outside_0_1_is_refused_not_obeyed(store, threshold):
    """``"params": {"threshold": -5}`` made every task AUTO and NaN every task REVIEW: refused as
    INVALID_PARAMETER_VALUE (the scoring server's HTTP 400), in one line naming the param."""
    from mlflow.exceptions import MlflowException

    uri, mixed, *_ = store
    tasks = json.loads(mixed.read_text())
    frame = pd.DataFrame({"task": list(tasks)[:3], "entry": [json.dumps(tasks[t]) for t in list(tasks)[:3]]})
    with using_tracking_uri(uri):
        model = mlflow.pyfunc.load_model("models:/wtc-p@champion")
    with pytest.raises(MlflowException) as info:
        model.predict(frame, params={"threshold": threshold})
    assert info.value.get_http_status_code() == 400 and "\n" not in info.value.message
    assert "threshold" in info.value.message
    assert set(model.predict(frame, params={"threshold": 0.0})["decision"]) == {"AUTO"}
    assert set(model.predict(frame, params={"threshold": 1.0})["decision"]) == {"REVIEW"}
    assert model.predict(frame, params={"threshold": -1.0}).equals(model.predict(frame))  # "not given": the model's own


@pytest.mark.slow
def test_wtc_serve_answers_raw_tasks_over_http(store, tmp_path):
    """`wtc serve` serves for real; POST raw tasks to /invocations; stop its process group."""
    uri, mixed, classes, expected, _ = store
    with served("models:/wtc-p@champion", uri, tmp_path) as post:
        tasks = json.loads(mixed.read_text())
        names = list(tasks)[:3] + ["/wf_bad/negative_count", "/wf_bad/deep"]
        body = {"dataframe_records": [{"task": t, "entry": tasks[t]} for t in names[:2]]
                + [{"task": names[2], "entry": json.dumps(tasks[names[2]])}, {"task": names[3], "entry": tasks[names[3]]},
                   {"task": names[4], "entry": "[" * 100_000}],
                "params": {"threshold": 0.0}}
        rows = post(body)
        assert [r["task"] for r in rows] == names
        for row, proba in zip(rows[:3], expected[:3]):
            assert row["error"] == "" and row["decision"] == "AUTO"  # threshold 0: every valid task AUTO
            np.testing.assert_allclose([row[f"p_{c}"] for c in classes], proba, rtol=1e-6)
            assert row["recommendation"] == classes[int(proba.argmax())]
        assert "count must be a non-negative integer" in rows[3]["error"] and rows[3]["decision"] == ""
        assert "nested too deeply" in rows[4]["error"]  # a hostile row is answered, not a server error


def test_wtc_serve_replaces_itself_by_the_guarded_scoring_server(monkeypatch, capsys, tmp_path):
    """What ``wtc serve`` starts, in this process: ``os.execve`` is recorded instead of replacing pytest.
    (The slow tests above serve for real.)"""
    import os
    import sys
    from pathlib import Path

    from wtc.ops import serve as serving

    class Replaced(Exception):
        pass

    started = []

    def execve(path, argv, env):
        started.append((path, argv, env))
        raise Replaced

    monkeypatch.setattr(serving.os, "execve", execve)
    store = f"sqlite:///{tmp_path / 'x.db'}"
    (tmp_path / "x.db").touch()  # the store must exist: wtc serve never creates an empty one
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # not activated: the venv's bin dir is not on PATH
    with pytest.raises(Replaced):
        main(["serve", "--model", "models:/wtc-p@champion", "--port", "5123", "--tracking-uri", store])
    ((path, argv, env),) = started
    assert argv[0] == path == sys.executable
    assert argv[1:] == ["-m", "uvicorn", "--factory", "wtc.store.serving:create_app_from_env",
                        "--host", "127.0.0.1", "--port", "5123"]
    assert env["WTC_SERVE_MODEL"] == "models:/wtc-p@champion"
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    assert env["MLFLOW_TRACKING_URI"] == store
    assert "serving models:/wtc-p@champion on http://127.0.0.1:5123/invocations" in capsys.readouterr().out


def test_wtc_serve_without_uvicorn_is_one_line(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    (tmp_path / "x.db").touch()
    assert main(["serve", "--model", "models:/wtc-p@champion", "--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: uvicorn is not installed beside ")


def test_an_action_mode_report_promises_and_measures_the_action():
    """A recommender gated in mode action promises the action's precision: the summary says so, gives the
    coverage it expects (not the whole's 0%) and the realised precision of the action beside the whole's."""
    import math

    from wtc.inference.joint import JointGate
    from wtc.ops.predict import Prediction, format_report

    table = pd.DataFrame({"task": ["/w/a", "/w/b"], "error": ["", ""], "decision": ["AUTO", "REVIEW"],
                          "auto_mode": ["action", ""], "recommendation": ["acdc splitting=2x", "clone"],
                          "action": ["acdc", "clone"], "confidence": [0.5, 0.4], "runner_up": ["clone", "acdc"],
                          "runner_up_p": [0.05, 0.3],
                          "below_threshold": ["whole 0.5, no threshold certified (weakest: splitting 0.6)",
                                              "whole 0.4, no threshold certified (weakest: action 0.4); action 0.4<0.9"]})
    gate = JointGate(math.inf, 0.9, "action", joint_coverage=0.0, action_coverage=0.74)
    realised = {"labelled": 2, "correct": 0, "accuracy": 0.0, "auto": 1, "auto_correct": 0, "auto_coverage": 0.5,
                "auto_precision": 0.0, "action_accuracy": 0.5, "auto_action_precision": 1.0, "auto_action_correct": 1}
    report = format_report(Prediction(table, "models:/r@champion", math.inf, 0.95, "the joint gate", 0.74,
                                      realised=realised, gate=gate.to_dict()))
    assert "[whole recommendation held back by: whole 0.5, no threshold certified" in report
    assert "[held back by: whole 0.4, no threshold certified (weakest: action 0.4); action 0.4<0.9]" in report
    assert "expected precision of AUTO decisions (the action): 95%" in report
    assert "expected coverage 74% or more (the action alone 74%, the whole recommendation 0%)" in report
    assert "realised precision of AUTO 0.0% (0/1) for the whole recommendation, 100.0% (1/1) for the action" in report
