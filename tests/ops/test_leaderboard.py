"""The leaderboard a sweep prints when it ends (wtc.ops.leaderboard.LeaderboardCallback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest
from omegaconf import OmegaConf

from wtc.data.synthetic import write_benchmark
from wtc.ops.leaderboard import LeaderboardCallback

ROOT = Path(__file__).resolve().parents[2]



def _rows(out: str) -> list[dict[str, str]]:
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[1:]]


@pytest.mark.slow
def test_a_sweep_ends_with_its_leaderboard_and_the_ui_command(tmp_path, tracking_uri):
    history = write_benchmark(tmp_path / "history.json", n_tasks=300, seed=6)
    sweep_dir = tmp_path / "multirun"
    command = [
        sys.executable, "run.py", "-m", f"hydra.sweep.dir={sweep_dir}",
        "model=dummy,logreg", "search=none", "cv.n_splits=2", "diagnostics=light",
        f"data.path={history}", f"tracking.uri={tracking_uri}", "n_jobs=1",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert f"Leaderboard of sweep {sweep_dir}: 2 run(s)" in out, out[-3000:]
    rows = _rows(out)
    assert [r["rank"] for r in rows] == ["1", "2"]
    assert [r["model"] for r in rows] == ["logreg", "dummy"]  # logistic regression beats the class prior
    assert rows[1]["CV roc_auc (mean ± std)"] == "0.500 ± 0.000"
    assert all(r["status"] == "FINISHED" for r in rows)
    for column in ("test AUC", "test log-loss", "oracle log-loss"):
        assert all(0 < float(r[column]) < 1 for r in rows), column
    assert [r["run"] for r in rows] == ["logreg", "dummy"]  # named by what varies in the sweep: the model
    assert "view" not in rows[0]  # only the choices that vary are columns
    wtc = Path(sys.executable).parent / "wtc"
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("wtc-binary").experiment_id
    assert f"(start it first: {wtc} ui --tracking-uri {tracking_uri})" in out
    assert (f"  http://127.0.0.1:5000/#/experiments/{experiment}/runs?viewStateShareKey=wtc-leaderboard-roc-auc"
            "&workflowType=machine_learning") in out
    assert "Traceback" not in done.stderr
    # The jobs logged their figures' inputs; the sweep's end drew those of its top 3 (here: both) runs.
    assert "Figures of the 2 best runs drawn (" in out, out[-2000:]
    assert f"the other runs logged their inputs: {wtc} runs figures --sweep {sweep_dir} [--top N]" in out
    runs = {r.data.tags["wtc.model"]: r for r in client.search_runs([experiment]) if "wtc.model" in r.data.tags}
    for model, plots in (("logreg", 8), ("dummy", 7)):  # one trial: no convergence plot; a dummy: no importances
        assert runs[model].data.tags["wtc.figures"] == "drawn"
        assert len(client.list_artifacts(runs[model].info.run_id, "plots")) == plots, model
        assert runs[model].data.tags["wtc.logged_model"] == "logged"
    # The jobs kept their models' inputs; the sweep's end logged the top runs' models.
    models = {m.source_run_id: m for m in client.search_logged_models([experiment])}
    assert set(models) == {r.info.run_id for r in runs.values()}
    best = runs["logreg"].info.run_id
    assert "Models of the 2 best runs logged (" in out and models[best].model_uri in out
    assert f"the other runs kept their inputs: {wtc} runs model --sweep {sweep_dir} [--top N], or wtc promote" in out

def test_the_callback_never_fails_a_sweep(tmp_path, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "multirun")}},
                               "tracking": {"uri": f"sqlite:///{tmp_path}/missing/mlflow.db"}})
    LeaderboardCallback().on_multirun_end(config)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("leaderboard: not available (no tracking store at")


def test_the_callback_reports_a_sweep_without_runs(tmp_path, tracking_uri, capsys):
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "multirun")}},
                               "tracking": {"uri": tracking_uri}})
    LeaderboardCallback().on_multirun_end(config)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("leaderboard: not available (no sweep matches")


def test_the_callback_is_registered():
    config = OmegaConf.load(ROOT / "conf" / "config.yaml")
    assert config.hydra.callbacks.leaderboard._target_ == "wtc.ops.leaderboard.LeaderboardCallback"
    assert config.hydra.callbacks.leaderboard.top == 3


def test_the_sweep_end_makes_what_its_top_runs_left_for_later(monkeypatch):
    from wtc.ops import deferred
    from wtc.ops import leaderboard as board

    asked, made = [], []
    monkeypatch.setattr(deferred, "runs_to_draw", lambda uri, sweep=None, top=None: asked.append(top) or ["a", "b", "c"][:top])

    def make(uri, run_ids, force):
        made.append(list(run_ids))
        return iter([SimpleNamespace(outcome="drawn", figures=["x.png"], seconds=1.0) for _ in run_ids])

    fake = deferred.OnDemand("figures", "drawn", make, str, deferred.ON_DEMAND["figures"].best)
    monkeypatch.setattr(deferred, "ON_DEMAND", {"figures": fake})
    said = board.top_runs_on_demand("sqlite:///x.db", "sweep-1")
    assert asked == [3] and made == [["a", "b", "c"]]
    assert said[0].startswith("\nFigures of the 3 best runs drawn (3 in 3.0 s)")
    assert LeaderboardCallback().top == 3 and LeaderboardCallback(top=1).top == 1
    assert board.top_runs_on_demand("sqlite:///x.db", "sweep-1", top=0) == [] and asked == [3]
