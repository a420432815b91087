"""Which figures, tables and diagnostic metrics a run logs, decided from what the run produced.

The orchestrator hands a :class:`RunOutcome` over and logs what comes back; the level
(``diagnostics=full|light|none``) decides what is computed. Expensive diagnostics reuse what
the search already fitted where they can (the CV ROC reads the best trial's fold predictions).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from wtc.evaluation import plots
from wtc.evaluation.automation import automation_figure, coverage_at_precision
from wtc.evaluation.curves import learning_curve_figure, training_curves_figure
from wtc.evaluation.importance import feature_importance_figure, importance_figure, permutation_importance_by_group
from wtc.evaluation.metrics import METRICS, REGISTRY, objective_value, score_all
from wtc.evaluation.overtraining import overtraining_figure

__all__ = ["AUTOMATION_PRECISIONS", "FIGURE_INPUTS", "FigureInputs", "RunOutcome", "automation_metrics", "draw_figures",
           "figures_on_demand", "model_importances", "pr_points", "roc_points", "run_figures"]

log = logging.getLogger(__name__)

#: Precision targets of the automation curve: ``coverage_at_p90`` ... ``coverage_at_p99``.
AUTOMATION_PRECISIONS = (0.90, 0.95, 0.99)


@dataclass
class RunOutcome:
    """What a finished run hands to its diagnostics: labels, probabilities, the search, the model."""

    classes: list[str]
    feature_names: list[str]
    X: object                   # every labelled row (CSR)
    y: np.ndarray               # every labelled row's class
    train: np.ndarray           # row indices of the training split
    test: np.ndarray            # row indices of the held-out split
    train_proba: np.ndarray
    test_proba: np.ndarray
    pipeline: object            # the refitted pipeline (an ensemble's first member)
    unfitted: object            # the pipeline with the best parameters, not fitted (for learning curves)
    searcher: object            # the search back-end after the last trial
    values: list[float]         # every trial's objective value
    metric: str                 # the search objective's metric name
    folds: list = field(default_factory=list)                 # CV (train, validation) indices into train
    fold_predictions: list | None = None                      # the best trial's (y_valid, proba) per fold
    oracle_test: np.ndarray | None = None                     # the oracle's probabilities on the test rows
    options: Mapping = field(default_factory=dict)            # the diagnostics config node
    seed: int = 0
    tables: dict = field(default_factory=dict)                # filled: artifact path -> DataFrame
    model: object | None = None                               # the logged model, when not ``pipeline``
    test_proba_uncalibrated: np.ndarray | None = None         # the test probabilities before calibration


def automation_metrics(y_true, proba, prefix: str) -> dict[str, float]:
    """``<prefix>/coverage_at_p90|95|99``: the share of tasks a model could act on alone at that precision."""
    out = {}
    for target in AUTOMATION_PRECISIONS:
        coverage, _ = coverage_at_precision(y_true, proba, target)
        out[f"{prefix}/coverage_at_p{round(target * 100)}"] = float(coverage)
    return out


def _positives(y_true, proba) -> tuple[np.ndarray, np.ndarray]:
    """(is positive, score) of the curves: binary, class 1 against P(class 1); multi-class, every
    (task, class) pair one-vs-rest, pooled (the micro-average)."""
    y_true, proba = np.asarray(y_true), np.asarray(proba)
    if proba.shape[1] == 2:
        return y_true == 1, proba[:, 1]
    return (y_true[:, None] == np.arange(proba.shape[1])[None, :]).ravel(), proba.ravel()


def roc_points(y_true, proba) -> dict:
    """The test ROC as points (binary: P(class 1); multi-class: micro-average), for overlays in reports."""
    from sklearn.metrics import roc_auc_score, roc_curve

    truth, score = _positives(y_true, proba)
    if truth.all() or not truth.any():
        return {}
    fpr, tpr, _ = roc_curve(truth, score)
    return {"fpr": fpr.round(5).tolist(), "tpr": tpr.round(5).tolist(), "auc": float(roc_auc_score(truth, score))}


#: At most this many points of a logged precision-recall curve (it has one per distinct score).
PR_POINTS = 400


def pr_points(y_true, proba) -> dict:
    """The test precision-recall curve as points, from the same rows and scores as :func:`roc_points`
    (binary: class 1; multi-class: micro-average), with its average precision and the positives'
    share (the precision of a random ranking), for overlays in reports."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    truth, score = _positives(y_true, proba)
    if truth.all() or not truth.any():
        return {}
    precision, recall, _ = precision_recall_curve(truth, score, drop_intermediate=True)
    keep = np.unique(np.linspace(0, len(recall) - 1, min(len(recall), PR_POINTS)).round().astype(int))
    return {"precision": precision[keep].round(5).tolist(), "recall": recall[keep].round(5).tolist(),
            "average_precision": float(average_precision_score(truth, score)), "prevalence": float(truth.mean())}


