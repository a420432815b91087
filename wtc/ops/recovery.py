"""The recovery recommender in MLflow: one pyfunc bundling the action, splitting, xrootd and memory champions.

``wtc promote --recovery`` picks each part as ``wtc promote`` picks a champion (the best
finished run of its experiment by its CV objective, beating the rules and class-prior dummy
baselines on its own split, no worse than the current recommender's part unless ``--force``),
certifies the joint gate (the whole recommendation's threshold, and the action's alone) on the
parts' out-of-fold predictions of the action run's training split (:mod:`wtc.ops.recovery_gate`)
and, reported beside it, each part's own threshold on that run's out-of-fold rows (what held a
task back), all by Learn-then-Test; logs one pyfunc that carries the four pipelines, their
thresholds and the gate (a run of the experiment ``wtc-recovery``) and registers it as
``wtc-recovery@champion``. How the parts combine: :mod:`wtc.inference.recovery`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from wtc.errors import WtcError
from wtc.inference.joint import MODES, JointGate
from wtc.inference.recovery import RECOVERY_TARGETS, RecoveryPart
from wtc.ops.baselines import check_baselines, fmt_value
from wtc.ops.promote import Promotion, auto_threshold, check_current, move_champion, select_run
from wtc.ops.recovery_gate import certify_recovery
from wtc.store.logged_models import MODEL_INPUTS, find_run_model
from wtc.store.pyfunc import load_model
from wtc.store.query import store_client
from wtc.store.recovery_model import log_recovery_model
from wtc.store.registry import CHAMPION, TAG_METRIC, TAG_PRECISION, alias_version, create_version
from wtc.store.runs import RunTracker

__all__ = ["RECOVERY_EXPERIMENT", "RecoveryPromotion", "format_recovery", "promote_recovery"]

log = logging.getLogger(__name__)

#: Where the recommender's own runs are logged (one per promotion that logs a new bundle).
RECOVERY_EXPERIMENT = "wtc-recovery"
TAG_KIND, KIND = "wtc.kind", "recovery"
#: Version tags of the joint gate: ``wtc.gate.<field>`` of :class:`~wtc.inference.joint.JointGate`.
GATE_FIELDS = ("joint_threshold", "action_threshold", "mode", "alpha", "delta", "joint_coverage", "action_coverage")


def part_tag(target: str, key: str) -> str:
    """The version tag of one part: ``wtc.part.<target>.<key>``."""
    return f"wtc.part.{target}.{key}"


@dataclass
class RecoveryPromotion:
    """What ``promote_recovery`` found and did: one :class:`Promotion` per part, then the bundle."""

    name: str
    metric: str
    precision: float
    dry_run: bool = False
    parts: dict[str, Promotion] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    version: str | None = None
    run_id: str | None = None
    changed: bool = False
    gate: JointGate | None = None

    @property
    def refused(self) -> bool:
        return bool(self.refusals) or any(p.refused for p in self.parts.values())

    def all_refusals(self) -> list[str]:
        return [f"{t}: {r}" for t, p in self.parts.items() for r in p.refusals] + self.refusals


def _unchanged(current, chosen: dict[str, Promotion], metric: str, precision: float, mode: str, delta: float) -> bool:
    tags = current.tags
    return (tags.get(TAG_METRIC) == metric and tags.get(TAG_PRECISION) == repr(precision)
            and tags.get("wtc.gate.mode") == mode and math.isclose(float(tags.get("wtc.gate.delta", "nan")), delta)
            and all(tags.get(part_tag(t, "source_run")) == p.run_id for t, p in chosen.items()))


def _gate_of_tags(tags: dict) -> JointGate:
    values = {f: tags.get(f"wtc.gate.{f}") for f in GATE_FIELDS}
    return JointGate(**{f: (v if f == "mode" else float(v)) for f, v in values.items()})


def promote_recovery(tracking_uri: str, metric: str = "cv", name: str = "wtc-recovery",
                     sweep: str | None = None, precision: float = 0.95, dry_run: bool = False, force: bool = False,
                     experiments: dict[str, str] | None = None, mode: str = "joint",
                     delta: float = 0.1) -> RecoveryPromotion:
    """Register the recovery recommender built from each part's best run as ``name@champion``.

    Parameters
    ----------
    tracking_uri : str
        The store (tracking and registry).
    metric : str
        ``cv`` (each run's CV objective) or ``cv/<name>``: what ranks each part's runs, as the
        leaderboard does (a test metric is refused).
    name : str
        Registered model name.
    sweep : str, optional
        Only the runs of this sweep (e.g. the ``+experiment=recovery`` sweep's dir).
    precision : float
        ``1 - alpha``: the precision of the AUTO decisions, of the whole recommendation (joint gate)
        and of the action alone (action gate), each certified with probability ``1 - delta``; each
        part's own threshold (reported: what held a task back) is certified at it too.
    dry_run, force : bool
        As for :func:`wtc.ops.promote.promote` (``force``: accept a part worse than the
        current recommender's part on the same metric).
    experiments : mapping, optional
        Experiment of each part; default ``wtc-<target>`` (what the runs of each target log to).
    mode : {"joint", "action"}
        ``joint``: AUTO only for a whole recommendation that clears the joint gate; ``action``: also
        AUTO for the action alone where it clears the action gate (the parameters as suggestions).
    delta : float
        The tolerated probability that a certified threshold misses ``precision`` (``--delta``).

    Returns
    -------
    RecoveryPromotion
        Nothing is registered when any part is refused (``all_refusals`` says why).
    """
    if not 0 < precision <= 1:
        raise WtcError(f"--precision must be in (0, 1], got {precision}")
    if mode not in MODES:
        raise WtcError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0 < delta < 1:
        raise WtcError(f"--delta must be in (0, 1), got {delta}")
    experiments = {t: (experiments or {}).get(t, f"wtc-{t}") for t in RECOVERY_TARGETS}
    client = store_client(tracking_uri)
    outcome = RecoveryPromotion(name=name, metric=metric, precision=precision, dry_run=dry_run)
    runs = {}
    for target, experiment in experiments.items():
        part = outcome.parts[target] = Promotion(name=f"{name}/{target}", metric=metric, dry_run=dry_run,
                                                 precision=precision, delta=delta)
        runs[target] = select_run(client, tracking_uri, experiment, metric, sweep, part)
        if runs[target].data.params.get("target.name") != target:
            part.refusals.append(f"run {part.run_id} of {experiment} learned target "
                                 f"{runs[target].data.params.get('target.name')!r}, not {target!r}")
            continue
        check_baselines(client, runs[target], tracking_uri, experiment, part)
    if outcome.refused:
        return outcome
    models = {t: find_run_model(client, tracking_uri, r) for t, r in runs.items()}
    for target, model in models.items():
        if model is None:
            outcome.parts[target].refusals.append(f"run {runs[target].info.run_id} logged no model")
    if outcome.refused:
        return outcome

    current = alias_version(client, name)
    if current is not None and _unchanged(current, outcome.parts, metric, precision, mode, delta):
        outcome.version = str(current.version)
        outcome.gate = _gate_of_tags(current.tags)
        for target, part in outcome.parts.items():
            part.threshold = float(current.tags.get(part_tag(target, "auto_threshold"), "nan"))
            part.coverage = float(current.tags.get(part_tag(target, "auto_coverage"), "nan"))
        outcome.actions.append(f"{name}@{CHAMPION} is already version {current.version} of these runs: nothing to do")
        return outcome
    if current is not None:
        for target, part in outcome.parts.items():
            value = current.tags.get(part_tag(target, "metric_value"))
            # The version records the --metric asked (e.g. cv); the same ask resolved to part.metric.
            asked = current.tags.get(TAG_METRIC)
            check_current(part, part.metric if asked == metric else asked, float(value) if value else None,
                          f"(version {current.version}, part from run {current.tags.get(part_tag(target, 'source_run'))})",
                          force)
        if outcome.refused:
            return outcome
    for target, part in outcome.parts.items():
        auto_threshold(client, runs[target], models[target], tracking_uri, part)
    if outcome.refused:
        return outcome
    pipelines = {t: m.pipeline(tracking_uri) for t, m in models.items()}
    outcome.gate = certify_recovery(client, runs, pipelines, mode=mode, alpha=1 - precision, delta=delta)
    if dry_run:
        outcome.actions.append("would log a recovery model bundling runs "
                               + ", ".join(f"{t} {p.run_id}" for t, p in outcome.parts.items())
                               + f" and register it as a new version of {name}")
        outcome.actions.append(f"would move {name}@{CHAMPION} to it"
                               + (f" from version {current.version}" if current is not None else ""))
        return outcome

    parts, example = {}, None
    for target, model in models.items():
        if model.logged is None:  # a sweep run's model, kept in model/inputs.pkl: logged into its run first
            model.ensure_logged(client)
            outcome.parts[target].actions.append(f"logged the model of run {runs[target].info.run_id} from its "
                                                 f"{MODEL_INPUTS} ({model.model_uri})")
        loaded = load_model(model.model_uri, tracking_uri=tracking_uri)
        inner = loaded.unwrap_python_model()
        if not hasattr(inner, "spec"):
            raise WtcError(f"run {runs[target].info.run_id} logged a matrix model; the recommender needs models "
                           "that read raw tasks (runs since the raw-task pyfunc)")
        parts[target] = RecoveryPart(inner.pipeline, inner.spec, outcome.parts[target].threshold)
        if target == "action":
            example = _tasks_example(loaded.input_example)
    stamp = datetime.now()
    tags = {TAG_KIND: KIND, **{part_tag(t, "source_run"): p.run_id for t, p in outcome.parts.items()}}
    with RunTracker(tracking_uri, RECOVERY_EXPERIMENT, run_name=f"recovery-{stamp:%Y%m%d-%H%M%S}", tags=tags) as run:
        run.log_params({f"{t}.run_id": p.run_id for t, p in outcome.parts.items()} | {"metric": metric,
                                                                                       "precision": precision})
        info = log_recovery_model(parts, example, gate=outcome.gate)
        outcome.run_id = run.run_id
    version = create_version(client, name, info.model_uri, outcome.run_id, info.model_id)
    version_tags = {TAG_METRIC: metric, TAG_PRECISION: repr(precision), TAG_KIND: KIND}
    version_tags |= {f"wtc.gate.{f}": (outcome.gate.mode if f == "mode" else repr(float(getattr(outcome.gate, f))))
                     for f in GATE_FIELDS}
    for target, part in outcome.parts.items():
        version_tags |= {part_tag(target, "source_run"): part.run_id, part_tag(target, "metric_value"): repr(part.value),
                         part_tag(target, "auto_threshold"): repr(part.threshold),
                         part_tag(target, "auto_coverage"): repr(part.coverage)}
    summary = Promotion(name=name, metric=metric)
    move_champion(client, name, version, current, version_tags, summary)
    outcome.version, outcome.changed = summary.version, True
    outcome.actions.append(f"logged the recommender as run {outcome.run_id} ({info.model_uri}) and registered it as "
                           f"{name} version {version.version}")
    outcome.actions += summary.actions
    return outcome


def _tasks_example(frame: Any) -> dict[str, dict]:
    """``{task: entry}`` of the action part's own input example (raw tasks, entries as JSON text)."""
    if not isinstance(frame, pd.DataFrame) or not {"task", "entry"} <= set(frame.columns) or frame.empty:
        raise WtcError("the action part's model has no raw-task input example")
    return {str(t): json.loads(e) if isinstance(e, str) else e for t, e in zip(frame["task"], frame["entry"])}


def format_recovery(outcome: RecoveryPromotion) -> list[str]:
    """The lines ``wtc promote --recovery`` prints (refusals apart)."""
    lines = []
    for target, part in outcome.parts.items():
        head = f"{target}: {part.run_name} ({part.run_id}) {outcome.metric} {fmt_value(part.value)}"
        if part.threshold is not None:
            head += (f"; own threshold {part.threshold:.4g} ({part.coverage:.1%} of its out-of-fold rows)"
                     if part.threshold != float("inf") else "; no own threshold reaches the precision")
        lines.append(head)
        lines += [f"  {line}" for line in part.notes + part.actions]
    gate = outcome.gate
    if gate is not None:
        def reach(threshold: float, coverage: float, what: str) -> str:
            return (f"{what} AUTO when its confidence >= {threshold:.4g} ({coverage:.1%} of the out-of-fold tasks)"
                    if threshold != float("inf") else f"{what}: no threshold certified, never AUTO")

        lines.append(f"gate (mode {gate.mode}; precision >= {1 - gate.alpha:.0%} with probability >= "
                     f"{1 - gate.delta:.0%}): " + reach(gate.joint_threshold, gate.joint_coverage, "the whole recommendation")
                     + "; " + reach(gate.action_threshold, gate.action_coverage, "the action alone")
                     + ("" if gate.mode == "action" else " (used in mode action only)"))
    return lines + outcome.actions
