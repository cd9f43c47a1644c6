"""At-least-once delivery of state documents across broker outages, the late ones apart.

One sender thread owns the :class:`~heartsong.mqtt.spool.Spool` and all delivery state;
the appliance's loop and paho's network thread only post events to it (``put``,
``connected``, ``disconnected``, ``acked``), so no lock is ever held across a paho call
and the order of events is the order of handling.

Delivery rules:

* Connected: a document is published at once on the *live* topic (QoS 1) and kept in
  memory until its PUBACK, also while a backlog is still being sent.
* Disconnected: it is appended to the spool, which is drained oldest first on the *late*
  topic, at most ``window`` rows in flight; a row is deleted only when its PUBACK arrives.
  A late document never reaches the live topic: Home Assistant reads that one, stamps
  every value with its arrival time and would record hours-old heart rates and stress
  states as "now" (and fire automations on them).
* When the connection drops, the documents published live and not yet acknowledged go
  to the *back* of the spool: every row already there is older (it waited since an
  earlier outage), and every document put from now on is newer. On reconnect the link
  has already taken back paho's unacknowledged messages (``Client.drop_out_messages``),
  so nothing is resent behind the spool's back, and the spool is sent again from its
  oldest row. Late documents therefore reach the broker in order; a document whose
  PUBACK was lost may arrive twice, on either topic (MQTT QoS 1 is at-least-once).
* On shutdown, documents still unacknowledged are written to the spool for the next
  start.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from heartsong.mqtt.spool import Spool

__all__ = ["DEFAULT_WINDOW", "Outbox"]

log = logging.getLogger(__name__)

#: Spool rows in flight (published, not yet acknowledged) at once.
DEFAULT_WINDOW: Final = 10

Publish = Callable[[bytes], int]


@dataclass(slots=True)
class _InFlight:
    row_id: int | None  # None: published directly, only in memory
    payload: bytes


_Event = tuple[str, object]


class Outbox:
    """The state documents' way to the broker.

    Parameters
    ----------
    spool:
        The on-disk queue; owned (and closed) by this outbox from :meth:`start` on.
    publish:
        Publishes one payload on the live state topic with QoS 1 and returns its message
        id (paho's ``publish(...).mid``). Called on the sender thread only.
    window:
        Spool rows in flight at once (>= 1).
    publish_late:
        The same for a document that waited in the spool (its topic for late documents);
        None: ``publish``.
    """

    def __init__(self, spool: Spool, publish: Publish, window: int = DEFAULT_WINDOW,
                 publish_late: Publish | None = None) -> None:
        self.spool = spool
        self._publish = publish
        self._publish_late = publish_late or publish
        self._window = max(1, int(window))
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._inflight: dict[int, _InFlight] = {}
        self._rows_inflight = 0
        self._cursor: int | None = None
        self.acked_count = 0

    # -- events (any thread) ------------------------------------------------------------
    def put(self, payload: bytes) -> None:
        """Send one state document (in order, at least once)."""
        self._events.put(("put", payload))

    def connected(self) -> None:
        """The broker session is up; paho's unacknowledged messages were taken back."""
        self._events.put(("connected", None))

    def disconnected(self) -> None:
        """The broker session is down."""
        self._events.put(("disconnected", None))

    def acked(self, mid: int) -> None:
        """The broker acknowledged message ``mid`` (paho's ``on_publish``)."""
        self._events.put(("acked", mid))

    def sync(self, timeout_s: float = 5.0) -> bool:
        """Wait until every event posted before this call has been handled (for tests
        and shutdown); False if the sender thread did not get there in ``timeout_s``."""
        done = threading.Event()
        self._events.put(("sync", done))
        return done.wait(timeout_s)

    @property
    def queued(self) -> int:
        """Documents waiting in the spool (including those in flight from it)."""
        return len(self.spool)

    @property
    def dropped(self) -> int:
        """Documents dropped because the spool was full (since the spool was created)."""
        return self.spool.dropped

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the sender thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mqtt-outbox", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Wait up to ``timeout_s`` for acknowledgements, park the rest on disk, close."""
        thread, self._thread = self._thread, None
        if thread is None:
            self.spool.close()  # never started: nothing in flight
            return
        self._events.put(("stop", time.monotonic() + timeout_s))
        thread.join(timeout_s + 5.0)
        if thread.is_alive():
            log.error("MQTT outbox did not stop within %.0f s", timeout_s + 5.0)

    # -- the sender thread ----------------------------------------------------------------
    def _run(self) -> None:
        deadline: float | None = None
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    kind, value = self._events.get(timeout=timeout)
                except queue.Empty:
                    break
                if kind == "stop":
                    deadline = float(value)  # type: ignore[arg-type]
                else:
                    self._handle(kind, value)
                if deadline is not None and not (self._connected and self._inflight):
                    break
        except Exception:  # the outbox must not die silently: say so, keep rows on disk
            log.exception("MQTT outbox failed; unsent documents stay in the spool")
        finally:
            self._park_in_memory()
            self.spool.close()

    def _handle(self, kind: str, value: object) -> None:
        if kind == "put":
            assert isinstance(value, bytes)
            self._on_put(value)
        elif kind == "acked":
            assert isinstance(value, int)
            self._on_acked(value)
        elif kind == "connected":
            self._park_in_memory()
            self._cursor = None
            self._connected = True
            self._pump()
        elif kind == "disconnected":
            self._connected = False
            self._park_in_memory()
        elif kind == "sync":
            assert isinstance(value, threading.Event)
            value.set()

    def _on_put(self, payload: bytes) -> None:
        if self._connected:
            try:
                mid = self._publish(payload)
            except Exception:
                log.exception("publishing a state document failed; keeping it in the spool")
            else:
                self._inflight[mid] = _InFlight(None, payload)
                return
        self.spool.append(payload)
        self._pump()

    def _on_acked(self, mid: int) -> None:
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return  # not a state document (discovery, errors), or from an older session
        self.acked_count += 1
        if entry.row_id is not None:
            self._rows_inflight -= 1
            self.spool.delete(entry.row_id)
            self._pump()

    def _pump(self) -> None:
        """Publish spool rows, oldest first, while connected and the window has room."""
        while self._connected and self._rows_inflight < self._window:
            rows = self.spool.after(self._cursor, self._window - self._rows_inflight)
            if not rows:
                return
            for row_id, payload in rows:
                try:
                    mid = self._publish_late(payload)
                except Exception:
                    log.exception("publishing from the MQTT outbox failed; retrying on reconnect")
                    self._connected = False
                    return
                self._inflight[mid] = _InFlight(row_id, payload)
                self._rows_inflight += 1
                self._cursor = row_id

    def _park_in_memory(self) -> None:
        """Forget what is in flight; documents that exist only in memory (published live)
        go to the back of the spool, in the order they were published."""
        direct = [e.payload for e in self._inflight.values() if e.row_id is None]
        self._inflight.clear()
        self._rows_inflight = 0
        for payload in direct:
            self.spool.append(payload)

    def __repr__(self) -> str:
        return (f"Outbox({len(self._inflight)} in flight, {self.spool!r}, "
                f"{'connected' if self._connected else 'disconnected'})")
