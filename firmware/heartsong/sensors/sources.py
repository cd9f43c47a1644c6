"""The heart-signal source interface, and the sources that read the simulated person.

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
from heartsong.sensors.simulated import PpgSynth, SimulatedStrap

log = logging.getLogger(__name__)

BlockSink = Callable[[PpgBlock | RrBlock], None]

#: Longest stretch of simulated signal read in one step, in seconds: bounds memory when a
#: fast simulation catches up after the host was busy.
MAX_CATCH_UP_S = 30.0


class HeartSource(Protocol):
    """A producer of PPG or RR blocks."""

    name: SourceName

    async def run(self, sink: BlockSink) -> None:
        """Read until cancelled, calling ``sink`` with every block."""
        ...


class SimPpgSource:
    """PPG samples from the simulated person, read in blocks as a FIFO would deliver them.

    Parameters
    ----------
    synth:
        The simulated PPG waveform (its sample clock starts at simulation time 0).
    clock:
        The simulation clock; ``clock.monotonic()`` is the simulation time in seconds.
    read_interval_s:
        Seconds between reads (a MAX30102 FIFO holds 32 samples: 0.32 s at 100 sps).
    """

    name: SourceName = "ppg"

    def __init__(self, synth: PpgSynth, clock: Clock, read_interval_s: float = 0.25) -> None:
        self._synth = synth
        self._clock = clock
        self._interval = read_interval_s
        self.samples_read = 0

    async def run(self, sink: BlockSink) -> None:
        """Deliver every sample due by the clock, in order, until cancelled."""
        fs = self._synth.fs_hz
        while True:
            await self._clock.sleep(self._interval)
            due = self._clock.monotonic() - self._synth.t_next_s
            n = min(int(due * fs), int(MAX_CATCH_UP_S * fs))
            if n <= 0:
                continue
            t0 = self._synth.t_next_s
            ir, red, contact = self._synth.read(n)
            self.samples_read += n
            sink(PpgBlock(t0_s=t0, fs_hz=fs, ir=ir, red=red, contact=contact))


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
