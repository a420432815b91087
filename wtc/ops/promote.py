"""Champion promotion: the best finished run, checked against the baselines, registered under ``@champion``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wtc.errors import WtcError
from wtc.evaluation.metrics import REGISTRY
from wtc.ops.baselines import (
    check_baselines,
    fmt_value,
    run_config,
    split_of,
)
from wtc.store.logged_models import MODEL_INPUTS, RunModel, find_run_model
from wtc.store.query import FINISHED, parent_runs, store_client
from wtc.store.registry import (
    CHAMPION,
    TAG_CONFIDENCE,
    TAG_COVERAGE,
    TAG_METRIC,
    TAG_PRECISION,
    TAG_REPLACED_BY,
    TAG_REPLACES,
    TAG_SOURCE,
    TAG_THRESHOLD,
    TAG_VALUE,
    alias_version,
    create_version,
    registered,
    tag_float,
)

__all__ = ["Promotion", "auto_threshold", "check_current", "move_champion", "promote", "select_run"]

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
    precision: float | None = None
    confidence: float = 0.0
    coverage: float | None = None
    changed: bool = False
    dry_run: bool = False

    @property
    def refused(self) -> bool:
        return bool(self.refusals)


def _direction(metric: str) -> bool:
    """Whether greater is better for ``test/<name>`` (from the metric registry)."""
    prefix, _, base = metric.partition("/")
    if prefix != "test" or base not in REGISTRY:
        raise WtcError(f"--metric must be test/<name> with a name of the metric registry "
                       f"({', '.join(REGISTRY)}), got {metric!r}")
    return REGISTRY[base].greater_is_better


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


def select_run(client, tracking_uri: str, experiment: str, metric: str, sweep: str | None,
               outcome: Promotion) -> Any:
    """The best finished parent run of ``experiment`` (or ``sweep``) by ``metric``; fills ``outcome.run_*``."""
    greater = _direction(metric)
    table = parent_runs(tracking_uri, experiment, sweep)
    if metric not in table.columns:
        raise WtcError(f"no finished run of {experiment!r} has the metric {metric}")
    table = table[(table["status"] == FINISHED) & table[metric].notna()]
    if table.empty:
        raise WtcError(f"no finished run of {experiment!r}{' in that sweep' if sweep else ''} has {metric}")
    best = table.sort_values(metric, ascending=not greater, kind="stable").iloc[0]
    champion = client.get_run(best["run_id"])
    outcome.run_id, outcome.run_name, outcome.value = champion.info.run_id, champion.info.run_name, float(best[metric])
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


def auto_threshold(client, champion, model: RunModel, tracking_uri: str, outcome: Promotion) -> None:
    """Choose the AUTO threshold for ``outcome.precision`` on the champion's held-out rows.

    Sets ``outcome.coverage`` and ``outcome.threshold``; refuses when the held-out rows no longer
    give the metric the run logged (the history or the code changed since).
    """
    from wtc.evaluation.automation import coverage_at_precision

    metric = outcome.metric
    y_test, proba = _held_out_proba(client, champion, model, tracking_uri)
    base = REGISTRY[metric.partition("/")[2]]
    again = base.compute(y_test, proba if base.from_proba else proba.argmax(axis=1), proba.shape[1])
    if not np.isclose(again, outcome.value, rtol=1e-5, atol=1e-9):
        outcome.refusals.append(f"the held-out rows of run {champion.info.run_id} could not be reproduced: "
                                f"{metric} is {fmt_value(again)} now, {fmt_value(outcome.value)} when it ran")
        return
    outcome.coverage, outcome.threshold = coverage_at_precision(y_test, proba, outcome.precision, outcome.confidence)


def promote(tracking_uri: str, experiment: str, metric: str, name: str, sweep: str | None = None,
            precision: float = 0.95, dry_run: bool = False, force: bool = False,
            confidence: float = 0.0) -> Promotion:
    """Promote the best finished run of an experiment (or sweep) to ``name@champion``.

    Parameters
    ----------
    tracking_uri : str
        The store (tracking and registry).
    experiment : str
        Experiment whose finished parent runs compete.
    metric : str
        ``test/<name>`` of the metric registry; its direction picks the best run.
    name : str
        Registered model name.
    sweep : str, optional
        Only the runs of this sweep (see :func:`wtc.store.query.parent_runs`).
    precision : float
        Target precision of AUTO decisions; the threshold reaching it on the champion's
        held-out rows, and the coverage it gives, are stored as version tags.
    dry_run : bool
        Say what would happen; change nothing (missing baselines are not trained).
    force : bool
        Promote a run even when it is worse than the current ``champion`` version on the same
        metric (the baselines must still be beaten).
    confidence : float
        0: the threshold's measured held-out precision reaches ``precision``; in (0, 1): its
        one-sided lower bound at this confidence does (see
        :func:`~wtc.evaluation.automation.coverage_at_precision`).

    Returns
    -------
    Promotion
        ``refusals`` lists, one line each, why the run was not promoted: it must beat both the
        ``rules`` and the ``dummy`` baseline on the same split, strictly, and (unless ``force``)
        be no worse than the current champion on the same metric.
    """
    if not 0 < precision <= 1:
        raise WtcError(f"--precision must be in (0, 1], got {precision}")
    if not 0 <= confidence < 1:
        raise WtcError(f"--confidence must be in [0, 1), got {confidence}")
    _direction(metric)
    client = store_client(tracking_uri)
    outcome = Promotion(name=name, metric=metric, dry_run=dry_run, precision=precision, confidence=confidence)
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
        outcome.confidence = tag_float(tags, TAG_CONFIDENCE) or 0.0
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
    tags = {TAG_METRIC: metric, TAG_VALUE: repr(outcome.value), TAG_SOURCE: champion.info.run_id,
            TAG_THRESHOLD: repr(outcome.threshold), TAG_PRECISION: repr(precision), TAG_COVERAGE: repr(outcome.coverage),
            TAG_CONFIDENCE: repr(confidence)}
    for baseline, (run_id, value) in outcome.baselines.items():
        tags[f"wtc.baseline.{baseline}"] = f"{value!r} (run {run_id})"
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
