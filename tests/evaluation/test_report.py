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
    summary = summary_markdown("logreg-combined", CHOICES, METRICS, "roc_auc", FIGURES, 100, 20)
    sections = markdown_sections(summary)
    # the first line, all the run page shows before "Show more": the run, its CV objective, its test score
    assert summary.splitlines()[0] == "**logreg-combined**: CV roc_auc 0.7 ± 0.01 · test 0.71"
    assert all(key in sections["## Choices"] and value in sections["## Choices"] for key, value in CHOICES.items())
    (roc,) = [line for line in sections["## Metrics"].splitlines() if line.startswith("| roc_auc |")]
    assert "| 0.7 ± 0.01 | 0.71 |" in roc
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
    assert "![" not in figures_section(FIGURES)


def test_the_figures_are_inline_images_served_by_the_mlflow_server():
    section = markdown_sections(summary_markdown("lr", CHOICES, METRICS, "roc_auc", FIGURES, 100, 20, run_id="RID"))
    figures = section["## Figures"]
    assert listed(figures) == FIGURES
    assert [line for line in figures.splitlines() if line.startswith("![")] == [
        "![plots/roc.png](get-artifact?path=plots%2Froc.png&run_uuid=RID)",
        "![plots/cv_roc.png](get-artifact?path=plots%2Fcv_roc.png&run_uuid=RID)"]


def test_the_metrics_stand_against_the_oracle_and_the_class_prior():
    metrics = {**METRICS, "oracle/roc_auc": 0.9, "prior/roc_auc": 0.5, "prior/log_loss": 0.6931}
    summary = summary_markdown("lr", CHOICES, metrics, "roc_auc", [], 100, 20)
    lines = summary.splitlines()
    assert "| metric | CV mean ± std | test | oracle | class prior | train |" in lines
    assert "| roc_auc | 0.7 ± 0.01 | 0.71 | 0.9 | 0.5 | — |" in lines
    assert "| log_loss | — | — | — | 0.6931 | — |" in lines
    assert lines[0] == "**lr**: CV roc_auc 0.7 ± 0.01 · test 0.71 · oracle 0.9 · class prior 0.5"


def test_the_numbers_have_four_significant_digits():
    metrics = {"cv/log_loss_mean": 0.123456789, "cv/log_loss_std": 0.000123456, "test/log_loss": 0.2,
               "oracle/log_loss": 0.1, "test/roc_auc": 0.912345678, "oracle/roc_auc": 0.95}
    summary = summary_markdown("lr", CHOICES, metrics, "log_loss", [], 100, 20)
    (row,) = [line for line in summary.splitlines() if line.startswith("| log_loss |")]
    assert row == "| log_loss | 0.1235 ± 0.0001235 | 0.2 | 0.1 | — | — |"
    assert "test log-loss is 2× the oracle's; ROC AUC +0.0377 below it" in summary
