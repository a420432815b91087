"""Custom estimators: the Keras network and the WTC-procedures baseline."""

from wtc.models.dnn import DNNClassifier
from wtc.models.rules import RulesClassifier

__all__ = ["DNNClassifier", "RulesClassifier"]
