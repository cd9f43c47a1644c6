"""Sample timing from the sensor's own clock: its period and phase estimated against the host.

The chip's oscillator runs up to a few percent off nominal; the host only sees how many
samples exist when it looks. :class:`SampleClock` fits the true period and the phase from
those observations so every sample gets a drift-corrected timestamp.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

import numpy as np

#: Sample-clock fit: window of the period (slope) and of the phase (lower envelope), and
#: refit cadence, in seconds; the shortest span before the period is fitted rather than
#: nominal, how far from nominal it may be, and the most observations kept.
CLOCK_SLOPE_WINDOW_S: Final = 120.0
CLOCK_PHASE_WINDOW_S: Final = 30.0
CLOCK_REFIT_S: Final = 1.0
CLOCK_MIN_SPAN_S: Final = 3.0
CLOCK_MAX_ERROR: Final = 0.05
CLOCK_MAX_POINTS: Final = 4096


class SampleClock:
    """Estimates when the chip completed each sample, from when the host saw how many.

    An observation says that by host time ``t`` the chip had completed ``n`` samples, so
    sample ``n - 1`` was complete at or before ``t``: every point (n - 1, t) lies on or
    above the line ``t = t0 + i * T`` of true completion times, above it by the host's
    delay in looking. ``T`` is the least-squares slope of the points over a long window
    (with late outliers trimmed), where delays average out; ``t0`` puts the line under
    the recent points, touching the least-delayed one (the lower envelope used for
    one-way clock estimation: Moon, Skelly & Towsley 1999).
    """

    def __init__(self, fs_nominal_hz: float) -> None:
        self._nominal = 1.0 / fs_nominal_hz
        self.period_s = self._nominal
        self.t0_s = 0.0
        self._ts: deque[float] = deque(maxlen=CLOCK_MAX_POINTS)
        self._ns: deque[int] = deque(maxlen=CLOCK_MAX_POINTS)
        self._refit_at = -math.inf
        self.fitted = False  # the period comes from observations, not the nominal rate
        self._first_index = 0
        self._anchored = False  # t0 rests on an observation, not on the start estimate

    def restart(self, t_first_s: float, first_index: int) -> None:
        """A new run of the sample clock: sample ``first_index`` completes at ``t_first_s``.

        Past observations are forgotten; the fitted period is kept (same oscillator). The
        start time is only a guess (the host may be slow to note it) until the first
        observation replaces it.
        """
        self._ts.clear()
        self._ns.clear()
        self.t0_s = t_first_s - first_index * self.period_s
        self._refit_at = -math.inf
        self._first_index = first_index
        self._anchored = False

    def observe(self, t_s: float, produced: int) -> None:
        """By host time ``t_s`` the chip had completed ``produced`` samples."""
        if produced <= 0 or (self._ns and produced <= self._ns[-1]):
            return
        self._ts.append(t_s)
        self._ns.append(produced)
        bound = t_s - (produced - 1) * self.period_s
        self.t0_s = min(self.t0_s, bound) if self._anchored else bound
        self._anchored = True
        if t_s >= self._refit_at:
            self._refit(t_s)
            self._refit_at = t_s + CLOCK_REFIT_S

    def _refit(self, now: float) -> None:
        while self._ts and self._ts[0] < now - CLOCK_SLOPE_WINDOW_S:
            self._ts.popleft()
            self._ns.popleft()
        t = np.fromiter(self._ts, dtype=np.float64, count=len(self._ts))
        x = np.fromiter(self._ns, dtype=np.float64, count=len(self._ns)) - 1.0
        if t.shape[0] >= 3 and t[-1] - t[0] >= CLOCK_MIN_SPAN_S:
            slope, icept = np.polyfit(x, t, 1)
            resid = t - (icept + slope * x)
            keep = resid <= np.median(resid) + 3.0 * 1.4826 * np.median(
                np.abs(resid - np.median(resid))
            ) + 0.5 * self._nominal
            if 3 <= np.count_nonzero(keep) < t.shape[0]:
                slope = np.polyfit(x[keep], t[keep], 1)[0]
            if abs(float(slope) / self._nominal - 1.0) <= CLOCK_MAX_ERROR:
                self.period_s = float(slope)
                self.fitted = True
        recent = t >= now - CLOCK_PHASE_WINDOW_S
        self.t0_s = float(np.min(t[recent] - x[recent] * self.period_s))

    @property
    def fs_hz(self) -> float:
        """The fitted sample rate in Hz."""
        return 1.0 / self.period_s

    def time_of(self, index: float) -> float:
        """Host time at which sample ``index`` was (or will be) complete, in seconds."""
        return self.t0_s + index * self.period_s

    def produced_by(self, t_s: float) -> int:
        """How many samples the chip had completed by host time ``t_s``."""
        return max(0, math.floor((t_s - self.t0_s) / self.period_s + 1e-6) + 1)

    def slack(self, t_s: float) -> int:
        """Samples by which :meth:`produced_by` may fall short at ``t_s``."""
        if self.fitted:
            return 2
        since = self.produced_by(t_s) - self._first_index
        return 2 + math.ceil(CLOCK_MAX_ERROR * max(0, since))
