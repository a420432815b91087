"""A run's MLflow model logged after the fact (``wtc runs model``, promotion, the leaderboard).

With ``diagnostics.model: on_demand`` (sweeps' ``light`` level) a run keeps its fitted pipeline and
what its model is made from in ``model/inputs.pkl``; this logs that model into the run, the same
model a run logging it at once gives (why and what it saves: docs/performance.md). The inputs are a
cloudpickle, as MLflow's own pyfunc model is: load them only from a store you trust.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import mlflow
import mlflow.exceptions
from mlflow.entities import LoggedModelStatus

from wtc.errors import WtcError, one_line
from wtc.evaluation.report import summary_with_model
from wtc.store.moved import old_module_names
from wtc.store.query import read_artifact, store_client
from wtc.store.runs import RunLogger
from wtc.store.uri import using_tracking_uri

__all__ = ["MODEL_INPUTS", "TAG_LOGGED_MODEL", "BuiltModel", "ModelInputs", "RunModel", "build_run_models",
           "find_run_model", "log_run_model", "run_model", "save_model_inputs"]

#: Where a run with ``diagnostics.model: on_demand`` keeps what its model is made from.
MODEL_INPUTS = "model/inputs.pkl"
#: ``on_demand`` while a run's model waits to be logged, ``logged`` once it is.
TAG_LOGGED_MODEL = "wtc.logged_model"
_FORMAT = 1


@dataclass
class ModelInputs:
    """Everything :func:`wtc.store.pyfunc.log_pipeline_model` takes: the fitted pipeline, the
    rows its input example is made from, the class and feature names, the logged model's name and,
    for a model that reads raw tasks, ``raw_tasks`` (``view``, ``extras``, ``target``)."""

    pipeline: Any
    X_example: Any
    class_names: list[str]
    feature_names: list[str]
    name: str
    raw_tasks: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path | str) -> None:
        with open(path, "wb") as out:
            cloudpickle.dump({"format": _FORMAT, **self.__dict__}, out)

    @classmethod
    def load(cls, raw: bytes) -> ModelInputs:
        with old_module_names():
            content = cloudpickle.load(io.BytesIO(raw))
        if not isinstance(content, dict) or content.pop("format", None) != _FORMAT:
            raise ValueError(f"not a wtc model inputs file of format {_FORMAT}")
        return cls(**content)


def run_model(client: mlflow.MlflowClient, run) -> Any:
    """The model a run logged (its newest ready ``LoggedModel``), or None when it logged none."""
    models = [m for m in client.search_logged_models([run.info.experiment_id],
                                                     filter_string=f"source_run_id = '{run.info.run_id}'")
              if m.status == LoggedModelStatus.READY]
    return max(models, key=lambda m: m.creation_timestamp or 0) if models else None


def _read_inputs(tracking_uri: str, run_id: str) -> ModelInputs | None:
    raw = read_artifact(tracking_uri, run_id, MODEL_INPUTS)
    if raw is None:
        return None
    try:
        return ModelInputs.load(raw)
    except Exception as exc:  # noqa: BLE001 - unpickling raises anything; one line names the file
        message = one_line(exc, limit=300)
        raise WtcError(f"run {run_id}: {MODEL_INPUTS} cannot be read ({message})") from None


@dataclass
class RunModel:
    """A run's model: ``logged`` (its ``LoggedModel``) or, until it is logged, its ``inputs``."""

    run: Any
    logged: Any = None
    inputs: ModelInputs | None = None

    @property
    def model_uri(self) -> str | None:
        return self.logged.model_uri if self.logged is not None else None

    def pipeline(self, tracking_uri: str) -> Any:
        """The fitted pipeline, from the logged model or from the inputs (nothing is logged)."""
        if self.logged is None:
            return self.inputs.pipeline
        from wtc.store.pyfunc import load_model

        return load_model(self.logged.model_uri, tracking_uri=tracking_uri).unwrap_python_model().pipeline

    def ensure_logged(self, client: mlflow.MlflowClient) -> Any:
        """Log the model from its inputs if it is not logged yet; its ``LoggedModel``."""
        if self.logged is None:
            self.logged = _log_from_inputs(client, self.run, self.inputs)
        return self.logged


