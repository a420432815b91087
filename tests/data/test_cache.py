"""The history cache: the caller's folder, and a damaged entry is ignored, parsed again, rewritten."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from wtc.data import cache, load_history
from wtc.data import loader as loader_module

ARRAYS = ("entry_task", "entry_status", "entry_code", "entry_site", "entry_count")


def _entry(folder):
    """The (.npz, .json) pair of the only entry in ``folder``."""
    (meta,) = folder.glob("*.json")
    return meta.with_suffix(".npz"), meta


def _same(a, b):
    assert (a.tasks, a.statuses, a.codes, a.sites) == (b.tasks, b.statuses, b.codes, b.sites)
    assert a.parameter_records == b.parameter_records and a.skipped == b.skipped
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == getattr(b, name).dtype


def _count_parses(monkeypatch):
    calls = []
    real = loader_module._parse

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loader_module, "_parse", counting)
    return calls


def test_cache_dir_from_the_caller(small_history_path, tmp_path, monkeypatch):
    env_dir, own_dir = tmp_path / "env", tmp_path / "own"
    monkeypatch.setenv("WTC_CACHE_DIR", str(env_dir))
    assert cache.cache_dir() == env_dir
    load_history(small_history_path, cache_dir=own_dir)
    assert list(own_dir.glob("*.json")) and not env_dir.exists()
    load_history(small_history_path)
    assert list(env_dir.glob("*.json"))


def test_cache_dir_defaults_to_the_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("WTC_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_dir() == tmp_path / ".cache" / "wtc" / "histories"


def test_no_cache_writes_nothing(small_history_path, tmp_path):
    load_history(small_history_path, use_cache=False, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_cached_load_equals_a_parse(small_history_path, tmp_path, monkeypatch):
    parses = _count_parses(monkeypatch)
    first = load_history(small_history_path, cache_dir=tmp_path / "cache")
    second = load_history(small_history_path, cache_dir=tmp_path / "cache")
    assert len(parses) == 1
    _same(second, first)


def _truncate(npz, meta):
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])


def _flip_bytes(npz, meta):
    data = bytearray(npz.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0xFF
    npz.write_bytes(bytes(data))


def _garbage(npz, meta):
    npz.write_bytes(b"garbage")


def _empty_json(npz, meta):
    meta.write_text("{}")


def _json_not_an_object(npz, meta):
    meta.write_text("[1, 2]")


def _json_cut(npz, meta):
    meta.write_text(meta.read_text()[:-10])


def _json_lacks_tasks(npz, meta):
    content = json.loads(meta.read_text())
    del content["tasks"]
    meta.write_text(json.dumps(content))


def _missing_npz(npz, meta):
    npz.unlink()


def _rewrite_arrays(npz, change):
    with np.load(npz) as stored:
        arrays = {k: stored[k] for k in stored.files}
    change(arrays)
    with open(npz, "wb") as fh:
        np.savez(fh, **arrays)


def _mismatched_lengths(npz, meta):
    _rewrite_arrays(npz, lambda a: a.update(entry_site=a["entry_site"][:-1]))


def _wrong_dtype(npz, meta):
    _rewrite_arrays(npz, lambda a: a.update(entry_count=a["entry_count"].astype(np.float64)))


def _index_out_of_range(npz, meta):
    _rewrite_arrays(npz, lambda a: a.update(entry_site=a["entry_site"] + 1000))


def _missing_array(npz, meta):
    _rewrite_arrays(npz, lambda a: a.pop("entry_code"))


def _fewer_parameter_records(npz, meta):
    content = json.loads(meta.read_text())
    content["parameter_records"] = content["parameter_records"][:-1]
    meta.write_text(json.dumps(content))


def _from_another_write(npz, meta):
    # A write killed between its two renames: the new .npz beside an older .json.
    content = json.loads(meta.read_text())
    content["write_id"] = "0" * 32
    meta.write_text(json.dumps(content))


@pytest.mark.parametrize("damage", [
    _truncate, _flip_bytes, _garbage, _empty_json, _json_not_an_object, _json_cut, _json_lacks_tasks,
    _missing_npz, _mismatched_lengths, _wrong_dtype, _index_out_of_range, _missing_array,
    _fewer_parameter_records, _from_another_write,
])
def test_damaged_entry_is_ignored_reparsed_and_rewritten(small_history_path, tmp_path, monkeypatch, caplog, damage):
    parses = _count_parses(monkeypatch)
    first = load_history(small_history_path, cache_dir=tmp_path / "cache")
    npz, meta = _entry(tmp_path / "cache")
    damage(npz, meta)
    with caplog.at_level(logging.WARNING, logger="wtc.data.cache"):
        again = load_history(small_history_path, cache_dir=tmp_path / "cache")
    assert len(parses) == 2  # parsed again, not read from the damaged entry
    assert "damaged history cache entry" in caplog.text
    _same(again, first)
    caplog.clear()
    third = load_history(small_history_path, cache_dir=tmp_path / "cache")
    assert len(parses) == 2 and not caplog.text  # the rewritten entry is whole again
    _same(third, first)


def test_an_uncommitted_write_is_a_silent_miss(small_history_path, tmp_path, monkeypatch, caplog):
    parses = _count_parses(monkeypatch)
    load_history(small_history_path, cache_dir=tmp_path / "cache")
    npz, meta = _entry(tmp_path / "cache")
    meta.unlink()  # killed before the .json was renamed into place
    with caplog.at_level(logging.WARNING):
        load_history(small_history_path, cache_dir=tmp_path / "cache")
    assert len(parses) == 2 and not caplog.text


def test_a_killed_write_leaves_no_entry(small_history_path, tmp_path, monkeypatch):
    def killed(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        load_history(small_history_path, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_unwritable_cache_is_not_fatal(small_history_path, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="wtc.data.cache"):
        h = load_history(small_history_path, cache_dir=blocker / "cache")
    assert h.n_tasks == 5 and "could not cache" in caplog.text
