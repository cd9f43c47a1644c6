"""Beat times from a wearable's RR intervals, anchored to notification arrival, with gaps.

A Heart Rate Measurement notification carries the RR intervals of the beats the strap
timed since its previous notification, but no timestamps. Within an unbroken stream the
beats are *chained*: each beat is the previous one plus its RR interval, so intervals
and beat times never disagree. The chain is placed on the host's monotonic clock by an
offset estimated from arrivals: the last beat of a notification happened before the
notification arrived, so every notification gives an upper bound ``arrival - chained
time of its last beat`` on the offset, and the estimate is the lowest bound seen (the
notification sent soonest after its beat, delivered fastest). The bound may creep up by
:data:`MAX_CLOCK_DRIFT` per second so that the strap's and the host's oscillators may
differ. This is the "lower envelope" used to align a sender's timestamps with one-way
delays (Paxson 1998, "On calibrating measurements of packet transit times", ACM
SIGMETRICS), here applied to beats.

The chain breaks, and the next block carries ``gap_before=True`` so the DSP does not
stitch intervals across it, when:

- the link was lost or notifications stalled (:meth:`RrTimeline.break_chain`), or a
  notification was dropped as malformed (its intervals are lost);
- the chained beats fall behind the arrivals of :data:`LAG_WINDOW` notifications in a
  row (arriving at their usual spacing, not in one late burst) by more than a beat can
  explain (beats were lost unnoticed, e.g. by the strap);
- the strap reports no skin contact (its intervals are then dropped, not counted).

A notification that merely arrives *late* does not break the chain. Notifications are
acknowledged by the BLE link layer, so on a live link they are delayed (radio
retransmissions, a busy host, a simulation running faster than real time) rather than
lost; a late one only loosens the offset bound for a moment, while lost beats leave
every later notification lagging, which is what the lag test looks for.

No interval is counted twice: after a reconnect BlueZ may hand over the characteristic's
cached value, the last notification of the old link, once more; a first notification
identical to the last one before the link was lost is dropped as such a replay, and a
beat not after the previous beat is never emitted.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from heartsong.events import FloatArray, RrBlock
from heartsong.sensors.hrm_parse import RR_TICKS_PER_S, HeartRateMeasurement

__all__ = ["MAX_CLOCK_DRIFT", "RrTimeline", "TimelineStats"]

logger = logging.getLogger(__name__)

#: Largest rate difference between the strap's and the host's clocks (100 ppm).
MAX_CLOCK_DRIFT: Final = 1e-4
#: Notification period assumed until a few arrivals were seen, in seconds.
DEFAULT_PERIOD_S: Final = 1.0
#: Arrival gaps remembered for the period estimate (their median).
PERIOD_HISTORY: Final = 15
#: Beats are missing when the chain's last beat lags the arrival of this many
#: notifications in a row (each with intervals) ...
LAG_WINDOW: Final = 8
#: ... by more than this fraction of the shorter of notification period and RR interval
#: (a notification's last beat happened after the previous notification was sent, so
#: without losses its lag is spread over [0, that) and is often near 0) ...
LAG_FRACTION: Final = 0.8
#: ... plus this much spread of delivery and detection delays, in seconds.
LAG_JITTER_S: Final = 0.15
#: Notifications arriving closer together than this fraction of the period came in one
#: burst (delivered late together); only the first of a burst counts for the lag test.
BURST_FRACTION: Final = 0.5
#: A beat closer than this to the previous emitted beat is not emitted, in seconds.
MIN_BEAT_SEP_S: Final = 1e-3

_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False


@dataclass
class TimelineStats:
    """What the timeline did with the intervals it was given (counts)."""

    notifications: int = 0
    rr_received: int = 0
    rr_emitted: int = 0
    rr_no_contact: int = 0
    rr_not_after: int = 0
    replays: int = 0
    breaks: int = 0
    gaps_marked: int = 0


class RrTimeline:
    """Turns decoded notifications into :class:`~heartsong.events.RrBlock` s with beat times.

    Parameters
    ----------
    max_drift:
        Largest relative rate difference between strap and host clocks (dimensionless).

    Notes
    -----
    Beat times are in the host's monotonic seconds (the arrival times' clock). A beat is
    placed between 0 and one notification period (plus the delivery delay) before the
    arrival of its notification; the error of its time shrinks to the fastest delivery
    delay as the envelope tightens. Intervals are passed on exactly as measured
    (``ticks * 1000 / 1024`` ms).
    """

    def __init__(self, *, max_drift: float = MAX_CLOCK_DRIFT) -> None:
        if not (math.isfinite(max_drift) and 0.0 <= max_drift < 0.01):
            raise ValueError(f"max_drift must be in [0, 0.01), got {max_drift!r}")
        self._max_drift = max_drift
        self.stats = TimelineStats()
        self._open = False  # a chain is running
        self._ticks = 0  # chained time of the chain's last beat, in 1/1024 s
        self._offset_s = 0.0  # host time of chain tick 0
        self._t_prev_s: float | None = None  # arrival of the previous notification
        self._gaps: deque[float] = deque(maxlen=PERIOD_HISTORY)
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)  # of the chain, seconds
        self._rr_s: deque[float] = deque(maxlen=PERIOD_HISTORY)  # recent intervals, s
        self._last_beat_s = -math.inf  # newest beat emitted, host seconds
        self._anchor_s = 0.0  # arrival at which the offset was last updated
        self._gap_pending = False  # the next block must say gap_before
        self._last_seen: HeartRateMeasurement | None = None
        self._replay_check = False  # the next notification may be a cached replay

    def __repr__(self) -> str:
        state = "chained" if self._open else "broken"
        return f"RrTimeline({state}, period={self.period_s:.2f} s, emitted={self.stats.rr_emitted})"

    @property
    def period_s(self) -> float:
        """The usual time between notifications (median of recent arrival gaps), seconds."""
        if len(self._gaps) < 3:
            return DEFAULT_PERIOD_S
        return float(np.median(np.fromiter(self._gaps, dtype=np.float64)))

    def _median_rr_s(self) -> float:
        if not self._rr_s:
            return DEFAULT_PERIOD_S
        return float(np.median(np.fromiter(self._rr_s, dtype=np.float64)))

    def break_chain(self, reason: str) -> None:
        """The stream broke (link lost, stall, dropped payload): gap before the next block."""
        if self._open or self._last_beat_s > -math.inf:
            self._gap_pending = True
        if self._open:
            logger.debug("RR chain broken: %s", reason)
        self._open = False
        self.stats.breaks += 1

    def reconnected(self) -> None:
        """A new link is up: the chain is broken and the first notification may be a replay."""
        self.break_chain("reconnected")
        self._replay_check = self._last_seen is not None
        self._t_prev_s = None

    def feed(self, m: HeartRateMeasurement, arrival_s: float) -> RrBlock | None:
        """Place one notification's beats on the host clock.

        Parameters
        ----------
        m:
            The decoded notification.
        arrival_s:
            When it arrived, host monotonic seconds.

        Returns
        -------
        RrBlock or None
            The block for the DSP (possibly without intervals, e.g. without contact), or
            None when the notification was a replay of one already counted.
        """
        replay_check, self._replay_check = self._replay_check, False
        if replay_check and m.rr_ticks and m == self._last_seen:
            self.stats.replays += 1
            logger.debug("dropped a replayed notification after reconnecting: %s", m)
            return None
        self.stats.notifications += 1
        self.stats.rr_received += len(m.rr_ticks)
        self._last_seen = m
        prev, self._t_prev_s = self._t_prev_s, arrival_s
        spaced = prev is None or arrival_s - prev >= BURST_FRACTION * self.period_s
        if prev is not None and arrival_s > prev:
            self._gaps.append(arrival_s - prev)
        hr = float(m.hr_bpm) if m.hr_bpm > 0 else None
        if not m.contact:
            # dropped, not counted; the gap is flagged on the block that brings contact back
            self.stats.rr_no_contact += len(m.rr_ticks)
            self.break_chain("no skin contact")
            return RrBlock(arrival_s, _EMPTY.copy(), _EMPTY.copy(), hr, contact=False)
        if not m.rr_ticks:
            return self._block(arrival_s, _EMPTY, _EMPTY, hr, contact=True)
        ticks = np.asarray(m.rr_ticks, dtype=np.int64)
        total = int(ticks.sum())
        self._rr_s.extend(t / RR_TICKS_PER_S for t in m.rr_ticks)
        if self._open:
            # how far the chained last beat would lie before the arrival
            allowed = self._offset_s + self._max_drift * (arrival_s - self._anchor_s)
            if spaced:  # a burst of late notifications is one piece of evidence, not many
                self._lags.append(arrival_s - (allowed + (self._ticks + total) / RR_TICKS_PER_S))
            limit = LAG_FRACTION * min(self.period_s, self._median_rr_s()) + LAG_JITTER_S
            if len(self._lags) == LAG_WINDOW and min(self._lags) > limit:
                self.break_chain(
                    f"beats missing: the chain lagged {LAG_WINDOW} arrivals by "
                    f">= {min(self._lags):.2f} s"
                )
        if not self._open:
            self._open = True
            self._ticks = 0
            self._lags.clear()
            self._offset_s = arrival_s - total / RR_TICKS_PER_S
        else:
            candidate = arrival_s - (self._ticks + total) / RR_TICKS_PER_S
            drifted = self._offset_s + self._max_drift * (arrival_s - self._anchor_s)
            # a lower bound tightens the envelope, but never so much at once that the
            # first new beat would not follow the last one (the rest comes next time)
            first_s = (self._ticks + int(ticks[0])) / RR_TICKS_PER_S
            floor = self._last_beat_s + MIN_BEAT_SEP_S - first_s
            self._offset_s = max(min(drifted, candidate), floor)
        self._anchor_s = arrival_s
        chained = self._ticks + np.cumsum(ticks)
        self._ticks += total
        beats: FloatArray = self._offset_s + chained.astype(np.float64) / RR_TICKS_PER_S
        rr_ms: FloatArray = ticks.astype(np.float64) * (1000.0 / RR_TICKS_PER_S)
        keep = beats > self._last_beat_s + MIN_BEAT_SEP_S
        if not keep.all():
            # a beat not after the one before it: never count it (twice)
            # (beats increase, so the kept ones are the notification's newest)
            self.stats.rr_not_after += int((~keep).sum())
            beats, rr_ms = beats[keep], rr_ms[keep]
        if beats.shape[0]:
            self._last_beat_s = float(beats[-1])
        self.stats.rr_emitted += int(beats.shape[0])
        return self._block(arrival_s, rr_ms, beats, hr, contact=True)

    def _block(
        self,
        t_s: float,
        rr_ms: FloatArray,
        beats: FloatArray,
        hr: float | None,
        *,
        contact: bool,
    ) -> RrBlock:
        gap = self._gap_pending
        self._gap_pending = False
        if gap:
            self.stats.gaps_marked += 1
        return RrBlock(
            t_s=t_s,
            rr_ms=np.array(rr_ms, dtype=np.float64),
            beat_times_s=np.array(beats, dtype=np.float64),
            hr_bpm=hr,
            gap_before=gap,
            contact=contact,
        )
