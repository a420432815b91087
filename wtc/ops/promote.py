"""Champion promotion: the best finished run, checked against the baselines, registered under ``@champion``."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from wtc.errors import WtcError
from wtc.evaluation.metrics import REGISTRY
from wtc.ops.baselines import (
    BASELINE_WHAT,
    check_baselines,
    fmt_value,
    run_config,
    split_of,
)
from wtc.store.logged_models import MODEL_INPUTS, RunModel, find_run_model
from wtc.store.query import FINISHED, parent_runs, store_client
from wtc.store.registry import (
    CHAMPION,
    TAG_ALPHA,
    TAG_CONFIDENCE,
    TAG_COVERAGE,
    TAG_DELTA,
    TAG_METHOD,
    TAG_METRIC,
    TAG_PRECISION,
    TAG_REPLACED_BY,
    TAG_REPLACES,
    TAG_SOURCE,
    TAG_TEST_COVERAGE,
    TAG_TEST_PRECISION,
    TAG_THRESHOLD,
    TAG_VALUE,
    alias_version,
    create_version,
    registered,
    tag_float,
)

__all__ = ["Promotion", "auto_threshold", "check_current", "move_champion", "objective_of", "promote", "select_run"]

log = logging.getLogger(__name__)


@dataclass
class Promotion:
    """What ``promote`` found and did (or, in a dry run, would do)."""

    name: str
    metric: str
    run_id: str | None = None
    run_name: str | None = None
    value: float | None = None
    baselines: dict[str, tuple[str | None, float | None]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    version: str | None = None
    previous: str | None = None
    threshold: float | None = None
    precision: float | None = None          # 1 - alpha: the precision the AUTO gate guarantees
    delta: float = 0.1                      # ... with probability at least 1 - delta
    coverage: float | None = None           # the gate's coverage of the out-of-fold rows it was certified on
    gate: Any = None                        # the wtc.evaluation.gate.GateResult
    test_precision: float | None = None     # the held-out rows at the threshold: reported, never used to choose
    test_coverage: float | None = None
    changed: bool = False
    dry_run: bool = False

    @property
    def refused(self) -> bool:
        return bool(self.refusals)


#: Why a test metric never chooses a run (one line, refused at once).
TEST_REFUSED = ("the test rows are scored once and only reported: choosing a run (or a threshold) on them makes "
                "the figures they report optimistic; rank by the CV objective (--metric cv, the default, or "
                "cv/<name>)")


def objective_of(metric: str | None) -> str | None:
    """The metric name a ``--metric`` ranks by: None for ``cv`` (each run's own objective), ``<name>`` for
    ``cv/<name>`` or ``cv/<name>_mean``; a test metric or anything else is refused in one line."""
    if metric in (None, "", "cv"):
        return None
    prefix, _, base = metric.partition("/")
    if prefix == "test":
        raise WtcError(f"--metric {metric}: {TEST_REFUSED}")
    base = base.removesuffix("_mean")
    if prefix != "cv" or base not in REGISTRY:
        raise WtcError(f"--metric must be cv or cv/<name> with a name of the metric registry "
                       f"({', '.join(REGISTRY)}), got {metric!r}")
    return base


def _direction(metric: str) -> bool:
    """Whether greater is better for ``cv/<name>_mean`` (from the metric registry)."""
    return REGISTRY[metric.partition("/")[2].removesuffix("_mean")].greater_is_better


def _held_out_proba(client, champion, model: RunModel, tracking_uri: str):
    """The champion's test labels and probabilities, recomputed from its config and model."""
    from wtc.data.dataset import config_splits, load_dataset
    from wtc.models.pipeline import full_proba

    cfg = run_config(client, champion)
    data = load_dataset(cfg)
    if data.content_hash != champion.data.params.get("data.content_hash"):
        raise WtcError(f"the history of run {champion.info.run_id} changed since it ran "
                       f"({data.path}: content hash {data.content_hash[:12]} != "
                       f"{champion.data.params.get('data.content_hash', '?')[:12]})")
    splits = config_splits(cfg, data)
    # The pyfunc's own pipeline (or, not logged yet, the one it will be logged from) on the run's
    # matrix rows: what the run scored, for raw-task and matrix models alike.
    pipeline = model.pipeline(tracking_uri)
    return data.y[splits.test], full_proba(pipeline, data.X[splits.test], len(data.classes))


def select_run(client, tracking_uri: str, experiment: str, metric: str | None, sweep: str | None,
               outcome: Promotion) -> Any:
    """The best finished parent run of ``experiment`` (or ``sweep``) by its CV objective; fills ``outcome``.

    The ranking is :func:`wtc.evaluation.ranking.rank_runs`, the leaderboard's and ``wtc compare``'s:
    the same run is best everywhere. ``metric`` is a ``--metric`` (:func:`objective_of`);
    ``outcome.metric`` becomes the ``cv/<name>_mean`` it ranked by.
    """
    from wtc.evaluation.ranking import rank_runs

    asked = objective_of(metric)
    table = parent_runs(tracking_uri, experiment, sweep)
    table = table[table["status"] == FINISHED]
    if table.empty:
        raise WtcError(f"no finished run of {experiment!r}{' in that sweep' if sweep else ''}")
    comparison = rank_runs(table, asked)
    key = f"cv/{comparison.metric}_mean"
    ranked = comparison.runs
    ranked = ranked[pd.to_numeric(ranked[key], errors="coerce").notna()] if key in ranked else ranked.iloc[:0]
    if ranked.empty:
        raise WtcError(f"no finished run of {experiment!r}{' in that sweep' if sweep else ''} has {key}")
    best = ranked.iloc[0]
    champion = client.get_run(best["run_id"])
    outcome.metric = key
    outcome.notes.extend(comparison.notes)
    outcome.run_id, outcome.run_name, outcome.value = champion.info.run_id, champion.info.run_name, float(best[key])
    split = split_of(champion)
    missing = [k for k in ("data.content_hash", "target.name", "seed", "test_size") if not split[k]]
    if missing:
        raise WtcError(f"run {champion.info.run_id} lacks the params {missing}: cannot match baselines")
    return champion


def check_current(outcome: Promotion, current_metric: str | None, current_value: float | None, current: str,
                  force: bool) -> None:
    """Refuse a run worse than the current champion on the same metric, unless ``force`` (then a note).

    ``current`` names the current champion in the message (e.g. ``version 3 (run …)``). The two
    values come from each run's own test rows; they are comparable when both ran on the same
    history, split and target, which is what a study's runs share.
    """
    if current_metric != outcome.metric or current_value is None or outcome.value is None:
        if current_metric and current_metric != outcome.metric:
            outcome.notes.append(f"the current champion {current} was chosen by {current_metric}, not "
                                 f"{outcome.metric}: not compared")
        return
    greater = _direction(outcome.metric)
    margin = outcome.value - current_value if greater else current_value - outcome.value
    if margin >= 0:
        outcome.notes.append(f"not worse than the current champion {current} on {outcome.metric}: "
                             f"{fmt_value(outcome.value)} vs {fmt_value(current_value)}")
        return
    line = (f"run {outcome.run_name} ({outcome.run_id}) is worse than the current champion {current} on "
            f"{outcome.metric}: {fmt_value(outcome.value)} vs {fmt_value(current_value)} (behind by {fmt_value(-margin)})")
    if force:
        outcome.notes.append(f"{line}; promoted anyway (--force)")
    else:
        outcome.refusals.append(f"{line}; --force promotes it anyway")


def _oof(tracking_uri: str, run) -> dict | None:
    """The run's out-of-fold rows (:data:`~wtc.run.refit.OOF_ARTIFACT`), or None when it logged none."""
    from wtc.run.refit import OOF_ARTIFACT
    from wtc.store.query import read_artifact

    raw = read_artifact(tracking_uri, run.info.run_id, OOF_ARTIFACT)
    if raw is None:
        return None
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def auto_threshold(client, champion, model: RunModel, tracking_uri: str, outcome: Promotion) -> None:
    """Certify the AUTO threshold on the champion's out-of-fold rows; report its held-out rows at it.

    Learn-then-Test (:func:`wtc.evaluation.gate.ltt_threshold`, workflow-aware) on the calibrated
    out-of-fold predictions the run logged: with probability at least ``1 - outcome.delta`` the
    precision of AUTO on new tasks is at least ``outcome.precision``. Sets ``outcome.threshold``,
    ``coverage`` (of the out-of-fold rows) and ``gate``; then the held-out rows' precision and
    coverage at that threshold (reported only). Refuses a run that logged no out-of-fold rows
    (it ran before they were logged: re-run it) and one whose held-out rows cannot be reproduced.
    """
    from wtc.evaluation.gate import ltt_threshold

    oof = _oof(tracking_uri, champion)
    if oof is None:
        from wtc.run.refit import OOF_ARTIFACT

        outcome.refusals.append(f"run {champion.info.run_id} logged no out-of-fold predictions ({OOF_ARTIFACT}), "
                                "which the AUTO gate is certified on: it ran before wtc logged them (or kept none: "
                                "search without CV); re-run it with the same config to promote it")
        return
    proba = oof["proba"]
    gate = ltt_threshold(proba.max(axis=1), proba.argmax(axis=1) == oof["y"], oof["groups"],
                         alpha=1.0 - outcome.precision, delta=outcome.delta)
    outcome.gate, outcome.threshold, outcome.coverage = gate, gate.threshold, gate.coverage
    y_test, test_proba = _held_out_proba(client, champion, model, tracking_uri)
    logged = champion.data.metrics.get("test/log_loss")
    again = REGISTRY["log_loss"].compute(y_test, test_proba, test_proba.shape[1])
    if logged is not None and not np.isclose(again, logged, rtol=1e-5, atol=1e-9):
        outcome.refusals.append(f"the held-out rows of run {champion.info.run_id} could not be reproduced: "
                                f"test/log_loss is {fmt_value(again)} now, {fmt_value(logged)} when it ran")
        return
    acted = test_proba.max(axis=1) >= gate.threshold
    outcome.test_coverage = float(acted.mean()) if acted.size else 0.0
    outcome.test_precision = (float((test_proba[acted].argmax(axis=1) == y_test[acted]).mean()) if acted.any()
                              else None)


def promote(tracking_uri: str, experiment: str, metric: str | None, name: str, sweep: str | None = None,
            precision: float = 0.95, dry_run: bool = False, force: bool = False,
            delta: float = 0.1) -> Promotion:
    """Promote the best finished run of an experiment (or sweep) to ``name@champion``.

    Parameters
    ----------
    tracking_uri : str
        The store (tracking and registry).
    experiment : str
        Experiment whose finished parent runs compete.
    metric : str or None
        ``cv`` or None (each run's CV objective, ``cv/<metric>_mean``) or ``cv/<name>``; a test
        metric is refused (:data:`TEST_REFUSED`). The ranking is the leaderboard's.
    name : str
        Registered model name.
    sweep : str, optional
        Only the runs of this sweep (see :func:`wtc.store.query.parent_runs`).
    precision : float
        1 - alpha: the precision of AUTO decisions the gate guarantees with probability
        ``1 - delta``; the threshold (certified on the run's out-of-fold rows), its coverage and
        the held-out rows' precision and coverage at it are stored as version tags.
    dry_run : bool
        Say what would happen; change nothing (missing baselines are not trained).
    force : bool
        Promote a run even when it is worse than the current ``champion`` version on the same
        metric (the baselines must still be beaten).
    delta : float
        The tolerated probability that the gate misses ``precision`` (see
        :func:`~wtc.evaluation.gate.ltt_threshold`).

    Returns
    -------
    Promotion
        ``refusals`` lists, one line each, why the run was not promoted: it must beat both the
        ``rules`` and the class-prior ``dummy`` baseline on the same split and CV objective, strictly, and (unless ``force``)
        be no worse than the current champion on the same metric.
    """
    if not 0 < precision <= 1:
        raise WtcError(f"--precision must be in (0, 1], got {precision}")
    if not 0 < delta < 1:
        raise WtcError(f"--delta must be in (0, 1), got {delta}")
    if precision >= 1:
        raise WtcError("--precision 1 (alpha 0) cannot be certified on finitely many rows; ask e.g. 0.95")
    objective_of(metric)
    client = store_client(tracking_uri)
    outcome = Promotion(name=name, metric=metric or "cv", dry_run=dry_run, precision=precision, delta=delta)
    champion = select_run(client, tracking_uri, experiment, metric, sweep, outcome)
    check_baselines(client, champion, tracking_uri, experiment, outcome)
    if outcome.refusals:
        return outcome

    model = find_run_model(client, tracking_uri, champion)
    if model is None:
        outcome.refusals.append(f"run {champion.info.run_id} logged no model (tracking.log_model=false)")
        return outcome
    # None while a sweep run's model waits in model/inputs.pkl: logged when registered.
    model_uri = model.model_uri
    is_registered = registered(client, name)
    current = alias_version(client, name) if is_registered else None
    outcome.previous = str(current.version) if current is not None else None
    if current is not None and current.run_id == champion.info.run_id:
        outcome.version = str(current.version)
        tags = current.tags
        outcome.threshold = tag_float(tags, TAG_THRESHOLD)
        outcome.coverage = tag_float(tags, TAG_COVERAGE)
        outcome.precision = tag_float(tags, TAG_PRECISION) or precision
        outcome.delta = tag_float(tags, TAG_DELTA) or delta
        outcome.test_precision = tag_float(tags, TAG_TEST_PRECISION)
        outcome.test_coverage = tag_float(tags, TAG_TEST_COVERAGE)
        outcome.actions.append(f"{name}@{CHAMPION} is already version {current.version} of run "
                               f"{champion.info.run_id}: nothing to do")
        return outcome
    if current is not None:
        check_current(outcome, current.tags.get(TAG_METRIC), tag_float(current.tags, TAG_VALUE),
                      f"(version {current.version}, run {current.run_id})", force)
        if outcome.refusals:
            return outcome

    auto_threshold(client, champion, model, tracking_uri, outcome)
    if outcome.refusals:
        return outcome

    existing = [v for v in (client.search_model_versions(f"name = '{name}'") if is_registered and model_uri else [])
                if v.run_id == champion.info.run_id and v.source == model_uri]
    if dry_run:
        target = existing[0].version if existing else "a new version"
        source = model_uri or f"its model, logged from {MODEL_INPUTS} first"
        outcome.actions.append(f"would register run {champion.info.run_id} ({source}) as {name} {target}")
        outcome.actions.append(f"would move {name}@{CHAMPION} to it"
                               + (f" from version {current.version}" if current is not None else ""))
        return outcome

    if model.logged is None:
        model.ensure_logged(client)
        outcome.actions.append(f"logged the model of run {champion.info.run_id} from its {MODEL_INPUTS} "
                               f"({model.model_uri})")
    version = existing[0] if existing else create_version(client, name, model.model_uri, champion.info.run_id,
                                                          model.logged.model_id)
    tags = {TAG_METRIC: outcome.metric, TAG_VALUE: repr(outcome.value), TAG_SOURCE: champion.info.run_id,
            TAG_THRESHOLD: repr(outcome.threshold), TAG_PRECISION: repr(precision), TAG_COVERAGE: repr(outcome.coverage),
            TAG_ALPHA: repr(1.0 - precision), TAG_DELTA: repr(delta), TAG_CONFIDENCE: repr(1.0 - delta),
            TAG_METHOD: outcome.gate.method, TAG_TEST_PRECISION: repr(outcome.test_precision),
            TAG_TEST_COVERAGE: repr(outcome.test_coverage)}
    for baseline, (run_id, value) in outcome.baselines.items():
        tags[f"wtc.baseline.{baseline}"] = f"{value!r} ({outcome.metric} of run {run_id}: {BASELINE_WHAT[baseline]})"
    move_champion(client, name, version, current, tags, outcome)
    outcome.actions.insert(-1, f"registered run {champion.info.run_id} as {name} version {version.version}")
    return outcome


def move_champion(client, name: str, version, current, tags: dict[str, str], outcome: Promotion) -> None:
    """Tag ``version`` (with ``wtc.replaces``), move ``name@champion`` to it, tag the version it replaces."""
    outcome.version = str(version.version)
    tags = {TAG_REPLACES: str(current.version) if current is not None else "none", **tags}
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version.version)
    if current is not None and str(current.version) != outcome.version:
        client.set_model_version_tag(name, current.version, TAG_REPLACED_BY, outcome.version)
        previous_value = tag_float(current.tags, TAG_VALUE)
        if previous_value is not None:
            outcome.notes.append(f"replaces version {current.version} ({outcome.metric} {fmt_value(previous_value)})")
    outcome.actions.append(f"moved {name}@{CHAMPION} to version {version.version}"
                           + (f" (from {current.version})" if current is not None else ""))
    outcome.changed = True
