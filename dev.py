#!/usr/bin/env python3
"""Set up .venv (once, and again when pyproject.toml changes) and run the main job or the tests.

    python3 dev.py run             # the default sweep on the generated benchmark, then how to open MLflow
    python3 dev.py test            # the whole test suite (pytest), as CI runs it
    python3 dev.py test --quick    # the tests not marked slow: no sweep, server, notebook or Python subprocess
    python3 dev.py notebooks       # execute notebooks/ in place, keeping their outputs (scratch store)
    python3 dev.py setup           # only the virtual environment

Further arguments of ``test`` go to pytest: ``python3 dev.py test --quick tests/data -x``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".wtc-installed"


def setup() -> None:
    """Create the venv and install the project with its test extras, when anything changed."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and PYTHON.exists():
        return
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"wtc needs Python 3.11 (this is {sys.version.split()[0]}); run dev.py with python3.11")
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing wtc and its dependencies into .venv (a few minutes the first time) ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


#: What ``test --quick`` selects: every test not marked ``slow`` (pyproject.toml's markers; tests/conftest.py).
QUICK = "not slow"


def pytest_args(args: list[str]) -> list[str]:
    """pytest's arguments for ``dev.py test ARGS``: ``--quick`` becomes ``-m "not slow"``, joined with
    the caller's own ``-m EXPR`` if any (``--quick -m data`` runs the quick tests marked data)."""
    if "--quick" not in args:
        return list(args)
    rest, marks = [], []
    items = iter(a for a in args if a != "--quick")
    for arg in items:
        if arg == "-m":
            marks.append(next(items, ""))
        elif arg.startswith("-m") and not arg.startswith("--"):
            marks.append(arg[2:].lstrip("="))
        else:
            rest.append(arg)
    expression = " and ".join(f"({m})" for m in [QUICK, *marks]) if marks else QUICK
    return ["-m", expression, *rest]


def execute_notebooks() -> None:
    """Execute every notebook of notebooks/ top to bottom and write it back with its outputs (run by the
    venv's Python). Its second notebook compares three tiny runs in a scratch store, never your own, so
    the committed outputs are the same wherever they were made (but for timings)."""
    import nbformat
    from nbclient import NotebookClient

    os.environ.update(WTC_NOTEBOOK_SCRATCH="1", PYTHONPATH=str(ROOT))
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=900, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        nbformat.write(notebook, path)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "run"
    if command == "--execute-notebooks":  # dev.py notebooks, inside the venv
        execute_notebooks()
        return 0
    setup()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if command == "setup":
        return 0
    if command == "test":
        return subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args(argv[1:])], cwd=ROOT, env=env).returncode
    if command == "notebooks":
        return subprocess.run([str(PYTHON), __file__, "--execute-notebooks"], cwd=ROOT, env=env).returncode
    if command == "run":
        code = subprocess.run([str(PYTHON), "run.py", "-m", "+experiment=default_sweep", *argv[1:]],
                              cwd=ROOT, env=env).returncode
        if code == 0:  # the sweep's end printed the leaderboard's and the searches' commands: not again
            print("\nDone: the commands above open the leaderboard (wtc ui) and the searches (optuna-dashboard).")
        return code
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
