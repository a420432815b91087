"""The model a run logs: the refit of the best trial or an ensemble of fits, calibrated on out-of-fold predictions.

An ``ensemble`` option names one class of this module (``_target_``): ``ensemble=none``
(:class:`Refit`) refits the best parameters on the whole training split; ``ensemble=folds``
(:class:`FoldsEnsemble`) averages one model per CV fold of the best trial (bagging over folds;
an early-stopped booster stops on its fold's validation rows); ``ensemble=top_k``
(:class:`TopKEnsemble`) averages the refits of the ``k`` best trials. A ``calibration`` option
names a :class:`~wtc.models.calibration.ProbabilityCalibrator` that then maps the probabilities,
fitted on out-of-fold predictions of the training split: never on a test row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from wtc.evaluation.metrics import REGISTRY
from wtc.models.calibration import CalibratedClassifier, ProbabilityCalibrator
from wtc.models.early_stopping import EarlyStoppingClassifier
from wtc.models.ensemble import AveragingClassifier
from wtc.models.pipeline import MODEL_STEP, full_proba, with_params

__all__ = ["OOF_ARTIFACT", "FinalModel", "FoldsEnsemble", "Refit", "TopKEnsemble", "fit_final_model",
           "inner_pipeline", "oof_rows", "refit_params"]

#: The run artifact holding the out-of-fold rows the AUTO gate is certified on (``y``, ``proba``
#: as the logged model's calibration maps them, ``groups``: each row's workflow, ``rows``: its
#: index in the training split).
OOF_ARTIFACT = "predictions/oof.npz"

log = logging.getLogger(__name__)


@dataclass
class FinalModel:
    """What the refit produced.

    ``model`` is what the run scores and logs (probabilities over every class, calibrated when
    asked); ``uncalibrated`` the same before calibration; ``base`` a plain fitted pipeline inside
    it (its parameters, importances and training curves are what the run reports);
    ``unfitted`` that pipeline's unfitted twin (for learning curves); ``oof`` the out-of-fold
    (labels, probabilities) of the training split in fold order (see :func:`oof_rows`), through
    the calibration when there is one: what the AUTO gate is certified on (None when the search
    kept none).
    """

    model: object
    uncalibrated: object
    base: object
    unfitted: object
    members: int = 1
    iterations: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    oof: tuple | None = None


def oof_rows(folds) -> np.ndarray:
    """The training-split rows of :attr:`FinalModel.oof`, in its order: each fold's validation rows."""
    return np.concatenate([np.asarray(valid) for _, valid in folds]) if len(folds) else np.zeros(0, int)


def inner_pipeline(model):
    """The first plain pipeline inside a calibrated model or an ensemble (the model itself otherwise)."""
    while not hasattr(model, "named_steps"):
        inner = getattr(model, "estimator_", None) or (getattr(model, "estimators_", None) or [None])[0]
        if inner is None:
            return model
        model = inner
    return model


def refit_params(pipeline, params: Mapping, iterations: Sequence[int] | int | None) -> dict:
    """``params`` plus ``refit_iterations`` (the median of the folds' picked rounds) for an
    early-stopping model; unchanged for any other model."""
    out = dict(params)
    if isinstance(iterations, Sequence):
        iterations = max(1, int(round(float(np.median(iterations))))) if len(iterations) else None
    if iterations is not None and "refit_iterations" in pipeline.named_steps[MODEL_STEP].get_params():
        out["refit_iterations"] = int(iterations)
    return out


def _log_loss(y, proba, n_classes: int) -> float:
    return float(REGISTRY["log_loss"].compute(np.asarray(y), np.asarray(proba), n_classes))


def _ranked_trials(tuning) -> list:
    """Finished trials, best first (ties keep the earlier one)."""
    finished = [t for t in tuning.trials if np.isfinite(t.value)]
    return sorted(finished, key=lambda t: (t.value, t.index))


def _fit_stopping_on(member, X, y, X_val, y_val):
    """Fit a pipeline whose model is an :class:`EarlyStoppingClassifier` on ``X, y``, the booster
    stopping on ``X_val, y_val`` (passed through the fitted scaler; samplers touch training rows only)."""
    for _, step in member.steps[:-1]:
        if hasattr(step, "fit_resample"):
            X, y = step.fit_resample(X, y)
        else:
            X = step.fit_transform(X, y)
            X_val = step.transform(X_val)
    member.steps[-1][1].fit(X, y, validation=(X_val, y_val))
    return member


def _fold_members(pipeline, best, X, y, folds, n_classes: int):
    """One model per CV fold of the best trial, fitted on that fold's training rows, and their
    predictions on the fold's validation rows.

    An early-stopped booster stops on its fold's validation rows (grouped by workflow, like the
    folds; the inner split of a CV trial is not, and its rounds run long on sibling tasks), so
    each member keeps its own rounds; those out-of-fold predictions then saw their rows pick
    the rounds, which is a little optimistic for a calibrator. Any other model is fitted as in
    the trial, and its out-of-fold predictions are the trial's own.
    """
    members, y_oof, proba_oof = [], [], []
    for train, valid in folds:
        member = with_params(pipeline, best.params)
        model = member.named_steps[MODEL_STEP]
        if isinstance(model, EarlyStoppingClassifier) and model.refit_iterations is None:
            member = _fit_stopping_on(member, X[train], y[train], X[valid], y[valid])
        else:
            member.fit(X[train], y[train])
        members.append(member)
        y_oof.append(y[valid])
        proba_oof.append(full_proba(member, X[valid], n_classes))
    return members, np.concatenate(y_oof), np.vstack(proba_oof)


