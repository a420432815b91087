"""The self-contained HTML page of a comparison: the ranked table, its figures, the top runs' ROC."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

import pandas as pd

from wtc.evaluation.ranking import CHOICE_LABELS, DASH, Comparison

__all__ = ["html_report"]


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222;
       font-size: 15px; line-height: 1.45; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.meta { color: #555; font-size: 13px; } .note { background: #fff8e1; padding: 6px 10px; border-left: 4px solid #f0b400; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; }
td { white-space: nowrap; }
th { background: #f0f3f7; position: sticky; top: 0; max-width: 7em; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; } tr.best td { background: #e8f5e9; font-weight: 600; }
img { max-width: 100%; } .rocs { display: flex; flex-wrap: wrap; gap: 12px; }
.rocs figure { margin: 0; width: 420px; } figcaption { font-size: 13px; color: #444; }
code { background: #f4f4f4; padding: 1px 4px; } code.id { font-size: 11px; color: #666; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _cell(column: str, value, link: tuple[str, str] | None) -> str:
    if column == "run" and link is not None:  # the run's page in the MLflow UI; its id on hover and below
        url, run_id = link
        return (f'<td><a href="{html.escape(url)}" title="run {html.escape(run_id)}">{html.escape(str(value))}</a>'
                f'<br><code class="id">{html.escape(run_id)}</code></td>')
    if str(value)[:1].isdigit() or str(value) == DASH:
        return f'<td class="num">{html.escape(str(value))}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _html_table(table: pd.DataFrame, links: Sequence[tuple[str, str]] | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    body = []
    for i, row in enumerate(table.itertuples(index=False)):
        link = links[i] if links is not None else None
        cells = "".join(_cell(str(c), v, link) for c, v in zip(table.columns, row))
        body.append(f'<tr class="best">{cells}</tr>' if i == 0 else f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def html_report(comparison: Comparison, table: pd.DataFrame, title: str, meta: Sequence[str],
                figure_png: bytes | None, roc_kind: str, roc_pngs: Sequence[tuple[str, bytes]],
                roc_missing: Sequence[str] = (),
                side_by_side: Sequence[tuple[str, Sequence[tuple[str, bytes]]]] = (),
                links: Sequence[tuple[str, str]] | None = None, pr_missing: Sequence[str] = ()) -> str:
    """One self-contained HTML page: the ranked table, the comparison figure and the top runs' ROC.

    ``roc_kind`` is ``"points"`` (``roc_pngs`` holds one overlay figure drawn from the runs'
    logged ROC points) or ``"png"`` (each run's own ``plots/roc.png``, side by side).
    ``side_by_side`` holds, per figure artifact, each run's PNG (label, bytes): one row each.
    ``links`` holds, per row of ``table``, the run's page in the MLflow UI and its id; ``pr_missing``
    the top runs with no precision-recall curve.
    """

    direction = "higher" if comparison.greater_is_better else "lower"
    fixed = ", ".join(f"{CHOICE_LABELS[k]} = {html.escape(v)}" for k, v in comparison.fixed.items()) or "none"
    parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
              f"<style>{_CSS}</style></head><body>"), f"<h1>{html.escape(title)}</h1>",
             *(f'<p class="meta">{html.escape(m)}</p>' for m in meta),
             *(f'<p class="note">{html.escape(n)}</p>' for n in comparison.notes),
             (f"<h2>Runs, best first</h2><p>Ranked by the CV mean of <code>{comparison.metric}</code> "
              f"({direction} is better). Common to every run: {fixed}. "
              "“log-loss ÷ oracle” is test log-loss over the oracle’s on the same test rows (1 = the Bayes "
              "limit); “oracle AUC − AUC” the ROC AUC still to win; — means the run has no such value.</p>"),
             _html_table(table, links)]
    parts.append("<h2>Test metrics by choice</h2>")
    parts.append(_img(figure_png, "test metrics by choice") if figure_png else "<p>No run has test metrics.</p>")
    parts.append("<h2>ROC and precision-recall of the top runs</h2>")
    if roc_kind == "points":
        parts.append("<p>Drawn from the ROC points the runs logged (<code>curves/roc.json</code>), overlaid; beside "
                     "them the precision-recall curves of the same test predictions (<code>curves/pr.json</code>, "
                     "or the run's stored <code>figures/inputs.npz</code>), drawn with scikit-learn's "
                     "<code>PrecisionRecallDisplay</code>: binary runs for class 1, multi-class runs micro-averaged "
                     "(every task × class one-vs-rest, pooled), the dotted line the precision of a random "
                     "ranking (the positives' share).</p>")
        parts.extend(_img(png, "ROC and precision-recall overlay") for _, png in roc_pngs)
    elif roc_pngs:
        parts.append("<p>The runs log no ROC points, only their ROC figure: each top run’s "
                     "<code>plots/roc.png</code>, side by side (not overlaid).</p><div class='rocs'>")
        parts.extend(f"<figure>{_img(png, name)}<figcaption>{html.escape(name)}</figcaption></figure>"
                     for name, png in roc_pngs)
        parts.append("</div>")
    else:
        parts.append("<p>None of the top runs logged a ROC curve (runs with <code>tracking.log_plots=false</code> "
                     "log no figures).</p>")
    if roc_missing:
        parts.append(f"<p class='meta'>No ROC logged by: {html.escape(', '.join(roc_missing))}.</p>")
    if pr_missing and roc_pngs:
        parts.append("<p class='meta'>No precision-recall curve (no <code>curves/pr.json</code> nor stored test "
                     f"predictions) for: {html.escape(', '.join(pr_missing))}.</p>")
    for artifact, pngs in side_by_side:
        parts.append(f"<h2>{html.escape(artifact)} of each run, side by side</h2>")
        if not pngs:
            parts.append("<p>None of the runs logged it.</p>")
            continue
        parts.append("<div class='rocs'>")
        parts.extend(f"<figure>{_img(png, name)}<figcaption>{html.escape(name)}</figcaption></figure>"
                     for name, png in pngs)
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
