"""Figures drawn on demand: the inputs a sweep's run logs, and ``wtc runs figures`` drawing them."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest

from tests.factories import figure_inputs, listed, markdown_sections, on_demand_run
from wtc.cli import main
from wtc.evaluation.diagnostics import FIGURE_INPUTS, FigureInputs, draw_figures
from wtc.store import RunTracker


@pytest.mark.parametrize("n_classes, rich", [(2, True), (4, False)])
def test_the_inputs_come_back_as_they_were_saved(tmp_path, n_classes, rich):
    inputs = figure_inputs(n_classes, rich)
    inputs.save(tmp_path / "inputs.npz")
    back = FigureInputs.load(tmp_path / "inputs.npz")
    assert back.classes == inputs.classes and back.metric == "roc_auc" and back.values == inputs.values
    for name in ("y_train", "train_proba", "y_test", "test_proba", "class_counts"):
        np.testing.assert_array_equal(getattr(back, name), getattr(inputs, name))
    for name in ("oracle_test", "test_proba_uncalibrated", "importances"):
        if getattr(inputs, name) is None:
            assert getattr(back, name) is None, name
        else:
            np.testing.assert_array_equal(getattr(back, name), getattr(inputs, name))
    if rich:
        assert back.feature_names == inputs.feature_names and len(back.fold_predictions) == 3
        for (y, p), (y0, p0) in zip(back.fold_predictions, inputs.fold_predictions):
            np.testing.assert_array_equal(y, y0)
            np.testing.assert_array_equal(p, p0)
    else:
        assert back.fold_predictions is None and back.feature_names is None
    names = [name for name, _ in draw_figures(back)]
    expected = ["plots/roc.png", "plots/confusion_matrix.png", "plots/overtraining.png", "plots/calibration.png",
                "plots/class_balance.png", "plots/automation.png"]
    if rich:
        expected[1:1] = ["plots/cv_roc.png"]
        expected += ["plots/convergence.png", "plots/feature_importance.png"]
    assert names == expected


def test_wtc_runs_figures_draws_them_once_into_the_run(tracking_uri, tmp_path, capsys):
    run_id = on_demand_run(tracking_uri, tmp_path)
    assert main(["runs", "figures", run_id, "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out
    assert f"drew 9 figures of logreg-combined ({run_id}) in " in out and "1 drawn; open them: " in out
    client = mlflow.MlflowClient(tracking_uri)
    assert len(client.list_artifacts(run_id, "plots")) == 9
    run = client.get_run(run_id)
    assert run.data.tags["wtc.figures"] == "drawn"
    summary = (tmp_path / "summary.md")
    summary.write_bytes(open(client.download_artifacts(run_id, "summary.md", str(tmp_path)), "rb").read())
    text = summary.read_text()
    assert text == run.data.tags["mlflow.note.content"]
    figures = ["plots/roc.png", "plots/cv_roc.png", "plots/confusion_matrix.png", "plots/overtraining.png",
               "plots/calibration.png", "plots/class_balance.png", "plots/automation.png", "plots/convergence.png",
               "plots/feature_importance.png"]
    images = [f"![{f}](get-artifact?path={f.replace('/', '%2F')}&run_uuid={run_id})" for f in figures]
    assert text.endswith("## Figures\n\n" + "".join(f"- `{f}`\n" for f in figures) + "\n" + "\n".join(images) + "\n")
    assert main(["runs", "figures", run_id, "--tracking-uri", tracking_uri]) == 0
    assert "already drawn (--force draws them again)" in capsys.readouterr().out
    assert main(["runs", "figures", run_id, "--tracking-uri", tracking_uri, "--force"]) == 0
    assert "drew 9 figures" in capsys.readouterr().out
    assert len(client.list_artifacts(run_id, "plots")) == 9


def test_a_run_without_inputs_is_said_and_left_alone(tracking_uri, capsys):
    with RunTracker(tracking_uri, "wtc-binary", run_name="full-run") as tracker:
        tracker.log_text("# full-run\n", "summary.md")
    assert main(["runs", "figures", tracker.run_id, "--tracking-uri", tracking_uri]) == 0
    assert f"full-run ({tracker.run_id}): no {FIGURE_INPUTS}" in capsys.readouterr().out
    assert not mlflow.MlflowClient(tracking_uri).list_artifacts(tracker.run_id, "plots")


def test_unknown_runs_and_unreadable_inputs_are_one_line(tracking_uri, tmp_path, capsys):
    run_id = on_demand_run(tracking_uri, tmp_path)
    bad = tmp_path / "bad" / "inputs.npz"
    bad.parent.mkdir()
    bad.write_bytes(b"not an npz")
    with RunTracker(tracking_uri, "wtc-binary", run_name="broken") as tracker:
        tracker.log_artifact(bad, "figures")
    for run, message in (("0123abcd", f"error: no run 0123abcd in {tracking_uri}"),
                         (tracker.run_id, f"error: run {tracker.run_id}: {FIGURE_INPUTS} cannot be read")):
        # In this process: an exception escaping main() (a traceback at the prompt) fails the test.
        code = main(["runs", "figures", run, "--tracking-uri", tracking_uri])
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith(message), lines
    # Nothing already written was touched.
    assert not mlflow.MlflowClient(tracking_uri).list_artifacts(run_id, "plots")


@pytest.mark.parametrize("argv, message", [
    (["runs", "figures", "--top", "0"], "argument --top: must be at least 1, got 0"),
    (["runs", "figures", "--sweep", "a", "--experiment", "b"], "argument --experiment: not allowed with argument --sweep"),
])
def test_wrong_arguments_give_usage_and_one_error_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and lines[0].startswith("usage: wtc runs figures") and message in lines[-1]


@pytest.mark.parametrize("argv, message", [
    (["runs", "figures"], "error: name the runs: run ids, --sweep TAG or --experiment NAME"),
    (["runs", "figures", "abc", "--sweep", "x"], "error: give run ids, or --sweep/--experiment (with --top), not both"),
])
def test_runs_must_be_named_one_way(tracking_uri, tmp_path, argv, message, capsys):
    on_demand_run(tracking_uri, tmp_path)
    code = main([*argv, "--tracking-uri", tracking_uri])
    out, err = capsys.readouterr()
    assert code == 2 and err.strip() == message and out == "", err


def test_a_sweeps_best_runs_are_drawn_by_rank(tracking_uri, tmp_path, capsys):
    ids = {name: on_demand_run(tracking_uri, tmp_path, name, cv) for name, cv in
           (("dummy", 0.5), ("xgboost", 0.74), ("logreg", 0.7))}
    assert main(["runs", "figures", "--sweep", "s/1", "--top", "2", "--tracking-uri", tracking_uri]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" (")[0] for line in out[:2]] == ["drew 9 figures of xgboost", "drew 9 figures of logreg"]
    client = mlflow.MlflowClient(tracking_uri)
    assert client.get_run(ids["dummy"]).data.tags["wtc.figures"] == "on_demand"


def test_compare_draws_the_figures_it_shows(tracking_uri, tmp_path):
    from wtc.ops.compare import compare

    ids = {name: on_demand_run(tracking_uri, tmp_path, name, cv) for name, cv in
           (("dummy", 0.5), ("xgboost", 0.74), ("logreg", 0.7))}
    report = compare(tracking_uri, tmp_path / "report", sweep="s/1", top=2, log_run=False,
                     figures=["plots/confusion_matrix.png"])
    page = report.paths["comparison.html"].read_text()
    section = page.split("<h2>plots/confusion_matrix.png of each run, side by side</h2>")[1].split("<h2>")[0]
    assert section.count("data:image/png;base64,") == 2
    tags = {name: mlflow.MlflowClient(tracking_uri).get_run(i).data.tags["wtc.figures"] for name, i in ids.items()}
    assert tags == {"dummy": "on_demand", "xgboost": "drawn", "logreg": "drawn"}


def test_drawing_lists_the_figures_and_keeps_the_model_section_in_either_order(tracking_uri, tmp_path):
    """The run page's summary after the figures are drawn: the figures drawn are listed where the
    note on drawing them was, and a model section (kept for later, or logged already) stays as it was."""
    from wtc.evaluation.report import MODEL_HEADING, ON_DEMAND_HEADING, summary_with_model
    from wtc.ops.deferred import draw_run_figures
    from wtc.store.query import read_artifact

    client = mlflow.MlflowClient(tracking_uri)

    def summary(run_id) -> dict[str, str]:
        text = read_artifact(tracking_uri, run_id, "summary.md").decode()
        assert client.get_run(run_id).data.tags["mlflow.note.content"] == text  # the run page shows it
        return markdown_sections(text)

    def log_the_model(run_id):  # what logging the kept model does to the summary (wtc.store.logged_models)
        text = summary_with_model(read_artifact(tracking_uri, run_id, "summary.md").decode(), run_id, "models:/m-1")
        client.log_text(run_id, text, "summary.md")
        client.set_tag(run_id, "mlflow.note.content", text)

    # Drawn first, then the model logged.
    first = on_demand_run(tracking_uri, tmp_path / "first", model_on_demand=True)
    before = summary(first)
    assert f"`wtc runs model {first}`" in before[MODEL_HEADING] and f"`wtc runs figures {first}`" in \
        before[ON_DEMAND_HEADING]
    (done,) = draw_run_figures(tracking_uri, [first])
    drawn = summary(first)
    assert done.outcome == "drawn" and len(done.figures) == 9
    assert ON_DEMAND_HEADING not in drawn and listed(drawn["## Figures"]) == done.figures
    assert {h: b for h, b in drawn.items() if h != "## Figures"} == \
        {h: b for h, b in before.items() if h != ON_DEMAND_HEADING}  # the model section and the rest as they were
    log_the_model(first)
    both = summary(first)
    assert "models:/m-1" in both[MODEL_HEADING] and "wtc runs model" not in both[MODEL_HEADING]
    assert listed(both["## Figures"]) == done.figures

    # The model logged first, then drawn: the same page.
    second = on_demand_run(tracking_uri, tmp_path / "second", model_on_demand=True)
    log_the_model(second)
    assert f"`wtc runs figures {second}`" in summary(second)[ON_DEMAND_HEADING]
    assert [d.outcome for d in draw_run_figures(tracking_uri, [second])] == ["drawn"]
    assert summary(second) == {h: b.replace(first, second) for h, b in both.items()}
