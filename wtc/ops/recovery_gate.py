"""The recovery recommender's joint gate at promotion: the parts' out-of-fold predictions of one training split.

Each part's run logged its own split (stratified by its own target, so its held-out tasks differ
from the action's); the whole recommendation needs every part's prediction on the *same* tasks,
none of which the part learned from. So every part is refitted (its logged pipeline's
hyper-parameters, :func:`sklearn.base.clone`) on the workflow-grouped folds of the action run's
training split and predicts each fold's held-out workflows; those out-of-fold rows certify the
joint and the action thresholds (:func:`wtc.inference.joint.certify_gate`). The action run's test
split is never read.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import clone

from wtc.errors import WtcError
from wtc.inference.joint import JointGate, certify_gate, combine
from wtc.ops.baselines import run_config

__all__ = ["certify_recovery"]

log = logging.getLogger(__name__)


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
    from wtc.models.pipeline import fit_grouped, full_proba

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
        X, y = data.X[train], data.y[train]
        proba = np.zeros((len(train), len(data.classes)))
        for fit_rows, valid_rows in splits.folds:
            model = fit_grouped(clone(pipelines[target]), X[fit_rows], y[fit_rows], groups[fit_rows])
            proba[valid_rows] = full_proba(model, X[valid_rows], len(data.classes))
        oof[target], classes[target] = proba, list(data.classes)
        log.info("%s: out-of-fold predictions on %d training tasks (%d folds)", target, len(train), len(splits.folds))
    history = load_history(datasets["action"].path)
    records = [p for p in history.parameter_records if p is not None]
    truth = [recovery_key(records[i]) for i in train]
    return certify_gate(combine(oof, classes), truth, groups, mode=mode, alpha=alpha, delta=delta)
