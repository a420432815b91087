"""Ranking parent runs by their CV objective, and the tables and figures of a comparison (from a runs table, never from the store)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wtc.errors import WtcError
from wtc.evaluation.metrics import METRICS, REGISTRY

__all__ = [
    "CHOICE_LABELS",
    "DASH",
    "Comparison",
    "comparison_figure",
    "markdown_table",
    "png_bytes",
    "rank_runs",
    "raw_table",
    "roc_overlay_figure",
    "short_name",
    "summary_table",
]

#: What a table cell shows for a value a run does not have.
DASH = "—"
#: Choice param -> column title: every choice a parent run logs (wtc.run.provenance.run_choices) and
#: the store reads back for a comparison (wtc.store.query.parent_runs).
CHOICE_LABELS = {
    "model.name": "model", "data.view": "view", "data.extras": "extras", "resample": "resampler",
    "scaler": "scaler", "search.kind": "search", "target.name": "target", "metric": "metric",
    "cv.kind": "cv", "cv.n_splits": "folds", "seed": "seed",
}
#: Test metrics the comparison shows, in this order.
TEST_METRICS = ("roc_auc", "log_loss", "accuracy", "f1_macro", "gmean")
COVERAGE = "coverage_at_p95"
#: When nothing varies, these choices still name the runs.
_ALWAYS = ("model.name", "data.view")


# ------------------------------------------------------------------------------ ranking
@dataclass
class Comparison:
    """Parent runs ranked by their CV objective, best first, and what they have in common."""

    runs: pd.DataFrame                     # rows of wtc.store.query.parent_runs, ranked
    metric: str                            # the objective they are ranked by
    greater_is_better: bool
    varied: list[str]                      # choice params with more than one value
    fixed: dict[str, str]                  # choice param -> its one value
    notes: list[str] = field(default_factory=list)


def short_name(value) -> str:
    """``imblearn.over_sampling.SMOTE`` -> ``SMOTE``; missing -> ``—``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return str(value).rsplit(".", 1)[-1]


def rank_runs(runs: pd.DataFrame, metric: str | None = None) -> Comparison:
    """Rank parent runs by the CV mean of their objective, best first; failed runs last.

    The one ranking of the leaderboard, ``wtc compare`` and ``wtc promote``: they name the
    same best run. Test metrics never rank (they are reported).

    Parameters
    ----------
    runs : pandas.DataFrame
        As returned by :func:`wtc.store.query.parent_runs` (at least one row).
    metric : str, optional
        Rank by ``cv/<metric>_mean`` instead of the runs' own objective.

    Returns
    -------
    Comparison
        The objective is the runs' ``metric`` param (the most frequent one if runs differ,
        with a note); its direction comes from :data:`wtc.evaluation.metrics.METRICS`.
    """
    if runs.empty:
        raise WtcError("no finished or failed parent runs to compare")
    notes: list[str] = []
    metrics = runs["metric"].dropna().value_counts() if "metric" in runs else pd.Series(dtype=int)
    if metric is None:
        metric = str(metrics.index[0]) if len(metrics) else "roc_auc"
    elif len(metrics) > 1 or (len(metrics) and metrics.index[0] != metric):
        notes.append(f"ranked by cv/{metric}_mean (asked for), not the objective the runs optimised "
                     f"({', '.join(map(str, metrics.index))})")
    if len(metrics) > 1 and not notes:
        notes.append(f"runs optimised different metrics ({', '.join(map(str, metrics.index))}); "
                     f"ranked by cv/{metric}_mean")
    known = METRICS.get(metric) or REGISTRY.get(metric)
    if known is None:
        raise WtcError(f"runs optimise an unknown metric {metric!r}; known: {', '.join(REGISTRY)}")
    key = f"cv/{metric}_mean"
    score = pd.to_numeric(runs[key], errors="coerce") if key in runs else pd.Series(np.nan, index=runs.index)
    order = (-score if known.greater_is_better else score).fillna(np.inf)
    ranked = runs.assign(_order=order.to_numpy()).sort_values("_order", kind="stable").drop(columns="_order")
    ranked = ranked.reset_index(drop=True)
    choices = [c for c in CHOICE_LABELS if c in ranked]
    values = {c: ranked[c].map(short_name) for c in choices}
    varied = [c for c in choices if values[c].nunique(dropna=False) > 1]
    fixed = {c: str(values[c].iloc[0]) for c in choices if c not in varied}
    if not varied:
        varied = [c for c in _ALWAYS if c in choices]
    return Comparison(ranked, metric, known.greater_is_better, varied, fixed, notes)


