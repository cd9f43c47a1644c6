"""The BLE strap client over the fake radio (the same code path as over bleak), and over
real bleak on this machine.

Simulated time: the tests run on an event loop whose clock is virtual (when nothing is
ready to run, it jumps to the next timer), so an hour of straps, stalls and reconnections
takes seconds and every run is the same. The clock handed to the client and the fake is
that loop's clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartsong.app import Appliance
from heartsong.audio.sinks import NullSink
from heartsong.clock import ScaledClock
from heartsong.config import BleConfig, Config, with_overrides
from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.events import PpgBlock, RrBlock, SourceName
from heartsong.sensors.ble_fake import (
    CONNECT_TIME_S,
    FakeAir,
    FakeStrap,
    Fault,
    FaultPlan,
    play_faults,
)
from heartsong.sensors.ble_hr import (
    HISTORY_LEN,
    BleHrClient,
    BleSettings,
    LastStrapStore,
    ReconnectBackoff,
    RememberedStrap,
    StrapNotFoundError,
    choose_strap,
    explain_bluetooth_error,
)
from heartsong.sensors.ble_source import (
    BleHeartSource,
    make_demo_ble_source,
    make_device_ble_source,
)
from heartsong.sensors.hrm_parse import (
    HEART_RATE_SERVICE_UUID,
    HrmPayloadError,
    parse_heart_rate_measurement,
)
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson, SimulatedStrap
from heartsong.stress.estimator import NoModelEstimator
from heartsong.wiring import make_engine

LOGGER = "heartsong.sensors.ble_hr"
T = TypeVar("T")


# --------------------------------------------------------------------------- virtual time


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls without blocking; where the loop would block, virtual time jumps instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        ready: list[Any] = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("virtual time: nothing is scheduled, the loop would wait forever")
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: ``time()`` only moves when every task waits."""

    def __init__(self) -> None:
        self._virtual = _VirtualSelector()
        super().__init__(self._virtual)

    def time(self) -> float:
        return self._virtual.now


