"""Ordered, at-least-once delivery of state documents over a scripted broker connection.

The "broker" here is a fake ``publish`` function: it hands out message ids and the test
decides which messages are acknowledged, lost with the connection, or still in flight.
"""

from __future__ import annotations

from pathlib import Path

from heartsong.mqtt.outbox import Outbox
from heartsong.mqtt.spool import Spool


class FakeBroker:
    """Records what the outbox publishes; the test acknowledges or loses it."""

    def __init__(self) -> None:
        self.next_mid = 1
        self.pending: dict[int, bytes] = {}
        self.delivered: list[bytes] = []
        self.late: list[bytes] = []
        self.outbox: Outbox | None = None

    def publish(self, payload: bytes) -> int:
        mid = self.next_mid
        self.next_mid += 1
        self.pending[mid] = payload
        return mid

    def publish_late(self, payload: bytes) -> int:
        """The topic for documents that waited in the spool."""
        self.late.append(payload)
        return self.publish(payload)

    def ack_all(self) -> int:
        """Deliver and acknowledge everything in flight; returns how many."""
        assert self.outbox is not None
        acked = list(self.pending.items())
        self.pending.clear()
        for mid, payload in acked:
            self.delivered.append(payload)
            self.outbox.acked(mid)
        assert self.outbox.sync()
        return len(acked)

    def lose_connection(self) -> None:
        """The connection drops: what was in flight never arrived."""
        assert self.outbox is not None
        self.pending.clear()
        self.outbox.disconnected()
        assert self.outbox.sync()


def _make(tmp_path: Path, window: int = 4, max_messages: int = 1000) -> tuple[Outbox, FakeBroker]:
    broker = FakeBroker()
    outbox = Outbox(Spool(tmp_path / "outbox.sqlite3", max_messages), broker.publish, window,
                    publish_late=broker.publish_late)
    broker.outbox = outbox
    outbox.start()
    return outbox, broker


def _docs(lo: int, hi: int) -> list[bytes]:
    return [f"doc{i:04d}".encode() for i in range(lo, hi)]


def _put(outbox: Outbox, docs: list[bytes]) -> None:
    for d in docs:
        outbox.put(d)
    assert outbox.sync()


def _connect(outbox: Outbox) -> None:
    outbox.connected()
    assert outbox.sync()


def _drain(broker: FakeBroker) -> None:
    while broker.ack_all():
        pass


def test_connected_documents_go_straight_out_without_touching_the_spool(tmp_path: Path) -> None:
    outbox, broker = _make(tmp_path)
    _connect(outbox)
    _put(outbox, _docs(0, 5))
    assert len(broker.pending) == 5 and outbox.queued == 0
    broker.ack_all()
    assert broker.delivered == _docs(0, 5)
    assert outbox.acked_count == 5
    outbox.stop()


def test_outage_is_spooled_and_sent_in_order_within_the_window(tmp_path: Path) -> None:
    outbox, broker = _make(tmp_path, window=4)
    _connect(outbox)
    _put(outbox, _docs(0, 3))           # in flight when the connection drops
    broker.lose_connection()
    _put(outbox, _docs(3, 20))          # broker away: spooled
    assert broker.pending == {} and outbox.queued == 20  # 0..2 went back to the spool
    _connect(outbox)
    # The three lost in-memory documents went to the spool when the connection dropped.
    assert outbox.queued == 20
    assert list(broker.pending.values()) == _docs(0, 4)  # window of 4, oldest first
    _put(outbox, _docs(20, 25))         # new documents go out live at once ...
    _drain(broker)
    assert sorted(broker.delivered) == _docs(0, 25)
    # ... and only what waited goes to the late topic, in order (Home Assistant reads the
    # live one and would take hours-old values as the present).
    assert broker.late == _docs(0, 20)
    assert [d for d in broker.delivered if d not in broker.late] == _docs(20, 25)
    assert outbox.queued == 0
    outbox.stop()


def test_connection_lost_while_draining_resends_unacknowledged_rows(tmp_path: Path) -> None:
    outbox, broker = _make(tmp_path, window=3)
    _put(outbox, _docs(0, 10))          # never connected yet: all spooled
    _connect(outbox)
    broker.ack_all()                    # 0..2 delivered, 3..5 now in flight
    broker.lose_connection()            # 3..5 lost
    _connect(outbox)
    _drain(broker)
    assert broker.delivered == _docs(0, 10)
    outbox.stop()


def test_a_lost_acknowledgement_gives_a_duplicate_never_a_gap(tmp_path: Path) -> None:
    outbox, broker = _make(tmp_path, window=2)
    _put(outbox, _docs(0, 4))
    _connect(outbox)
    # The broker got doc0 and doc1, but the PUBACKs were lost with the connection.
    broker.delivered.extend(broker.pending.values())
    broker.lose_connection()
    _connect(outbox)
    _drain(broker)
    first_seen = list(dict.fromkeys(broker.delivered))
    assert first_seen == _docs(0, 4)
    assert len(broker.delivered) == 6


def test_unacknowledged_documents_are_parked_on_disk_at_shutdown(tmp_path: Path) -> None:
    outbox, broker = _make(tmp_path)
    _connect(outbox)
    _put(outbox, _docs(0, 3))           # sent directly, never acknowledged
    broker.lose_connection()
    _put(outbox, _docs(3, 5))
    outbox.stop(timeout_s=0.1)
    spool = Spool(tmp_path / "outbox.sqlite3")
    assert [p for _, p in spool.after(None, 100)] == _docs(0, 5)
    spool.close()


def test_a_restarted_outbox_sends_the_previous_backlog_first(tmp_path: Path) -> None:
    outbox, _ = _make(tmp_path)
    _put(outbox, _docs(0, 6))
    outbox.stop(timeout_s=0.1)
    again, broker2 = _make(tmp_path)
    _put(again, _docs(6, 8))
    _connect(again)
    _drain(broker2)
    assert broker2.delivered == _docs(0, 8)
    again.stop()


def test_past_the_bound_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    outbox, broker = _make(tmp_path, max_messages=10)
    _put(outbox, _docs(0, 25))
    assert outbox.queued == 10 and outbox.dropped == 15
    _connect(outbox)
    _drain(broker)
    assert broker.delivered == _docs(15, 25)
    outbox.stop()


def test_a_failing_publish_keeps_the_document(tmp_path: Path) -> None:
    calls: list[bytes] = []

    def broken(payload: bytes) -> int:
        calls.append(payload)
        raise RuntimeError("socket gone")

    outbox = Outbox(Spool(tmp_path / "o.sqlite3"), broken)
    outbox.start()
    _connect(outbox)
    _put(outbox, [b"x", b"y"])
    assert calls and outbox.queued == 2
    outbox.stop(timeout_s=0.1)


def test_live_documents_lost_while_a_backlog_drains_stay_in_order(tmp_path: Path) -> None:
    """Documents go out live while an old backlog is still being sent; when the
    connection drops again, the live ones not yet acknowledged are newer than that
    backlog and older than what comes next, and the late topic keeps that order."""
    outbox, broker = _make(tmp_path, window=2)
    _put(outbox, _docs(0, 6))           # never connected: all spooled
    _connect(outbox)                    # 0, 1 in flight (late)
    _put(outbox, _docs(6, 9))           # live, in flight
    broker.lose_connection()
    _put(outbox, _docs(9, 12))          # spooled again
    _connect(outbox)
    _drain(broker)
    assert broker.late == _docs(0, 2) + _docs(0, 12)  # 0, 1 were lost and sent again
    assert sorted(set(broker.delivered)) == _docs(0, 12)
    outbox.stop()
