"""The streaming PPG front end: band-pass, systolic peaks, and one measurement per pulse.

Samples are appended block by block and processed a chunk at a time, all three stages
in one kernel call (:func:`_front_end_kernel`: a Python call, and each argument it
passes, costs more than a small block's arithmetic); filter, detector and pulse state
carry over between chunks, so the beats do not depend on how the signal is split.

1. causal Butterworth band-pass 0.5-8 Hz (:mod:`heartsong.dsp.filters`);
2. systolic peaks, Elgendi et al. (2013) (:class:`heartsong.dsp.peaks.ElgendiPeakStream`);
3. per pulse:

   * amplitude and baseline, the respiratory modulations (the rules of
     :func:`heartsong.dsp.resp.ppg_pulse_features`: the systolic peak is the maximum of
     the band-passed signal from 0.05 s before to 0.2 s after the detection, the trough
     the minimum in the 1.5 s before it, after the previous peak);
   * the fiducial point: the systolic peak, or (``fiducial="upslope"``) the steepest
     point of the upstroke within 0.45 median intervals before it (the apex of the first
     derivative; Peralta et al. 2019, Physiol. Meas. 40(2):025007), refined by a parabola;
   * the beat's quality, the Pearson correlation of its pulse with a running template
     (Li & Clifford 2012, Physiol. Meas. 33(9):1491; Orphanidou et al. 2015, IEEE J.
     Biomed. Health Inform. 19(3):832): the pulse is sampled at ``N_PULSE_POINTS``
     points from 0.3 median intervals before the fiducial point to 0.5 after (the window
     of :mod:`heartsong.dsp.quality`), so pulses at any heart rate share one template,
     and the template is the point-wise median of the last ``TEMPLATE_PULSES`` kept
     pulses (the batch takes the median of 15 neighbours on each side; a stream has only
     those before). It is recomputed every ``TEMPLATE_EVERY`` kept pulses;
   * whether the pulse is plausible, as in the batch (:mod:`heartsong.dsp.batch`): a
     correlation below 0.5, or an amplitude outside 0.5-3 times the median of the last
     30 kept pulses, means the detection was not a pulse and the beat is dropped (the
     artefact correction then sees a missed beat). ``TEMPLATE_RESET_RUN`` such drops in a
     row mean the template, not the signal, is wrong: it is rebuilt from the next pulses.

A pulse is measured once the samples up to 0.5 intervals after it have arrived; a beat
decided near the end of a chunk waits for the next one. Beat positions are mapped to time
through the blocks they arrived in (:class:`SampleClock`), so a drift-corrected rate
enters the beat times.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp import filters, peaks
from heartsong.dsp.filters import (
    PPG_BAND_HZ,
    PPG_FILTER_ORDER,
    _cascade,
    butter_bandpass_sos,
    sos_filter_zi,
)
from heartsong.dsp.peaks import ElgendiPeakStream, _elgendi_kernel
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = [
    "AMPLITUDE_RANGE",
    "DROP_CORRELATION",
    "FIDUCIALS",
    "N_PULSE_POINTS",
    "PpgFrontEnd",
    "SampleClock",
    "ppg_bandpass_sos",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Upper band edge never above this fraction of the sampling rate (Nyquist is 0.5).
_MAX_HIGH_FRACTION = 0.45
#: Seconds of raw and filtered PPG kept behind a chunk for the pulse measurements.
_RING_EXTRA_S = 4.0
#: Pulse search windows around a detection, s (see :mod:`heartsong.dsp.resp`).
PEAK_SEARCH_BACK_S = 0.05
PEAK_SEARCH_AHEAD_S = 0.2
TROUGH_SEARCH_S = 1.5
#: Pulse window around the fiducial point, in median inter-beat intervals.
PRE_IBI = 0.3
POST_IBI = 0.5
#: Steepest-upstroke search before the systolic peak, in median inter-beat intervals.
UPSLOPE_SEARCH_IBI = 0.45
#: Points each pulse is sampled at (over ``PRE_IBI + POST_IBI`` intervals).
N_PULSE_POINTS = 32
#: Kept pulses in the template median (the batch takes 15 neighbours on each side, a
#: stream has the 15 before), and how often it is recomputed (pulses).
TEMPLATE_PULSES = 15
TEMPLATE_EVERY = 8
#: Dropped pulses in a row after which the template is rebuilt.
TEMPLATE_RESET_RUN = 8
#: Intervals in the running median that sets the pulse window.
IBI_MEDIAN_LEN = 15
#: Pulses whose correlation with the template is below this are not pulses (as batch).
DROP_CORRELATION = 0.5
#: Pulses whose amplitude is outside this range times the median of the last
#: ``AMPLITUDE_PULSES`` kept ones are not pulses (as batch); needs ``AMPLITUDE_MIN``.
AMPLITUDE_RANGE = (0.5, 3.0)
AMPLITUDE_PULSES = 30
AMPLITUDE_MIN = 5
#: Fiducial points a beat can be timed at.
FIDUCIALS = ("peak", "upslope")

# Integer state of the pulse kernel.
_I_PREV_PEAK = 0  # sample of the previous pulse's systolic peak (-1: none)
_I_N_IBI = 1  # intervals in the ring
_I_IBI_POS = 2  # next slot of the interval ring
_I_N_TPL = 3  # pulses in the template ring
_I_TPL_POS = 4  # next slot of the template ring
_I_TPL_SINCE = 5  # pulses added since the template was computed
_I_TPL_READY = 6  # 1 when the template holds at least 3 pulses
_I_N_AMP = 7
_I_AMP_POS = 8
_I_BAD_RUN = 9  # consecutive pulses dropped for their shape
_I_PREV_PEAK_FID = 10  # rounded detection of the previous pulse (upstroke search bound)
_I_N_WAIT = 11  # detections at the start of the detection buffer still to be measured
_N_ISTATE = 12
# Rows of the running-median windows: interval (samples) and amplitude, each in arrival
# order and sorted.
_M_IBI, _M_AMP = 0, 2
# Float state, then the parameters.
_F_PREV_POS = 0  # detection of the previous kept pulse (NaN: none since the restart)
_F_PARAMS = 1
_P_BACK, _P_AHEAD, _P_TROUGH = 0, 1, 2
_P_DROP, _P_AMP_LO, _P_AMP_HI, _P_UPSLOPE, _P_SETTLE = 3, 4, 5, 6, 7
_N_FSTATE = _F_PARAMS + 8


def ppg_bandpass_sos(fs_hz: float, order: int = PPG_FILTER_ORDER) -> FloatArray:
    """Design the PPG band-pass (0.5-8 Hz) for a sampling rate, as second-order sections.

    Parameters
    ----------
    fs_hz:
        Sampling rate in Hz. Below 17.8 Hz the upper edge drops to ``0.45 * fs_hz``.
    order:
        Butterworth prototype order (sections).

    Returns
    -------
    FloatArray
        Shape ``(order, 6)``; see :func:`heartsong.dsp.filters.butter_bandpass_sos`.
    """
    low_hz, high_hz = PPG_BAND_HZ
    if math.isfinite(fs_hz):
        high_hz = min(high_hz, _MAX_HIGH_FRACTION * fs_hz)
    return butter_bandpass_sos(low_hz, high_hz, fs_hz, order)


@njit("int64(float64[::1], float64, float64[::1], int64)", cache=True, nogil=True)
def _append_kernel(x: FloatArray, sign: float, buf: FloatArray, n: int) -> int:
    """Copy ``sign * x`` into ``buf[n:]``; return the new count, -1 if ``x`` is not
    finite, -2 if it does not fit (nothing is stored then)."""
    if n + x.shape[0] > buf.shape[0]:
        return -2
    for i in range(x.shape[0]):
        if not math.isfinite(x[i]):
            return -1
    for i in range(x.shape[0]):
        buf[n + i] = sign * x[i]
    count: int = n + x.shape[0]
    return count


@njit(cache=True, nogil=True)
def _ring_value(ring: FloatArray, i: float, mask: int) -> float:
    """Linear interpolation of a ring holding sample ``k`` at ``k & mask``."""
    k = math.floor(i)
    frac = i - k
    a = ring[k & mask]
    return float(a + frac * (ring[(k + 1) & mask] - a))


@njit(cache=True, nogil=True)
def _centre_and_scale(v: FloatArray) -> bool:
    """Subtract the mean and divide by the norm in place; False for a flat vector."""
    n = v.shape[0]
    mean = 0.0
    for k in range(n):
        mean += v[k]
    mean /= n
    ss = 0.0
    for k in range(n):
        v[k] -= mean
        ss += v[k] * v[k]
    if not ss > 0.0:
        return False
    scale = 1.0 / math.sqrt(ss)
    for k in range(n):
        v[k] *= scale
    return True


@njit(cache=True, nogil=True)
def _column_medians(rows: FloatArray, n: int, out: FloatArray) -> None:
    """Median of each column of the first ``n`` rows, into ``out`` (NaN when ``n == 0``).

    Found by rank, not by sorting each column: the values a stable sort would put in the
    middle are those with, before them, that many values not greater and, after them,
    values smaller, so ties (even zeros of either sign) resolve as in the sort and the
    result is the sorted median's exactly. The comparisons run along the columns without
    a branch each: a sort's branches follow the data, and are mispredicted in the stream,
    where every update sees new pulses.
    """
    m = out.shape[0]
    h = n // 2
    rank = np.empty(m, dtype=np.int64)
    lower = np.full(m, math.nan)
    upper = np.full(m, math.nan)
    for i in range(n):
        row = rows[i]
        rank[:] = 0
        for j in range(i):
            other = rows[j]
            for k in range(m):
                rank[k] += other[k] <= row[k]
        for j in range(i + 1, n):
            other = rows[j]
            for k in range(m):
                rank[k] += other[k] < row[k]
        for k in range(m):
            if rank[k] == h:
                upper[k] = row[k]
            elif rank[k] == h - 1:
                lower[k] = row[k]
    for k in range(m):
        out[k] = upper[k] if n % 2 else 0.5 * (lower[k] + upper[k])


@njit(cache=True, nogil=True)
def _update_template(pulses: FloatArray, n: int, template: FloatArray) -> bool:
    """Point-wise median of the first ``n`` pulse rows, centred and scaled."""
    _column_medians(pulses, n, template)
    return _centre_and_scale(template)


@njit(cache=True, nogil=True)
def _window_median(medians: FloatArray, row: int, n: int) -> float:
    """Median of the ``n`` values of a sliding window kept sorted in ``medians[row + 1]``."""
    s = medians[row + 1]
    h = n // 2
    return float(s[h]) if n % 2 else 0.5 * (s[h - 1] + s[h])


@njit(cache=True, nogil=True)
def _window_push(
    medians: FloatArray,
    row: int,
    istate: IntArray,
    i_n: int,
    i_pos: int,
    length: int,
    value: float,
) -> None:
    """Add ``value`` to the sliding window of the last ``length`` values in
    ``medians[row]`` (in arrival order, next slot ``istate[i_pos]``, count
    ``istate[i_n]``), keeping its sorted copy in ``medians[row + 1]``."""
    fifo = medians[row]
    s = medians[row + 1]
    n = istate[i_n]
    slot = istate[i_pos]
    if n == length:  # the oldest value leaves the sorted copy
        gone = fifo[slot]
        k = 0
        while s[k] != gone:
            k += 1
        for i in range(k, n - 1):
            s[i] = s[i + 1]
        n -= 1
    k = n
    while k > 0 and s[k - 1] > value:
        s[k] = s[k - 1]
        k -= 1
    s[k] = value
    fifo[slot] = value
    istate[i_pos] = (slot + 1) % length
    istate[i_n] = n + 1


@njit(cache=True, nogil=True)
def _pulses_kernel(
    waiting: FloatArray,
    found: FloatArray,
    x: FloatArray,
    filtered: FloatArray,
    rings: FloatArray,
    istate: IntArray,
    fstate: FloatArray,
    medians: FloatArray,
    pulses: FloatArray,
    clock: FloatArray,
    n_clock: int,
    first: int,
    upslope: bool,
    final: bool,
    out: FloatArray,
) -> tuple[int, int]:
    """Store new samples, then measure each detected pulse (``waiting``, then ``found``).

    ``x`` and ``filtered`` (raw and band-passed) are samples ``first, first + 1, ...``
    of the stream, stored in the power-of-two ``rings`` (rows: raw, band-passed; sample
    ``i`` at ``i & mask``) behind those before them. ``medians`` holds the recent
    intervals and amplitudes of kept pulses (see ``_window_push``), ``pulses`` the recent pulse
    shapes with the template in its last row, ``clock`` the sample clock (rows: first
    position, its time in s, sampling period in s; ``n_clock`` entries). Each kept pulse
    is written to ``out`` (rows: time in s, amplitude, baseline, template correlation,
    NaN while no template exists). Returns how many detections were measured (a pulse
    whose window reaches past the stored samples waits for the next call unless
    ``final``) and how many were kept.
    """
    mask = rings.shape[1] - 1
    for i in range(x.shape[0]):
        k = (first + i) & mask
        rings[0, k] = x[i]
        rings[1, k] = filtered[i]
    newest = first + x.shape[0]
    oldest = max(0, newest - rings.shape[1])
    raw = rings[0]
    filt = rings[1]
    params = fstate[_F_PARAMS:]
    template = pulses[pulses.shape[0] - 1]
    n_pulses = pulses.shape[0] - 1
    n_kept = 0
    n_wait = waiting.shape[0]
    n_points = template.shape[0]
    back = int(params[_P_BACK])
    ahead = int(params[_P_AHEAD])
    trough_back = int(params[_P_TROUGH])
    pulse = np.empty(n_points)
    for b in range(n_wait + found.shape[0]):
        p = waiting[b] if b < n_wait else found[b - n_wait]
        # Pulse window from the running median interval of the kept pulses (samples).
        ibi = (
            _window_median(medians, _M_IBI, istate[_I_N_IBI]) if istate[_I_N_IBI] >= 2 else math.nan
        )
        if ibi == ibi and not final and math.floor(p + POST_IBI * ibi) + 2 > newest - 1:
            return b, n_kept
        # Amplitude and baseline (the rules of heartsong.dsp.resp.ppg_pulse_features).
        amplitude = math.nan
        baseline = math.nan
        c = round(p)
        prev_peak = istate[_I_PREV_PEAK]
        lo = max(c - back, oldest, prev_peak + 1)
        hi = min(c + ahead, newest - 1)
        if hi >= lo:
            peak = lo
            peak_value = filt[lo & mask]
            for i in range(lo + 1, hi + 1):
                v = filt[i & mask]
                if v > peak_value:
                    peak = i
                    peak_value = v
            t_lo = max(peak - trough_back, oldest, prev_peak + 1)
            istate[_I_PREV_PEAK] = peak
            if t_lo < peak:
                trough = t_lo
                trough_value = filt[t_lo & mask]
                for i in range(t_lo + 1, peak):
                    v = filt[i & mask]
                    if v < trough_value:
                        trough = i
                        trough_value = v
                amplitude = peak_value - trough_value
                baseline = 0.5 * (raw[peak & mask] + raw[trough & mask])
        # Fiducial point: the detection, or the steepest upstroke before it.
        fid = p
        prev_c = istate[_I_PREV_PEAK_FID]
        istate[_I_PREV_PEAK_FID] = c
        if upslope and ibi == ibi:
            u_lo = max(c - round(params[_P_UPSLOPE] * ibi), prev_c + 1, oldest + 1)
            u_hi = min(c, newest - 2)
            if u_hi - u_lo >= 1:
                best = u_lo
                best_d = filt[(u_lo + 1) & mask] - filt[(u_lo - 1) & mask]
                for k in range(u_lo + 1, u_hi + 1):
                    d = filt[(k + 1) & mask] - filt[(k - 1) & mask]
                    if d > best_d:
                        best = k
                        best_d = d
                offset = 0.0
                if best - 2 >= oldest and best + 2 <= newest - 1:
                    left = filt[best & mask] - filt[(best - 2) & mask]
                    right = filt[(best + 2) & mask] - filt[best & mask]
                    denom = left - 2.0 * best_d + right
                    if denom < 0.0:
                        offset = min(0.5, max(-0.5, 0.5 * (left - right) / denom))
                fid = best + offset
        # Template correlation of the pulse window.
        corr = math.nan
        have_pulse = False
        if ibi == ibi:
            start = fid - PRE_IBI * ibi
            stop = fid + POST_IBI * ibi
            if start >= oldest and math.floor(stop) + 1 <= newest - 1:
                step = (stop - start) / (n_points - 1)
                for k in range(n_points):
                    pulse[k] = _ring_value(filt, start + k * step, mask)
                have_pulse = _centre_and_scale(pulse)
                if have_pulse and istate[_I_TPL_READY] == 1:
                    corr = 0.0
                    for k in range(n_points):
                        corr += pulse[k] * template[k]
        # Plausibility (as the batch drops beats that are not pulses).
        keep = p >= params[_P_SETTLE]
        shape_bad = corr < params[_P_DROP]
        n_amp = istate[_I_N_AMP]
        amp_ref = _window_median(medians, _M_AMP, n_amp) if n_amp >= AMPLITUDE_MIN else math.nan
        if keep and amplitude == amplitude:
            rel = amplitude / amp_ref  # NaN (no verdict) while too few pulses are known
            if rel < params[_P_AMP_LO] or rel > params[_P_AMP_HI]:
                keep = False
        if shape_bad:
            keep = False
            istate[_I_BAD_RUN] += 1
            if istate[_I_BAD_RUN] >= TEMPLATE_RESET_RUN:
                istate[_I_N_TPL] = 0
                istate[_I_TPL_POS] = 0
                istate[_I_TPL_READY] = 0
                istate[_I_N_AMP] = 0
                istate[_I_AMP_POS] = 0
                istate[_I_BAD_RUN] = 0
        else:
            istate[_I_BAD_RUN] = 0
        if not keep:
            continue
        k = n_clock - 1
        while k > 0 and clock[0, k] > fid:
            k -= 1
        out[0, n_kept] = clock[1, k] + (fid - clock[0, k]) * clock[2, k]
        out[1, n_kept] = amplitude
        out[2, n_kept] = baseline
        out[3, n_kept] = corr
        n_kept += 1
        # A kept pulse feeds the running medians.
        prev = fstate[_F_PREV_POS]
        if prev == prev:
            _window_push(medians, _M_IBI, istate, _I_N_IBI, _I_IBI_POS, IBI_MEDIAN_LEN, p - prev)
        fstate[_F_PREV_POS] = p
        if amplitude == amplitude:
            _window_push(medians, _M_AMP, istate, _I_N_AMP, _I_AMP_POS, AMPLITUDE_PULSES, amplitude)
        if have_pulse:
            slot = istate[_I_TPL_POS]
            for k in range(n_points):
                pulses[slot, k] = pulse[k]
            istate[_I_TPL_POS] = (slot + 1) % n_pulses
            n_tpl = min(istate[_I_N_TPL] + 1, n_pulses)
            istate[_I_N_TPL] = n_tpl
            istate[_I_TPL_SINCE] += 1
            if n_tpl < TEMPLATE_EVERY or istate[_I_TPL_SINCE] >= TEMPLATE_EVERY:
                istate[_I_TPL_SINCE] = 0
                ready = n_tpl >= 3 and _update_template(pulses, n_tpl, template)
                istate[_I_TPL_READY] = 1 if ready else 0
    return n_wait + found.shape[0], n_kept


@njit(cache=True, nogil=True)
def _front_end_kernel(
    x: FloatArray,
    sos: FloatArray,
    zi: FloatArray,
    filtered: FloatArray,
    detections: FloatArray,
    s_buf: FloatArray,
    y_buf: FloatArray,
    d_istate: IntArray,
    d_fstate: FloatArray,
    d_params: IntArray,
    beta: float,
    rings: FloatArray,
    istate: IntArray,
    fstate: FloatArray,
    medians: FloatArray,
    pulses: FloatArray,
    clock: FloatArray,
    n_clock: int,
    first: int,
    upslope: bool,
    final: bool,
    out: FloatArray,
) -> int:
    """One chunk through band-pass, peak detector and pulse measurements, in one call.

    The work of :func:`heartsong.dsp.filters._cascade` (``sos``, state ``zi``; the
    band-passed chunk goes to ``filtered[:n]``), of
    :func:`heartsong.dsp.peaks._elgendi_kernel` (buffers, state and ``d_params`` = peak
    window, beat window, mean window, minimum width, refractory period, all in samples;
    the new peaks go after the ``istate[_I_N_WAIT]`` waiting detections at the start of
    ``detections``) and of :func:`_pulses_kernel`, whose unmeasured detections are moved
    to the start of ``detections``. ``detections`` needs room for the waiting ones plus
    ``n + 1``. Returns the number of kept pulses written to ``out``, or -1 (nothing
    detected, nothing measured) when the band-passed chunk is not finite.
    """
    n = x.shape[0]
    n_wait = istate[_I_N_WAIT]
    n_found = 0
    if n:
        band = filtered[:n]
        _cascade(sos, x, band, zi, False)
        for i in range(n):
            if not math.isfinite(band[i]):
                return -1
        n_found = _elgendi_kernel(
            band,
            s_buf,
            y_buf,
            d_istate,
            d_fstate,
            d_params[0],
            d_params[1],
            d_params[2],
            d_params[3],
            d_params[4],
            beta,
            detections[n_wait:],
        )
    else:
        band = x
    m = n_wait + n_found
    done, kept = _pulses_kernel(
        detections[:n_wait],
        detections[n_wait:m],
        x,
        band,
        rings,
        istate,
        fstate,
        medians,
        pulses,
        clock,
        n_clock,
        first,
        upslope,
        final,
        out,
    )
    for i in range(done, m):
        detections[i - done] = detections[i]
    istate[_I_N_WAIT] = m - done
    return kept


# numba's cache watches a kernel's own file only: :func:`_front_end_kernel` inlines the
# band-pass of heartsong.dsp.filters and the detector of heartsong.dsp.peaks, so a digest
# of those files is frozen into its cache, and a change there recompiles this module's
# kernels (see :mod:`heartsong.dsp.window`, which does the same for its kernels).
_KERNEL_SOURCES = (filters, peaks)
_SOURCES_DIGEST = sources_digest(_KERNEL_SOURCES)


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of ``_KERNEL_SOURCES`` when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))


class SampleClock:
    """Maps sample positions of a stream to monotonic time, block by block.

    An entry (first sample position, its time, the sampling period) is recorded when a
    block does not start where the newest entry predicts (to 1 us), e.g. with a
    drift-corrected rate; blocks that continue it exactly cost nothing. A position maps
    to time through the newest entry not after it (older positions: extrapolated).
    """

    _CAPACITY = 512
    #: A block within this of the predicted start continues the current entry, s.
    TOLERANCE_S = 1e-6

    def __init__(self) -> None:
        #: Rows: first sample position, its time (s), sampling period (s); ``n`` used.
        self.table = np.zeros((3, self._CAPACITY))
        self.n = 0
        # The newest entry as Python numbers (NumPy scalar access costs more per block).
        self.start = 0  # its first sample position
        self.t0_s = math.nan  # that sample's time, s
        self.period_s = math.nan  # sampling period, s

    def clear(self) -> None:
        """Forget every entry (a new stream starts at position 0)."""
        self.n = 0
        self.t0_s = self.period_s = math.nan

    def note(self, start: int, t0_s: float, fs_hz: float) -> None:
        """A block starts at sample position ``start`` and time ``t0_s`` (s), at ``fs_hz``."""
        period = 1.0 / fs_hz
        predicted = self.t0_s + (start - self.start) * self.period_s
        if not (period == self.period_s and abs(t0_s - predicted) <= self.TOLERANCE_S):
            if self.n == self._CAPACITY:
                half = self._CAPACITY // 2
                self.table[:, :half] = self.table[:, half:]
                self.n = half
            self.table[:, self.n] = (start, t0_s, period)
            self.n += 1
            self.start, self.t0_s, self.period_s = start, t0_s, period

    def time_of(self, pos: float) -> float:
        """Monotonic seconds of sample position ``pos``."""
        k = self.n - 1
        while k > 0 and self.table[0, k] > pos:
            k -= 1
        return float(self.table[1, k] + (pos - self.table[0, k]) * self.table[2, k])


class PpgFrontEnd:
    """Band-pass, peak detector and pulse measurements of one unbroken PPG stream.

    Parameters
    ----------
    fs_hz:
        Sampling rate in Hz.
    sign:
        +1 for a signal whose pulses point up, -1 for raw reflective counts.
    chunk_s:
        Seconds of samples processed at once.
    fiducial:
        ``"peak"`` (systolic peak) or ``"upslope"`` (steepest upstroke), see the module
        docstring.
    """

    def __init__(self, fs_hz: float, sign: float, chunk_s: float, fiducial: str = "peak") -> None:
        if fiducial not in FIDUCIALS:
            raise InputDataError("fiducial", f"one of {FIDUCIALS}", fiducial)
        self.fs_hz = fs_hz
        self.sign = sign
        self.upslope = fiducial == "upslope"
        self.sos = ppg_bandpass_sos(fs_hz)
        self.zi_unit = sos_filter_zi(self.sos)
        self.zi = np.zeros_like(self.zi_unit)
        self.detector = ElgendiPeakStream(fs_hz)
        self.clock = SampleClock()
        self.chunk = max(1, round(chunk_s * fs_hz))
        self.pending = np.empty(2 * self.chunk + 64)
        self.n_pending = 0
        ring = 1 << int((chunk_s + _RING_EXTRA_S) * fs_hz + 64).bit_length()
        self.rings = np.zeros((2, ring))
        self.istate = np.zeros(_N_ISTATE, dtype=np.int64)
        self.fstate = np.zeros(_N_FSTATE)
        params = self.fstate[_F_PARAMS:]
        params[_P_BACK] = round(PEAK_SEARCH_BACK_S * fs_hz)
        params[_P_AHEAD] = round(PEAK_SEARCH_AHEAD_S * fs_hz)
        params[_P_TROUGH] = round(TROUGH_SEARCH_S * fs_hz)
        params[_P_DROP] = DROP_CORRELATION
        params[_P_AMP_LO], params[_P_AMP_HI] = AMPLITUDE_RANGE
        params[_P_UPSLOPE] = UPSLOPE_SEARCH_IBI
        self.medians = np.zeros((4, max(IBI_MEDIAN_LEN, AMPLITUDE_PULSES)))
        self.pulses = np.zeros((TEMPLATE_PULSES + 1, N_PULSE_POINTS))  # last row: template
        # The kernel's buffers: the band-passed chunk; the detections whose pulse window
        # is not complete yet (``istate[_I_N_WAIT]`` of them) followed by the chunk's new
        # ones; the kept pulses of the last call (see _process).
        self._filtered = np.empty(self.chunk)
        self._detections = np.empty(self.chunk + 64)
        self._out = np.empty((4, 64))
        self._detector_state = self.detector.kernel_state()
        self.fresh = True  # the next sample starts a new stream
        self.processed = 0
        self.restart(0.0)

    def restart(self, settle_samples: float) -> None:
        """Forget the stream: the next sample starts a new one (pending samples are lost).

        The pulse template and the running medians of interval and amplitude survive (the
        same finger after a gap); detections in the first ``settle_samples`` samples are
        not kept.
        """
        self.detector.reset()
        self.clock.clear()
        self.n_pending = 0
        self.fresh = True
        self.istate[_I_N_WAIT] = 0
        self.processed = 0  # samples run through filter and detector since the restart
        self.istate[_I_PREV_PEAK] = -1
        self.istate[_I_PREV_PEAK_FID] = -1
        self.fstate[_F_PREV_POS] = math.nan
        self.fstate[_F_PARAMS + _P_SETTLE] = settle_samples

    @property
    def appended(self) -> int:
        """Samples appended since the restart (processed or pending)."""
        return self.processed + self.n_pending

    @property
    def n_waiting(self) -> int:
        """Detections whose pulse window is not complete yet (measured at a later call)."""
        return int(self.istate[_I_N_WAIT])

    @property
    def waiting(self) -> FloatArray:
        """Positions (samples since the restart) of the :attr:`n_waiting` detections."""
        return self._detections[: self.n_waiting].copy()

    @property
    def template_ready(self) -> bool:
        """True once the running pulse template holds at least 3 pulses."""
        return bool(self.istate[_I_TPL_READY])

    def append(self, x: FloatArray) -> bool:
        """Append a block's samples; False (nothing appended) if one is not finite."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        if not x.flags.writeable:  # the kernel's signature takes writable arrays only
            x = x.copy()
        while True:
            count: int = _append_kernel(x, self.sign, self.pending, self.n_pending)
            if count != -2:
                break
            grown = np.empty(2 * (self.n_pending + x.shape[0]))
            grown[: self.n_pending] = self.pending[: self.n_pending]
            self.pending = grown
        if count < 0:
            return False
        self.n_pending = count
        return True

    def process(self, final: bool = False) -> FloatArray:
        """Run the pending samples through filter, detector and pulse measurements.

        A backlog longer than a chunk goes in chunk-sized pieces, so the rings always hold
        the samples a pulse needs. With ``final`` (the stream is about to break) the
        pulses still waiting for samples are measured with those there are.

        Returns
        -------
        FloatArray
            Shape ``(4, n)``, one column per kept pulse: time (monotonic seconds),
            amplitude, baseline, template correlation (a view, valid until the next call).
        """
        rows, kept = self.process_rows(final)
        return rows[:, :kept]

    def process_rows(self, final: bool = False) -> tuple[FloatArray, int]:
        """:meth:`process`, as an array whose first ``kept`` columns are the kept pulses
        (the array is the output buffer, valid until the next call) and ``kept``."""
        n = self.n_pending
        self.n_pending = 0
        if n <= self.chunk:
            kept = self._process(self.pending[:n], final)
            return self._out, kept  # (after the call: it may replace the buffer)
        parts = []
        for i in range(0, n, self.chunk):
            last = i + self.chunk >= n
            kept = self._process(self.pending[i : min(i + self.chunk, n)], final and last)
            parts.append(self._out[:, :kept].copy())  # each call reuses the output buffer
        rows = np.concatenate(parts, axis=1)
        return rows, rows.shape[1]

    def _process(self, x: FloatArray, final: bool) -> int:
        """Run ``x`` through the kernel; the kept pulses are the returned number of
        columns of ``self._out``."""
        n = x.shape[0]
        if n and self.fresh:
            self.zi[:] = self.zi_unit * x[0]  # start in steady state: no DC transient
            self.fresh = False
        n_wait = int(self.istate[_I_N_WAIT])
        need = n_wait + n + 1  # the waiting detections, and at most n + 1 new ones
        if need > self._detections.shape[0]:
            grown = np.empty(2 * need)
            grown[:n_wait] = self._detections[:n_wait]
            self._detections = grown
        if need > self._out.shape[1]:
            self._out = np.empty((4, 2 * need))
        if n > self._filtered.shape[0]:
            self._filtered = np.empty(n)
        s_buf, y_buf, d_istate, d_fstate, d_params, beta = self._detector_state
        first = self.processed
        kept: int = _front_end_kernel(
            x,
            self.sos,
            self.zi,
            self._filtered,
            self._detections,
            s_buf,
            y_buf,
            d_istate,
            d_fstate,
            d_params,
            beta,
            self.rings,
            self.istate,
            self.fstate,
            self.medians,
            self.pulses,
            self.clock.table,
            self.clock.n,
            first,
            self.upslope,
            final,
            self._out,
        )
        if kept < 0:
            raise InputDataError("filtered", "finite samples (no NaN or inf)")
        self.processed = first + n
        return kept