def _best_oof(tuning) -> tuple[np.ndarray, np.ndarray] | None:
    """The best trial's out-of-fold (labels, probabilities), or None when it kept none."""
    best = tuning.best
    if best is None or not best.fold_predictions:
        return None
    return (np.concatenate([yv for yv, _ in best.fold_predictions]),
            np.vstack([p for _, p in best.fold_predictions]))


class Refit:
    """``ensemble=none``: one model, the best trial's parameters refitted on the whole training split.

    Each ensemble class's ``fit(pipeline, tuning, X, y, folds, n_classes)`` returns the
    :class:`FinalModel` and the out-of-fold (labels, probabilities) a calibrator may learn from
    (None when there are none); its ``kind`` is the option's logged name (``ensemble``).
    """

    kind = "none"

    def fit(self, pipeline, tuning, X, y, folds, n_classes: int) -> tuple[FinalModel, tuple | None]:
        unfitted = with_params(pipeline, refit_params(pipeline, tuning.best_params, tuning.best_iterations))
        model = with_params(unfitted, {}).fit(X, y)
        return FinalModel(model, model, model, unfitted), _best_oof(tuning)


class FoldsEnsemble:
    """``ensemble=folds``: the best trial's fold models averaged (see :func:`_fold_members`); the
    members' own out-of-fold predictions are what a calibrator learns from. No finished trial: :class:`Refit`."""

    kind = "folds"

    def fit(self, pipeline, tuning, X, y, folds, n_classes: int) -> tuple[FinalModel, tuple | None]:
        best = tuning.best
        if best is None:
            return Refit().fit(pipeline, tuning, X, y, folds, n_classes)
        members, *oof = _fold_members(pipeline, best, X, y, folds, n_classes)
        model = AveragingClassifier.from_fitted(members, np.arange(n_classes))
        unfitted = with_params(pipeline, refit_params(pipeline, best.params, best.fold_iterations))
        return FinalModel(model, model, members[0], unfitted, members=len(members)), tuple(oof)


class TopKEnsemble:
    """``ensemble=top_k``: the ``k`` best trials (fewer when fewer finished), each refitted on the
    whole training split, probabilities averaged. No finished trial: :class:`Refit`.

    Parameters
    ----------
    k : int
        Members (at least 1; its integer text is accepted, as an environment interpolation gives).
    """

    kind = "top_k"

    def __init__(self, k: int):
        if int(k) < 1:
            raise ValueError(f"ensemble.k must be at least 1, got {k}")
        self.k = int(k)

    def fit(self, pipeline, tuning, X, y, folds, n_classes: int) -> tuple[FinalModel, tuple | None]:
        best = tuning.best
        if best is None:
            return Refit().fit(pipeline, tuning, X, y, folds, n_classes)
        members = []
        for trial in _ranked_trials(tuning)[:self.k]:
            unfitted = with_params(pipeline, refit_params(pipeline, trial.params, trial.fold_iterations))
            members.append(unfitted.fit(X, y))
        model = AveragingClassifier.from_fitted(members, np.arange(n_classes))
        unfitted = with_params(pipeline, refit_params(pipeline, best.params, best.fold_iterations))
        return FinalModel(model, model, members[0], unfitted, members=len(members)), _best_oof(tuning)


def fit_final_model(pipeline, tuning, X, y, folds, n_classes: int, ensemble=None,
                    calibrator: ProbabilityCalibrator | None = None) -> FinalModel:
    """Fit the model a run logs, from the search's result, on the training split only.

    Parameters
    ----------
    pipeline : imblearn Pipeline
        The run's unfitted pipeline.
    tuning : wtc.tuning.TuningResult
        The search (its best trial's parameters, fold rounds and fold predictions).
    X, y : sparse matrix, array
        The training split (the rows ``folds`` index).
    folds : sequence of (train, validation) index arrays
        The CV folds of the search.
    n_classes : int
    ensemble : Refit, FoldsEnsemble, TopKEnsemble or alike, optional
        What the ``ensemble`` option builds; None: :class:`Refit`.
    calibrator : ProbabilityCalibrator, optional
        Unfitted, what the ``calibration`` option builds; None: no calibration.

    Returns
    -------
    FinalModel
    """
    result, oof = (ensemble if ensemble is not None else Refit()).fit(pipeline, tuning, X, y, folds, n_classes)
    result.iterations = tuning.best_iterations
    result.oof = oof
    if calibrator is not None:
        if oof is None:
            log.warning("calibration=%s skipped: the search kept no out-of-fold predictions", calibrator.method)
        else:
            result.model = CalibratedClassifier.from_predictions(result.uncalibrated, oof[0], oof[1], calibrator)
            after = result.model.calibrator_.transform(oof[1])
            result.oof = (oof[0], after)
            result.metrics = {"calibration/oof_rows": float(oof[0].size),
                              "calibration/oof_log_loss_before": _log_loss(oof[0], oof[1], n_classes),
                              "calibration/oof_log_loss_after": _log_loss(oof[0], after, n_classes)}
            result.metrics.update({f"calibration/{k}": v for k, v in result.model.calibrator_.metrics.items()})
    result.metrics["refit/members"] = float(result.members)
    return result
