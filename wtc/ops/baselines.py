"""The baselines every champion must beat: found on the champion's split, or trained on the spot."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from wtc.errors import WtcError
from wtc.evaluation.metrics import REGISTRY
from wtc.store.query import FINISHED, PARENT_RUN_TAG, StoreException

if TYPE_CHECKING:
    from wtc.ops.promote import Promotion

__all__ = ["BASELINES", "BASELINE_WHAT", "SPLIT_PARAMS", "baseline_config", "check_baselines", "fmt_value", "run_config", "split_of",
           "with_option_classes"]

log = logging.getLogger(__name__)

#: The models every champion must beat on the same split: the WTC procedures and the class prior.
BASELINES = ("rules", "dummy")
#: What each baseline run is, as the version tags name it: a plain model (no resampling, ensemble
#: or calibration) on the champion's split, view and target.
BASELINE_WHAT = {"rules": "the WTC procedures, resample=none", "dummy": "the class prior, resample=none"}
#: Params of a baseline run that must say it is that plain model (absent: an older run, plain).
_PLAIN = {"resample": ("none",), "ensemble": ("none", None), "calibration": ("none", None)}
#: Model params that make a run the baseline it claims to be: the dummy is the class prior (not a
#: uniform or stratified guess), the rules are the procedures as configured (no extra smoothing).
_IDENTITY = {"dummy": {"model.strategy": ("prior",)}, "rules": {"model.alpha": ("1.0",)}}
#: Params it must share with the champion besides the split: the same view of the same rows.
_SAME_VIEW = ("data.view", "data.extras")
#: Params that make two runs' test rows the same rows. The brief's four (content hash, target,
#: seed, test share) plus ``cv.kind`` (it chooses how the test rows are drawn: by workflow, by
#: task or by date) and ``data.classes`` (``target.min_class_count`` merges classes and is not
#: a param of its own; the class list shows it).
SPLIT_PARAMS = ("data.content_hash", "target.name", "seed", "test_size", "cv.kind", "data.classes")
_CONF = Path(__file__).resolve().parents[2] / "conf"


def fmt_value(value: float | None) -> str:
    """A metric value for a message (``n/a`` when missing)."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def split_of(run) -> dict[str, str | None]:
    """The params of a run that decide its test rows (:data:`SPLIT_PARAMS`)."""
    return {k: run.data.params.get(k) for k in SPLIT_PARAMS}


def _find_baseline(client, experiment_id: str, model: str, champion):
    """The newest finished parent run of the plain ``model`` on the champion's split, view and target, or None.

    Plain: no resampler, ensemble or calibration (:data:`_PLAIN`): the dummy must be the class
    prior, not a dummy fitted on SMOTE-resampled rows (whose log-loss is that of a coin).
    """
    split = split_of(champion)
    view = {k: champion.data.params.get(k) for k in _SAME_VIEW}
    runs = client.search_runs([experiment_id], filter_string=f"params.`model.name` = '{model}' "
                              f"and attributes.status = '{FINISHED}'", max_results=1000)
    for run in sorted(runs, key=lambda r: r.info.start_time or 0, reverse=True):
        params = run.data.params
        if (PARENT_RUN_TAG not in run.data.tags and split_of(run) == split
                and all(params.get(k) == v for k, v in view.items())
                and all(params.get(k) in allowed for k, allowed in _PLAIN.items())
                and all(params.get(k) in allowed for k, allowed in _IDENTITY.get(model, {}).items())):
            return run
    return None


def run_config(client, run) -> DictConfig:
    """The config a run logged (``config.yaml``), its options naming their classes (:func:`with_option_classes`)."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.info.run_id, "config.yaml", tmp)
            cfg = OmegaConf.load(path)
    except (OSError, StoreException) as exc:
        raise WtcError(f"run {run.info.run_id} has no readable config.yaml ({exc})") from None
    return with_option_classes(cfg)


def with_option_classes(cfg: DictConfig) -> DictConfig:
    """``cfg`` with the class (``_target_``) of each search, cv, ensemble and calibration option.

    A run logged before those options named their class has only their logged names
    (``cv.kind: grouped``): each such node gets the ``_target_`` of today's option of that name
    (``conf/cv/grouped.yaml``), its own values kept (``calibration=none`` names no class: it
    stays as it is). A config with no such node is returned as it is.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from wtc.run.config_checks import OPTION_NAMES

    old = {group: str(node[key]) for group, key in OPTION_NAMES.items()
           if (node := OmegaConf.select(cfg, group, default=None)) is not None and "_target_" not in node
           and key in node}
    if not old:
        return cfg
    try:
        with initialize_config_dir(config_dir=str(_CONF), version_base="1.3"):
            composed = compose("config", overrides=[f"{group}={name}" for group, name in old.items()])
    except HydraException as exc:
        options = " ".join(f"{group}={name}" for group, name in old.items())
        raise WtcError(f"a run config names an option conf/ no longer has ({options}): "
                       f"{str(exc).splitlines()[0]}") from None
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    for group in old:
        cfg[group] = OmegaConf.merge(OmegaConf.to_container(composed[group], resolve=True), cfg[group])
    return cfg


