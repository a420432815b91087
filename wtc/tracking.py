"""MLflow tracking for wtc: the store, one parent run per job, child runs per trial, models.

This is the only module of the project that imports :mod:`mlflow`; everything else logs
through :class:`RunTracker` so that the store layout, metric naming and failure handling
live in one place.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
import scipy.sparse as sp
from hydra.experimental.callback import Callback
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)
from omegaconf import DictConfig, ListConfig, OmegaConf

__all__ = [
    "RunTracker",
    "TrackingSetupCallback",
    "WTCProbabilityModel",
    "default_tracking_uri",
    "init_store",
    "load_model",
    "resolve_tracking_uri",
]

logger = logging.getLogger(__name__)
# A sweep logs a model per job: MLflow's per-download progress bars only bury the output.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

_SQLITE_PREFIX = "sqlite:///"
_MAX_ERROR_CHARS = 5000
_INPUT_EXAMPLE_ROWS = 5
# What a loaded model needs besides wtc itself (shipped through ``code_paths``). Pinning
# them explicitly also spares log_model MLflow's requirement inference, which loads the
# model again in a subprocess.
_MODEL_REQUIREMENTS = ("mlflow", "cloudpickle", "numpy", "scipy", "pandas", "scikit-learn",
                       "imbalanced-learn", "xgboost", "lightgbm")


# ----------------------------------------------------------------------------- the store
def default_tracking_uri(root: Path | str | None = None) -> str:
    """Return the project's SQLite tracking URI, ``sqlite:///<root>/mlruns/mlflow.db``.

    Parameters
    ----------
    root : path, optional
        Folder that holds ``mlruns/``; the current working directory by default.
        ``<root>/mlruns`` is created.
    """
    folder = Path(root or Path.cwd()).resolve() / "mlruns"
    folder.mkdir(parents=True, exist_ok=True)
    return f"{_SQLITE_PREFIX}{folder / 'mlflow.db'}"


def resolve_tracking_uri(uri: str | None, root: Path | str | None = None) -> str:
    """Return ``uri``, or :func:`default_tracking_uri` when it is empty.

    ``$MLFLOW_TRACKING_URI`` is deliberately not consulted: a run's store is decided by its
    config alone (``tracking.uri=...``), not by whatever the shell happens to export.
    """
    return uri or default_tracking_uri(root)


def _sqlite_db_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative paths are relative to cwd)."""
    if not uri.startswith(_SQLITE_PREFIX):
        return None
    return Path(uri[len(_SQLITE_PREFIX) :].split("?", 1)[0]).resolve()


def _artifact_root(db_path: Path) -> Path:
    """Artifacts live in ``mlruns/artifacts`` beside (or under) the database."""
    mlruns = db_path.parent if db_path.parent.name == "mlruns" else db_path.parent / "mlruns"
    return mlruns / "artifacts"


@contextlib.contextmanager
def _store_lock(db_path: Path | None) -> Iterator[None]:
    """Serialise schema creation and experiment creation across processes (SQLite only).

    Concurrent first writes to a fresh SQLite store corrupt its schema (STACK.md), so
    every process that may create tables or experiments takes this lock first.
    """
    if db_path is None:
        yield
        return
    import fcntl  # POSIX only; the SQLite store is a local-disk, single-host store anyway

    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def init_store(
    uri: str | None, experiment_name: str | None, root: Path | str | None = None
) -> str | None:
    """Create the tracking schema and the experiment if missing; return the experiment id.

    Idempotent and safe to call from several processes at once. Call it once in the
    main process before parallel writers start.

    Parameters
    ----------
    uri : str, optional
        Tracking URI; see :func:`resolve_tracking_uri`.
    experiment_name : str, optional
        Experiment to get or create. ``None`` only creates the schema (returns ``None``).
    root : path, optional
        Folder that holds ``mlruns/`` when ``uri`` is not given.
    """
    uri = resolve_tracking_uri(uri, root)
    db_path = _sqlite_db_path(uri)
    with _store_lock(db_path):
        client = mlflow.MlflowClient(tracking_uri=uri)
        if experiment_name is None:
            client.search_experiments(max_results=1)  # first touch creates the schema
            return None
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            artifacts = None
            if db_path is not None:
                artifacts = _artifact_root(db_path)
                artifacts.mkdir(parents=True, exist_ok=True)
                artifacts = artifacts.as_uri()
            try:
                return client.create_experiment(experiment_name, artifact_location=artifacts)
            except MlflowException as exc:
                # Another process (without our lock, e.g. on a remote server) won the race.
                if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                    raise
                experiment = client.get_experiment_by_name(experiment_name)
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id