def model_importances(pipeline, n_features: int) -> np.ndarray | None:
    """The model step's own importances (``feature_importances_``, else summed ``|coef_|``), if it
    has one per input column."""
    model = pipeline.named_steps["model"]
    importances = getattr(model, "feature_importances_", None)
    if importances is None and getattr(model, "coef_", None) is not None:
        importances = np.abs(np.asarray(model.coef_)).sum(axis=0)
    if importances is None or len(importances) != n_features:
        return None
    return np.asarray(importances)


def _model_input(pipeline, X):
    """X as the model step sees it at prediction time (scalers applied, samplers skipped)."""
    for _, step in pipeline.steps[:-1]:
        if hasattr(step, "transform") and not hasattr(step, "fit_resample"):
            X = step.transform(X)
    return X


def _staged_log_loss(model, X, y, n_classes: int) -> tuple[list[int], list[float]] | None:
    """Log-loss after each boosting round (sampled), for XGBoost, LightGBM and scikit-learn boosting."""
    def loss(proba):
        full = np.zeros((proba.shape[0], n_classes))
        full[:, np.asarray(model.classes_, dtype=int)] = proba
        return REGISTRY["log_loss"].compute(y, full, n_classes)

    if hasattr(model, "staged_predict_proba"):
        staged = list(model.staged_predict_proba(X))
        rounds = list(range(1, len(staged) + 1))
        return rounds, [loss(p) for p in staged]
    n_rounds = getattr(model, "n_estimators", None)
    if n_rounds is None:
        return None
    rounds = sorted({int(r) for r in np.linspace(1, n_rounds, num=min(25, n_rounds))})
    if hasattr(model, "get_booster"):  # XGBoost
        return rounds, [loss(model.predict_proba(X, iteration_range=(0, r))) for r in rounds]
    if hasattr(model, "booster_"):  # LightGBM
        return rounds, [loss(model.predict_proba(X, num_iteration=r)) for r in rounds]
    return None


def training_history(outcome: RunOutcome) -> dict | None:
    """Arguments of ``training_curves_figure``: loss per epoch (a DNN's own history, with its
    validation slice and early-stopping point) or per boosting round (train vs held-out test)."""
    model = outcome.pipeline.named_steps["model"]
    history = getattr(model, "history_", None)
    if isinstance(history, Mapping) and history:
        best = getattr(model, "best_epoch_", None)
        return {"history": {str(k): list(map(float, v)) for k, v in history.items()},
                "best_iteration": None if best is None else int(best) + 1, "xlabel": "epoch"}
    n_classes = len(outcome.classes)
    curves = {}
    for name, rows in (("train", outcome.train), ("test", outcome.test)):
        staged = _staged_log_loss(model, _model_input(outcome.pipeline, outcome.X[rows]), outcome.y[rows], n_classes)
        if staged is None:
            return None
        rounds, losses = staged
        curves[f"{name} log_loss"] = losses
    return {"history": curves, "xlabel": "boosting round", "steps": rounds}


def _scorer(metric: str, n_classes: int):
    from wtc.models.pipeline import full_proba

    def score(estimator, X, y):
        return -objective_value(metric, score_all(y, full_proba(estimator, X, n_classes), n_classes))

    # Figures name the score: larger is better, so a minimised metric shows negated.
    score.__name__ = metric if METRICS[metric].greater_is_better else f"-{metric}"
    return score


