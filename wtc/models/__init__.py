"""Estimators scikit-learn lacks (the Keras network, the WTC-procedures baseline) and the run pipeline."""

from wtc.models.dnn import DNNClassifier
from wtc.models.rules import RulesClassifier

__all__ = ["DNNClassifier", "RulesClassifier"]
