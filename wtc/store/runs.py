"""MLflow runs: one parent run per job with a child run per trial; params, metrics, figures, models."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_ARTIFACTS, MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import (
    MAX_ENTITIES_PER_BATCH,
    MAX_PARAM_VAL_LENGTH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VAL_LENGTH,
)
from omegaconf import DictConfig, ListConfig, OmegaConf

from wtc import interrupt
from wtc.errors import one_line
from wtc.process import process_tags
from wtc.store.cleanup import dead_runs, mark_killed
from wtc.store.faults import Stopwatch, StoreFault, store_fault_line
from wtc.store.pyfunc import log_pipeline_model
from wtc.store.uri import init_store, resolve_tracking_uri

__all__ = ["RunLogger", "RunTracker"]

logger = logging.getLogger(__name__)

_MAX_ERROR_CHARS = 5000


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


def _end_status(exc: BaseException | None) -> int:
    """FINISHED, KILLED for an interruption (Ctrl-C, SIGTERM), FAILED for any other exception."""
    if exc is None:
        return RunStatus.FINISHED
    return RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED


class RunLogger:
    """Logs params, metrics, tags and artifacts to one existing run."""

    def __init__(self, client: mlflow.MlflowClient | None, run_id: str, stopwatch: Stopwatch | None = None):
        self._client = client
        self._run_id = run_id
        self._timed = stopwatch if stopwatch is not None else Stopwatch()
        self._tables: list[dict] = []  # the tables this logger wrote, as mlflow.loggedArtifacts lists them

    @property
    def run_id(self) -> str:
        """Id of the run this logger writes to."""
        return self._run_id

    def log_params(self, params: Mapping) -> None:
        """Log (nested) params as ``a.b.c`` keys, stringified and truncated to MLflow's limit."""
        self.log_batch(params=params)

    def log_metrics(self, metrics: Mapping[str, float | None], step: int | None = None,
                    model_id: str | None = None) -> None:
        """Log metrics (names may contain ``/``); ``None`` and NaN values are skipped.

        With ``model_id`` (a logged model of this run) they are also the model's metrics, in
        the same batch.
        """
        self.log_batch(metrics=metrics, step=step, model_id=model_id)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags; values are stringified and truncated to MLflow's limit."""
        self.log_batch(tags=tags)

    def log_batch(
        self,
        params: Mapping | None = None,
        metrics: Mapping[str, float | None] | None = None,
        tags: Mapping[str, Any] | None = None,
        step: int | None = None,
        model_id: str | None = None,
    ) -> None:
        """Params, metrics and tags together, as :meth:`log_params`, :meth:`log_metrics` and
        :meth:`set_tags` log them, in as few ``log_batch`` calls as MLflow's batch limits allow
        (each call is one database transaction, ~10 ms on a SQLite store whatever it holds)."""
        param_items = [Param(k, v) for k, v in _flatten(params or {}).items()]
        tag_items = [RunTag(str(k), str(v)[:MAX_TAG_VAL_LENGTH]) for k, v in (tags or {}).items()]
        timestamp = int(time.time() * 1000)
        metric_items = []
        for key, value in (metrics or {}).items():
            if value is None or math.isnan(float(value)):
                logger.debug("metric %s is %s; not logged", key, value)
                continue
            metric_items.append(Metric(key, float(value), timestamp, step or 0, model_id=model_id))
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

    def log_artifact(self, local_path: Path | str, artifact_path: str | None = None) -> None:
        """Copy a local file into the run's artifacts (under ``artifact_path``, a folder)."""
        with self._timed():
            self._client.log_artifact(self._run_id, str(local_path), artifact_path)

    def log_dict(self, dictionary: Mapping, artifact_file: str) -> None:
        """Save a mapping as JSON or YAML, chosen by the extension of ``artifact_file``."""
        if isinstance(dictionary, DictConfig):
            dictionary = OmegaConf.to_container(dictionary, resolve=True)
        with self._timed():
            self._client.log_dict(self._run_id, dict(dictionary), artifact_file)

    def log_table(self, table: Any, artifact_file: str) -> None:
        """Save a pandas DataFrame as an MLflow table (``*.json``), shown in the UI's evaluation view.

        What ``MlflowClient.log_table`` writes (the JSON ``mlflow.load_table`` reads, listed in
        the run's ``mlflow.loggedArtifacts`` tag), in two store calls instead of its five: it
        lists the run's artifacts and reads the run back to append to an existing table, and a
        table here is always new. The tag lists the tables this logger wrote.
        """
        if not artifact_file.endswith(".json"):
            raise ValueError(f"a table is saved as JSON; {artifact_file!r} does not end in .json")
        entry = {"path": artifact_file, "type": "table"}
        if entry not in self._tables:
            self._tables.append(entry)
        text = table.to_json(orient="split", index=False, date_format="iso")
        with self._timed():
            self._client.log_text(self._run_id, text, artifact_file)
        self.set_tags({MLFLOW_LOGGED_ARTIFACTS: json.dumps(self._tables)})

    def log_dataset(self, name: str, digest: str, source: str, context: str = "training",
                    profile: Mapping | None = None) -> None:
        """Record the data a run read as its dataset input (name, content hash, where it lives)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=digest[:36], source_type="local", source=json.dumps({"uri": source}),
                          profile=json.dumps(dict(profile)) if profile else None)
        inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])]
        with self._timed():
            for attempt in range(3):
                try:
                    self._client.log_inputs(self._run_id, datasets=inputs)
                    return
                except mlflow.exceptions.MlflowException as exc:
                    # Parallel jobs of a sweep log the same dataset at once: the store looks it up,
                    # finds nothing, and both insert it; the loser's unique-key error (seen with
                    # PostgreSQL behind a tracking server) rolls back, and a second try finds the
                    # row the winner wrote and only links it to this run.
                    text = str(exc).lower()
                    if attempt == 2 or not ("unique" in text or "duplicate key" in text):
                        raise
                    time.sleep(0.2 * (attempt + 1))

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
    by an exception sets the ``error`` tag, ends the run and any open child FAILED and
    re-raises; an interruption (``KeyboardInterrupt``: Ctrl-C, or SIGTERM under
    :func:`wtc.interrupt.interrupts_unwind`) ends them KILLED. A run is never left RUNNING
    by its own process; one whose process was killed outright (SIGKILL) is marked KILLED by
    :meth:`close_dead_runs` on the next launch or by ``wtc runs cleanup``. Every run carries
    ``wtc.host``, ``wtc.pid`` and ``wtc.pid_started``, which is how a dead one is told from a live one.

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
    mlruns : path, optional
        The store's folder when ``uri`` is not given (``paths.mlruns``).
    objective : str, optional
        The CV objective: the experiment's leaderboard view ranks by it (see :func:`init_store`).

    Examples
    --------
    >>> with RunTracker(None, "wtc-binary", run_name="xgb") as tracker:  # doctest: +SKIP
    ...     tracker.log_params(cfg)
    ...     tracker.child_run("trial-0", {"max_depth": 3}, {"cv/roc_auc_mean": 0.9})
    ...     tracker.log_metrics({"test/gmean": 0.8})
    """

    def __init__(self, uri: str | None, experiment_name: str, run_name: str | None = None,
                 tags: Mapping[str, Any] | None = None, mlruns: Path | str | None = None,
                 objective: str | None = None) -> None:
        self.uri = resolve_tracking_uri(uri, mlruns)
        self.objective = objective
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.tags = {**process_tags(), **(tags or {})}
        self._experiment_id: str | None = None
        self._open_children: dict[str, RunLogger] = {}
        self.model_id: str | None = None  # of the model logged by log_model
        # The client is made in __enter__, after init_store: making one touches the store,
        # and the first touch of a fresh SQLite store must happen under init_store's lock.
        super().__init__(None, "", Stopwatch())

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
            self._experiment_id = init_store(self.uri, self.experiment_name, objective=self.objective)
            self._client = mlflow.MlflowClient(tracking_uri=self.uri)
            # The fluent API is used for the parent run only, because log_model attaches
            # the model to the *active* run; everything else goes through the client.
            mlflow.set_tracking_uri(self.uri)
        try:
            with interrupt.deferred(), self._timed():  # the run is known here before an interruption unwinds
                run = mlflow.start_run(
                    experiment_id=self._experiment_id,
                    run_name=self.run_name,
                    tags={str(k): str(v) for k, v in self.tags.items()},
                )
                self._run_id = run.info.run_id
        except KeyboardInterrupt as exc:
            if not self._run_id:  # the run was not created
                raise
            self.__exit__(type(exc), exc, exc.__traceback__)  # __exit__ is not called when __enter__ raises
            raise
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        lost = None
        if exc is None:
            try:
                interrupt.check()  # a SIGTERM whose exception a finaliser swallowed ends the run KILLED too
            except KeyboardInterrupt as received:
                exc = lost = received
        status = RunStatus.to_string(_end_status(exc))
        if isinstance(exc, KeyboardInterrupt):
            exc.run_id = self._run_id  # for the one line the entry point prints
        if exc is not None:
            with contextlib.suppress(Exception):  # a full disk may refuse the tag; ending the run matters more
                self._client.set_tag(self._run_id, "error", one_line(exc, limit=_MAX_ERROR_CHARS, with_type=True))
        for child_id in list(self._open_children):
            with contextlib.suppress(Exception):  # ending the parent matters more
                self._end_child(child_id, status)
        try:
            with self._timed():
                active = mlflow.active_run()
                if active is not None and active.info.run_id == self._run_id:
                    mlflow.end_run(status=status)
                else:
                    self._client.set_terminated(self._run_id, status=status)
        except StoreFault as fault:
            # (mlflow.end_run pops the run off this process's stack before it writes: it is no longer active here)
            why = exc if isinstance(exc, StoreFault) else fault.__cause__ or fault
            raise StoreFault(f"the tracking store failed in run {self._run_id} ({store_fault_line(why)}); the run is "
                             "left RUNNING: once the store can be written again, `wtc runs cleanup` marks it KILLED "
                             "(its process gone); what was logged before is kept") from None
        if isinstance(exc, StoreFault):
            raise StoreFault(f"the tracking store failed in run {self._run_id} ({store_fault_line(exc.__cause__ or exc)}"
                             f"); the run ended {status}; what was logged before is kept") from None
        if lost is not None:
            raise lost
        return False  # re-raise

    def close_dead_runs(self, **tags: str) -> list[str]:
        """Mark KILLED the RUNNING runs of this experiment with these tags whose process is gone.

        For a relaunch (e.g. ``wtc.study=<name>``): the run of the same search killed by
        SIGKILL is closed instead of being left RUNNING forever. Only runs of this host can
        be judged; returns the ids marked.
        """
        with self._timed():
            dead = [run.info.run_id for run in dead_runs(self._client, [self._experiment_id], tags)
                    if run.info.run_id != self._run_id]
            mark_killed(self._client, dead, f"its process was gone when run {self._run_id} started")
        return dead

    # --------------------------------------------------------------------- child runs
    @contextlib.contextmanager
    def start_child(
        self, name: str, tags: Mapping[str, Any] | None = None, start_time: float | None = None,
        end_time: float | None = None,
    ) -> Iterator[RunLogger]:
        """Open a nested run under the parent; it ends FINISHED, or FAILED on an exception.

        ``start_time``/``end_time`` (seconds since the epoch) record when the work it logs
        really ran, for a child logged after the fact (a finished search trial).
        """
        child_tags = {MLFLOW_PARENT_RUN_ID: self._run_id, **(tags or {})}
        # A SIGTERM between creating the run and recording it as open would leave it RUNNING for good.
        with interrupt.deferred(), self._timed():
            run = self._client.create_run(
                self._experiment_id,
                start_time=None if start_time is None else int(start_time * 1000),
                run_name=name,
                tags={str(k): str(v) for k, v in child_tags.items()},
            )
            child = RunLogger(self._client, run.info.run_id, self._timed)
            self._open_children[child.run_id] = child
        try:
            yield child
        except BaseException as exc:
            with contextlib.suppress(Exception):
                child.set_tags({"error": one_line(exc, limit=_MAX_ERROR_CHARS, with_type=True)})
            self._end_child(child.run_id, RunStatus.to_string(_end_status(exc)))
            raise
        self._end_child(child.run_id, "FINISHED", end_time)

    def child_run(
        self,
        name: str,
        params: Mapping,
        metrics: Mapping[str, float | None],
        tags: Mapping[str, Any] | None = None,
        start_time: float | None = None,
        end_time: float | None = None,
    ) -> str:
        """Log one finished nested run (e.g. a search trial) and return its run id.

        ``start_time``/``end_time``: when the trial really ran (seconds since the epoch).
        """
        with self.start_child(name, tags=tags, start_time=start_time, end_time=end_time) as child:
            child.log_batch(params=params, metrics=metrics)
        return child.run_id

    def _end_child(self, run_id: str, status: str, end_time: float | None = None) -> None:
        with interrupt.deferred(), self._timed():  # not forgotten as open while its end is still unwritten
            self._client.set_terminated(run_id, status=status,
                                        end_time=None if end_time is None else int(end_time * 1000))
            self._open_children.pop(run_id, None)

    # ------------------------------------------------------------------------- models
    def log_model(
        self,
        pipeline: Any,
        X_example: Any,
        class_names: list[str],
        feature_names: list[str],
        name: str = "model",
        registered_model_name: str | None = None,
        **raw_tasks: Any,
    ) -> str:
        """Log a fitted pipeline to this (active) run as a pyfunc model.

        See :func:`wtc.store.pyfunc.log_pipeline_model` (``view``, ``extras``, ``target``,
        ``threshold`` make it the model that reads raw WTC tasks); returns the model's URI
        (``models:/<model_id>``) and keeps the id in :attr:`model_id`, for metrics logged after
        it to name it (``log_metrics(..., model_id=tracker.model_id)``).
        """
        with self._timed():
            uri = log_pipeline_model(pipeline, X_example, class_names, feature_names, name=name,
                                     registered_model_name=registered_model_name, **raw_tasks)
        self.model_id = uri.removeprefix("models:/") if uri.startswith("models:/") else None
        return uri
