"""PPG systolic peak detection after Elgendi et al. (2013), streaming and batch.

Elgendi M, Norton I, Brearley M, Abbott D, Schuurmans D (2013). "Systolic peak detection
in acceleration photoplethysmograms measured from emergency responders in tropical
conditions". PLOS ONE 8(10):e76585. On the band-passed PPG ``S``:

1. clip and square: ``y = max(S, 0)^2``;
2. two centred moving averages of ``y``: ``MA_peak`` over ``W1`` (111 ms, one systolic
   peak) and ``MA_beat`` over ``W2`` (667 ms, one beat);
3. threshold ``THR1 = MA_beat + beta * mean(y)`` with ``beta = 0.02``; samples where
   ``MA_peak > THR1`` form *blocks of interest*;
4. blocks narrower than ``W1`` are noise; the maximum of ``S`` in every other block is a
   systolic peak.

Two additions, both common practice since: a refractory period (a candidate closer than
0.3 s to the previous peak is dropped, e.g. a dicrotic wave), and sub-sample timing by
fitting a parabola through the maximum and its two neighbours (the vertex offset is
``(l - r) / (2 (l - 2c + r))`` samples; Jacobsen & Kootsookos 2007, IEEE Signal Process.
Mag. 24(3):123, here in the time domain).

Streaming differs from the paper in one place: ``mean(y)`` over the whole record cannot be
known in a stream, so it is a running mean over the last ``mean_window_s`` seconds
(exponentially weighted, an exact mean while fewer samples have been seen). The batch
function runs the very same kernel over the whole signal, so batch and streaming give
identical peaks for any split of the signal into blocks. The decision for a sample is
made ``W2 / 2`` samples after it arrives (the centred averages look ahead), so a peak is
reported about 0.3 s after its block of interest ends.

:func:`ppg_max_upslope` moves each peak back to the steepest point of its upstroke, a
fiducial point that follows the heart beat more closely than the systolic peak, whose
timing is shaped by reflected waves.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = ["UPSLOPE_SEARCH_IBI", "ElgendiPeakStream", "ppg_findpeaks_elgendi", "ppg_max_upslope"]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

#: The steepest upstroke is searched this far before each systolic peak, in median
#: inter-beat intervals (and never before the previous peak).
UPSLOPE_SEARCH_IBI = 0.45

# Indices into the integer state array.
_I_NEXT = 0  # absolute index of the next input sample
_I_IN_BLOCK = 1  # 1 while inside a block of interest
_I_BLOCK_START = 2  # first sample of the current block
_I_BEST = 3  # index of the block's maximum so far
_I_LAST_PEAK = 4  # index of the last accepted peak (-1: none yet)
_N_ISTATE = 5
# Indices into the float state array.
_F_SUM_PEAK = 0  # sum of y over the W1 window centred on the decision sample
_F_SUM_BEAT = 1  # sum of y over the W2 window centred on the decision sample
_F_MEAN = 2  # running mean of y
_F_BEST = 3  # value of S at the block's maximum
_F_LEFT = 4  # S one sample before the maximum
_F_RIGHT = 5  # S one sample after the maximum
_N_FSTATE = 6
# Recompute the running sums exactly every this many samples (a power of two), so
# rounding cannot accumulate over a night; keyed to the absolute index, so streaming and
# batch still agree bit for bit.
_RESYNC_MASK = 1023


@njit(cache=True, nogil=True)
def _ring_get(buf: FloatArray, idx: int, mask: int) -> float:
    """Value at absolute sample ``idx`` of a ring buffer; 0 before the start."""
    if idx < 0:
        return 0.0
    return float(buf[idx & mask])


@njit(cache=True, nogil=True)
def _parabolic_offset(left: float, centre: float, right: float) -> float:
    """Vertex of the parabola through three equally spaced samples, in samples from centre."""
    denom = left - 2.0 * centre + right
    if denom >= 0.0:
        return 0.0
    offset = 0.5 * (left - right) / denom
    return min(0.5, max(-0.5, offset))


@njit(cache=True, nogil=True)
def _elgendi_kernel(
    x: FloatArray,
    s_buf: FloatArray,
    y_buf: FloatArray,
    istate: IntArray,
    fstate: FloatArray,
    w_peak: int,
    w_beat: int,
    n_mean: int,
    min_width: int,
    refractory: int,
    beta: float,
    out: FloatArray,
) -> int:
    """Advance the detector over block ``x``; write peak positions to ``out``, return count.

    Positions are absolute sample indices (since the last reset) plus the parabolic
    sub-sample offset. All state lives in the arrays, so consecutive calls on consecutive
    blocks are equivalent to one call on their concatenation.
    """
    mask = s_buf.shape[0] - 1
    a_peak = (w_peak - 1) // 2
    b_peak = w_peak // 2
    a_beat = (w_beat - 1) // 2
    b_beat = w_beat // 2
    n_out = 0
    # The state lives in locals during the loop (registers, not a store and a reload per
    # sample on the running sums' dependency chains) and goes back to the arrays after.
    n = istate[_I_NEXT]
    in_block = istate[_I_IN_BLOCK]
    block_start = istate[_I_BLOCK_START]
    best_i = istate[_I_BEST]
    last_peak = istate[_I_LAST_PEAK]
    sum_peak = fstate[_F_SUM_PEAK]
    sum_beat = fstate[_F_SUM_BEAT]
    mean = fstate[_F_MEAN]
    best_v = fstate[_F_BEST]
    left = fstate[_F_LEFT]
    right = fstate[_F_RIGHT]
    for i in range(x.shape[0]):
        v = x[i]
        yv = v * v if v > 0.0 else 0.0
        s_buf[n & mask] = v
        y_buf[n & mask] = yv
        count = n + 1 if n + 1 < n_mean else n_mean
        mean += (yv - mean) / count
        # Centre of both windows: the newest sample ends the W2 window.
        m = n - b_beat
        n += 1
        sum_peak += _ring_get(y_buf, m + b_peak, mask) - _ring_get(y_buf, m - a_peak - 1, mask)
        sum_beat += yv - _ring_get(y_buf, m - a_beat - 1, mask)
        if (m & _RESYNC_MASK) == 0:
            acc = 0.0
            for j in range(m - a_peak, m + b_peak + 1):
                acc += _ring_get(y_buf, j, mask)
            sum_peak = acc
            acc = 0.0
            for j in range(m - a_beat, m + b_beat + 1):
                acc += _ring_get(y_buf, j, mask)
            sum_beat = acc
        if m < a_beat:
            continue  # the W2 window is not full yet

        thr = sum_beat / w_beat + beta * mean
        if sum_peak / w_peak > thr:
            sv = s_buf[m & mask]
            if in_block == 0:
                in_block = 1
                block_start = m
                best_i = m
                best_v = sv
                left = s_buf[(m - 1) & mask]  # m >= a_beat >= 1
                right = s_buf[(m + 1) & mask]
            elif sv > best_v:
                best_i = m
                best_v = sv
                left = s_buf[(m - 1) & mask]
                right = s_buf[(m + 1) & mask]
        elif in_block == 1:
            in_block = 0
            wide = m - block_start >= min_width
            if wide and (last_peak < 0 or best_i - last_peak >= refractory):
                out[n_out] = best_i + _parabolic_offset(left, best_v, right)
                n_out += 1
                last_peak = best_i
    istate[_I_NEXT] = n
    istate[_I_IN_BLOCK] = in_block
    istate[_I_BLOCK_START] = block_start
    istate[_I_BEST] = best_i
    istate[_I_LAST_PEAK] = last_peak
    fstate[_F_SUM_PEAK] = sum_peak
    fstate[_F_SUM_BEAT] = sum_beat
    fstate[_F_MEAN] = mean
    fstate[_F_BEST] = best_v
    fstate[_F_LEFT] = left
    fstate[_F_RIGHT] = right
    return n_out


def _window_samples(seconds: float, fs_hz: float, field: str, minimum: int) -> int:
    if not (math.isfinite(seconds) and seconds > 0.0):
        raise InputDataError(field, "a positive duration in seconds", seconds)
    n = round(seconds * fs_hz)
    if n < minimum:
        raise InputDataError(
            field,
            f"at least {minimum} samples at {fs_hz:g} Hz (>= {minimum / fs_hz:.3g} s)",
            seconds,
        )
    return int(n)


class ElgendiPeakStream:
    """Streaming systolic peak detector (Elgendi et al. 2013) over a band-passed PPG.

    Parameters
    ----------
    fs_hz:
        Sampling rate in Hz.
    peak_window_s:
        ``W1``, the systolic-peak moving average and the minimum block width, in seconds.
    beat_window_s:
        ``W2``, the beat moving average, in seconds.
    beta:
        Offset ``beta`` of threshold ``THR1``, as a fraction of the mean of the squared
        clipped signal (dimensionless).
    refractory_s:
        Minimum time between two accepted peaks, in seconds (0.3 s: 200 bpm).
    mean_window_s:
        Span of the running mean of the squared signal that replaces the paper's
        whole-record mean, in seconds.

    Notes
    -----
    Feed consecutive blocks of the *band-passed* signal (see
    :func:`heartsong.dsp.filters.butter_bandpass_sos`) to :meth:`process`; it returns the
    peaks it could decide on, as sample positions counted from the first sample after
    construction or :meth:`reset`, with a fractional part from parabolic interpolation.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        peak_window_s: float = 0.111,
        beat_window_s: float = 0.667,
        beta: float = 0.02,
        refractory_s: float = 0.3,
        mean_window_s: float = 10.0,
    ) -> None:
        if not (math.isfinite(fs_hz) and fs_hz > 0.0):
            raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
        if not (math.isfinite(beta) and beta >= 0.0):
            raise InputDataError("beta", "a non-negative threshold offset", beta)
        self.fs_hz = float(fs_hz)
        self.beta = float(beta)
        self.w_peak = _window_samples(peak_window_s, fs_hz, "peak_window_s", 1)
        self.w_beat = _window_samples(beat_window_s, fs_hz, "beat_window_s", 3)
        if self.w_beat <= self.w_peak:
            raise InputDataError(
                "beat_window_s",
                f"longer than peak_window_s ({peak_window_s} s)",
                beat_window_s,
            )
        self.refractory = _window_samples(refractory_s, fs_hz, "refractory_s", 1)
        self.n_mean = _window_samples(mean_window_s, fs_hz, "mean_window_s", 1)
        ring = 1 << int(self.w_beat + 4).bit_length()
        self._s_buf = np.zeros(ring)
        self._y_buf = np.zeros(ring)
        self._istate = np.zeros(_N_ISTATE, dtype=np.int64)
        self._fstate = np.zeros(_N_FSTATE)
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample is sample 0 of a new signal."""
        self._s_buf[:] = 0.0
        self._y_buf[:] = 0.0
        self._istate[:] = 0
        self._istate[_I_LAST_PEAK] = -1
        self._fstate[:] = 0.0

    @property
    def samples_seen(self) -> int:
        """Samples processed since construction or the last reset."""
        return int(self._istate[_I_NEXT])

    @property
    def latency_samples(self) -> int:
        """How many samples after its arrival a sample is judged (``W2 / 2``)."""
        return self.w_beat // 2

    def kernel_state(
        self,
    ) -> tuple[FloatArray, FloatArray, IntArray, FloatArray, IntArray, float]:
        """The detector as ``_elgendi_kernel`` takes it, for a caller that runs the kernel
        inside its own (the PPG front end): the two ring buffers, the integer and float
        state (all updated in place, and kept by :meth:`reset`), the windows (peak, beat,
        mean, minimum width, refractory period; samples) and ``beta``."""
        windows = np.array(
            [self.w_peak, self.w_beat, self.n_mean, self.w_peak, self.refractory], dtype=np.int64
        )
        return self._s_buf, self._y_buf, self._istate, self._fstate, windows, self.beta

    def process(self, filtered: FloatArray) -> FloatArray:
        """Consume the next block of the band-passed PPG; return newly decided peaks.

        Parameters
        ----------
        filtered:
            Consecutive samples of the band-passed PPG (any amplitude unit).

        Returns
        -------
        FloatArray
            Peak positions in samples since the last reset (fractional), increasing.
        """
        x = np.ascontiguousarray(filtered, dtype=np.float64)
        if x.ndim != 1:
            raise InputDataError("filtered", "a 1-D array of samples", x.shape)
        if not np.all(np.isfinite(x)):
            raise InputDataError("filtered", "finite samples (no NaN or inf)")
        out = np.empty(x.shape[0] + 1)
        n_out = _elgendi_kernel(
            x,
            self._s_buf,
            self._y_buf,
            self._istate,
            self._fstate,
            self.w_peak,
            self.w_beat,
            self.n_mean,
            self.w_peak,
            self.refractory,
            self.beta,
            out,
        )
        return out[:n_out].copy()


def ppg_findpeaks_elgendi(
    filtered: FloatArray,
    fs_hz: float,
    *,
    peak_window_s: float = 0.111,
    beat_window_s: float = 0.667,
    beta: float = 0.02,
    refractory_s: float = 0.3,
    mean_window_s: float = 10.0,
) -> FloatArray:
    """Find systolic peaks in a whole band-passed PPG (Elgendi et al. 2013).

    Parameters
    ----------
    filtered:
        The band-passed PPG (any amplitude unit), e.g. from
        :func:`heartsong.dsp.filters.sos_filtfilt`.
    fs_hz:
        Sampling rate in Hz.
    peak_window_s, beat_window_s, beta, refractory_s, mean_window_s:
        As for :class:`ElgendiPeakStream`.

    Returns
    -------
    FloatArray
        Peak positions in samples from the first sample (fractional), increasing. Peaks in
        the last ``W2 / 2`` samples cannot be decided and are not reported.
    """
    detector = ElgendiPeakStream(
        fs_hz,
        peak_window_s=peak_window_s,
        beat_window_s=beat_window_s,
        beta=beta,
        refractory_s=refractory_s,
        mean_window_s=mean_window_s,
    )
    return detector.process(filtered)


@njit(cache=True, nogil=True)
def _max_upslope_kernel(x: FloatArray, peaks: FloatArray, back: int) -> FloatArray:
    """Position of the largest centred difference ``x[k+1] - x[k-1]`` before each peak.

    The search runs over ``[p - back, p]`` (``p`` the rounded peak), after the previous
    peak; the maximum is refined by a parabola through it and its neighbours. A peak with
    fewer than 2 samples to search keeps its own position.
    """
    n = peaks.shape[0]
    last = x.shape[0] - 2
    out = np.empty(n)
    prev = -1
    for b in range(n):
        p = math.floor(peaks[b] + 0.5)
        lo = max(1, p - back, prev + 1)
        hi = min(p, last)
        prev = p
        if hi - lo < 1:
            out[b] = peaks[b]
            continue
        best = lo
        best_d = x[lo + 1] - x[lo - 1]
        for k in range(lo + 1, hi + 1):
            d = x[k + 1] - x[k - 1]
            if d > best_d:
                best = k
                best_d = d
        offset = 0.0
        if 2 <= best <= last - 1:
            offset = _parabolic_offset(x[best] - x[best - 2], best_d, x[best + 2] - x[best])
        out[b] = best + offset
    return out


def ppg_max_upslope(filtered: FloatArray, fs_hz: float, peaks_samples: npt.ArrayLike) -> FloatArray:
    """Return the point of steepest upstroke before each systolic peak, in samples.

    Parameters
    ----------
    filtered:
        The band-passed PPG (any amplitude unit), pulses pointing up.
    fs_hz:
        Sampling rate in Hz.
    peaks_samples:
        Systolic peak positions in samples (fractional allowed), increasing, e.g. from
        :func:`ppg_findpeaks_elgendi`.

    Returns
    -------
    FloatArray
        Per peak, the sample position (fractional, parabolic refinement) of the largest
        first derivative within ``UPSLOPE_SEARCH_IBI`` median inter-beat intervals before
        it: the maximum-slope fiducial point of the pulse wave, the apex of the first
        derivative (Peralta E, Lazaro J, Bailon R, Marozas V, Gil E (2019), "Optimal
        fiducial points for pulse rate variability analysis from forehead and finger
        PPG signals", Physiol. Meas. 40(2):025007, compare it with the systolic apex,
        the foot and others against the ECG; docs/VALIDATION.md has this project's
        comparison). Increasing like the peaks; a peak without room to search before
        it keeps its own position.
    """
    x = np.ascontiguousarray(filtered, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise InputDataError("filtered", "a 1-D array of finite samples")
    if not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
    peaks = np.ascontiguousarray(peaks_samples, dtype=np.float64)
    if peaks.ndim != 1 or not np.all(np.isfinite(peaks)):
        raise InputDataError("peaks_samples", "a 1-D array of finite sample positions")
    if peaks.size > 1 and np.any(np.diff(peaks) <= 0.0):
        raise InputDataError("peaks_samples", "strictly increasing sample positions")
    if peaks.size < 2:
        return peaks.copy()
    back = max(2, round(UPSLOPE_SEARCH_IBI * float(np.median(np.diff(peaks)))))
    out: FloatArray = _max_upslope_kernel(x, peaks, back)
    if np.any(np.diff(out) <= 0.0):
        logger.debug("upstroke points would reorder beats; keeping the peaks")
        return peaks.copy()
    return out
