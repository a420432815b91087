"""Estimators scikit-learn lacks (the Keras network, the WTC-procedures baseline, early-stopped boosters) and the run pipeline."""

from wtc.models.dnn import DNNClassifier
from wtc.models.early_stopping import EarlyStoppingClassifier
from wtc.models.rules import RulesClassifier

__all__ = ["DNNClassifier", "EarlyStoppingClassifier", "RulesClassifier"]