class LoopClock:
    """The running loop's (virtual) time as a :class:`heartsong.clock.Clock`."""

    speed = 1.0

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()

    def monotonic(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        return 1_700_000_000.0 + self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        return runner.run(main())


async def run_for(seconds: float, *coros: Awaitable[Any]) -> None:
    """Run ``coros`` as tasks for ``seconds`` of clock time, then cancel them.

    The first (the source) must still be running; the others may have finished, but
    none may have crashed.
    """
    tasks = [asyncio.ensure_future(c) for c in coros]
    await asyncio.sleep(seconds)
    assert not tasks[0].done(), tasks[0]
    for task in tasks:
        if task.done():
            assert task.exception() is None, task
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- helpers


def person(seed: int = 1, hr_bpm: float = 62.0) -> SimulatedPerson:
    return SimulatedPerson(PersonParams(hr_bpm=hr_bpm, motion_artifacts_per_hour=0.0), seed=seed)


def strap_on(air: FakeAir, address: str, name: str, rssi: int, seed: int, **kw: Any) -> FakeStrap:
    return air.add_strap(
        FakeStrap(
            SimulatedStrap(person(seed)), air.clock, address=address, name=name,
            rssi_dbm=rssi, seed=seed, **kw,
        )
    )


def client_on(air: FakeAir, settings: BleSettings | None = None, **kw: Any) -> BleHrClient:
    return BleHrClient(
        settings or BleSettings(), air.clock, air.scanner, air.client,
        rng=random.Random(7), **kw,
    )


def collect(source: BleHeartSource) -> tuple[list[RrBlock], Callable[[PpgBlock | RrBlock], None]]:
    blocks: list[RrBlock] = []

    def sink(block: PpgBlock | RrBlock) -> None:
        assert isinstance(block, RrBlock)
        blocks.append(block)

    return blocks, sink


A1, A2, A3 = "AA:00:00:00:00:01", "AA:00:00:00:00:02", "AA:00:00:00:00:03"


# --------------------------------------------------------------------------- choosing


def test_choose_strap_by_address_name_memory_or_signal() -> None:
    async def main() -> None:
        air = FakeAir(LoopClock())
        strap_on(air, A1, "Polar H10 1234", -70, 1)
        strap_on(air, A2, "TICKR X", -50, 2)
        strap_on(air, A3, "HRM-Pro", -60, 3)
        air.add_other("BB:00:00:00:00:09", "Phone", -30, ["0000180f-0000-1000-8000-00805f9b34fb"])
        found = await air.scanner.discover(1.0, return_adv=True)
        assert len(found) == 4

        def pick(**kw: Any) -> str | None:
            chosen = choose_strap(found, **kw)
            return None if chosen is None else chosen[0].address

        assert pick() == A2  # the strongest heart-rate strap; the phone is not one
        assert pick(address=A1.lower()) == A1
        assert pick(name="polar") == A1
        assert pick(name="garmin") is None
        assert pick(address=A1, name="tickr") is None  # both must match
        assert pick(remembered=RememberedStrap(A3, "HRM-Pro")) == A3
        # The user's strap is off: nobody else's is adopted in its place (a partner's in
        # the same bed fed someone else's heart into the baseline) ...
        assert pick(remembered=RememberedStrap("CC:00:00:00:00:00", "gone")) is None
        # ... unless the configuration says which strap to take.
        assert pick(name="tickr", remembered=RememberedStrap("CC:00:00:00:00:00", "gone")) == A2
        filtered = await air.scanner.discover(
            1.0, return_adv=True, service_uuids=[HEART_RATE_SERVICE_UUID]
        )
        assert set(filtered) == {A1, A2, A3}

    run_virtual(main)


def test_backoff_is_exponential_with_jitter_between_one_and_sixty_seconds() -> None:
    b = ReconnectBackoff(rng=random.Random(3))
    bounds = [b.bounds(n) for n in range(8)]
    assert bounds == [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32), (30, 60), (30, 60), (30, 60)]
    delays = [b.next_delay() for _ in range(200)]
    for n, d in enumerate(delays):
        lo, hi = b.bounds(n)
        assert lo <= d <= hi
    assert len({round(d, 6) for d in delays[10:]}) > 150  # jittered, not a fixed step
    b.reset()
    assert 1.0 <= b.next_delay() <= 2.0


# --------------------------------------------------------------------------- a session


def test_connects_reads_the_strap_and_streams_its_beats(tmp_path: Path) -> None:
    async def main() -> None:
        air = FakeAir(LoopClock(), seed=1)
        fake = strap_on(air, A1, "Polar H10 1234", -60, 1, location=1, battery_pct=9)
        strap_on(air, A2, "Polar H10 9999", -80, 2)
        store = LastStrapStore(tmp_path / "ble.json")
        client = client_on(air, store=store)
        source = BleHeartSource(client)
        blocks, sink = collect(source)
        await run_for(120.0, source.run(sink))
        assert client.stats.scans == 1 and client.stats.connects == 1
        info = client.info
        assert info is not None and info.address == A1 and info.rssi_dbm is not None
        assert info.location == "chest" and info.battery_pct == 9
        assert info.device_info["manufacturer"] == "Heartsong Labs"
        assert "worn on the chest" in info.describe()
        # every RR interval the strap sent reached the sink, once, in order
        sent = [t for n in fake.sent if n.fate == "delivered" for t in n.rr_ticks]
        got = np.concatenate([b.rr_ms for b in blocks])
        assert np.array_equal(got, np.array(sent) * 1000 / 1024)
        assert len(sent) > 100 and not any(b.gap_before for b in blocks)
        assert json.loads((tmp_path / "ble.json").read_text())["address"] == A1

    run_virtual(main)


