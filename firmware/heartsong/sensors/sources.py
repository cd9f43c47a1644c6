"""The heart-signal source interface, and the simulated chest strap's source.

A source runs as a task on the appliance's event loop and hands each block it reads
(:class:`~heartsong.events.PpgBlock` or :class:`~heartsong.events.RrBlock`) to a callback
on that loop. Hardware sources whose I/O blocks (I2C) read in a worker thread and hand
blocks over with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

from heartsong.clock import Clock
from heartsong.events import PpgBlock, RrBlock, SourceName
from heartsong.sensors.simulated import SimulatedStrap

log = logging.getLogger(__name__)

BlockSink = Callable[[PpgBlock | RrBlock], None]

class HeartSource(Protocol):
    """A producer of PPG or RR blocks."""

    name: SourceName

    async def run(self, sink: BlockSink) -> None:
        """Read until cancelled, calling ``sink`` with every block."""
        ...


class SimStrapSource:
    """RR intervals from the simulated person, one notification a second like a chest strap."""

    name: SourceName = "ble"

    def __init__(self, strap: SimulatedStrap, clock: Clock, poll_s: float = 1.0) -> None:
        self._strap = strap
        self._clock = clock
        self._poll_s = poll_s
        self.notifications = 0

    async def run(self, sink: BlockSink) -> None:
        """Deliver each notification due by the clock until cancelled."""
        while True:
            await self._clock.sleep(self._poll_s)
            for t_s, rr_ms, beats_s in self._strap.notifications_until(self._clock.monotonic()):
                self.notifications += 1
                hr = 60_000.0 / float(np.mean(rr_ms)) if rr_ms.size else None
                sink(RrBlock(t_s=t_s, rr_ms=rr_ms, beat_times_s=beats_s, hr_bpm=hr))
