"""Reading, validating and featurising WTC actions histories; the synthetic benchmark."""

from wtc.data.features import EXTRAS, VIEWS, FeatureNames, build_features
from wtc.data.history import History, HistoryError, load_history
from wtc.data.oracle import has_oracle, load_oracle
from wtc.data.targets import TARGETS, build_target

__all__ = [
    "EXTRAS",
    "TARGETS",
    "VIEWS",
    "FeatureNames",
    "History",
    "HistoryError",
    "build_features",
    "build_target",
    "has_oracle",
    "load_history",
    "load_oracle",
]
