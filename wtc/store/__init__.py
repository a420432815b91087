"""The MLflow store — the only package that imports :mod:`mlflow`.

- :mod:`~wtc.store.uri`: tracking URIs, reachability, creating the schema and experiments safely;
- :mod:`~wtc.store.runs`: one parent run per job, child runs per trial, artifacts;
- :mod:`~wtc.store.query`: reading runs back (parent runs as a table, artifacts), the store's client;
- :mod:`~wtc.store.pyfunc`, :mod:`~wtc.store.recovery_model`: the logged models (pyfuncs on raw tasks);
- :mod:`~wtc.store.logged_models`: a sweep run's model, logged on demand from what the run kept;
- :mod:`~wtc.store.registry`: registered versions, the ``champion`` alias and wtc's version tags;
- :mod:`~wtc.store.cleanup`: RUNNING runs whose process is gone, marked KILLED.
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

from wtc.store.pyfunc import WTCProbabilityModel, load_model, pipeline_requirements  # noqa: E402
from wtc.store.runs import RunLogger, RunTracker  # noqa: E402
from wtc.store.uri import (  # noqa: E402
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
