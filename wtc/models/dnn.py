"""A Keras multi-layer perceptron as a scikit-learn classifier that trains on sparse count matrices.

The estimator (parameters, validation, the validation slice, seeding, device, pickling); the
network, its training loop and prediction live in :mod:`wtc.models.keras_net`.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.models.base import ProbabilisticClassifierMixin
from wtc.models.keras_net import adam_step, build_network, load_keras, predict_rows, train_network

__all__ = ["DNNClassifier"]

_DEVICES = ("cpu", "gpu")


class DNNClassifier(ProbabilisticClassifierMixin, ClassifierMixin, BaseEstimator):
    """Fully connected network with a softmax output, trained on sparse or dense input.

    ReLU hidden layers with L2 weight decay and dropout, Adam on the sparse categorical
    cross-entropy. Batches are densified one at a time, so a CSR matrix with 10^5 columns
    never exists densely as a whole. Training stops early when the loss on a validation
    slice stops improving, and the best epoch's weights are kept.

    Parameters
    ----------
    n_layers : int, default 3
        Hidden layers.
    n_neurons : int, default 51
        Units per hidden layer.
    l2 : float, default 0.00147
        L2 penalty on the hidden layers' kernels.
    dropout : float, default 0.028
        Dropout rate after each hidden layer.
    learning_rate : float, default 1e-3
        Adam learning rate.
    batch_size : int, default 64
        Rows per gradient step.
    max_epochs : int, default 100
        Upper bound on passes over the training rows.
    patience : int, default 5
        Epochs without a better validation loss before stopping.
    validation_fraction : float, default 0.1
        Share of the training rows held out for early stopping, drawn by a shuffled split
        stratified on the labels (where every class has two rows). 0 trains all
        ``max_epochs`` on every row.
    device : {"cpu", "gpu"}, default "cpu"
        ``cpu`` keeps every op of this model off the GPUs; ``gpu`` uses the first GPU,
        falling back to the CPU with a warning when there is none.
    random_state : int, RandomState or None
        Seeds weights, dropout, the validation split and batch order. With an int the fit
        is reproducible. Keras keeps its seeds in process-wide state, so ``fit`` reseeds
        Python's, NumPy's global and TensorFlow's generators and switches on TensorFlow's
        op determinism for the whole process.
    verbose : int, default 0
        >0 shows a progress bar over epochs.

    Attributes
    ----------
    classes_ : ndarray
        Class labels; the output units in this order.
    n_features_in_ : int
        Number of columns.
    model_ : keras.Model
        The trained network.
    history_ : dict of str to list of float
        Per-epoch ``loss`` (training, with penalties) and, with a validation slice,
        ``val_loss`` (cross-entropy).
    device_ : str
        TensorFlow device the network was trained on.
    best_epoch_ : int
        1-based epoch whose weights were kept.
    n_epochs_ : int
        Epochs run.
    """

    def __init__(
        self,
        n_layers=3,
        n_neurons=51,
        l2=0.00147,
        dropout=0.028,
        learning_rate=1e-3,
        batch_size=64,
        max_epochs=100,
        patience=5,
        validation_fraction=0.1,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_layers = n_layers
        self.n_neurons = n_neurons
        self.l2 = l2
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        def whole(name, low):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        whole("n_layers", 0)
        whole("n_neurons", 1)
        whole("batch_size", 1)
        whole("max_epochs", 1)
        whole("patience", 1)
        if not (isinstance(self.l2, (int, float)) and self.l2 >= 0):
            raise ValueError(f"l2 must be a non-negative number, got {self.l2!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        fraction = self.validation_fraction
        if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
            raise ValueError(f"validation_fraction must be in [0, 1), got {fraction!r}")
        if self.device not in _DEVICES:
            raise ValueError(f"device must be one of {_DEVICES}, got {self.device!r}")

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Features; CSR stays sparse.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self
        """
        self._check_params()
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float32, reset=True)
        check_classification_targets(y)
        self.classes_, y_index = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(
                "DNNClassifier needs at least 2 classes in y to train, "
                f"got 1 class: {self.classes_[0]!r}"
            )
        return self._fit(X, y_index.astype(np.int32))

    def _device_name(self, tf, warn: bool) -> str:
        if self.device == "gpu":
            if tf.config.list_logical_devices("GPU"):
                return "/GPU:0"
            if warn:
                warnings.warn(
                    "DNNClassifier(device='gpu'): no GPU visible, using the CPU", stacklevel=3
                )
        # Pinning every op of the model to the CPU is what keeps a "cpu" model off a GPU
        # that TensorFlow would otherwise grab for it.
        return "/CPU:0"

    def _validation_split(self, y, seed) -> tuple[np.ndarray, np.ndarray | None]:
        n = y.size
        n_val = math.ceil(self.validation_fraction * n)
        if n_val == 0 or n - n_val < 1:
            return np.arange(n), None
        n_classes = self.classes_.size
        # Stratify when every class can be on both sides; shuffle either way, never slice
        # the tail (after SMOTE the tail is all synthetic rows).
        stratify = np.bincount(y).min() >= 2 and n_classes <= n_val <= n - n_classes
        splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
            n_splits=1, test_size=n_val, random_state=seed
        )
        train, val = next(splitter.split(np.zeros((n, 1)), y))
        return train, val

    def _fit(self, X, y):
        tf, keras = load_keras()
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # Weights and dropout masks draw from Keras' global seed; op determinism makes the
        # kernels' reductions repeatable. Both are process-wide by TensorFlow's design.
        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
        train, val = self._validation_split(y, seed)
        batch_order = np.random.default_rng(seed)

        self.device_ = self._device_name(tf, warn=True)
        with tf.device(self.device_):
            model = build_network(keras, X.shape[1], self.classes_.size, self.n_layers, self.n_neurons, self.l2,
                                  self.dropout)
            step = adam_step(tf, keras, model, self.learning_rate)
            history, best_epoch = train_network(model, step, X, y, train, val, batch_order, self.batch_size,
                                                self.max_epochs, self.patience, self.verbose)

        self.model_ = model
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.n_epochs_ = len(history["loss"])
        return self

    # ------------------------------------------------------------------ predict
    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float32, reset=False)
        tf, _ = load_keras()
        # Where this process can run it now: a model fitted on a GPU node predicts on a CPU one.
        with tf.device(self._device_name(tf, warn=False)):
            proba = predict_rows(self.model_, X, self.classes_.size).astype(np.float64)
        # float32 softmax rows sum to 1 only within ~1e-7; scikit-learn metrics check it.
        return proba / proba.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        # A Keras model holds TensorFlow handles that pickle cannot carry: ship it as the
        # bytes of a .keras archive (what MLflow's cloudpickle and joblib need).
        # Copy: on Python 3.11 object.__getstate__ hands back the live __dict__.
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                # Keras 3.15 saving calls np.array(tensor, copy=False), which numpy 2.4
                # answers with a DeprecationWarning; the archive is correct.
                warnings.filterwarnings("ignore", category=DeprecationWarning, message="__array__")
                path = os.path.join(tmp, "model.keras")
                model.save(path)
                with open(path, "rb") as fh:
                    state["_model_keras_bytes"] = fh.read()
        return state

    def __setstate__(self, state):
        state = dict(state)
        blob = state.pop("_model_keras_bytes", None)
        super().__setstate__(state)
        if blob is not None:
            _, keras = load_keras()
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "model.keras")
                with open(path, "wb") as fh:
                    fh.write(blob)
                # Prediction only: refitting builds a fresh network, so the optimiser
                # state need not come back.
                self.model_ = keras.models.load_model(path, compile=False)
