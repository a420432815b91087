"""What a sweep's runs make on demand: their everyday figures (``wtc runs figures``) and their model (``wtc runs model``).

With ``diagnostics.figures: on_demand`` (the ``light`` level of sweeps) a run logs what its
figures are drawn from, ``figures/inputs.npz``, instead of drawing them: on the 2 cores of a
sweep, drawing ~9 PNGs with matplotlib is most of what a job's record costs. This draws them,
from exactly those numbers and with the same code a ``full`` run uses, into the run's
``plots/`` and rewrites its summary (``summary.md`` and the run page's description) to list
them. The leaderboard does it for a sweep's top 3 runs, ``wtc compare`` for the runs it shows.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wtc.errors import WtcError, one_line
from wtc.evaluation.diagnostics import FIGURE_INPUTS, FigureInputs, draw_figures
from wtc.evaluation.report import ON_DEMAND_HEADING, figures_section
from wtc.store.logged_models import MODEL_INPUTS, build_run_models
from wtc.store.query import TAG_FIGURES, StoreException, parent_runs, read_artifact, store_client
from wtc.store.runs import RunLogger

__all__ = ["ON_DEMAND", "DrawnFigures", "OnDemand", "draw_run_figures", "runs_to_draw"]


@dataclass
class DrawnFigures:
    """What drawing one run's figures did: ``drawn``, ``already drawn`` or ``no inputs``."""

    run_id: str
    run_name: str
    outcome: str
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def runs_to_draw(tracking_uri: str, run_ids: Sequence[str] = (), experiment: str | None = None,
                 sweep: str | None = None, top: int | None = None) -> list[str]:
    """The run ids named, else the finished parent runs of an experiment or a sweep, best first
    by the CV objective (the ``top`` best only, if given)."""
    if run_ids:
        return list(dict.fromkeys(run_ids))
    if experiment is None and sweep is None:
        raise WtcError("name the runs: run ids, --sweep TAG or --experiment NAME")
    from wtc.evaluation.ranking import rank_runs

    runs = parent_runs(tracking_uri, experiment=experiment, sweep=sweep)
    if runs.empty:
        return []
    ranked = rank_runs(runs).runs
    ids = ranked.loc[ranked["status"] == "FINISHED", "run_id"].tolist()
    return ids[:top] if top else ids


def _summary_with(summary: str, drawn: list[str], run_id: str | None = None) -> str:
    """The run's summary with its on-demand section replaced by its figures (inline, given the run's id)."""
    head, _, section = summary.partition(ON_DEMAND_HEADING)
    earlier = [line[3:-1] for line in section.splitlines() if line.startswith("- `") and line.endswith("`")]
    figures = drawn + [f for f in earlier if f not in drawn]
    return head.rstrip("\n") + "\n\n" + figures_section(figures, run_id) + "\n"


def _draw_one(client, tracking_uri: str, run_id: str, force: bool) -> DrawnFigures:
    try:
        run = client.get_run(run_id)
    except StoreException:
        raise WtcError(f"no run {run_id} in {tracking_uri}") from None
    name = run.info.run_name
    if run.data.tags.get(TAG_FIGURES) == "drawn" and not force:
        return DrawnFigures(run_id, name, "already drawn")
    raw = read_artifact(tracking_uri, run_id, FIGURE_INPUTS)
    if raw is None:
        return DrawnFigures(run_id, name, "no inputs")
    start = time.perf_counter()
    try:
        inputs = FigureInputs.load(io.BytesIO(raw))
    except (OSError, ValueError, KeyError) as exc:
        raise WtcError(f"run {run_id}: {FIGURE_INPUTS} cannot be read ({one_line(exc)})") from None
    logger = RunLogger(client, run_id)
    drawn = []
    with np.errstate(all="ignore"):
        for artifact, figure in draw_figures(inputs):
            logger.log_figure(figure, artifact)
            drawn.append(artifact)
    tags = {TAG_FIGURES: "drawn"}
    summary = read_artifact(tracking_uri, run_id, "summary.md")
    if summary is not None:
        text = _summary_with(summary.decode("utf-8"), drawn, run_id)
        logger.log_text(text, "summary.md")
        tags["mlflow.note.content"] = text
    logger.set_tags(tags)  # one store call, as the run's own last batch
    return DrawnFigures(run_id, name, "drawn", drawn, time.perf_counter() - start)


def draw_run_figures(tracking_uri: str, run_ids: Sequence[str], force: bool = False) -> Iterator[DrawnFigures]:
    """Draw the everyday figures of each run that logged their inputs; yields a :class:`DrawnFigures` per run.

    Parameters
    ----------
    tracking_uri : str
        The store of the runs.
    run_ids : sequence of str
        The runs (see :func:`runs_to_draw`).
    force : bool, default False
        Draw them again where they were drawn already.

    Raises
    ------
    WtcError
        A run id the store does not hold, or inputs that cannot be read.
    """
    client = store_client(tracking_uri)
    for run_id in run_ids:
        yield _draw_one(client, tracking_uri, run_id, force)


@dataclass(frozen=True)
class OnDemand:
    """An artefact a sweep's runs (``diagnostics=light``) keep the inputs of and make when asked.

    ``make(tracking_uri, run_ids, force)`` yields one outcome per run (its ``outcome`` is ``made``
    when it was made now); ``line`` is what ``wtc runs <what>`` prints for an outcome, ``best``
    what the leaderboard prints once it made its best runs' (given those outcomes and the ``wtc`` command).
    """

    what: str
    made: str
    make: Callable[[str, Sequence[str], bool], Iterator[Any]]
    line: Callable[[Any], str]
    best: Callable[[Any, str], str]


def _figures_line(done: DrawnFigures) -> str:
    if done.outcome == "drawn":
        return f"drew {len(done.figures)} figures of {done.run_name} ({done.run_id}) in {done.seconds:.1f} s"
    if done.outcome == "already drawn":
        return f"{done.run_name} ({done.run_id}): already drawn (--force draws them again)"
    return f"{done.run_name} ({done.run_id}): no {FIGURE_INPUTS} (it drew its figures when it ran, or logged none)"


def _model_line(done: Any) -> str:
    if done.outcome == "logged":
        return f"logged the model of {done.run_name} ({done.run_id}) in {done.seconds:.1f} s: {done.model_uri}"
    if done.outcome == "already logged":
        return f"{done.run_name} ({done.run_id}): already logged, {done.model_uri}"
    return f"{done.run_name} ({done.run_id}): no {MODEL_INPUTS} and no model (tracking.log_model=false)"


def _best(made: Sequence[Any]) -> str:
    return "best run" if len(made) == 1 else f"{len(made)} best runs"


#: The artefacts made on demand, by the ``wtc runs`` command that makes them.
ON_DEMAND = {
    "figures": OnDemand(
        "figures", "drawn", draw_run_figures, _figures_line,
        lambda made, sweep_command: (f"\nFigures of the {_best(made)} drawn ({sum(len(d.figures) for d in made)} in "
                                     f"{sum(d.seconds for d in made):.1f} s); the other runs logged their inputs: "
                                     f"{sweep_command} [--top N]")),
    "model": OnDemand(
        "model", "logged", lambda uri, run_ids, force: build_run_models(uri, run_ids), _model_line,
        lambda made, sweep_command: (f"Models of the {_best(made)} logged ({sum(d.seconds for d in made):.1f} s: "
                                     f"{', '.join(d.model_uri for d in made)}); the other runs kept their inputs: "
                                     f"{sweep_command} [--top N], or wtc promote")),
}
