"""The held-out split and CV folds kept in the cache folder: the same arrays, read back, never a failed run."""

import logging

import numpy as np
import pandas as pd
import pytest

import wtc.data.splits
from wtc.data.splits import GroupedCV, StratifiedCV, make_splits


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    groups = np.array([f"/wf_{i // 4}" for i in range(600)], dtype=object)
    return y, groups


def _same(a, b):
    assert np.array_equal(a.train, b.train) and np.array_equal(a.test, b.test)
    assert len(a.folds) == len(b.folds)
    for (fit_a, valid_a), (fit_b, valid_b) in zip(a.folds, b.folds):
        assert np.array_equal(fit_a, fit_b) and np.array_equal(valid_a, valid_b)


def _count_computes(monkeypatch):
    calls = []
    compute = wtc.data.splits._compute_splits
    monkeypatch.setattr(wtc.data.splits, "_compute_splits", lambda *a: calls.append(a) or compute(*a))
    return calls


def test_splits_are_computed_once_and_read_back_identical(rows, tmp_path, monkeypatch):
    y, groups = rows
    expected = make_splits(GroupedCV(3), 0.2, 7, y, groups)
    calls = _count_computes(monkeypatch)
    first = make_splits(GroupedCV(3), 0.2, 7, y, groups, cache_dir=tmp_path)
    again = make_splits(GroupedCV(3), 0.2, 7, y, groups, cache_dir=tmp_path)
    assert len(calls) == 1 and len(list((tmp_path / "splits").glob("*.npz"))) == 1
    _same(first, expected)
    _same(again, expected)
    assert not set(again.train) & set(again.test)


@pytest.mark.parametrize("change", ["seed", "folds", "kind", "labels", "groups", "test_size"])
def test_any_other_input_is_another_entry(rows, tmp_path, monkeypatch, change):
    y, groups = rows
    args = {"cv": GroupedCV(3), "test_size": 0.2, "seed": 7, "y": y, "groups": groups}
    make_splits(**args, cache_dir=tmp_path)
    other = dict(args)
    if change == "seed":
        other["seed"] = 8
    elif change == "folds":
        other["cv"] = GroupedCV(4)
    elif change == "kind":
        other["cv"] = StratifiedCV(3)
    elif change == "labels":
        other["y"] = np.roll(y, 1)
    elif change == "groups":
        other["groups"] = np.array([f"/wf_{i // 5}" for i in range(len(y))], dtype=object)
    else:
        other["test_size"] = 0.25
    calls = _count_computes(monkeypatch)
    got = make_splits(**other, cache_dir=tmp_path)
    assert len(calls) == 1 and len(list((tmp_path / "splits").glob("*.npz"))) == 2
    _same(got, make_splits(**other))


@pytest.mark.parametrize("damage", ["truncated", "other rows"])
def test_a_damaged_entry_is_computed_again_and_rewritten(rows, tmp_path, monkeypatch, caplog, damage):
    y, groups = rows
    make_splits(GroupedCV(3), 0.2, 7, y, groups, cache_dir=tmp_path)
    (entry,) = (tmp_path / "splits").glob("*.npz")
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    else:  # an entry for a smaller history under this key
        make_splits(GroupedCV(3), 0.2, 7, y[:200], groups[:200], cache_dir=tmp_path / "small")
        (small,) = (tmp_path / "small" / "splits").glob("*.npz")
        entry.write_bytes(small.read_bytes())
    calls = _count_computes(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="wtc.data.splits"):
        got = make_splits(GroupedCV(3), 0.2, 7, y, groups, cache_dir=tmp_path)
    assert len(calls) == 1 and "ignoring the splits cache entry" in caplog.text
    _same(got, make_splits(GroupedCV(3), 0.2, 7, y, groups))
    _same(wtc.data.splits._read_splits(entry, len(y)), got)  # rewritten whole


def test_a_cache_folder_that_cannot_be_written_costs_a_warning_not_the_run(rows, tmp_path, caplog):
    y, groups = rows
    (tmp_path / "splits").write_text("a file where the folder should be")
    with caplog.at_level(logging.WARNING, logger="wtc.data.splits"):
        got = make_splits(GroupedCV(3), 0.2, 7, y, groups, cache_dir=tmp_path)
    assert "could not keep the splits" in caplog.text
    _same(got, make_splits(GroupedCV(3), 0.2, 7, y, groups))


@pytest.mark.parametrize("n_splits", [1, 0, "1"])
def test_fewer_than_two_folds_name_the_key(n_splits):
    with pytest.raises(ValueError, match="cv.n_splits must be at least 2"):
        GroupedCV(n_splits)
    assert GroupedCV("3").n_splits == 3  # the text of an integer, as an environment interpolation gives


# --- test_size is honoured --------------------------------------------------------------------------

def _workflows(n_workflows=60, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_workflows)
    groups = np.repeat([f"wf{i}" for i in range(n_workflows)], sizes)
    y = np.repeat(rng.integers(0, 3, n_workflows), sizes)
    return y, groups


@pytest.mark.parametrize("test_size", [0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("cv", [GroupedCV(3), StratifiedCV(3)], ids=["grouped", "stratified"])
def test_the_held_out_share_honours_test_size(cv, test_size):
    y, groups = _workflows(200)
    train, test = cv.holdout(y, groups, test_size, seed=3)
    assert np.union1d(train, test).size == len(y) and np.intersect1d(train, test).size == 0
    units = groups if cv.kind == "grouped" else np.arange(len(y))
    share = len(np.unique(units[test])) / len(np.unique(units))
    assert abs(share - test_size) <= 0.03, share  # within the granularity of workflows (of tasks)
    if cv.kind == "grouped":
        assert set(groups[train]).isdisjoint(groups[test])


@pytest.mark.parametrize("cv", [GroupedCV(3), StratifiedCV(3)], ids=["grouped", "stratified"])
def test_the_default_split_is_the_one_of_before(cv):
    # Before: the test rows were the first fold of round(1 / test_size) folds, i.e. 1 of 5.
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from wtc.data.names import workflow_of
    from wtc.data.synthetic import DEFAULT_TASKS, generate_history
    from wtc.data.targets import label_of

    history, _ = generate_history(DEFAULT_TASKS, seed=0)
    labelled = [(t, r["parameters"]) for t, r in history.items() if "parameters" in r]
    groups = np.asarray([workflow_of(t) for t, _ in labelled])
    y = pd.factorize(np.asarray([label_of(p, "binary") for _, p in labelled]))[0]
    old = (StratifiedGroupKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y, groups)
           if cv.kind == "grouped" else StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    old_train, old_test = next(old)
    train, test = cv.holdout(y, groups, 0.2, seed=0)
    np.testing.assert_array_equal(train, old_train)
    np.testing.assert_array_equal(test, old_test)


@pytest.mark.parametrize("test_size", [0.999, 0.001])
def test_a_test_size_the_workflows_cannot_give_is_one_config_error(test_size):
    from wtc.errors import ConfigError

    y, groups = _workflows(10)
    with pytest.raises(ConfigError, match=r"^test_size=.* cannot be honoured with 10 workflows") as info:
        GroupedCV(3).holdout(y, groups, test_size, seed=0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.5, 1.5])
def test_a_test_size_outside_0_1_is_one_config_error(test_size):
    from wtc.errors import ConfigError

    y, groups = _workflows(10)
    for cv in (GroupedCV(3), StratifiedCV(3)):
        with pytest.raises(ConfigError, match="^test_size must be between 0 and 1"):
            cv.holdout(y, groups, test_size, seed=0)
