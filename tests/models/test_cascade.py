"""The cascade: probabilities that sum to one, a stage 2 that never sees the first class, a real run."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from wtc.models import CascadeClassifier


class Recorder(ClassifierMixin, BaseEstimator):
    """A stage that remembers the rows it was fitted on and predicts its class prior."""

    def fit(self, X, y):
        self.seen_X_ = X.copy()
        self.seen_y_ = np.asarray(y).copy()
        self.classes_, counts = np.unique(y, return_counts=True)
        self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, X):
        return np.tile(self.prior_, (X.shape[0], 1))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=300, p=[0.55, 0.2, 0.15, 0.1])
    noise = sp.random(300, 11, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    # Column 0 holds each row's class + 1: rows stay traceable through a stage.
    X = sp.hstack([sp.csr_matrix((y + 1.0).astype(np.float32)[:, None]), noise], format="csr")
    return X, y


def test_probabilities_sum_to_one_and_combine_the_stages(data):
    X, y = data
    model = CascadeClassifier(LogisticRegression(max_iter=500), DecisionTreeClassifier(max_depth=3, random_state=0))
    proba = model.fit(X, y).predict_proba(X)
    assert proba.shape == (300, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert model.first_class_ == 0  # the most frequent class by default
    p1 = model.first_.predict_proba(X)[:, 1]
    p2 = model.second_.predict_proba(X)
    np.testing.assert_allclose(proba[:, 0], p1)
    np.testing.assert_allclose(proba[:, 1:], (1 - p1)[:, None] * p2)
    assert set(model.predict(X)) <= {0, 1, 2, 3}


def test_stage_two_never_sees_first_class_rows(data):
    X, y = data
    model = CascadeClassifier(Recorder(), Recorder(), first_class=2).fit(X, y)
    first_seen, second_seen = model.first_.seen_X_, model.second_.seen_X_
    assert first_seen.shape[0] == 300 and set(model.first_.seen_y_) == {0, 1}
    assert np.array_equal(model.first_.seen_y_, (y == 2).astype(int))
    # Column 0 holds the true class: no row of class 2 reached stage 2, every other row did.
    assert 3.0 not in set(second_seen[:, 0].toarray().ravel())
    assert second_seen.shape[0] == int((y != 2).sum())
    assert list(model.rest_) == [0, 1, 3]
    # Stage 2 trains on contiguous labels (what XGBoost demands), mapped back to 0, 1, 3.
    assert set(model.second_.seen_y_) == {0, 1, 2}


def test_string_labels_clone_and_stage_parameters(data):
    X, y = data
    names = np.array(["acdc", "clone", "by-pass", "recovery"])[y]
    model = CascadeClassifier(DecisionTreeClassifier(random_state=0), DecisionTreeClassifier(random_state=0),
                              first_class="clone")
    model.set_params(first__max_depth=2, second__max_depth=3)
    fitted = clone(model).set_params(first__max_depth=2).fit(X, names)
    assert list(fitted.classes_) == sorted(set(names))
    assert fitted.first_.get_depth() <= 2 and fitted.second_.get_depth() <= 3
    np.testing.assert_allclose(fitted.predict_proba(X).sum(axis=1), 1.0)


def test_a_fold_without_the_first_class_gives_it_zero(data):
    X, y = data
    keep = y != 3
    model = CascadeClassifier(first_class=3).fit(X[keep], y[keep])
    proba = model.predict_proba(X)
    assert list(model.classes_) == [0, 1, 2] and model.first_ is None
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_two_classes_leave_stage_two_constant(data):
    X, y = data
    binary = (y > 0).astype(int)
    proba = CascadeClassifier().fit(X, binary).predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba.shape == (300, 2)


@pytest.mark.slow
def test_cascade_runs_end_to_end_on_action_split(tmp_path, tracking_uri):
    import mlflow

    from tests.factories import compose_cfg
    from wtc.data.synthetic import write_benchmark
    from wtc.run.experiment import run

    path = write_benchmark(tmp_path / "history.json", n_tasks=400, seed=3)
    overrides = [
        f"data.path={path}", f"tracking.uri={tracking_uri}", "model=cascade", "target=action_split",
        "target.min_class_count=20", "search=tpe", "search.n_trials=2", "cv.n_splits=2", "n_jobs=1",
        "diagnostics=none", "tracking.log_model=false",
        "model.estimator.first.n_estimators=10", "model.estimator.second.n_estimators=10",
    ]
    cfg = compose_cfg(overrides)
    result = run(cfg)
    cascade = result.pipeline.named_steps["model"]
    assert isinstance(cascade, CascadeClassifier)
    assert len(result.classes) > 2 and len(cascade.classes_) == len(result.classes)
    assert set(result.best_params) == {"first__max_depth", "first__learning_rate", "second__max_depth",
                                       "second__learning_rate"}
    assert cascade.first_.get_params()["max_depth"] == result.best_params["first__max_depth"]
    assert 0 < result.metrics["test/log_loss"] < 10
    client = mlflow.MlflowClient(tracking_uri)
    run_info = client.get_run(result.run_id)
    assert run_info.data.params["model.name"] == "cascade"
    assert run_info.info.status == "FINISHED"
