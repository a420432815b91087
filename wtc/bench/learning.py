"""``python -m wtc.bench learning``: how much history the champion needs to come near a limit."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from wtc.bench.scratch import scratch_overrides

#: The limits the excess can be measured against: ``load_oracle``'s keyword arguments and the
#: function that writes the sidecar beside a generated history (None: written with it). The
#: default is the name-blind workflow oracle: the tight limit of a model that reads a task's siblings.
LIMITS = {
    "oracle": ({}, None),
    "oracle_blind": ({"blind": True}, "ensure_blind_oracle"),
    "oracle_workflow": ({"workflow": True}, "ensure_workflow_oracle"),
    "oracle_workflow_blind": ({"blind": True, "workflow": True}, "ensure_workflow_blind_oracle"),
}

#: Each training file holds size / (1 - TEST_SIZE) tasks: the run keeps TEST_SIZE of its
#: workflows for its own test metrics and trains on about ``size`` tasks.
TEST_SIZE = 0.1
#: The seed study's history (docs/data.md): the size the answer line speaks of when no size comes close.
SEED_STUDY_TASKS = 7582


def _workflow_order(tasks: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """The workflows in first-seen order and each one's tasks (in file order)."""
    from wtc.data.names import workflow_of

    members: dict[str, list[str]] = {}
    for task in tasks:
        members.setdefault(workflow_of(task), []).append(task)
    return list(members), members


def _take(order, members, n_tasks: int) -> list[str]:
    """The first workflows of ``order`` until they hold at least ``n_tasks`` tasks."""
    chosen, total = [], 0
    for w in order:
        if total >= n_tasks:
            break
        chosen.append(w)
        total += len(members[w])
    if total < n_tasks:
        raise ValueError(f"the world holds {total} tasks outside the held-out set, fewer than {n_tasks}")
    return chosen


def _write_subset(raw: dict, workflows, members, path: Path, oracle=None) -> Path:
    """The tasks of ``workflows`` (in the world's file order) as a history file, with the world's
    exact oracle rows beside it when ``oracle`` (the world's oracle table) is given."""
    from wtc.data.synthetic import oracle_path

    keep = {t for w in workflows for t in members[w]}
    tasks = [t for t in raw if t in keep]
    if oracle is not None:
        oracle.set_index("task").loc[tasks].reset_index().to_parquet(oracle_path(path), index=False)
    path.write_text(json.dumps({t: raw[t] for t in tasks}, separators=(",", ":")), encoding="utf-8")
    return path


def _score(result, cfg, holdout: Path, limit: str, cache_dir: Path) -> dict:
    """The run's model and the limit on the held-out history: log-loss and coverage at 95% precision."""
    from wtc.data import build_features, load_history
    from wtc.data.oracle import load_oracle
    from wtc.data.targets import build_target
    from wtc.evaluation.diagnostics import automation_metrics
    from wtc.evaluation.metrics import score_all
    from wtc.models.pipeline import full_proba

    history = load_history(holdout, cache_dir=cache_dir)
    X, _ = build_features(history, cfg.data.view, vocabulary=list(result.feature_names),
                          extras=list(cfg.data.get("extras") or []))
    y_all, classes = build_target(history, cfg.target.name)
    labelled = y_all >= 0
    missing = [c for c in classes if c not in result.classes]
    if missing:
        raise ValueError(f"{holdout}: held-out class {missing[0]!r} is not among the model's {result.classes}")
    column = np.array([list(result.classes).index(c) for c in classes])
    y, n = column[y_all[labelled]], len(result.classes)
    proba = full_proba(result.pipeline, X[labelled], n)
    best = np.zeros((int(labelled.sum()), n))
    best[:, column] = load_oracle(holdout, cfg.target.name, history=history, **LIMITS[limit][0])[0][labelled]
    model, bound = score_all(y, proba, n), score_all(y, best, n)
    return {"log_loss": model["log_loss"], "limit_log_loss": bound["log_loss"],
            "coverage_p95": automation_metrics(y, proba, "m")["m/coverage_at_p95"],
            "limit_coverage_p95": automation_metrics(y, best, "o")["o/coverage_at_p95"], "test_tasks": len(y)}


def answer_line(rows: list[dict], limit: str, within_pct: float = 1.0) -> str:
    """"With N tasks you are within X% of the limit": the smallest size whose mean excess (over the
    seeds) is at most ``within_pct``, and the largest size's mean excess with the seeds' range."""
    by_size = {}
    for r in rows:
        by_size.setdefault(r["size"], []).append(r["excess_pct"])
    means = {s: float(np.mean(v)) for s, v in sorted(by_size.items())}
    largest, spread = max(means), by_size[max(means)]
    close = [s for s, m in means.items() if m <= within_pct]
    # None close: the excess at the size nearest the seed study's history (7,582 tasks), the size a CMS group has.
    seed_size = min(means, key=lambda s: abs(np.log(s / SEED_STUDY_TASKS)))
    head = (f"with {close[0]:,} tasks you are within {max(means[close[0]], 0):.1f}% of the limit" if close else
            f"no size came within {within_pct:g}% of the limit: with {seed_size:,} tasks you are "
            f"{means[seed_size]:.1f}% above it")
    where = "above" if means[largest] >= 0 else "below"
    return (f"{head} ({limit}, test log-loss, mean of {len(spread)} seeds); with {largest:,} tasks "
            f"{abs(means[largest]):.1f}% {where} it (seeds {min(spread):+.1f} to {max(spread):+.1f}%)")


