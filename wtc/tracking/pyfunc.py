"""The logged model: a pyfunc over the fitted pipeline, its requirements, and loading it back."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["WTCProbabilityModel", "load_model", "log_pipeline_model", "pipeline_requirements"]

_INPUT_EXAMPLE_ROWS = 5


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


#: Always needed to load the model, whatever the pipeline holds.
_BASE_REQUIREMENTS = ("mlflow", "cloudpickle", "numpy", "scipy", "pandas", "scikit-learn", "imbalanced-learn")


def _estimators_of(estimator: Any) -> Iterator[Any]:
    """The estimator and every estimator nested in it (pipeline steps, meta-estimator parameters)."""
    yield estimator
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        for _, step in steps:
            yield from _estimators_of(step)
    get_params = getattr(estimator, "get_params", None)
    if callable(get_params) and not isinstance(estimator, type):
        for value in get_params(deep=False).values():
            if hasattr(value, "get_params") and not isinstance(value, type):
                yield from _estimators_of(value)


def pipeline_requirements(pipeline: Any) -> list[str]:
    """Pinned pip requirements of a fitted pipeline, derived from its own steps.

    Each estimator's module names its top-level package (``xgboost.sklearn`` -> ``xgboost``),
    which maps to the distribution that installed it (``sklearn`` -> ``scikit-learn``); wtc
    itself travels as code, and packages not installed from a distribution are left out.
    Listing them explicitly also spares MLflow's requirement inference (a subprocess that
    loads the model again).
    """
    distributions = importlib.metadata.packages_distributions()
    packages = list(_BASE_REQUIREMENTS)
    for estimator in _estimators_of(pipeline):
        top = type(estimator).__module__.split(".", 1)[0]
        for dist in distributions.get(top, []):
            if dist not in packages and dist != "wtc":
                packages.append(dist)
    pins = []
    for package in packages:
        try:
            pins.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def log_pipeline_model(
    pipeline: Any,
    X_example: Any,
    class_names: list[str],
    feature_names: list[str],
    name: str = "model",
    registered_model_name: str | None = None,
) -> str:
    """Log a fitted pipeline to the active run as a pyfunc model that predicts class probabilities.

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
        raise ValueError(f"X_example has shape {head.shape}; expected {len(feature_names)} columns")
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
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=python_model,
                artifacts=artifacts,
                code_paths=[str(Path(wtc.__file__).parent)],
                signature=mlflow.models.infer_signature(head, proba),
                input_example=head,
                pip_requirements=pipeline_requirements(pipeline),
                registered_model_name=registered_model_name,
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
        Its ``predict`` gives a DataFrame of class probabilities.
    """
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    return mlflow.pyfunc.load_model(model_uri)