def test_the_remembered_strap_is_connected_directly_even_if_weaker(tmp_path: Path) -> None:
    (tmp_path / "ble.json").write_text(json.dumps({"address": A1, "name": "H10"}))

    async def main() -> None:
        air = FakeAir(LoopClock())
        # (a strap without contact detection, sending its heart rate in 16 bits)
        strap_on(air, A1, "H10", -85, 1, supports_contact=False, hr_uint16=True)
        strap_on(air, A2, "H9", -40, 2)
        client = client_on(air, store=LastStrapStore(tmp_path / "ble.json"))
        source = BleHeartSource(client)
        blocks, sink = collect(source)
        await run_for(10.0, source.run(sink))
        assert client.stats.scans == 0 and client.info is not None and client.info.address == A1
        assert client.info.name == "H10"
        with_rr = [b for b in blocks if b.rr_ms.size]
        assert with_rr and all(b.contact and b.hr_bpm is not None for b in with_rr)
        assert all(40 < (b.hr_bpm or 0) < 90 for b in with_rr)

    run_virtual(main)


@pytest.mark.parametrize(
    ("settings", "scans"),
    [(BleSettings(address=A1.lower()), 0), (BleSettings(name="polar"), 1)],
    ids=["address", "name"],
)
def test_the_configured_strap_wins_over_a_stronger_one(settings: BleSettings, scans: int) -> None:
    async def main() -> BleHrClient:
        air = FakeAir(LoopClock())
        strap_on(air, A1, "Polar H10 1234", -85, 1)
        strap_on(air, A2, "TICKR", -40, 2)
        client = client_on(air, settings)
        source = BleHeartSource(client)
        _, sink = collect(source)
        await run_for(15.0, source.run(sink))
        return client

    client = run_virtual(main)
    assert client.info is not None and client.info.address.upper() == A1
    assert client.stats.scans == scans and client.stats.connects == 1


def test_the_memory_file_is_optional_and_checked(tmp_path: Path) -> None:
    missing = LastStrapStore(tmp_path / "no such dir" / "ble.json")
    missing.save(RememberedStrap(A1, "H10"))  # kept in memory, no directory created
    assert missing.load() == RememberedStrap(A1, "H10")
    assert not (tmp_path / "no such dir").exists()
    docs = ('{"address": "not a mac"}', json.dumps({"address": A1, "name": 5}), "[1]")
    for doc in docs:
        (tmp_path / "bad.json").write_text(doc)
        assert LastStrapStore(tmp_path / "bad.json").load() is None
    good = LastStrapStore(tmp_path / "good.json")
    good.save(RememberedStrap(A2, "TICKR"))
    assert LastStrapStore(tmp_path / "good.json").load() == RememberedStrap(A2, "TICKR")


