"""A real shared tracking server (wtc.ops.server): PostgreSQL + ``mlflow server`` on loopback, a
4-job sweep logging to it in parallel, promotion through it, and stop/start keeping every record.

Every test on the real server is marked ``slow``; the quick set keeps what a folder with no server says."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest

from tests.factories import free_port
from wtc.cli import main
from wtc.data.synthetic import write_benchmark
from wtc.errors import TrackingError
from wtc.ops import server
from wtc.ops.deferred import draw_run_figures
from wtc.store import load_model
from wtc.store.logged_models import build_run_models, run_model
from wtc.store.registry import CHAMPION

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "wtc-shared"
#: The sweep: the rules baseline's smoothing at four values (cheap jobs; alpha below the default 1.0
#: is what beats the rules and dummy baselines on this benchmark, see tests/test_promote.py).
ALPHAS = (0.2, 1.5, 2.0, 3.0)  # 1.5 and 2 beat the rules and class-prior baselines on the CV log-loss


def test_a_folder_no_server_was_started_from(tmp_path, capsys):
    """status, stop and the database's DSN of an empty folder: said plainly, nothing started or written."""
    assert main(["tracking-server", "status", "--dir", str(tmp_path)]) == 3  # 3: nothing runs
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["MLflow", "PostgreSQL"] and all("not running" in line for line in out)
    assert main(["tracking-server", "stop", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"nothing was running from {tmp_path.resolve()}"
    with pytest.raises(TrackingError, match="no tracking server was started from"):
        server.database_dsn(tmp_path)
    assert not server.status(tmp_path).running and not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def shared_server():
    """A server folder under the system temp dir (the ``postgres`` user must reach it when we are root)."""
    try:
        server.postgres_bin_dir()
    except TrackingError as exc:
        pytest.fail(f"{exc} (.ci/run installs it)")
    folder = Path(tempfile.mkdtemp(prefix="wtc-server-"))
    folder.chmod(0o755)
    try:
        start = time.perf_counter()
        up = server.start(folder, port=free_port(), workers=1)
        print(f"PostgreSQL {up.pg_version} + MLflow server answering in {time.perf_counter() - start:.1f} s")
        yield up
    finally:
        server.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def swept(shared_server, tmp_path_factory):
    """The 4-job joblib sweep of run.py, in parallel, logging to the server."""
    tmp = tmp_path_factory.mktemp("shared-sweep")
    history = write_benchmark(tmp / "history.json", n_tasks=400, seed=3)
    command = [
        sys.executable, "run.py", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4",
        f"hydra.sweep.dir={tmp}/multirun", "tracking=server", f"tracking.uri={shared_server.uri}",
        f"tracking.experiment={EXPERIMENT}", f"data.path={history}", "model=rules", "model.name=rules_smooth", "metric=log_loss",
        "+model.estimator.alpha=" + ",".join(map(str, ALPHAS)), "search=none", "cv.n_splits=2", "n_jobs=1",
        "diagnostics=light",
    ]
    env = dict(os.environ, WTC_CACHE_DIR=str(tmp / "cache"))
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"{len(ALPHAS)}-job parallel sweep against the server: {time.perf_counter() - start:.1f} s")
    return done


@pytest.mark.slow
def test_every_run_metric_and_artifact_of_a_parallel_sweep_arrives(shared_server, swept):
    client = mlflow.MlflowClient(shared_server.uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    # Artifacts go through the server's proxy, not to a path only this machine could read.
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == len(ALPHAS)
    assert sorted(float(r.data.params["model.alpha"]) for r in parents) == sorted(ALPHAS)
    assert len(children) == len(ALPHAS)  # search=none: one trial per job
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {r.info.run_id for r in parents}
    assert all(r.data.metrics for r in children)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["wtc.sweep"] for r in parents}) == 1
    print(f"arrived: {len(parents)} parent runs (of {len(ALPHAS)}) + {len(children)} trial runs, all FINISHED")
    for run in parents:
        for name in ("test/roc_auc", "test/log_loss", "cv/roc_auc_mean", "oracle/roc_auc"):
            assert math.isfinite(run.data.metrics[name]), (run.info.run_id, name)
        paths = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"summary.md", "config.yaml", "figures"} <= paths
        plots = [a.path for a in client.list_artifacts(run.info.run_id, "plots")]
        # The sweep's end drew its top 3 runs' figures, through the server; the others wait for them.
        if run.data.tags["wtc.figures"] == "drawn":
            assert any(p.endswith(".png") for p in plots)
        else:
            assert run.data.tags["wtc.figures"] == "on_demand" and not plots
        summary = Path(client.download_artifacts(run.info.run_id, "summary.md", tempfile.mkdtemp()))
        assert run.info.run_name in summary.read_text()
        # ... and logged their models; the others kept their inputs.
        model = run_model(client, run)
        if run.data.tags["wtc.logged_model"] == "logged":
            assert model is not None and model.artifact_location.startswith("mlflow-artifacts:")
            assert client.list_logged_model_artifacts(model.model_id)
        else:
            assert run.data.tags["wtc.logged_model"] == "on_demand" and model is None
            assert [a.path for a in client.list_artifacts(run.info.run_id, "model")] == ["model/inputs.pkl"]
    top = min(3, len(ALPHAS) - 1)  # the leaderboard's top 3 (leaving one run to draw on demand below)
    assert [r.data.tags["wtc.figures"] for r in parents].count("drawn") == top
    assert [r.data.tags["wtc.logged_model"] for r in parents].count("logged") == top
    # ... and they are files in the server's folder.
    assert len(list((shared_server.dir / "artifacts").rglob("summary.md"))) == len(ALPHAS)
    # Another run's figures, drawn on demand through the server, land there too.
    waiting = next(r.info.run_id for r in parents if r.data.tags["wtc.figures"] == "on_demand")
    assert [d.outcome for d in draw_run_figures(shared_server.uri, [waiting])] == ["drawn"]
    assert len(list((shared_server.dir / "artifacts").rglob("overtraining.png"))) == top + 1
    # ... and its model, logged on demand through the server, too.
    (built,) = build_run_models(shared_server.uri, [waiting])
    assert built.outcome == "logged"
    model = run_model(client, client.get_run(waiting))
    assert model.artifact_location.startswith("mlflow-artifacts:") and client.list_logged_model_artifacts(model.model_id)
    assert len(list((shared_server.dir / "artifacts").rglob("MLmodel"))) == top + 1
    assert "Leaderboard of sweep" in swept.stdout


