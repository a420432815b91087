"""The Keras side of :class:`~wtc.models.dnn.DNNClassifier`: the network, its training loop and prediction in chunks.

TensorFlow is imported here only, and only on first use (:func:`load_keras`).
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import scipy.sparse as sp

__all__ = ["adam_step", "build_network", "dense_rows", "load_keras", "predict_rows", "train_network"]

#: Densify at most this many matrix cells at once when predicting (64 MB of float32).
PREDICT_CELLS = 1 << 24


class _OneTracePerModel(logging.Filter):
    """Drop TensorFlow's "triggered tf.function retracing" warning.

    Each fit traces the training step of its own network once, by design; TensorFlow's
    frequent-retracing detector counts the step functions of successive fits (a search, a
    CV loop) as retraces of one function and would warn on every fit.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def load_keras():
    """Import TensorFlow and Keras on first use: the import costs ~5 s and ~700 MB.

    Returns
    -------
    (tensorflow, keras)
    """
    # Keras 3 picks its backend from the environment; the device placement below is
    # TensorFlow's. TF's C++ start-up chatter (no CUDA driver...) is noise on CPU nodes.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _OneTracePerModel) for f in tf_logger.filters):
        tf_logger.addFilter(_OneTracePerModel())
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "DNNClassifier needs the TensorFlow Keras backend, "
            f"KERAS_BACKEND is {keras.backend.backend()!r}"
        )
    return tf, keras


def dense_rows(X, rows) -> np.ndarray:
    """Rows of X as a dense float32 block: the only place the matrix is densified."""
    block = X[rows]
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def build_network(keras, n_features: int, n_classes: int, n_layers: int, n_neurons: int, l2: float,
                  dropout: float):
    """ReLU hidden layers (L2 on their kernels, dropout after each) and a softmax output.

    Returns
    -------
    keras.Model
    """
    regulariser = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs = keras.Input(shape=(n_features,), dtype="float32")
    x = inputs
    for _ in range(n_layers):
        x = keras.layers.Dense(
            n_neurons, activation="relu", kernel_regularizer=regulariser
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def adam_step(tf, keras, model, learning_rate: float):
    """One compiled Adam step on the cross-entropy plus L2 penalties, traced once.

    Tracing is most of a small fit's cost, and searches fit hundreds of small models.
    Keras' ``train_on_batch``/``fit`` retrace for each new batch shape and, with
    ``jit_compile="auto"``, XLA-compile each (~2 s per shape on 2 cores). Here a single
    trace with a ``None`` batch dimension, without autograph (the step has no
    data-dependent Python control flow), and TensorFlow's fused Adam kernel (the same
    update as ``keras.optimizers.Adam``, a fraction of its graph) cost ~0.5 s.

    Returns
    -------
    callable
        ``step(x, y) -> loss`` on a dense float32 batch and its int32 class indices.
    """
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7  # keras.optimizers.Adam defaults
    variables = model.trainable_variables
    first_moments = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    second_moments = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    beta_1_power = tf.Variable(1.0, trainable=False)
    beta_2_power = tf.Variable(1.0, trainable=False)
    learning_rate = tf.constant(learning_rate, tf.float32)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy()

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, model.input_shape[1]], tf.float32),
            tf.TensorSpec([None], tf.int32),
        ],
        autograph=False,
        jit_compile=False,
    )
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = cross_entropy(y, model(x, training=True))
            if model.losses:  # the L2 penalties
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, variables)
        beta_1_power.assign(beta_1_power * beta_1)
        beta_2_power.assign(beta_2_power * beta_2)
        for var, m, v, grad in zip(variables, first_moments, second_moments, grads):
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle,
                m=m.handle,
                v=v.handle,
                beta1_power=beta_1_power,
                beta2_power=beta_2_power,
                lr=learning_rate,
                beta1=beta_1,
                beta2=beta_2,
                epsilon=epsilon,
                grad=grad,
            )
        return loss

    return step


def train_network(model, step, X, y, train, val, batch_order, batch_size: int, max_epochs: int, patience: int,
                  verbose: int = 0) -> tuple[dict, int]:
    """Epochs of shuffled batches until the monitored loss stops improving; the best epoch's weights kept.

    Parameters
    ----------
    model : keras.Model
    step : callable
        From :func:`adam_step`.
    X : sparse matrix or ndarray, float32
    y : ndarray of int32
        Class indices.
    train, val : ndarray of int or None
        Rows to train on, and rows whose cross-entropy picks the epoch (None: the training
        loss does, and every epoch runs).
    batch_order : numpy.random.Generator
        Shuffles the training rows each epoch.
    batch_size, max_epochs, patience, verbose : int

    Returns
    -------
    history : dict of str to list of float
        ``loss`` per epoch, and ``val_loss`` with a validation slice.
    best_epoch : int
        1-based epoch whose weights the model holds (0 when every loss was nan).
    """
    history = {"loss": []} if val is None else {"loss": [], "val_loss": []}
    best_loss, best_weights, best_epoch, waited = math.inf, None, 0, 0
    epochs = range(1, max_epochs + 1)
    bar = None
    if verbose > 0:
        # Plain tqdm, not tqdm.auto: without ipywidgets (not a dependency) the
        # notebook bar warns and falls back to text anyway.
        from tqdm import tqdm

        bar = epochs = tqdm(epochs, desc="DNN epochs", unit="epoch")
    n_classes = model.output_shape[-1]
    for epoch in epochs:
        order = train[batch_order.permutation(train.size)]
        total = 0.0
        for start in range(0, order.size, batch_size):
            rows = order[start : start + batch_size]
            loss = step(dense_rows(X, rows), y[rows])
            total += float(loss) * rows.size
        history["loss"].append(total / order.size)
        # Without a validation slice the training loss picks the weights to keep.
        monitored = history["loss"][-1]
        if val is not None:
            proba = predict_rows(model, X, n_classes, val)
            picked = np.clip(proba[np.arange(val.size), y[val]], 1e-7, 1.0)
            monitored = float(-np.mean(np.log(picked)))
            history["val_loss"].append(monitored)
        if bar is not None:
            bar.set_postfix({k: f"{v[-1]:.4f}" for k, v in history.items()})
        if monitored < best_loss:
            best_loss, best_epoch, waited = monitored, epoch, 0
            best_weights = model.get_weights()
        else:
            waited += 1
            if val is not None and waited >= patience:
                break
    if bar is not None:
        bar.close()
    if best_weights is not None:  # None only when every epoch's loss was nan
        model.set_weights(best_weights)
    return history, best_epoch


def predict_rows(model, X, n_classes: int, rows=None) -> np.ndarray:
    """The network's softmax on ``rows`` of X (all by default), densified a chunk at a time.

    Returns
    -------
    ndarray of float32, shape (n_rows, n_classes)
    """
    rows = np.arange(X.shape[0]) if rows is None else rows
    chunk = int(min(8192, max(1, PREDICT_CELLS // max(X.shape[1], 1))))
    # Eager calls: a forward pass over a large chunk is compute-bound, and tracing a
    # predict function would cost more than it saves.
    parts = [
        np.asarray(model(dense_rows(X, rows[start : start + chunk]), training=False))
        for start in range(0, rows.size, chunk)
    ]
    if not parts:
        return np.empty((0, n_classes), dtype=np.float32)
    return np.concatenate(parts)