def baseline_config(champion_cfg: DictConfig, model: str, tracking_uri: str, experiment: str) -> DictConfig:
    """The champion's run config with only the model swapped for a baseline's.

    Editing the champion's own (resolved) config keeps every choice that decides the test
    rows and the features exactly as the champion had them (data path, view, target and its
    class merging, seed, test share, cv kind, paths), whatever today's defaults are; composing
    a fresh config from ``conf/`` with a few overrides would silently take the defaults for
    anything not overridden. The model node itself is composed by Hydra from ``conf/`` (what
    ``model=<name>`` means), the search is off (baselines have nothing to tune) and so are
    the resampler, the ensemble and the calibration.
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
    # A baseline sees the training rows as they are: a dummy fitted on resampled rows is not the class prior.
    cfg.resample = composed.resample
    # A baseline is one plain model: the champion's ensemble and calibration are not its own.
    cfg.ensemble = composed.ensemble
    cfg.calibration = composed.calibration
    cfg.tracking.uri = tracking_uri
    cfg.tracking.experiment = experiment
    cfg.tracking.log_model = False
    cfg.tracking.log_plots = False
    return cfg


def _train_baseline(client, champion, model: str, tracking_uri: str, experiment: str):
    from wtc.run.experiment import run as run_experiment

    cfg = baseline_config(run_config(client, champion), model, tracking_uri, experiment)
    log.info("training the %s baseline on the champion's split", model)
    result = run_experiment(cfg)
    return client.get_run(result.run_id)


def check_baselines(client, champion, tracking_uri: str, experiment: str, outcome: Promotion) -> None:
    """Refuse (``outcome.refusals``) a run that does not strictly beat every baseline on its own split.

    The comparison is on ``outcome.metric``, the CV objective the run was chosen by; each
    baseline's test value is said beside it (reported, not used). A missing baseline is trained
    on the spot (only said, in a dry run).
    """
    metric = outcome.metric
    base = metric.partition("/")[2].removesuffix("_mean")
    greater = REGISTRY[base].greater_is_better
    split = split_of(champion)
    # Reported beside the comparison: the test rows' value of the objective and (the measure a class
    # prior is judged by) the log-loss.
    shown = [f"test/{m}" for m in dict.fromkeys((base, "log_loss"))]
    for baseline in BASELINES:
        found = _find_baseline(client, champion.info.experiment_id, baseline, champion)
        if found is None:
            if outcome.dry_run:
                outcome.actions.append(f"would train the {baseline} baseline ({BASELINE_WHAT[baseline]}) on the "
                                       "champion's split (none matches)")
                outcome.baselines[baseline] = (None, None)
                continue
            found = _train_baseline(client, champion, baseline, tracking_uri, experiment)
            outcome.actions.append(f"trained the {baseline} baseline ({BASELINE_WHAT[baseline]}) on the champion's "
                                   f"split: run {found.info.run_id}")
            if split_of(found) != split:
                outcome.refusals.append(f"the {baseline} baseline trained on the spot saw a different split "
                                        f"({split_of(found)} vs {split})")
                continue
        value = found.data.metrics.get(metric)
        outcome.baselines[baseline] = (found.info.run_id, value)
        if value is None or math.isnan(value):
            outcome.refusals.append(f"the {baseline} baseline run {found.info.run_id} has no {metric}")
            continue
        margin = outcome.value - value if greater else value - outcome.value
        reported = "".join(f"; {m} {fmt_value(champion.data.metrics.get(m))} vs {fmt_value(found.data.metrics.get(m))}"
                           for m in shown) + " (test rows, reported)"
        if margin <= 0:
            outcome.refusals.append(
                f"run {outcome.run_name} ({champion.info.run_id}) does not beat the {baseline} baseline "
                f"({BASELINE_WHAT[baseline]}, run {found.info.run_id}) on {metric}: {fmt_value(outcome.value)} vs "
                f"{fmt_value(value)} ({'lower' if greater else 'higher'} is worse; "
                f"behind by {fmt_value(-margin) if margin < 0 else 0}){reported}")
        else:
            outcome.notes.append(f"beats the {baseline} baseline ({BASELINE_WHAT[baseline]}, run {found.info.run_id}) "
                                 f"on {metric}: {fmt_value(outcome.value)} vs {fmt_value(value)} "
                                 f"(by {fmt_value(margin)}){reported}")
