"""AutoGluon-Tabular, the strongest AutoML peer of ``python -m wtc.bench quality``.

This module imports nothing of wtc, so that an interpreter with AutoGluon beside it can run it on
matrices exported by the quality benchmark: AutoGluon 1.6.3 cannot be installed beside wtc's pins
(see :data:`CONFLICT`). ``python autogluon_peer.py IN.npz OUT.npz`` reads ``X_train`` (CSR parts),
``y_train``, ``groups_train``, ``X_test``, ``budget_s``, ``seed``, ``n_classes`` and writes ``proba``
and ``wall_s``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

#: Why ``autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3`` is not in the ``bench`` extra
#: (``pip install --dry-run`` into wtc's venv, December 2026).
CONFLICT = ("autogluon.tabular 1.6.3 requires pandas<2.4.0 (wtc pins pandas==3.1.1) and its "
            "autogluon.common pyarrow<25.0.0 (25.0.1 here); its xgboost extra installs xgboost-cpu over xgboost==3.2.0")

#: The column that carries the workflow, kept out of the features by ``group_on``.
GROUP_COLUMN = "__workflow__"
LABEL_COLUMN = "__label__"


def _frame(X, columns):
    import numpy as np
    import pandas as pd

    dense = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    return pd.DataFrame(dense.astype(np.float32), columns=columns)


def fit_autogluon(X_train, y_train, groups_train, X_test, budget_s: float, seed: int, n_classes: int):
    """``best_quality`` for ``budget_s`` seconds on one CPU, folds grouped by workflow; returns
    (test probabilities, one column per class 0..n_classes-1, wall seconds of the fit). ``seed`` is
    kept for the record: AutoGluon draws its folds with its own fixed ``random_state``.

    ``validation_structure={'group_on': ...}`` groups the bagging folds *and* the holdouts by
    workflow (the plain ``groups=`` argument takes the column as fold ids, and its stacking check
    then used an ungrouped holdout that leaks siblings). AutoGluon 1.6.3 keeps a ``group_on`` column
    as a feature, so ``ignored_columns`` drops it; the splits are drawn before that drop.
    """
    import numpy as np
    from autogluon.tabular import TabularPredictor

    columns = [f"f{j}" for j in range(X_train.shape[1])]
    train = _frame(X_train, columns)
    train[GROUP_COLUMN] = np.asarray(groups_train).astype(str)
    train[LABEL_COLUMN] = np.asarray(y_train)
    with tempfile.TemporaryDirectory() as tmp:
        predictor = TabularPredictor(label=LABEL_COLUMN, eval_metric="log_loss", path=tmp,
                                     verbosity=int(os.environ.get("WTC_AUTOGLUON_VERBOSITY", "0")),
                                     problem_type="binary" if n_classes == 2 else "multiclass",
                                     learner_kwargs={"ignored_columns": [GROUP_COLUMN]})
        start = time.perf_counter()
        predictor.fit(train, presets="best_quality", time_limit=budget_s, num_cpus=1, num_gpus=0,
                      validation_structure={"group_on": GROUP_COLUMN})
        wall_s = time.perf_counter() - start
        test = predictor.predict_proba(_frame(X_test, columns))
    proba = np.zeros((X_test.shape[0], n_classes))
    for label in test.columns:  # classes absent from training stay at zero
        proba[:, int(label)] = test[label].to_numpy()
    return proba, wall_s


def main(argv: list[str]) -> int:
    import numpy as np
    import scipy.sparse as sp

    source, target = argv
    z = np.load(source, allow_pickle=False)

    def csr(name):
        return sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]), shape=z[f"{name}_shape"])

    proba, wall_s = fit_autogluon(csr("X_train"), z["y_train"], z["groups_train"], csr("X_test"),
                                  float(z["budget_s"]), int(z["seed"]), int(z["n_classes"]))
    np.savez(target, proba=proba, wall_s=wall_s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
