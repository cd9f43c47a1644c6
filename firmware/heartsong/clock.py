"""Injected time: the appliance never calls ``time`` or ``asyncio.sleep`` directly.

A :class:`Clock` gives *monotonic* seconds (for intervals and sample timing) and *wall*
seconds (Unix time, for time of day and stored records), and sleeps on the event loop.
:class:`RealClock` is the device; :class:`ScaledClock` runs the same code ``speed`` times
faster than real time, so a simulated night takes minutes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What every part of the appliance uses to read and wait for time."""

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (1.0 on the device)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (origin arbitrary)."""
        ...

    def wall(self) -> float:
        """Unix time in seconds (may jump when NTP sets the clock)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time on the running event loop."""
        ...


class RealClock:
    """The host's own clocks, at real speed."""

    speed = 1.0

    def monotonic(self) -> float:
        """``time.monotonic()`` in seconds."""
        return time.monotonic()

    def wall(self) -> float:
        """``time.time()`` in seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep`` for ``seconds`` (negative values do not wait)."""
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "RealClock()"


class ScaledClock:
    """Simulated time that runs ``speed`` times faster than the host's monotonic clock.

    Parameters
    ----------
    speed:
        Simulated seconds per real second, > 0.
    start_wall:
        The Unix time at which the simulation starts (for example 22:30 local time so a
        demo starts at bedtime). Defaults to the host's current time.
    """

    def __init__(self, speed: float, start_wall: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self._speed = float(speed)
        self._real0 = time.monotonic()
        self._wall0 = time.time() if start_wall is None else float(start_wall)

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def monotonic(self) -> float:
        """Simulated seconds since this clock was made."""
        return (time.monotonic() - self._real0) * self._speed

    def wall(self) -> float:
        """``start_wall`` plus the simulated seconds elapsed."""
        return self._wall0 + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time (``seconds / speed`` real seconds)."""
        await asyncio.sleep(max(0.0, seconds) / self._speed)

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self._speed:g})"