def _learning_curve(outcome: RunOutcome):
    from sklearn.model_selection import learning_curve

    X, y = outcome.X[outcome.train], outcome.y[outcome.train]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small subset may miss a rare class: its fold scores nan
        sizes, train_scores, valid_scores = learning_curve(
            outcome.unfitted, X, y, cv=outcome.folds, train_sizes=np.linspace(0.2, 1.0, 4),
            scoring=_scorer(outcome.metric, len(outcome.classes)), error_score=np.nan)
    sign = 1.0 if METRICS[outcome.metric].greater_is_better else -1.0
    return learning_curve_figure(sizes, sign * train_scores, sign * valid_scores, outcome.metric)


#: The artifact holding what the cheap figures are drawn from, in a run whose figures are drawn on demand.
FIGURE_INPUTS = "figures/inputs.npz"


@dataclass
class FigureInputs:
    """What a run's everyday figures are drawn from: labels, probabilities, trial values, importances.

    Small (30-160 kB compressed a run on the default benchmark), so a sweep can log it in
    place of the figures (``diagnostics.figures: on_demand``) and the PNGs are drawn later, from
    exactly these numbers, by :func:`draw_figures` (``wtc runs figures``).
    """

    classes: list[str]
    y_train: np.ndarray
    train_proba: np.ndarray
    y_test: np.ndarray
    test_proba: np.ndarray
    class_counts: np.ndarray                         # labelled rows per class, train and test
    values: list[float]                              # every trial's objective value
    metric: str
    fold_predictions: list | None = None             # the best trial's (y_valid, proba) per fold
    oracle_test: np.ndarray | None = None
    test_proba_uncalibrated: np.ndarray | None = None
    importances: np.ndarray | None = None            # the model's own, one per feature
    feature_names: list[str] | None = None

    @classmethod
    def from_outcome(cls, outcome: RunOutcome) -> FigureInputs:
        """The inputs of a finished run; the CV ROC's folds only when its options want them."""
        importances = model_importances(outcome.pipeline, len(outcome.feature_names))
        folds = outcome.fold_predictions if outcome.options.get("cv_roc", True) else None
        return cls(list(outcome.classes), outcome.y[outcome.train], outcome.train_proba, outcome.y[outcome.test],
                   outcome.test_proba, np.bincount(outcome.y, minlength=len(outcome.classes)),
                   [float(v) for v in outcome.values], outcome.metric, list(folds) if folds else None,
                   outcome.oracle_test, outcome.test_proba_uncalibrated, importances,
                   list(outcome.feature_names) if importances is not None else None)

    def save(self, path) -> None:
        """Write the inputs as one compressed ``.npz`` (no pickles: plain arrays and strings)."""
        arrays = {"classes": np.asarray(self.classes, dtype=str), "y_train": self.y_train,
                  "train_proba": self.train_proba, "y_test": self.y_test, "test_proba": self.test_proba,
                  "class_counts": self.class_counts, "values": np.asarray(self.values, dtype=float),
                  "metric": np.asarray(self.metric)}
        if self.fold_predictions:
            arrays["fold_y"] = np.concatenate([np.asarray(y) for y, _ in self.fold_predictions])
            arrays["fold_proba"] = np.concatenate([np.asarray(p) for _, p in self.fold_predictions])
            arrays["fold_sizes"] = np.asarray([len(y) for y, _ in self.fold_predictions])
        for name in ("oracle_test", "test_proba_uncalibrated", "importances"):
            if getattr(self, name) is not None:
                arrays[name] = np.asarray(getattr(self, name))
        if self.feature_names is not None:
            arrays["feature_names"] = np.asarray(self.feature_names, dtype=str)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> FigureInputs:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        folds = None
        if "fold_sizes" in a:
            ends = np.cumsum(a["fold_sizes"])[:-1]
            folds = list(zip(np.split(a["fold_y"], ends), np.split(a["fold_proba"], ends)))
        return cls(a["classes"].tolist(), a["y_train"], a["train_proba"], a["y_test"], a["test_proba"],
                   a["class_counts"], a["values"].tolist(), str(a["metric"]), folds, a.get("oracle_test"),
                   a.get("test_proba_uncalibrated"), a.get("importances"),
                   a["feature_names"].tolist() if "feature_names" in a else None)


