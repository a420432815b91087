"""Evaluation of a fitted model: the metric registry, figures, and which diagnostics a run logs."""

from wtc.evaluation.metrics import METRICS, REGISTRY, Metric, ks_statistic, objective_value, score_all

__all__ = ["METRICS", "REGISTRY", "Metric", "ks_statistic", "objective_value", "score_all"]
