"""Sampling a synthetic history from the world: workflows, failed tasks, decisions and error counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from wtc.data.synthetic.posterior import oracle_of
from wtc.data.synthetic.traits import WorkflowTraits, whitelist_pull, workflow_traits
from wtc.data.synthetic.world import (
    CAMPAIGNS,
    CONFIGURABLE,
    DEFAULT_TASKS,
    DISPERSION,
    PWG_WEIGHTS,
    PWGS,
    RAW_ACTIONS,
    SIGNATURE_SHARE,
    STATUSES,
    TASK_CLASSES,
    TASKS_PER_WORKFLOW,
    WHITELIST_SHARE,
    YEAR_START,
    World,
    fixed_world,
    normalise,
)
from wtc.data.vocabulary import site_tier


def draw_rows(rng: np.random.Generator, prob: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per entry of ``rows`` from the matching row of ``prob`` (2-D).

    Searching ``row + u`` in the row-offset cumulative table samples every row at once
    without a rows × categories temporary.
    """
    n_rows, n_cols = prob.shape
    cum = np.cumsum(prob, axis=1)
    cum /= cum[:, -1:]
    flat = (cum + np.arange(n_rows)[:, None]).ravel()
    # ``row + u`` can round up to ``row + 1``, which would land past the row: stay below it.
    target = np.minimum(rows + rng.random(rows.size), np.nextafter(rows + 1.0, 0.0))
    return np.searchsorted(flat, target, side="right") - rows * n_cols


@dataclass
class Sample:
    """A generated history plus the hidden truth behind it (for tests)."""

    history: dict
    task_latent: np.ndarray    # z of every task, file order
    task_workflow: np.ndarray  # workflow index of every task
    traits: WorkflowTraits     # of every workflow (rows indexed like task_workflow)


