"""Models logged on demand: what a sweep's run keeps, and the model ``wtc runs model`` / promotion log from it."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.factories import SHARP, oof_gate, train, versions
from wtc.cli import main
from wtc.ops.promote import promote
from wtc.store.logged_models import MODEL_INPUTS, TAG_LOGGED_MODEL, ModelInputs, run_model
from wtc.store.pyfunc import load_model
from wtc.store.query import read_artifact

ON_DEMAND = "diagnostics.model=on_demand"


def _model_files(client, model) -> dict[str, str]:
    """The logged model's own files that do not vary between two loggings of the same pipeline."""
    path = mlflow.artifacts.download_artifacts(model.model_uri, tracking_uri=client.tracking_uri)
    files = {}
    for name in ("requirements.txt", "python_env.yaml", "serving_input_example.json",
                 "artifacts/class_names.json", "artifacts/feature_names.json", "artifacts/model_spec.json"):
        files[name] = (Path(path) / name).read_text()
    files["code"] = sorted(str(p.relative_to(path)) for p in (Path(path) / "code").rglob("*.py"))
    return files


def _flavors(info) -> dict:
    """The model's flavors but the temporary paths its artifacts were copied from."""
    flavors = json.loads(json.dumps(info.flavors))
    for artifact in flavors["python_function"].get("artifacts", {}).values():
        artifact.pop("uri", None)
    return flavors


@pytest.mark.slow
def test_a_light_run_keeps_its_model_inputs_and_logs_no_model(history_400, tracking_uri):
    result = train(history_400, tracking_uri, "wtc-od", *SHARP, ON_DEMAND)
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert run_model(client, run) is None
    assert run.data.tags[TAG_LOGGED_MODEL] == "on_demand"
    inputs = ModelInputs.load(read_artifact(tracking_uri, result.run_id, MODEL_INPUTS))
    assert inputs.name == run.info.run_name and inputs.class_names == list(result.classes)
    assert inputs.feature_names == list(result.feature_names) and inputs.X_example.shape[0] == 5
    assert inputs.raw_tasks == {"view": "combined", "extras": [], "target": "binary"}
    rows = np.asarray(inputs.X_example.toarray() if hasattr(inputs.X_example, "toarray") else inputs.X_example)
    np.testing.assert_array_equal(inputs.pipeline.predict_proba(rows), result.pipeline.predict_proba(rows))
    # The run's scores are all there, linked to no model yet; its summary says how to log the model.
    assert run.data.metrics["test/log_loss"] == pytest.approx(result.metrics["test/log_loss"])
    assert f"## Model\n\nThis run kept what its model is made from (`model/inputs.pkl`); `wtc runs model " \
           f"{result.run_id}` logs it" in run.data.tags["mlflow.note.content"]


