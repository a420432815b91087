"""The run summary (``summary.md``, the run page's Description) through its public functions: what
each section says, not its exact wording. Drawing a run's figures into it is tested in
tests/ops/test_deferred.py (``wtc.ops.deferred.draw_run_figures`` on a run)."""

from __future__ import annotations

import pytest

from tests.factories import listed, markdown_sections
from wtc.evaluation.report import (
    MODEL_HEADING,
    ON_DEMAND_HEADING,
    figures_section,
    summary_markdown,
    summary_with_model,
)

CHOICES = {"model": "logreg", "view": "combined"}
METRICS = {"cv/roc_auc_mean": 0.7, "cv/roc_auc_std": 0.01, "test/roc_auc": 0.71}
FIGURES = ["plots/roc.png", "plots/cv_roc.png"]


def test_the_summary_names_the_choices_and_the_scores():
    sections = markdown_sections(summary_markdown("logreg-combined", CHOICES, METRICS, "roc_auc", FIGURES, 100, 20))
    assert "# logreg-combined" in sections
    assert all(key in sections["## Choices"] and value in sections["## Choices"] for key, value in CHOICES.items())
    (roc,) = [line for line in sections["## Metrics"].splitlines() if line.startswith("| roc_auc |")]
    assert "0.7000 ± 0.0100" in roc and "0.7100" in roc
    assert listed(sections["## Figures"]) == FIGURES and MODEL_HEADING not in sections


@pytest.mark.parametrize("figures_on_demand", [True, False])
def test_the_model_section_says_how_then_where_and_keeps_the_rest(figures_on_demand):
    summary = summary_markdown("logreg-combined", CHOICES, METRICS, "roc_auc", FIGURES, 100, 20,
                               on_demand="RID" if figures_on_demand else None, model_on_demand="RID")
    before = markdown_sections(summary)
    assert "`wtc runs model RID`" in before[MODEL_HEADING]  # how to log the model kept for later
    figures = before[ON_DEMAND_HEADING] if figures_on_demand else before["## Figures"]
    assert listed(figures) == FIGURES
    assert ("`wtc runs figures RID`" in figures) == figures_on_demand

    after = markdown_sections(summary_with_model(summary, "RID", "models:/m-1"))
    assert "`models:/m-1`" in after[MODEL_HEADING] and "wtc runs model" not in after[MODEL_HEADING]
    assert list(after) == list(before)  # same sections, in the same order
    assert {h: b for h, b in after.items() if h != MODEL_HEADING} == \
        {h: b for h, b in before.items() if h != MODEL_HEADING}


def test_a_summary_without_a_model_section_is_left_alone():
    summary = summary_markdown("logreg-combined", CHOICES, METRICS, "roc_auc", [], 100, 20)
    assert MODEL_HEADING not in markdown_sections(summary)
    assert summary_with_model(summary, "RID", "models:/m-1") == summary


def test_the_figures_section_lists_each_figure_once_in_order():
    assert listed(markdown_sections(figures_section(FIGURES))["## Figures"]) == FIGURES
