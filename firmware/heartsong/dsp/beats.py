"""A bounded history of heart beats, split into unbroken segments, and interval cleaning.

Beats come from the PPG peak detector (a time only; the interval is the time since the
previous beat of the same segment) or from a wearable (a time and the interval it
measured). A *segment* is a run of beats without a gap: an interval never spans a gap and
successive differences are never taken across one.

Cleaning is an interim artefact screen, to be replaced by a validated correction: an
inter-beat interval (IBI) is *clean* when it is physiologically plausible (300 to 2000 ms,
i.e. 30 to 200 bpm) and differs by less than 30 % from the interval before it in the same
segment (a simplified form of the successive-difference rules of Malik et al. 1989,
"Heart rate variability in relation to prognosis after myocardial infarction: selection
of optimal processing techniques", Eur. Heart J. 10(12):1060). A missed or extra beat
therefore spoils two intervals: the wrong one and the next one.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = [
    "IBI_MAX_MS",
    "IBI_MAX_REL_CHANGE",
    "IBI_MIN_MS",
    "BeatHistory",
    "BeatWindow",
    "clean_ibi_mask",
    "clean_nn",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Shortest plausible inter-beat interval, in ms (200 bpm).
IBI_MIN_MS = 300.0
#: Longest plausible inter-beat interval, in ms (30 bpm).
IBI_MAX_MS = 2000.0
#: Largest accepted change from the previous interval, as a fraction of it.
IBI_MAX_REL_CHANGE = 0.3


@dataclass(frozen=True, slots=True)
class BeatWindow:
    """The beats of one time window, as parallel arrays in time order.

    Attributes
    ----------
    t_s:
        Beat times, monotonic seconds.
    ibi_ms:
        Interval ending at each beat, in ms; NaN for the first beat of a segment seen
        without its interval (PPG after a gap).
    segment:
        Segment id of each beat; equal ids mean no gap in between.
    """

    t_s: FloatArray
    ibi_ms: FloatArray
    segment: IntArray

    @property
    def n_beats(self) -> int:
        """Number of beats in the window."""
        return int(self.t_s.shape[0])


class BeatHistory:
    """The most recent beats, bounded in time and count, with gap-aware intervals.

    Parameters
    ----------
    span_s:
        Beats older than ``span_s`` seconds before the newest data time are dropped.
    max_beats:
        Hard bound on stored beats (a safety net against a runaway detector).
    """

    def __init__(self, span_s: float, max_beats: int) -> None:
        if not (math.isfinite(span_s) and span_s > 0.0):
            raise InputDataError("span_s", "a positive duration in seconds", span_s)
        if max_beats < 2:
            raise InputDataError("max_beats", "at least 2", max_beats)
        self.span_s = float(span_s)
        self._beats: deque[tuple[float, float, int]] = deque(maxlen=max_beats)
        self._segment = 0
        self._segment_open = False  # the current segment has a beat already

    def __len__(self) -> int:
        return len(self._beats)

    def __repr__(self) -> str:
        return f"BeatHistory(n={len(self._beats)}, segment={self._segment}, span_s={self.span_s})"

    @property
    def last_t_s(self) -> float | None:
        """Time of the newest beat in seconds, or None when empty."""
        return self._beats[-1][0] if self._beats else None

    def clear(self) -> None:
        """Forget every beat; the next one starts a new segment."""
        self._beats.clear()
        self.mark_gap()

    def mark_gap(self) -> None:
        """Note a gap: the next beat starts a new segment."""
        if self._segment_open:
            self._segment += 1
            self._segment_open = False

    def _accepts(self, t_s: float) -> bool:
        last = self.last_t_s
        if last is not None and t_s <= last:
            logger.debug("beat at %.3f s dropped: not after the previous (%.3f s)", t_s, last)
            return False
        return True

    def add_beat(self, t_s: float) -> bool:
        """Add a detected beat; its interval is the time since the segment's previous beat.

        Returns False (and stores nothing) if ``t_s`` is not after the newest beat.
        """
        if not self._accepts(t_s):
            return False
        ibi = math.nan
        if self._segment_open and self._beats:
            ibi = (t_s - self._beats[-1][0]) * 1000.0
        self._beats.append((t_s, ibi, self._segment))
        self._segment_open = True
        return True

    def add_interval(self, t_s: float, ibi_ms: float) -> bool:
        """Add a beat with the interval a wearable measured for it, in ms.

        Returns False (and stores nothing) if ``t_s`` is not after the newest beat.
        """
        if not self._accepts(t_s):
            return False
        self._beats.append((t_s, float(ibi_ms), self._segment))
        self._segment_open = True
        return True

    def prune(self, now_s: float) -> None:
        """Drop beats older than ``now_s - span_s`` (seconds)."""
        limit = now_s - self.span_s
        while self._beats and self._beats[0][0] < limit:
            self._beats.popleft()

    def window(self, start_s: float, end_s: float) -> BeatWindow:
        """Return the beats with ``start_s <= t <= end_s`` (seconds)."""
        rows = [b for b in self._beats if start_s <= b[0] <= end_s]
        return BeatWindow(
            t_s=np.array([r[0] for r in rows], dtype=np.float64),
            ibi_ms=np.array([r[1] for r in rows], dtype=np.float64),
            segment=np.array([r[2] for r in rows], dtype=np.int64),
        )


@njit(cache=True)
def _clean_ibi_kernel(
    ibi_ms: FloatArray, segment: IntArray, lo_ms: float, hi_ms: float, max_rel: float
) -> BoolArray:
    """Mark intervals plausible and close enough to the previous one of their segment."""
    n = ibi_ms.shape[0]
    clean = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        v = ibi_ms[i]
        if not (v >= lo_ms and v <= hi_ms):  # also False for NaN
            continue
        if i > 0 and segment[i] == segment[i - 1]:
            prev = ibi_ms[i - 1]
            if prev == prev and abs(v - prev) >= max_rel * prev:
                continue
        clean[i] = True
    return clean


def clean_ibi_mask(
    ibi_ms: FloatArray,
    segment: IntArray,
    lo_ms: float = IBI_MIN_MS,
    hi_ms: float = IBI_MAX_MS,
    max_rel_change: float = IBI_MAX_REL_CHANGE,
) -> BoolArray:
    """Return which inter-beat intervals pass the interim artefact screen.

    Parameters
    ----------
    ibi_ms:
        Intervals in ms, time order; NaN where there is no interval.
    segment:
        Segment id per interval (same length).
    lo_ms, hi_ms:
        Plausible range in ms (inclusive).
    max_rel_change:
        An interval must differ from the previous one of its segment by less than this
        fraction of the previous one (the first of a segment is judged on range alone).

    Returns
    -------
    BoolArray
        True for clean intervals (never for NaN).
    """
    ibi = np.ascontiguousarray(ibi_ms, dtype=np.float64)
    seg = np.ascontiguousarray(segment, dtype=np.int64)
    if ibi.ndim != 1 or seg.shape != ibi.shape:
        raise InputDataError("segment", f"one id per interval, shape {ibi.shape}", seg.shape)
    mask: BoolArray = _clean_ibi_kernel(ibi, seg, lo_ms, hi_ms, max_rel_change)
    return mask


def clean_nn(window: BeatWindow, clean: BoolArray) -> tuple[FloatArray, BoolArray]:
    """Return the clean intervals of a window and which successive pairs may be differenced.

    Parameters
    ----------
    window:
        The beats of the window.
    clean:
        Output of :func:`clean_ibi_mask` for ``window.ibi_ms``.

    Returns
    -------
    tuple of FloatArray and BoolArray
        The clean NN intervals in ms, and a mask of length ``n - 1`` that is True where
        two kept intervals were adjacent beats of the same segment (no rejected interval
        and no gap between them).
    """
    idx = np.flatnonzero(clean)
    nn = window.ibi_ms[idx]
    seg = window.segment[idx]
    valid: BoolArray = (np.diff(idx) == 1) & (seg[1:] == seg[:-1])
    return np.ascontiguousarray(nn), valid
