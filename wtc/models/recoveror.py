"""The production rules as a policy (``model=recoveror``): AUTO where CMS's own recovery rules fire, REVIEW elsewhere.

What ran in CMS production was rules, not ML. Two rule sets are encoded here, from their public
sources (read 2026-12-06), each per task on the task's own exit-code counts:

**Unified's recoveror** (CMSCompOps/WmAgentScripts, the logic in ``Unified/recoveror.py`` at
commit 2c680ca2, the rules in ``unifiedConfiguration.json`` at commit 00e25195, keys
``error_codes_to_recover`` / ``error_codes_to_block``; the same file sets ``use_recoveror: false``:
production had automation switched off). A code's ``rate`` is its share of the task's failed jobs,
``100 * njobs / sum_failed`` over every code; a rule applies when ``rate > case['rate']`` (20 for
every rule) and its ``details`` keyword (when not null) is found in the jobs' error details:

- 50664 "time-out" → ``split-2``: an ACDC with the job splitting divided by 2 (``2x``);
- 50660 "memory excess" → ``mem-+1000``: an ACDC requesting the task's memory + 1000 MB;
- 61104 "failed submit", 8028 "read error", 71305 "long pending" → ``recover``: a plain ACDC;
- 99109 "stage-out" (in ``error_codes_to_block``) → no automatic recovery ("that error means no
  ACDC on that workflow"): the task is left to an operator;
- 8021 (``details: "FileReadError"``) and 8001 (``details: "No lhe event found …"``) need the
  error *details*, which a WTC history does not carry: they never fire here.

**AIErrorHandling's static actions** (CMSCompOps/AIErrorHandling, ``models/StaticActions.py`` at
commit 0f6a3b71, ``ParseErrors`` phase I): the dominant code acts only when its share of the
failures exceeds 30% (``main_err_ratio > 0.3``); "bad sites" are sites not enabled (a WTC history's
statuses other than ``good``):

- -1 (no exit code): ``acdc`` if the code failed at no bad site, else ``automatic-wait``;
- 99303/99304, 99400/99401 ("condor issue"), 50513 ("scram/site issue"): ``acdc``;
- 71304/71305 (time-out, "priority inversion"): ``acdc`` if the task failed at no bad site (any
  code), else ``automatic-wait``;
- 99109 (stage-out) and 71103/71104/71105 (site drained): ``acdc`` if the code failed at no bad
  site, else ``automatic-wait``.

``automatic-wait`` executes nothing: it is REVIEW here. xrootd stays as it was (the xrootd
branch of StaticActions is commented out and Unified's ACDC copies the request's settings):
``disabled``; the splitting is ``1x`` unless ``split-2``; the memory is unset (unchanged) unless
``mem-+1000``.

What is left out (a WTC history does not show it): the request type (Unified recovers no
MonteCarlo/ReReco request and never splits a MonteCarlo one), the campaign's ``recover`` flag, the
error details, a task with an empty site list, StaticActions' phase II (8020/8021/8028 when the
workflow has no input dataset) and a workflow that was ACDC'd before. Unified also acts per
workflow (a blocking code on any task, or a task without a recoverable code, stops the whole
workflow's ACDC); this policy reads one task, like every wtc model.

With ``sources="both"`` (the default) a task gets Unified's answer where Unified recovers it,
otherwise StaticActions'; Unified's block vetoes both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from wtc.data.targets import TARGETS, label_of
from wtc.models.base import ProbabilisticClassifierMixin

__all__ = ["RecoverorPolicy", "SOURCES", "STATIC_RULES", "UNIFIED_BLOCK", "UNIFIED_RECOVER"]

SOURCES = ("unified", "static", "both")
#: Unified's ``error_codes_to_recover`` (unifiedConfiguration.json): code -> (legend, solution, rate %).
UNIFIED_RECOVER = {50664: ("time-out", "split-2", 20), 50660: ("memory excess", "mem-+1000", 20),
                   61104: ("failed submit", "recover", 20), 8028: ("read error", "recover", 20),
                   71305: ("long pending", "recover", 20)}
#: Unified's ``error_codes_to_block``: code -> (legend, rate %).
UNIFIED_BLOCK = {99109: ("stage-out", 20)}
#: StaticActions' phase I: dominant code -> which bad sites send it to ``automatic-wait``
#: (None: acdc whatever the sites; "code": the code's own bad sites; "any": any code's).
STATIC_RULES = {-1: "code", 99303: None, 99304: None, 99400: None, 99401: None, 50513: None,
                71304: "any", 71305: "any", 99109: "code", 71103: "code", 71104: "code", 71105: "code"}
STATIC_MAIN_SHARE = 0.30
GOOD_STATUS = "good"
_ERROR_COLUMN_RE = re.compile(r"^([^:]+):(-?\d+):[^:]+$")


@dataclass(frozen=True)
class _Columns:
    codes: np.ndarray      # the exit codes found in the column names (int)
    total: sp.csr_array    # (n_features, n_codes): a row's count of each code
    bad: sp.csr_array      # (n_features, n_codes): its count at sites that were not ready


class RecoverorPolicy(ProbabilisticClassifierMixin, ClassifierMixin, BaseEstimator):
    """CMS's production recovery rules (see the module docstring) as a classifier that abstains.

    ``predict_proba`` puts mass 1 on the rules' class where they fire and the training class prior
    elsewhere; :meth:`auto` says where they fired (confidence 1: AUTO), :meth:`recommendations` what
    they recommend (action, splitting, xrootd, memory) and which rule.

    Parameters
    ----------
    feature_names : list of str or None
        Column names; error counts are ``<status>:<code>:<site, tier or *>`` (any view). None: the
        names of a DataFrame given to ``fit``; without names no rule can fire (the class prior).
    class_names : list of str or None
        Names of the integer labels ``0..k-1`` the run pipeline trains on (``other`` included);
        None: the labels themselves are the class names.
    target : str or None
        The target whose labels the rules' recommendation is translated to (``binary``, ``action``,
        ``splitting``…); None: the first target whose label of the recommendation is a class.
    sources : {"unified", "static", "both"}
        Which rule set (module docstring).
    base_memory_mb : float
        The request's memory the ``+1000 MB`` rule adds to (a WTC history does not show it):
        2,500 MB, Unified's ``warning_mem`` (MB per core above which it calls a workflow
        memory-hungry), so a memory-excess ACDC asks 3,500 MB.

    Attributes
    ----------
    classes_ : ndarray
    class_prior_ : ndarray
    rule_columns_ : dict
        Per target name of the rules' class, its column in ``classes_`` (only those present).
    """

    def __init__(self, feature_names=None, class_names=None, target=None, sources="both", base_memory_mb=2500.0):
        self.feature_names = feature_names
        self.class_names = class_names
        self.target = target
        self.sources = sources
        self.base_memory_mb = base_memory_mb

    def fit(self, X, y):
        """Learn the class prior (the answer where no rule fires) and where the rules' classes are.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, reset=True)
        check_classification_targets(y)
        if self.sources not in SOURCES:
            raise ValueError(f"sources must be one of {SOURCES}, got {self.sources!r}")
        if self.target is not None and self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self.class_prior_ = np.bincount(y_index, minlength=self.classes_.size) / y_index.size
        self.columns_ = self._parse_columns()
        names = self._names()
        self.rule_columns_ = {}
        for params in self._candidate_parameters():
            targets = [self.target] if self.target is not None else list(TARGETS)
            for target in targets:
                label = label_of(params, target)
                if label in names:
                    self.rule_columns_[(params["splitting"], params["memory"])] = (target, names.index(label))
                    break
        return self

    def _names(self) -> list[str]:
        if self.class_names is None:
            return [str(c) for c in self.classes_]
        named = [str(c) for c in self.class_names]
        # An integer label i is class_names[i]; classes_ holds only the labels present.
        return [named[int(c)] if 0 <= int(c) < len(named) else str(c) for c in self.classes_]

    def _candidate_parameters(self) -> list[dict]:
        memory = f"{self.base_memory_mb + 1000:g}"
        return [{"action": "acdc", "splitting": s, "xrootd": "disabled", "memory": m}
                for s in ("1x", "2x") for m in ("", memory)]

    def _parse_columns(self) -> _Columns:
        if self.feature_names is not None:
            names = [str(n) for n in self.feature_names]
        elif hasattr(self, "feature_names_in_"):
            names = [str(n) for n in self.feature_names_in_]
        else:
            names = []
        if names and len(names) != self.n_features_in_:
            raise ValueError(f"feature_names has {len(names)} names but X has {self.n_features_in_} columns")
        parsed = [(j, m.group(1), int(m.group(2))) for j, n in enumerate(names) if (m := _ERROR_COLUMN_RE.match(n))]
        codes = np.array(sorted({c for _, _, c in parsed}), dtype=np.int64)
        index = {c: i for i, c in enumerate(codes)}
        shape = (self.n_features_in_, max(codes.size, 1))
        rows = [j for j, _, _ in parsed]
        cols = [index[c] for _, _, c in parsed]
        bad = [1.0 if status != GOOD_STATUS else 0.0 for _, status, _ in parsed]
        return _Columns(codes, sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=shape),
                        sp.csr_array((bad, (rows, cols)), shape=shape))

    def recommendations(self, X) -> pd.DataFrame:
        """What the rules say for each row.

        Returns
        -------
        pandas.DataFrame
            ``auto`` (a rule fired and nothing blocked it), ``action`` (``acdc`` or empty),
            ``splitting``, ``xrootd``, ``memory`` (MB, empty: unchanged), ``rule`` (which rule
            fired, blocked or why nothing did).
        """
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return self._recommendations(sp.csr_array(X))

    def _recommendations(self, X) -> pd.DataFrame:
        n, cols = X.shape[0], self.columns_
        out = pd.DataFrame({"auto": np.zeros(n, bool), "action": "", "splitting": "", "xrootd": "", "memory": "",
                            "rule": "no rule fires"})
        if cols.codes.size == 0:
            return out
        per_code = np.asarray((X @ cols.total).toarray())
        bad = np.asarray((X @ cols.bad).toarray()) > 0
        total = per_code.sum(axis=1)
        share = np.divide(per_code, total[:, None], out=np.zeros_like(per_code), where=total[:, None] > 0)
        code_at = {int(c): i for i, c in enumerate(cols.codes)}

        def above(code: int, percent: float) -> np.ndarray:
            return share[:, code_at[code]] * 100 > percent if code in code_at else np.zeros(n, bool)

        split = np.zeros(n, bool)
        memory = np.zeros(n, bool)
        unified = np.zeros(n, bool)
        fired: list[list[str]] = [[] for _ in range(n)]
        if self.sources in ("unified", "both"):
            for code, (legend, solution, rate) in UNIFIED_RECOVER.items():
                hit = above(code, rate)
                unified |= hit
                split |= hit & (solution == "split-2")
                memory |= hit & (solution == "mem-+1000")
                for i in np.flatnonzero(hit):
                    fired[i].append(f"unified {code} {legend} > {rate}%: {solution}")
        static = np.zeros(n, bool)
        wait = np.zeros(n, bool)
        if self.sources in ("static", "both"):
            dominant = share.argmax(axis=1)
            main = cols.codes[dominant]
            acts = (share.max(axis=1) > STATIC_MAIN_SHARE) & ~unified
            for code, sites in STATIC_RULES.items():
                hit = acts & (main == code)
                held = (bad[np.arange(n), dominant] if sites == "code" else bad.any(axis=1) if sites == "any"
                        else np.zeros(n, bool))
                static |= hit & ~held
                wait |= hit & held
                for i in np.flatnonzero(hit):
                    fired[i].append(f"static {code} > 30%: " + ("automatic-wait (bad site)" if held[i] else "acdc"))
        blocked = np.zeros(n, bool)
        if self.sources in ("unified", "both"):
            for code, (legend, rate) in UNIFIED_BLOCK.items():
                hit = above(code, rate)
                blocked |= hit
                for i in np.flatnonzero(hit):
                    fired[i].append(f"unified block {code} {legend} > {rate}%")
        auto = (unified | static) & ~blocked
        out["auto"] = auto
        out.loc[auto, "action"] = "acdc"
        out.loc[auto, "splitting"] = np.where(split[auto], "2x", "1x")
        out.loc[auto, "xrootd"] = "disabled"
        out.loc[auto, "memory"] = np.where(memory[auto], f"{self.base_memory_mb + 1000:g}", "")
        out["rule"] = ["; ".join(f) if f else "no rule fires" for f in fired]
        return out

    def auto(self, X) -> np.ndarray:
        """Where a rule fired and its class is one of this target's classes (bool, one per row)."""
        return self._classes_of(self.recommendations(X)) >= 0

    def _classes_of(self, rec: pd.DataFrame) -> np.ndarray:
        column = np.full(len(rec), -1, dtype=np.int64)
        for i in np.flatnonzero(rec["auto"].to_numpy()):
            found = self.rule_columns_.get((rec["splitting"].iat[i], rec["memory"].iat[i]))
            if found is not None:
                column[i] = found[1]
        return column

    def predict_proba(self, X):
        """Mass 1 on the rules' class where they fire, the training class prior elsewhere.

        Parameters
        ----------
        X : {array-like, sparse matrix, DataFrame} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        column = self._classes_of(self.recommendations(X))
        proba = np.tile(self.class_prior_, (column.size, 1))
        fired = column >= 0
        proba[fired] = 0.0
        proba[np.flatnonzero(fired), column[fired]] = 1.0
        return proba
