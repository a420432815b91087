"""``python -m wtc.bench scale``: how the champion preset's and a default job's cost grow with the history."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wtc.bench.scratch import scratch_overrides

#: What each measured recipe overrides: the champion preset (binary), and the heaviest job of the
#: default sweep (``+experiment=default_sweep``: 4 GP trials x 3 grouped folds; xgboost, combined, no resampling).
RECIPES = {"champion": ["+experiment=champion", "target=binary"],
           "default": ["+experiment=default_sweep", "target=binary", "model=xgboost", "data=combined", "resample=none"]}


def peak_rss() -> int:
    """This process's peak resident set in bytes: ``VmHWM`` of /proc/self/status, which starts afresh
    at ``exec`` (``ru_maxrss`` keeps the forking parent's peak, the benchmark's own generator's),
    else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _child(spec: str) -> None:
    """In a fresh process: one run of ``spec``'s overrides, then its timings, peak RSS and sizes as JSON."""
    args = json.loads(spec)
    from hydra import compose, initialize_config_dir

    from wtc.data import load_history
    from wtc.run.experiment import run

    baseline = peak_rss()  # so far: the interpreter and every import the run needs
    with initialize_config_dir(config_dir=args["conf"], version_base="1.3"):
        cfg = compose("config", overrides=args["overrides"])
    result = run(cfg)
    peak = peak_rss()
    m = result.metrics
    history = load_history(cfg.data.path, cache_dir=cfg.paths.cache_dir)
    out = {"total_s": m["time/total_s"], "search_s": m["time/search_s"], "refit_s": m["time/refit_s"],
           "post_s": m["time/post_training_s"], "trial_mean_s": m["time/trial_mean_s"],
           "peak_rss": peak, "baseline_rss": baseline, "nnz": int(history.nnz), "tasks": int(history.n_tasks),
           "log_loss": m["test/log_loss"]}
    Path(args["out"]).write_text(json.dumps(out))


def measure(recipe: str, path: Path, tmp: Path, trials: int | None) -> dict:
    """One run of ``recipe`` on the history at ``path`` in a child process: its figures (see :func:`_child`)."""
    conf = Path(__file__).resolve().parents[2] / "conf"
    out = tmp / f"{recipe}-{path.stem}.json"
    overrides = [*RECIPES[recipe], f"data.path={path}", *scratch_overrides(tmp), "quiet=true"]
    if trials is not None:
        overrides.append(f"search.n_trials={trials}")
    spec = json.dumps({"conf": str(conf), "overrides": overrides, "out": str(out)})
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"from wtc.bench.scale import _child; _child({spec!r})"], check=True)
    row = json.loads(out.read_text())
    row["wall_s"] = time.perf_counter() - start
    # What the run spent before its search: loading, featurising, the split, the tracker's start;
    # post_s is what follows the final fit: predictions, metrics, the record and the end of the run.
    row["load_s"] = row["total_s"] - row["search_s"] - row["refit_s"] - row["post_s"]
    row.update(recipe=recipe, trials=trials)
    return row


def bench_scale(sizes: list[int], sweep_sizes: list[int], trials: int | None, sweep_trials: int | None,
                seed: int = 0) -> list[dict]:
    """The champion preset (binary) at each of ``sizes`` tasks and one default-sweep job at each of
    ``sweep_sizes``: wall time split by step (load: loading, featurising, the split and the run's
    start; search; refit; post: scoring and the record after the final fit), peak RSS of the run's
    process and per non-zero count.

    Each run is a child process (its peak RSS, :func:`peak_rss`, at its end: the whole process's
    peak, numpy/LightGBM buffers included, not only Python's allocations); ``+RSS`` is that peak less
    the process's peak before the run began (interpreter and imports).
    """
    from wtc.data.synthetic import write_benchmark

    rows = []
    header = (f"{'recipe':>9} {'tasks':>7} {'nnz':>10} {'trials':>6} {'gen_s':>6} {'load_s':>7} {'search_s':>8} "
              f"{'s/trial':>7} {'refit_s':>7} {'post_s':>7} {'total_s':>8} {'peak_MB':>8} {'+RSS_MB':>8} "
              f"{'B/nnz':>6} {'log_loss':>8}")
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(set(sizes) | set(sweep_sizes)):
            start = time.perf_counter()
            path = write_benchmark(Path(tmp) / f"history_{n}_seed{seed}.json", n_tasks=n, seed=seed)
            generate_s = time.perf_counter() - start
            for recipe, wanted, k in (("champion", sizes, trials), ("default", sweep_sizes, sweep_trials)):
                if n not in wanted:
                    continue
                r = measure(recipe, path, Path(tmp), k)
                r["generate_s"] = generate_s
                rows.append(r)
                extra = r["peak_rss"] - r["baseline_rss"]
                print(f"{recipe:>9} {r['tasks']:>7} {r['nnz']:>10} {str(k or 'preset'):>6} {generate_s:>6.1f} "
                      f"{r['load_s']:>7.1f} {r['search_s']:>8.1f} {r['trial_mean_s']:>7.1f} {r['refit_s']:>7.1f} "
                      f"{r['post_s']:>7.1f} {r['total_s']:>8.1f} {r['peak_rss'] / 1e6:>8.0f} {extra / 1e6:>8.0f} "
                      f"{extra / max(r['nnz'], 1):>6.0f} {r['log_loss']:>8.4f}", flush=True)
            path.unlink()
    _print_growth(rows)
    return rows


def _print_growth(rows: list[dict]) -> None:
    """Between consecutive sizes of a recipe: how its total time and extra RSS grew against the tasks."""
    for recipe in RECIPES:
        mine = sorted((r for r in rows if r["recipe"] == recipe), key=lambda r: r["tasks"])
        for a, b in zip(mine, mine[1:]):
            tasks = b["tasks"] / a["tasks"]
            steps = {s: b[f"{s}_s"] for s in ("load", "search", "refit", "post")}
            top = max(steps, key=steps.get)
            print(f"{recipe}: {a['tasks']} -> {b['tasks']} tasks (x{tasks:.2f}, nnz x{b['nnz'] / a['nnz']:.2f}): "
                  f"time x{b['total_s'] / a['total_s']:.2f}, extra RSS "
                  f"x{(b['peak_rss'] - b['baseline_rss']) / max(a['peak_rss'] - a['baseline_rss'], 1):.2f}; "
                  f"largest step at {b['tasks']}: {top} ({steps[top] / b['total_s']:.0%})", flush=True)
