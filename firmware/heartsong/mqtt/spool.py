"""The outbox: state documents waiting on disk for the broker, oldest first, bounded.

An SQLite table (stdlib ``sqlite3``) in the state directory survives a broker outage, a
restart of the device and a power cut: rows are appended while the broker cannot take
them and deleted only after the broker acknowledged them (PUBACK), so a document is sent
at least once and in order. The table is bounded: past ``max_messages`` the oldest rows
are dropped, and the drop is counted (persistently) and logged.

The default bound, 17,280 documents, is 24 h at the default 5 s publish interval
(a document is ~0.5 kB, so ~9 MB on disk). The database runs in WAL mode with
``synchronous=NORMAL`` (no fsync per row: a power cut may lose the last few rows, never
corrupt the file). The file is created owner-only (0600, its folder 0700). A file that
cannot be opened as a database is moved aside and a new one started; a directory that
cannot be written to falls back to memory, with a warning.

Not thread-safe: one thread (the link's sender) owns a spool.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Final

from heartsong.errors import InputDataError
from heartsong.private_file import create_private

__all__ = ["DEFAULT_MAX_MESSAGES", "OUTBOX_FILE", "Spool"]

log = logging.getLogger(__name__)

#: 24 h of state documents at the default 5 s interval.
DEFAULT_MAX_MESSAGES: Final = 24 * 3600 // 5
#: The outbox's file name in ``device.state_dir``.
OUTBOX_FILE: Final = "mqtt-outbox.sqlite3"
#: Log a drop the first time and then every this many dropped documents.
DROP_LOG_EVERY: Final = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Spool:
    """A bounded on-disk FIFO of message payloads.

    Parameters
    ----------
    path:
        The SQLite file (created with its directory if missing), or None for a queue in
        memory (lost on restart).
    max_messages:
        Most documents kept; older ones are dropped past this (>= 1).
    """

    def __init__(self, path: Path | None, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        if max_messages < 1:
            raise InputDataError("spool_max_messages", "an integer of at least 1", max_messages)
        self.max_messages = int(max_messages)
        self.path = path
        self._db = self._open(path)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self.dropped = int(row[0]) if row else 0
        if self._count:
            log.info("MQTT outbox holds %d unsent state documents", self._count)

    # -- opening ----------------------------------------------------------------------
    @staticmethod
    def _connect(target: str) -> sqlite3.Connection:
        if target != ":memory:":
            # Owner-only whatever the umask: the queued documents are health data.
            create_private(Path(target))
        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        if target != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _open(self, path: Path | None) -> sqlite3.Connection:
        if path is None:
            return self._connect(":memory:")
        try:
            return self._connect(str(path))
        except sqlite3.DatabaseError as exc:
            if path.exists() and "not a database" in str(exc):
                aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
                path.rename(aside)
                log.error("MQTT outbox %s was not a database (%s); moved to %s, starting a "
                          "new one", path, exc, aside)
                return self._connect(str(path))
            log.warning("MQTT outbox %s cannot be opened (%s); queueing in memory", path, exc)
        except OSError as exc:
            log.warning("MQTT outbox %s cannot be created (%s); queueing in memory", path, exc)
        self.path = None
        return self._connect(":memory:")

    # -- queue ------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    def append(self, payload: bytes) -> int:
        """Queue one payload at the end; returns its row id. Drops the oldest past the bound."""
        cur = self._db.execute("INSERT INTO outbox (payload) VALUES (?)", (payload,))
        self._count += 1
        if self._count > self.max_messages:
            self._drop_oldest(self._count - self.max_messages)
        return int(cur.lastrowid or 0)

    def after(self, row_id: int | None, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` (row id, payload) pairs after ``row_id`` (None: from the start)."""
        cur = self._db.execute(
            "SELECT id, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (-(2**62) if row_id is None else row_id, limit),
        )
        return [(int(i), bytes(p)) for i, p in cur.fetchall()]

    def delete(self, row_id: int) -> None:
        """Forget one row (the broker acknowledged it); a row already dropped is ignored."""
        cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
        self._count -= cur.rowcount

    def _drop_oldest(self, n: int) -> None:
        with self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (n,)
            )
            before = self.dropped
            self.dropped += cur.rowcount
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (self.dropped,),
            )
        self._count -= cur.rowcount
        if before == 0 or before // DROP_LOG_EVERY != self.dropped // DROP_LOG_EVERY:
            log.warning(
                "MQTT outbox full (%d documents): dropped the oldest; %d dropped so far",
                self.max_messages, self.dropped,
                extra={"fields": {"mqtt_outbox_dropped": self.dropped}},
            )

    def close(self) -> None:
        """Close the database (rows stay on disk for the next start). Safe twice."""
        self._db.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "memory"
        return (f"Spool({where}, {self._count}/{self.max_messages} queued, "
                f"{self.dropped} dropped)")
