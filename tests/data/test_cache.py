"""The history cache: the caller's folder, and a damaged entry is ignored, parsed again, rewritten."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal

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


def _load_meta(meta):
    return json.loads(meta.read_bytes().partition(b"\n")[2])


def _save_meta(meta, content):
    """Rewrite the .json with a valid checksum line, so the checks behind the checksum are reached."""
    body = json.dumps(content).encode()
    meta.write_bytes(hashlib.sha256(body).hexdigest().encode() + b"\n" + body)


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
    _save_meta(meta, {})


def _json_not_an_object(npz, meta):
    _save_meta(meta, [1, 2])


def _json_cut(npz, meta):
    meta.write_text(meta.read_text()[:-10])


def _json_lacks_tasks(npz, meta):
    content = _load_meta(meta)
    del content["tasks"]
    _save_meta(meta, content)


def _missing_npz(npz, meta):
    npz.unlink()


def _rewrite_arrays(npz, change):
    """Change the arrays and re-sign them in the .json, so the checks behind the checksum are reached."""
    with np.load(npz) as stored:
        arrays = {k: stored[k] for k in stored.files}
    change(arrays)
    with open(npz, "wb") as fh:
        np.savez(fh, **arrays)
    meta = npz.with_suffix(".json")
    content = _load_meta(meta)
    content["arrays_sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    _save_meta(meta, content)


def _mismatched_lengths(npz, meta):
    _rewrite_arrays(npz, lambda a: a.update(entry_site=a["entry_site"][:-1]))


def _wrong_dtype(npz, meta):
    _rewrite_arrays(npz, lambda a: a.update(entry_count=a["entry_count"].astype(np.float64)))


def _index_out_of_range(npz, meta):
    _rewrite_arrays(npz, lambda a: a.update(entry_site=a["entry_site"] + 1000))


def _missing_array(npz, meta):
    _rewrite_arrays(npz, lambda a: a.pop("entry_code"))


def _fewer_parameter_records(npz, meta):
    content = _load_meta(meta)
    content["parameter_records"] = content["parameter_records"][:-1]
    _save_meta(meta, content)


def _from_another_write(npz, meta):
    # A write killed between its two renames: the new .npz beside an older .json.
    content = _load_meta(meta)
    content["write_id"] = "0" * 32
    _save_meta(meta, content)


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


# --- the entry's bytes are checked, not trusted ----------------------------------------------------

def _edit_json_value(npz, meta):
    # An edited value that keeps the entry valid JSON and consistent: only the checksum sees it.
    meta.write_bytes(meta.read_bytes().replace(b'"acdc"', b'"acdb"', 1))


def _edit_site_name(npz, meta):
    meta.write_bytes(meta.read_bytes().replace(b"T1_US_FNAL", b"T1_US_FNAM", 1))


def _edit_checksum_line(npz, meta):
    data = bytearray(meta.read_bytes())
    data[0] = ord("0") if data[0] != ord("0") else ord("1")
    meta.write_bytes(bytes(data))


def _strip_checksum_line(npz, meta):
    meta.write_bytes(meta.read_bytes().partition(b"\n")[2])


def _json_truncated_to_one_byte(npz, meta):
    meta.write_bytes(meta.read_bytes()[:1])


def _npz_one_byte_appended(npz, meta):
    npz.write_bytes(npz.read_bytes() + b"\0")


def _fifo_at_json(npz, meta):
    meta.unlink()
    os.mkfifo(meta)


def _fifo_at_npz(npz, meta):
    npz.unlink()
    os.mkfifo(npz)


def _folder_at_npz(npz, meta):
    npz.unlink()
    npz.mkdir()


def _json_names_another_npz_checksum(npz, meta):
    content = _load_meta(meta)
    content["arrays_sha256"] = "0" * 64
    _save_meta(meta, content)


SIGNED_DAMAGE = [_edit_json_value, _edit_site_name, _edit_checksum_line, _strip_checksum_line,
                 _json_truncated_to_one_byte, _npz_one_byte_appended, _fifo_at_json, _fifo_at_npz, _folder_at_npz,
                 _json_names_another_npz_checksum]


class _Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` in the code under test swallows it."""


@pytest.fixture
def no_hang():
    """Fail (not hang) a test that blocks for more than 60 s, e.g. on a FIFO."""
    def hang(signum, frame):
        raise _Hang("blocked for 60 s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("damage", SIGNED_DAMAGE)
def test_a_changed_entry_is_never_used(small_history_path, tmp_path, monkeypatch, caplog, no_hang, damage):
    parses = _count_parses(monkeypatch)
    fresh = load_history(small_history_path, use_cache=False)
    load_history(small_history_path, cache_dir=tmp_path / "cache")
    npz, meta = _entry(tmp_path / "cache")
    damage(npz, meta)
    with caplog.at_level(logging.WARNING, logger="wtc.data.cache"):
        again = load_history(small_history_path, cache_dir=tmp_path / "cache")
    assert len(parses) == 3 and "damaged history cache entry" in caplog.text
    _same(again, fresh)


def _every_byte_position(size, count=24):
    return sorted({0, size - 1, *np.linspace(0, size - 1, count).astype(int).tolist()})


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_a_flipped_byte_anywhere_in_either_file_is_caught(small_history_path, tmp_path, suffix):
    fresh = load_history(small_history_path, use_cache=False)
    folder = tmp_path / "cache"
    load_history(small_history_path, cache_dir=folder)
    npz, meta = _entry(folder)
    target = meta if suffix == ".json" else npz
    original = target.read_bytes()
    positions = _every_byte_position(len(original))
    for position in positions:
        damaged = bytearray(original)
        damaged[position] ^= 0x01
        target.write_bytes(bytes(damaged))
        assert cache.read(meta.stem, folder) is None, f"a flipped bit at byte {position} of {target.name} was used"
        _same(load_history(small_history_path, cache_dir=folder), fresh)  # parsed again and rewritten
        npz, meta = _entry(folder)
        target = meta if suffix == ".json" else npz
        original = target.read_bytes()
    assert len(positions) >= 20