def find_run_model(client: mlflow.MlflowClient, tracking_uri: str, run) -> RunModel | None:
    """The run's model, logged or waiting in ``model/inputs.pkl``; None when it has neither
    (``tracking.log_model=false``)."""
    logged = run_model(client, run)
    if logged is not None:
        return RunModel(run, logged=logged)
    inputs = _read_inputs(tracking_uri, run.info.run_id)
    return RunModel(run, inputs=inputs) if inputs is not None else None


#: The run's tags a logged model carries as its source (MLflow sets them from the logging process).
_SOURCE_TAGS = ("mlflow.user", "mlflow.source.name", "mlflow.source.type", "mlflow.source.git.commit")


def _log_from_inputs(client: mlflow.MlflowClient, run, inputs: ModelInputs) -> Any:
    """Log the model into ``run`` as the job would have: the logged model is created in the run's
    experiment with the run's params and source tags (``Model.log`` would take the process's
    experiment), and ``Model.log`` links the run's metrics to it."""
    from wtc.store.pyfunc import log_pipeline_model, logged_model_name

    run_id = run.info.run_id
    model = client.create_logged_model(run.info.experiment_id, name=logged_model_name(inputs.name), source_run_id=run_id,
                                       tags={k: v for k, v in run.data.tags.items() if k in _SOURCE_TAGS},
                                       params=dict(run.data.params))
    try:
        with using_tracking_uri(client.tracking_uri):  # Model.log writes to the process's URI
            log_pipeline_model(inputs.pipeline, inputs.X_example, inputs.class_names, inputs.feature_names,
                               name=inputs.name, run_id=run_id, model_id=model.model_id, **inputs.raw_tasks)
    except Exception as exc:  # noqa: BLE001 - one line; the half-made model is marked FAILED
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        message = one_line(exc, limit=300)
        raise WtcError(f"run {run_id}: its model cannot be logged ({message})") from None
    logged = client.get_logged_model(model.model_id)
    logger, tags = RunLogger(client, run_id), {TAG_LOGGED_MODEL: "logged"}
    summary = read_artifact(client.tracking_uri, run_id, "summary.md")
    if summary is not None:  # its model section says where the model went
        text = summary_with_model(summary.decode("utf-8"), run_id, logged.model_uri)
        logger.log_text(text, "summary.md")
        tags["mlflow.note.content"] = text
    logger.set_tags(tags)  # one store call
    return logged


@dataclass
class BuiltModel:
    """What logging one run's model did: ``logged``, ``already logged`` or ``no inputs``."""

    run_id: str
    run_name: str
    outcome: str
    model_uri: str | None = None
    seconds: float = 0.0


def log_run_model(client: mlflow.MlflowClient, tracking_uri: str, run_id: str) -> BuiltModel:
    """Log one run's model from its ``model/inputs.pkl`` unless it has one already."""
    try:
        run = client.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise WtcError(f"no run {run_id} in {tracking_uri}") from None
    name = run.info.run_name
    start = time.perf_counter()
    model = find_run_model(client, tracking_uri, run)
    if model is None:
        return BuiltModel(run_id, name, "no inputs")
    if model.logged is not None:
        return BuiltModel(run_id, name, "already logged", model.model_uri)
    model.ensure_logged(client)
    return BuiltModel(run_id, name, "logged", model.model_uri, time.perf_counter() - start)


def build_run_models(tracking_uri: str, run_ids: Sequence[str]) -> Iterator[BuiltModel]:
    """Log the model of each run that kept only its inputs; yields a :class:`BuiltModel` per run.

    Raises
    ------
    WtcError
        A run id the store does not hold, or inputs that cannot be read or logged.
    """
    client = store_client(tracking_uri)
    for run_id in run_ids:
        yield log_run_model(client, tracking_uri, run_id)


def save_model_inputs(logger: Any, inputs: ModelInputs) -> None:
    """Log ``inputs`` as the run's ``model/inputs.pkl`` (``logger``: a :class:`~wtc.store.runs.RunLogger`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(MODEL_INPUTS).name
        inputs.save(path)
        logger.log_artifact(path, str(Path(MODEL_INPUTS).parent))