# ------------------------------------------------------------------------------- tables
def _number(value, digits: int = 3) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return DASH
    return DASH if math.isnan(value) else f"{value:.{digits}f}"


def _get(row: pd.Series, key: str):
    return row[key] if key in row.index else None


def _ratio(a, b):
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return float("nan")
    return a / b if b else float("nan")


def _difference(a, b):
    try:
        return float(a) - float(b)
    except (TypeError, ValueError):
        return float("nan")


def raw_table(comparison: Comparison) -> pd.DataFrame:
    """One numeric row per run, best first: the CSV of a comparison."""
    runs, metric = comparison.runs, comparison.metric
    out = pd.DataFrame({"rank": np.arange(1, len(runs) + 1), "run_id": runs["run_id"], "run_name": runs["run_name"],
                        "status": runs["status"], "experiment": runs["experiment"]})
    for choice in CHOICE_LABELS:
        if choice in runs:
            out[choice] = runs[choice].map(lambda v: None if short_name(v) == DASH else v)
    for key in (f"cv/{metric}_mean", f"cv/{metric}_std", *(f"test/{m}" for m in TEST_METRICS),
                *(f"oracle/{m}" for m in ("roc_auc", "log_loss")), f"test/{COVERAGE}", f"oracle/{COVERAGE}"):
        out[key] = pd.to_numeric(runs[key], errors="coerce") if key in runs else np.nan
    out["gap/log_loss_ratio"] = [_ratio(a, b) for a, b in zip(out["test/log_loss"], out["oracle/log_loss"])]
    out["gap/roc_auc"] = [_difference(b, a) for a, b in zip(out["test/roc_auc"], out["oracle/roc_auc"])]
    out["wall_s"] = runs["wall_s"]
    out["wtc.sweep"] = runs.get("wtc.sweep")
    return out