class TrackingSetupCallback(Callback):
    """Hydra callback that creates the tracking store before any job starts.

    Runs in the main process, before a launcher (e.g. joblib) forks workers, so that no two
    workers ever create the SQLite schema at once. Register it in the primary config::

        hydra:
          callbacks:
            tracking:
              _target_: wtc.tracking.TrackingSetupCallback
    """

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._init(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._init(config)

    @staticmethod
    def _init(config: DictConfig) -> None:
        if OmegaConf.select(config, "tracking", default=None) is None:
            return  # a config without tracking creates no store
        uri = OmegaConf.select(config, "tracking.uri", default=None)
        # The experiment name may interpolate per-job choices that do not resolve in the
        # sweep config; then create the schema only and let each job create its experiment.
        name = OmegaConf.select(
            config, "tracking.experiment", default=None, throw_on_resolution_failure=False
        )
        init_store(uri, str(name) if name is not None else None)


# ------------------------------------------------------------------------------- logging
def _flatten(params: Mapping, prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings with dotted keys and stringify the leaves."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, prefix=f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_VAL_LENGTH]
    return flat


def _split(items: list, size: int) -> tuple[list, list]:
    return items[:size], items[size:]


def _one_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:_MAX_ERROR_CHARS]


class _Stopwatch:
    """Accumulates the wall time spent inside MLflow calls (nested timings count once)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - start


class RunLogger:
    """Logs params, metrics, tags and artifacts to one existing run."""

    def __init__(self, client: mlflow.MlflowClient | None, run_id: str, stopwatch: _Stopwatch):
        self._client = client
        self._run_id = run_id
        self._timed = stopwatch

    @property
    def run_id(self) -> str:
        """Id of the run this logger writes to."""
        return self._run_id

    def log_params(self, params: Mapping) -> None:
        """Log (nested) params as ``a.b.c`` keys, stringified and truncated to MLflow's limit."""
        self._log_batch(params=params)

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None) -> None:
        """Log metrics (names may contain ``/``); ``None`` and NaN values are skipped."""
        self._log_batch(metrics=metrics, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; values are stringified and truncated to MLflow's limit."""
        self._log_batch(tags=tags)

    def _log_batch(
        self,
        params: Mapping | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, Any] | None = None,
        step: int | None = None,
    ) -> None:
        """Log everything in as few ``log_batch`` calls as MLflow's batch limits allow
        (each call is one database transaction)."""
        param_items = [Param(k, v) for k, v in _flatten(params or {}).items()]
        tag_items = [RunTag(str(k), str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in (tags or {}).items()]
        timestamp = int(time.time() * 1000)
        metric_items = []
        for key, value in (metrics or {}).items():
            if value is None or math.isnan(float(value)):
                logger.debug("metric %s is %s; not logged", key, value)
                continue
            metric_items.append(Metric(key, float(value), timestamp, step or 0))
        with self._timed():
            while param_items or tag_items or metric_items:
                p, param_items = _split(param_items, MAX_PARAMS_TAGS_PER_BATCH)
                t, tag_items = _split(tag_items, MAX_PARAMS_TAGS_PER_BATCH)
                m, metric_items = _split(metric_items, MAX_ENTITIES_PER_BATCH - len(p) - len(t))
                self._client.log_batch(self._run_id, metrics=m, params=p, tags=t)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Save ``text`` as the artifact ``artifact_file`` (e.g. ``reports/summary.md``)."""
        with self._timed():
            self._client.log_text(self._run_id, text, artifact_file)

    def log_dict(self, dictionary: Mapping, artifact_file: str) -> None:
        """Save a mapping as JSON or YAML, chosen by the extension of ``artifact_file``."""
        if isinstance(dictionary, DictConfig):
            dictionary = OmegaConf.to_container(dictionary, resolve=True)
        with self._timed():
            self._client.log_dict(self._run_id, dict(dictionary), artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (e.g. ``plots/roc.png``) and close it."""
        import matplotlib.pyplot as plt

        try:
            with self._timed():
                self._client.log_figure(self._run_id, figure, artifact_file)
        finally:
            plt.close(figure)


# ---------------------------------------------------------------------------------- runs
class RunTracker(RunLogger):
    """One MLflow parent run per job, with nested child runs (one per search trial).

    Use as a context manager. Leaving the block normally ends the run FINISHED; leaving it
    by any exception (``KeyboardInterrupt`` included) sets the ``error`` tag, ends the run
    and any open child FAILED and re-raises. A run is never left RUNNING.

    Parameters
    ----------
    uri : str, optional
        Tracking URI; see :func:`resolve_tracking_uri`.
    experiment_name : str
        Experiment of the run; created if missing.
    run_name : str, optional
        Display name of the parent run.
    tags : mapping, optional
        Tags set when the run starts.
    root : path, optional
        Folder that holds ``mlruns/`` when ``uri`` is not given.

    Examples
    --------
    >>> with RunTracker(None, "wtc-binary", run_name="xgb") as tracker:  # doctest: +SKIP
    ...     tracker.log_params(cfg)
    ...     tracker.child_run("trial-0", {"max_depth": 3}, {"cv/roc_auc_mean": 0.9})
    ...     tracker.log_metrics({"test/gmean": 0.8})
    """

    def __init__(
        self,
        uri: str | None,
        experiment_name: str,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        root: Path | str | None = None,
    ) -> None:
        self.uri = resolve_tracking_uri(uri, root)
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.tags = dict(tags or {})
        self._experiment_id: str | None = None
        self._open_children: dict[str, RunLogger] = {}
        # The client is made in __enter__, after init_store: making one touches the store,
        # and the first touch of a fresh SQLite store must happen under init_store's lock.
        super().__init__(None, "", _Stopwatch())

    @property
    def experiment_id(self) -> str | None:
        """Id of the run's experiment (known once the run has started)."""
        return self._experiment_id

    @property
    def overhead_s(self) -> float:
        """Seconds spent inside MLflow calls so far (store setup and run lifecycle included)."""
        return self._timed.seconds

    def __enter__(self) -> RunTracker:
        with self._timed():
            self._experiment_id = init_store(self.uri, self.experiment_name)
            self._client = mlflow.MlflowClient(tracking_uri=self.uri)
            # The fluent API is used for the parent run only, because log_model attaches
            # the model to the *active* run; everything else goes through the client.
            mlflow.set_tracking_uri(self.uri)
            run = mlflow.start_run(
                experiment_id=self._experiment_id,
                run_name=self.run_name,
                tags={str(k): str(v) for k, v in self.tags.items()},
            )
        self._run_id = run.info.run_id
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        status = RunStatus.to_string(RunStatus.FINISHED if exc is None else RunStatus.FAILED)
        with self._timed():
            try:
                if exc is not None:
                    self._client.set_tag(self._run_id, "error", _one_line(exc))
            finally:
                for child_id in list(self._open_children):
                    with contextlib.suppress(Exception):  # ending the parent matters more
                        self._end_child(child_id, "FAILED")
                active = mlflow.active_run()
                if active is not None and active.info.run_id == self._run_id:
                    mlflow.end_run(status=status)
                else:
                    self._client.set_terminated(self._run_id, status=status)
        return False  # re-raise

    # --------------------------------------------------------------------- child runs
    @contextlib.contextmanager
    def start_child(self, name: str, tags: Mapping[str, Any] | None = None) -> Iterator[RunLogger]:
        """Open a nested run under the parent; it ends FINISHED, or FAILED on an exception."""
        child_tags = {MLFLOW_PARENT_RUN_ID: self._run_id, **(tags or {})}
        with self._timed():
            run = self._client.create_run(
                self._experiment_id,
                run_name=name,
                tags={str(k): str(v) for k, v in child_tags.items()},
            )
        child = RunLogger(self._client, run.info.run_id, self._timed)
        self._open_children[child.run_id] = child
        try:
            yield child
        except BaseException as exc:
            with contextlib.suppress(Exception):
                child.set_tags({"error": _one_line(exc)})
            self._end_child(child.run_id, "FAILED")
            raise
        self._end_child(child.run_id, "FINISHED")

    def child_run(
        self,
        name: str,
        params: Mapping,
        metrics: Mapping[str, float | None],
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """Log one finished nested run (e.g. a search trial) and return its run id."""
        with self.start_child(name, tags=tags) as child:
            child._log_batch(params=params, metrics=metrics)
        return child.run_id

    def _end_child(self, run_id: str, status: str) -> None:
        self._open_children.pop(run_id, None)
        with self._timed():
            self._client.set_terminated(run_id, status=status)

    # ------------------------------------------------------------------------- models
    def log_model(
        self,
        pipeline: Any,
        X_example: Any,
        class_names: list[str],
        feature_names: list[str],
        name: str = "model",
        registered_model_name: str | None = None,
    ) -> str:
        """Log a fitted pipeline as a pyfunc model that predicts class probabilities.

        Parameters
        ----------
        pipeline : estimator
            Fitted scikit-learn / imblearn pipeline with ``predict_proba``; its probability
            columns must be in the order of ``class_names``.
        X_example : array or sparse matrix, shape (n_samples, n_features)
            Rows from which the signature and input example (first rows) are built.
        class_names, feature_names : list of str
            Names of the probability columns and of the input columns.
        name : str
            Name of the logged model.
        registered_model_name : str, optional
            Also register the model as a new version of this registered model.

        Returns
        -------
        str
            URI that :func:`load_model` accepts (``models:/<model_id>``).
        """
        head = X_example[:_INPUT_EXAMPLE_ROWS]
        head = np.asarray(head.toarray() if sp.issparse(head) else head, dtype=np.float32)
        if head.ndim != 2 or head.shape[1] != len(feature_names):
            raise ValueError(
                f"X_example has shape {head.shape}; expected {len(feature_names)} columns"
            )
        python_model = WTCProbabilityModel(pipeline, class_names, feature_names)
        proba = python_model.predict(None, head)
        import wtc

        with tempfile.TemporaryDirectory() as tmp:
            artifacts = {}
            for key, values in (("class_names", class_names), ("feature_names", feature_names)):
                path = Path(tmp, f"{key}.json")
                path.write_text(json.dumps([str(v) for v in values]))
                artifacts[key] = str(path)
            # The cloudpickle notice is MLflow's generic advice, printed on every model of a
            # sweep; these models are our own pipelines, so it is said once here instead.
            pyfunc_logger = logging.getLogger("mlflow.pyfunc")
            level = pyfunc_logger.level
            pyfunc_logger.setLevel(logging.ERROR)
            try:
                with self._timed():
                    info = mlflow.pyfunc.log_model(
                        name=name,
                        python_model=python_model,
                        artifacts=artifacts,
                        code_paths=[str(Path(wtc.__file__).parent)],
                        signature=mlflow.models.infer_signature(head, proba),
                        input_example=head,
                        pip_requirements=_pinned_requirements(),
                        registered_model_name=registered_model_name,
                    )
            finally:
                pyfunc_logger.setLevel(level)
        return info.model_uri


class WTCProbabilityModel(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: rows of exit-code × site features in, class probabilities out.

    Accepts a 2-D numpy array, a pandas DataFrame or a scipy sparse matrix with
    ``len(feature_names)`` columns and returns a DataFrame with one column per class.
    """

    def __init__(self, pipeline: Any, class_names: list[str], feature_names: list[str]):
        self.pipeline = pipeline
        self.class_names = [str(c) for c in class_names]
        self.feature_names = [str(f) for f in feature_names]

    # The hint on model_input must be one MLflow derives no schema from (ndarray, DataFrame,
    # csr_matrix): no hint or any other hint makes MLflow warn at class definition. The
    # signature given to log_model is the schema; sparse input passes it too.
    def predict(
        self, context: Any, model_input: np.ndarray, params: dict | None = None
    ) -> pd.DataFrame:
        """Return a DataFrame of class probabilities, one column per class name."""
        if isinstance(model_input, pd.DataFrame):
            model_input = model_input.to_numpy(dtype=np.float32)
        # Always hand the pipeline CSR, as in training: XGBoost/LightGBM read an absent
        # CSR entry as *missing* but a dense 0.0 as a value, so dense input would change
        # the probabilities.
        X = sp.csr_matrix(model_input, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"input has shape {X.shape}; expected {len(self.feature_names)} columns"
            )
        proba = self.pipeline.predict_proba(X)
        if proba.shape[1] != len(self.class_names):
            raise ValueError(
                f"pipeline gives {proba.shape[1]} probability columns "
                f"for {len(self.class_names)} class names"
            )
        return pd.DataFrame(proba, columns=self.class_names)


def _pinned_requirements() -> list[str]:
    pins = []
    for package in _MODEL_REQUIREMENTS:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def load_model(model_uri: str, tracking_uri: str | None = None) -> Any:
    """Load a model logged by :meth:`RunTracker.log_model`.

    Parameters
    ----------
    model_uri : str
        ``models:/<model_id>``, ``models:/<name>@<alias>``, ``runs:/<run_id>/<name>`` or a path.
    tracking_uri : str, optional
        Store to resolve ``models:/`` and ``runs:/`` URIs against; the current one by default.

    Returns
    -------
    mlflow.pyfunc.PyFuncModel
        Its ``predict`` gives a DataFrame of class probabilities.
    """
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    return mlflow.pyfunc.load_model(model_uri)
