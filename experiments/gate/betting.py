"""Issue 20: the betting p-value (``ltt_threshold(method="betting")``) against the draws, on dumped scores.

    python experiments/gate/betting.py /tmp/h20runs/dump/default-benchmark_binary.npz [...]

The dumps come from ``python -m wtc.bench gate --dump DIR``. Prints, per dump, the bench's table
(``wtc.bench.gate.measure``: promoted and re-certified rows, 200 draws, seed 0) and the power at
fixed thresholds: the share of 100 fresh calibration sets whose p-value is <= delta, for the
draws, the mixture of bets on workflow means, and two variants kept out of the package: predictable
aGRAPA bets in a random workflow order (p = 1 / max capital, Ville) on the workflow means Z_w / n_w
and on the task-weighted Z_w / (largest workflow).
"""

import sys

import numpy as np
from scipy import sparse
from scipy.stats import binom

import wtc.evaluation.gate as G
from wtc.bench.gate import _draw, load_dump, measure, print_table

ALPHA, DELTA = 0.05, 0.1
THRESHOLDS = np.array([0.92, 0.93, 0.94, 0.95])


def agrapa_p(z: np.ndarray, c: float = 0.75) -> np.ndarray:
    """Per row of ``z`` (thresholds x workflows, in order): 1 / max capital of predictable aGRAPA bets."""
    n = z.shape[1]
    k = np.arange(1, n)
    mu = np.c_[np.zeros((z.shape[0], 1)), np.cumsum(z, 1)[:, :-1] / k]
    var = np.c_[np.full((z.shape[0], 1), 0.25), np.cumsum(z ** 2, 1)[:, :-1] / k - mu[:, 1:] ** 2]
    lam = np.clip(mu / (var + mu ** 2 + 1e-12), 0, c / (1 - ALPHA))
    return np.minimum(1, np.exp(-np.cumsum(np.log1p(lam * z), 1).max(1)))


def power(oof, fresh, n_sets: int = 100, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    _, codes_all = np.unique(fresh.groups, return_inverse=True)
    by_group = np.split(np.argsort(codes_all, kind="stable"), np.cumsum(np.bincount(codes_all))[:-1])
    p = {k: [] for k in ("draws", "betting (mixture, Z/n)", "aGRAPA Z/n", "aGRAPA Z/B")}
    for _ in range(n_sets):
        cal = _draw(rng, by_group, len(oof["y"]))
        conf, ok = fresh.confidence[cal], fresh.correct[cal]
        _, codes = np.unique(fresh.groups[cal], return_inverse=True)
        sizes = np.bincount(codes)
        draws = []
        for _r in range(G.REPEATS):
            r = G._one_per_group(codes, rng)
            acted = conf[r][None, :] >= THRESHOLDS[:, None]
            draws.append(binom.cdf((acted & ~ok[r][None, :]).sum(1), acted.sum(1), ALPHA))
        p["draws"].append(np.minimum(1, 2 * np.sort(draws, 0)[G.REPEATS // 2 - 1]))
        p["betting (mixture, Z/n)"].append(G._betting_p(THRESHOLDS, conf, ok.astype(float), codes, ALPHA))
        excess = (conf[None, :] >= THRESHOLDS[:, None]) * (ok - (1 - ALPHA))[None, :]
        member = sparse.csr_matrix((np.ones(conf.size), (np.arange(conf.size), codes)))
        z = np.asarray((member.T @ excess.T).T)
        order = rng.permutation(sizes.size)
        p["aGRAPA Z/n"].append(agrapa_p((z / sizes)[:, order]))
        p["aGRAPA Z/B"].append(agrapa_p((z / sizes.max())[:, order]))
    return {k: (np.array(v) <= DELTA).mean(0) for k, v in p.items()}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        oof, fresh = load_dump(path)
        rows, _ = measure(oof, fresh, ALPHA, DELTA, 200, 500, min(len(oof["y"]), fresh.confidence.size // 2), 0)
        print_table(path, "", rows, ALPHA, DELTA, 200)
        print(f"share of 100 fresh calibration sets with p <= {DELTA} at t = {THRESHOLDS}")
        for name, share in power(oof, fresh).items():
            print(f"  {name:24s} {share}")
