"""Batched writes to the session database on a thread of their own, off the event loop.

The appliance's loop only puts small tuples on a bounded queue (:meth:`StoreWriter.put`
never blocks and never touches the disk). The writer thread collects them and commits
them as one transaction every ``flush_s`` seconds (default 1 s), so a ``kill -9`` or a
power cut loses at most the last ``flush_s`` of data and one fsync a second is all the
disk sees (see :mod:`heartsong.store.db` for why that is durable). The writer also
applies the retention period: at start and then once a day.

If the disk cannot keep up the queue fills; further items are dropped and counted
(``dropped``) with a warning, rather than blocking the loop or growing without bound.
A failed commit (disk full, I/O error) is logged and retried with the next batch; the
batch stays queued on the thread until it commits or the queue bound is reached. A batch
the schema refuses (a constraint) is written row by row instead, so one bad row is
dropped (counted in ``rejected``) and cannot block the rows after it.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from heartsong.errors import InputDataError
from heartsong.store.db import OPS, Store
from heartsong.store.retention import DAY_S, apply_retention

__all__ = ["DEFAULT_FLUSH_S", "DEFAULT_QUEUE_MAX", "StoreWriter"]

log = logging.getLogger(__name__)

#: Seconds between commits: the most data a crash can lose.
DEFAULT_FLUSH_S: Final = 1.0
#: Items the queue holds (~30 min of 5-s updates with beats, events and margin).
DEFAULT_QUEUE_MAX: Final = 50_000

Op = tuple[str, tuple[object, ...]]


class StoreWriter:
    """Owns the session database on a writer thread; other threads only enqueue.

    Parameters
    ----------
    path:
        The SQLite file (see :func:`heartsong.store.db.db_path`).
    flush_s:
        Commit interval in seconds, > 0 and <= 1 (the power-loss guarantee).
    queue_max:
        Most items waiting; more are dropped and counted.
    retention_days:
        Sessions older than this many days are deleted at start and daily; 0 keeps
        everything.
    wall:
        Unix-time source for the retention cut (injected for simulated time).

    Raises
    ------
    InputDataError
        For a bad parameter, or when the database cannot be opened (see :class:`Store`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        flush_s: float = DEFAULT_FLUSH_S,
        queue_max: int = DEFAULT_QUEUE_MAX,
        retention_days: float = 90.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 < flush_s <= 1.0:
            raise InputDataError("store.flush_s", "seconds in (0, 1]", flush_s)
        if queue_max < 1:
            raise InputDataError("store.queue_max", "an integer >= 1", queue_max)
        if not retention_days >= 0.0:
            raise InputDataError("store.retention_days", "days >= 0 (0 = keep)", retention_days)
        self.path = Path(path)
        self.flush_s = float(flush_s)
        self.retention_days = float(retention_days)
        self._wall = wall
        # Opened here so a bad file fails at start-up, in the caller's thread; then the
        # connection belongs to the writer thread alone.
        store = Store(self.path)
        store.close_dangling()
        self._next_session = store.next_session_id()
        self._store = store
        self._queue: queue.Queue[Op | None] = queue.Queue(maxsize=int(queue_max))
        self.dropped = 0
        self.committed = 0
        self.failed_commits = 0
        self.rejected = 0
        self._next_retention = 0.0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def new_session_id(self) -> int:
        """Reserve the id of a new session (call from the one producer thread)."""
        sid = self._next_session
        self._next_session += 1
        return sid

    def put(self, op: str, params: tuple[object, ...]) -> bool:
        """Queue one write; never blocks. Returns False when it was dropped (queue full
        or writer closed)."""
        if op not in OPS:
            raise InputDataError("op", f"one of {', '.join(OPS)}", op)
        if self._stopped:
            return False
        try:
            self._queue.put_nowait((op, params))
        except queue.Full:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("session store cannot keep up: %d write(s) dropped", self.dropped)
            return False
        return True

    @property
    def pending(self) -> int:
        """Items queued and not yet taken by the writer thread."""
        return self._queue.qsize()

    def close(self, timeout_s: float = 10.0) -> None:
        """Commit everything queued, stop the thread and close the database (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        # The sentinel may have to wait for room; the thread drains meanwhile.
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("session store writer did not finish within %.0f s", timeout_s)

    # -- the thread -------------------------------------------------------------------
    def _run(self) -> None:
        batch: list[Op] = []
        self._maybe_retain()
        deadline = time.monotonic() + self.flush_s
        while True:
            timeout = deadline - time.monotonic()
            if timeout > 0.0:
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    pass
                else:
                    if item is None:  # close(): commit what is left and stop
                        break
                    batch.append(item)
                    continue
            deadline = time.monotonic() + self.flush_s
            batch = self._commit(batch)
            self._maybe_retain()
        self._commit(batch)
        self._store.close()

    def _commit(self, batch: list[Op]) -> list[Op]:
        """Commit ``batch``; returns what is left (empty unless the commit failed)."""
        if not batch:
            return batch
        try:
            self._store.write_batch(batch)
        except sqlite3.IntegrityError:
            # A row the schema refuses never commits: retrying the batch as a whole would
            # block every later row. Write it row by row and drop only what is refused.
            return self._commit_each(batch)
        except Exception:
            self.failed_commits += 1
            if self.failed_commits % 60 == 1:
                log.exception("session store commit of %d row(s) failed; retrying", len(batch))
            return batch[-self._queue.maxsize:]
        self.committed += len(batch)
        return []

    def _commit_each(self, batch: list[Op]) -> list[Op]:
        """Commit ``batch`` one row at a time, dropping (and counting) refused rows;
        returns what is left when a row fails for another reason (retried later)."""
        for k, op in enumerate(batch):
            try:
                self._store.write_batch([op])
            except sqlite3.IntegrityError as exc:
                self.rejected += 1
                log.error("session store refused a %s row (%s); dropped it, %d so far",
                          op[0], exc, self.rejected)
            except Exception:
                self.failed_commits += 1
                return batch[k:]
            else:
                self.committed += 1
        return []

    def _maybe_retain(self) -> None:
        now = self._wall()
        if self.retention_days <= 0.0 or now < self._next_retention:
            return
        self._next_retention = now + DAY_S
        try:
            apply_retention(self._store, self.retention_days, now)
        except Exception:
            log.exception("applying the retention period failed; retrying tomorrow")

    def __repr__(self) -> str:
        return (f"StoreWriter({str(self.path)!r}, flush_s={self.flush_s:g}, "
                f"pending={self.pending}, dropped={self.dropped})")
