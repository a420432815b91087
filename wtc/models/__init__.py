"""Estimators scikit-learn lacks (the Keras network, the WTC-procedures baseline, the production rules, early-stopped boosters,
the cascade, probability averaging and calibration) and the run pipeline."""

from wtc.models.calibration import CalibratedClassifier
from wtc.models.cascade import CascadeClassifier
from wtc.models.dnn import DNNClassifier
from wtc.models.early_stopping import EarlyStoppingClassifier
from wtc.models.ensemble import AveragingClassifier
from wtc.models.recoveror import RecoverorPolicy
from wtc.models.rules import RulesClassifier

__all__ = ["AveragingClassifier", "CalibratedClassifier", "CascadeClassifier", "DNNClassifier",
           "EarlyStoppingClassifier", "RecoverorPolicy", "RulesClassifier"]
