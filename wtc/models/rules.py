"""The WTC procedures baseline: dominant exit code -> the twiki's response -> that response's class mix."""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.data.vocabulary import code_sort_key, exit_code_info
from wtc.models.base import ProbabilisticClassifierMixin

__all__ = ["PROCEDURES", "RulesClassifier", "procedure_of_code", "procedure_of_response"]

#: Procedure buckets of the WTC error-code procedures, plus ``no_errors`` for empty rows.
PROCEDURES = (
    "acdc",
    "acdc_memory",
    "acdc_split",
    "acdc_if_temporary",
    "report",
    "site_support",
    "no_errors",
)

#: What the procedures say for a category when the code itself has no documented response.
CATEGORY_RESPONSE = {
    "memory": "more memory",
    "time": "acdc with splitting",
    "input": "acdc",
    "site": "acdc if temporary",
    "stageout": "acdc if temporary",
    "crash": "report (open a software issue)",
    "software": "report (open a software issue)",
    "merge": "acdc",
    "generic": "acdc",
    "unknown": "acdc",
}

# A column is an error count when its name is <status>:<code>:<site> with an integer code;
# anything else (campaign:X, tasktype:Merge, total:errors, n:sites) is context, not a code.
_ERROR_COLUMN_RE = re.compile(r"^[^:]+:(-?\d+):[^:]+$")


def procedure_of_response(response: str) -> str:
    """Procedure bucket of a free-text response from the WTC procedures.

    Parameters
    ----------
    response : str
        E.g. ``"acdc"``, ``"more memory"``, ``"site support: drain the site"``.

    Returns
    -------
    str
        One of :data:`PROCEDURES` (never ``no_errors``).
    """
    text = response.lower()
    # Order matters: "report to site support" is a site ticket, not a software report, and
    # "check site readiness; acdc if temporary" is the transient-site acdc.
    if "site support" in text:
        return "site_support"
    if text.startswith("report"):
        return "report"
    if "memory" in text:
        return "acdc_memory"
    if "split" in text:
        return "acdc_split"
    if "temporary" in text:
        return "acdc_if_temporary"
    if "acdc" in text:
        return "acdc"
    raise ValueError(f"no procedure bucket for the response {response!r}")


def procedure_of_code(code: str | int) -> str:
    """Procedure bucket the WTC procedures prescribe for an exit code.

    The code's own ``usual_response`` when the vocabulary has one, else the response
    usual for its category (undocumented codes get a plain acdc).

    Parameters
    ----------
    code : str or int
        Exit code.

    Returns
    -------
    str
        One of :data:`PROCEDURES`.
    """
    info = exit_code_info(code)
    response = info.get("usual_response") or CATEGORY_RESPONSE.get(info.get("category"), "acdc")
    return procedure_of_response(response)


