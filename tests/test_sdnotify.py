"""sd_notify over a fake notify socket: READY, STATUS, periodic WATCHDOG from the loop, and
no WATCHDOG while the loop hangs."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from heartsong.sdnotify import SdNotifier, watchdog_interval_s, watchdog_pings

WATCHDOG_USEC = 100_000  # WatchdogSec=0.1 -> a ping every 50 ms


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET, as systemd binds it."""

    def __init__(self, address: str, bind_to: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(bind_to)
        self.sock.setblocking(False)

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return out


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[FakeSystemd]:
    path = str(tmp_path / "notify")
    fake = FakeSystemd(path, path)
    yield fake
    fake.sock.close()


def test_messages_reach_a_path_socket(systemd: FakeSystemd) -> None:
    n = SdNotifier.from_env({"NOTIFY_SOCKET": systemd.address})
    assert n.enabled
    assert n.ready("listening")
    assert n.status("HR 61 bpm\nline two")
    assert n.stopping()
    assert systemd.drain() == [
        "READY=1\nSTATUS=listening", "STATUS=HR 61 bpm line two", "STOPPING=1",
    ]
    n.close()
    n.close()


def test_abstract_socket_names() -> None:
    name = f"heartsong-test-{os.getpid()}"
    fake = FakeSystemd("@" + name, "\0" + name)
    try:
        n = SdNotifier("@" + name)
        assert n.watchdog()
        assert fake.drain() == ["WATCHDOG=1"]
    finally:
        fake.sock.close()


def test_without_systemd_nothing_is_sent() -> None:
    n = SdNotifier.from_env({})
    assert not n.enabled
    assert n.ready() is False and n.sent == 0


def test_send_failure_is_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = SdNotifier(str(tmp_path / "nobody-listens"))
    assert n.watchdog() is False
    assert n.watchdog() is False
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1


def test_watchdog_interval_is_half_the_timeout() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "x"}) is None
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}
    assert watchdog_interval_s(env, pid=4242) == 1.0
    assert watchdog_interval_s(env, pid=4243) is None


def test_watchdog_pings_from_the_loop_and_stop_while_it_hangs(systemd: FakeSystemd) -> None:
    env = {"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    interval = watchdog_interval_s(env)
    assert interval == pytest.approx(0.05)
    seen: dict[str, list[str]] = {}

    async def appliance() -> None:
        notifier = SdNotifier.from_env(env)
        notifier.ready("running")
        pinger = asyncio.create_task(watchdog_pings(notifier, interval))
        await asyncio.sleep(10 * interval)
        seen["running"] = systemd.drain()
        # the main loop hangs: a blocking call that never yields to the loop
        time.sleep(10 * interval)
        seen["hung"] = systemd.drain()
        await asyncio.sleep(10 * interval)  # the loop turns again
        seen["recovered"] = systemd.drain()
        pinger.cancel()
        notifier.stopping()
        seen["stopped"] = systemd.drain()

    asyncio.run(appliance())
    running = seen["running"]
    assert running[0] == "READY=1\nSTATUS=running"
    assert running[1:].count("WATCHDOG=1") >= 3  # periodic: ~10 expected
    assert set(running[1:]) == {"WATCHDOG=1"}
    assert seen["hung"] == []  # nothing while the loop was blocked
    assert seen["recovered"].count("WATCHDOG=1") >= 3
    assert seen["stopped"] == ["STOPPING=1"]


def test_unhealthy_appliance_withholds_pings(systemd: FakeSystemd) -> None:
    healthy = [True]

    async def run() -> list[str]:
        n = SdNotifier(systemd.address)
        task = asyncio.create_task(watchdog_pings(n, 0.01, healthy=lambda: healthy[0]))
        await asyncio.sleep(0.1)
        systemd.drain()
        healthy[0] = False
        await asyncio.sleep(0.02)  # a ping in flight at the switch may still land
        systemd.drain()
        await asyncio.sleep(0.1)
        task.cancel()
        return systemd.drain()

    assert asyncio.run(run()) == []