@pytest.mark.slow
def test_the_backend_store_is_postgresql(shared_server, swept):
    import psycopg2

    client = mlflow.MlflowClient(shared_server.uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    expected = len(client.search_runs([experiment.experiment_id], max_results=1000))
    connection = psycopg2.connect(server.database_dsn(shared_server.dir))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            version = cursor.fetchone()[0]
            assert version.startswith("PostgreSQL")
            cursor.execute("SELECT count(*) FROM runs WHERE experiment_id = %s", (int(experiment.experiment_id),))
            rows = cursor.fetchone()[0]
            assert rows == expected
            cursor.execute("SELECT count(*) FROM metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
                           "WHERE r.experiment_id = %s", (int(experiment.experiment_id),))
            print(f"{version.split(',')[0]}: {rows} rows in runs, {cursor.fetchone()[0]} in metrics")
    finally:
        connection.close()


@pytest.mark.slow
def test_promote_registers_the_champion_on_the_server(shared_server, swept, capsys):
    code = main(["promote", "--experiment", EXPERIMENT, "--name", "wtc-shared",
                 "--tracking-uri", shared_server.uri])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    client = mlflow.MlflowClient(shared_server.uri)
    version = client.get_model_version_by_alias("wtc-shared", CHAMPION)
    assert f"wtc-shared@{CHAMPION} = version {version.version}" in out
    assert float(client.get_run(version.run_id).data.params["model.alpha"]) in ALPHAS
    loaded = load_model(f"models:/wtc-shared@{CHAMPION}", tracking_uri=shared_server.uri)
    assert loaded.metadata.run_id == version.run_id


@pytest.mark.slow
def test_status_stop_and_start_again_keep_every_record(shared_server, swept, capsys):
    folder, before = shared_server.dir, mlflow.MlflowClient(shared_server.uri).get_experiment_by_name(EXPERIMENT)
    assert main(["tracking-server", "status", "--dir", str(folder)]) == 0
    with pytest.raises(TrackingError, match="already runs"):
        server.start(folder, port=free_port())
    assert main(["tracking-server", "stop", "--dir", str(folder)]) == 0
    assert main(["tracking-server", "status", "--dir", str(folder)]) == 3
    out = capsys.readouterr().out
    assert "stopped MLflow server" in out and "PostgreSQL" in out and "not running" in out
    again = server.start(folder, port=free_port())
    client = mlflow.MlflowClient(again.uri)
    assert client.get_experiment_by_name(EXPERIMENT).experiment_id == before.experiment_id
    parents = [r for r in client.search_runs([before.experiment_id], max_results=1000)
               if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) >= len(ALPHAS)
