"""``python3 dev.py test [--quick] [pytest arguments]``: what it hands to pytest."""

from __future__ import annotations

import importlib.util
import tomllib
from types import SimpleNamespace

import pytest

from tests.factories import ROOT


def _dev():
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_runs_the_tests_not_marked_slow_and_passes_the_rest_on():
    dev = _dev()
    assert dev.pytest_args(["--quick"]) == ["-m", "not slow"]
    assert dev.pytest_args(["-x", "--quick", "tests/data"]) == ["-m", "not slow", "-x", "tests/data"]
    assert dev.pytest_args(["--quick", "-m", "not xfail"]) == ["-m", "(not slow) and (not xfail)"]
    # Without --quick: the whole suite, the arguments untouched (a -m of the caller's included).
    assert dev.pytest_args(["-x", "-m", "slow"]) == ["-x", "-m", "slow"] and dev.pytest_args([]) == []


def test_the_marker_quick_leaves_out_is_registered():
    """``pytest --markers`` says what ``--quick`` leaves out (and pytest warns about a marker it does not know)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert _dev().QUICK == "not slow"
    assert any(marker.split(":")[0] == "slow" for marker in config["markers"])


@pytest.mark.parametrize("returncode", [0, 1])
def test_run_leaves_the_commands_to_the_sweep_and_says_it_is_done(monkeypatch, capsys, returncode):
    # The sweep's end prints the leaderboard URL with `wtc ui` and the optuna-dashboard command
    # (tests/ops/test_leaderboard.py, tests/test_sweep.py): dev.py must not print them a second time.
    dev = _dev()
    calls = []
    monkeypatch.setattr(dev, "setup", lambda: None)
    monkeypatch.setattr(dev.subprocess, "run", lambda command, **kwargs: calls.append(command)
                        or SimpleNamespace(returncode=returncode))
    assert dev.main(["run"]) == returncode
    out = capsys.readouterr().out
    assert len(calls) == 1 and calls[0][1:4] == ["run.py", "-m", "+experiment=default_sweep"]
    assert "wtc ui --tracking-uri" not in out and "optuna-dashboard sqlite" not in out
    assert ("Done: the commands above open the leaderboard" in out) == (returncode == 0)


def test_notebooks_executes_them_in_the_venv(monkeypatch):
    dev = _dev()
    calls, executed = [], []
    monkeypatch.setattr(dev, "setup", lambda: None)
    monkeypatch.setattr(dev.subprocess, "run", lambda command, **kwargs: calls.append(command)
                        or SimpleNamespace(returncode=0))
    monkeypatch.setattr(dev, "execute_notebooks", lambda: executed.append(True))
    assert dev.main(["notebooks"]) == 0
    assert calls == [[str(dev.PYTHON), dev.__file__, "--execute-notebooks"]] and not executed
    assert dev.main(["--execute-notebooks"]) == 0 and executed == [True]  # the venv's side: no setup


def test_jupyterlab_is_in_the_default_install():
    """The README's one setup command (dev.py installs ``.[test]``) gives JupyterLab and the notebooks' kernel."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {d.split("==")[0] for d in project["dependencies"]}
    assert {"jupyterlab", "ipykernel"} <= names and "notebooks" not in project["optional-dependencies"]