def draw_figures(inputs: FigureInputs) -> Iterator[tuple[str, object]]:
    """``(artifact path, figure)`` for a run's everyday figures, drawn from its :class:`FigureInputs`:
    ROC, CV ROC, confusion matrices, over-training, calibration, class balance, the automation
    curve, convergence and the model's own feature importances."""
    classes, y_test, test_proba = inputs.classes, inputs.y_test, inputs.test_proba
    yield "plots/roc.png", plots.roc_figure(y_test, test_proba, classes)
    if inputs.fold_predictions:
        yield "plots/cv_roc.png", plots.cv_roc_figure(inputs.fold_predictions, classes)
    yield "plots/confusion_matrix.png", plots.confusion_matrix_figure(y_test, test_proba.argmax(axis=1), classes)
    yield "plots/overtraining.png", overtraining_figure(inputs.y_train, inputs.train_proba, y_test, test_proba, classes)
    yield "plots/calibration.png", plots.calibration_figure(y_test, test_proba, classes,
                                                            before=inputs.test_proba_uncalibrated)
    yield "plots/class_balance.png", plots.class_balance_figure(inputs.class_counts, classes)
    curves = {"model": (y_test, test_proba)}
    if inputs.oracle_test is not None:
        curves["oracle"] = (y_test, inputs.oracle_test)
    yield "plots/automation.png", automation_figure(curves, AUTOMATION_PRECISIONS)
    if len(inputs.values) > 1:
        yield "plots/convergence.png", plots.convergence_figure(inputs.values, inputs.metric,
                                                                METRICS[inputs.metric].greater_is_better)
    if inputs.importances is not None:
        yield "plots/feature_importance.png", feature_importance_figure(inputs.importances, inputs.feature_names)


def figures_on_demand(options: Mapping) -> bool:
    """Whether a run logs its everyday figures' inputs instead of drawing them (``figures: on_demand``)."""
    return options.get("figures", "now") == "on_demand"


def run_figures(outcome: RunOutcome) -> Iterator[tuple[str, object]]:
    """``(artifact path, figure)`` for every figure the run's record holds at its diagnostics level.

    The everyday figures (:func:`draw_figures`) come first, unless they are drawn on demand;
    then those that need the model or the search (search surfaces, training and learning
    curves, permutation importance) where the level asks for them. Tables (grouped
    importances) land in ``outcome.tables``.
    """
    options = outcome.options
    if not figures_on_demand(options):
        yield from draw_figures(FigureInputs.from_outcome(outcome))
    if options.get("search_surfaces", True):
        # Only the GP back-end has a surrogate to show (``result`` is its OptimizeResult).
        figure = plots.partial_dependence_figure(getattr(outcome.searcher, "result", None))
        if figure is not None:
            yield "plots/partial_dependence.png", figure
        yield from _optuna_figures(outcome.searcher)
    if options.get("training_curves", True):
        history = training_history(outcome)
        if history is not None:
            yield "plots/training_curves.png", training_curves_figure(**history)
    if options.get("learning_curve", False) and outcome.folds:
        yield "plots/learning_curve.png", _learning_curve(outcome)
    if options.get("permutation_importance", False):
        model = outcome.model if outcome.model is not None else outcome.pipeline
        table = permutation_importance_by_group(
            model, outcome.X[outcome.test], outcome.y[outcome.test], outcome.feature_names,
            scoring=_scorer(outcome.metric, len(outcome.classes)), n_repeats=int(options.get("importance_repeats", 5)),
            random_state=outcome.seed, max_features=options.get("importance_max_groups"))
        outcome.tables["importance/permutation_by_group.csv"] = table
        yield "plots/permutation_importance.png", importance_figure(table)


def _optuna_figures(searcher) -> Iterator[tuple[str, object]]:
    """Optuna's parameter importances and optimisation history, for a TPE search of 3+ finished trials."""
    study = getattr(searcher, "study", None)
    if study is None:
        return
    import optuna
    from optuna.trial import TrialState

    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if len(finished) < 3 or len(study.best_trial.params) < 1:
        return
    from optuna.visualization import matplotlib as optuna_plots

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, draw in (("param_importances", optuna_plots.plot_param_importances),
                           ("optimization_history", optuna_plots.plot_optimization_history)):
            try:
                axes = draw(study)
            except (ValueError, RuntimeError) as exc:  # e.g. every trial had the same value
                log.info("optuna %s not drawn: %s", name, exc)
                continue
            figure = np.ravel(axes)[0].figure if isinstance(axes, np.ndarray) else axes.figure
            figure.set_size_inches(7, 4.5)
            figure.tight_layout()
            yield f"plots/optuna_{name}.png", figure
