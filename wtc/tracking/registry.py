"""Champion promotion: the best finished run, checked against the baselines, registered under ``@champion``."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import RunStatus
from omegaconf import DictConfig, OmegaConf

from wtc.errors import WtcError
from wtc.evaluation.metrics import REGISTRY
from wtc.tracking.query import _client, parent_runs

__all__ = ["BASELINES", "CHAMPION", "SPLIT_PARAMS", "Promotion", "champion_tags", "promote", "run_model", "version_tags"]

log = logging.getLogger(__name__)

CHAMPION = "champion"
#: The models every champion must beat on the same split: the WTC procedures and the class prior.
BASELINES = ("rules", "dummy")
#: Params that make two runs' test rows the same rows. The brief's four (content hash, target,
#: seed, test share) plus ``cv.kind`` (it chooses how the test rows are drawn: by workflow, by
#: task or by date) and ``data.classes`` (``target.min_class_count`` merges classes and is not
#: a param of its own; the class list shows it).
SPLIT_PARAMS = ("data.content_hash", "target.name", "seed", "test_size", "cv.kind", "data.classes")
_FINISHED = RunStatus.to_string(RunStatus.FINISHED)
_CONF = Path(__file__).resolve().parents[2] / "conf"
#: Version tags written at promotion.
TAG_REPLACES, TAG_REPLACED_BY = "wtc.replaces", "wtc.replaced_by"
TAG_THRESHOLD, TAG_PRECISION, TAG_COVERAGE = "wtc.auto_threshold", "wtc.auto_precision", "wtc.auto_coverage"
TAG_METRIC, TAG_VALUE, TAG_SOURCE = "wtc.metric", "wtc.metric_value", "wtc.source_run"


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


def run_model(client: mlflow.MlflowClient, run):
    """The model a run logged (its newest ``LoggedModel``), or None when it logged none."""
    models = client.search_logged_models([run.info.experiment_id],
                                         filter_string=f"source_run_id = '{run.info.run_id}'")
    return max(models, key=lambda m: m.creation_timestamp or 0) if models else None


def _split_of(run) -> dict[str, str | None]:
    return {k: run.data.params.get(k) for k in SPLIT_PARAMS}


def _find_baseline(client, experiment_id: str, model: str, split: dict[str, str | None]):
    """The newest finished parent run of ``model`` on the same split, or None."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    runs = client.search_runs([experiment_id], filter_string=f"params.`model.name` = '{model}' "
                              f"and attributes.status = '{_FINISHED}'", max_results=1000)
    for run in sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True):
        if MLFLOW_PARENT_RUN_ID not in run.data.tags and _split_of(run) == split:
            return run
    return None


def _run_config(client, run) -> DictConfig:
    """The config a run logged (``config.yaml``)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.info.run_id, "config.yaml", tmp)
            return OmegaConf.load(path)
    except (OSError, mlflow.exceptions.MlflowException) as exc:
        raise WtcError(f"run {run.info.run_id} has no readable config.yaml ({exc})") from None


def baseline_config(champion_cfg: DictConfig, model: str, tracking_uri: str, experiment: str) -> DictConfig:
    """The champion's run config with only the model swapped for a baseline's.

    Editing the champion's own (resolved) config keeps every choice that decides the test
    rows and the features exactly as the champion had them (data path, view, target and its
    class merging, seed, test share, cv kind, paths), whatever today's defaults are; composing
    a fresh config from ``conf/`` with a few overrides would silently take the defaults for
    anything not overridden. The model node itself is composed by Hydra from ``conf/`` (what
    ``model=<name>`` means), the search is off (baselines have nothing to tune) and so are
    the ensemble and the calibration.
    """
    from hydra import compose, initialize_config_dir

    import wtc.config

    wtc.config.register_resolvers()
    with initialize_config_dir(config_dir=str(_CONF), version_base="1.3"):
        composed = compose("config", overrides=[f"model={model}", "search=none", "diagnostics=none"])
    cfg = OmegaConf.create(OmegaConf.to_container(champion_cfg, resolve=False))
    OmegaConf.set_struct(cfg, False)
    # Resolve the baseline's model node against the champion's values (seed, device, n_jobs).
    node = OmegaConf.merge({"seed": cfg.get("seed"), "device": cfg.get("device", "cpu"),
                            "n_jobs": cfg.get("n_jobs", 1)}, {"model": composed.model})
    cfg.model = OmegaConf.to_container(node, resolve=True)["model"]
    cfg.search = composed.search
    cfg.diagnostics = composed.diagnostics
    # A baseline is one plain model: the champion's ensemble and calibration are not its own.
    cfg.ensemble = composed.ensemble
    cfg.calibration = composed.calibration
    cfg.tracking.uri = tracking_uri
    cfg.tracking.experiment = experiment
    cfg.tracking.log_model = False
    cfg.tracking.log_plots = False
    return cfg


def _train_baseline(client, champion, model: str, tracking_uri: str, experiment: str):
    from wtc.experiment import run as run_experiment

    cfg = baseline_config(_run_config(client, champion), model, tracking_uri, experiment)
    log.info("training the %s baseline on the champion's split", model)
    result = run_experiment(cfg)
    return client.get_run(result.run_id)


def _held_out_proba(client, champion, model_uri: str, tracking_uri: str):
    """The champion's test labels and probabilities, recomputed from its config and model."""
    from wtc.data.dataset import load_dataset
    from wtc.models.pipeline import full_proba
    from wtc.splits import make_splits
    from wtc.tracking.pyfunc import load_model

    cfg = _run_config(client, champion)
    data = load_dataset(cfg)
    if data.content_hash != champion.data.params.get("data.content_hash"):
        raise WtcError(f"the history of run {champion.info.run_id} changed since it ran "
                       f"({data.path}: content hash {data.content_hash[:12]} != "
                       f"{champion.data.params.get('data.content_hash', '?')[:12]})")
    splits = make_splits(cfg.cv.kind, int(cfg.cv.n_splits), float(cfg.test_size), int(cfg.seed),
                         data.y, data.groups, data.dates)
    # The pyfunc's own pipeline on the run's matrix rows: what the run scored, for raw-task and
    # matrix models alike.
    pipeline = load_model(model_uri, tracking_uri=tracking_uri).unwrap_python_model().pipeline
    return data.y[splits.test], full_proba(pipeline, data.X[splits.test], len(data.classes))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def champion_tags(tracking_uri: str, name: str, alias: str = CHAMPION) -> dict[str, str]:
    """The tags of the version ``name@alias`` (empty when the alias does not exist)."""
    return version_tags(tracking_uri, f"models:/{name}@{alias}")


