"""The short ``summary.md`` of a run: its choices, CV and test metrics, the oracle gap, its figures."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote

from wtc.evaluation.metrics import REGISTRY

__all__ = ["MODEL_HEADING", "ON_DEMAND_HEADING", "artifact_url", "figures_section", "headline", "model_section",
           "summary_markdown", "summary_with_model", "terminal_line"]

#: The heading of a summary's figures section while they wait to be drawn (``wtc runs figures``).
ON_DEMAND_HEADING = "## Figures (drawn on demand)"
#: The heading of a summary's section on a model kept for later (``wtc runs model``).
MODEL_HEADING = "## Model"


def _fmt(value) -> str:
    """A metric at 4 significant digits (``0.9312``, ``0.01``), ``—`` when missing."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def artifact_url(run_id: str, path: str) -> str:
    """The MLflow server's URL of a run's artifact, relative to the UI's page (what the UI itself fetches)."""
    return f"get-artifact?path={quote(path, safe='')}&run_uuid={run_id}"


def summary_markdown(name: str, choices: Mapping[str, str], metrics: Mapping[str, float], objective: str,
                     figures: Sequence[str], n_train: int, n_test: int, on_demand: str | None = None,
                     model_on_demand: str | None = None, run_id: str | None = None) -> str:
    """A page a researcher reads first: what was run, how it scored against the oracle (the Bayes limit,
    on generated data) and the class-prior baseline (``prior/…``).

    ``on_demand`` (the run's id) says the everyday figures are drawn on demand and how;
    ``model_on_demand`` (the run's id) that its MLflow model is logged on demand and how;
    ``run_id`` shows the drawn figures inline (Markdown images the MLflow UI loads from its server).
    """
    lines = [headline(name, metrics, objective), "", "## Metrics", "",
             "| metric | CV mean ± std | test | oracle | class prior | train |", "|---|---|---|---|---|---|"]
    for metric in REGISTRY:
        mean, std = metrics.get(f"cv/{metric}_mean"), metrics.get(f"cv/{metric}_std")
        cv = "—" if mean is None else f"{_fmt(mean)} ± {_fmt(std)}"
        lines.append(f"| {metric} | {cv} | {_fmt(metrics.get(f'test/{metric}'))} | "
                     f"{_fmt(metrics.get(f'oracle/{metric}'))} | {_fmt(metrics.get(f'prior/{metric}'))} | "
                     f"{_fmt(metrics.get(f'train/{metric}'))} |")
    for key in sorted(k for k in metrics if k.startswith("test/coverage_at_p")):
        oracle = metrics.get(key.replace("test/", "oracle/"))
        lines.append(f"| {key.split('/', 1)[1]} | — | {_fmt(metrics[key])} | {_fmt(oracle)} | — | — |")
    if "oracle/log_loss" in metrics:
        ratio = metrics["test/log_loss"] / metrics["oracle/log_loss"]
        gap = metrics["oracle/roc_auc"] - metrics["test/roc_auc"]
        lines += ["", f"Oracle gap: test log-loss is {ratio:.4g}× the oracle's; ROC AUC {gap:+.3g} below it."]
    lines += ["", "## Choices", "", "| choice | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in choices.items()]
    lines += ["", f"Objective: CV mean of `{objective}` ({REGISTRY[objective].direction}d); "
                  f"{n_train} training rows, {n_test} held-out test rows."]
    if model_on_demand:
        lines += ["", model_section(model_on_demand)]
    if on_demand:
        lines += ["", ON_DEMAND_HEADING, "",
                  f"This run logged what its figures are drawn from (`figures/inputs.npz`); draw them with "
                  f"`wtc runs figures {on_demand}`."]
        lines += [f"- `{f}`" for f in figures]
    elif figures:
        lines += ["", figures_section(figures, run_id)]
    return "\n".join(lines) + "\n"


def headline(name: str, metrics: Mapping[str, float], objective: str) -> str:
    """The summary's first line, what the run page shows before "Show more": the run, its CV objective and
    the test score against the oracle and the class prior, and its AUTO coverage at 95% precision."""
    mean, std = metrics.get(f"cv/{objective}_mean"), metrics.get(f"cv/{objective}_std")
    parts = [f"CV {objective} {_fmt(mean)} ± {_fmt(std)}", f"test {_fmt(metrics.get(f'test/{objective}'))}"]
    parts += [f"{label} {_fmt(metrics[key])}" for label, key in
              (("oracle", f"oracle/{objective}"), ("class prior", f"prior/{objective}")) if key in metrics]
    if "test/coverage_at_p95" in metrics:
        parts.append(f"AUTO at 95% precision on {_fmt(metrics['test/coverage_at_p95'])} of test tasks")
    return f"**{name}**: " + " · ".join(parts)


def model_section(run_id: str, model_uri: str | None = None) -> str:
    """The summary's section on a model kept for later: how to log it, or where it went."""
    if model_uri is None:
        text = (f"This run kept what its model is made from (`model/inputs.pkl`); `wtc runs model {run_id}` logs "
                "it as an MLflow model, and `wtc promote` does when it registers this run.")
    else:
        text = f"Logged after the run from `model/inputs.pkl`: `{model_uri}`."
    return "\n".join([MODEL_HEADING, "", text])


def summary_with_model(summary: str, run_id: str, model_uri: str) -> str:
    """The run's summary with its model section saying where the model went (unchanged without one)."""
    head, heading, rest = summary.partition("\n" + MODEL_HEADING + "\n")
    if not heading:
        return summary
    _, next_heading, tail = rest.partition("\n## ")
    return head + "\n" + model_section(run_id, model_uri) + "\n" + (("\n## " + tail) if next_heading else "")


def figures_section(figures: Sequence[str], run_id: str | None = None) -> str:
    """The summary's list of the run's figures, then (given the run's id) each PNG inline."""
    lines = ["## Figures", ""] + [f"- `{f}`" for f in figures]
    if run_id:
        lines += [""] + [f"![{f}]({artifact_url(run_id, f)})" for f in figures if f.endswith(".png")]
    return "\n".join(lines)


def terminal_line(name: str, metrics: Mapping[str, float], run_id: str, uri: str, objective: str) -> str:
    """The one line a job prints when it ends: name, test metric vs oracle, run id, where to look."""
    test, oracle = metrics.get(f"test/{objective}"), metrics.get(f"oracle/{objective}")
    versus = f" (oracle {_fmt(oracle)})" if oracle is not None else ""
    auc = "" if objective == "roc_auc" else f", test roc_auc {_fmt(metrics.get('test/roc_auc'))}"
    return (f"{name}: test {objective} {_fmt(test)}{versus}{auc}; cv {_fmt(metrics.get(f'cv/{objective}_mean'))}; "
            f"run {run_id} in {uri}")
