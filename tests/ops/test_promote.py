"""Champion promotion on a temp SQLite registry: refuses what the baselines beat, moves the alias, idempotent.

The tests that train runs to promote are marked ``slow``.
"""

from __future__ import annotations

import mlflow
import pytest

from tests.factories import SHARP, compose_cfg, runs_of, train, versions
from wtc.cli import main
from wtc.ops.promote import promote
from wtc.store.registry import CHAMPION


def parents(uri, experiment):
    return runs_of(uri, experiment)[1]


@pytest.mark.slow
def test_a_dummy_never_beats_the_dummy(history_400, tracking_uri, capsys):
    dummy = train(history_400, tracking_uri, "wtc-dummy", "model=dummy")
    code = main(["promote", "--experiment", "wtc-dummy", "--metric", "test/log_loss", "--name", "wtc-m",
                 "--tracking-uri", tracking_uri])
    out, err = capsys.readouterr()
    assert code == 1
    refusals = err.strip().splitlines()
    assert any("does not beat the dummy baseline on test/log_loss" in line for line in refusals)
    assert all(line.startswith("refused: ") for line in refusals)
    assert dummy.run_id in out
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
    assert "would train the rules baseline" in out and "would train the dummy baseline" in out
    experiment_id = mlflow.MlflowClient(tracking_uri).get_experiment_by_name("wtc-dry").experiment_id
    assert f"leaderboard: http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?viewStateShareKey=" in out
    assert len(parents(tracking_uri, "wtc-dry")) == before
    assert not versions(tracking_uri, "wtc-dry")


@pytest.mark.slow
def test_promotes_a_better_model_moves_the_alias_and_is_idempotent(history_400, tracking_uri, capsys):
    first = train(history_400, tracking_uri, "wtc-a", *SHARP)
    outcome = promote(tracking_uri, "wtc-a", "test/log_loss", "wtc-action", precision=0.9)
    assert not outcome.refused, outcome.refusals
    assert outcome.run_id == first.run_id and outcome.version == "1" and outcome.changed
    assert {b: v[1] is not None and v[1] > outcome.value for b, v in outcome.baselines.items()} == \
        {"rules": True, "dummy": True}
    client = mlflow.MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias("wtc-action", CHAMPION)
    assert str(champion.version) == "1" and champion.run_id == first.run_id
    tags = champion.tags
    assert tags["wtc.replaces"] == "none" and tags["wtc.source_run"] == first.run_id
    assert float(tags["wtc.metric_value"]) == pytest.approx(first.metrics["test/log_loss"])
    assert float(tags["wtc.auto_precision"]) == 0.9 and tags["wtc.auto_confidence"] == "0.0"
    threshold, coverage = float(tags["wtc.auto_threshold"]), float(tags["wtc.auto_coverage"])
    assert 0 < coverage <= 1 and 0 < threshold <= 1
    # The run logged coverage at 90% precision on the same held-out rows.
    assert coverage == pytest.approx(first.metrics["test/coverage_at_p90"])

    # Again: nothing changes.
    again = promote(tracking_uri, "wtc-a", "test/log_loss", "wtc-action", precision=0.9)
    assert not again.changed and again.version == "1" and "nothing to do" in " ".join(again.actions)
    assert len(versions(tracking_uri, "wtc-action")) == 1
    assert client.get_model_version_by_alias("wtc-action", CHAMPION).tags == tags
    assert len(parents(tracking_uri, "wtc-a")) == 3  # the champion and the two baselines, trained once

    # A run of another experiment promoted under the same name: refused while it is worse than the
    # current champion on the same metric (the champion's recorded value is set to half the new
    # run's, so it is behind by exactly that half), taken with --force.
    second = train(history_400, tracking_uri, "wtc-b", *SHARP, "seed=1")
    new_value = second.metrics["test/log_loss"]
    client.set_model_version_tag("wtc-action", "1", "wtc.metric_value", repr(new_value / 2))
    args = ["promote", "--experiment", "wtc-b", "--name", "wtc-action", "--tracking-uri", tracking_uri]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"({second.run_id}) is worse than the current champion (version 1, run {first.run_id}) on test/log_loss" \
        in err and f"(behind by {new_value / 2:.4g}); --force promotes it anyway" in err
    assert len(versions(tracking_uri, "wtc-action")) == 1
    code = main(args + ["--force", "--precision", "0.9", "--confidence", "0.9"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "promoted anyway (--force)" in out
    assert "wtc-action@champion = version 2" in out
    assert "at 90% precision (its 90% lower bound) on the champion's held-out rows" in out
    new = client.get_model_version_by_alias("wtc-action", CHAMPION)
    assert str(new.version) == "2" and new.run_id == second.run_id and new.tags["wtc.replaces"] == "1"
    # The lower bound asks more of the threshold than the measured precision (test/coverage_at_p90).
    assert new.tags["wtc.auto_confidence"] == "0.9"
    assert float(new.tags["wtc.auto_coverage"]) <= second.metrics["test/coverage_at_p90"]
    assert client.get_model_version("wtc-action", "1").tags["wtc.replaced_by"] == "2"


def test_unknown_metric_is_one_line(tracking_uri, capsys):
    code = main(["promote", "--experiment", "x", "--metric", "cv/log_loss", "--name", "m",
                 "--tracking-uri", tracking_uri])
    assert code == 2 and capsys.readouterr().err.startswith("error: --metric must be test/<name>")


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
