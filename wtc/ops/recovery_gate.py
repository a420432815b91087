"""The recovery recommender's joint gate at promotion: the parts' out-of-fold predictions of one training split.

Each part's run logged its own split (stratified by its own target, so its held-out tasks differ
from the action's); the whole recommendation needs every part's prediction on the *same* tasks,
none of which the part learned from. So every part is refitted (its logged pipeline's
hyper-parameters, :func:`sklearn.base.clone`) on the workflow-grouped folds of the action run's
training split and predicts each fold's held-out workflows (a calibrated fold ensemble, the
champion recipe, is refitted as its run built its own out-of-fold rows: one member per fold, then
its calibrator); those out-of-fold rows certify the joint and the action thresholds
(:func:`wtc.inference.joint.certify_gate`). The action run's test split is never read.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import clone

from wtc.errors import WtcError
from wtc.inference.joint import JointGate, certify_gate, combine
from wtc.ops.baselines import run_config

__all__ = ["certify_recovery", "out_of_fold"]

log = logging.getLogger(__name__)


def _recipe(model) -> tuple[object, object | None]:
    """What a logged part is made of: the pipeline whose clone is refitted per fold, and the unfitted
    calibrator its run fitted on its out-of-fold rows (None: none).

    A part of the champion recipe is a calibrated fold ensemble (``calibration=…``, ``ensemble=folds|top_k``):
    its members share the best trial's hyper-parameters (``top_k``: the first is the best trial's), and its
    run's out-of-fold rows are one member per fold, calibrated. Refitting one member's clone per fold and
    calibrating those rows the same way gives that, on the action run's folds (cloning the whole wrapper
    would fit every member on the same rows and calibrate on folds that split workflows).
    """
    from wtc.models.calibration import CalibratedClassifier
    from wtc.run.refit import inner_pipeline

    return inner_pipeline(model), model.new_calibrator() if isinstance(model, CalibratedClassifier) else None


def out_of_fold(pipeline, X, y, groups, folds, n_classes: int) -> np.ndarray:
    """A part's out-of-fold probabilities on other folds than its run's: per fold a clone of its recipe
    (:func:`_recipe`) fitted on the other folds' rows (grouped early stopping as in a run), then its
    calibrator, if any, fitted on all those rows, as its run calibrated its own."""
    from wtc.models.pipeline import fit_grouped, full_proba

    recipe, calibrator = _recipe(pipeline)
    proba = np.zeros((len(y), n_classes))
    for fit_rows, valid_rows in folds:
        model = fit_grouped(clone(recipe), X[fit_rows], y[fit_rows], groups[fit_rows])
        proba[valid_rows] = full_proba(model, X[valid_rows], n_classes)
    if calibrator is not None:
        proba = calibrator.fit(proba, y).transform(proba)
    return proba


def certify_recovery(client, runs: dict, pipelines: dict, mode: str = "joint", alpha: float = 0.05,
                     delta: float = 0.1) -> JointGate:
    """Certify the recommender's joint and action thresholds on its parts' out-of-fold predictions.

    Parameters
    ----------
    client : mlflow.MlflowClient
    runs : mapping of part name to mlflow Run
        ``action`` first; every run must have learned from the same history (content hash).
    pipelines : mapping of part name to fitted pipeline
        Each part's logged pipeline (only its hyper-parameters are used: it is cloned and refitted).
    mode, alpha, delta
        As for :func:`wtc.inference.joint.certify_gate`.

    Returns
    -------
    JointGate
    """
    from wtc.data.dataset import config_splits, load_dataset
    from wtc.data.loader import load_history
    from wtc.data.targets import recovery_key

    datasets, splits = {}, None
    for target, run in runs.items():
        cfg = run_config(client, run)
        data = load_dataset(cfg)
        if data.content_hash != run.data.params.get("data.content_hash"):
            raise WtcError(f"the history of run {run.info.run_id} ({target}) changed since it ran "
                           f"({data.path}: content hash {data.content_hash[:12]})")
        if datasets and data.content_hash != datasets["action"].content_hash:
            raise WtcError(f"the {target} part (run {run.info.run_id}) learned from another history than the action "
                           f"part: the joint gate needs every part's prediction on the same tasks")
        datasets[target] = data
        if splits is None:
            splits = config_splits(cfg, data)
    train = splits.train
    groups = datasets["action"].groups[train]
    oof, classes = {}, {}
    for target, data in datasets.items():
        oof[target] = out_of_fold(pipelines[target], data.X[train], data.y[train], groups, splits.folds,
                                  len(data.classes))
        classes[target] = list(data.classes)
        log.info("%s: out-of-fold predictions on %d training tasks (%d folds)", target, len(train), len(splits.folds))
    history = load_history(datasets["action"].path)
    records = [p for p in history.parameter_records if p is not None]
    truth = [recovery_key(records[i]) for i in train]
    return certify_gate(combine(oof, classes), truth, groups, mode=mode, alpha=alpha, delta=delta)
