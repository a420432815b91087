"""Per-class tables of a fitted model's predictions, tidy enough to log with ``mlflow.log_table``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

__all__ = ["per_class_table"]


def per_class_table(y_true, proba, classes: Sequence[str]) -> pd.DataFrame:
    """Support, precision, recall, F1 and one-vs-rest ROC AUC of each class.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices in ``[0, len(classes))``.
    proba : array-like of float, shape (n_samples, n_classes)
        Predicted class probabilities; predictions are their argmax.
    classes : sequence of str
        Name of each class (column of ``proba``).

    Returns
    -------
    pandas.DataFrame
        One row per class, in column order of ``proba``: ``class``, ``support`` (true rows),
        ``precision``, ``recall``, ``f1`` (0 where undefined, as scikit-learn's
        ``zero_division=0``), ``roc_auc`` (one-vs-rest on the class's own probability; nan
        when the class has no true rows or only true rows), ``mean_proba`` (mean predicted
        probability of the class over all rows), ``share_true`` and ``share_predicted``
        (share of rows that are, or are predicted as, the class).
    """
    y_true = np.asarray(y_true).astype(int, copy=False).ravel()
    proba = np.asarray(proba, dtype=float)
    n_classes = len(classes)
    if proba.ndim != 2 or proba.shape != (y_true.size, n_classes):
        raise ValueError(f"proba must have shape ({y_true.size}, {n_classes}), got {proba.shape}")
    y_pred = proba.argmax(axis=1)
    labels = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    auc = np.full(n_classes, np.nan)
    for k in labels:
        positives = y_true == k
        if positives.any() and not positives.all():
            auc[k] = roc_auc_score(positives, proba[:, k])
    n = max(y_true.size, 1)
    return pd.DataFrame({
        "class": list(classes),
        "support": support.astype(int),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": auc,
        "mean_proba": proba.mean(axis=0) if y_true.size else np.full(n_classes, np.nan),
        "share_true": np.bincount(y_true, minlength=n_classes)[:n_classes] / n,
        "share_predicted": np.bincount(y_pred, minlength=n_classes)[:n_classes] / n,
    })
