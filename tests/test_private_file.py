"""The person's data files: atomic replacement, owner-only whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from heartsong.private_file import create_private, write_private
from heartsong.stress.baseline import Baseline, save_baseline
from heartsong.therapy.preference import PreferenceModel, PreferenceStore
from heartsong.therapy.resonance import ResonanceModel, ResonanceStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_owner_only_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        stale = tmp_path / "sub" / "x.json.tmp"
        stale.parent.mkdir()
        stale.write_text("torn")
        os.chmod(stale, 0o666)  # a temporary file left by a power cut, world-writable
        write_private(tmp_path / "sub" / "x.json", '{"a": 1}')
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "x.json").read_text() == '{"a": 1}'
    assert _mode(tmp_path / "sub" / "x.json") == 0o600
    assert not stale.exists()


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_private(path, "old")
    (tmp_path / "x.json.tmp").mkdir()  # the temporary name cannot be opened as a file
    with pytest.raises(OSError):
        write_private(path, "new")
    assert path.read_text() == "old"


def test_every_store_of_the_persons_data_writes_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ResonanceStore(tmp_path / "baseline.json").save(ResonanceModel())
        PreferenceStore(tmp_path / "prefs.json").save(PreferenceModel())
        base = Baseline({"hr_bpm": 60.0, "rmssd_ms": 40.0, "sdnn_ms": 50.0, "pnn50_pct": 20.0})
        assert save_baseline(tmp_path / "stress.json", base, 0.0)
    finally:
        os.umask(old)
    for path in tmp_path.iterdir():
        assert _mode(path) == 0o600, path


def test_create_private_makes_an_owner_only_file_and_tightens_an_open_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "db.sqlite3"
    old = os.umask(0o022)
    try:
        create_private(path)
    finally:
        os.umask(old)
    assert path.read_bytes() == b""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.write_bytes(b"kept")
    os.chmod(path, 0o644)  # an outbox or database made by an older version
    create_private(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"kept"


def test_every_folder_made_for_the_data_is_owner_only(tmp_path: Path) -> None:
    """mkdir(parents=True) gave the parents the umask's mode (0755 under umask 022)."""
    old = os.umask(0o022)
    try:
        write_private(tmp_path / "a" / "b" / "state" / "baseline.json", "{}")
        create_private(tmp_path / "c" / "d" / "sessions.sqlite3")
    finally:
        os.umask(old)
    for folder in ("a", "a/b", "a/b/state", "c", "c/d"):
        assert (tmp_path / folder).stat().st_mode & 0o777 == 0o700, folder
