"""``wtc compare``: rank an experiment's or a sweep's parent runs, write the report and log it."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from wtc.errors import WtcError
from wtc.evaluation.diagnostics import FIGURE_INPUTS, FigureInputs, pr_points
from wtc.evaluation.ranking import (
    CHOICE_LABELS,
    Comparison,
    comparison_figure,
    markdown_table,
    png_bytes,
    rank_runs,
    raw_table,
    roc_overlay_figure,
    short_name,
    summary_table,
)
from wtc.ops.compare_html import html_report
from wtc.ops.ui import ui_address
from wtc.outputs import check_output, write_atomic

__all__ = ["ComparisonReport", "compare"]

#: The report's files in ``--out``.
REPORT_FILES = ("comparison.md", "comparison.csv", "comparison.html")
_ROC_POINTS = "curves/roc.json"
_PR_POINTS = "curves/pr.json"
_ROC_PNG = "plots/roc.png"


# ------------------------------------------------------------------------------ command
@dataclass
class ComparisonReport:
    """What ``wtc compare`` wrote: the files, the Markdown table and the comparison run."""

    comparison: Comparison
    markdown: str
    paths: dict[str, Path]
    run_id: str | None


def _pr_points(tracking_uri: str, run_id: str) -> dict | None:
    """A run's logged precision-recall points; else drawn from its stored test predictions (the figure
    inputs of a sweep's run, ``figures/inputs.npz``); else None."""
    from wtc.store.query import read_artifact, read_json_artifact

    points = read_json_artifact(tracking_uri, run_id, _PR_POINTS)
    if isinstance(points, dict) and "precision" in points and "recall" in points:
        return points
    raw = read_artifact(tracking_uri, run_id, FIGURE_INPUTS)
    if raw is None:
        return None
    inputs = FigureInputs.load(io.BytesIO(raw))
    return pr_points(inputs.y_test, inputs.test_proba) or None


def _top_rocs(tracking_uri: str, runs: pd.DataFrame,
              top: int) -> tuple[str, list[tuple[str, bytes]], list[str], list[str]]:
    """The top runs' ROC (and precision-recall) curves: ``(kind, PNGs, runs without a ROC, runs
    without precision-recall points)``."""
    from wtc.store.query import read_artifact, read_json_artifact

    best = runs[runs["status"] == "FINISHED"].head(top)
    labels = [f"#{rank} {name}" for rank, name in zip(best.index + 1, best["run_name"])]
    points = [read_json_artifact(tracking_uri, run_id, _ROC_POINTS) for run_id in best["run_id"]]
    if len(best) and all(isinstance(p, dict) and "fpr" in p and "tpr" in p for p in points):
        prs = [(label, _pr_points(tracking_uri, run_id)) for label, run_id in zip(labels, best["run_id"])]
        figure = roc_overlay_figure(list(zip(labels, points)), [(label, pr) for label, pr in prs if pr])
        return "points", [("overlay", png_bytes(figure))], [], [label for label, pr in prs if not pr]
    pngs, missing = [], []
    for label, run_id in zip(labels, best["run_id"]):
        png = read_artifact(tracking_uri, run_id, _ROC_PNG)
        (pngs.append((label, png)) if png else missing.append(label))
    return "png", pngs, missing, labels


def _run_figures(tracking_uri: str, comparison: Comparison, artifacts: Sequence[str],
                 top: int) -> list[tuple[str, list[tuple[str, bytes]]]]:
    """Per artifact (e.g. ``plots/confusion_matrix.png``), the PNG of each of the ``top`` best finished runs."""
    from wtc.ops.deferred import draw_run_figures
    from wtc.store.query import read_artifact

    best = comparison.runs[comparison.runs["status"] == "FINISHED"].head(top)
    if artifacts:  # runs of a sweep (diagnostics=light) draw their figures when first shown
        for _ in draw_run_figures(tracking_uri, best["run_id"].tolist()):
            pass
    labels = [f"#{rank} " + ", ".join(f"{CHOICE_LABELS[c]}={short_name(row[c])}" for c in comparison.varied)
              for rank, (_, row) in zip(best.index + 1, best.iterrows())]
    out = []
    for artifact in artifacts:
        pngs = [(label, read_artifact(tracking_uri, run_id, artifact)) for label, run_id in zip(labels, best["run_id"])]
        out.append((artifact, [(label, png) for label, png in pngs if png]))
    return out


