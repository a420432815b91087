"""The recovery recommender: how the parts combine, ``wtc promote --recovery`` on a temp store, predict and serve.

The tests on the trained store (four targets' runs and their baselines, promoted) are marked ``slow``.
"""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.factories import SHARP, SMALL_HISTORY, oof_gate, served, train
from wtc.cli import main
from wtc.data.synthetic import write_benchmark
from wtc.inference.recovery import RecoveryPart, recommend_tasks, recovery_columns
from wtc.inference.tasks import TaskModelSpec
from wtc.store import load_model
from wtc.store.recovery_model import WTCRecoveryModel
from wtc.store.registry import CHAMPION

# --------------------------------------------------------------------------- the combination rule
CLASSES = {"action": ["acdc", "clone", "special"], "splitting": ["1x", "2x", "10x"],
           "xrootd": ["disabled", "enabled"], "memory": ["unset", "<=3GB", "other"]}
VOCABULARY = ["good:50660:*", "bad:71304:*", "good:8001:*"]


class Fixed:
    """A fitted 'pipeline' that gives every task the same probabilities."""

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=float)
        self.classes_ = np.arange(self.proba.size)

    def predict_proba(self, X):
        return np.tile(self.proba, (X.shape[0], 1))


def part(target, proba, threshold):
    spec = TaskModelSpec(view="codes", feature_names=VOCABULARY, class_names=CLASSES[target], target=target)
    return RecoveryPart(Fixed(proba), spec, threshold)


def parts(action=(0.9, 0.06, 0.04), thresholds=(0.8, 0.9, 0.6, 0.9), memory=(0.5, 0.3, 0.2)):
    return {"action": part("action", action, thresholds[0]),
            "splitting": part("splitting", (0.95, 0.03, 0.02), thresholds[1]),
            "xrootd": part("xrootd", (0.7, 0.3), thresholds[2]),
            "memory": part("memory", memory, thresholds[3])}


TASKS = {name: entry for name, entry in list(SMALL_HISTORY.items())[:2]}


def test_an_acdc_gets_its_parameters_and_auto_needs_every_part():
    table = recommend_tasks(parts(), TASKS)
    assert list(table.columns) == recovery_columns(CLASSES["action"])
    row = table.iloc[0]
    assert row["action"] == "acdc" and row["runner_up"] == "clone" and row["error"] == ""
    assert row["recommendation"] == "acdc splitting=1x xrootd=disabled memory=unset"
    assert (row["splitting_p"], row["xrootd_p"], row["memory_p"]) == pytest.approx((0.95, 0.7, 0.5))
    assert row["confidence"] == pytest.approx(0.9 * 0.95 * 0.7 * 0.5)
    # The action meets its threshold but memory (0.5 < 0.9) holds it back.
    assert row["decision"] == "REVIEW" and row["below_threshold"] == "memory 0.5<0.9"
    relaxed = recommend_tasks(parts(thresholds=(0.8, 0.9, 0.6, 0.5)), TASKS)
    assert (relaxed["decision"] == "AUTO").all() and (relaxed["below_threshold"] == "").all()


def test_a_non_acdc_gets_no_splitting_xrootd_or_memory():
    table = recommend_tasks(parts(action=(0.1, 0.85, 0.05), thresholds=(0.8, math.inf, math.inf, math.inf)), TASKS)
    row = table.iloc[0]
    assert row["action"] == "clone" and row["recommendation"] == "clone"
    assert (row["splitting"], row["xrootd"], row["memory"]) == ("", "", "")
    assert np.isnan([row["splitting_p"], row["xrootd_p"], row["memory_p"]]).all()
    # Its confidence is the action's alone, and the parts that never reach their precision do not matter.
    assert row["confidence"] == pytest.approx(0.85) and row["decision"] == "AUTO"


@pytest.mark.parametrize("thresholds, memory, reason", [
    ((0.8, math.inf, 0.6, 0.4), (0.5, 0.3, 0.2), "splitting 0.95, no threshold certified"),
    ((0.8, 0.9, 0.6, 0.4), (0.2, 0.3, 0.5), "memory: other (a rare value)"),
    ((0.95, 0.9, 0.6, 0.4), (0.5, 0.3, 0.2), "action 0.9<0.95"),
])
def test_review_says_which_part_held_it_back(thresholds, memory, reason):
    table = recommend_tasks(parts(thresholds=thresholds, memory=memory), TASKS)
    assert (table["decision"] == "REVIEW").all() and (table["below_threshold"] == reason).all()


