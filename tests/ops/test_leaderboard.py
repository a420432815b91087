"""The leaderboard a sweep prints when it ends (wtc.ops.leaderboard.LeaderboardCallback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    assert rows[0]["run"].startswith("logreg-combined")
    assert "view" not in rows[0]  # only the choices that vary are columns
    ui = f"{Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri {tracking_uri}"
    assert ui in out and "http://127.0.0.1:5000" in out
    assert "Traceback" not in done.stderr
    # The jobs logged their figures' inputs; the sweep's end drew the best run's figures only.
    assert "Figures of the best run drawn (" in out, out[-2000:]
    wtc = Path(sys.executable).parent / "wtc"
    assert f"the other runs logged their inputs: {wtc} runs figures --sweep {sweep_dir} [--top N]" in out
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("wtc-binary").experiment_id
    runs = {r.data.tags["wtc.model"]: r for r in client.search_runs([experiment]) if "wtc.model" in r.data.tags}
    assert runs["logreg"].data.tags["wtc.figures"] == "drawn"
    assert len(client.list_artifacts(runs["logreg"].info.run_id, "plots")) == 8  # one trial: no convergence plot
    assert runs["dummy"].data.tags["wtc.figures"] == "on_demand"
    assert not client.list_artifacts(runs["dummy"].info.run_id, "plots")
    # The jobs kept their models' inputs; the sweep's end logged the best run's model only.
    models = {m.source_run_id: m for m in client.search_logged_models([experiment])}
    best = runs["logreg"].info.run_id
    assert list(models) == [best] and models[best].name == runs["logreg"].info.run_name
    assert f"Model of the best run logged ({models[best].model_uri}, " in out
    assert f"the other runs kept its inputs: {wtc} runs model --sweep {sweep_dir} [--top N], or wtc promote" in out
    assert runs["logreg"].data.tags["wtc.logged_model"] == "logged"
    assert runs["dummy"].data.tags["wtc.logged_model"] == "on_demand"
    assert [a.path for a in client.list_artifacts(runs["dummy"].info.run_id, "model")] == ["model/inputs.pkl"]


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
