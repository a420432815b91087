"""Champion promotion on a temp SQLite registry: refuses what the baselines beat, moves the alias, idempotent.

The tests that train runs to promote are marked ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.factories import SHARP, compose_cfg, oof_gate, runs_of, train, versions
from wtc.cli import main
from wtc.errors import WtcError
from wtc.ops.promote import promote
from wtc.store.registry import CHAMPION


def parents(uri, experiment):
    return runs_of(uri, experiment)[1]


@pytest.mark.slow
def test_a_dummy_never_beats_the_dummy(history_400, tracking_uri, capsys):
    dummy = train(history_400, tracking_uri, "wtc-dummy", "model=dummy")
    code = main(["promote", "--experiment", "wtc-dummy", "--name", "wtc-m", "--tracking-uri", tracking_uri])
    out, err = capsys.readouterr()
    assert code == 1
    refusals = err.strip().splitlines()
    assert any(f"does not beat the dummy baseline (the class prior, resample=none, run {dummy.run_id}) on "
               "cv/roc_auc_mean" in line for line in refusals)
    assert all(line.startswith("refused: ") for line in refusals)
    assert "by cv/roc_auc_mean (the CV objective; the test rows never choose): " in out and dummy.run_id in out
    # The missing rules baseline was trained on the spot, on the same split.
    runs = parents(tracking_uri, "wtc-dummy")
    rules = [r for r in runs if r.data.params["model.name"] == "rules"]
    assert len(rules) == 1 and "trained the rules baseline" in out
    assert rules[0].data.params["data.content_hash"] == dummy_run_hash(tracking_uri, dummy.run_id)
    assert not versions(tracking_uri, "wtc-m")


def dummy_run_hash(uri, run_id):
    return mlflow.MlflowClient(uri).get_run(run_id).data.params["data.content_hash"]


@pytest.mark.slow
def test_dry_run_changes_nothing(history_400, tracking_uri, capsys):
    train(history_400, tracking_uri, "wtc-dry", *SHARP)
    before = len(parents(tracking_uri, "wtc-dry"))
    code = main(["promote", "--experiment", "wtc-dry", "--name", "wtc-dry", "--tracking-uri", tracking_uri,
                 "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "would train the rules baseline" in out and "would train the dummy baseline (the class prior" in out
    experiment_id = mlflow.MlflowClient(tracking_uri).get_experiment_by_name("wtc-dry").experiment_id
    assert f"leaderboard: http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?viewStateShareKey=" in out
    assert len(parents(tracking_uri, "wtc-dry")) == before
    assert not versions(tracking_uri, "wtc-dry")


@pytest.mark.slow
def test_promotes_a_better_model_moves_the_alias_and_is_idempotent(history_400, tracking_uri, capsys):
    first = train(history_400, tracking_uri, "wtc-a", *SHARP)
    outcome = promote(tracking_uri, "wtc-a", None, "wtc-action", precision=0.9)
    assert not outcome.refused, outcome.refusals
    assert outcome.run_id == first.run_id and outcome.version == "1" and outcome.changed
    assert outcome.metric == "cv/log_loss_mean" and outcome.value == pytest.approx(first.metrics["cv/log_loss_mean"])
    assert {b: v[1] is not None and v[1] > outcome.value for b, v in outcome.baselines.items()} == \
        {"rules": True, "dummy": True}
    client = mlflow.MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias("wtc-action", CHAMPION)
    assert str(champion.version) == "1" and champion.run_id == first.run_id
    tags = champion.tags
    assert tags["wtc.replaces"] == "none" and tags["wtc.source_run"] == first.run_id
    assert tags["wtc.metric"] == "cv/log_loss_mean"
    assert float(tags["wtc.metric_value"]) == pytest.approx(first.metrics["cv/log_loss_mean"])
    assert float(tags["wtc.auto_precision"]) == 0.9 and float(tags["wtc.auto_delta"]) == 0.1
    assert float(tags["wtc.auto_alpha"]) == pytest.approx(0.1) and tags["wtc.auto_method"].startswith("ltt-workflow")
    # The gate is the one certified on the run's own out-of-fold rows (the training split's, never the test's).
    gate, n_oof = oof_gate(tracking_uri, first.run_id, 0.1, 0.1)
    assert n_oof == int(client.get_run(first.run_id).data.params["data.train_rows"])  # every training row, once
    assert float(tags["wtc.auto_threshold"]) == gate.threshold and float(tags["wtc.auto_coverage"]) == gate.coverage
    assert 0 <= float(tags["wtc.test_auto_coverage"]) <= 1
    dummy_id = outcome.baselines["dummy"][0]
    assert tags["wtc.baseline.dummy"].endswith(f"(cv/log_loss_mean of run {dummy_id}: the class prior, resample=none)")
    assert client.get_run(dummy_id).data.params["resample"] == "none"

    # Again: nothing changes.
    again = promote(tracking_uri, "wtc-a", "cv", "wtc-action", precision=0.9)
    assert not again.changed and again.version == "1" and "nothing to do" in " ".join(again.actions)
    assert len(versions(tracking_uri, "wtc-action")) == 1
    assert client.get_model_version_by_alias("wtc-action", CHAMPION).tags == tags
    assert len(parents(tracking_uri, "wtc-a")) == 3  # the champion and the two baselines, trained once

    # A run of another experiment promoted under the same name: refused while it is worse than the
    # current champion on the same metric (the champion's recorded value is set to half the new
    # run's, so it is behind by exactly that half), taken with --force.
    second = train(history_400, tracking_uri, "wtc-b", *SHARP, "seed=1")
    new_value = second.metrics["cv/log_loss_mean"]
    client.set_model_version_tag("wtc-action", "1", "wtc.metric_value", repr(new_value / 2))
    args = ["promote", "--experiment", "wtc-b", "--name", "wtc-action", "--tracking-uri", tracking_uri]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"({second.run_id}) is worse than the current champion (version 1, run {first.run_id}) on " \
           "cv/log_loss_mean" in err and f"(behind by {new_value / 2:.4g}); --force promotes it anyway" in err
    assert len(versions(tracking_uri, "wtc-action")) == 1
    code = main(args + ["--force", "--alpha", "0.2", "--delta", "0.3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "promoted anyway (--force)" in out
    assert "wtc-action@champion = version 2" in out
    assert "AUTO gate, P(precision >= 80%) >= 70% on new tasks, certified on " in out
    assert "held-out rows at that threshold (reported, not used)" in out
    new = client.get_model_version_by_alias("wtc-action", CHAMPION)
    assert str(new.version) == "2" and new.run_id == second.run_id and new.tags["wtc.replaces"] == "1"
    assert float(new.tags["wtc.auto_delta"]) == 0.3 and float(new.tags["wtc.auto_precision"]) == pytest.approx(0.8)
    # Asking less (alpha 0.2, delta 0.3) never certifies less than alpha 0.1, delta 0.1 on the same rows.
    assert float(new.tags["wtc.auto_coverage"]) >= oof_gate(tracking_uri, second.run_id, 0.1, 0.1)[0].coverage
    assert client.get_model_version("wtc-action", "1").tags["wtc.replaced_by"] == "2"


@pytest.mark.slow
def test_the_dummy_compared_with_is_the_class_prior_not_a_resampled_one(history_400, tracking_uri):
    smote = train(history_400, tracking_uri, "wtc-p", "model=dummy", "resample=smote", "metric=log_loss")
    sharp = train(history_400, tracking_uri, "wtc-p", *SHARP)
    outcome = promote(tracking_uri, "wtc-p", None, "wtc-p", dry_run=True)
    assert outcome.run_id == sharp.run_id
    assert "would train the dummy baseline (the class prior, resample=none)" in " ".join(outcome.actions)
    outcome = promote(tracking_uri, "wtc-p", None, "wtc-p")
    assert not outcome.refused, outcome.refusals
    dummy_id, value = outcome.baselines["dummy"]
    assert dummy_id != smote.run_id
    dummy = mlflow.MlflowClient(tracking_uri).get_run(dummy_id)
    assert dummy.data.params["model.name"] == "dummy" and dummy.data.params["resample"] == "none"
    assert value == dummy.data.metrics["cv/log_loss_mean"]
    # The SMOTE dummy's log-loss is a coin's, not the class prior's: comparing with it flattered the champion.
    assert smote.metrics["cv/log_loss_mean"] > value
    assert any(f"beats the dummy baseline (the class prior, resample=none, run {dummy_id})" in n for n in outcome.notes)


@pytest.mark.parametrize("metric, says", [
    ("test/log_loss", "error: --metric test/log_loss: the test rows are scored once and only reported"),
    ("cv/nope", "error: --metric must be cv or cv/<name>"),
    ("log_loss", "error: --metric must be cv or cv/<name>"),
])
def test_a_test_or_unknown_metric_is_one_line(tracking_uri, capsys, metric, says):
    code = main(["promote", "--experiment", "x", "--metric", metric, "--name", "m", "--tracking-uri", tracking_uri])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(says) and len(err.strip().splitlines()) == 1


def test_leaderboard_compare_and_promote_name_the_same_best_run(tracking_uri, tmp_path):
    """The run with the best CV objective wins everywhere, though another has the best test score."""
    import pandas as pd

    from wtc.ops.compare import compare
    from wtc.ops.leaderboard import leaderboard
    from wtc.ops.promote import Promotion, select_run
    from wtc.store import RunTracker

    split = {"data.content_hash": "h", "target.name": "binary", "seed": "0", "test_size": "0.2", "metric": "log_loss"}
    ids = {}
    for name, cv, test in (("cv-best", 0.30, 0.40), ("test-best", 0.35, 0.20), ("worst", 0.50, 0.50)):
        with RunTracker(tracking_uri, "wtc-same", run_name=name, tags={"wtc.sweep": "s/1"}) as tracker:
            tracker.log_params({**split, "model.name": name})
            tracker.log_metrics({"cv/log_loss_mean": cv, "test/log_loss": test})
            ids[name] = tracker.run_id
    board = leaderboard(tracking_uri, "s/1").splitlines()
    assert "best first by cv/log_loss_mean" in board[0]
    first_row = next(line for line in board if line.startswith("| 1 "))
    assert "cv-best" in first_row
    compare(tracking_uri, tmp_path / "cmp", experiment="wtc-same", log_run=False)
    assert pd.read_csv(tmp_path / "cmp" / "comparison.csv")["run_id"].iloc[0] == ids["cv-best"]
    outcome = Promotion(name="m", metric="cv")
    select_run(mlflow.MlflowClient(tracking_uri), tracking_uri, "wtc-same", None, None, outcome)
    assert outcome.run_id == ids["cv-best"] and outcome.metric == "cv/log_loss_mean" and outcome.value == 0.30
    # Asked for another CV metric the runs lack: one line, not a test metric in its place.
    with pytest.raises(WtcError, match="has cv/roc_auc_mean"):
        select_run(mlflow.MlflowClient(tracking_uri), tracking_uri, "wtc-same", "cv/roc_auc", None, outcome)


def test_baselines_of_the_champion_preset_are_plain_models(tmp_path):
    """The champion's ensemble and calibration are not carried over to the rules and dummy baselines."""
    from wtc.ops.baselines import baseline_config

    champion = compose_cfg(["+experiment=champion", "target=binary"])
    assert champion.ensemble.kind == "folds" and champion.calibration.method != "none"
    cfg = baseline_config(champion, "rules", f"sqlite:///{tmp_path}/mlflow.db", "wtc-binary")
    assert cfg.model.name == "rules" and cfg.search.kind == "none"
    assert cfg.ensemble.kind == "none" and cfg.calibration.method == "none"
    assert cfg.data.view == champion.data.view and cfg.cv.n_splits == champion.cv.n_splits


