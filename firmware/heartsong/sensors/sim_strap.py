"""RR intervals as a chest strap sends them, from a :class:`SimulatedPerson`'s beats.

A Bluetooth heart-rate strap notifies the Heart Rate Measurement characteristic (0x2A37)
about once a second, carrying the RR intervals of the beats since the previous
notification in units of 1/1024 s (Bluetooth SIG, Heart Rate Service 1.0, 2011). The strap
times beats on its own 1024 Hz clock, so an interval is the difference of two quantised
beat times: the intervals of a stream never drift from the beats, and each is within
1/1024 s of the true one.
"""

from __future__ import annotations

import logging
import math
from typing import Final, TypeAlias

import numpy as np

from heartsong.errors import check_number
from heartsong.events import FloatArray
from heartsong.sensors.sim_person import SimulatedPerson

logger = logging.getLogger(__name__)

#: RR-interval resolution of the 0x2A37 characteristic, in ticks per second.
RR_TICKS_PER_S: Final = 1024

#: (arrival_time_s, rr_ms, beat_times_s) of one notification.
Notification: TypeAlias = tuple[float, FloatArray, FloatArray]


class SimulatedStrap:
    """RR intervals as a chest strap sends them: one notification every ``period_s``.

    Each notification is ``(arrival_time_s, rr_ms, beat_times_s)``: the RR intervals in
    milliseconds, quantised to 1/1024 s, of the beats in (previous arrival, arrival], and
    the true simulated time (s) of the beat ending each interval. The very first beat the
    strap sees has no interval and is not reported. A notification with no beat carries
    empty arrays (a strap still sends its heart rate then).

    Parameters
    ----------
    person:
        The person whose beats the strap reads (through its own cursor).
    period_s:
        Seconds between notifications; the first arrives at ``period_s``.
    """

    def __init__(self, person: SimulatedPerson, *, period_s: float = 1.0) -> None:
        if not isinstance(person, SimulatedPerson):
            raise ValueError(f"person must be a SimulatedPerson, got {type(person).__name__}")
        self._period = check_number("period_s", period_s, 0.1, 10.0, "s")
        self._cursor = person.cursor(0.0)
        self._sent = 0  # notifications delivered so far
        self._last_tick: int | None = None  # quantised time of the last beat seen

    @property
    def t_next_s(self) -> float:
        """Arrival time of the next notification, in seconds."""
        return (self._sent + 1) * self._period

    def notifications_until(self, t_s: float) -> list[Notification]:
        """Every notification arriving in (previous call's ``t_s``, ``t_s``], oldest first."""
        t_s = check_number("t_s", t_s, 0.0, math.inf, "s")
        n_new = math.floor(t_s / self._period + 1e-9) - self._sent
        if n_new <= 0:
            return []
        arrivals = (self._sent + 1 + np.arange(n_new)) * self._period
        beats = self._cursor.read_until(float(arrivals[-1]))
        ticks = np.round(beats * RR_TICKS_PER_S).astype(np.int64)
        prev = np.concatenate([[-1 if self._last_tick is None else self._last_tick], ticks[:-1]])
        rr_ms = (ticks - prev) * (1000.0 / RR_TICKS_PER_S)
        valid = prev >= 0
        if ticks.shape[0]:
            self._last_tick = int(ticks[-1])
        ends = np.searchsorted(beats, arrivals, side="right")
        out: list[Notification] = []
        start = 0
        for arrival, end in zip(arrivals, ends, strict=True):
            mask = valid[start:end]
            out.append((float(arrival), rr_ms[start:end][mask], beats[start:end][mask]))
            start = int(end)
        self._sent += n_new
        return out

    def __repr__(self) -> str:
        return f"SimulatedStrap(period_s={self._period:g}, sent={self._sent})"
