"""The logged model: a pyfunc over the fitted pipeline (raw WTC tasks in), its requirements, and loading it back."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import re
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
import scipy.sparse as sp

from wtc.store.moved import old_module_names
from wtc.store.request_params import NO_THRESHOLD, request_threshold

__all__ = ["NO_THRESHOLD", "WTCProbabilityModel", "WTCTaskModel", "load_model", "log_pipeline_model",
           "pipeline_requirements", "request_threshold", "tasks_from_rows"]

_INPUT_EXAMPLE_ROWS = 5


def _save_pyfunc(path: str, mlflow_model: Any = None, validate_serving_input: bool = True, **kwargs: Any) -> None:
    mlflow.pyfunc.save_model(path, mlflow_model=mlflow_model, **kwargs)


#: ``mlflow.pyfunc`` as the flavor :meth:`mlflow.models.Model.log` saves with, so that the
#: model is logged as ``mlflow.pyfunc.log_model`` logs it but for the serving check that loads
#: it back and predicts its input example a second time (~0.05-0.1 s a run, MLflow only warns
#: when it fails): :func:`log_pipeline_model` has just predicted that example itself. ``Model.log``
#: reads ``validate_serving_input`` from the keyword arguments it hands on to the flavor's
#: ``save_model``, and ``mlflow.pyfunc.save_model`` refuses unknown ones; this one drops it.
_PYFUNC_FLAVOR = types.SimpleNamespace(__name__=mlflow.pyfunc.__name__, save_model=_save_pyfunc)
#: What ``mlflow.pyfunc.log_model`` records as the flavor of a PythonModel.
_PYFUNC_FLAVOR_NAME = "pyfunc.CustomPythonModel"


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


class WTCTaskModel(mlflow.pyfunc.PythonModel):
    """Pyfunc on raw WTC tasks: one row per task (``task``, ``entry``) in, one decision row out.

    ``entry`` is the task's history entry (``errors`` and optionally ``parameters``) as a dict
    or as JSON text, exactly as an actions-history file holds it. Each entry is validated by
    the loader's rules, featurised in the training vocabulary (unseen codes and sites are
    ignored and counted) and predicted; see :func:`wtc.inference.tasks.predict_tasks` for the
    output columns. A task that fails validation gets a one-line ``error`` and no prediction.

    Parameters
    ----------
    pipeline : estimator
        Fitted pipeline whose probability columns follow ``class_names``.
    class_names, feature_names : list of str
        Class order and the training vocabulary (the view's column names).
    view : str, optional
        The run's feature view; None: read from ``feature_names`` (:func:`wtc.inference.infer_view`).
    extras : list of str, optional
        The run's extra columns; None: read from ``feature_names`` with the view.
    target : str, optional
        The target the classes belong to (recorded, for people reading the model).
    threshold : float, optional
        Confidence at or above which a task is ``AUTO`` when predict is given no ``threshold``
        param; None: REVIEW unless a threshold is passed.
    """

    def __init__(self, pipeline: Any, class_names: list[str], feature_names: list[str], view: str | None = None,
                 extras: list[str] | None = None, target: str | None = None, threshold: float | None = None):
        from wtc.inference.tasks import TaskModelSpec, infer_view

        self.pipeline = pipeline
        inferred_view, inferred_extras = infer_view(feature_names)
        self.spec = TaskModelSpec(view=view or inferred_view, feature_names=[str(f) for f in feature_names],
                                  class_names=[str(c) for c in class_names],
                                  extras=list(inferred_extras if extras is None else extras), target=target)
        self.threshold = None if threshold is None else float(threshold)

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """Return one decision row per task (see the class docstring)."""
        from wtc.inference.tasks import predict_tasks

        threshold = request_threshold(params, self.threshold)
        return predict_tasks(self.pipeline, self.spec, model_input, threshold=threshold)


def tasks_from_rows(X: Any, feature_names: list[str], n_rows: int = _INPUT_EXAMPLE_ROWS) -> dict[str, dict]:
    """Raw history entries that featurise to (about) the given rows: an input example for the model.

    Each ``<status>:<code>:<site>`` count becomes ``errors.<status>_sites.<code>.<site>``;
    a tier or ``*`` site (tiers/codes views) becomes a made-up site of that tier. Extra
    columns are not reproduced (the made-up task names carry no campaign).
    """
    from wtc.data.features import TIERS

    head = X[:n_rows]
    head = sp.csr_matrix(head.toarray() if sp.issparse(head) else np.asarray(head), dtype=np.float64)
    tasks = {}
    for i in range(head.shape[0]):
        errors: dict[str, dict] = {}
        row = head.getrow(i)
        for j, value in zip(row.indices, row.data):
            parts = str(feature_names[j]).split(":")
            if len(parts) != 3 or value <= 0 or value != int(value):
                continue
            status, code, site = parts
            if site == "*":
                site = "T2_XX_Example"
            elif site in TIERS:
                site = f"{site}_XX_Example" if site != "unknown" else "Unknown"
            cell = errors.setdefault(f"{status}_sites", {}).setdefault(code, {})
            cell[site] = cell.get(site, 0) + int(value)
        tasks[f"/example_workflow_{i}/example_task_{i}"] = {"errors": errors}
    return tasks


#: Always needed to load the model, whatever the pipeline holds: MLflow and the pipeline's
#: base, and what the wtc code that travels with the model imports when it is loaded
#: (``wtc`` itself: omegaconf; ``wtc.store``: hydra-core; ``wtc.data``: msgspec).
_BASE_REQUIREMENTS = ("mlflow", "cloudpickle", "numpy", "scipy", "pandas", "scikit-learn", "imbalanced-learn",
                      "omegaconf", "hydra-core", "msgspec")


def _estimators_of(estimator: Any) -> Iterator[Any]:
    """The estimator and every estimator nested in it (pipeline steps, meta-estimator parameters,
    ensemble members)."""
    yield estimator
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        for _, step in steps:
            yield from _estimators_of(step)
    get_params = getattr(estimator, "get_params", None)
    if callable(get_params) and not isinstance(estimator, type):
        for value in get_params(deep=False).values():
            # An ensemble's members come as a list of estimators.
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if hasattr(item, "get_params") and not isinstance(item, type):
                    yield from _estimators_of(item)


@functools.lru_cache(maxsize=1)
def _distributions_of_packages() -> dict[str, list[str]]:
    """Top-level import name -> distributions: a scan of every installed package (~1 s), done once
    per process (a sweep's worker logs one model per job).

    MLflow makes the same scan once per process when it checks a logged model's requirements
    against the environment; the one scan serves both (it cost ~1 s more per worker apart).
    """
    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_modules_to_packages_map()
        shared = requirements_utils._MODULES_TO_PACKAGES
    except (ImportError, AttributeError):  # a later MLflow without the private map
        shared = None
    return shared if isinstance(shared, dict) else importlib.metadata.packages_distributions()


def pipeline_requirements(pipeline: Any) -> list[str]:
    """Pinned pip requirements of a fitted pipeline, derived from its own steps.

    Each estimator's module names its top-level package (``xgboost.sklearn`` -> ``xgboost``),
    which maps to the distribution that installed it (``sklearn`` -> ``scikit-learn``); wtc
    itself travels as code, and packages not installed from a distribution are left out.
    Listing them explicitly also spares MLflow's requirement inference (a subprocess that
    loads the model again).
    """
    distributions = _distributions_of_packages()
    packages = list(_BASE_REQUIREMENTS)
    for estimator in _estimators_of(pipeline):
        top = type(estimator).__module__.split(".", 1)[0]
        for dist in distributions.get(top, []):
            if dist not in packages and dist != "wtc":
                packages.append(dist)
    return [f"{package}=={version}" for package in packages if (version := _installed_version(package))]


@functools.lru_cache(maxsize=None)
def _installed_version(package: str) -> str | None:
    """The installed version of a distribution (None: not installed), looked up once per process:
    each lookup searches every entry of ``sys.path`` (~2-5 ms), and a sweep's worker logs a model a job."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _task_schemas(class_names: list[str]):
    """Input (two string columns), output and params schemas of :class:`WTCTaskModel`."""
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema

    from wtc.inference.tasks import output_columns

    types = {"task": "string", "recommendation": "string", "runner_up": "string", "decision": "string",
             "error": "string", "unseen_codes": "long", "unseen_sites": "long"}
    inputs = Schema([ColSpec("string", "task"), ColSpec("string", "entry")])
    outputs = Schema([ColSpec(types.get(c, "double"), c, required=c in ("task", "error"))
                      for c in output_columns(class_names)])
    params = ParamSchema([ParamSpec("threshold", "double", NO_THRESHOLD)])
    return mlflow.models.ModelSignature(inputs=inputs, outputs=outputs, params=params)


_NOT_IN_MODEL_NAMES = re.compile(r"[/:.%\"']")


def logged_model_name(name: str) -> str:
    """``name`` as MLflow accepts a logged model's name (no ``/ : . % " '``): ``alpha=1.5`` -> ``alpha=1_5``."""
    return _NOT_IN_MODEL_NAMES.sub("_", name) or "model"


def log_pipeline_model(
    pipeline: Any,
    X_example: Any,
    class_names: list[str],
    feature_names: list[str],
    name: str = "model",
    registered_model_name: str | None = None,
    *,
    view: str | None = None,
    extras: list[str] | None = None,
    target: str | None = None,
    threshold: float | None = None,
    tasks_example: dict[str, dict] | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
) -> str:
    """Log a fitted pipeline to the active run (or the run ``run_id``) as a pyfunc model.

    With ``view`` given, the model reads raw WTC tasks (:class:`WTCTaskModel`: columns
    ``task`` and ``entry``, one decision row per task out) and the view, extras, target,
    vocabulary and class names travel with it as artifacts (``model_spec.json``,
    ``feature_names.json``, ``class_names.json``). Without ``view`` it is the older
    matrix model (:class:`WTCProbabilityModel`: ``len(feature_names)`` float columns in,
    class probabilities out).

    Parameters
    ----------
    pipeline : estimator
        Fitted scikit-learn / imblearn pipeline with ``predict_proba``; its probability
        columns must be in the order of ``class_names``.
    X_example : array or sparse matrix, shape (n_samples, n_features)
        Rows from which the signature and input example (first rows) are built; for a raw-task
        model they are turned back into raw entries unless ``tasks_example`` is given.
    class_names, feature_names : list of str
        Names of the probability columns and of the input columns (the training vocabulary).
    name : str
        Name of the logged model (made valid by :func:`logged_model_name`: a run's name may hold dots).
    registered_model_name : str, optional
        Also register the model as a new version of this registered model.
    view : str, optional
        The run's feature view (``cfg.data.view``): makes the model read raw tasks.
    extras : list of str, optional
        The run's extra columns (``cfg.data.extras``); None: read from ``feature_names``.
    target : str, optional
        The run's target (``cfg.target.name``).
    threshold : float, optional
        Default AUTO threshold of the raw-task model (a ``threshold`` param overrides it).
    tasks_example : mapping, optional
        ``{task: entry}`` raw tasks for the input example of a raw-task model.
    run_id : str, optional
        Log into this run, finished or not, instead of the active run (see
        :mod:`wtc.store.logged_models`).
    model_id : str, optional
        Fill this ``LoggedModel`` (created by the caller) instead of creating one.

    Returns
    -------
    str
        URI that :func:`load_model` accepts (``models:/<model_id>``).
    """
    head = X_example[:_INPUT_EXAMPLE_ROWS]
    head = np.asarray(head.toarray() if sp.issparse(head) else head, dtype=np.float32)
    if head.ndim != 2 or head.shape[1] != len(feature_names):
        raise ValueError(f"X_example has shape {head.shape}; expected {len(feature_names)} columns")
    specs: dict[str, Any] = {"class_names": [str(v) for v in class_names],
                             "feature_names": [str(v) for v in feature_names]}
    if view is None:
        python_model = WTCProbabilityModel(pipeline, class_names, feature_names)
        example = head
        signature = mlflow.models.infer_signature(head, python_model.predict(None, head))
    else:
        python_model = WTCTaskModel(pipeline, class_names, feature_names, view=view, extras=extras, target=target,
                                    threshold=threshold)
        tasks = tasks_example if tasks_example is not None else tasks_from_rows(head, feature_names)
        example = pd.DataFrame({"task": list(tasks), "entry": [json.dumps(e) for e in tasks.values()]})
        answer = python_model.predict(None, example)
        failed = answer[answer["error"] != ""]
        if len(failed):
            raise ValueError(f"input example task {failed['task'].iloc[0]!r} is invalid: {failed['error'].iloc[0]}")
        signature = _task_schemas(python_model.class_names)
        spec = python_model.spec
        specs["model_spec"] = {"kind": "wtc-tasks", "view": spec.view, "extras": spec.extras, "target": spec.target,
                               "threshold": python_model.threshold, "class_names": spec.class_names}
    import wtc

    with tempfile.TemporaryDirectory() as tmp:
        artifacts = {}
        for key, values in specs.items():
            path = Path(tmp, f"{key}.json")
            path.write_text(json.dumps(values))
            artifacts[key] = str(path)
        # The cloudpickle notice is MLflow's generic advice, printed on every model of a
        # sweep; these models are our own pipelines, so it is said once here instead.
        pyfunc_logger = logging.getLogger("mlflow.pyfunc")
        level = pyfunc_logger.level
        pyfunc_logger.setLevel(logging.ERROR)
        try:
            info = mlflow.models.Model.log(
                artifact_path=None,
                flavor=_PYFUNC_FLAVOR,
                flavor_name=_PYFUNC_FLAVOR_NAME,
                validate_serving_input=False,
                name=logged_model_name(name),
                python_model=python_model,
                artifacts=artifacts,
                code_paths=[str(Path(wtc.__file__).parent)],
                signature=signature,
                input_example=example,
                pip_requirements=pipeline_requirements(pipeline),
                registered_model_name=registered_model_name,
                run_id=run_id,
                model_id=model_id,
            )
        finally:
            pyfunc_logger.setLevel(level)
    return info.model_uri


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
        Its ``predict`` gives one decision row per raw task (:class:`WTCTaskModel`), or a
        DataFrame of class probabilities for a matrix model (:class:`WTCProbabilityModel`).
    """
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    with old_module_names():
        return mlflow.pyfunc.load_model(model_uri)