def test_a_battery_low_and_a_broken_memory_file_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ble.json").write_text("{not json")

    async def main() -> None:
        air = FakeAir(LoopClock())
        strap_on(air, A1, "H10", -60, 1, battery_pct=5)
        source = BleHeartSource(client_on(air, store=LastStrapStore(tmp_path / "ble.json")))
        _, sink = collect(source)
        await run_for(10.0, source.run(sink))

    with caplog.at_level(logging.INFO, logger=LOGGER):
        run_virtual(main)
    text = caplog.text
    assert "ble.json" in text and "ignoring" in text
    assert "battery low: 5 %" in text
    assert "BLE strap connected: H10 (AA:00:00:00:00:01)" in text


# --------------------------------------------------------------------------- the soak hour


def _hour_of_faults(seed: int) -> list[Fault]:
    rng = random.Random(seed)
    kinds = ["disconnect"] * 100 + ["stall"] * 100
    rng.shuffle(kinds)
    faults = [Fault(20.0 + 17.8 * i + rng.uniform(0.0, 3.0), k) for i, k in enumerate(kinds)]  # type: ignore[arg-type]
    faults += [Fault(rng.uniform(10.0, 3590.0), "malformed") for _ in range(50)]
    return sorted(faults, key=lambda f: f.t_s)


def _parses(payload: bytes) -> bool:
    try:
        parse_heart_rate_measurement(payload)
    except HrmPayloadError:
        return False
    return True


def test_an_hour_with_100_disconnects_and_100_stalls() -> None:
    stall_s = 5.0

    async def main() -> tuple[BleHrClient, BleHeartSource, FakeStrap, list[RrBlock]]:
        air = FakeAir(LoopClock(), seed=3)
        fake = strap_on(air, A1, "H10", -60, 4, replay_on_subscribe=True)
        strap_on(air, A2, "other strap", -75, 5)
        client = client_on(air, BleSettings(stall_timeout_s=stall_s))
        source = BleHeartSource(client)
        blocks, sink = collect(source)
        await run_for(3600.0, source.run(sink), play_faults(fake, _hour_of_faults(11)))
        return client, source, fake, blocks

    client, source, fake, blocks = run_virtual(main)
    stats = client.stats
    # every fault was seen for what it was, and recovered from
    assert stats.disconnects == 100 and stats.stalls == 100
    assert stats.connects == 201 and fake.connections == 201
    # the malformed payloads that reached the host were dropped and counted; the cached
    # value BlueZ re-sends on subscribing was recognised whenever it carried intervals
    arrived = [n for n in fake.sent if n.fate == "delivered"]
    bad = [n for n in arrived if not _parses(n.payload)]
    assert stats.malformed == len(bad) >= 40 and stats.notifications == len(arrived)
    replays = [n for n in arrived if n.kind == "replay"]
    assert len(replays) == 200
    with_rr = [n for n in replays if _parses(n.payload) and n.payload[0] & 0x10]
    assert source.timeline.stats.replays == len(with_rr) > 150
    # each reconnection came within the first back-off step's bound plus a connection
    bound_s = client.backoff.bounds(0)[1] + CONNECT_TIME_S[1] + 0.01
    assert len(stats.reconnect_s) == 200 <= HISTORY_LEN
    assert max(stats.reconnect_s) <= bound_s
    assert all(1.0 <= d <= 2.0 for d in stats.backoff_s)
    # stalls were noticed after exactly stall_timeout_s without a notification
    assert np.allclose(stats.stall_detect_s, stall_s)

    # -- no RR interval counted twice, none invented, none lost that was delivered intact
    delivered = [n for n in fake.sent if n.kind == "ok" and n.fate == "delivered"]
    sent_ticks = [t for n in delivered for t in n.rr_ticks]
    got_ms = np.concatenate([b.rr_ms for b in blocks])
    assert np.array_equal(got_ms, np.array(sent_ticks) * 1000 / 1024)
    assert source.timeline.stats.rr_not_after == 0
    # ... and each beat is placed near its true time (so equal values cannot stand in)
    true_times = np.array([t for n in delivered for t in n.beat_times_s])
    beat_times = np.concatenate([b.beat_times_s for b in blocks])
    err = beat_times - true_times
    # (a chain starts anchored at an arrival, up to a period late, and tightens as it goes;
    # here chains last only ~15 notifications between faults)
    assert err.min() > -0.01 and err.max() < 1.1 and float(np.median(err)) < 0.25
    assert np.all(np.diff(beat_times) > 0)

    # -- gaps: within a segment the beats are consecutive beats of the person
    index_of = {}
    k = 0
    for n in fake.sent:
        for t in n.beat_times_s:
            index_of[t] = k
            k += 1
    segment, previous = 0, None
    joins = 0
    for block in blocks:
        if block.gap_before or not block.contact:
            segment += 1
            previous = None
        for t in block.beat_times_s:
            true_t = true_times[np.searchsorted(beat_times, t)]
            idx = index_of[float(true_t)]
            if previous is not None:
                assert idx == previous + 1, "an interval was stitched across lost beats"
                joins += 1
            previous = idx
    assert sum(b.gap_before for b in blocks) >= 200  # every reconnection, at least
    assert joins > 0.8 * len(sent_ticks)


def test_a_strap_out_of_range_is_sought_with_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> BleHrClient:
        air = FakeAir(LoopClock())
        fake = strap_on(air, A1, "H10", -60, 1)
        client = client_on(air)
        source = BleHeartSource(client)
        _, sink = collect(source)
        await run_for(
            900.0, source.run(sink), play_faults(fake, [Fault(60.0, "leave", 600.0)])
        )
        return client

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        client = run_virtual(main)
    stats = client.stats
    assert stats.connects == 2  # back after the strap returned
    waits = list(stats.backoff_s)  # from the loss until the reconnection
    assert len(waits) >= 6
    for n, wait in enumerate(waits):
        lo, hi = client.backoff.bounds(n)
        assert lo <= wait <= hi
    assert max(waits) <= 60.0 and waits[-1] >= 30.0
    # the strap returned at 660 s; the client found it within one (longest) wait + a scan
    assert stats.reconnect_s[-1] <= 600.0 + 60.0 + client.settings.scan_timeout_s + 20.0 + 2.0
    not_found = [r for r in caplog.records if "not found" in r.getMessage() or
                 "no heart-rate strap" in r.getMessage()]
    assert sum(r.levelno >= logging.INFO for r in not_found) == 1  # said once, then debug


def test_a_missing_dbus_is_explained_once_and_retried_in_the_background(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> tuple[BleHrClient, list[RrBlock]]:
        air = FakeAir(LoopClock())
        strap_on(air, A1, "H10", -60, 1)
        air.scan_error = FileNotFoundError(2, "No such file or directory")  # as bleak raises
        client = client_on(air)
        source = BleHeartSource(client)
        blocks, sink = collect(source)

        async def dbus_starts() -> None:
            await asyncio.sleep(300.0)
            air.scan_error = None

        await run_for(400.0, source.run(sink), dbus_starts())
        return client, blocks

    with caplog.at_level(logging.INFO, logger=LOGGER):
        client, blocks = run_virtual(main)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "Bluetooth unavailable" in message and "D-Bus" in message
    assert "running without the BLE strap" in message
    assert client.stats.unavailable >= 6 and client.stats.connects == 1
    assert "reachable again" in caplog.text and blocks


@pytest.mark.parametrize(
    ("make_exc", "kind", "words"),
    [
        (lambda: FileNotFoundError(2, "No such file or directory"), "no_dbus", "D-Bus"),
        (lambda: ConnectionRefusedError(111, "refused"), "no_dbus", "D-Bus"),
        (lambda: PermissionError(13, "denied"), "permission", "'bluetooth' group"),
        (lambda: StrapNotFoundError("none here"), "not_found", "none here"),
        (lambda: TimeoutError(), "link", "timed out"),
        (lambda: RuntimeError("boom"), "bug", "RuntimeError"),
    ],
)
def test_errors_are_explained(make_exc: Callable[[], BaseException], kind: str, words: str) -> None:
    problem = explain_bluetooth_error(make_exc())
    assert problem.kind == kind and words in problem.message


def test_bleak_errors_are_explained() -> None:
    from bleak.exc import (
        BleakBluetoothNotAvailableError,
        BleakBluetoothNotAvailableReason,
        BleakDBusError,
        BleakDeviceNotFoundError,
        BleakError,
    )

    cases = [
        (BleakBluetoothNotAvailableError("x", BleakBluetoothNotAvailableReason.NO_BLUETOOTH),
         "no_adapter"),
        (BleakBluetoothNotAvailableError("x", BleakBluetoothNotAvailableReason.POWERED_OFF),
         "adapter_off"),
        (BleakBluetoothNotAvailableError("x", BleakBluetoothNotAvailableReason.DENIED_BY_USER),
         "permission"),
        (BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", []), "no_bluez"),
        (BleakDBusError("org.bluez.Error.NotReady", []), "adapter_off"),
        (BleakDBusError("org.bluez.Error.Failed", ["le-connection-abort-by-local"]), "link"),
        (BleakDeviceNotFoundError(A1, "not found"), "not_found"),
        (BleakError("adapter 'hci1' not found"), "no_adapter"),
        (BleakError("Not connected"), "link"),
    ]
    for exc, kind in cases:
        problem = explain_bluetooth_error(exc)
        assert problem.kind == kind, (exc, problem)
        assert problem.host_unavailable == (
            kind in ("no_dbus", "no_bluez", "no_adapter", "adapter_off", "permission")
        )


@settings(max_examples=120, deadline=None)
@given(st.lists(st.binary(max_size=22), min_size=1, max_size=12))
def test_random_payloads_from_the_air_are_counted_and_dropped_never_raised(
    payloads: list[bytes],
) -> None:
    bad = sum(not _parses(p) for p in payloads)

    async def main() -> None:
        air = FakeAir(LoopClock())
        fake = strap_on(air, A1, "H10", -60, 1)
        client = client_on(air)
        source = BleHeartSource(client)
        pipe = StreamingPipeline()

        def sink(block: PpgBlock | RrBlock) -> None:
            assert isinstance(block, RrBlock)
            pipe.feed_rr(block)  # the DSP accepts whatever the client passes on

        task = asyncio.ensure_future(source.run(sink))
        await asyncio.sleep(10.0)
        assert client.connected
        seen = client.stats.notifications
        for payload in payloads:
            assert fake.inject_payload(payload)  # straight into bleak's callback
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.0)
        assert not task.done() and client.connected
        assert client.stats.malformed == bad
        assert client.stats.notifications > seen + len(payloads) - 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run_virtual(main)


# --------------------------------------------------------------------------- real bleak


def test_the_device_factory_runs_real_bleak_and_survives_a_host_without_bluetooth(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real code path: bleak's own BleakScanner, called on this machine.

    Here (a container without D-Bus) bleak raises a bare FileNotFoundError; on a host with
    D-Bus but no BlueZ or no adapter it raises a BleakError instead. Either way the source
    must log one clear line and keep retrying, without delivering anything.
    """
    clock = ScaledClock(40.0)  # back-off waits of 1-2, 2-4, 4-8 s pass 40x faster
    source = make_device_ble_source(BleConfig(), clock, tmp_path)
    assert source.client is not None and source.name == "ble"
    blocks, sink = collect(source)

    async def main() -> None:
        task = asyncio.create_task(source.run(sink))
        for _ in range(400):  # until three attempts failed (a few hundred ms)
            await asyncio.sleep(0.01)
            if source.client is not None and source.client.stats.attempts >= 3:
                break
        assert not task.done()  # still retrying in the background
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        asyncio.run(main())
    stats = source.client.stats
    if stats.connects:
        pytest.skip("this host has working Bluetooth and a strap nearby")
    assert stats.attempts >= 3 and stats.unavailable + stats.connect_failures >= 2
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "Bluetooth unavailable" in message and "retrying in the background" in message
    if not os.path.exists("/run/dbus/system_bus_socket") and not os.environ.get(
        "DBUS_SYSTEM_BUS_ADDRESS"
    ):
        assert "no D-Bus system bus" in message and "FileNotFoundError" not in message
    assert blocks == []


# --------------------------------------------------------------------------- fusion


class SimPpgSource:
    """The simulated person's PPG, a block every 0.25 s on the clock (no driver thread)."""

    name: SourceName = "ppg"

    def __init__(self, synth: PpgSynth, clock: LoopClock) -> None:
        self._synth = synth
        self._clock = clock

    async def run(self, sink: Callable[[PpgBlock | RrBlock], None]) -> None:
        n = round(0.25 * self._synth.fs_hz)
        t0 = 0.0
        while True:
            await self._clock.sleep(0.25)
            ir, red, contact = self._synth.read(n)
            sink(PpgBlock(t0, self._synth.fs_hz, ir, red, contact=contact))
            t0 += n / self._synth.fs_hz


def test_the_appliance_switches_to_ppg_and_back_and_the_metrics_say_so() -> None:
    cfg = with_overrides(
        Config(), {"audio.output": "none", "sources.ble": True, "sources.preferred": "ble"}
    )
    faults = [Fault(150.0, "no_contact", 60.0), Fault(330.0, "leave", 90.0)]

    async def main() -> Appliance:
        clock = LoopClock()
        who = person(seed=5, hr_bpm=60.0)
        air = FakeAir(clock, seed=2)
        fake = air.add_strap(
            FakeStrap(SimulatedStrap(who), clock, address=A1, name="H10", seed=3)
        )
        ble = BleHeartSource(
            client_on(air, BleSettings(stall_timeout_s=cfg.ble.stall_timeout_s)),
            background=lambda: play_faults(fake, faults),
        )
        engine = make_engine(cfg)
        app = Appliance(
            cfg,
            clock=clock,
            sources=[SimPpgSource(PpgSynth(who, 100.0, seed=4), clock), ble],
            engine=engine,
            sink=NullSink(),
            estimator=NoModelEstimator("test"),
        )
        assert await app.run(duration_s=600.0) == 0
        return app

    app = run_virtual(main)
    history = [(m.t_s, m.source) for m in app.metrics_history]
    assert all(m.as_dict()["source"] == m.source for m in app.metrics_history)
    runs: list[tuple[float, SourceName]] = []
    for t, src in history:
        if src != "none" and (not runs or runs[-1][1] != src):
            runs.append((t, src))
    # (the PPG may come first: the strap is found by a scan of a few seconds)
    while runs and runs[0][1] != "ble":
        runs.pop(0)
    assert runs[0][0] < 30.0
    assert [s for _, s in runs] == ["ble", "ppg", "ble", "ppg", "ble"], runs
    lost, back, gone, returned = (t for t, _ in runs[1:])
    assert 150.0 < lost <= 150.0 + 15.0  # PPG within seconds of the strap losing contact
    assert 210.0 < back <= 210.0 + 25.0  # the strap again once it is good (hysteresis)
    assert 330.0 < gone <= 330.0 + 15.0  # PPG within seconds of the strap going away
    assert 420.0 < returned < 600.0
    assert sum(e.kind == "source" for e in app.events) >= 5


def test_the_demo_factory_runs_the_client_on_the_fake_with_faults(tmp_path: Path) -> None:
    async def main() -> BleHeartSource:
        clock = LoopClock()
        source = make_demo_ble_source(
            SimulatedStrap(person(2)), clock, BleConfig(address=A3, name="x"), tmp_path,
            faults=FaultPlan(disconnects_per_hour=30, stalls_per_hour=30, seed=1),
        )
        blocks, sink = collect(source)
        await run_for(1800.0, source.run(sink))
        assert sum(b.rr_ms.size for b in blocks) > 1500
        return source

    source = run_virtual(main)
    assert source.client is not None
    stats = source.client.stats
    assert stats.disconnects + stats.stalls >= 15 and stats.connects >= 16
    # the demo remembers its fake strap in its own file, not the real strap's
    assert (tmp_path / "ble_last_strap.demo.json").exists()
    assert not (tmp_path / "ble_last_strap.json").exists()


def test_a_strap_sending_only_malformed_payloads_is_recycled_like_a_silent_one() -> None:
    """Every malformed notification kept the stall watch happy, so a strap with a steady
    quirk gave no data at all and was never reconnected."""

    async def main() -> None:
        air = FakeAir(LoopClock())
        fake = strap_on(air, A1, "H10", -60, 1)
        client = client_on(air)
        source = BleHeartSource(client)
        task = asyncio.ensure_future(source.run(lambda block: None))
        await asyncio.sleep(10.0)
        assert client.connected and client.stats.stalls == 0
        fake.corrupt_next(30)  # about 30 s of notifications, every one malformed
        await asyncio.sleep(12.0)
        assert client.stats.malformed >= 5
        assert client.stats.stalls >= 1  # recycled after stall_timeout_s without data
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run_virtual(main)
