"""What the tasks of one workflow share besides cause and decision: whitelist, signature code, count scale.

On real histories a workflow's tasks look alike: its jobs run at the sites of its whitelist,
it keeps failing with the same few codes, and its job count sets the level of every count. The
synthetic world gives each workflow three such traits, drawn from a hash of the workflow's
name (``blake2b``): uniforms that are fixed for a name and unrelated between names, so for a
model the traits are as good as random per workflow, while the oracle, which may read the
task's own workflow name, knows them exactly. The traits are independent of the hidden cause
and of the decision, so they carry no label information of their own: a model can only profit
from them by recognising a sibling it was trained on, which is the leakage a workflow-grouped
split keeps out.

- **whitelist**: 2–5 T1/T2 sites (bigger sites more often); of a status' draws,
  ``WHITELIST_SHARE`` land on its sites of that status that week (by the square root of their
  size), the rest follow the site sizes as before;
- **signature code**: ``SIGNATURE_SHARE`` of the code draws throw it; it is the code at a
  name-given quantile of the cause's code profile, so siblings (one cause) share one code of
  their cause (the oracle, not knowing the cause, evaluates it for every cause);
- **count scale**: every active cell's count mean is multiplied by a lognormal scale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from wtc.data.synthetic.world import (
    COUNT_SCALE_SIGMA,
    WHITELIST_SHARE,
    WHITELIST_SITES,
    World,
)

__all__ = ["TraitsPrior", "WorkflowTraits", "site_probability", "traits_prior", "whitelist_pull", "workflow_traits"]

_PERSON = b"wtc-traits-g2"  # salts the hash: another generator version would draw other traits


@dataclass(frozen=True)
class WorkflowTraits:
    """The traits of some workflows (one row each)."""

    whitelist: np.ndarray    # (workflow, WHITELIST_SITES[1]) site indices, -1 for an empty slot
    signature: np.ndarray    # (workflow, z) code index: the signature for each possible cause
    count_scale: np.ndarray  # (workflow,) factor on the count mean of every active cell


def _name_uniforms(names: list[str], n: int) -> np.ndarray:
    """``n`` uniforms in (0, 1) per name from its blake2b digest (53 bits each)."""
    digest = b"".join(hashlib.blake2b(name.encode("utf-8"), digest_size=8 * n, person=_PERSON).digest()
                      for name in names)
    bits = np.frombuffer(digest, dtype="<u8").reshape(len(names), n) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) / 2.0**53


def _inverse_cdf(prob: np.ndarray, u: np.ndarray) -> np.ndarray:
    cum = np.cumsum(prob)
    return np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), prob.size - 1)


def workflow_traits(world: World, workflows: list[str]) -> WorkflowTraits:
    """The traits of every workflow name (see the module docstring); pure function of the name."""
    low, high = WHITELIST_SITES
    u = _name_uniforms(list(workflows), high + 3)
    slots = _inverse_cdf(world.whitelist_prob, u[:, :high])
    n_sites = low + np.minimum((u[:, high] * (high - low + 1)).astype(np.int64), high - low)
    slots[np.arange(high) >= n_sites[:, None]] = -1
    for j in range(1, high):  # a site named twice is one whitelist entry
        slots[:, j][(slots[:, :j] == slots[:, j:j + 1]).any(axis=1)] = -1
    # The u-quantile of each z's code profile: siblings share z, hence one code of their cause.
    cum = np.cumsum(world.signature_prob, axis=1)
    signature = np.minimum((cum[None] < u[:, high + 1, None, None]).sum(axis=2), cum.shape[1] - 1)
    return WorkflowTraits(slots, signature, np.exp(COUNT_SCALE_SIGMA * ndtri(u[:, high + 2])))


@dataclass(frozen=True)
class TraitsPrior:
    """A distribution of a workflow's traits of the form :func:`workflow_traits` draws from.

    The whitelist is the set of ``n`` slots drawn independently from ``slot_prob`` (a site
    named twice is one entry), ``n ~ n_slots_prob``; the signature code of each z is drawn
    from that z's row of ``signature_prob``; the count scale is ``exp(scale_mu + scale_sigma
    * N(0, 1))``. The three are independent. :func:`traits_prior` is the one names induce;
    point masses (one-hot rows, ``scale_sigma=0``) give a workflow's known traits.
    """

    slot_prob: np.ndarray       # (site,): P(a slot names the site)
    n_slots_prob: np.ndarray    # (n,): P(n slots), n = 0 .. WHITELIST_SITES[1]
    signature_prob: np.ndarray  # (z, code): P(signature code | z)
    scale_mu: float = 0.0
    scale_sigma: float = COUNT_SCALE_SIGMA


def traits_prior(world: World) -> TraitsPrior:
    """The distribution :func:`workflow_traits` induces over names (their hashes as uniforms).

    Slots follow ``world.whitelist_prob``, the number of slots is uniform on
    ``WHITELIST_SITES``, the signature of z is the u-quantile of ``world.signature_prob[z]``
    (so it has that distribution) and the scale is lognormal(0, ``COUNT_SCALE_SIGMA``).
    """
    low, high = WHITELIST_SITES
    n_slots = np.zeros(high + 1)
    n_slots[low:] = 1.0 / (high - low + 1)
    signature = world.signature_prob / world.signature_prob.sum(axis=1, keepdims=True)
    return TraitsPrior(world.whitelist_prob, n_slots, signature, 0.0, COUNT_SCALE_SIGMA)


def whitelist_pull(world: World, whitelist: np.ndarray, week: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Weights of the whitelist slots for draws of a status in a week, shape (draw, slot).

    A slot weighs the square root of its site's size when that site has that status that
    week, else 0 (as does an empty slot). Rows that sum to 0 send every draw to the sizes.
    """
    site = np.maximum(whitelist, 0)
    ready = world.site_prob[week[:, None], status[:, None], site] > 0
    return np.where((whitelist >= 0) & ready, np.sqrt(world.site_size[site]), 0.0)


def site_probability(world: World, whitelist: np.ndarray, week: np.ndarray, status: np.ndarray,
                     site: np.ndarray) -> np.ndarray:
    """``P(site | status, week, whitelist)`` of each draw (one row of ``whitelist`` per draw)."""
    pull = whitelist_pull(world, whitelist, week, status)
    total = pull.sum(axis=1)
    share = np.where(total > 0, WHITELIST_SHARE, 0.0)
    on_list = np.where(whitelist == site[:, None], pull, 0.0).sum(axis=1)
    return ((1 - share) * world.site_prob[week, status, site]
            + share * np.divide(on_list, total, out=np.zeros_like(total), where=total > 0))
