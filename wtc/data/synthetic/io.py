"""Benchmark files of the synthetic world: the history JSON, its oracle sidecar and the default benchmark."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from wtc.data.synthetic.sampling import generate_history
from wtc.data.synthetic.world import DEFAULT_TASKS, GENERATOR_VERSION
from wtc.outputs import replace_atomically


def oracle_path(history_path, blind: bool = False, workflow: bool = False) -> Path:
    """The oracle sidecar of a history: same folder and stem, suffix ``.oracle.parquet``
    (``.blind_oracle.parquet`` for the name-blind oracle, see :mod:`~wtc.data.synthetic.blind`;
    ``.workflow_oracle.parquet`` for the workflow oracle, see :func:`ensure_workflow_oracle`; both:
    ``.workflow_blind_oracle.parquet`` for the name-blind workflow oracle, see
    :func:`ensure_workflow_blind_oracle`)."""
    path = Path(history_path)
    kind = {(False, False): "oracle", (True, False): "blind_oracle", (False, True): "workflow_oracle",
            (True, True): "workflow_blind_oracle"}[bool(blind), bool(workflow)]
    return path.with_name(f"{path.stem}.{kind}.parquet")


def write_benchmark(path, n_tasks: int = DEFAULT_TASKS, seed: int = 0) -> Path:
    """Generate a history and write it (compact JSON) with its oracle sidecar.

    Parameters
    ----------
    path : str or Path
        Where the JSON goes; the oracle goes to :func:`oracle_path` of it.
    n_tasks, seed : int
        See :func:`generate_history`.

    Returns
    -------
    Path
        The history's path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    history, oracle = generate_history(n_tasks, seed)
    text = json.dumps(history, separators=(",", ":"))
    # The oracle lands first: whoever sees the history also finds its sidecar.
    replace_atomically(oracle_path(path), lambda tmp: oracle.to_parquet(tmp, index=False))
    replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path


def load_oracle_table(history_path, blind: bool = False, workflow: bool = False) -> pd.DataFrame:
    """Read the oracle sidecar of a history (see :func:`oracle_of` for its columns), or with
    ``blind`` the name-blind oracle's (see :func:`ensure_blind_oracle`), with ``workflow`` the
    workflow oracle's (see :func:`ensure_workflow_oracle`), with both the name-blind workflow
    oracle's (see :func:`ensure_workflow_blind_oracle`).

    Raises
    ------
    FileNotFoundError
        When the sidecar is missing (only generated histories have one).
    """
    sidecar = oracle_path(history_path, blind, workflow)
    if not sidecar.exists():
        raise FileNotFoundError(f"no oracle sidecar {sidecar} for {history_path} (only generated histories have one)")
    return pd.read_parquet(sidecar)


def ensure_blind_oracle(history_path, samples: int = 32, seed: int = 0) -> Path:
    """The name-blind oracle's sidecar of a generated history, computed on first use.

    It costs minutes per 10,000 tasks (see :mod:`~wtc.data.synthetic.blind`), so unlike the
    exact oracle it is not written with every history: the quality benchmark asks for it. A
    sidecar whose tasks are not the history's is recomputed.
    """
    from wtc.data.synthetic.blind import blind_oracle_of

    return _ensure_sidecar(history_path, oracle_path(history_path, blind=True),
                           lambda history: blind_oracle_of(history, samples=samples, seed=seed))


def ensure_workflow_oracle(history_path) -> Path:
    """The workflow oracle's sidecar of a generated history, computed on first use (seconds).

    The limit of a model that reads a task's siblings (see
    :func:`~wtc.data.synthetic.posterior.workflow_oracle_of`); like the name-blind oracle it is
    written when the quality benchmark asks for it. A sidecar whose tasks are not the history's
    is recomputed.
    """
    from wtc.data.synthetic.posterior import workflow_oracle_of

    return _ensure_sidecar(history_path, oracle_path(history_path, workflow=True), workflow_oracle_of)


def ensure_workflow_blind_oracle(history_path, samples: int = 32, seed: int = 0) -> Path:
    """The name-blind workflow oracle's sidecar of a generated history, computed on first use.

    The limit of a model that reads a task's siblings but not its workflow's traits (see
    :mod:`~wtc.data.synthetic.workflow_blind`; minutes per 10,000 tasks), written when the
    quality benchmark asks for it. A sidecar whose tasks are not the history's is recomputed.
    """
    from wtc.data.synthetic.workflow_blind import workflow_blind_oracle_of

    return _ensure_sidecar(history_path, oracle_path(history_path, blind=True, workflow=True),
                           lambda history: workflow_blind_oracle_of(history, samples=samples, seed=seed))


def _ensure_sidecar(history_path, sidecar: Path, compute) -> Path:
    """``sidecar`` as it is when its tasks are the history's, else ``compute(history)`` written there."""
    history = json.loads(Path(history_path).read_bytes())
    if sidecar.exists() and list(pd.read_parquet(sidecar, columns=["task"])["task"]) == list(history):
        return sidecar
    table = compute(history)
    replace_atomically(sidecar, lambda tmp: table.to_parquet(tmp, index=False))
    return sidecar


def default_history_path(folder=None) -> Path:
    """Where the default benchmark lives: ``<folder>/wtc_history_7582_seed0_g<version>.json``.

    Parameters
    ----------
    folder : str or Path, optional
        Defaults to ``$WTC_DATA_DIR``, else ``./data/generated``. The generator version in the
        name means a file written by an older generator is never taken for today's benchmark.
    """
    if folder is None:
        root = os.environ.get("WTC_DATA_DIR")
        folder = Path(root) if root else Path.cwd() / "data" / "generated"
    return Path(folder) / f"wtc_history_{DEFAULT_TASKS}_seed0_g{GENERATOR_VERSION}.json"


def ensure_default_history(folder=None) -> Path:
    """The default benchmark's path (see :func:`default_history_path`), generating it and its oracle on first use."""
    path = default_history_path(folder)
    if not (path.exists() and oracle_path(path).exists()):
        write_benchmark(path, DEFAULT_TASKS, seed=0)
    return path
