"""The per-class metrics table a run logs (mlflow.log_table)."""

import numpy as np
import pytest

from wtc.evaluation.tables import per_class_table


def test_per_class_table_by_hand():

    y_true = [0, 0, 1, 1, 2]
    proba = np.array([[0.7, 0.2, 0.1, 0.0], [0.3, 0.6, 0.1, 0.0], [0.2, 0.7, 0.1, 0.0],
                      [0.1, 0.8, 0.1, 0.0], [0.5, 0.2, 0.3, 0.0]])  # predicted 0, 1, 1, 1, 0
    table = per_class_table(y_true, proba, ["acdc", "clone", "special", "absent"])
    assert list(table.columns) == ["class", "support", "precision", "recall", "f1", "roc_auc",
                                   "mean_proba", "share_true", "share_predicted"]
    assert table["class"].tolist() == ["acdc", "clone", "special", "absent"]
    np.testing.assert_array_equal(table["support"], [2, 2, 1, 0])
    np.testing.assert_allclose(table["precision"], [1 / 2, 2 / 3, 0, 0])
    np.testing.assert_allclose(table["recall"], [1 / 2, 1, 0, 0])
    np.testing.assert_allclose(table["f1"], [1 / 2, 0.8, 0, 0])
    # acdc: positives score 0.7, 0.3 against negatives 0.2, 0.1, 0.5: 5 of 6 pairs in order.
    np.testing.assert_allclose(table["roc_auc"], [5 / 6, 1.0, 1.0, np.nan])
    np.testing.assert_allclose(table["mean_proba"], [0.36, 0.5, 0.14, 0.0])
    np.testing.assert_allclose(table["share_true"], [0.4, 0.4, 0.2, 0.0])
    np.testing.assert_allclose(table["share_predicted"], [0.4, 0.6, 0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        per_class_table(y_true, proba[:, :3], ["acdc", "clone", "special", "absent"])
