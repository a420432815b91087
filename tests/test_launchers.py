"""The cluster launchers of conf/hydra/launcher/: a real submitit (local) sweep, and the SLURM script they make."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

import wtc  # noqa: F401  (resolvers)
from tests.factories import ROOT, compose_cfg
from wtc.data.synthetic import write_benchmark


@pytest.mark.slow
def test_a_submitit_local_sweep_lands_both_runs(tmp_path, tracking_uri):
    history = write_benchmark(tmp_path / "history.json", n_tasks=300, seed=5)
    command = [
        sys.executable, "run.py", "-m", "hydra/launcher=local", f"hydra.sweep.dir={tmp_path}/multirun",
        "model=dummy,logreg", "search=none", "cv.n_splits=2", f"data.path={history}", f"tracking.uri={tracking_uri}",
        "tracking.log_model=false", "diagnostics=none", "n_jobs=1", "hydra.launcher.cpus_per_task=1",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    client = mlflow.MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("wtc-binary").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.data.tags["wtc.model"] for r in parents) == ["dummy", "logreg"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    # Each job ran as its own submitit job, with its own folder and log.
    assert len(list((tmp_path / "multirun" / ".submitit").glob("*/*_result.pkl"))) == 2


def test_the_slurm_launcher_writes_a_batch_script_with_our_defaults(tmp_path, monkeypatch):
    """Without a cluster: the sbatch script submitit would submit for ``hydra/launcher=slurm``."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    bin_dir = tmp_path / "bin"  # submitit only builds a SLURM executor where it finds srun
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("WTC_SLURM_PARTITION", "short")
    monkeypatch.setenv("WTC_VENV", "/shared/wtc/.venv")
    cfg = compose_cfg(["hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}"], hydra=True)
    HydraConfig.instance().set_config(cfg)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params.pop("_target_").endswith("SlurmLauncher")
    # What the launcher does with its params (hydra_submitit_launcher.submitit_launcher.launch).
    executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -u -m submitit.core._submit", "0")
    for line in ("#SBATCH --partition=short", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=8GB",
                 "#SBATCH --time=240", "#SBATCH --job-name=wtc", "source /shared/wtc/.venv/bin/activate"):
        assert line in script, script
    assert "--account" not in script  # unset: the cluster's default
