"""How the synthetic benchmark scores against the seed study: random vs workflow-grouped splits.

Runs the seed study's binary recipe (robust scaling without centring, then 100 boosted trees of
depth 4 on the combined view) on generated histories, once on a random 80/20 task split (how
the seed study split its real data) and once on a workflow-grouped 80/20 split (one fold of
``StratifiedGroupKFold(5)`` by workflow), and scores the oracle on the same test rows of each.
The distance between the two splits is the leakage a random split lets in; the distance to the
oracle is the headroom any model can still win. It prints figures, it never asserts::

    python -m wtc.data.synthetic.calibration [--tasks N] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

SPLITS = ("random", "grouped")
METRICS = ("auc", "accuracy", "log_loss")


def _scores(y: np.ndarray, proba: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    return {"auc": roc_auc_score(y, proba[:, 1]), "accuracy": accuracy_score(y, proba.argmax(axis=1)),
            "log_loss": log_loss(y, proba, labels=[0, 1])}


def _split(kind: str, y: np.ndarray, groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    if kind == "random":
        return train_test_split(np.arange(y.size), test_size=0.2, stratify=y, random_state=seed)
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
    return next(folds.split(np.zeros(y.size), y, groups))


def measure(n_tasks: int, seed: int) -> dict:
    """Recipe and oracle scores of one generated history on both splits, plus its summary.

    Returns
    -------
    dict
        ``{"random": {"recipe": scores, "oracle": scores}, "grouped": {...}, "generate_s",
        "classes", "codes", "workflows"}`` where scores hold ``auc``, ``accuracy``, ``log_loss``.
    """
    from sklearn.preprocessing import RobustScaler
    from xgboost import XGBClassifier

    from wtc.data import build_features, build_target, load_history
    from wtc.data.synthetic.sampling import generate_history
    from wtc.data.targets import label_of

    start = time.perf_counter()
    history, oracle = generate_history(n_tasks, seed)
    generate_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.json"
        path.write_text(json.dumps(history, separators=(",", ":")), encoding="utf-8")
        loaded = load_history(path, use_cache=False)
    X, _ = build_features(loaded, "combined")
    y, classes = build_target(loaded, "binary")
    oracle_proba = oracle[[f"binary/{c}" for c in classes]].to_numpy()
    _, groups = np.unique(loaded.workflows, return_inverse=True)

    out: dict = {"generate_s": generate_s, "workflows": int(groups.max()) + 1}
    for kind in SPLITS:
        train, test = _split(kind, y, groups, seed)
        scaler = RobustScaler(with_centering=False).fit(X[train])
        model = XGBClassifier(n_estimators=100, max_depth=4, tree_method="hist", n_jobs=2, random_state=seed)
        model.fit(scaler.transform(X[train]), y[train])
        out[kind] = {"recipe": _scores(y[test], model.predict_proba(scaler.transform(X[test]))),
                     "oracle": _scores(y[test], oracle_proba[test])}
    labels = Counter(label_of(r["parameters"], "action_split") for r in history.values())
    out["classes"] = {c: n / len(history) for c, n in labels.most_common()}
    codes: Counter = Counter()
    for record in history.values():
        for matrix in record["errors"].values():
            for code, row in matrix.items():
                codes[code] += sum(row.values())
    out["codes"] = [c for c, _ in codes.most_common(8)]
    return out


def _row(name: str, result: dict) -> str:
    cells = [f"{result[kind][who][m]:.3f}" for kind in SPLITS for who in ("recipe", "oracle") for m in METRICS]
    return f"| {name} | " + " | ".join(cells) + " |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wtc.data.synthetic.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=None, help="tasks per history (default: the seed study's 7,582)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="generator seeds")
    args = parser.parse_args(argv)
    from wtc.data.synthetic.world import DEFAULT_TASKS, GENERATOR_VERSION

    n_tasks = args.tasks or DEFAULT_TASKS
    print(f"generator g{GENERATOR_VERSION}, {n_tasks} tasks, binary target, recipe = RobustScaler + XGBoost(100, depth 4)")
    head = " | ".join(f"{kind} {who} {m}" for kind in SPLITS for who in ("recipe", "oracle") for m in METRICS)
    print(f"| seed | {head} |")
    print("|" + "---|" * (1 + 2 * 2 * len(METRICS)))
    results = []
    for seed in args.seeds:
        result = measure(n_tasks, seed)
        results.append(result)
        print(_row(str(seed), result), flush=True)
    mean = {kind: {who: {m: float(np.mean([r[kind][who][m] for r in results])) for m in METRICS}
                   for who in ("recipe", "oracle")} for kind in SPLITS}
    print(_row("mean", mean))
    gap = mean["random"]["recipe"]["auc"] - mean["grouped"]["recipe"]["auc"]
    print(f"recipe AUC, random minus grouped split: {gap:+.3f}")
    for seed, result in zip(args.seeds, results):
        top = ", ".join(f"{c} {share:.1%}" for c, share in list(result["classes"].items())[:5])
        print(f"seed {seed}: generate {result['generate_s']:.2f} s, {result['workflows']} workflows; "
              f"classes {top}; top codes {' '.join(result['codes'])}")


if __name__ == "__main__":
    main()