class RulesClassifier(ProbabilisticClassifierMixin, ClassifierMixin, BaseEstimator):
    """What an operator following the WTC procedures to the letter would decide.

    Each row's dominant exit code (the code with the most failures, summed over sites and
    statuses) selects the procedure the twiki prescribes for it; the classifier predicts
    the class mix that procedure had in the training labels. This is a single table look-up
    and the baseline every learned model must beat: a model that cannot do better than
    "read the top error code, apply the twiki" has learned nothing from the history.

    Parameters
    ----------
    feature_names : list of str or None
        Column names of X, ``"<status>:<code>:<site>"`` for error counts (``*`` or a tier
        for site in aggregated views). Other columns are ignored. None: use the column
        names of a DataFrame passed to ``fit``; without those, no column is an exit code and
        every row gets the class prior (what the run pipeline never does: it always passes
        the view's column names).
    alpha : float, default 1.0
        Laplace smoothing of each procedure's class counts, so no class gets probability 0.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    n_features_in_ : int
        Number of columns.
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string columns.
    codes_ : list of str
        Exit codes found in the column names, in numeric order.
    code_columns_ : dict of str to ndarray of int
        Columns counting each exit code.
    aggregation_ : scipy.sparse.csr_array of shape (n_features, n_codes)
        Sums a row's columns per code.
    code_procedure_ : dict of str to str
        Procedure bucket of each exit code seen in the columns.
    procedure_proba_ : dict of str to ndarray
        Smoothed class distribution of each procedure seen in training.
    class_prior_ : ndarray
        Class frequencies of the training labels: the answer for rows with no errors and
        for procedures never seen in training.
    procedure_counts_ : dict of str to int
        Training rows per procedure.

    Notes
    -----
    Ties between codes go to the lowest code number. Rows with no error count at all get
    the prior.
    """

    def __init__(self, feature_names=None, alpha=1.0):
        self.feature_names = feature_names
        self.alpha = alpha

    def fit(self, X, y):
        """Learn each procedure's class distribution.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
            Exit-code counts.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, reset=True)
        check_classification_targets(y)
        if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
            raise ValueError(f"alpha must be a non-negative number, got {self.alpha!r}")
        return self._fit(X, y)

    def _column_names(self) -> list[str]:
        if self.feature_names is not None:
            names = [str(n) for n in self.feature_names]
        elif hasattr(self, "feature_names_in_"):
            names = [str(n) for n in self.feature_names_in_]
        else:
            return [f"x{j}" for j in range(self.n_features_in_)]
        if len(names) != self.n_features_in_:
            raise ValueError(
                f"feature_names has {len(names)} names but X has {self.n_features_in_} columns"
            )
        return names

    def _fit(self, X, y):
        names = self._column_names()
        columns: dict[str, list[int]] = {}
        for j, name in enumerate(names):
            match = _ERROR_COLUMN_RE.match(name)
            if match:
                columns.setdefault(match.group(1), []).append(j)
        codes = sorted(columns, key=code_sort_key)
        self.code_columns_ = {code: np.asarray(columns[code]) for code in codes}
        self.code_procedure_ = {code: procedure_of_code(code) for code in codes}
        # Column j -> index of its code, as a sparse aggregation matrix: X @ A sums every
        # status and site of a code without densifying X.
        rows = [j for code in codes for j in columns[code]]
        cols = [i for i, code in enumerate(codes) for _ in columns[code]]
        self.aggregation_ = sp.csr_array(
            (np.ones(len(rows)), (rows, cols)), shape=(self.n_features_in_, max(len(codes), 1))
        )
        self.codes_ = codes

        self.classes_, y_index = np.unique(y, return_inverse=True)
        n_classes = self.classes_.size
        self.class_prior_ = np.bincount(y_index, minlength=n_classes) / y_index.size
        procedures = self._procedures(X)
        self.procedure_proba_ = {}
        self.procedure_counts_ = {}
        for proc in np.unique(procedures):
            counts = np.bincount(y_index[procedures == proc], minlength=n_classes).astype(float)
            self.procedure_counts_[str(proc)] = int(counts.sum())
            if proc == "no_errors":
                continue  # documented: empty rows always get the prior
            smoothed = counts + self.alpha
            self.procedure_proba_[str(proc)] = smoothed / smoothed.sum()
        return self

    def _procedures(self, X) -> np.ndarray:
        if not self.codes_:
            return np.full(X.shape[0], "no_errors", dtype=object)
        # n_samples x n_codes is small (tens of codes) even when X has 10^4 columns.
        per_code = np.asarray((sp.csr_array(X) @ self.aggregation_).toarray())
        # argmax takes the first maximum, and codes are in numeric order: ties -> lowest code.
        dominant = per_code.argmax(axis=1)
        bucket_of = np.array([self.code_procedure_[c] for c in self.codes_], dtype=object)
        out = bucket_of[dominant]
        out[per_code.max(axis=1) <= 0] = "no_errors"
        return out

    def procedures(self, X) -> np.ndarray:
        """Procedure bucket of each row (``no_errors`` when it has no error count).

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of str, shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return self._procedures(X)

    def predict_proba(self, X):
        """Class distribution of each row's procedure.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        procedures = self.procedures(X)
        proba = np.tile(self.class_prior_, (procedures.size, 1))
        for proc, dist in self.procedure_proba_.items():
            proba[procedures == proc] = dist
        return proba
