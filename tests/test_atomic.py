"""Atomic writes: the target is whole or untouched, and no temporary file is left."""

from __future__ import annotations

import pytest

from clusterlens.atomic import replace_atomically, write_bytes_atomically, write_text_atomically


def test_text_and_bytes_replace_the_target_and_leave_nothing_else(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old")
    write_text_atomically(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    write_bytes_atomically(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "weights.pt"
    target.write_bytes(b"old weights")

    def half_then_fail(temporary):
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt  # an interrupt mid-write

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(target, half_then_fail)
    assert target.read_bytes() == b"old weights"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.pt"]


def test_a_new_file_gets_ordinary_permissions_and_a_replaced_one_keeps_its_own(tmp_path):
    fresh = tmp_path / "new.json"
    write_text_atomically(fresh, "{}")
    assert fresh.stat().st_mode & 0o044 == 0o044  # readable by others, as open() would make it
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o600)
    write_text_atomically(kept, "new")
    assert kept.stat().st_mode & 0o777 == 0o600
