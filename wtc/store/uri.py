"""The MLflow tracking store: URIs, the schema/experiment lock, init_store and its Hydra callback."""

from __future__ import annotations

import contextlib
import errno
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
from hydra.experimental.callback import Callback
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from omegaconf import DictConfig, OmegaConf

from wtc.errors import TrackingError, WtcError, one_line
from wtc.sqlite import SQLITE_PREFIX, sqlite_db_path, sqlite_lock
from wtc.store.faults import is_store_fault, store_fault_line
from wtc.store.views import DEFAULT_OBJECTIVE, ensure_leaderboard_view

__all__ = ["EXPERIMENT_TAGS", "TrackingSetupCallback", "check_reachable", "config_tracking_uri",
           "default_tracking_uri", "init_store", "resolve_tracking_uri", "tracking_uri_problem", "using_tracking_uri"]

#: Seconds the probe of a tracking server waits for an answer. MLflow's own client retries an
#: unreachable server for minutes (7 retries with exponential backoff, per call).
PROBE_TIMEOUT_S = 5.0
_AUTH_ANSWERS = (401, 403)
#: Without this tag the MLflow 3 UI opens an experiment in GenAI mode (traces, tokens, agent
#: versions) and hides the model-training views and the registry link.
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": (
        "wtc runs: one parent run per job (config, data fingerprint, CV/test/oracle metrics, figures, "
        "model; a sweep's jobs keep what their figures and model are made from, drawn and logged on "
        "demand: `wtc runs figures|model`) and one child run per hyper-parameter trial. Compare runs by "
        "test/log_loss or test/roc_auc against oracle/* (the Bayes limit on generated data)."
    ),
}


#: URI schemes of the tracking stores MLflow opens (a database scheme may name its driver: ``postgresql+psycopg2``).
TRACKING_SCHEMES = ("file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "uc")


def tracking_uri_problem(uri) -> str | None:
    """What is wrong with a tracking URI, or None: a scheme no MLflow store opens (``foo://bar``)."""
    if not isinstance(uri, str) or not uri.strip():
        return f"must be a tracking URI (sqlite:///path/mlflow.db, http://host:5000...) or null, got {uri!r}"
    scheme, sep, _ = uri.partition("://")
    if not sep:
        return None  # a folder (MLflow's file store) or a bare "databricks"
    if scheme.lower().split("+", 1)[0] not in TRACKING_SCHEMES:
        return (f"{uri!r} has a scheme no MLflow store opens ({scheme!r}); "
                f"use one of {', '.join(s + '://' for s in TRACKING_SCHEMES[:6])} or null")
    return None


def default_tracking_uri(mlruns: Path | str | None = None) -> str:
    """Return the project's SQLite tracking URI, ``sqlite:///<mlruns>/mlflow.db``.

    Parameters
    ----------
    mlruns : path, optional
        The store's folder (``paths.mlruns`` of the config); ``./mlruns`` by default. It is
        created.
    """
    folder = Path(mlruns or Path.cwd() / "mlruns").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"{SQLITE_PREFIX}{folder / 'mlflow.db'}"


@contextlib.contextmanager
def using_tracking_uri(uri: str) -> Iterator[None]:
    """Point the process's MLflow tracking URI at ``uri`` meanwhile (for calls that read only it,
    such as ``Model.log`` and ``mlflow.pyfunc.load_model``), then restore it."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def resolve_tracking_uri(uri: str | None, mlruns: Path | str | None = None) -> str:
    """Return ``uri``, or :func:`default_tracking_uri` when it is empty.

    ``$MLFLOW_TRACKING_URI`` is deliberately not consulted: a run's store is decided by its
    config alone (``tracking.uri=...``), not by whatever the shell happens to export.
    """
    return uri or default_tracking_uri(mlruns)


def check_reachable(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail at once, in one line, when ``uri`` is an HTTP(S) tracking server that does not answer.

    An MLflow server answers ``GET /health``; a login in front of it may answer 401 or 403, and
    a TLS handshake that fails (a self-signed certificate) is left to MLflow's own TLS settings.
    A refused, unresolvable or silent address fails, and so do other HTTP errors: 404 (no
    MLflow server at that URI) and 5xx (a proxy whose server is down, which MLflow's client
    would retry for minutes). Other URIs (``sqlite:``, ``postgresql:``, ``databricks``...) are
    not probed.

    Parameters
    ----------
    uri : str
        Tracking URI.
    timeout : float
        Seconds to wait for the server's answer.

    Raises
    ------
    TrackingError
        The server cannot be reached or is no MLflow server; the message names the URI and why.
    """
    if not uri.lower().startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as answer:
            kind = answer.headers.get_content_type()
            body = answer.read(256)
    except urllib.error.HTTPError as exc:
        if exc.code in _AUTH_ANSWERS:
            return  # a login in front of the server: MLflow's own credentials decide the rest
        # 404: something else listens there; 5xx: a proxy whose server is down (MLflow would retry it).
        raise TrackingError(f"tracking server {uri} does not answer as an MLflow server (GET /health: HTTP "
                            f"{exc.code} {exc.reason}); check tracking.uri / --tracking-uri") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLError):
            return  # a TLS handshake: something listens (MLflow's own TLS settings decide the rest)
        raise TrackingError(
            f"tracking server {uri} is unreachable ({one_line(reason)}); "
            "start it (wtc tracking-server start --dir DIR) or point tracking.uri / --tracking-uri at a running one"
        ) from None
    # An MLflow server answers "OK"; a web page (a proxy's, another service's) is no tracking server.
    if "html" in kind or body.lstrip().startswith(b"<"):
        raise TrackingError(f"tracking server {uri} does not answer as an MLflow server (GET /health: an HTML page, "
                            f"{kind}); check tracking.uri / --tracking-uri")


