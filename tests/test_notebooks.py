"""Notebooks execute top to bottom with the project's kernel, so they never rot; the committed ones carry
their outputs (``python3 dev.py notebooks``), which the tests never rewrite."""

from __future__ import annotations

import math
import re
from pathlib import Path

import mlflow
import nbformat
import pytest
from nbclient import NotebookClient

from tests.factories import make_cfg
from wtc.data.synthetic import oracle_path, write_benchmark
from wtc.run.experiment import run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: What each notebook must print when it works (a cell that silently shows nothing fails here).
EXPECTED = {
    "01_explore_history.ipynb": ["2000 tasks", "oracle on every labelled task: ROC AUC"],
    "02_compare_runs.ipynb": ["no wtc runs in the project's store", "3 runs", "logreg: test ROC AUC",
                              "3 ROC and 3 precision-recall curves of the top 3 runs"],
}
#: What the committed outputs show (dev.py notebooks: the default benchmark, the scratch store's runs).
COMMITTED = {
    "01_explore_history.ipynb": ["data/generated/wtc_history_7582_seed0_g2.json: 7582 tasks",
                                 "oracle on every labelled task: ROC AUC"],
    "02_compare_runs.ipynb": ["WTC_NOTEBOOK_SCRATCH=1: three tiny runs", *EXPECTED["02_compare_runs.ipynb"][1:]],
}
#: The most a committed notebook may weigh with its outputs (figures at modest dpi, no huge tables).
MAX_BYTES = 600_000


def _execute(path: Path, cwd: Path, monkeypatch, home: Path | None = None) -> nbformat.NotebookNode:
    # The kernel is a child process: it imports wtc from this checkout, and the exploration
    # notebook generates a 2,000-task history instead of the 7,582-task default benchmark. Its
    # project home (its store) is ``home``, an empty folder unless given: never the checkout's mlruns/.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("WTC_NOTEBOOK_QUICK", "1")
    monkeypatch.delenv("WTC_NOTEBOOK_SCRATCH", raising=False)
    if home is None:
        (home := cwd / "home").mkdir()
    monkeypatch.setenv("WTC_HOME", str(home))
    committed = path.read_bytes()
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # the committed outputs must not pass for this execution's
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    # execute() raises CellExecutionError on the first failing cell: that is the test of errors.
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    assert path.read_bytes() == committed, f"executing {path.name} rewrote the committed notebook"
    return notebook


def _stdout(notebook) -> str:
    code = [c for c in notebook.cells if c.cell_type == "code"]
    return "".join(o.get("text", "") for c in code for o in c.get("outputs", []) if o.get("name") == "stdout")


def _results(notebook) -> list[str]:
    """The text of every cell's result (the value of its last expression, e.g. a DataFrame)."""
    return [o["data"].get("text/plain", "") for c in notebook.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "execute_result"]


def _explore_computed(notebook) -> None:
    """01: the quick history's size and the oracle's scores, as numbers in their range."""
    printed = _stdout(notebook)
    tasks, labelled = map(int, re.search(r": (\d+) tasks \((\d+) labelled\)", printed).groups())
    assert tasks == 2000 and 0 < labelled <= tasks
    auc, loss = map(float, re.search(r"oracle on every labelled task: ROC AUC ([\d.]+), log-loss ([\d.]+)",
                                     printed).groups())
    assert 0.5 < auc <= 1 and 0 < loss < math.log(2)  # the exact posterior beats a coin and the prior


def _compare_computed(notebook) -> None:
    """02: the three runs' test AUCs (the dummy at chance, the others above it) and the table of them."""
    aucs = {m: float(v) for m, v in re.findall(r"(\w+): test ROC AUC ([\d.]+)", _stdout(notebook))}
    assert set(aucs) == {"dummy", "rules", "logreg"}
    assert aucs["dummy"] == 0.5 and aucs["rules"] > 0.5 and aucs["logreg"] > 0.5
    (table,) = [r for r in _results(notebook) if "model.name" in r]  # the runs read back from the store
    rows = re.findall(r"^\d+\s+\S+\s+(\w+)\s+(\w+)\s", table, flags=re.MULTILINE)  # status, model.name
    assert sorted(rows) == sorted(("FINISHED", model) for model in aucs)


#: What each notebook must compute when it works (a cell that runs but computes nothing fails here).
COMPUTED = {"01_explore_history.ipynb": _explore_computed, "02_compare_runs.ipynb": _compare_computed}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.delenv("WTC_HISTORY", raising=False)
    notebook = _execute(path, tmp_path, monkeypatch)
    assert not [c for c in notebook.cells if c.cell_type == "markdown" and "import " in c.source], \
        "code in a markdown cell never runs"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    figures = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert figures, "the notebook shows at least one figure"
    printed = _stdout(notebook)
    for expected in EXPECTED[path.name]:
        assert expected in printed, (expected, printed[-2000:])
    COMPUTED[path.name](notebook)


@pytest.mark.slow
def test_exploration_of_a_real_history_without_oracle(tmp_path, monkeypatch):
    history = write_benchmark(tmp_path / "real.json", n_tasks=400, seed=1)
    oracle_path(history).unlink()  # a real history has no oracle sidecar
    monkeypatch.setenv("WTC_HISTORY", str(history))
    notebook = _execute(ROOT / "notebooks" / "01_explore_history.ipynb", tmp_path, monkeypatch)
    printed = _stdout(notebook)
    assert f"{history}: 400 tasks" in printed
    assert f"no oracle for {history}" in printed and "oracle on every labelled task" not in printed


@pytest.mark.slow
def test_compare_notebook_reads_the_users_own_store(tmp_path, monkeypatch, new_store):
    home = tmp_path / "home"
    uri = new_store(home)  # the project's default store: <WTC_HOME>/mlruns/mlflow.db
    history = write_benchmark(tmp_path / "history.json", n_tasks=300, seed=2)
    client = mlflow.MlflowClient(uri)
    sweep = str(tmp_path / "multirun" / "2026-12-06" / "10-00-00")
    for model in ("dummy", "logreg"):
        client.set_tag(run(make_cfg(history, uri, ["search=none", f"model={model}"])).run_id, "wtc.sweep", sweep)
    run(make_cfg(history, uri, ["search=none", "model=rules"]))  # newest, of no sweep: not the sweep shown
    notebook = _execute(ROOT / "notebooks" / "02_compare_runs.ipynb", tmp_path, monkeypatch, home=home)
    printed = _stdout(notebook)
    assert f"your store {uri}: sweep {sweep}" in printed and "2 runs of sweep" in printed
    assert "test ROC AUC" not in printed  # no scratch runs were made
    (table,) = [r for r in _results(notebook) if "model.name" in r]
    assert sorted(re.findall(r"^\d+\s+\S+\s+FINISHED\s+(\w+)\s", table, flags=re.MULTILINE)) == ["dummy", "logreg"]
    assert "2 ROC and 2 precision-recall curves of the top 2 runs" in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_carry_their_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    # Executed top to bottom in one kernel, without an error or a warning on stderr.
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    assert [o for o in outputs if "image/png" in o.get("data", {})], "its figures are committed"
    assert all(c.outputs for c in code[:1]) and path.stat().st_size < MAX_BYTES
    printed = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    for expected in COMMITTED[path.name]:
        assert expected in printed


def test_every_notebook_has_expectations():
    assert NOTEBOOKS and {p.name for p in NOTEBOOKS} == set(EXPECTED) == set(COMPUTED) == set(COMMITTED)
