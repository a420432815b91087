"""What keeps a benchmark's runs out of the project's store: a throwaway store, cache and mlruns folder."""

from __future__ import annotations

from pathlib import Path


def scratch_overrides(tmp: str | Path, tracking_uri: str | None = None) -> list[str]:
    """A run's overrides for a SQLite store (or ``tracking_uri``), mlruns and cache under ``tmp``; no figures, no
    logged model, one thread per model (on a shared machine OpenMP threads that wait on each other cost more than
    they bring)."""
    return [f"tracking.uri={tracking_uri or f'sqlite:///{tmp}/mlruns/mlflow.db'}", f"paths.mlruns={tmp}/mlruns",
            f"paths.cache_dir={tmp}/cache", "diagnostics=none", "tracking.log_model=false", "n_jobs=1"]
