"""The history cache: a damaged entry is ignored with a warning, parsed again and rewritten."""

from __future__ import annotations

from wtc.data import load_history


def test_damaged_cache_is_ignored(small_history_path, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("WTC_CACHE_DIR", str(cache_dir))
    first = load_history(small_history_path)
    for npz in cache_dir.glob("*.npz"):
        npz.write_bytes(b"garbage")
    again = load_history(small_history_path)
    assert again.nnz == first.nnz
