"""``wtc retrain`` on a temp store: a promoted recovery recommender, a panel's decisions on a fresh history; the
challenger is trained with each part's own recipe, back-tested on the newest decisions and promoted only when
it wins (the verdict says by how much it fell short otherwise)."""

from __future__ import annotations

import json

import pytest

from tests.factories import SHARP, train
from wtc.cli import main
from wtc.data import load_history
from wtc.data.synthetic import write_benchmark
from wtc.ops.panel.decisions import Decision, DecisionLog
from wtc.ops.predict import predict_history
from wtc.store.query import store_client
from wtc.store.registry import CHAMPION, version_label

pytestmark = pytest.mark.slow

TARGETS = ("action", "splitting", "xrootd", "memory")
#: Baselines weakened on purpose so that promotion finds them on each part's split (see test_recovery).
WEAK = (("model=rules", "+model.estimator.alpha=1000", "metric=log_loss"),
        ("model=dummy", "model.estimator.strategy=uniform", "metric=log_loss"))


@pytest.fixture(scope="module", autouse=True)
def _weak_baselines_count():
    """The weakened baselines stand in for the real ones (promote otherwise takes only the class prior and
    the procedures as configured): retraining is under test, not the baselines."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("wtc.ops.baselines._IDENTITY", {})
        yield


@pytest.fixture(scope="module")
def promoted_store(tmp_path_factory, new_store):
    root = tmp_path_factory.mktemp("retrain")
    uri = new_store(root)
    path = write_benchmark(root / "history.json", n_tasks=400, seed=3)
    for target in TARGETS:
        train(path, uri, f"wtc-{target}", *SHARP, f"target={target}")
        for baseline in WEAK:
            train(path, uri, f"wtc-{target}", *baseline, f"target={target}", "tracking.log_model=false")
    assert main(["promote", "--recovery", "--precision", "0.9", "--tracking-uri", uri]) == 0
    return root, uri


def _decisions(root):
    """Ten decisions of a panel on a fresh history: the generator's operator's own parameters, in time order."""
    fresh = json.loads(write_benchmark(root / "fresh.json", n_tasks=60, seed=11).read_text())
    log = DecisionLog(root / "fresh.decisions.json")
    for i, (task, entry) in enumerate(list(fresh.items())[:10]):
        log.decide([Decision(task, entry["parameters"], "op", f"2026-12-06T10:00:{i:02d}+00:00", False)],
                   {task: entry["errors"]})
    return log.path


def test_retrain_back_tests_on_the_newest_decisions_and_promotes_only_a_winner(promoted_store, capsys):
    from wtc.ops.retrain import format_retrain, retrain

    root, uri = promoted_store
    decisions = _decisions(root)
    assert load_history(decisions, use_cache=False).n_tasks == 10
    client = store_client(uri)
    before = client.get_model_version_by_alias("wtc-recovery", CHAMPION).version
    outcome = retrain(uri, decisions, holdout=0.3)
    lines = "\n".join(format_retrain(outcome))
    assert set(outcome.cv) == set(TARGETS) and len(outcome.holdout) == 3
    newest = list(json.loads(decisions.read_text()))[-3:]
    assert outcome.holdout == newest  # the newest decisions by the journal's times
    champion = predict_history(next(root.glob("fresh.decisions.retrain-*")) / "backtest.json",
                               f"models:/wtc-recovery/{before}", uri).realised
    if outcome.backtest:
        assert outcome.backtest["champion"]["accuracy"] == champion["accuracy"]
    after = client.get_model_version_by_alias("wtc-recovery", CHAMPION).version
    assert version_label(uri, "models:/wtc-recovery@champion") == f"wtc-recovery version {after}"  # what the panel shows
    if outcome.promoted:
        assert after != before and not outcome.shortfalls and "is now wtc-recovery@champion" in lines
    else:
        assert after == before and outcome.shortfalls and "Short by" in lines and "short by" in lines
    assert main(["retrain", "--decisions", str(decisions), "--dry-run", "--tracking-uri", uri]) == 0
    assert "dry run: would train action from run" in capsys.readouterr().out