def _plot(rows: list[dict], limit: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "excess_pct", f"test log-loss excess over {limit} (%)"),
                           (axes[1], "coverage_p95", "coverage at 95% precision")):
        values = [[r[key] for r in rows if r["size"] == s] for s in sizes]
        mean = [np.mean(v) for v in values]
        ax.fill_between(sizes, [min(v) for v in values], [max(v) for v in values], alpha=0.25,
                        label="seeds' range")
        ax.plot(sizes, mean, marker="o", label="mean over seeds")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training tasks")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].axhline(0.0, color="k", lw=0.8)
    axes[1].axhline(np.mean([r["limit_coverage_p95"] for r in rows]), color="k", ls="--", label=limit)
    axes[1].legend()
    fig.suptitle("the champion preset against the history size (binary, same held-out workflows)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bench_learning(sizes: list[int], seeds: list[int], holdout: int, world: int = 0, trials: int | None = None,
                   limit: str = "oracle_workflow_blind", blind_samples: int = 32, out: str | Path = "experiments/learning",
                   target: str = "binary") -> list[dict]:
    """The champion preset trained on ``sizes`` tasks of one generated world, scored on the same held-out workflows.

    One history of world ``world`` is generated; ``holdout`` tasks of whole workflows are set
    aside, and for each seed the other workflows are shuffled and each size takes the first of
    them (nested sizes, disjoint from the held-out ones). Each run keeps :data:`TEST_SIZE` of its
    file for its own test metrics. Prints one row per (size, seed), writes ``learning.png``,
    ``learning.csv`` and ``answer.txt`` into ``out`` and returns the rows.
    """
    from hydra import compose, initialize_config_dir

    import wtc.data.synthetic as synthetic
    from wtc.data.dataset import config_splits, load_dataset
    from wtc.data.synthetic import load_oracle_table, write_benchmark
    from wtc.run.experiment import run

    conf = Path(__file__).resolve().parents[2] / "conf"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    largest = math.ceil(max(sizes) / (1 - TEST_SIZE))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        # A quarter more than the largest file needs, so that the seeds' largest sets differ too.
        world_path = write_benchmark(tmp / "world.json", n_tasks=holdout + math.ceil(1.25 * largest), seed=world)
        raw = json.loads(world_path.read_bytes())
        order, members = _workflow_order(list(raw))
        shuffled = [order[i] for i in np.random.default_rng(world).permutation(len(order))]
        held = _take(shuffled, members, holdout)
        pool = shuffled[len(held):]
        held_path = _write_subset(raw, held, members, tmp / "holdout.json", load_oracle_table(world_path))
        kwargs, ensure = LIMITS[limit]
        if ensure is not None:  # a name-blind oracle is estimated from samples
            getattr(synthetic, ensure)(held_path, **({"samples": blind_samples} if kwargs.get("blind") else {}))
        print(f"world {world}: {len(raw)} tasks, {len(order)} workflows; held out {sum(len(members[w]) for w in held)} "
              f"tasks of {len(held)} workflows; limit {limit} ({time.perf_counter() - start:.0f} s)", flush=True)
        print(f"{'size':>7} {'seed':>4} {'train':>7} {'test':>6} {'log_loss':>9} {'limit':>8} {'excess%':>8} "
              f"{'cov@95':>7} {'limit_cov':>9} {'wall_s':>7}", flush=True)
        for seed in seeds:
            mine = [pool[i] for i in np.random.default_rng(1000 + seed).permutation(len(pool))]
            for size in sorted(sizes):
                path = _write_subset(raw, _take(mine, members, math.ceil(size / (1 - TEST_SIZE))), members,
                                     tmp / f"train_{size}_seed{seed}.json")
                overrides = ["+experiment=champion", f"target={target}", f"data.path={path}", f"seed={seed}",
                             f"test_size={TEST_SIZE}", *scratch_overrides(tmp), "quiet=true"]
                if trials is not None:
                    overrides.append(f"search.n_trials={trials}")
                with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
                    cfg = compose("config", overrides=overrides)
                start = time.perf_counter()
                result = run(cfg)
                row = {"size": size, "seed": seed, "train_tasks": len(config_splits(cfg, load_dataset(cfg)).train),
                       **_score(result, cfg, held_path, limit, tmp / "cache"), "wall_s": time.perf_counter() - start}
                row["excess_pct"] = 100 * (row["log_loss"] / row["limit_log_loss"] - 1)
                rows.append(row)
                path.unlink()
                print(f"{size:>7} {seed:>4} {row['train_tasks']:>7} {row['test_tasks']:>6} "
                      f"{row['log_loss']:>9.4f} {row['limit_log_loss']:>8.4f} {row['excess_pct']:>8.2f} "
                      f"{row['coverage_p95']:>7.3f} {row['limit_coverage_p95']:>9.3f} {row['wall_s']:>7.0f}",
                      flush=True)
            _write(rows, limit, out)  # after each seed: an interrupted bench keeps what it measured
    print(answer_line(rows, limit), flush=True)
    print(f"figure: {out / 'learning.png'}; table: {out / 'learning.csv'}", flush=True)
    return rows


def _write(rows: list[dict], limit: str, out: Path) -> None:
    """The table, the figure and the one-line answer of ``rows`` into ``out``."""
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "learning.csv", index=False)
    _plot(rows, limit, out / "learning.png")
    (out / "answer.txt").write_text(answer_line(rows, limit) + "\n", encoding="utf-8")
