"""The on-disk outbox: FIFO order, bound with counted drops, persistence, fallbacks."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from heartsong.errors import InputDataError
from heartsong.mqtt.spool import DEFAULT_MAX_MESSAGES, Spool


def _drain(spool: Spool) -> list[bytes]:
    rows = spool.after(None, 10_000)
    for row_id, _ in rows:
        spool.delete(row_id)
    return [p for _, p in rows]


def test_default_bound_is_24_hours_at_5_s() -> None:
    assert DEFAULT_MAX_MESSAGES * 5 == 24 * 3600


def test_fifo_order_and_cursor(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "outbox.sqlite3")
    ids = [spool.append(f"doc{i}".encode()) for i in range(5)]
    assert ids == sorted(ids) and len(spool) == 5
    first = spool.after(None, 2)
    assert [p for _, p in first] == [b"doc0", b"doc1"]
    rest = spool.after(first[-1][0], 10)
    assert [p for _, p in rest] == [b"doc2", b"doc3", b"doc4"]
    spool.delete(first[0][0])
    spool.delete(first[0][0])  # deleting twice is harmless
    assert len(spool) == 4
    assert [p for _, p in spool.after(None, 10)] == [b"doc1", b"doc2", b"doc3", b"doc4"]
    spool.close()


def test_new_rows_sort_after_deleted_ones(tmp_path: Path) -> None:
    # A cursor past the last (deleted) row must still see rows appended later.
    spool = Spool(tmp_path / "outbox.sqlite3")
    last = spool.append(b"a")
    spool.delete(last)
    new = spool.append(b"b")
    assert new > last
    assert spool.after(last, 10) == [(new, b"b")]
    spool.close()


def test_oldest_dropped_past_the_bound_and_counted_persistently(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.sqlite3"
    spool = Spool(path, max_messages=5)
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.spool"):
        for i in range(8):
            spool.append(str(i).encode())
    assert len(spool) == 5 and spool.dropped == 3
    assert sum("outbox full" in r.getMessage() for r in caplog.records) == 1
    spool.close()
    again = Spool(path, max_messages=5)
    assert len(again) == 5 and again.dropped == 3
    assert _drain(again) == [b"3", b"4", b"5", b"6", b"7"]
    again.close()


def test_rows_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite3"  # directory created on demand
    spool = Spool(path)
    for i in range(3):
        spool.append(f"{i}".encode())
    spool.close()
    assert _drain(Spool(path)) == [b"0", b"1", b"2"]


def test_unwritable_directory_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        path = blocker / "outbox.sqlite3"  # parent is a file: cannot be created even as root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        path = locked / "sub" / "outbox.sqlite3"
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.spool"):
        spool = Spool(path)
    assert spool.path is None
    assert "queueing in memory" in caplog.text
    spool.append(b"kept")
    assert _drain(spool) == [b"kept"]


def test_a_corrupt_file_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not an sqlite database, just some junk bytes" * 100)
    with caplog.at_level(logging.ERROR, logger="heartsong.mqtt.spool"):
        spool = Spool(path)
    assert spool.path == path
    aside = list(tmp_path.glob("outbox.sqlite3.corrupt-*"))
    assert len(aside) == 1 and b"junk" in aside[0].read_bytes()
    spool.append(b"fresh")
    assert _drain(spool) == [b"fresh"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0


def test_bound_must_be_positive() -> None:
    with pytest.raises(InputDataError, match="spool_max_messages"):
        Spool(None, max_messages=0)
