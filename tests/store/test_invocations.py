"""The short way through ``wtc serve``'s ``/invocations`` (wtc.store.invocations): valid raw tasks get
exactly the answer of the guarded MLflow path; everything else is left to that path, unchanged."""

from __future__ import annotations

import json

import pytest

from tests.factories import asgi_call, fit_small_pipeline
from wtc.store import RunTracker
from wtc.store.pyfunc import log_pipeline_model
from wtc.store.serving import GuardedScoring, create_app


@pytest.fixture(scope="module")
def apps(tmp_path_factory, new_store):
    """(the app of ``wtc serve``, the same app without the short way, raw tasks, their names)."""
    pipeline, X, names, classes, raw, history = fit_small_pipeline(
        tmp_path_factory.mktemp("bench") / "history.json", 300, 7, "binary", extras=["workflow_code_totals"])
    uri = new_store(tmp_path_factory.mktemp("store"))
    with RunTracker(uri, "wtc-invocations"):
        model_uri = log_pipeline_model(pipeline, X[:5], classes, names, name="model", view="combined",
                                       extras=["workflow_code_totals"], target="binary", threshold=0.7)
    app = create_app(model_uri, tracking_uri=uri)
    assert app.fast is not None  # a raw-task model is served the short way
    return app, GuardedScoring(app.app), raw, history.tasks


def _payload(form: str, rows: list[tuple[str, object]]) -> dict:
    if form == "dataframe_split":
        return {form: {"columns": ["task", "entry"], "data": [list(r) for r in rows]}}
    return {form: [{"task": t, "entry": e} for t, e in rows]}


@pytest.mark.parametrize("form", ["dataframe_records", "instances", "inputs", "dataframe_split"])
@pytest.mark.parametrize("params", [None, {"threshold": 0.3}, {"threshold": 1}, {"threshold": -1.0}])
def test_valid_tasks_get_exactly_the_answer_of_mlflows_path(apps, form, params):
    app, mlflow_path, raw, tasks = apps
    payload = _payload(form, [(t, raw[t]) for t in tasks[:40]]) | ({"params": params} if params else {})
    body = json.dumps(payload).encode()
    assert app.fast(body, "application/json") is not None  # answered the short way
    fast, slow = asgi_call(app, body), asgi_call(mlflow_path, body)
    assert fast[0] == slow[0] == 200
    assert json.loads(fast[1]) == json.loads(slow[1])  # same rows, keys, order and floats to the bit


def _bodies(raw, tasks):
    good = json.dumps({"task": tasks[0], "entry": raw[tasks[0]]})
    entry = json.dumps(raw[tasks[1]])
    records = '{"dataframe_records": [%s]%s}'
    return {
        "a row with a key twice": records % (good[:-1] + f', "task": "{tasks[2]}"' + "}", ""),
        "the format twice": '{"inputs": [%s], "inputs": [%s]}' % (good, good),
        "a params key twice": records % (good, ', "params": {"threshold": 0.2, "threshold": 0.9}'),
        "a key twice in an entry": records % (good[:-2] + ', "parameters": {}, "parameters": {}}}', ""),
        "params null": records % (good, ', "params": null'),
        "a bad threshold": records % (good, ', "params": {"threshold": 7}'),
        "a format null": '{"inputs": null}',
        "no rows": '{"inputs": []}',
        "a bad count": records % ('{"task": "/wf/t", "entry": {"errors": {"good_sites": {"85": {"T1_US_FNAL": -3}}}}}', ""),
        "a task twice": records % (good + ", " + good, ""),
        "an entry sent as text": records % (json.dumps({"task": tasks[1], "entry": entry}), ""),
        "an entry that is a list": records % ('{"task": "/wf/t", "entry": [1]}', ""),
        "a colon in a task name": records % (good.replace(tasks[0], tasks[0] + ":x", 1), ""),
        "another column": records % (good[:-1] + ', "other": 1}', ""),
        "other split columns": '{"dataframe_split": {"columns": ["entry", "task"], "data": []}}',
        "an entry nested too deep": records % ('{"task": "/wf/t", "entry": {"x": ' + "[" * 70 + "]" * 70 + "}}", ""),
        "Infinity in params": records % (good, ', "params": {"threshold": Infinity}'),
        "not JSON": records % (good + ",", ""),
        "not UTF-8 in an entry": (records % ('{"task": "/wf/t", "entry": {"x": "\xff"}}', "")).encode("latin-1"),
    }


@pytest.mark.parametrize("name", list(_bodies({"/a/b": {}, "/a/c": {}, "/a/d": {}}, ["/a/b", "/a/c", "/a/d"])))
@pytest.mark.parametrize("content_type", ["application/json", "text/csv"])
def test_anything_else_takes_the_guarded_mlflow_path(apps, name, content_type):
    app, mlflow_path, raw, tasks = apps
    body = _bodies(raw, tasks)[name]
    body = body if isinstance(body, bytes) else body.encode()
    assert app.fast(body, content_type) is None
    assert asgi_call(app, body, content_type) == asgi_call(mlflow_path, body, content_type)


@pytest.mark.parametrize("content_type", ["application/json; charset=latin-1", "application/json; format=x",
                                          "Application/JSON", None])
def test_a_content_type_mlflow_reads_otherwise_takes_its_path(apps, content_type):
    app, _, raw, tasks = apps
    body = json.dumps(_payload("inputs", [(tasks[0], raw[tasks[0]])])).encode()
    assert app.fast(body, content_type) is None
    assert app.fast(body, "application/json; charset=utf-8") is not None