def sample_history(n_tasks: int, seed: int) -> Sample:
    """Draw workflows (campaign, cause, date, decision, failed tasks), then every task's errors.

    Everything is drawn in vectorised blocks from one ``default_rng(seed)`` in a fixed order,
    so a seed always gives the same bytes; only the names and records are built per workflow.
    """
    if n_tasks < 1:
        raise ValueError(f"n_tasks must be at least 1, got {n_tasks}")
    world = fixed_world()
    rng = np.random.default_rng(seed)
    one_row = np.zeros(n_tasks, dtype=np.int64)  # n_tasks workflows bound the need; cut below
    camp_w = normalise(np.array([[v[5] for v in CAMPAIGNS.values()]], dtype=float))
    camp = draw_rows(rng, camp_w, one_row)
    z = draw_rows(rng, np.exp(world.log_prior), camp)
    sizes = 1 + draw_rows(rng, np.array([TASKS_PER_WORKFLOW]), one_row)
    # Which tasks failed: the first step always, then others by Gumbel-top-k (weights in the
    # order of _task_paths); step-1 tasks only for two-step campaigns, its Cleanup rarely.
    keys = np.log([3.0, 0.8, 0.4, 0.8, 2.5, 3.0, 0.4]) + rng.gumbel(size=(n_tasks, 7))
    keys[:, 0] = np.inf
    two_steps = np.array([CAMPAIGNS[c][2] == 2 for c in world.campaigns])[camp]
    keys[~two_steps, 4:] = -np.inf
    keys[rng.random(n_tasks) >= 0.3, 6] = -np.inf
    sizes = np.minimum(sizes, np.isfinite(keys).sum(axis=1))
    n_wf = int(np.searchsorted(np.cumsum(sizes), n_tasks)) + 1
    camp, z, sizes, keys = camp[:n_wf], z[:n_wf], sizes[:n_wf], keys[:n_wf]
    sizes[-1] -= sizes.sum() - n_tasks  # the last workflow is truncated to hit n_tasks exactly
    order = np.argsort(-keys, axis=1, kind="stable")

    info = [CAMPAIGNS[world.campaigns[c]] for c in camp]
    first = np.array([(date(2018, f[3], 1) - YEAR_START).days for f in info])
    last = np.array([(date(2018, f[4], 28) - YEAR_START).days for f in info])
    day = first + (rng.random(n_wf) * (last - first + 1)).astype(np.int64)
    second = rng.integers(0, 86400, n_wf)
    pwg = draw_rows(rng, normalise(np.array([PWG_WEIGHTS], dtype=float)), one_row[:n_wf])
    number = rng.integers(1, 100000, n_wf)
    suffix = rng.integers(1000, 10000, n_wf)
    decision = draw_rows(rng, world.decision_prob, z)
    # Sites the operator names for a resubmission: 1-3 ready T1/T2 sites of that week.
    big = np.array([site_tier(s) in ("T1", "T2") for s in world.sites])
    ready_big = normalise(world.site_prob[:, 0] * big)
    picked = draw_rows(rng, ready_big, np.repeat(day // 7, 3)).reshape(n_wf, 3)
    n_sites = rng.integers(1, 4, n_wf)

    history: dict = {}
    task_wf: list[int] = []
    seen: set[str] = set()
    workflows: list[str] = []
    for w in range(n_wf):
        name = world.campaigns[camp[w]]
        stamp = f"{YEAR_START + timedelta(days=int(day[w])):%y%m%d}_{second[w] // 3600:02d}" \
                f"{second[w] // 60 % 60:02d}{second[w] % 60:02d}"
        prepid = f"{PWGS[pwg[w]]}-{name}-{number[w]:05d}"
        workflow = f"pdmvserv_task_{prepid}__v1_T_{stamp}_{suffix[w]:04d}"
        while workflow in seen:  # a (very rare) name clash: bump the random digits
            suffix[w] = (suffix[w] - 999) % 9000 + 1000
            workflow = f"pdmvserv_task_{prepid}__v1_T_{stamp}_{suffix[w]:04d}"
        seen.add(workflow)
        workflows.append(workflow)
        params = dict(world.decisions[decision[w]])
        if params["action"] in RAW_ACTIONS[:CONFIGURABLE]:
            params["sites"] = sorted({world.sites[s] for s in picked[w, : n_sites[w]]})
            params["cores"] = ""
        paths = _task_paths(prepid, info[w][1], info[w][2])
        for j in sorted(order[w, : sizes[w]]):
            history[f"/{workflow}/{paths[j]}"] = {"errors": None, "parameters": dict(params)}
            task_wf.append(w)
    task_wf_arr = np.asarray(task_wf)
    traits = workflow_traits(world, workflows)
    sample_errors(rng, world, history, z[task_wf_arr], traits, task_wf_arr)
    return Sample(history, z[task_wf_arr], task_wf_arr, traits)


def _task_paths(prepid: str, module: str, steps: int) -> list[str]:
    """Candidate task paths of a workflow (index order = weights in :func:`_sample`)."""
    s0, s1 = f"{prepid}_0", f"{prepid}_1"
    module0 = "RAWSIMoutput" if steps == 2 else module
    return [s0, f"{s0}/{s0}Merge{module0}", f"{s0}/{s0}CleanupUnmerged{module0}", f"{s0}/LogCollect",
            s1, f"{s1}/{s1}Merge{module}", f"{s1}/{s1}CleanupUnmerged{module}"]


def sample_errors(rng: np.random.Generator, world: World, history: dict, task_z: np.ndarray,
                  traits: WorkflowTraits, task_workflow: np.ndarray) -> None:
    """Fill every task's ``errors`` from its z and its workflow's traits (vectorised over all draws)."""
    tasks = list(history)
    _, week, cls = world.context(tasks)
    lam = world.draws[task_z, cls]
    k = rng.poisson(lam)
    while (empty := k == 0).any():  # zero-truncated: a task in the file failed at least once
        k[empty] = rng.poisson(lam[empty])
    t = np.repeat(np.arange(len(tasks)), k)
    wf = task_workflow[t]
    s = draw_rows(rng, world.bad_share, task_z[t])
    n_codes, n_sites = len(world.codes), len(world.sites)
    code_rows = world.code_prob.reshape(-1, n_codes)
    c = draw_rows(rng, code_rows, (task_z[t] * len(TASK_CLASSES) + cls[t]) * 2 + s)
    signed = rng.random(t.size) < SIGNATURE_SHARE
    c[signed] = traits.signature[wf[signed], task_z[t[signed]]]
    site = draw_rows(rng, world.site_prob.reshape(-1, n_sites), week[t] * 2 + s)
    pull = whitelist_pull(world, traits.whitelist[wf], week[t], s)
    listed = (rng.random(t.size) < WHITELIST_SHARE) & (pull.sum(axis=1) > 0)
    slot = draw_rows(rng, pull[listed], np.arange(listed.sum()))
    site[listed] = traits.whitelist[wf[listed], slot]
    key = np.unique(((t * 2 + s) * n_codes + c) * n_sites + site)  # distinct active cells
    rest, site = np.divmod(key, n_sites)
    rest, c = np.divmod(rest, n_codes)
    t, s = np.divmod(rest, 2)
    mean = (world.count_mean[task_z[t], cls[t]] - 1) * traits.count_scale[task_workflow[t]]
    count = 1 + rng.negative_binomial(DISPERSION, DISPERSION / (DISPERSION + mean))
    bounds = np.searchsorted(t, np.arange(len(tasks) + 1))
    codes, sites = world.codes, world.sites
    for i, task in enumerate(tasks):
        errors: dict = {"good_sites": {}, "bad_sites": {}}
        for j in range(bounds[i], bounds[i + 1]):
            errors[STATUSES[s[j]]].setdefault(codes[c[j]], {})[sites[site[j]]] = int(count[j])
        history[task]["errors"] = errors


def generate_history(n_tasks: int = DEFAULT_TASKS, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """Sample a synthetic actions history and its exact oracle.

    Parameters
    ----------
    n_tasks : int
        Number of tasks (the last workflow is truncated to hit it exactly).
    seed : int
        Drives the sample only; the world (priors, code and site distributions, policy,
        weekly bad-site sets) is the same for every seed.

    Returns
    -------
    history : dict
        Task name -> ``{"errors": {...}, "parameters": {...}}``, JSON-ready, in file order.
    oracle : DataFrame
        See :func:`oracle_of`.

    Raises
    ------
    ValueError
        When ``n_tasks`` is below 1.
    """
    sample = sample_history(int(n_tasks), int(seed))
    return sample.history, oracle_of(sample.history)
