"""The BLE heart-rate strap as a heart source: client + beat timeline -> RR blocks.

:class:`BleHeartSource` satisfies :class:`heartsong.sensors.sources.HeartSource` with
``name = "ble"``. Its ``run`` drives a :class:`~heartsong.sensors.ble_hr.BleHrClient`
and turns every notification into an :class:`~heartsong.events.RrBlock` through a
:class:`~heartsong.sensors.ble_beats.RrTimeline` (beat times anchored to arrival, gaps
marked at link losses, stalls, dropped payloads and missing contact). Notifications
arrive on the event loop (bleak's callbacks run there), so blocks go to the sink
directly.

Two factories choose the backend, and nothing else differs between them:
:func:`make_device_ble_source` hands the client bleak's own ``BleakScanner`` and
``BleakClient`` (imported here, lazily), :func:`make_demo_ble_source` the fake radio of
:mod:`heartsong.sensors.ble_fake` with a strap worn by the simulated person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from heartsong.clock import Clock
from heartsong.config import BleConfig
from heartsong.events import SourceName
from heartsong.sensors.ble_beats import RrTimeline
from heartsong.sensors.ble_fake import FaultPlan, make_demo_air, play_faults
from heartsong.sensors.ble_hr import (
    LAST_STRAP_FILE,
    BleHrClient,
    BleSettings,
    LastStrapStore,
    StrapInfo,
    settings_from_config,
)
from heartsong.sensors.hrm_parse import HeartRateMeasurement
from heartsong.sensors.sim_strap import SimulatedStrap
from heartsong.sensors.sources import BlockSink

__all__ = ["BleHeartSource", "make_demo_ble_source", "make_device_ble_source"]

log = logging.getLogger(__name__)

#: The demo remembers its fake strap under this name, apart from a real strap's file.
DEMO_LAST_STRAP_FILE: Final = "ble_last_strap.demo.json"
#: Hours of faults a demo's fault plan is drawn for.
DEMO_FAULT_HOURS: Final = 24.0


class _Feed:
    """The client's listener: notifications through the timeline into the sink."""

    def __init__(self, source: BleHeartSource, sink: BlockSink) -> None:
        self._source = source
        self._sink = sink

    def on_connected(self, info: StrapInfo) -> None:
        self._source.timeline.reconnected()

    def on_measurement(self, m: HeartRateMeasurement, arrival_s: float) -> None:
        block = self._source.timeline.feed(m, arrival_s)
        if block is not None:
            self._source.blocks += 1
            self._sink(block)

    def on_gap(self, reason: str) -> None:
        self._source.timeline.break_chain(reason)


class BleHeartSource:
    """RR intervals from a Bluetooth LE heart-rate strap.

    Parameters
    ----------
    client:
        The strap client (real or fake backend), or None when no backend is available
        (then :meth:`run` returns at once).
    background:
        A coroutine function run alongside the client while the source runs (the demo's
        fault injection), or None.
    """

    name: SourceName = "ble"

    def __init__(
        self,
        client: BleHrClient | None,
        *,
        background: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.timeline = RrTimeline()
        self.blocks = 0
        self._background = background

    def __repr__(self) -> str:
        return f"BleHeartSource({self.client!r}, blocks={self.blocks})"

    async def run(self, sink: BlockSink) -> None:
        """Receive until cancelled, calling ``sink`` with every :class:`RrBlock`."""
        if self.client is None:
            return
        helper = None
        if self._background is not None:
            helper = asyncio.ensure_future(self._background())
        try:
            await self.client.run(_Feed(self, sink))
        finally:
            if helper is not None:
                helper.cancel()
                with contextlib.suppress(BaseException):
                    await helper


def _store(state_dir: str | Path | None, filename: str) -> LastStrapStore:
    return LastStrapStore(Path(state_dir) / filename if state_dir else None)


def make_device_ble_source(
    cfg: BleConfig, clock: Clock, state_dir: str | Path | None
) -> BleHeartSource:
    """The device's strap source: bleak's scanner and client on the host's BlueZ.

    Parameters
    ----------
    cfg:
        The ``[ble]`` section (address, name, stall timeout).
    clock:
        The appliance's clock.
    state_dir:
        Directory where the strap used last is remembered (``device.state_dir``), or
        None to remember it in memory only.

    Nothing is opened here: without D-Bus, BlueZ or an adapter, :meth:`BleHeartSource.run`
    logs one clear message and keeps retrying in the background.
    """
    try:
        from bleak import BleakClient, BleakScanner
    except ImportError as exc:
        log.warning(
            "BLE heart-rate strap enabled, but bleak cannot be imported (%s): "
            "pip install 'bleak>=2.0'; running without the strap", exc,
        )
        return BleHeartSource(None)
    client = BleHrClient(
        settings_from_config(cfg),
        clock,
        BleakScanner,
        BleakClient,
        store=_store(state_dir, LAST_STRAP_FILE),
    )
    return BleHeartSource(client)


def make_demo_ble_source(
    strap: SimulatedStrap,
    clock: Clock,
    cfg: BleConfig,
    state_dir: str | Path | None = None,
    *,
    faults: FaultPlan | None = None,
    seed: int = 0,
) -> BleHeartSource:
    """The demo's strap source: the real client on a fake radio with the person's strap.

    Parameters
    ----------
    strap:
        The simulated person's RR stream, worn as a fake chest strap.
    clock:
        The simulation clock.
    cfg:
        The ``[ble]`` section; its stall timeout is used. Its address and name name a
        real strap, so the demo ignores them.
    state_dir:
        Where the demo remembers its fake strap (a file of its own), or None.
    faults:
        Random faults (disconnects, stalls, malformed payloads, lost contact) to inject,
        or None for a well-behaved strap.
    seed:
        Seed of the radio's delays and the back-off jitter.
    """
    air, fake = make_demo_air(strap, clock, seed=seed)
    settings = BleSettings(stall_timeout_s=cfg.stall_timeout_s)
    client = BleHrClient(
        settings,
        clock,
        air.scanner,
        air.client,
        store=_store(state_dir, DEMO_LAST_STRAP_FILE),
        rng=random.Random(seed),
    )
    background = None
    if faults is not None:
        schedule = faults.schedule(DEMO_FAULT_HOURS * 3600.0, start_s=clock.monotonic())

        async def background() -> None:
            await play_faults(fake, schedule)

    return BleHeartSource(client, background=background)