@pytest.mark.slow
def test_the_model_logged_later_is_the_one_a_run_logs_at_once(history_400, tracking_uri, capsys):
    now = train(history_400, tracking_uri, "wtc-now", *SHARP)
    later = train(history_400, tracking_uri, "wtc-later", *SHARP, ON_DEMAND)
    client = mlflow.MlflowClient(tracking_uri)
    history_before = {k: len(client.get_metric_history(later.run_id, k)) for k in client.get_run(later.run_id).data.metrics}
    summary_before = read_artifact(tracking_uri, later.run_id, "summary.md").decode()

    assert main(["runs", "model", later.run_id, "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"logged the model of {client.get_run(later.run_id).info.run_name} ({later.run_id}) in " in out
    assert "1 logged; open them: " in out

    run, reference = client.get_run(later.run_id), client.get_run(now.run_id)
    model, expected = run_model(client, run), run_model(client, reference)
    assert model is not None and model.name == run.info.run_name and model.status == "READY"
    assert run.data.tags[TAG_LOGGED_MODEL] == "logged" and run.info.status == "FINISHED"
    # The summary (and the run page's Description) now says where the model went, the rest unchanged.
    summary = read_artifact(tracking_uri, later.run_id, "summary.md").decode()
    assert run.data.tags["mlflow.note.content"] == summary
    assert f"## Model\n\nLogged after the run from `model/inputs.pkl`: `{model.model_uri}`.\n" in summary
    assert "wtc runs model" not in summary and summary.startswith(summary_before.partition("## Model")[0])
    assert [o.model_id for o in run.outputs.model_outputs] == [model.model_id]
    # The same flavor, signature, files and code as the model the other run logged at once.
    assert model.tags == expected.tags and set(model.tags) >= {"mlflow.user", "mlflow.source.name"}
    info, expected_info = mlflow.models.get_model_info(model.model_uri), mlflow.models.get_model_info(expected.model_uri)
    assert _flavors(info) == _flavors(expected_info) and info.signature == expected_info.signature
    assert info.run_id == later.run_id
    assert _model_files(client, model) == _model_files(client, expected)
    assert model.params == {k: v for k, v in run.data.params.items()}
    # The run's metrics are linked to it (MLflow links them all; a job links those it logs after its
    # model, all but the timings); the run's own history gains nothing.
    linked = {m.key: m.value for m in model.metrics}
    assert linked == run.data.metrics
    assert {m.key for m in expected.metrics} == {k for k in linked if not k.startswith("time/")}
    assert model.experiment_id == run.info.experiment_id
    assert {k: len(client.get_metric_history(later.run_id, k)) for k in run.data.metrics} == history_before
    # It serves: its input example through the loaded pyfunc gives the pipeline's decisions.
    loaded = load_model(model.model_uri, tracking_uri=tracking_uri)
    example = loaded.input_example
    assert isinstance(example, pd.DataFrame) and list(example.columns) == ["task", "entry"]
    answer = loaded.predict(example)
    assert (answer["error"] == "").all()
    entries = [json.loads(e) for e in example["entry"]]
    assert len(entries) == len(answer)

    # Again: nothing to do.
    assert main(["runs", "model", later.run_id, "--tracking-uri", tracking_uri]) == 0
    assert f"already logged, {model.model_uri}" in capsys.readouterr().out
    assert len(client.search_logged_models([run.info.experiment_id])) == 1


@pytest.mark.slow
def test_promotion_logs_the_model_it_registers_and_a_dry_run_logs_nothing(history_400, tracking_uri, capsys):
    result = train(history_400, tracking_uri, "wtc-prom", *SHARP, ON_DEMAND)
    client = mlflow.MlflowClient(tracking_uri)
    dry = promote(tracking_uri, "wtc-prom", None, "wtc-od", precision=0.9, dry_run=True)
    assert not dry.refused, dry.refusals
    assert f"would register run {result.run_id} (its model, logged from {MODEL_INPUTS} first) as wtc-od a new " \
           "version" in dry.actions
    assert run_model(client, client.get_run(result.run_id)) is None and not versions(tracking_uri, "wtc-od")
    # The threshold is certified on the run's out-of-fold rows, its held-out rows scored by the pipeline the
    # model will be logged from (reported).
    assert dry.coverage == oof_gate(tracking_uri, result.run_id, 0.1)[0].coverage
    assert dry.test_coverage is not None and 0 <= dry.test_coverage <= 1

    outcome = promote(tracking_uri, "wtc-prom", None, "wtc-od", precision=0.9)
    assert not outcome.refused, outcome.refusals
    model = run_model(client, client.get_run(result.run_id))
    assert model is not None
    assert f"logged the model of run {result.run_id} from its {MODEL_INPUTS} ({model.model_uri})" in outcome.actions
    (version,) = versions(tracking_uri, "wtc-od")
    assert version.source == model.model_uri and version.run_id == result.run_id
    assert outcome.threshold == dry.threshold and outcome.coverage == dry.coverage
    # Promoting again finds the model it logged: nothing to do.
    again = promote(tracking_uri, "wtc-prom", None, "wtc-od", precision=0.9)
    assert not again.changed and len(client.search_logged_models([model.experiment_id])) == 1


@pytest.mark.slow
def test_runs_model_says_what_it_could_not_do(history_400, tracking_uri, tmp_path, capsys):
    result = train(history_400, tracking_uri, "wtc-bad", *SHARP, ON_DEMAND, "tracking.log_model=false")
    assert main(["runs", "model", result.run_id, "--tracking-uri", tracking_uri]) == 0
    assert f"({result.run_id}): no {MODEL_INPUTS} and no model (tracking.log_model=false)" in capsys.readouterr().out

    assert main(["runs", "model", "0123abcd", "--tracking-uri", tracking_uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no run 0123abcd in {tracking_uri}"]

    damaged = train(history_400, tracking_uri, "wtc-bad", *SHARP, ON_DEMAND)
    bad = tmp_path / "inputs.pkl"
    bad.write_bytes(b"not a pickle")
    mlflow.MlflowClient(tracking_uri).log_artifact(damaged.run_id, str(bad), "model")
    assert main(["runs", "model", damaged.run_id, "--tracking-uri", tracking_uri]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: run {damaged.run_id}: {MODEL_INPUTS} cannot be read (")
    assert run_model(mlflow.MlflowClient(tracking_uri), mlflow.MlflowClient(tracking_uri).get_run(damaged.run_id)) is None

    assert main(["runs", "model", result.run_id, "--sweep", "x", "--tracking-uri", tracking_uri]) == 2
    assert "give run ids, or --sweep/--experiment (with --top), not both" in capsys.readouterr().err


def test_an_unknown_model_timing_is_one_line(history_400, tracking_uri, capsys):
    from wtc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown diagnostics.model 'later'; choose one of now, on_demand"):
        train(history_400, tracking_uri, "wtc-x", *SHARP, "diagnostics.model=later")


@pytest.mark.slow
@pytest.mark.parametrize("timing", ["now", "on_demand"])
def test_a_run_whose_model_cannot_be_kept_fails_but_keeps_its_scores(history_400, tracking_uri, monkeypatch, timing):
    import wtc.run.experiment
    from wtc.store.runs import RunTracker

    def refuse(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(wtc.run.experiment, "save_model_inputs", refuse)
    monkeypatch.setattr(RunTracker, "log_model", refuse)
    with pytest.raises(RuntimeError, match="disk full"):
        train(history_400, tracking_uri, "wtc-fail", *SHARP, f"diagnostics.model={timing}")
    client = mlflow.MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("wtc-fail").experiment_id],
                                filter_string="tags.`wtc.model` = 'rules_smooth'")
    assert run.info.status == "FAILED" and run.data.tags["error"] == "RuntimeError: disk full"
    assert {"test/log_loss", "cv/log_loss_mean", "oracle/log_loss"} <= set(run.data.metrics)
    assert run_model(client, run) is None and read_artifact(tracking_uri, run.info.run_id, MODEL_INPUTS) is None
