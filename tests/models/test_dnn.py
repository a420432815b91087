"""Tests of the Keras network wrapper: sparse batches, early stopping, determinism, pickling."""

import copy
import pickle

import cloudpickle
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.utils import get_tags

from wtc.models.dnn import DNNClassifier

N_ROWS, N_COLS = 300, 2000


def learnable_counts(n_rows=N_ROWS, n_cols=N_COLS, n_classes=2, seed=0):
    """Sparse error counts whose class is set by a few informative columns.

    Returns X, the true classes and training labels with 20% of them replaced at random,
    so that the network starts to fit noise and early stopping has something to stop.
    """
    rng = np.random.default_rng(seed)
    X = sp.random(n_rows, n_cols, density=0.01, random_state=seed, format="csr", dtype=np.float32)
    X.data = np.ceil(X.data * 20)
    y = rng.integers(0, n_classes, n_rows)
    informative = sp.csr_matrix(
        (np.full(n_rows, 30.0, dtype=np.float32), (np.arange(n_rows), y)), shape=(n_rows, n_cols)
    )
    noisy = np.where(rng.uniform(size=n_rows) < 0.2, rng.integers(0, n_classes, n_rows), y)
    return (X + informative).tocsr(), y, noisy


@pytest.fixture(scope="module")
def data():
    X, _, noisy = learnable_counts()
    return X, noisy


@pytest.fixture(scope="module")
def truth():
    return learnable_counts()[1]


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return DNNClassifier(random_state=0).fit(X, y)


def test_learns_from_sparse_counts(fitted, data, truth):
    X, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (N_ROWS, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert (fitted.predict(X) == truth).mean() > 0.9  # the signal, not the label noise
    assert fitted.n_features_in_ == N_COLS
    assert list(fitted.classes_) == [0, 1]
    assert fitted.device_ == "/CPU:0"


def test_early_stopping_keeps_the_best_epoch(fitted):
    history = fitted.history_
    assert set(history) == {"loss", "val_loss"}
    assert len(history["loss"]) == len(history["val_loss"]) == fitted.n_epochs_
    assert fitted.n_epochs_ < fitted.max_epochs  # it stopped on a 300-row problem
    assert fitted.n_epochs_ - fitted.best_epoch_ == fitted.patience
    best = int(np.argmin(history["val_loss"])) + 1
    assert fitted.best_epoch_ == best


def test_never_densifies_the_whole_matrix(data, monkeypatch):
    X, y = data
    shapes = []
    for cls in (sp.csr_matrix, sp.csr_array):
        original = cls.toarray

        def spy(self, *args, _original=original, **kwargs):
            shapes.append(self.shape)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "toarray", spy)
    model = DNNClassifier(max_epochs=2, random_state=0).fit(X, y)
    model.predict_proba(X[:100])
    assert shapes, "batches were not densified through toarray"
    assert max(rows for rows, _ in shapes) <= 100  # batches of 64 and the 30-row val slice


def test_validation_slice_is_shuffled_and_stratified():
    # After SMOTE the synthetic minority rows are all at the end; the slice must not be them.
    y = np.r_[np.zeros(900, dtype=np.int32), np.ones(100, dtype=np.int32)]
    model = DNNClassifier(validation_fraction=0.1)
    model.classes_ = np.array([0, 1])
    train, val = model._validation_split(y, seed=0)
    assert len(val) == 100 and len(train) == 900
    assert np.bincount(y[val]).tolist() == [90, 10]
    assert val.min() < 900  # not the tail
    assert set(train).isdisjoint(val)


def test_validation_split_falls_back_when_a_class_is_a_singleton():
    y = np.r_[np.zeros(30, dtype=np.int32), [1]]
    model = DNNClassifier(validation_fraction=0.2)
    model.classes_ = np.array([0, 1])
    train, val = model._validation_split(y, seed=0)
    assert len(train) + len(val) == 31 and len(val) == 7


def test_no_validation_trains_every_epoch(data):
    X, y = data
    model = DNNClassifier(validation_fraction=0.0, max_epochs=3, random_state=0).fit(X, y)
    assert model.n_epochs_ == 3 and set(model.history_) == {"loss"}


def test_deterministic_for_a_random_state(fitted, data):
    X, y = data
    again = DNNClassifier(random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert again.history_ == fitted.history_
    other = DNNClassifier(random_state=1, max_epochs=3).fit(X, y)
    assert other.history_["loss"][:3] != fitted.history_["loss"][:3]


@pytest.mark.parametrize("dumps, loads", [(pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)])
def test_pickles_after_fit(fitted, data, dumps, loads):
    X, _ = data
    restored = loads(dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    assert restored.history_ == fitted.history_
    assert hasattr(fitted, "model_")  # pickling did not strip the original


def test_deepcopy_and_clone(fitted, data):
    X, _ = data
    np.testing.assert_array_equal(copy.deepcopy(fitted).predict_proba(X[:5]), fitted.predict_proba(X[:5]))
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params() and not hasattr(fresh, "model_")


def test_multiclass_string_labels_and_dense_input():
    X, y, _ = learnable_counts(n_rows=240, n_cols=50, n_classes=3, seed=1)
    labels = np.array(["acdc", "clone", "special"])[y]
    model = DNNClassifier(max_epochs=30, random_state=0).fit(X.toarray(), labels)
    assert list(model.classes_) == ["acdc", "clone", "special"]
    assert model.predict_proba(X).shape == (240, 3)
    assert (model.predict(X) == labels).mean() > 0.8


def test_scikit_learn_sees_a_sparse_classifier(data):
    tags = get_tags(DNNClassifier())
    assert is_classifier(DNNClassifier()) and tags.input_tags.sparse
    X, y = data
    # roc_auc scoring needs predict_proba to be recognised on a classifier.
    scores = cross_val_score(DNNClassifier(max_epochs=5, random_state=0), X, y, cv=2, scoring="roc_auc")
    assert np.all(scores > 0.7)


def test_gpu_request_without_gpu_falls_back_with_a_warning(data):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("a GPU is visible")
    X, y = data
    with pytest.warns(UserWarning, match="no GPU visible"):
        model = DNNClassifier(device="gpu", max_epochs=1, random_state=0).fit(X[:100], y[:100])
    assert model.device_ == "/CPU:0"


def test_verbose_shows_a_progress_bar(data, capsys):
    X, y = data
    DNNClassifier(verbose=1, max_epochs=2, random_state=0).fit(X[:100], y[:100])
    assert "DNN epochs" in capsys.readouterr().err


def test_unfitted_and_bad_params(data):
    X, y = data
    with pytest.raises(NotFittedError):
        DNNClassifier().predict(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        DNNClassifier().fit(X[:10], np.zeros(10))
    for bad in [{"n_neurons": 0}, {"dropout": 1.0}, {"device": "tpu"}, {"validation_fraction": 1.0}, {"batch_size": 2.5}]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            DNNClassifier(**bad).fit(X[:10], y[:10])
