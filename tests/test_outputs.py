"""Files written whole or not at all: the one atomic writer every command, cache and generator uses."""

from __future__ import annotations

import pytest

from wtc.errors import WtcError
from wtc.outputs import replace_atomically, write_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")

    def half(tmp):
        tmp.write_text("half a new")
        raise KeyboardInterrupt  # even an interruption: the old file stays whole

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(target, half)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]
    replace_atomically(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_write_atomic_takes_text_bytes_or_a_writer_and_names_the_file_it_cannot_write(tmp_path):
    assert write_atomic(tmp_path / "a" / "t.txt", "é").read_text(encoding="utf-8") == "é"  # its folder made
    assert write_atomic(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert write_atomic(tmp_path / "c.txt", lambda tmp: tmp.write_text("w")).read_text() == "w"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WtcError, match=f"^cannot write {blocker}/out.txt: "):
        write_atomic(blocker / "out.txt", "y")
