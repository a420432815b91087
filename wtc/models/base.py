"""What wtc's classifiers share: ``predict`` as the most probable class of ``predict_proba``, and sparse input."""

from __future__ import annotations

import numpy as np

__all__ = ["ProbabilisticClassifierMixin"]


class ProbabilisticClassifierMixin:
    """Put first among the bases (``class C(ProbabilisticClassifierMixin, ClassifierMixin, BaseEstimator)``).

    A subclass defines ``predict_proba`` and ``classes_``; it gets ``predict`` and the scikit-learn
    tag saying it accepts sparse input (a subclass whose sparsity depends on its parts overrides
    ``__sklearn_tags__``).
    """

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
