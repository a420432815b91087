"""The scaler -> resampler -> model pipeline of a run config, and its probabilities over every class."""

from __future__ import annotations

import inspect

import numpy as np
from hydra.utils import instantiate
from imblearn.pipeline import Pipeline
from omegaconf import DictConfig
from sklearn.base import clone

MODEL_STEP = "model"


def build_pipeline(cfg: DictConfig, feature_names: list[str] | None = None,
                   class_names: list[str] | None = None) -> Pipeline:
    """An imblearn Pipeline from ``cfg.scaler``, ``cfg.resample`` and ``cfg.model.estimator``.

    Samplers inside an imblearn Pipeline act only in ``fit``, so resampling never touches a
    validation or test fold. Empty scaler/resample configs are left out; a model config with
    ``scale: false`` (the rules baseline reads raw counts) skips the scaler. A model with a
    ``feature_names`` or ``class_names`` parameter (the rules baselines) is given the view's column
    names and the names of the integer labels.
    """
    steps = []
    if cfg.scaler and cfg.model.get("scale", True):
        steps.append(("scaler", instantiate(cfg.scaler, _convert_="all")))
    if cfg.resample:
        steps.append(("resample", instantiate(cfg.resample, _convert_="all")))
    model = instantiate(cfg.model.estimator, _convert_="all")
    if feature_names is not None and "feature_names" in model.get_params():
        model.set_params(feature_names=list(feature_names))
    if class_names is not None and "class_names" in model.get_params():
        model.set_params(class_names=list(class_names))
    steps.append((MODEL_STEP, model))
    return Pipeline(steps)


def with_params(pipeline: Pipeline, params: dict) -> Pipeline:
    """A fresh clone of ``pipeline`` with search parameters set on the model step."""
    fresh = clone(pipeline)
    if params:
        fresh.set_params(**{f"{MODEL_STEP}__{k}": v for k, v in params.items()})
    return fresh


def takes_groups(pipeline: Pipeline) -> bool:
    """Whether ``fit`` may route workflow groups to the model step (``model__groups``).

    Only a model whose ``fit`` takes ``groups`` (an early-stopped booster's inner split) gets
    them, and only when no step before it resamples: a sampler's output rows have no workflow.
    """
    model = pipeline.named_steps[MODEL_STEP]
    if any(hasattr(step, "fit_resample") for _, step in pipeline.steps[:-1]):
        return False
    return "groups" in inspect.signature(model.fit).parameters


def fit_grouped(pipeline: Pipeline, X, y, groups=None) -> Pipeline:
    """``pipeline.fit(X, y)``, with the rows' workflow ``groups`` routed to a model that takes them
    (:func:`takes_groups`); ``groups=None`` or any other model: a plain fit."""
    if groups is not None and takes_groups(pipeline):
        return pipeline.fit(X, y, **{f"{MODEL_STEP}__groups": groups})
    return pipeline.fit(X, y)


def full_proba(pipeline: Pipeline, X, n_classes: int) -> np.ndarray:
    """Class probabilities over all ``n_classes``, even those absent from the training fold."""
    proba = pipeline.predict_proba(X)
    classes = pipeline.classes_
    if len(classes) == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(classes, dtype=np.int64)] = proba
    return full