def summary_table(comparison: Comparison, kind: str = "compare") -> pd.DataFrame:
    """The comparison as display strings (``—`` where a run has no value), best first.

    Parameters
    ----------
    comparison : Comparison
    kind : {"compare", "leaderboard"}
        ``compare``: rank, run, the varied choices, CV objective, five test metrics, the oracle gap,
        coverage at 95%, wall time. ``leaderboard``: rank, run, varied choices, CV objective,
        test AUC and log-loss, oracle log-loss, coverage at 95% (when any run has it), status.
    """
    raw = raw_table(comparison)
    metric = comparison.metric
    table = pd.DataFrame({"rank": raw["rank"].astype(str), "run": raw["run_name"]})
    for choice in comparison.varied:
        table[CHOICE_LABELS[choice]] = raw[choice].map(short_name)
    table[f"CV {metric} (mean ± std)"] = [
        DASH if _number(m) == DASH else f"{_number(m)} ± {_number(s)}"
        for m, s in zip(raw[f"cv/{metric}_mean"], raw[f"cv/{metric}_std"])]
    has_coverage = raw[[f"test/{COVERAGE}", f"oracle/{COVERAGE}"]].notna().any().any()
    if kind == "leaderboard":
        table["test AUC"] = raw["test/roc_auc"].map(_number)
        table["test log-loss"] = raw["test/log_loss"].map(_number)
        table["oracle log-loss"] = raw["oracle/log_loss"].map(_number)
        if has_coverage:
            table["coverage@p95"] = raw[f"test/{COVERAGE}"].map(_number)
        table["status"] = raw["status"]
        return table
    for name in TEST_METRICS:
        table[f"test {name}"] = raw[f"test/{name}"].map(_number)
    table["log-loss ÷ oracle"] = raw["gap/log_loss_ratio"].map(lambda v: _number(v, 2))
    table["oracle AUC − AUC"] = raw["gap/roc_auc"].map(_number)
    table["coverage@p95"] = raw[f"test/{COVERAGE}"].map(_number)
    table["oracle coverage@p95"] = raw[f"oracle/{COVERAGE}"].map(_number)
    table["wall s"] = raw["wall_s"].map(lambda v: _number(v, 1))
    failed = raw["status"] != "FINISHED"
    if failed.any():
        table["status"] = raw["status"]
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub Markdown table of display strings, columns padded for a terminal."""
    header = [str(c) for c in table.columns]
    rows = [[str(v).replace("|", "\\|") for v in row] for row in table.itertuples(index=False)]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


# ------------------------------------------------------------------------------ figures
def comparison_figure(comparison: Comparison) -> Figure | None:
    """Test metrics against each varied choice: every run a point, the mean a bar; the oracle
    (when runs have one) a dashed line. Rows: test ROC AUC, and the objective's test metric
    when it is another. Colours: the second varied choice, so a panel reads as choice × choice.
    ``None`` when no run has a test metric."""
    import seaborn as sns

    runs = raw_table(comparison)
    metrics = [m for m in dict.fromkeys(("roc_auc", comparison.metric)) if runs[f"test/{m}"].notna().any()]
    if not metrics:
        return None
    varied = comparison.varied
    data = runs.assign(**{CHOICE_LABELS[c]: runs[c].map(short_name) for c in varied})
    fig = Figure(figsize=(max(4.2 * len(varied), 6.0), 3.8 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), len(varied), squeeze=False)
    for i, metric in enumerate(metrics):
        for j, choice in enumerate(varied):
            ax, x = axes[i][j], CHOICE_LABELS[choice]
            others = [CHOICE_LABELS[c] for c in varied if c != choice]
            hue = max(others, key=lambda o: data[o].nunique()) if others else None
            order = sorted(data[x].unique())
            sns.pointplot(data=data, x=x, y=f"test/{metric}", order=order, errorbar=None, color="0.25",
                          markers="_", markersize=18, linestyles="none", ax=ax)
            sns.stripplot(data=data, x=x, y=f"test/{metric}", order=order, hue=hue, dodge=False, size=7,
                          jitter=0.15, alpha=0.85, ax=ax)
            oracle = runs.get(f"oracle/{metric}")
            if oracle is not None and oracle.notna().any():
                ax.axhline(float(oracle.mean()), color="C3", ls="--", lw=1.2, label="oracle (mean)")
            ax.set(xlabel=x, ylabel=f"test {metric}", title=f"test {metric} by {x}" + (f" × {hue}" if hue else ""))
            ax.tick_params(axis="x", labelrotation=20)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small", title=hue, title_fontsize="small", loc="best", framealpha=0.6)
    fig.suptitle("Test metrics by choice (points: runs; bars: mean; dashed: oracle)")
    return fig


def roc_overlay_figure(curves: Sequence[tuple[str, dict]],
                       precision_recall: Sequence[tuple[str, dict]] = ()) -> Figure:
    """ROC curves of several runs on one plot, from logged points (``{"fpr": [...], "tpr": [...]}``);
    with ``precision_recall`` (``{"precision", "recall", "average_precision", "prevalence"}`` per run,
    see :func:`wtc.evaluation.diagnostics.pr_points`), their precision-recall curves beside it."""
    from sklearn.metrics import PrecisionRecallDisplay

    fig = Figure(figsize=(13.0 if precision_recall else 6.5, 5.5), layout="constrained")
    axes = fig.subplots(1, 2 if precision_recall else 1, squeeze=False)[0]
    ax = axes[0]
    for label, points in curves:
        fpr, tpr = np.asarray(points["fpr"], dtype=float), np.asarray(points["tpr"], dtype=float)
        auc = points.get("auc", float(np.trapezoid(tpr, fpr)))
        ax.plot(fpr, tpr, lw=1.8, label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title="ROC of the top runs (test split)")
    ax.legend(loc="lower right", fontsize="small")
    if precision_recall:
        ax, chance = axes[1], set()
        for i, (label, points) in enumerate(precision_recall):
            prevalence = points.get("prevalence")
            display = PrecisionRecallDisplay(np.asarray(points["precision"], dtype=float),
                                             np.asarray(points["recall"], dtype=float),
                                             average_precision=points.get("average_precision"),
                                             prevalence_pos_label=prevalence)
            new_chance = prevalence is not None and round(prevalence, 4) not in chance
            display.plot(ax=ax, name=label, curve_kwargs={"lw": 1.8, "color": f"C{i}"}, plot_chance_level=new_chance,
                         chance_level_kw={"color": "0.6", "ls": ":", "lw": 1})
            if new_chance:
                chance.add(round(prevalence, 4))
        ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.01),
               title="Precision-recall of the top runs (test split)")
        ax.legend(loc="lower left", fontsize="small")
    return fig


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
