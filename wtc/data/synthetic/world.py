"""The fixed synthetic world: causes, campaigns, code and site distributions, and the operator's policy.

The world (priors, code and site distributions, weekly bad-site sets, policy) is built once
from a constant seed; a sample's ``seed`` only drives the draws. Besides cause and decision,
a workflow's tasks share the traits of :mod:`~wtc.data.synthetic.traits` (whitelist,
signature code, count scale). The knobs were tuned with :mod:`~wtc.data.synthetic.calibration`
so the seed study's recipe on a random 80/20 task split lands near the study's binary figures,
while a workflow-grouped split scores visibly lower (see that module for today's figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from wtc.data.names import campaign_of, request_date_of, task_type_of, workflow_of
from wtc.data.targets import TARGETS, class_sort_key, label_of
from wtc.data.vocabulary import cms_vocabulary, site_tier

#: The world never changes between calls: every ``seed`` samples the same world.
_WORLD_SEED = 20180412
#: Bumped whenever the same seed would give different bytes; default benchmark names carry it.
GENERATOR_VERSION = 2
DEFAULT_TASKS = 7582
CAUSES = ("transient_site", "site_outage", "memory", "wallclock", "input", "software_bug", "stageout", "merge")
SEVERITIES = ("low", "mid", "high")
STATUSES = ("good_sites", "bad_sites")
TASK_CLASSES = ("processing", "merge", "housekeeping")
_TASK_CLASS_OF_TYPE = {"Merge": 1, "Cleanup": 2, "LogCollect": 2}  # everything else processes
YEAR_START = date(2018, 1, 1)
N_WEEKS = 53

# -- the world's knobs -----------------------------------------------------------------------
# Exit codes each cause throws (relative weights). Codes from the vocabulary's categories.
_CAUSE_CODES = {
    "transient_site": {"99109": 3, "60307": 2, "8021": 2, "85": 2, "-1": 4, "50513": 2, "61202": 1,
                       "11003": 2, "92": 1, "71304": 1},
    "site_outage": {"71302": 4, "71303": 3, "71101": 2, "71102": 1.5, "71104": 1.5, "137": 1.2, "143": 1.5,
                    "50110": 1, "99109": 2, "-1": 3, "71304": 1},
    "memory": {"50660": 10, "50661": 2, "8004": 2, "137": 0.8, "139": 0.3, "-1": 1, "134": 0.3, "71304": 0.5},
    "wallclock": {"71304": 10, "71305": 2, "50664": 3, "-1": 3, "137": 0.5, "143": 0.5, "50660": 0.7},
    "input": {"92": 8, "84": 3, "85": 4, "8021": 3, "73": 1.5, "-1": 1, "8001": 0.3, "99109": 0.5},
    "software_bug": {"8001": 12, "139": 8, "8002": 1, "8003": 0.7, "8026": 1.5, "134": 1.5, "132": 0.5,
                     "136": 0.5, "135": 0.4, "50115": 1.5, "-1": 0.5},
    "stageout": {"60307": 6, "60405": 2, "60450": 2, "70318": 1, "99109": 4, "99303": 2, "8021": 0.5},
    "merge": {"70452": 10, "60450": 3, "8001": 1, "99303": 3, "60307": 1, "-1": 1, "139": 0.5},
}
# Background popularity of codes whatever the cause (the seed study's most frequent first).
_POPULAR_CODES = {"50660": 8, "71304": 7, "-1": 6, "92": 5, "8001": 5, "139": 4}
_BASE_CAUSE_PRIOR = {"transient_site": 0.11, "site_outage": 0.10, "memory": 0.25, "wallclock": 0.20,
                     "input": 0.13, "software_bug": 0.09, "stageout": 0.08, "merge": 0.045}
_SEVERITY_PRIOR = (0.45, 0.35, 0.20)
# Campaign families tilt the cause prior (pile-up input for DIGI-RECO, generator bugs for GEN).
_FAMILY_TILT = {
    "digireco": {"input": 1.6, "memory": 1.3, "merge": 0.6},
    "gen": {"software_bug": 1.5, "wallclock": 1.3, "input": 0.4},
    "analysis": {"merge": 2.0, "stageout": 1.5, "memory": 0.6, "wallclock": 0.6, "input": 1.2},
}
# name: (family, output module, steps, first month, last month, popularity)
CAMPAIGNS = {
    "RunIIFall17DRPremix": ("digireco", "AODSIMoutput", 2, 1, 9, 12),
    "RunIIFall17DRStdmix": ("digireco", "AODSIMoutput", 2, 1, 7, 5),
    "RunIIFall17wmLHEGS": ("gen", "RAWSIMoutput", 1, 1, 10, 10),
    "RunIIFall17GS": ("gen", "RAWSIMoutput", 1, 1, 8, 5),
    "RunIIFall17MiniAODv2": ("analysis", "MINIAODSIMoutput", 1, 2, 12, 8),
    "RunIIFall17NanoAOD": ("analysis", "NANOAODSIMoutput", 1, 3, 10, 4),
    "RunIISummer16DR80Premix": ("digireco", "AODSIMoutput", 2, 1, 6, 4),
    "RunIISummer16MiniAODv3": ("analysis", "MINIAODSIMoutput", 1, 9, 12, 5),
    "RunIISummer16NanoAODv3": ("analysis", "NANOAODSIMoutput", 1, 10, 12, 2),
    "RunIIAutumn18DRPremix": ("digireco", "AODSIMoutput", 2, 9, 12, 8),
    "RunIIAutumn18MiniAOD": ("analysis", "MINIAODSIMoutput", 1, 10, 12, 4),
    "RunIIAutumn18NanoAOD": ("analysis", "NANOAODSIMoutput", 1, 11, 12, 2),
    "RunIISpring18wmLHEGS": ("gen", "RAWSIMoutput", 1, 3, 8, 4),
    "RunIIFall18wmLHEGS": ("gen", "RAWSIMoutput", 1, 8, 12, 6),
    "PhaseIIFall17D": ("digireco", "FEVTDEBUGHLToutput", 2, 1, 6, 2),
    "RunIIHighPUTrainsDR": ("digireco", "AODSIMoutput", 2, 4, 9, 1),
}
PWGS = ("HIG", "SUS", "EXO", "B2G", "TOP", "SMP", "BPH", "JME", "BTV", "EGM", "MUO", "TSG", "FSQ", "HCA")
PWG_WEIGHTS = (10, 9, 9, 5, 6, 5, 3, 2, 2, 2, 2, 1, 1, 1)
TASKS_PER_WORKFLOW = (0.15, 0.15, 0.20, 0.20, 0.15, 0.15)  # P(1 task) ... P(6 tasks), before the cap
# Signal purity by severity, scaled by task class (merge causes show on Merge tasks).
_PURITY = (0.85, 0.90, 0.94)
_PURITY_BY_CLASS = {"default": (1.0, 0.7, 0.5), "merge": (0.4, 1.1, 0.6)}
_BAD_SHARE = {"transient_site": 0.08, "site_outage": 0.85}  # others: _BAD_SHARE_DEFAULT
_BAD_SHARE_DEFAULT = 0.25
_DRAWS = {"transient_site": 3.5, "site_outage": 7.0, "memory": 5.5, "wallclock": 5.5, "input": 5.5,
          "software_bug": 7.0, "stageout": 4.5, "merge": 6.0}
_COUNT_MEAN = {"transient_site": 3, "site_outage": 12, "memory": 25, "wallclock": 12, "input": 8,
               "software_bug": 30, "stageout": 5, "merge": 6}
_SEVERITY_DRAWS, _SEVERITY_COUNTS = (0.6, 1.2, 2.4), (0.4, 1.0, 2.5)
_CLASS_DRAWS, _CLASS_COUNTS = (1.0, 0.6, 0.4), (1.0, 0.3, 0.15)
DISPERSION = 0.7  # negative-binomial shape: small = heavy tail of counts

# What the tasks of one workflow share besides cause and decision (see traits.py): a site
# whitelist that pulls most of its draws, a signature code thrown on a share of its draws, and a
# count scale on every active cell. All three follow from the workflow's name.
WHITELIST_SITES = (2, 5)    # a whitelist names 2..5 T1/T2 sites
WHITELIST_SHARE = 0.85      # of the draws of a status, when the whitelist has a ready site of it that week
SIGNATURE_SHARE = 0.5       # of the draws throw the workflow's signature code
COUNT_SCALE_SIGMA = 1.0     # the workflow's count scale is lognormal(0, sigma)

# Operator policy. P(clone), P(special) by severity; the rest is acdc.
_CLONE = {"transient_site": (.005, .005, .01), "site_outage": (.01, .01, .02), "memory": (.015, .03, .06),
          "wallclock": (.01, .02, .04), "input": (.01, .015, .03), "software_bug": (.60, .70, .70),
          "stageout": (.01, .01, .02), "merge": (.12, .12, .12)}
_SPECIAL = {"transient_site": (.005, .005, .01), "site_outage": (.02, .05, .12), "memory": (.005, .005, .01),
            "wallclock": (.005, .005, .01), "input": (.02, .06, .25), "software_bug": (.06, .12, .20),
            "stageout": (.005, .01, .03), "merge": (.25, .45, .65)}
# (by-pass, force-complete, on-hold)
_SPECIAL_KIND = {"site_outage": (.1, .1, .8), "input": (.5, .4, .1), "software_bug": (.4, .1, .5),
                 "merge": (.3, .6, .1), "default": (.35, .35, .30)}
_RECOVERY_SHARE = 0.05  # acdc decisions written out as "recovery"
# Splitting over the vocabulary's values 1x 2x 3x 10x 20x 50x 100x max, by severity.
_ACDC_SPLIT = {
    "default": [(.95, .015, .005, .01, .006, .004, .002, .008)] * 3,
    "memory": [(.91, .05, .01, .015, .008, .002, .001, .004), (.85, .08, .02, .03, .01, .004, .002, .004),
               (.73, .12, .03, .06, .03, .01, .01, .01)],
    "wallclock": [(.66, .08, .04, .10, .05, .02, .01, .04), (.46, .08, .05, .17, .11, .04, .02, .07),
                  (.30, .06, .04, .18, .17, .06, .05, .14)],
}
_CLONE_SPLIT = {
    "default": [(.93, .025, .005, .02, .01, .004, .002, .004)] * 3,
    "wallclock": [(.50, .15, .05, .15, .07, .03, .02, .03)] * 3,
}
_XROOTD = {"acdc": {"input": (.55, .70, .80), "site_outage": (.25, .30, .35), "transient_site": (.12,) * 3,
                    "stageout": (.10,) * 3, "default": (.04,) * 3},
           "clone": {"input": (.20,) * 3, "default": (.05,) * 3}}
# Memory: P(unset) and P(level) over <=3GB, 3-6GB, 6-10GB, >10GB by severity.
_MEMORY = {
    "acdc": {"memory": (.15, [(.2, .6, .15, .05), (.05, .45, .40, .10), (.02, .20, .45, .33)]),
             "default": (.85, [(.6, .3, .08, .02)] * 3)},
    "clone": {"memory": (.30, [(.2, .6, .15, .05), (.05, .45, .40, .10), (.02, .20, .45, .33)]),
              "default": (.70, [(.5, .35, .10, .05)] * 3)},
}
RAW_ACTIONS = ("acdc", "recovery", "clone", "by-pass", "force-complete", "on-hold")
CONFIGURABLE = 3  # the first three raw actions carry splitting/xrootd/memory


@dataclass(frozen=True)
class World:
    """Every fixed table of the generative model; see :func:`fixed_world`."""

    codes: list[str]
    sites: list[str]
    campaigns: list[str]
    log_prior: np.ndarray       # (campaign, z): log P(cause, severity | campaign)
    bad_share: np.ndarray       # (z, status): P(a draw lands on a site of that status)
    code_prob: np.ndarray       # (z, task class, status, code)
    site_prob: np.ndarray       # (week, status, site): P(site | status that week), 0 off-group
    site_size: np.ndarray       # (site,): share of the jobs when ready (whitelist sites pull by its root)
    whitelist_prob: np.ndarray  # (site,): P(a whitelist slot names the site), T1/T2 only
    signature_prob: np.ndarray  # (z, code): P(a workflow's signature code | z), its processing profile
    draws: np.ndarray           # (z, task class): Poisson mean of the cell draws
    count_mean: np.ndarray      # (z, task class): mean count of an active cell (>= 1)
    decisions: list[dict]       # every decision tuple as a parameters dict (sites left out)
    decision_prob: np.ndarray   # (z, decision)
    class_prob: dict            # target -> (class names, (z, class) matrix)

    def context(self, tasks: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the oracle may know of each task besides its matrix: campaign, week, task class."""
        camp_pos = {c: i for i, c in enumerate(self.campaigns)}
        camp, week, cls = (np.empty(len(tasks), dtype=np.int64) for _ in range(3))
        cache: dict[str, tuple[int, int]] = {}
        for t, task in enumerate(tasks):
            wf = workflow_of(task)
            if wf not in cache:
                name, when = campaign_of(wf), request_date_of(wf)
                if name not in camp_pos or when is None or when.year != 2018:
                    raise ValueError(f"{task}: not a task of the synthetic world (campaign {name!r}, date {when})")
                cache[wf] = (camp_pos[name], (when.date() - YEAR_START).days // 7)
            camp[t], week[t] = cache[wf]
            cls[t] = _TASK_CLASS_OF_TYPE.get(task_type_of(task), 0)
        return camp, week, cls


def _codes_of_category(categories: set[str]) -> list[str]:
    return [c for c, info in cms_vocabulary()["exit_codes"].items() if info["category"] in categories]


def normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x / x.sum(axis=axis, keepdims=True)


def _by_cause(table: dict, cause: str):
    return table.get(cause, table.get("default"))


@lru_cache(maxsize=1)
def fixed_world() -> World:
    """Build the world from ``_WORLD_SEED``: identical for every process and every sample seed."""
    rng = np.random.default_rng(_WORLD_SEED)
    vocab = cms_vocabulary()
    codes, sites = list(vocab["exit_codes"]), list(vocab["sites"])
    code_pos = {c: i for i, c in enumerate(codes)}
    n_z, n_codes = len(CAUSES) * len(SEVERITIES), len(codes)

    # Cause profiles over codes; undocumented codes are given to random causes, faintly.
    profile = np.zeros((len(CAUSES), n_codes))
    for k, cause in enumerate(CAUSES):
        for code, weight in _CAUSE_CODES[cause].items():
            profile[k, code_pos[code]] = weight  # KeyError here = a code outside the vocabulary
    for code in _codes_of_category({"unknown"}):
        if code != "-1":
            profile[rng.integers(len(CAUSES)), code_pos[code]] += 0.5
    profile = normalise(profile)
    # Background: every code possible everywhere (so every cell has positive probability);
    # Merge and housekeeping tasks lean towards stage-out and generic failures.
    popular = np.array([_POPULAR_CODES.get(c, 1.0) for c in codes]) * rng.uniform(0.7, 1.3, n_codes)
    late = np.isin(codes, _codes_of_category({"stageout", "merge", "generic"}))
    background = normalise(np.stack([popular, popular * np.where(late, 4, 1), popular * np.where(late, 6, 1)]))
    # Site-category codes are thrown mostly where the site is not ready.
    site_codes = np.isin(codes, _codes_of_category({"site"}))
    affinity = np.stack([np.ones(n_codes), np.where(site_codes, 3.0, 1.0)])

    code_prob = np.empty((n_z, len(TASK_CLASSES), 2, n_codes))
    bad_share = np.empty((n_z, 2))
    draws = np.empty((n_z, len(TASK_CLASSES)))
    count_mean = np.empty((n_z, len(TASK_CLASSES)))
    for k, cause in enumerate(CAUSES):
        share = _BAD_SHARE.get(cause, _BAD_SHARE_DEFAULT)
        scale = _PURITY_BY_CLASS["merge" if cause == "merge" else "default"]
        for v in range(len(SEVERITIES)):
            z = k * len(SEVERITIES) + v
            bad_share[z] = (1 - share, share)
            for tc in range(len(TASK_CLASSES)):
                purity = min(0.95, _PURITY[v] * scale[tc])
                mix = purity * profile[k] + (1 - purity) * background[tc]
                code_prob[z, tc] = normalise(mix[None, :] * affinity)
                draws[z, tc] = _DRAWS[cause] * _SEVERITY_DRAWS[v] * _CLASS_DRAWS[tc]
                count_mean[z, tc] = 1 + _COUNT_MEAN[cause] * _SEVERITY_COUNTS[v] * _CLASS_COUNTS[tc]

    site_prob, size = _site_readiness(rng, sites)
    tiers = np.array([site_tier(s) for s in sites])
    endpoint = np.array([s.endswith(("_Disk", "_MSS", "_Export")) for s in sites])
    whitelist_prob = normalise(np.where(np.isin(tiers, ("T1", "T2")) & ~endpoint, np.sqrt(size), 0.0))
    signature_prob = normalise(code_prob[:, 0].sum(axis=1))
    campaigns = list(CAMPAIGNS)
    log_prior = np.empty((len(campaigns), n_z))
    for i, name in enumerate(campaigns):
        tilt = _FAMILY_TILT[CAMPAIGNS[name][0]]
        base = np.array([_BASE_CAUSE_PRIOR[c] * tilt.get(c, 1.0) for c in CAUSES])
        cause = rng.dirichlet(60 * normalise(base))
        log_prior[i] = np.log(np.outer(cause, _SEVERITY_PRIOR).ravel())
    decisions, decision_prob = _policy()
    return World(codes, sites, campaigns, log_prior, bad_share, code_prob, site_prob, size, whitelist_prob,
                 signature_prob, draws, count_mean,
                 decisions, decision_prob, _class_probabilities(decisions, decision_prob))


def _site_readiness(rng: np.random.Generator, sites: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """P(site | status, week): weekly bad-site sets from a persistent two-state chain per site.

    Small sites (T3s), storage endpoints and name quirks are far more often not ready; T0/T1s
    rarely. A site's status is fixed for the week, so it never shows in both tables of a task.
    """
    tiers = [site_tier(s) for s in sites]
    endpoint = np.array([s.endswith(("_Disk", "_MSS", "_Export")) for s in sites])
    quirk = np.array([t == "unknown" for t in tiers])
    tier = np.array(tiers)
    unready = np.select(
        [endpoint | quirk, tier == "T0", tier == "T1", tier == "T2", tier == "T3"],
        [0.85, 0.04, rng.uniform(0.04, 0.12, len(sites)), rng.beta(2, 10, len(sites)),
         rng.uniform(0.7, 0.98, len(sites))])
    size = np.select(
        [endpoint, quirk, tier == "T0", tier == "T1", tier == "T2", tier == "T3"],
        [0.03, 0.06, 4.0, rng.uniform(10, 30, len(sites)), rng.lognormal(0.0, 2.5, len(sites)),
         rng.uniform(0.02, 0.3, len(sites))])
    # Two-state chain with stationary probability `unready` and mean bad spell of ~2.5 weeks.
    to_good = 0.4
    to_bad = np.minimum(0.95, to_good * unready / (1 - unready))
    bad = np.empty((N_WEEKS, len(sites)), dtype=bool)
    bad[0] = rng.random(len(sites)) < unready
    for w in range(1, N_WEEKS):
        u = rng.random(len(sites))
        bad[w] = np.where(bad[w - 1], u >= to_good, u < to_bad)
    bad[:, sites.index("T1_US_FNAL")] = False  # some site is always up ...
    bad[:, sites.index("Unknown")] = True      # ... and some name is always unready
    weight = np.stack([np.where(~bad, size, 0.0), np.where(bad, size, 0.0)], axis=1)
    return normalise(weight), size


def _policy() -> tuple[list[dict], np.ndarray]:
    """Every decision tuple and ``P(decision | z)`` (the operator's noisy policy)."""
    vocab = cms_vocabulary()
    splits = list(vocab["splitting_values"])
    memories = [None] + [str(m) for m in vocab["memory_values_mb"]]
    mb = np.array([float(m) for m in memories[1:]])
    level = np.searchsorted([3000, 6000, 10000], mb, side="left")  # <=3GB, 3-6, 6-10, >10GB
    # Operators favour round numbers: a fixed preference within each memory level.
    pop = np.where(mb % 4000 == 0, 3.0, 1.0) * np.where(mb > 40000, 0.2, 1.0)
    within = pop / np.bincount(level, weights=pop)[level]

    decisions: list[dict] = []
    for action in RAW_ACTIONS[:CONFIGURABLE]:
        for split in splits:
            for xrootd in ("disabled", "enabled"):
                for memory in memories:
                    decisions.append({"action": action, "splitting": split, "xrootd": xrootd,
                                      "memory": "" if memory is None else memory})
    decisions += [{"action": a} for a in RAW_ACTIONS[CONFIGURABLE:]]

    rows = []
    for cause in CAUSES:
        for v in range(len(SEVERITIES)):
            p_clone, p_special = _CLONE[cause][v], _SPECIAL[cause][v]
            p_acdc = 1 - p_clone - p_special
            raw = {"acdc": p_acdc * (1 - _RECOVERY_SHARE), "recovery": p_acdc * _RECOVERY_SHARE, "clone": p_clone}
            blocks = []
            for action in RAW_ACTIONS[:CONFIGURABLE]:
                group = "clone" if action == "clone" else "acdc"
                split = np.asarray(_by_cause(_ACDC_SPLIT if group == "acdc" else _CLONE_SPLIT, cause)[v])
                p_x = _by_cause(_XROOTD[group], cause)[v]
                unset, levels = _by_cause(_MEMORY[group], cause)
                p_mem = np.concatenate([[unset], (1 - unset) * np.asarray(levels[v])[level] * within])
                joint = np.einsum("s,x,m->sxm", normalise(split), [1 - p_x, p_x], p_mem)
                blocks.append(raw[action] * joint.ravel())
            special = p_special * np.asarray(_by_cause(_SPECIAL_KIND, cause))
            rows.append(np.concatenate(blocks + [special]))
    prob = np.array(rows)
    assert np.allclose(prob.sum(axis=1), 1.0)
    return decisions, prob / prob.sum(axis=1, keepdims=True)


def _class_probabilities(decisions: list[dict], decision_prob: np.ndarray) -> dict:
    """Push ``P(decision | z)`` through ``targets.label_of``: ``P(class | z)`` per target."""
    out = {}
    for target in TARGETS:
        labels = [label_of(d, target) for d in decisions]
        classes = sorted(set(labels), key=class_sort_key(target))
        onehot = np.zeros((len(decisions), len(classes)))
        onehot[np.arange(len(decisions)), [classes.index(lab) for lab in labels]] = 1.0
        matrix = decision_prob @ onehot
        keep = matrix.max(axis=0) > 0  # classes with nonzero prior mass only
        out[target] = ([c for c, k in zip(classes, keep) if k], matrix[:, keep])
    return out
