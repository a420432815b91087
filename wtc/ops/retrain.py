"""``wtc retrain``: a challenger recovery recommender from the champion's recipe, the history and the operators'
decisions, promoted only when it beats the champion on CV and on the newest decisions.

1. The decisions (a ``wtc panel`` file; its journal gives their order in time) are split: the newest
   ``holdout`` share is the back-test, never trained on; the rest joins the champion's training
   history (a decided task that the history holds takes the operator's new parameters).
2. Each part of ``NAME@champion`` is trained again from its source run's own config (the recipe:
   view, model, search, folds, seed), only the data changed, into ``wtc-retrain-<stamp>-<part>``.
3. The challenger is assembled and registered as ``NAME-challenger`` by
   :func:`wtc.ops.recovery.promote_recovery` (each part beating its rules and dummy baselines, its
   AUTO thresholds chosen on its held-out rows).
4. The gate: every part's CV objective no worse than the champion part's, and on the back-test the
   challenger's recommendations right at least as often as the champion's and its AUTO decisions at
   least as precise as the precision promotion asked for. Then it becomes ``NAME@champion`` (promote
   again, ``force`` standing for the current-champion check this gate replaced); otherwise the
   verdict says by how much it fell short.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from wtc.errors import WtcError
from wtc.evaluation.metrics import REGISTRY
from wtc.inference.recovery import RECOVERY_TARGETS
from wtc.ops.baselines import run_config
from wtc.ops.recovery import format_recovery, part_tag, promote_recovery
from wtc.outputs import write_atomic
from wtc.store.query import store_client
from wtc.store.registry import TAG_PRECISION, tag_float, version_tags

__all__ = ["Retrain", "retrain"]


@dataclass
class Retrain:
    """What ``wtc retrain`` measured and decided."""

    name: str
    promoted: bool = False
    cv: dict[str, tuple[float, float, bool]] = field(default_factory=dict)  # part -> (champion, challenger, better)
    backtest: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # champion / challenger -> realised
    shortfalls: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    holdout: list[str] = field(default_factory=list)
    seen: int = 0


def _ordered_decisions(path: Path) -> list[tuple[str, dict]]:
    """The decisions of a panel file, oldest first (by the journal; file order without one)."""
    from wtc.data.decode import history_entries

    entries = [(t, json.loads(e)) for t, e in history_entries(path)]
    bad = [t for t, e in entries if not isinstance(e, dict) or not e.get("parameters")]
    if bad:
        raise WtcError(f"--decisions {path}: task {bad[0]!r} has no parameters (a decision file holds decisions)")
    journal = path.with_name(path.name + ".journal.jsonl")
    if journal.exists():
        last = {}
        for line in journal.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if "task" in record:  # not the kill switch's lines
                last[record["task"]] = record.get("at", "")
        entries.sort(key=lambda item: last.get(item[0], ""))
    return entries


def _better(metric: str, challenger: float, champion: float) -> bool:
    greater = REGISTRY[metric].greater_is_better
    return challenger >= champion if greater else challenger <= champion


def _backtest(path: Path, model_uri: str, tracking_uri: str) -> dict[str, Any] | None:
    from wtc.ops.predict import predict_history

    return predict_history(path, model_uri, tracking_uri).realised


def retrain(tracking_uri: str, decisions: Path | str, name: str = "wtc-recovery", holdout: float = 0.3,
            dry_run: bool = False) -> Retrain:
    """Train, back-test and (when it wins) promote a challenger of ``name@champion``; see the module docstring."""
    from wtc.run.experiment import run

    decisions = Path(decisions)
    client = store_client(tracking_uri)
    tags = version_tags(tracking_uri, f"models:/{name}@champion")
    if not tags.get(part_tag("action", "source_run")):
        raise WtcError(f"{name}@champion is not a recovery recommender promoted by wtc promote --recovery "
                       "(retrain reads its parts' runs)")
    ordered = _ordered_decisions(decisions)
    n_out = max(1, math.ceil(holdout * len(ordered))) if len(ordered) > 1 else 0
    train_part, test_part = ordered[:len(ordered) - n_out], ordered[len(ordered) - n_out:]
    outcome = Retrain(name=name, holdout=[t for t, _ in test_part])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = decisions.with_name(f"{decisions.stem}.retrain-{stamp}")
    sources = {t: client.get_run(tags[part_tag(t, "source_run")]) for t in RECOVERY_TARGETS
               if tags.get(part_tag(t, "source_run"))}
    configs = {t: run_config(client, r) for t, r in sources.items()}
    from wtc.data.dataset import resolve_data_path

    base = resolve_data_path(configs["action"])
    history = json.loads(base.read_text(encoding="utf-8"))
    outcome.seen = sum(t in history for t in outcome.holdout)
    merged = {**history, **dict(train_part)}
    merged_path = write_atomic(folder / "history.json", json.dumps(merged))
    backtest_path = write_atomic(folder / "backtest.json", json.dumps(dict(test_part))) if test_part else None
    outcome.lines.append(f"history {base} ({len(history)} tasks) + {len(train_part)} decision(s) -> {merged_path}; "
                         f"back-test: the newest {len(test_part)} decision(s)")
    if dry_run:
        outcome.lines.append("dry run: would train " + ", ".join(f"{t} from run {r.info.run_id}"
                                                                 for t, r in sources.items()))
        return outcome

    experiments = {}
    for target, cfg in configs.items():
        cfg.data.path = str(merged_path)
        cfg.tracking.uri = tracking_uri
        cfg.tracking.experiment = experiments[target] = f"wtc-retrain-{stamp}-{target}"
        cfg.tracking.log_model = True
        result = run(cfg)
        metric = f"cv/{cfg.metric}_mean"
        champion = sources[target].data.metrics.get(metric)
        challenger = client.get_run(result.run_id).data.metrics.get(metric, float("nan"))
        better = champion is not None and _better(str(cfg.metric), challenger, champion)
        outcome.cv[target] = (champion, challenger, better)
        if not better:
            outcome.shortfalls.append(f"{target}: CV {cfg.metric} {challenger:.4g} vs the champion's "
                                      f"{champion if champion is None else f'{champion:.4g}'} "
                                      f"(short by {abs(challenger - (champion or 0)):.4g})")
    precision = tag_float(tags, TAG_PRECISION) or 0.95
    # The challenger's gate is certified as the champion's was (its mode and delta; older champions: the defaults).
    gate = {"mode": tags.get("wtc.gate.mode") or "joint", "delta": tag_float(tags, "wtc.gate.delta") or 0.1}
    challenger = promote_recovery(tracking_uri, name=f"{name}-challenger", precision=precision,
                                  experiments=experiments, force=True, **gate)
    outcome.lines += [f"challenger {line}" for line in format_recovery(challenger)]
    if challenger.refused:
        outcome.shortfalls += challenger.all_refusals()
        return outcome
    if backtest_path is not None:
        for who, uri in (("champion", f"models:/{name}@champion"), ("challenger", f"models:/{name}-challenger@champion")):
            outcome.backtest[who] = _backtest(backtest_path, uri, tracking_uri)
        old, new = outcome.backtest["champion"], outcome.backtest["challenger"]
        if old and new and new["accuracy"] < old["accuracy"]:
            outcome.shortfalls.append(f"back-test: right for {new['accuracy']:.1%} of the newest decisions vs the "
                                      f"champion's {old['accuracy']:.1%} (short by {old['accuracy'] - new['accuracy']:.1%})")
        if new and new["auto"] and new["auto_precision"] < precision:
            outcome.shortfalls.append(f"back-test: AUTO precision {new['auto_precision']:.1%} ({new['auto_correct']}/"
                                      f"{new['auto']}) below the gate's {precision:.0%} "
                                      f"(short by {precision - new['auto_precision']:.1%})")
    if outcome.shortfalls:
        return outcome
    promoted = promote_recovery(tracking_uri, name=name, precision=precision, experiments=experiments, force=True,
                                **gate)
    outcome.lines += format_recovery(promoted)
    outcome.shortfalls += promoted.all_refusals()
    outcome.promoted = not promoted.refused and promoted.changed
    return outcome


def format_retrain(outcome: Retrain) -> list[str]:
    """What ``wtc retrain`` prints: the data, each part's CV, the back-test and the verdict."""
    lines = list(outcome.lines)
    for target, (champion, challenger, better) in outcome.cv.items():
        lines.append(f"{target}: CV champion {champion if champion is None else f'{champion:.4g}'}, challenger "
                     f"{challenger:.4g} ({'no worse' if better else 'worse'})")
    for who, realised in outcome.backtest.items():
        if realised:
            auto = (f"AUTO {realised['auto']} ({realised['auto_precision']:.1%} right)" if realised["auto"]
                    else "no AUTO decision")
            lines.append(f"back-test {who}: right for {realised['accuracy']:.1%} of {realised['labelled']}; {auto}")
    if outcome.seen:
        lines.append(f"note: the champion was trained on {outcome.seen} of the back-test's tasks (with the labels "
                     "the history had): its back-test is optimistic there")
    if outcome.promoted:
        lines.append(f"verdict: the challenger beat the champion; it is now {outcome.name}@champion")
    else:
        lines.append(f"verdict: not promoted; {outcome.name}@champion stays. Short by: " + "; ".join(
            outcome.shortfalls or ["(dry run)"]))
    return lines
