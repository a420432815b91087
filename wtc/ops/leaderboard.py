"""The leaderboard printed when a sweep ends: its runs, best first, and how to open the MLflow UI."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from wtc.errors import one_line

__all__ = ["ComparisonReportCallback", "LeaderboardCallback", "best_run_on_demand", "leaderboard",
           "sweep_store", "ui_command"]


def ui_command(tracking_uri: str) -> str:
    """How to look at a store: the ``mlflow ui`` command of this environment, or the server's address."""
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri}"
    mlflow = Path(sys.executable).parent / "mlflow"
    return f"{mlflow} ui --backend-store-uri {tracking_uri}   # then open http://127.0.0.1:5000"


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


class LeaderboardCallback(Callback):
    """Hydra callback: when a multirun ends, print its leaderboard and the MLflow UI command (and draw
    the best run's figures and log its model when the sweep left them for later).

    The store is ``tracking.uri`` of the config, else ``sqlite:///<paths.mlruns>/mlflow.db``.
    It never fails a sweep: any problem is printed as one line. Register it in the primary
    config::

        hydra:
          callbacks:
            leaderboard:
              _target_: wtc.ops.leaderboard.LeaderboardCallback
    """

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._print(config)
        except Exception as exc:  # noqa: BLE001 - a report must never fail the sweep it reports on
            message = one_line(exc)
            print(f"leaderboard: not available ({message[:300]})", flush=True)

    @staticmethod
    def _print(config: DictConfig) -> None:
        uri, sweep = sweep_store(config)
        text = leaderboard(uri, sweep)
        print(f"\n{text}", flush=True)
        for said in best_run_on_demand(uri, sweep):
            print(said, flush=True)
        print(f"\nOpen the runs in the MLflow UI:\n  {ui_command(uri)}", flush=True)


def best_run_on_demand(tracking_uri: str, sweep: str) -> list[str]:
    """Make what the sweep's best finished run left for later (its figures, its model: ``diagnostics=light``);
    one line for each made now, with how to make the other runs'."""
    from wtc.ops.deferred import ON_DEMAND, runs_to_draw

    best = runs_to_draw(tracking_uri, sweep=sweep, top=1)
    said = []
    for on_demand in ON_DEMAND.values():
        done = next(on_demand.make(tracking_uri, best, False), None)
        if done is not None and done.outcome == on_demand.made:
            said.append(on_demand.best(done, f"{_wtc()} runs {on_demand.what} --sweep {sweep}"))
    return said


def _wtc() -> Path:
    return Path(sys.executable).parent / "wtc"


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