def test_with_a_joint_gate_the_whole_recommendation_decides_and_says_its_mode():
    from wtc.inference.joint import JointGate

    confidence = 0.9 * 0.95 * 0.7 * 0.5
    table = recommend_tasks(parts(), TASKS, JointGate(joint_threshold=0.25, action_threshold=0.85))
    assert (table["decision"] == "AUTO").all() and (table["auto_mode"] == "joint").all()
    assert table["confidence"].tolist() == pytest.approx([confidence] * 2)
    held = recommend_tasks(parts(), TASKS, JointGate(joint_threshold=0.5, action_threshold=0.85))
    assert (held["decision"] == "REVIEW").all() and (held["auto_mode"] == "").all()
    # The parts' own thresholds (reported only) say which part held it back.
    assert held["below_threshold"].iloc[0] == (f"whole {confidence:.3g}<0.5 (weakest: memory 0.5); "
                                               "own thresholds: memory 0.5<0.9")
    unthresholded = {name: RecoveryPart(p.pipeline, p.spec) for name, p in parts().items()}
    gate = JointGate(joint_threshold=0.5, action_threshold=0.85)
    assert recommend_tasks(unthresholded, TASKS, gate)["below_threshold"].iloc[0] == (
        f"whole {confidence:.3g}<0.5 (weakest: memory 0.5)")
    by_action = recommend_tasks(parts(), TASKS, JointGate(joint_threshold=0.5, action_threshold=0.85, mode="action"))
    assert (by_action["decision"] == "AUTO").all() and (by_action["auto_mode"] == "action").all()
    # A bundle pickled before the gate has none: its parts' own thresholds decide, as before.
    legacy = WTCRecoveryModel(parts())
    del legacy.gate
    assert legacy.predict(None, TASKS)["auto_mode"].tolist() == ["", ""]


def test_a_bad_task_gets_its_error_and_the_others_a_recommendation():
    tasks = {**TASKS, "/wf/bad": {"errors": {"good_sites": {"50660": {"T2_US_MIT": -1}}}}}
    table = recommend_tasks(parts(), tasks)
    assert table["error"].tolist()[:2] == ["", ""] and "non-negative integer" in table["error"].iloc[2]
    assert table["decision"].tolist() == ["REVIEW", "REVIEW", ""]
    assert table["unseen_codes"].tolist()[:2] == [1, 1]  # -1 in the first task, 85 in the second


def test_the_parts_are_checked():
    with pytest.raises(ValueError, match="needs the action part"):
        WTCRecoveryModel({"splitting": parts()["splitting"]})
    with pytest.raises(ValueError, match="must have the class 'acdc'"):
        WTCRecoveryModel({"action": part("xrootd", (0.5, 0.5), 0.9)})