def compare(tracking_uri: str, out: Path | str, experiment: str | None = None, sweep: str | None = None,
            top: int = 5, log_run: bool = True, figures: Sequence[str] = (), force: bool = False) -> ComparisonReport:
    """Compare the parent runs of an experiment or a sweep; write and log the report.

    Writes ``comparison.md``, ``comparison.csv`` and ``comparison.html`` (figures embedded)
    into ``out`` and, with ``log_run``, logs them as the artifacts of a run named
    ``compare-<timestamp>`` tagged ``wtc.kind=comparison`` in the compared runs' experiment.

    Parameters
    ----------
    tracking_uri : str
        The store to read.
    out : path
        Folder of the report (created); a report already there is refused unless ``force``.
    experiment, sweep : str, optional
        Which runs: one experiment, or one sweep (its dir or a unique suffix). With neither,
        every run of the store, which must then belong to one experiment.
    top : int, default 5
        How many of the best runs have their ROC and precision-recall curves in the report.
    log_run : bool, default True
        Log the report to the store as a comparison run.
    figures : sequence of str, optional
        Figure artifacts of the runs (e.g. ``plots/confusion_matrix.png``) shown side by side in
        the HTML page, one row per artifact, for the ``top`` best runs.
    force : bool, default False
        Write over the report files already in ``out``.
    """
    from wtc.store.query import log_comparison, parent_runs

    if top < 1:
        raise WtcError("--top must be at least 1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WtcError(f"--out {out} is a file, not a folder: choose a folder for the report")
    for file in REPORT_FILES:  # before any work: a refused --out costs nothing
        check_output(out / file, force)
    runs = parent_runs(tracking_uri, experiment=experiment, sweep=sweep)
    selection = f"experiment {experiment}" if experiment else f"sweep {sweep}" if sweep else "every run"
    if runs.empty:
        raise WtcError(f"no finished or failed parent runs in {tracking_uri} ({selection})")
    experiments = sorted(runs["experiment"].unique())
    if experiment is None and sweep is None:
        if len(experiments) > 1:
            raise WtcError(f"the store holds runs of several experiments ({', '.join(experiments)}); "
                           "choose one with --experiment or a sweep with --sweep")
        selection = f"experiment {experiments[0]}"
    comparison = rank_runs(runs)
    table = summary_table(comparison)
    markdown = markdown_table(table)
    stamp = datetime.now()
    name = f"compare-{stamp:%Y%m%d-%H%M%S}"
    meta = [f"{len(runs)} run(s) of {selection} ({', '.join(experiments)}) in {tracking_uri}",
            f"generated {stamp:%Y-%m-%d %H:%M:%S}" + (f"; logged as run {name}" if log_run else "")]
    fixed = ", ".join(f"{CHOICE_LABELS[k]}={v}" for k, v in comparison.fixed.items())
    md_text = (f"# Comparison of {selection}\n\n" + "\n".join(f"- {m}" for m in meta + comparison.notes)
               + f"\n- ranked by cv/{comparison.metric}_mean ({'higher' if comparison.greater_is_better else 'lower'}"
               f" is better); common to every run: {fixed or 'none'}\n\n{markdown}\n")
    figure = comparison_figure(comparison)
    roc_kind, roc_pngs, roc_missing, pr_missing = _top_rocs(tracking_uri, comparison.runs, top)
    side_by_side = _run_figures(tracking_uri, comparison, figures, top)
    if side_by_side:
        md_text += "".join(f"\n{artifact} of each run, side by side: comparison.html ("
                           f"{len(pngs)} run(s) logged it)\n" for artifact, pngs in side_by_side)
    address = ui_address(tracking_uri)
    links = [(f"{address}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning", run_id)
             for experiment_id, run_id in zip(comparison.runs["experiment_id"], comparison.runs["run_id"])]
    page = html_report(comparison, table, f"wtc comparison: {selection}", meta,
                       png_bytes(figure) if figure is not None else None, roc_kind, roc_pngs, roc_missing, side_by_side,
                       links, pr_missing)
    texts = {"comparison.md": md_text, "comparison.csv": raw_table(comparison).to_csv(index=False),
             "comparison.html": page}
    paths = {file: write_atomic(out / file, text) for file, text in texts.items()}
    run_id = None
    if log_run:
        tags = {"wtc.compare.selection": selection, "wtc.compare.runs": len(runs)}
        run_id = log_comparison(tracking_uri, comparison.runs["experiment"].iloc[0], name, texts, tags=tags)
    return ComparisonReport(comparison, markdown, paths, run_id)
