"""MLflow tracking for wtc — the only package that imports :mod:`mlflow`.

- :mod:`~wtc.tracking.store`: tracking URIs, creating the schema and experiments safely;
- :mod:`~wtc.tracking.runs`: one parent run per job, child runs per trial, artifacts;
- :mod:`~wtc.tracking.pyfunc`: the logged model (a pyfunc on raw tasks);
- :mod:`~wtc.tracking.figures`, :mod:`~wtc.tracking.models`: a sweep run's figures and model, drawn and
  logged on demand from what the run kept;
- :mod:`~wtc.tracking.registry`, :mod:`~wtc.tracking.baselines`: champion promotion against the baselines;
- :mod:`~wtc.tracking.recovery`: the recovery recommender (four champions in one pyfunc);
- :mod:`~wtc.tracking.server`: a shared MLflow server on PostgreSQL, started and stopped in a folder.
"""

import logging
import os

# Downloading artifacts (models, figure inputs) per run: MLflow's progress bars only bury the output.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# Against a tracking server MLflow prints two "View run ... at: URL" lines per ended run, child
# runs included; each job's own last line already says where its run is.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
# Creating or migrating the SQLite schema is announced at INFO on every fresh store: noise for
# a user, who only needs to hear when something went wrong.
for _name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
    logging.getLogger(_name).setLevel(logging.WARNING)

from wtc.tracking.pyfunc import WTCProbabilityModel, load_model, pipeline_requirements  # noqa: E402
from wtc.tracking.runs import RunLogger, RunTracker  # noqa: E402
from wtc.tracking.store import (  # noqa: E402
    TrackingSetupCallback,
    default_tracking_uri,
    init_store,
    resolve_tracking_uri,
)

__all__ = [
    "RunLogger",
    "RunTracker",
    "TrackingSetupCallback",
    "WTCProbabilityModel",
    "default_tracking_uri",
    "init_store",
    "load_model",
    "pipeline_requirements",
    "resolve_tracking_uri",
]
