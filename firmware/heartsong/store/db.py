"""The session database: one SQLite file in the state directory, owner-only, migrated.

Durability
----------
The file runs in WAL mode with ``synchronous=FULL``. In WAL mode a transaction is
committed once its frames are appended to the ``-wal`` file; a killed process (``kill -9``)
loses nothing committed, whatever the ``synchronous`` level, because the frames are in the
operating system's cache. A power cut is different: with ``NORMAL`` the WAL is only
fsynced at checkpoints, so a cut may lose every transaction since the last one (up to a
checkpoint's worth, ~1000 pages: minutes of data). ``FULL`` fsyncs the WAL at each commit,
so a power cut loses at most the uncommitted batch. The writer
(:mod:`heartsong.store.writer`) commits one batch per second, so that is one fsync a
second, cheap even on an SD card. Either way SQLite's journal guarantees that a cut never
corrupts the file (Hipp et al., "Atomic Commit In SQLite", sqlite.org/atomiccommit.html;
"Write-Ahead Logging", sqlite.org/wal.html).

Privacy
-------
The directory is created 0700 and the database 0600 (SQLite gives its ``-wal`` and
``-shm`` files the database's mode). ``secure_delete`` overwrites deleted rows, and a
deletion ends with ``VACUUM`` so deleted health data does not linger in free pages or the
WAL.

One :class:`Store` is one connection, used by one thread at a time.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from heartsong.errors import InputDataError
from heartsong.events import METRIC_NAMES
from heartsong.private_file import SQLITE_HEADER, create_private
from heartsong.store.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "DB_NAME",
    "METRIC_COLUMNS",
    "BaselineRow",
    "SessionRow",
    "Store",
    "db_path",
]

log = logging.getLogger(__name__)

#: The database's file name inside ``device.state_dir``.
DB_NAME: Final = "sessions.sqlite3"
#: The columns of one metrics row as the writer inserts it, in order.
METRIC_COLUMNS: Final = (
    "session_id", "t_s", "wall_s", *METRIC_NAMES, "n_beats", "pacer_bpm", "soundscape",
    "reasons",
)
#: Milliseconds SQLite waits for a lock held by another connection (a CLI reading while
#: the device writes) before giving up.
BUSY_TIMEOUT_MS: Final = 5000


def db_path(state_dir: str | Path) -> Path:
    """The session database inside a state directory."""
    return Path(state_dir) / DB_NAME


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session as stored (times in Unix seconds; ``end_wall_s`` None while open)."""

    id: int
    start_wall_s: float
    end_wall_s: float | None
    mode: str
    soundscapes: list[str] = field(default_factory=list)
    outcome: str | None = None
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Length of the session in seconds (None while it is open)."""
        return None if self.end_wall_s is None else self.end_wall_s - self.start_wall_s


@dataclass(frozen=True, slots=True)
class BaselineRow:
    """One night's personal baseline.

    ``night`` is the local date the session started on (``YYYY-MM-DD``), ``resting_hr_bpm``
    in beats per minute, ``rmssd_ms`` in ms, ``resonance_bpm`` in breaths per minute,
    ``time_to_calm_s`` in seconds (None: never calm, or not measured).
    """

    session_id: int
    night: str
    wall_s: float
    resting_hr_bpm: float | None
    rmssd_ms: float | None
    resonance_bpm: float | None
    time_to_calm_s: float | None


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _check_session_database(path: Path) -> None:
    """Refuse ``path`` unless it is a heartsong session database, without changing it
    (read-only: no mode change, no journal-mode change, no migration)."""
    expected = f"a heartsong session database at {path}"
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise InputDataError("store", expected, exc.strerror) from exc
    if head != SQLITE_HEADER:
        raise InputDataError("store", expected, "not an SQLite database")
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(probe.execute("PRAGMA user_version").fetchone()[0])
            tables = {r[0] for r in probe.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        raise InputDataError("store", expected, str(exc)) from exc
    if version < 1 or "sessions" not in tables:
        raise InputDataError("store", expected, "another program's SQLite database")


class Store:
    """The session database at ``path``, migrated to :data:`SCHEMA_VERSION` on open.

    Parameters
    ----------
    path:
        The SQLite file; created (with its directory) owner-only if missing.
    migrate:
        Bring an older schema up to date (default). False opens read-as-is (for tests
        that build an old schema).
    existing:
        The file must already be a heartsong session database (``--db`` of ``export``,
        ``report``, ``data``): anything else is refused before it is touched (the store
        used to tighten any file's mode to 0600, ``/etc/passwd`` included, and to turn a
        foreign SQLite file or an empty one into a session database).

    Raises
    ------
    InputDataError
        ``field="store"`` when the file is not a heartsong session database, or was
        written by a newer heartsong (its schema version is higher than this code's).
    """

    def __init__(self, path: str | Path, *, migrate: bool = True,
                 existing: bool = False) -> None:
        self.path = Path(path)
        if existing:
            _check_session_database(self.path)
        try:
            if not existing:
                create_private(self.path)
            self.db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000.0,
            )
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA secure_delete=ON")
            # 512 KiB of page cache instead of 2 MiB: writes are small appends, and a Pi
            # Zero's memory is better kept for the audio and DSP.
            self.db.execute("PRAGMA cache_size=-512")
            version = self.version
        except (sqlite3.DatabaseError, OSError) as exc:
            raise InputDataError("store", f"a heartsong session database at {self.path}",
                                 str(exc)) from exc
        if version > SCHEMA_VERSION:
            self.db.close()
            raise InputDataError(
                "store", f"a database of schema version <= {SCHEMA_VERSION} (this heartsong "
                f"is older than the one that wrote {self.path})", version)
        if migrate:
            self.migrate()

    # -- schema -----------------------------------------------------------------------
    @property
    def version(self) -> int:
        """The schema version of the file (0 for a new, empty file)."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, to_version: int = SCHEMA_VERSION) -> int:
        """Apply the missing migrations up to ``to_version``; returns how many ran."""
        start = self.version
        for k in range(start, to_version):
            with self.transaction():
                for statement in _statements(MIGRATIONS[k]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {k + 1}")
            log.info("session database %s migrated to schema version %d", self.path, k + 1)
        return max(0, to_version - start)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE ... COMMIT`` (rolled back on error)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")  # inside: a failed COMMIT must not leave it open
        except BaseException:
            # SQLite rolls back by itself on some errors (SQLITE_FULL: "database or disk
            # is full"); a second ROLLBACK would raise and hide the real cause.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def integrity(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` or the first problem found."""
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        self.db.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- sessions ---------------------------------------------------------------------
    def next_session_id(self) -> int:
        """The id the next session gets (ids are never reused while rows remain)."""
        row = self.db.execute("SELECT MAX(id) FROM sessions").fetchone()
        return int(row[0] or 0) + 1

    #: When an open session last stored an update (its start without one), Unix s.
    _LAST_UPDATE_SQL: Final = (
        "COALESCE((SELECT MAX(wall_s) FROM metrics WHERE metrics.session_id = sessions.id),"
        " sessions.start_wall_s)")

    def close_dangling(self) -> int:
        """End sessions a crash or power cut left open: at their last metric, outcome
        ``"interrupted"``. Returns how many were closed."""
        with self.transaction():
            cur = self.db.execute(
                "UPDATE sessions SET outcome = 'interrupted', end_wall_s = "
                f"{self._LAST_UPDATE_SQL} WHERE end_wall_s IS NULL"
            )
        if cur.rowcount:
            log.warning("%d session(s) were cut short (power loss or crash); closed at "
                        "their last stored update", cur.rowcount)
        return int(cur.rowcount)

    def recording(self, now_wall_s: float, within_s: float = 600.0) -> int | None:
        """The id of a session being recorded now: open, with data from the last
        ``within_s`` seconds (an open session whose data stopped long ago was cut short by
        a crash, not running). None when there is none."""
        row = self.db.execute(
            "SELECT id FROM sessions WHERE end_wall_s IS NULL AND "
            f"{self._LAST_UPDATE_SQL} > ? ORDER BY id DESC LIMIT 1", (now_wall_s - within_s,)
        ).fetchone()
        return None if row is None else int(row[0])

    def sessions(
        self, *, session_id: int | None = None, since_wall_s: float | None = None,
        last: int | None = None,
    ) -> list[SessionRow]:
        """Sessions, oldest first: one by id, those started at or after ``since_wall_s``,
        and/or the ``last`` most recent."""
        where: list[str] = []
        params: list[float] = []
        if session_id is not None:
            where.append("id = ?")
            params.append(session_id)
        if since_wall_s is not None:
            where.append("start_wall_s >= ?")
            params.append(since_wall_s)
        sql = "SELECT id, start_wall_s, end_wall_s, mode, soundscapes, outcome, summary " \
              "FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_wall_s DESC, id DESC"
        if last is not None:
            sql += f" LIMIT {int(last)}"
        rows = [
            SessionRow(int(r[0]), float(r[1]), None if r[2] is None else float(r[2]), str(r[3]),
                       list(json.loads(r[4])), r[5], dict(json.loads(r[6])))
            for r in self.db.execute(sql, params)
        ]
        return rows[::-1]

    # -- series -----------------------------------------------------------------------
    def metrics(self, session_id: int) -> list[dict[str, object]]:
        """The session's metric updates in order, as dicts keyed by column name
        (``reasons`` decoded)."""
        cols = ("seq", *METRIC_COLUMNS)
        out = []
        for r in self.db.execute(
            f"SELECT {', '.join(cols)} FROM metrics WHERE session_id = ? ORDER BY seq",
            (session_id,),
        ):
            row = dict(zip(cols, r, strict=True))
            row["reasons"] = json.loads(str(row["reasons"]))
            out.append(row)
        return out

    def events(self, session_id: int) -> list[dict[str, object]]:
        """The session's events in order: ``seq, t_s, wall_s, kind, message, data``."""
        cols = ("seq", "t_s", "wall_s", "kind", "message", "data")
        out = []
        for r in self.db.execute(
            f"SELECT {', '.join(cols)} FROM events WHERE session_id = ? ORDER BY seq",
            (session_id,),
        ):
            row = dict(zip(cols, r, strict=True))
            row["data"] = json.loads(str(row["data"]))
            out.append(row)
        return out

    def beats(self, session_id: int) -> list[tuple[float, float | None, str]]:
        """The session's beats in order: ``(t_s, rr_ms or None after a gap, source)``."""
        return [
            (float(r[0]), None if r[1] is None else float(r[1]), str(r[2]))
            for r in self.db.execute(
                "SELECT t_s, rr_ms, source FROM beats WHERE session_id = ? ORDER BY seq",
                (session_id,),
            )
        ]

    def baseline(self, last_nights: int | None = None) -> list[BaselineRow]:
        """Nightly baselines, oldest first (the ``last_nights`` most recent if given)."""
        sql = ("SELECT session_id, night, wall_s, resting_hr_bpm, rmssd_ms, resonance_bpm, "
               "time_to_calm_s FROM baseline ORDER BY wall_s DESC")
        if last_nights is not None:
            sql += f" LIMIT {int(last_nights)}"
        rows = [BaselineRow(*r) for r in self.db.execute(sql)]
        return rows[::-1]

    def counts(self) -> dict[str, int]:
        """Rows per table (for logs and tests)."""
        return {
            t: int(self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
            for t in ("sessions", "metrics", "events", "beats", "baseline")
        }

    # -- writes (the writer thread's) -------------------------------------------------
    def write_batch(self, ops: Sequence[tuple[str, tuple[object, ...]]]) -> None:
        """Apply a batch of write operations in one transaction (see :data:`OPS`)."""
        with self.transaction():
            for op, params in ops:
                self.db.execute(OPS[op], tuple(_finite(p) for p in params))

    # -- deletion ---------------------------------------------------------------------
    def delete_before(self, wall_s: float, *, ended_only: bool = False) -> int:
        """Delete every session that started before ``wall_s`` (Unix s) with all its data;
        returns the number of sessions deleted.

        ``ended_only``: delete only sessions that *ended* before ``wall_s`` and never an
        open one (the retention period's rule, safe when the clock jumped forward)."""
        where = ("end_wall_s IS NOT NULL AND end_wall_s < ?" if ended_only
                 else "start_wall_s < ?")
        with self.transaction():
            cur = self.db.execute(f"DELETE FROM sessions WHERE {where}", (wall_s,))
            n = int(cur.rowcount)
            # Rows a crash left without a session, older than the cut.
            self.db.execute("DELETE FROM events WHERE session_id IS NULL AND wall_s < ?",
                            (wall_s,))
        self._scrub()
        return n

    def delete_all(self) -> int:
        """Delete every session, metric, beat, event and baseline; returns sessions deleted."""
        with self.transaction():
            n = int(self.db.execute("DELETE FROM sessions").rowcount)
            for table in ("metrics", "beats", "events", "baseline"):
                self.db.execute(f"DELETE FROM {table}")
        self._scrub()
        return n

    def _scrub(self) -> None:
        """Rewrite the file without free pages and empty the WAL (deleted data is gone).

        Raises
        ------
        InputDataError
            Another process holds the database, so the write-ahead log (which still holds
            the deleted rows) could not be emptied: the deletion stands, the scrub does not.
        """
        self.db.execute("VACUUM")
        busy = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy is not None and int(busy[0]):
            raise InputDataError(
                str(self.path), "no other process reading it: the rows are deleted, but "
                "old copies stay in its write-ahead log until that process closes it "
                "(stop the device or the other command, then delete again)")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


#: The write operations the writer understands: name -> parameterised SQL.
OPS: Final = {
    "metrics": f"INSERT INTO metrics ({', '.join(METRIC_COLUMNS)}) "
               f"VALUES ({', '.join('?' * len(METRIC_COLUMNS))})",
    "event": "INSERT INTO events (session_id, t_s, wall_s, kind, message, data) "
             "VALUES (?, ?, ?, ?, ?, ?)",
    "beat": "INSERT INTO beats (session_id, t_s, rr_ms, source) VALUES (?, ?, ?, ?)",
    "session_start": "INSERT INTO sessions (id, start_wall_s, mode, soundscapes) "
                     "VALUES (?, ?, ?, ?)",
    "session_soundscapes": "UPDATE sessions SET soundscapes = ? WHERE id = ?",
    "session_end": "UPDATE sessions SET end_wall_s = ?, outcome = ?, summary = ? WHERE id = ?",
    "baseline": "INSERT OR REPLACE INTO baseline (session_id, night, wall_s, resting_hr_bpm, "
                "rmssd_ms, resonance_bpm, time_to_calm_s) VALUES (?, ?, ?, ?, ?, ?, ?)",
}
