"""What a new user trips over first: wtc alone, --version, help texts, a mistyped option, the store
found from the project whatever the current directory, and never an empty store created."""

from __future__ import annotations

import pytest

from tests.factories import compose_cfg
from wtc import __version__
from wtc.cli import main
from wtc.config import project_home


def test_wtc_alone_prints_the_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: wtc") and "promote" in out and "predict" in out


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"wtc {__version__}"


@pytest.mark.parametrize("action", ["describe", "check", "generate"])
def test_every_data_action_describes_itself(action, capsys):
    with pytest.raises(SystemExit):
        main(["data", action, "--help"])
    out = capsys.readouterr().out
    description = out.split("\n\n")[1]  # usage, then the description paragraph
    assert not description.startswith(("positional", "options")) and len(description.split()) > 10


@pytest.mark.parametrize("argv, suggestion", [
    (["compare", "--experment", "x", "--out", "o"], "did you mean --experiment?"),
    (["promote", "--dryrun"], "did you mean --dry-run?"),
    (["runs", "figures", "--swep", "s"], "did you mean --sweep?"),
])
def test_a_mistyped_option_gets_a_suggestion(argv, suggestion, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2 and suggestion in capsys.readouterr().err


def test_nonsense_gets_no_suggestion(capsys):
    with pytest.raises(SystemExit):
        main(["promote", "--zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err


def test_the_project_home_is_the_checkout_unless_wtc_home_says(monkeypatch, tmp_path):
    monkeypatch.delenv("WTC_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert (project_home() / "conf" / "config.yaml").is_file()  # the checkout, not the current directory
    monkeypatch.setenv("WTC_HOME", str(tmp_path / "home"))
    assert project_home() == (tmp_path / "home").resolve()
    assert compose_cfg().paths.mlruns == str((tmp_path / "home" / "mlruns").resolve())


@pytest.mark.parametrize("argv", [
    ["compare", "--out", "report"],
    ["runs", "figures", "--sweep", "s"],
    ["runs", "cleanup"],
    ["promote", "--experiment", "wtc-binary", "--name", "wtc-binary"],
    ["predict", "history.json", "--model", "models:/wtc-binary@champion"],
])
def test_a_command_that_needs_the_store_never_creates_an_empty_one(argv, monkeypatch, tmp_path, capsys):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (elsewhere / "history.json").write_text("{}")
    monkeypatch.setenv("WTC_HOME", str(home))
    monkeypatch.chdir(elsewhere)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"no tracking store at sqlite:///{home.resolve()}/mlruns/mlflow.db" in err[0]
    assert "set WTC_HOME or pass --tracking-uri" in err[0]
    assert not (home / "mlruns").exists() and not (elsewhere / "mlruns").exists()


def test_predict_from_a_model_folder_needs_no_store(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("WTC_HOME", str(tmp_path))
    (tmp_path / "history.json").write_text("{}")
    assert main(["predict", str(tmp_path / "history.json"), "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert "no tracking store" not in err and not (tmp_path / "mlruns").exists()
