"""Reading, validating and featurising WTC actions histories; the synthetic benchmark."""

from wtc.data.describe import describe_history
from wtc.data.features import EXTRAS, VIEWS, FeatureNames, build_features
from wtc.data.history import History
from wtc.data.loader import load_history
from wtc.data.oracle import has_oracle, load_oracle
from wtc.data.targets import TARGETS, build_target
from wtc.errors import HistoryError

__all__ = [
    "EXTRAS",
    "TARGETS",
    "VIEWS",
    "FeatureNames",
    "History",
    "HistoryError",
    "build_features",
    "build_target",
    "describe_history",
    "has_oracle",
    "load_history",
    "load_oracle",
]