def version_tags(tracking_uri: str, model_uri: str) -> dict[str, str]:
    """The tags of the registered version a ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` URI names.

    Empty for any other URI (a logged model id, ``runs:/``, a path) or an unknown version.
    """
    if not model_uri.startswith("models:/"):
        return {}
    ref = model_uri[len("models:/"):].strip("/")
    client = _client(tracking_uri)
    try:
        if "@" in ref:
            name, alias = ref.rsplit("@", 1)
            return dict(client.get_model_version_by_alias(name, alias).tags)
        if "/" in ref:
            name, version = ref.rsplit("/", 1)
            return dict(client.get_model_version(name, version).tags)
    except mlflow.exceptions.MlflowException:
        return {}
    return {}


def promote(tracking_uri: str, experiment: str, metric: str, name: str, sweep: str | None = None,
            precision: float = 0.95, dry_run: bool = False) -> Promotion:
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
        Only the runs of this sweep (see :func:`wtc.tracking.query.parent_runs`).
    precision : float
        Target precision of AUTO decisions; the threshold reaching it on the champion's
        held-out rows, and the coverage it gives, are stored as version tags.
    dry_run : bool
        Say what would happen; change nothing (missing baselines are not trained).

    Returns
    -------
    Promotion
        ``refusals`` lists, one line each, why the run was not promoted (it must beat both
        the ``rules`` and the ``dummy`` baseline on the same split, strictly).
    """
    if not 0 < precision <= 1:
        raise WtcError(f"--precision must be in (0, 1], got {precision}")
    greater = _direction(metric)
    client = _client(tracking_uri)
    outcome = Promotion(name=name, metric=metric, dry_run=dry_run, precision=precision)
    table = parent_runs(tracking_uri, experiment, sweep)
    if metric not in table.columns:
        raise WtcError(f"no finished run of {experiment!r} has the metric {metric}")
    table = table[(table["status"] == _FINISHED) & table[metric].notna()]
    if table.empty:
        raise WtcError(f"no finished run of {experiment!r}{' in that sweep' if sweep else ''} has {metric}")
    best = table.sort_values(metric, ascending=not greater, kind="stable").iloc[0]
    champion = client.get_run(best["run_id"])
    outcome.run_id, outcome.run_name, outcome.value = champion.info.run_id, champion.info.run_name, float(best[metric])
    split = _split_of(champion)
    missing = [k for k in ("data.content_hash", "target.name", "seed", "test_size") if not split[k]]
    if missing:
        raise WtcError(f"run {champion.info.run_id} lacks the params {missing}: cannot match baselines")

    for baseline in BASELINES:
        found = _find_baseline(client, champion.info.experiment_id, baseline, split)
        if found is None:
            if dry_run:
                outcome.actions.append(f"would train the {baseline} baseline on the champion's split (none matches)")
                outcome.baselines[baseline] = (None, None)
                continue
            found = _train_baseline(client, champion, baseline, tracking_uri, experiment)
            outcome.actions.append(f"trained the {baseline} baseline on the champion's split: run {found.info.run_id}")
            if _split_of(found) != split:
                outcome.refusals.append(f"the {baseline} baseline trained on the spot saw a different split "
                                        f"({_split_of(found)} vs {split})")
                continue
        value = found.data.metrics.get(metric)
        outcome.baselines[baseline] = (found.info.run_id, value)
        if value is None or math.isnan(value):
            outcome.refusals.append(f"the {baseline} baseline run {found.info.run_id} has no {metric}")
            continue
        margin = outcome.value - value if greater else value - outcome.value
        if margin <= 0:
            outcome.refusals.append(
                f"run {outcome.run_name} ({champion.info.run_id}) does not beat the {baseline} baseline on {metric}: "
                f"{_fmt(outcome.value)} vs {_fmt(value)} ({'lower' if greater else 'higher'} is worse; "
                f"behind by {_fmt(-margin) if margin < 0 else 0})")
        else:
            outcome.notes.append(f"beats the {baseline} baseline on {metric}: {_fmt(outcome.value)} vs "
                                 f"{_fmt(value)} (by {_fmt(margin)})")
    if outcome.refusals:
        return outcome

    logged = run_model(client, champion)
    if logged is None:
        outcome.refusals.append(f"run {champion.info.run_id} logged no model (tracking.log_model=false)")
        return outcome
    model_uri = logged.model_uri
    registered = _registered(client, name)
    current = _alias_version(client, name) if registered else None
    outcome.previous = str(current.version) if current is not None else None
    if current is not None and current.run_id == champion.info.run_id:
        outcome.version = str(current.version)
        tags = current.tags
        outcome.threshold = _float(tags.get(TAG_THRESHOLD))
        outcome.coverage = _float(tags.get(TAG_COVERAGE))
        outcome.precision = _float(tags.get(TAG_PRECISION)) or precision
        outcome.actions.append(f"{name}@{CHAMPION} is already version {current.version} of run "
                               f"{champion.info.run_id}: nothing to do")
        return outcome

    y_test, proba = _held_out_proba(client, champion, model_uri, tracking_uri)
    base = REGISTRY[metric.partition("/")[2]]
    again = base.compute(y_test, proba if base.from_proba else proba.argmax(axis=1), proba.shape[1])
    if not np.isclose(again, outcome.value, rtol=1e-5, atol=1e-9):
        outcome.refusals.append(f"the held-out rows of run {champion.info.run_id} could not be reproduced: "
                                f"{metric} is {_fmt(again)} now, {_fmt(outcome.value)} when it ran")
        return outcome
    from wtc.evaluation.automation import coverage_at_precision

    outcome.coverage, outcome.threshold = coverage_at_precision(y_test, proba, precision)

    existing = [v for v in (client.search_model_versions(f"name = '{name}'") if registered else [])
                if v.run_id == champion.info.run_id and v.source == model_uri]
    if dry_run:
        target = existing[0].version if existing else "a new version"
        outcome.actions.append(f"would register run {champion.info.run_id} ({model_uri}) as {name} {target}")
        outcome.actions.append(f"would move {name}@{CHAMPION} to it"
                               + (f" from version {current.version}" if current is not None else ""))
        return outcome

    if not registered:
        client.create_registered_model(name, description="wtc champion models: promoted by `wtc promote`")
    version = existing[0] if existing else client.create_model_version(
        name, source=model_uri, run_id=champion.info.run_id, model_id=logged.model_id)
    outcome.version = str(version.version)
    tags = {TAG_REPLACES: str(current.version) if current is not None else "none", TAG_METRIC: metric,
            TAG_VALUE: repr(outcome.value), TAG_SOURCE: champion.info.run_id, TAG_THRESHOLD: repr(outcome.threshold),
            TAG_PRECISION: repr(precision), TAG_COVERAGE: repr(outcome.coverage)}
    for baseline, (run_id, value) in outcome.baselines.items():
        tags[f"wtc.baseline.{baseline}"] = f"{value!r} (run {run_id})"
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version.version)
    if current is not None and str(current.version) != outcome.version:
        client.set_model_version_tag(name, current.version, TAG_REPLACED_BY, outcome.version)
        previous_value = _float(current.tags.get(TAG_VALUE))
        if previous_value is not None:
            outcome.notes.append(f"replaces version {current.version} ({metric} {_fmt(previous_value)})")
    outcome.actions.append(f"registered run {champion.info.run_id} as {name} version {version.version}")
    outcome.actions.append(f"moved {name}@{CHAMPION} to version {version.version}"
                           + (f" (from {current.version})" if current is not None else ""))
    outcome.changed = True
    return outcome


def _float(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _registered(client, name: str) -> bool:
    try:
        client.get_registered_model(name)
        return True
    except mlflow.exceptions.MlflowException:
        return False


def _alias_version(client, name: str):
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
