"""A bounded history of heart beats, split into unbroken segments, and a simple screen.

Beats come from the PPG front end (a time only; the interval is the time since the
previous beat of the same segment, plus the pulse's amplitude, baseline and template
quality) or from a wearable (a time and the interval it measured). A *segment* is a run
of beats without a gap: an interval never spans a gap and successive differences are
never taken across one. The history keeps its beats in preallocated NumPy columns, so
taking a window costs two binary searches and a few slices. The streaming pipeline
corrects these detected beats with :mod:`heartsong.dsp.artifacts_stream`.

:func:`clean_ibi_mask` is a simple successive-difference screen for callers that want
one (the pipeline uses the artefact correction instead): an inter-beat interval (IBI) is
*clean* when it is physiologically plausible (300 to 2000 ms, i.e. 30 to 200 bpm) and
differs by less than 30 % from the interval before it in the same segment (a simplified
form of the rules of Malik et al. 1989, "Heart rate variability in relation to prognosis
after myocardial infarction: selection of optimal processing techniques", Eur. Heart J.
10(12):1060). A missed or extra beat therefore spoils two intervals.
"""

from __future__ import annotations

import logging
import math
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
    amplitude:
        PPG pulse amplitude (peak minus preceding trough of the band-passed signal, in
        ADC counts) per beat; NaN for beats from RR intervals or without a trough.
    baseline:
        PPG pulse baseline (mean of the raw signal at peak and trough, ADC counts, sign as
        fed to the detector) per beat; NaN like ``amplitude``.
    quality:
        Correlation of the beat's pulse with the running pulse template in [-1, 1]
        (:mod:`heartsong.dsp.ppg_stream`); NaN for RR beats and while no template exists.
    """

    t_s: FloatArray
    ibi_ms: FloatArray
    segment: IntArray
    amplitude: FloatArray
    baseline: FloatArray
    quality: FloatArray

    @property
    def n_beats(self) -> int:
        """Number of beats in the window."""
        return int(self.t_s.shape[0])


#: Columns of the history's float table.
_COL_T, _COL_IBI, _COL_AMP, _COL_BASE, _COL_Q = 0, 1, 2, 3, 4
_N_COLS = 5


class BeatHistory:
    """The most recent beats, bounded in time and count, with gap-aware intervals.

    Beats live in preallocated NumPy columns (time, interval, amplitude, baseline,
    segment) so a window is two binary searches and a few slices, whatever its length.

    Parameters
    ----------
    span_s:
        Beats older than ``span_s`` seconds before the newest data time are dropped.
    max_beats:
        Hard bound on stored beats (a safety net against a runaway detector): beyond it
        the oldest beat is dropped.
    """

    def __init__(self, span_s: float, max_beats: int) -> None:
        if not (math.isfinite(span_s) and span_s > 0.0):
            raise InputDataError("span_s", "a positive duration in seconds", span_s)
        if max_beats < 2:
            raise InputDataError("max_beats", "at least 2", max_beats)
        self.span_s = float(span_s)
        self.max_beats = int(max_beats)
        capacity = 2 * self.max_beats
        self._f = np.empty((_N_COLS, capacity))
        self._seg = np.empty(capacity, dtype=np.int64)
        self._lo = 0  # first live row
        self._hi = 0  # one past the last live row
        self._segment = 0
        self._segment_open = False  # the current segment has a beat already

    def __len__(self) -> int:
        return self._hi - self._lo

    def __repr__(self) -> str:
        return f"BeatHistory(n={len(self)}, segment={self._segment}, span_s={self.span_s})"

    @property
    def last_t_s(self) -> float | None:
        """Time of the newest beat in seconds, or None when empty."""
        return float(self._f[_COL_T, self._hi - 1]) if self._hi > self._lo else None

    def clear(self) -> None:
        """Forget every beat; the next one starts a new segment."""
        self._lo = self._hi = 0
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

    def _append(
        self, t_s: float, ibi_ms: float, amplitude: float, baseline: float, quality: float
    ) -> None:
        if self._hi - self._lo >= self.max_beats:
            self._lo += 1
        if self._hi == self._seg.shape[0]:  # compact: move the live rows to the front
            live = self._hi - self._lo
            self._f[:, :live] = self._f[:, self._lo : self._hi]
            self._seg[:live] = self._seg[self._lo : self._hi]
            self._lo, self._hi = 0, live
        row = self._hi
        self._f[_COL_T, row] = t_s
        self._f[_COL_IBI, row] = ibi_ms
        self._f[_COL_AMP, row] = amplitude
        self._f[_COL_BASE, row] = baseline
        self._f[_COL_Q, row] = quality
        self._seg[row] = self._segment
        self._hi = row + 1
        self._segment_open = True

    def add_beat(
        self,
        t_s: float,
        amplitude: float = math.nan,
        baseline: float = math.nan,
        quality: float = math.nan,
    ) -> bool:
        """Add a detected beat; its interval is the time since the segment's previous beat.

        ``amplitude``, ``baseline`` and ``quality`` describe the pulse (see
        :class:`BeatWindow`). Returns False (and stores nothing) if ``t_s`` is not after
        the newest beat.
        """
        if not self._accepts(t_s):
            return False
        ibi = math.nan
        if self._segment_open and self._hi > self._lo:
            ibi = (t_s - float(self._f[_COL_T, self._hi - 1])) * 1000.0
        self._append(t_s, ibi, amplitude, baseline, quality)
        return True

    def add_beats(
        self, t_s: FloatArray, amplitude: FloatArray, baseline: FloatArray, quality: FloatArray
    ) -> FloatArray:
        """Add detected beats (increasing times, float64) at once; return those accepted.

        As :meth:`add_beat` for each, in one kernel call: beats not after the newest stored
        one are dropped.
        """
        n = t_s.shape[0]
        if n == 0:
            return t_s
        if self._hi + n > self._seg.shape[0] or n > self.max_beats:
            # Rare (the table is full): the one-beat path compacts it.
            accepted = [
                float(t)
                for t, a, b, q in zip(
                    t_s.tolist(),
                    amplitude.tolist(),
                    baseline.tolist(),
                    quality.tolist(),
                    strict=True,
                )
                if self.add_beat(t, a, b, q)
            ]
            return np.array(accepted, dtype=np.float64)
        last = self.last_t_s
        first = _append_beats_kernel(
            self._f,
            self._seg,
            self._hi,
            t_s,
            amplitude,
            baseline,
            quality,
            math.nan if last is None else last,
            self._segment,
            self._segment_open and self._hi > self._lo,
        )
        added = n - first
        if added:
            self._hi += added
            self._lo = max(self._lo, self._hi - self.max_beats)
            self._segment_open = True
        return t_s[first:]

    def add_interval(self, t_s: float, ibi_ms: float) -> bool:
        """Add a beat with the interval a wearable measured for it, in ms.

        Returns False (and stores nothing) if ``t_s`` is not after the newest beat.
        """
        if not self._accepts(t_s):
            return False
        self._append(t_s, float(ibi_ms), math.nan, math.nan, math.nan)
        return True

    def prune(self, now_s: float) -> None:
        """Drop beats older than ``now_s - span_s`` (seconds)."""
        t = self._f[_COL_T, self._lo : self._hi]
        self._lo += int(t.searchsorted(now_s - self.span_s, side="left"))

    def window(self, start_s: float, end_s: float) -> BeatWindow:
        """Return (copies of) the beats with ``start_s <= t <= end_s`` (seconds)."""
        t = self._f[_COL_T, self._lo : self._hi]
        lo = self._lo + int(t.searchsorted(start_s, side="left"))
        hi = self._lo + int(t.searchsorted(end_s, side="right"))
        rows = self._f[:, lo:hi].copy()
        return BeatWindow(
            t_s=rows[_COL_T],
            ibi_ms=rows[_COL_IBI],
            segment=self._seg[lo:hi].copy(),
            amplitude=rows[_COL_AMP],
            baseline=rows[_COL_BASE],
            quality=rows[_COL_Q],
        )

    def tail(
        self, n: int
    ) -> tuple[FloatArray, FloatArray, IntArray, FloatArray, FloatArray, FloatArray]:
        """Views of the newest ``n`` beats: times (s), intervals (ms), segment ids,
        amplitudes, baselines, qualities. Valid until the next change to the history."""
        lo = max(self._hi - n, self._lo)
        f = self._f
        return (
            f[_COL_T, lo : self._hi],
            f[_COL_IBI, lo : self._hi],
            self._seg[lo : self._hi],
            f[_COL_AMP, lo : self._hi],
            f[_COL_BASE, lo : self._hi],
            f[_COL_Q, lo : self._hi],
        )


@njit(cache=True, nogil=True)
def _append_beats_kernel(
    table: FloatArray,
    seg: IntArray,
    row: int,
    t_s: FloatArray,
    amplitude: FloatArray,
    baseline: FloatArray,
    quality: FloatArray,
    last_t: float,
    segment: int,
    open_segment: bool,
) -> int:
    """Write the beats after ``last_t`` from ``row`` on; return the index of the first kept.

    Interval of each beat: time since the previous beat (the stored ``last_t`` for the
    first one when its segment is open, else NaN), in ms.
    """
    first = 0
    while first < t_s.shape[0] and t_s[first] <= last_t:
        first += 1
    prev = last_t if open_segment else math.nan
    for i in range(first, t_s.shape[0]):
        r = row + i - first
        table[_COL_T, r] = t_s[i]
        table[_COL_IBI, r] = (t_s[i] - prev) * 1000.0
        table[_COL_AMP, r] = amplitude[i]
        table[_COL_BASE, r] = baseline[i]
        table[_COL_Q, r] = quality[i]
        seg[r] = segment
        prev = t_s[i]
    return first


@njit(cache=True, nogil=True)
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