# --------------------------------------------------------------------------- promote, predict, serve
def test_promote_recovery_without_runs_of_a_part_is_one_line(tracking_uri, capsys):
    """Nothing trained yet: the first part's missing experiment in one line, nothing registered."""
    from wtc.errors import WtcError
    from wtc.ops.recovery import promote_recovery

    assert main(["promote", "--recovery", "--tracking-uri", tracking_uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: no experiment 'wtc-action' in {tracking_uri}")
    with pytest.raises(WtcError, match=r"--precision must be in \(0, 1\], got 0"):
        promote_recovery(tracking_uri, precision=0)
    with pytest.raises(WtcError, match=r"--delta must be in \(0, 1\), got 1"):
        promote_recovery(tracking_uri, delta=1)
    with pytest.raises(WtcError, match=r"--mode must be one of joint, action, got 'parts'"):
        promote_recovery(tracking_uri, mode="parts")
    assert not mlflow.MlflowClient(tracking_uri).search_registered_models()


TARGETS = ("action", "splitting", "xrootd", "memory")


#: Baselines weakened on purpose, trained before promotion so that it finds them on each part's split: on
#: 400 generated tasks nothing beats the real rules and dummy baselines for splitting, xrootd and memory
#: (measured), and what is tested here is how the parts are bundled, not which family wins.
WEAK_BASELINES = (("model=rules", "+model.estimator.alpha=1000", "metric=log_loss"),
                  ("model=dummy", "model.estimator.strategy=uniform", "metric=log_loss"))


#: An action model that also recommends clone and special (class weights balanced), so both paths are seen.
BALANCED = ("model=logreg", "+model.estimator.class_weight=balanced", "scaler=log1p", "metric=log_loss")


ON_DEMAND, ON_DEMAND_PARTS = "diagnostics.model=on_demand", ("splitting", "memory")


@pytest.fixture(scope="module", autouse=True)
def _weak_baselines_count():
    """The weakened baselines stand in for the real ones here (promote otherwise takes only the class
    prior and the procedures as configured): the bundling is under test, not the baselines."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("wtc.ops.baselines._IDENTITY", {})
        yield


@pytest.fixture(scope="module")
def store(tmp_path_factory, new_store):
    """A store with one sharp-rules run per recovery target (and weak baselines on its split)."""
    root = tmp_path_factory.mktemp("recovery")
    uri = new_store(root)
    path = write_benchmark(root / "history.json", n_tasks=400, seed=3)
    runs = {}
    for target in TARGETS:
        # Two parts as a sweep (diagnostics=light) leaves them: their models wait in model/inputs.pkl.
        runs[target] = train(path, uri, f"wtc-{target}", *(BALANCED if target == "action" else SHARP),
                             f"target={target}", *([ON_DEMAND] if target in ON_DEMAND_PARTS else [])).run_id
        for baseline in WEAK_BASELINES:
            train(path, uri, f"wtc-{target}", *baseline, f"target={target}", "tracking.log_model=false")
    return uri, path, runs


@pytest.fixture(scope="module")
def promoted(store):
    uri, path, runs = store
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["promote", "--recovery", "--precision", "0.9", "--tracking-uri", uri])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_promote_recovery_registers_one_model_of_the_four_best_runs(store, promoted, capsys):
    uri, _, runs = store
    code, out, err = promoted
    assert code == 0, err
    assert "wtc-recovery@champion = version 1" in out
    for target in TARGETS:
        assert f"{target}: " in out and runs[target] in out
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version_by_alias("wtc-recovery", CHAMPION)
    tags = version.tags
    assert tags["wtc.kind"] == "recovery" and tags["wtc.auto_precision"] == "0.9"
    for target in TARGETS:
        assert tags[f"wtc.part.{target}.source_run"] == runs[target]
        run = client.get_run(runs[target])
        objective = f"cv/{run.data.params['metric']}_mean"
        assert float(tags[f"wtc.part.{target}.metric_value"]) == pytest.approx(run.data.metrics[objective])
        # Its own threshold (reported: what held a task back) was certified on the part's own out-of-fold rows.
        assert float(tags[f"wtc.part.{target}.auto_coverage"]) == oof_gate(uri, runs[target], 0.1)[0].coverage
    # One joint gate, certified on the parts' out-of-fold rows of the action run's training split.
    assert tags["wtc.gate.mode"] == "joint" and float(tags["wtc.gate.alpha"]) == pytest.approx(0.1)
    assert float(tags["wtc.gate.delta"]) == pytest.approx(0.1)
    gate = load_model(f"models:/wtc-recovery@{CHAMPION}", tracking_uri=uri).unwrap_python_model().gate
    assert float(tags["wtc.gate.joint_threshold"]) == gate.joint_threshold
    assert float(tags["wtc.gate.action_coverage"]) == pytest.approx(gate.action_coverage)
    assert 0 < gate.n_rows < 400 and "gate (mode joint; precision >= 90% with probability >= 90%)" in out
    # The parts whose models waited in their inputs had them logged into their runs first.
    for target in TARGETS:
        logged = f"logged the model of run {runs[target]} from its model/inputs.pkl (models:/m-"
        assert (logged in out) == (target in ON_DEMAND_PARTS), target
        assert client.get_run(runs[target]).data.tags.get("wtc.logged_model") == \
            ("logged" if target in ON_DEMAND_PARTS else None)
    # The bundle is a run of its own experiment, naming its parts.
    source = client.get_run(version.run_id)
    assert client.get_experiment(source.info.experiment_id).name == "wtc-recovery"
    assert {source.data.params[f"{t}.run_id"] for t in TARGETS} == set(runs.values())

    # Again: nothing to do; at another precision, a dry run says it would register a new version.
    assert main(["promote", "--recovery", "--precision", "0.9", "--tracking-uri", uri]) == 0
    assert "already version 1 of these runs: nothing to do" in capsys.readouterr().out
    assert main(["promote", "--recovery", "--precision", "0.8", "--dry-run", "--tracking-uri", uri]) == 0
    assert "would move wtc-recovery@champion to it from version 1" in capsys.readouterr().out
    assert len(client.search_model_versions("name = 'wtc-recovery'")) == 1
    # --delta (default 0.1) and --alpha are promote's own: the same gate is nothing to do, another delta or
    # another mode is a new version.
    assert main(["promote", "--recovery", "--alpha", "0.1", "--delta", "0.1", "--tracking-uri", uri]) == 0
    assert "nothing to do" in capsys.readouterr().out
    for other in (["--delta", "0.2"], ["--mode", "action"]):
        assert main(["promote", "--recovery", "--precision", "0.9", *other, "--dry-run", "--tracking-uri", uri]) == 0
        assert "would move wtc-recovery@champion to it from version 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:  # --confidence is gone: --delta is the gate's 1 - confidence
        main(["promote", "--recovery", "--confidence", "0.9", "--tracking-uri", uri])
    assert exit_.value.code == 2 and "unrecognized arguments: --confidence" in capsys.readouterr().err
    assert len(client.search_model_versions("name = 'wtc-recovery'")) == 1


@pytest.mark.slow
def test_a_part_that_does_not_beat_its_baselines_refuses_the_whole_recommender(store, promoted, capsys):
    uri, path, runs = store
    assert promoted[0] == 0
    dummy = train(path, uri, "dummy-action", "model=dummy", "target=action").run_id
    from wtc.ops.recovery import promote_recovery

    outcome = promote_recovery(uri, name="wtc-recovery", precision=0.9, experiments={"action": "dummy-action"})
    assert outcome.refused and outcome.version is None
    lines = outcome.all_refusals()
    assert lines and all(line.startswith("action: ") for line in lines)
    assert any(f"({dummy}) does not beat the dummy baseline" in line for line in lines)
    client = mlflow.MlflowClient(uri)
    assert len(client.search_model_versions("name = 'wtc-recovery'")) == 1
    assert client.get_model_version_by_alias("wtc-recovery", CHAMPION).tags["wtc.part.action.source_run"] == \
        runs["action"]


def _raw(path, n):
    raw = json.loads(path.read_text())
    return {t: raw[t] for t in list(raw)[:n]}


@pytest.mark.slow
def test_round_trip_on_raw_tasks_matches_each_part(store, promoted):
    uri, path, runs = store
    assert promoted[0] == 0
    tasks = _raw(path, 400)
    model = load_model(f"models:/wtc-recovery@{CHAMPION}", tracking_uri=uri)
    as_text = pd.DataFrame({"task": list(tasks), "entry": [json.dumps(e) for e in tasks.values()]})
    table = model.predict(as_text)
    assert list(table.columns) == recovery_columns(model.unwrap_python_model().parts["action"].spec.class_names)
    assert (table["error"] == "").all() and len(table) == len(tasks)
    client = mlflow.MlflowClient(uri)
    answers = {}
    for target in TARGETS:
        (logged,) = client.search_logged_models([client.get_run(runs[target]).info.experiment_id],
                                                filter_string=f"source_run_id = '{runs[target]}'")
        answers[target] = load_model(logged.model_uri, tracking_uri=uri).predict(as_text)
    action = answers["action"]
    assert table["action"].tolist() == action["recommendation"].tolist()
    np.testing.assert_allclose(table["action_p"].astype(float), action["confidence"].astype(float), rtol=1e-9)
    acdc = (table["action"] == "acdc").to_numpy()
    assert acdc.any() and (~acdc).any(), "the sample must hold acdc and non-acdc recommendations"
    joint = table["action_p"].astype(float).to_numpy().copy()
    for target in TARGETS[1:]:
        assert table.loc[acdc, target].tolist() == answers[target].loc[acdc, "recommendation"].tolist()
        assert (table.loc[~acdc, target] == "").all() and table.loc[~acdc, f"{target}_p"].isna().all()
        joint[acdc] *= answers[target].loc[acdc, "confidence"].astype(float).to_numpy()
    np.testing.assert_allclose(table["confidence"].astype(float), joint, rtol=1e-9)
    # AUTO exactly when the whole recommendation's confidence clears the joint gate (and no part says "other").
    gate = model.unwrap_python_model().gate
    other = np.zeros(len(table), bool)
    for target in TARGETS:
        other |= (table["action"] == "other").to_numpy() | (acdc & (table[target] == "other").to_numpy())
    auto = (table["confidence"].astype(float).to_numpy() >= gate.joint_threshold) & ~other
    assert (table["decision"] == np.where(auto, "AUTO", "REVIEW")).all()
    assert (table["auto_mode"] == np.where(auto, "joint", "")).all()


@pytest.mark.slow
def test_predict_prints_the_combined_recommendation_and_summary(store, promoted, tmp_path, capsys):
    uri, path, _ = store
    assert promoted[0] == 0
    tasks = _raw(path, 40)
    tasks["/wf_bad/negative_count"] = {"errors": {"good_sites": {"50660": {"T2_US_MIT": -2}}}}
    history = tmp_path / "tasks.json"
    history.write_text(json.dumps(tasks))
    out = tmp_path / "p.json"
    code = main(["predict", str(history), "--model", f"models:/wtc-recovery@{CHAMPION}", "--tracking-uri", uri,
                 "--out", str(out)])
    stdout, stderr = capsys.readouterr()
    assert code == 1 and "negative_count" in stderr and "Traceback" not in stderr
    assert "acdc splitting=" in stdout and "AUTO when the whole recommendation's confidence " in stdout
    assert "(the parts' own thresholds, reported in what held a task back: action " in stdout
    assert "labelled tasks (the file records the operators' decisions): 40" in stdout
    written = json.loads(out.read_text())
    summary = written["summary"]
    assert summary["predicted"] == 40 and summary["invalid"] == 1
    assert set(summary["part_thresholds"]) == set(TARGETS) and summary["expected_precision"] == pytest.approx(0.9)
    assert summary["gate"]["mode"] == "joint" and "joint gate" in summary["expected_precision_from"]
    assert set(summary["by_recommendation"]) <= {"acdc", "clone", "special", "other"}  # grouped by action
    realised = summary["realised"]
    rows = [r for r in written["tasks"] if r["error"] == ""]
    assert realised["labelled"] == 40 and realised["auto"] == sum(r["decision"] == "AUTO" for r in rows)
    # Right means the action and, for an acdc, every recommended parameter as recorded.
    from wtc.data.targets import label_of

    right = 0
    for r in rows:
        params = tasks[r["task"]]["parameters"]
        ok = r["action"] == label_of(params, "action")
        if r["action"] == "acdc":
            ok = ok and all(r[t] == label_of(params, t) for t in TARGETS[1:])
        right += ok
    assert realised["correct"] == right


@pytest.mark.slow
def test_wtc_serve_answers_with_the_recommendation(store, promoted, tmp_path):
    """`wtc serve` of the recommender for real: POST raw tasks to /invocations, get the combined rows."""
    uri, path, _ = store
    assert promoted[0] == 0
    with served(f"models:/wtc-recovery@{CHAMPION}", uri, tmp_path) as post:
        tasks = _raw(path, 5)
        rows = post({"dataframe_records": [{"task": t, "entry": e} for t, e in tasks.items()]})
        local = load_model(f"models:/wtc-recovery@{CHAMPION}", tracking_uri=uri).predict(
            pd.DataFrame({"task": list(tasks), "entry": list(tasks.values())}))
        assert [r["task"] for r in rows] == list(tasks)
        assert [r["recommendation"] for r in rows] == local["recommendation"].tolist()
        assert [r["decision"] for r in rows] == local["decision"].tolist()


@pytest.mark.slow
def test_a_calibrated_fold_ensemble_part_is_refitted_as_its_run_built_its_out_of_fold_rows(tmp_path, tracking_uri):
    """The champion recipe's parts (``+experiment=recovery``) are calibrated fold ensembles: the joint gate refits one
    member per fold and calibrates those rows as the run did (cloning the wrapper failed: it has no pipeline steps)."""
    from sklearn.metrics import log_loss

    from tests.factories import compose_cfg
    from wtc.data.dataset import config_splits, load_dataset
    from wtc.models.calibration import SigmoidCalibrator
    from wtc.ops.recovery_gate import _recipe, out_of_fold

    path = write_benchmark(tmp_path / "h.json", n_tasks=400, seed=3)
    overrides = ("target=action", "model=lightgbm_es", "scaler=none", "ensemble=folds", "calibration=sigmoid")
    result = train(path, tracking_uri, "wtc-action", *overrides)
    recipe, calibrator = _recipe(result.pipeline)
    assert hasattr(recipe, "named_steps") and isinstance(calibrator, SigmoidCalibrator)
    assert not hasattr(calibrator, "n_classes_")  # the unfitted prototype, not the run's fitted map
    cfg = compose_cfg([f"data.path={path}", "search=none", "cv.n_splits=2", *overrides])
    data = load_dataset(cfg)
    splits = config_splits(cfg, data)
    train_rows = splits.train
    proba = out_of_fold(result.pipeline, data.X[train_rows], data.y[train_rows], data.groups[train_rows], splits.folds,
                        len(data.classes))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The same folds and recipe as the run's own out-of-fold rows: about as good (fold rounds differ).
    ours, runs = log_loss(data.y[train_rows], proba), result.metrics["calibration/oof_log_loss_after"]
    assert abs(ours - runs) < 0.01, (ours, runs)
