"""Store writer faults below the appliance: a row the schema refuses, a full disk.

The appliance-level scenarios (``test_faults_disk.py``, ``test_faults_clock.py``) show
nothing is lost; these pin the two mechanisms down on the writer alone: a row that can
never commit (a constraint) is dropped and counted without blocking the rows around it,
and a transaction that SQLite already rolled back by itself (``SQLITE_FULL``) reports
the real cause, not "cannot rollback".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from heartsong.store.db import Store, db_path
from heartsong.store.writer import StoreWriter
from mqtt_tls import wait_for
from reliability.rig import disk_full


def test_a_refused_row_is_dropped_and_the_rest_committed(tmp_path: Path) -> None:
    writer = StoreWriter(db_path(tmp_path), flush_s=0.05, retention_days=0)
    sid = writer.new_session_id()
    writer.put("session_start", (sid, 1000.0, "calm", "[]"))
    writer.put("event", (sid, 1.0, 1001.0, "test", "before", "{}"))
    writer.put("beat", (sid + 99, 1.5, 800.0, "ble"))  # no such session: a foreign key
    writer.put("event", (sid, 2.0, 1002.0, "test", "after", "{}"))
    assert wait_for(lambda: writer.committed + writer.rejected >= 4, 15.0)
    writer.put("event", (sid, 3.0, 1003.0, "test", "later", "{}"))  # the store goes on
    writer.close()
    assert writer.rejected == 1
    store = Store(db_path(tmp_path))
    try:
        assert [e["message"] for e in store.events(sid)] == ["before", "after", "later"]
        assert store.beats(sid) == []
    finally:
        store.close()


def test_a_full_disk_reports_the_real_cause(tmp_path: Path) -> None:
    store = Store(db_path(tmp_path))
    with disk_full(store), pytest.raises(sqlite3.OperationalError, match="full"):
        # rows big enough to need new pages
        store.write_batch([("event", (None, 1.0, 2.0, "k", "x" * 4000, "{}"))] * 20)
    assert not store.db.in_transaction
    store.write_batch([("event", (None, 1.0, 2.0, "k", "x" * 4000, "{}"))] * 20)  # space back
    assert store.counts()["events"] == 20
    store.close()
