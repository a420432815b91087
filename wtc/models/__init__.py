"""Estimators scikit-learn lacks (the Keras network, the WTC-procedures baseline, early-stopped boosters,
the cascade) and the run pipeline."""

from wtc.models.cascade import CascadeClassifier
from wtc.models.dnn import DNNClassifier
from wtc.models.early_stopping import EarlyStoppingClassifier
from wtc.models.rules import RulesClassifier

__all__ = ["CascadeClassifier", "DNNClassifier", "EarlyStoppingClassifier", "RulesClassifier"]