def _artifact_root(db_path: Path) -> Path:
    """Artifacts live in ``mlruns/artifacts`` beside (or under) the database."""
    mlruns = db_path.parent if db_path.parent.name == "mlruns" else db_path.parent / "mlruns"
    return mlruns / "artifacts"


def init_store(
    uri: str | None, experiment_name: str | None, mlruns: Path | str | None = None, objective: str | None = None
) -> str | None:
    """Create the tracking schema and the experiment if missing; return the experiment id.

    Idempotent and safe to call from several processes at once. Call it once in the
    main process before parallel writers start. An HTTP(S) server is probed first
    (:func:`check_reachable`), so an unreachable one fails in seconds, not after MLflow's
    minutes of retries.

    Parameters
    ----------
    uri : str, optional
        Tracking URI; see :func:`resolve_tracking_uri`.
    experiment_name : str, optional
        Experiment to get or create. ``None`` only creates the schema (returns ``None``).
    mlruns : path, optional
        The store's folder when ``uri`` is not given (see :func:`default_tracking_uri`).
    objective : str, optional
        The CV objective its runs are ranked by: the experiment gets a leaderboard view of it
        (:mod:`wtc.store.views`) beside the default ``roc_auc`` one.

    Raises
    ------
    TrackingError
        ``uri`` is a tracking server that does not answer.
    """
    uri = resolve_tracking_uri(uri, mlruns)
    check_reachable(uri)
    try:
        return _init_store(uri, experiment_name, objective)
    except WtcError:
        raise
    except Exception as exc:  # noqa: BLE001 - store faults become one line; anything else passes unchanged
        if not is_store_fault(exc):
            raise
        hint = ("its folder is read-only or not writable: " if getattr(exc, "errno", None) in (errno.EROFS, errno.EACCES)
                else "")
        raise TrackingError(f"cannot open the tracking store {uri}: {hint}{store_fault_line(exc)}") from None


def _init_store(uri: str, experiment_name: str | None, objective: str | None = None) -> str | None:
    db_path = sqlite_db_path(uri)
    with sqlite_lock(db_path):
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
                experiment_id = client.create_experiment(experiment_name, artifact_location=artifacts,
                                                         tags=EXPERIMENT_TAGS)
                experiment = client.get_experiment(experiment_id)
            except MlflowException as exc:
                # Another process (without our lock, e.g. on a remote server) won the race.
                if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                    raise
                experiment = client.get_experiment_by_name(experiment_name)
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        for key, value in EXPERIMENT_TAGS.items():  # experiments made before the tags existed
            if key not in experiment.tags:
                client.set_experiment_tag(experiment.experiment_id, key, value)
        for metric in dict.fromkeys([DEFAULT_OBJECTIVE, objective or DEFAULT_OBJECTIVE]):
            ensure_leaderboard_view(client, experiment, metric)
        return experiment.experiment_id


def config_tracking_uri(config: DictConfig) -> str:
    """The store a run config logs to: ``tracking.uri``, else ``sqlite:///<paths.mlruns>/mlflow.db``."""
    uri = OmegaConf.select(config, "tracking.uri", default=None)
    return resolve_tracking_uri(str(uri) if uri else None, OmegaConf.select(config, "paths.mlruns", default=None))


class TrackingSetupCallback(Callback):
    """Hydra callback that creates the tracking store before any job starts.

    Runs in the main process, before a launcher (e.g. joblib) forks workers, so that no two
    workers ever create the SQLite schema at once, and so that an unreachable tracking server
    stops ``run.py`` (``-m`` or not) before any job starts: the error is printed as one
    ``error: ...`` line and the process exits with status 1 (Hydra turns any exception a
    callback raises into a warning, so the callback raises ``SystemExit``). Register it in the
    primary config::

        hydra:
          callbacks:
            tracking:
              _target_: wtc.store.TrackingSetupCallback
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
        # The experiment name may interpolate per-job choices that do not resolve in the
        # sweep config; then create the schema only and let each job create its experiment.
        name = OmegaConf.select(
            config, "tracking.experiment", default=None, throw_on_resolution_failure=False
        )
        try:
            metric = OmegaConf.select(config, "metric", default=None, throw_on_resolution_failure=False)
            init_store(config_tracking_uri(config), str(name) if name is not None else None,
                       objective=str(metric) if metric else None)
        except WtcError as exc:
            raise SystemExit(f"error: {exc}") from None