@pytest.mark.parametrize("overrides", [["+experiment=champion", "target=binary"],
                                       ["search=tpe", "cv=temporal", "ensemble=top_k", "ensemble.k=5"]])
def test_a_run_config_logged_before_the_options_named_their_class_gets_it(overrides):
    """A champion promoted (or its baselines trained) from a config.yaml logged before the search,
    cv, ensemble and calibration options had ``_target_``: today's classes, its own values."""
    from omegaconf import OmegaConf

    from wtc.ops.baselines import with_option_classes
    from wtc.run.config_checks import OPTION_NAMES, check_config

    today = OmegaConf.create(OmegaConf.to_container(compose_cfg(overrides), resolve=True))
    assert with_option_classes(today) == today  # every option names its class (or none: calibration=none)
    logged = OmegaConf.create(OmegaConf.to_container(today))
    for group in OPTION_NAMES:
        logged[group].pop("_target_", None)
    logged.cv.n_splits = 7  # the run's own values win
    upgraded = with_option_classes(logged)
    check_config(upgraded)
    for group in OPTION_NAMES:
        expected = {**today[group], "n_splits": 7} if group == "cv" else today[group]
        assert upgraded[group] == expected, group


@pytest.mark.slow
def test_a_run_logged_before_the_out_of_fold_rows_is_refused_in_one_line(history_400, tracking_uri, capsys):
    from urllib.parse import urlparse

    from wtc.run.refit import OOF_ARTIFACT

    old = train(history_400, tracking_uri, "wtc-old", *SHARP)
    artifacts = urlparse(mlflow.MlflowClient(tracking_uri).get_run(old.run_id).info.artifact_uri).path
    (Path(artifacts) / OOF_ARTIFACT).unlink()  # as a run logged before wtc logged them
    code = main(["promote", "--experiment", "wtc-old", "--name", "wtc-old", "--tracking-uri", tracking_uri])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0] == (f"refused: run {old.run_id} logged no out-of-fold predictions ({OOF_ARTIFACT}), which the AUTO "
                      "gate is certified on: it ran before wtc logged them (or kept none: search without CV); re-run "
                      "it with the same config to promote it")
    assert not versions(tracking_uri, "wtc-old")
