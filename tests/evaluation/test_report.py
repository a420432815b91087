"""The run summary's model section: how to log a model kept for later, then where it went."""

from __future__ import annotations

import pytest

from wtc.evaluation.report import MODEL_HEADING, summary_markdown, summary_with_model
from wtc.ops.deferred import _summary_with

CHOICES = {"model": "logreg", "view": "combined"}
METRICS = {"cv/roc_auc_mean": 0.7, "cv/roc_auc_std": 0.01, "test/roc_auc": 0.71}


@pytest.mark.parametrize("figures_on_demand", [True, False])
def test_the_model_section_says_how_then_where_and_keeps_the_rest(figures_on_demand):
    summary = summary_markdown("logreg-combined", CHOICES, METRICS, "roc_auc", ["plots/roc.png"], 100, 20,
                               on_demand="RID" if figures_on_demand else None, model_on_demand="RID")
    assert summary.count(MODEL_HEADING + "\n") == 1
    assert "`wtc runs model RID` logs it as an MLflow model" in summary
    logged = summary_with_model(summary, "RID", "models:/m-1")
    assert "wtc runs model" not in logged
    assert "## Model\n\nLogged after the run from `model/inputs.pkl`: `models:/m-1`.\n" in logged
    before, _, after = summary.partition(MODEL_HEADING)
    assert logged.startswith(before) and logged.endswith(after.partition("\n## ")[2])
    # Drawing the figures later keeps the model section, in either order.
    if figures_on_demand:
        drawn = _summary_with(logged, ["plots/roc.png", "plots/cv_roc.png"])
        assert "Logged after the run" in drawn and "## Figures\n\n- `plots/roc.png`\n- `plots/cv_roc.png`" in drawn
        assert summary_with_model(_summary_with(summary, ["plots/roc.png"]), "RID", "models:/m-1") == \
            _summary_with(logged, ["plots/roc.png"])


def test_a_summary_without_a_model_section_is_left_alone():
    summary = summary_markdown("logreg-combined", CHOICES, METRICS, "roc_auc", [], 100, 20)
    assert MODEL_HEADING not in summary
    assert summary_with_model(summary, "RID", "models:/m-1") == summary
