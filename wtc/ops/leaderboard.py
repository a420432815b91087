"""The leaderboard printed when a sweep ends: its runs, best first, and how to open the MLflow UI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from wtc.errors import one_line
from wtc.ops.ui import leaderboard_link, ui_command, wtc_executable

__all__ = ["ComparisonReportCallback", "LeaderboardCallback", "best_run_on_demand", "leaderboard",
           "sweep_link", "sweep_store", "top_runs_on_demand", "ui_command"]

#: How many of a sweep's best runs get their figures drawn and their model logged when it ends.
TOP = 3


def sweep_store(config: DictConfig) -> tuple[str, str]:
    """The tracking URI and the sweep dir (the runs' ``wtc.sweep`` tag) of a multirun's config."""
    from wtc.store.uri import config_tracking_uri

    return config_tracking_uri(config), str(OmegaConf.select(config, "hydra.sweep.dir"))


def leaderboard(tracking_uri: str, sweep: str) -> str:
    """The leaderboard of one sweep as text: a header line and a Markdown table, best first.

    Parameters
    ----------
    tracking_uri : str
        The store the sweep's jobs logged to.
    sweep : str
        The sweep dir (the runs' ``wtc.sweep`` tag) or a unique suffix of it.
    """
    from wtc.evaluation.ranking import (
        CHOICE_LABELS,
        markdown_table,
        rank_runs,
        summary_table,
    )
    from wtc.store.query import parent_runs

    runs = parent_runs(tracking_uri, sweep=sweep)
    comparison = rank_runs(runs)
    direction = "higher" if comparison.greater_is_better else "lower"
    failed = int((comparison.runs["status"] != "FINISHED").sum())
    header = (f"Leaderboard of sweep {comparison.runs['wtc.sweep'].iloc[0]}: {len(runs)} run(s)"
              + (f", {failed} failed" if failed else "")
              + f", best first by cv/{comparison.metric}_mean ({direction} is better)")
    fixed = ", ".join(f"{CHOICE_LABELS[k]}={v}" for k, v in comparison.fixed.items())
    lines = [header, *comparison.notes, f"common to every run: {fixed or 'none'}",
             markdown_table(summary_table(comparison, kind="leaderboard"))]
    return "\n".join(lines)


def sweep_link(tracking_uri: str, sweep: str) -> str:
    """The URL of the leaderboard view of a sweep's experiment, ranked by the sweep's objective."""
    from wtc.evaluation.ranking import rank_runs
    from wtc.store.query import parent_runs

    runs = parent_runs(tracking_uri, sweep=sweep)
    return leaderboard_link(tracking_uri, str(runs["experiment"].iloc[0]), rank_runs(runs).metric)


class LeaderboardCallback(Callback):
    """Hydra callback: when a multirun ends, print its leaderboard, the URL of its leaderboard view and how
    to start the MLflow UI (and draw the figures and log the models of its ``top`` best runs when the sweep
    left them for later).

    The store is ``tracking.uri`` of the config, else ``sqlite:///<paths.mlruns>/mlflow.db``.
    It never fails a sweep: any problem is printed as one line. Register it in the primary
    config::

        hydra:
          callbacks:
            leaderboard:
              _target_: wtc.ops.leaderboard.LeaderboardCallback
              top: 3   # best runs whose figures and model are made at the sweep's end (0: none)
    """

    def __init__(self, top: int = TOP, **kwargs: Any) -> None:
        self.top, self.kwargs = int(top), kwargs

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._print(config)
        except Exception as exc:  # noqa: BLE001 - a report must never fail the sweep it reports on
            message = one_line(exc)
            print(f"leaderboard: not available ({message[:300]})", flush=True)

    def _print(self, config: DictConfig) -> None:
        uri, sweep = sweep_store(config)
        text = leaderboard(uri, sweep)
        print(f"\n{text}", flush=True)
        for said in top_runs_on_demand(uri, sweep, self.top):
            print(said, flush=True)
        print(f"\nOpen the leaderboard in the MLflow UI (start it first: {ui_command(uri)}):\n"
              f"  {sweep_link(uri, sweep)}", flush=True)


def top_runs_on_demand(tracking_uri: str, sweep: str, top: int = TOP) -> list[str]:
    """Make what the sweep's ``top`` best finished runs left for later (their figures, their model:
    ``diagnostics=light``); one line per kind made, with how to make the other runs'."""
    from wtc.ops.deferred import ON_DEMAND, runs_to_draw

    if top < 1:
        return []
    best = runs_to_draw(tracking_uri, sweep=sweep, top=top)
    said = []
    for on_demand in ON_DEMAND.values():
        made = [done for done in on_demand.make(tracking_uri, best, False) if done.outcome == on_demand.made]
        if made:
            said.append(on_demand.best(made, f"{wtc_executable()} runs {on_demand.what} --sweep {sweep}"))
    return said


def best_run_on_demand(tracking_uri: str, sweep: str) -> list[str]:
    """What :func:`top_runs_on_demand` says for the single best run."""
    return top_runs_on_demand(tracking_uri, sweep, top=1)


class ComparisonReportCallback(Callback):
    """Hydra callback of the experiment presets: when the sweep ends, write its ``wtc compare``
    report (Markdown, CSV, HTML with figures) into ``out`` and log it as a comparison run.

    Like the leaderboard, it never fails the sweep it reports on.

    Parameters
    ----------
    out : str
        Folder of the report (relative to where run.py was started).
    top : int
        How many of the best runs have their ROC curves (and ``figures``) in the report.
    figures : list of str, optional
        Figure artifacts of each run shown side by side (e.g. ``plots/confusion_matrix.png``).
    """

    def __init__(self, out: str, top: int = 5, figures: list[str] | None = None, **kwargs: Any) -> None:
        self.out, self.top, self.figures = out, int(top), list(figures or [])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            from wtc.ops.compare import compare

            uri, sweep = sweep_store(config)
            report = compare(uri, self.out, sweep=sweep, top=self.top, figures=self.figures)
            print(f"Comparison report: {Path(self.out).resolve() / 'comparison.html'}", flush=True)
            del report
        except Exception as exc:  # noqa: BLE001 - a report must never fail the sweep it reports on
            message = one_line(exc)
            print(f"comparison report: not written ({message[:300]})", flush=True)
