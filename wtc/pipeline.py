"""Build the scaler -> resampler -> model pipeline of a run config and score it on folds."""

from __future__ import annotations

import numpy as np
from hydra.utils import instantiate
from imblearn.pipeline import Pipeline
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone

from wtc.evaluation import score_all

MODEL_STEP = "model"


def build_pipeline(cfg: DictConfig, feature_names: list[str] | None = None) -> Pipeline:
    """An imblearn Pipeline from ``cfg.scaler``, ``cfg.resample`` and ``cfg.model.estimator``.

    Samplers inside an imblearn Pipeline act only in ``fit``, so resampling never touches a
    validation or test fold. Empty scaler/resample configs are left out; a model config with
    ``scale: false`` (the rules baseline reads raw counts) skips the scaler.
    """
    steps = []
    if cfg.scaler and cfg.model.get("scale", True):
        steps.append(("scaler", instantiate(cfg.scaler, _convert_="all")))
    if cfg.resample:
        steps.append(("resample", instantiate(cfg.resample, _convert_="all")))
    model = instantiate(cfg.model.estimator, _convert_="all")
    if feature_names is not None and "feature_names" in model.get_params():
        model.set_params(feature_names=list(feature_names))
    steps.append((MODEL_STEP, model))
    return Pipeline(steps)


def with_params(pipeline: Pipeline, params: dict) -> Pipeline:
    """A fresh clone of ``pipeline`` with search parameters set on the model step."""
    fresh = clone(pipeline)
    if params:
        fresh.set_params(**{f"{MODEL_STEP}__{k}": v for k, v in params.items()})
    return fresh


def full_proba(pipeline: Pipeline, X, n_classes: int) -> np.ndarray:
    """Class probabilities over all ``n_classes``, even those absent from the training fold."""
    proba = pipeline.predict_proba(X)
    classes = pipeline.classes_
    if len(classes) == n_classes and np.array_equal(classes, np.arange(n_classes)):
        return proba
    full = np.zeros((proba.shape[0], n_classes), dtype=np.float64)
    full[:, np.asarray(classes, dtype=np.int64)] = proba
    return full


def cross_validate(pipeline: Pipeline, params: dict, X, y, folds, n_classes: int) -> list[dict[str, float]]:
    """Fit on each training fold, score every metric on its validation fold."""
    scores = []
    for train, valid in folds:
        model = with_params(pipeline, params).fit(X[train], y[train])
        scores.append(score_all(y[valid], full_proba(model, X[valid], n_classes), n_classes))
    return scores


def summarise(fold_scores: list[dict[str, float]]) -> dict[str, float]:
    """``<metric>_mean`` and ``<metric>_std`` over folds (nan-aware)."""
    out = {}
    for name in fold_scores[0]:
        values = np.array([s[name] for s in fold_scores], dtype=float)
        finite = values[np.isfinite(values)]
        out[f"{name}_mean"] = float(finite.mean()) if finite.size else float("nan")
        out[f"{name}_std"] = float(finite.std()) if finite.size else float("nan")
    return out


def config_space(cfg: DictConfig) -> dict:
    """The model's search space as plain Python (both GP and TPE read this format)."""
    space = cfg.model.get("space") or {}
    return OmegaConf.to_container(space, resolve=True) if isinstance(space, DictConfig) else dict(space)
