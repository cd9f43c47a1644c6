"""Frequency-domain heart-rate variability: Lomb-Scargle power spectrum of the NN series.

The NN intervals are samples of an unevenly sampled signal (one value per beat, at the
beat's time). The Lomb-Scargle periodogram (Lomb 1976; Scargle 1982) fits a sinusoid at
each frequency by least squares directly to those samples, so no interpolation onto an
even grid is needed and missing beats or gaps simply leave samples out (Laguna, Moody &
Mark 1998 showed it is the better estimator for HRV when beats are missing). Before the
fit, each unbroken segment loses its own mean and linear trend (Task Force 1996 asks for
the removal of slow trends; a level step across a gap would otherwise appear as
low-frequency power).

Bands (Task Force 1996): VLF 0.0033-0.04 Hz, LF 0.04-0.15 Hz, HF 0.15-0.4 Hz; total
power is VLF + LF + HF (ms^2), LF/HF the ratio of the two band powers. The Task Force
needs about 1 min of recording for HF and 2 min for LF, and calls VLF from recordings of
5 min or less dubious; shorter coverage gives NaN here. Longer spans are cut into 5-min
windows with 50 % overlap whose spectra are averaged (Welch's 1967 averaging, applied to
Lomb-Scargle periodograms), which keeps the short-term standard values and bounds the
cost.

Power spectral density scaling: the classic periodogram ``P(f)`` (``A^2 N / 4`` for a
sinusoid of amplitude ``A`` in ``N`` samples) times ``2 * dt``, ``dt`` the mean sample
spacing, is a one-sided density in unit^2/Hz whose integral over frequency is the variance,
as for the evenly sampled periodogram (Parseval). Band powers are Riemann sums over a
grid finer than the natural resolution ``1 / span``.

References
----------
Lomb NR (1976) Least-squares frequency analysis of unequally spaced data. Astrophys Space
Sci 39:447-462.
Scargle JD (1982) Studies in astronomical time series analysis II. Astrophys J 263:835-853.
Laguna P, Moody GB, Mark RG (1998) Power spectral density of unevenly sampled data by
least-square analysis: performance and application to heart rate signals. IEEE Trans
Biomed Eng 45(6):698-715.
Task Force of the ESC and NASPE (1996) Heart rate variability: standards of measurement,
physiological interpretation and clinical use. Circulation 93(5):1043-1065.
Welch PD (1967) The use of fast Fourier transform for the estimation of power spectra.
IEEE Trans Audio Electroacoust 15(2):70-73.
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
    "HF_BAND_HZ",
    "LF_BAND_HZ",
    "MIN_SPAN_HF_S",
    "MIN_SPAN_LF_S",
    "MIN_SPAN_VLF_S",
    "VLF_BAND_HZ",
    "HrvFreq",
    "Spectrum",
    "band_power",
    "hrv_frequency",
    "hrv_lf_hf",
    "lomb_scargle_psd",
    "lomb_scargle_psds",
    "segments_from_holes",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Task Force (1996) bands, in Hz, lower edge inclusive, upper edge exclusive.
VLF_BAND_HZ: tuple[float, float] = (0.0033, 0.04)
LF_BAND_HZ: tuple[float, float] = (0.04, 0.15)
HF_BAND_HZ: tuple[float, float] = (0.15, 0.4)
#: Least coverage (seconds of clean NN intervals) for each band (Task Force 1996).
MIN_SPAN_HF_S = 60.0
MIN_SPAN_LF_S = 120.0
MIN_SPAN_VLF_S = 300.0
#: Coverage may fall short of a minimum span by this fraction (a 120-s window holds a
#: little less than 120 s of whole intervals).
SPAN_TOLERANCE = 0.1
#: Length of the windows whose spectra are averaged over long spans, in seconds.
AVERAGING_WINDOW_S = 300.0
#: Segments with fewer samples than this are left out of a spectrum (no trend to fit).
MIN_SEGMENT_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class Spectrum:
    """A one-sided power spectral density on an even frequency grid.

    Attributes
    ----------
    f_hz:
        Grid frequencies in Hz, ``f0_hz + k * df_hz``.
    psd:
        Density in (unit of the series)^2 per Hz, e.g. ms^2/Hz for NN intervals in ms.
    df_hz:
        Grid step in Hz (the width each grid point stands for in a band sum).
    n_samples:
        Samples that entered the fit (after short segments were left out).
    span_s:
        Time from the first to the last sample used, in seconds.
    """

    f_hz: FloatArray
    psd: FloatArray
    df_hz: float
    n_samples: int
    span_s: float


@dataclass(frozen=True, slots=True)
class HrvFreq:
    """Frequency-domain HRV of one NN series; NaN where the coverage is too short.

    Attributes
    ----------
    vlf_ms2, lf_ms2, hf_ms2:
        Power in the Task Force VLF, LF and HF bands, in ms^2.
    total_ms2:
        VLF + LF + HF, in ms^2 (needs the VLF coverage).
    lf_hf:
        LF / HF (dimensionless).
    lf_peak_hz, hf_peak_hz:
        Frequency of the largest density in the LF and HF bands, in Hz.
    coverage_s:
        Seconds of NN intervals that entered the analysis.
    n_windows:
        Number of averaged windows (1 for spans up to 1.5 averaging windows).
    """

    vlf_ms2: float
    lf_ms2: float
    hf_ms2: float
    total_ms2: float
    lf_hf: float
    lf_peak_hz: float
    hf_peak_hz: float
    coverage_s: float
    n_windows: int


@njit(cache=True, fastmath=True, nogil=True)
def _lomb_scargle_kernel(
    t: FloatArray, y: FloatArray, f0_hz: float, df_hz: float, out: FloatArray
) -> None:
    """Classic Lomb-Scargle periodograms of the rows of ``y`` at ``f0_hz + k * df_hz``.

    ``y`` has shape ``(n_series, n)``, all rows sampled at ``t``; ``out`` has shape
    ``(n_series, n_freq)``. Per series, ``P = ((sum y cos w(t - tau))^2 / sum cos^2 w(t - tau)
    + (sum y sin w(t - tau))^2 / sum sin^2 w(t - tau)) / 2`` with
    ``tan(2 w tau) = sum sin 2wt / sum cos 2wt`` (Scargle 1982, eq. 10). ``cos wt`` and
    ``sin wt`` advance from one frequency to the next by a complex rotation (one multiply
    per sample and frequency instead of two transcendental calls), and the rotation is
    shared by all series; so does the first frequency when it is a whole multiple of the
    step. ``wt`` is taken relative to the first sample, which the periodogram does not
    depend on.
    """
    n_series = y.shape[0]
    n = t.shape[0]
    two_pi = 2.0 * math.pi
    cr = np.empty(n)
    ci = np.empty(n)
    dr = np.empty(n)
    di = np.empty(n)
    for i in range(n):
        tr = t[i] - t[0]
        dr[i] = math.cos(two_pi * df_hz * tr)
        di[i] = math.sin(two_pi * df_hz * tr)
    # The first frequency is a whole multiple of the step in every caller: its rotation
    # is the step's raised to that power (complex products instead of two more
    # transcendental calls per sample).
    ratio = f0_hz / df_hz
    power = round(ratio)
    if power >= 1 and abs(ratio - power) <= 1e-9 * ratio:
        for i in range(n):
            re = dr[i]
            im = di[i]
            for _ in range(power - 1):
                re, im = re * dr[i] - im * di[i], re * di[i] + im * dr[i]
            cr[i] = re
            ci[i] = im
    else:
        for i in range(n):
            tr = t[i] - t[0]
            cr[i] = math.cos(two_pi * f0_hz * tr)
            ci[i] = math.sin(two_pi * f0_hz * tr)
    tiny = 1e-12 * n
    yc = np.empty(n_series)
    ys = np.empty(n_series)
    for k in range(out.shape[1]):
        # Three simple passes (each vectorises) rather than one with a nested loop.
        c2 = 0.0
        s2 = 0.0
        for i in range(n):
            c2 += (cr[i] - ci[i]) * (cr[i] + ci[i])
            s2 += 2.0 * cr[i] * ci[i]
        for j in range(n_series):
            acc_c = 0.0
            acc_s = 0.0
            for i in range(n):
                acc_c += y[j, i] * cr[i]
                acc_s += y[j, i] * ci[i]
            yc[j] = acc_c
            ys[j] = acc_s
        for i in range(n):
            c = cr[i]
            cr[i] = c * dr[i] - ci[i] * di[i]
            ci[i] = c * di[i] + ci[i] * dr[i]
        h = math.sqrt(c2 * c2 + s2 * s2)
        cos2 = c2 / h if h > 0.0 else 1.0
        # Half-angle: 2 w tau lies in (-pi, pi], so cos(w tau) >= 0 and sin(w tau) takes
        # the sign of sin(2 w tau).
        ct = math.sqrt(max(0.0, 0.5 * (1.0 + cos2)))
        st = math.sqrt(max(0.0, 0.5 * (1.0 - cos2)))
        if s2 < 0.0:
            st = -st
        den_c = 0.5 * (n + h)
        den_s = 0.5 * (n - h)
        for j in range(n_series):
            a = yc[j] * ct + ys[j] * st
            b = ys[j] * ct - yc[j] * st
            p = 0.0
            if den_c > tiny:
                p += a * a / den_c
            if den_s > tiny:
                p += b * b / den_s
            out[j, k] = 0.5 * p


@njit(cache=True, nogil=True)
def _scan_kernel(t: FloatArray, v: FloatArray) -> tuple[bool, int, float, float]:
    """Whether ``t`` is finite and increasing; count, sum and minimum of the finite ``v``."""
    ok = True
    n_finite = 0
    total = 0.0
    smallest = math.inf
    for i in range(t.shape[0]):
        if not math.isfinite(t[i]) or (i > 0 and not t[i] > t[i - 1]):
            ok = False
        if math.isfinite(v[i]):
            n_finite += 1
            total += v[i]
            smallest = min(smallest, v[i])
    return ok, n_finite, total, smallest


@njit(cache=True, nogil=True)
def _psd_kernel(
    t: FloatArray,
    y: FloatArray,
    seg: IntArray,
    min_len: int,
    df_hz: float,
    k0: int,
    out: FloatArray,
) -> tuple[int, float]:
    """Detrend each segment, then write Lomb-Scargle densities on ``k * df_hz`` to ``out``.

    ``y`` has shape ``(n_series, n)``; a sample is used only where every series is finite.
    Each run of equal ``seg`` ids with at least ``min_len`` such samples loses, per
    series, its least-squares line; shorter runs are left out. ``out[j, k - k0 - 1]`` is
    the density of series ``j`` at ``k * df_hz`` in unit^2/Hz (periodogram times twice
    the mean sample spacing; ``k0`` skips the lowest frequencies). Returns the number of
    samples used and their span in seconds; with fewer than ``min_len`` samples ``out``
    is zero.
    """
    n_series = y.shape[0]
    n = t.shape[0]
    tu = np.empty(n)
    yu = np.empty((n_series, n))
    m = 0
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and seg[stop] == seg[start]:
            stop += 1
        first = m
        for i in range(start, stop):
            finite = True
            for j in range(n_series):
                if not math.isfinite(y[j, i]):
                    finite = False
            if finite:
                tu[m] = t[i]
                for j in range(n_series):
                    yu[j, m] = y[j, i]
                m += 1
        k = m - first
        if k < min_len:
            m = first
        else:
            t_mean = 0.0
            for i in range(first, m):
                t_mean += tu[i]
            t_mean /= k
            stt = 0.0
            for i in range(first, m):
                stt += (tu[i] - t_mean) ** 2
            for j in range(n_series):
                y_mean = 0.0
                for i in range(first, m):
                    y_mean += yu[j, i]
                y_mean /= k
                sty = 0.0
                for i in range(first, m):
                    sty += (tu[i] - t_mean) * (yu[j, i] - y_mean)
                slope = sty / stt if stt > 0.0 else 0.0
                for i in range(first, m):
                    yu[j, i] = yu[j, i] - y_mean - slope * (tu[i] - t_mean)
        start = stop
    if m < min_len or not tu[m - 1] > tu[0]:
        out[:, :] = 0.0
        return m, 0.0
    span = tu[m - 1] - tu[0]
    _lomb_scargle_kernel(tu[:m], np.ascontiguousarray(yu[:, :m]), (k0 + 1) * df_hz, df_hz, out)
    scale = 2.0 * span / (m - 1)
    for j in range(n_series):
        for k in range(out.shape[1]):
            out[j, k] *= scale
    return m, span


@njit(cache=True, nogil=True)
def _band_kernel(
    psd: FloatArray, df_hz: float, low_hz: float, high_hz: float, k0: int = 0
) -> tuple[float, float]:
    """Power in ``[low_hz, high_hz)`` of a density on ``(k0 + k + 1) * df_hz`` and its
    peak frequency."""
    power = 0.0
    best = 0.0
    peak = math.nan
    for k in range(psd.shape[0]):
        f = (k0 + k + 1) * df_hz
        if f >= low_hz and f < high_hz:
            power += psd[k]
            if psd[k] > best:
                best = psd[k]
                peak = f
    return power * df_hz, peak


def _check_series(
    t_s: npt.ArrayLike, y: npt.ArrayLike, segment: npt.ArrayLike | None, y_name: str
) -> tuple[FloatArray, FloatArray, IntArray]:
    """Validate parallel series (times, values, segment ids); return them contiguous."""
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    v = np.ascontiguousarray(y, dtype=np.float64)
    if t.ndim != 1:
        raise InputDataError("beat_t_s", "a 1-D array of times in seconds", t.shape)
    if v.shape != t.shape:
        raise InputDataError(y_name, f"one value per time, shape {t.shape}", v.shape)
    if segment is None:
        seg = np.zeros(t.shape[0], dtype=np.int64)
    else:
        seg = np.ascontiguousarray(segment, dtype=np.int64)
        if seg.shape != t.shape:
            raise InputDataError("segment", f"one id per time, shape {t.shape}", seg.shape)
    ok, _, _, _ = _scan_kernel(t, v)
    if not ok:
        raise InputDataError("beat_t_s", "finite, increasing times in seconds")
    return t, v, seg


def _n_freq(f_max_hz: float, df_hz: float) -> int:
    return max(1, math.floor(f_max_hz / df_hz + 1e-9))


def lomb_scargle_psd(
    t_s: npt.ArrayLike,
    y: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    f_max_hz: float,
    df_hz: float | None = None,
    oversample: float = 4.0,
) -> Spectrum:
    """Return the Lomb-Scargle power spectral density of an unevenly sampled series.

    Parameters
    ----------
    t_s:
        Sample times in seconds, increasing.
    y:
        Sample values (any unit); non-finite values are left out.
    segment:
        Optional segment id per sample: each run of equal ids loses its own mean and
        linear trend, and runs of fewer than 3 samples are left out. Default: one segment.
    f_max_hz:
        Highest grid frequency in Hz.
    df_hz:
        Grid step in Hz; default ``1 / (oversample * span)``.
    oversample:
        Grid points per natural resolution ``1 / span`` when ``df_hz`` is not given.

    Returns
    -------
    Spectrum
        Grid ``df_hz, 2 df_hz, ... <= f_max_hz`` and the one-sided density in unit^2/Hz
        (see the module docstring for the scaling). All zeros when fewer than 3 samples
        remain.
    """
    if not (math.isfinite(f_max_hz) and f_max_hz > 0.0):
        raise InputDataError("f_max_hz", "a positive frequency in Hz", f_max_hz)
    if df_hz is not None and not (math.isfinite(df_hz) and 0.0 < df_hz <= f_max_hz):
        raise InputDataError("df_hz", f"a grid step in (0, {f_max_hz:g}] Hz", df_hz)
    if not (math.isfinite(oversample) and oversample >= 1.0):
        raise InputDataError("oversample", "a factor >= 1", oversample)
    t, v, seg = _check_series(t_s, y, segment, "y")
    if df_hz is None:
        span = float(t[-1] - t[0]) if t.shape[0] > 1 else 0.0
        df_hz = 1.0 / (oversample * span) if span > 0.0 else f_max_hz
    return _psd(t, v, seg, f_max_hz, df_hz)


def _psd(t: FloatArray, v: FloatArray, seg: IntArray, f_max_hz: float, df_hz: float) -> Spectrum:
    """:func:`lomb_scargle_psd` on validated arrays with a given grid step."""
    out = np.empty((1, _n_freq(f_max_hz, df_hz)))
    n_used, span = _psd_kernel(t, v.reshape(1, -1), seg, MIN_SEGMENT_SAMPLES, df_hz, 0, out)
    grid: FloatArray = df_hz * np.arange(1, out.shape[1] + 1, dtype=np.float64)
    return Spectrum(grid, out[0], df_hz, int(n_used), float(span))


def lomb_scargle_psds(
    t_s: FloatArray, ys: FloatArray, segment: IntArray, *, f_max_hz: float, df_hz: float
) -> tuple[FloatArray, int, float]:
    """Return the Lomb-Scargle densities of several series sampled at the same times.

    The fast path of :func:`lomb_scargle_psd` for callers that validated their inputs:
    a sample enters only where every series is finite, and the periodograms share one
    pass over the trigonometric rotations.

    Parameters
    ----------
    t_s:
        Sample times in seconds, increasing, float64, C-contiguous.
    ys:
        Shape ``(n_series, n)``, float64, C-contiguous.
    segment:
        Segment id per sample (int64); each run is detrended on its own.
    f_max_hz, df_hz:
        Highest grid frequency and grid step, in Hz.

    Returns
    -------
    tuple
        Densities of shape ``(n_series, n_freq)`` on ``df_hz * (1, 2, ...)`` in unit^2/Hz,
        the number of samples used and their span in seconds.
    """
    out = np.empty((ys.shape[0], _n_freq(f_max_hz, df_hz)))
    n_used, span = _psd_kernel(t_s, ys, segment, MIN_SEGMENT_SAMPLES, df_hz, 0, out)
    return out, int(n_used), float(span)


def band_power(spectrum: Spectrum, band_hz: tuple[float, float]) -> float:
    """Return the power in ``[low, high)`` Hz of a spectrum (density times grid step).

    Returns the unit^2 of the series (ms^2 for NN intervals in ms).
    """
    power, _ = _band_kernel(spectrum.psd, spectrum.df_hz, band_hz[0], band_hz[1])
    return float(power)


def segments_from_holes(
    beat_t_s: FloatArray, nn_ms: FloatArray, valid_diff: BoolArray, max_hole_s: float = 3.0
) -> IntArray:
    """Split a beat series into segments for spectral analysis at real gaps only.

    Parameters
    ----------
    beat_t_s:
        Beat times in seconds, increasing.
    nn_ms:
        Interval ending at each beat, in ms (NaN where the beat was rejected).
    valid_diff:
        Per beat, whether ``nn[i] - nn[i - 1]`` may be taken (length ``n``).
    max_hole_s:
        A new segment starts where ``valid_diff`` is False *and* the beat comes more than
        ``max_hole_s`` seconds after the previous one: a few rejected beats leave the
        series whole (the periodogram copes with missing samples), lost signal does not.

    Returns
    -------
    IntArray
        Segment id per beat, non-decreasing from 0.
    """
    t = np.ascontiguousarray(beat_t_s, dtype=np.float64)
    mask = np.ascontiguousarray(valid_diff, dtype=np.bool_)
    if mask.shape != t.shape or np.shape(nn_ms) != t.shape:
        raise InputDataError("valid_diff", f"one flag per beat, shape {t.shape}", mask.shape)
    out = np.empty(t.shape[0], dtype=np.int64)
    _segments_kernel(t, mask, max_hole_s, out)
    return out


@njit(cache=True, nogil=True)
def _segments_kernel(
    t: FloatArray, valid_diff: BoolArray, max_hole_s: float, out: IntArray
) -> None:
    """Segment ids that advance where a difference is invalid across a long hole."""
    seg = 0
    for i in range(t.shape[0]):
        if i > 0 and not valid_diff[i] and t[i] - t[i - 1] > max_hole_s:
            seg += 1
        out[i] = seg


def _windows(t: FloatArray, length_s: float) -> list[tuple[int, int]]:
    """Index ranges of ``length_s`` windows with 50 % overlap, the last ending at ``t[-1]``."""
    start, stop = float(t[0]), float(t[-1])
    if stop - start <= 1.5 * length_s:
        return [(0, t.shape[0])]
    starts = [*np.arange(start, stop - length_s, length_s / 2.0).tolist(), stop - length_s]
    return [
        (int(t.searchsorted(s, side="left")), int(t.searchsorted(s + length_s, side="right")))
        for s in starts
    ]


def hrv_frequency(
    beat_t_s: npt.ArrayLike,
    nn_ms: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    window_s: float = AVERAGING_WINDOW_S,
    oversample: float = 1.0,
) -> HrvFreq:
    """Compute Task Force (1996) frequency-domain HRV from NN intervals and their times.

    Parameters
    ----------
    beat_t_s:
        Time of the beat that ends each NN interval, in seconds, increasing.
    nn_ms:
        NN intervals in ms (non-finite values are left out).
    segment:
        Segment id per interval (equal ids: no gap in between); each segment is detrended
        on its own. Default: one segment.
    window_s:
        Spans longer than 1.5 times this are analysed in windows of this length (50 %
        overlap) whose spectra are averaged, in seconds.
    oversample:
        Frequency grid points per natural resolution ``1 / span``. Band powers need none:
        the periodogram of a sinusoid sampled at the natural resolution sums to its power
        exactly.

    Returns
    -------
    HrvFreq
        Band powers in ms^2 from the Lomb-Scargle density; NaN when the coverage (sum of
        the NN intervals used) is below 60 s for HF, 120 s for LF and LF/HF, 300 s for
        VLF and total power (each less a 10 % tolerance).
    """
    if not (math.isfinite(window_s) and window_s >= MIN_SPAN_LF_S):
        raise InputDataError("window_s", f"a duration >= {MIN_SPAN_LF_S:g} s", window_s)
    if not (math.isfinite(oversample) and oversample >= 1.0):
        raise InputDataError("oversample", "a factor >= 1", oversample)
    t, nn, seg = _check_series(beat_t_s, nn_ms, segment, "nn_ms")
    _, n_finite, total_ms, smallest = _scan_kernel(t, nn)
    if not smallest > 0.0:
        raise InputDataError("nn_ms", "positive NN intervals in ms")
    coverage = float(total_ms) / 1000.0
    nan = math.nan
    if n_finite < 2 * MIN_SEGMENT_SAMPLES:
        return HrvFreq(nan, nan, nan, nan, nan, nan, nan, coverage, 0)

    f_max = HF_BAND_HZ[1]
    windows = _windows(t, window_s)
    if len(windows) == 1:
        df = 1.0 / (oversample * float(t[-1] - t[0]))
        psd = _psd(t, nn, seg, f_max, df).psd
        n_used = 1
    else:
        df = 1.0 / (oversample * window_s)
        acc = np.zeros(_n_freq(f_max, df))
        n_used = 0
        for lo, hi in windows:
            part = nn[lo:hi]
            if np.nansum(part) / 1000.0 < (1.0 - SPAN_TOLERANCE) * window_s:
                continue  # a window with little signal would bias the average
            acc += _psd(t[lo:hi], part, seg[lo:hi], f_max, df).psd
            n_used += 1
        if n_used == 0:  # fragmented record: one periodogram over everything
            acc = _psd(t, nn, seg, f_max, df).psd
            n_used = 1
        psd = acc / n_used

    def band(limits: tuple[float, float], minimum_s: float) -> tuple[float, float]:
        if coverage < (1.0 - SPAN_TOLERANCE) * minimum_s:
            return nan, nan
        power, peak = _band_kernel(psd, df, limits[0], limits[1])
        return float(power), float(peak)

    vlf, _ = band(VLF_BAND_HZ, MIN_SPAN_VLF_S)
    lf, lf_peak = band(LF_BAND_HZ, MIN_SPAN_LF_S)
    hf, hf_peak = band(HF_BAND_HZ, MIN_SPAN_HF_S)
    return HrvFreq(
        vlf_ms2=vlf,
        lf_ms2=lf,
        hf_ms2=hf,
        total_ms2=vlf + lf + hf,
        lf_hf=lf / hf if hf > 0.0 else nan,
        lf_peak_hz=lf_peak,
        hf_peak_hz=hf_peak,
        coverage_s=coverage,
        n_windows=n_used,
    )


def hrv_lf_hf(beat_t_s: FloatArray, nn_ms: FloatArray, segment: IntArray) -> float:
    """Return the LF/HF ratio of :func:`hrv_frequency`, computing only the two bands.

    The fast path for a caller that validated its series (float64 times and intervals,
    int64 segment ids, C-contiguous) and checked the coverage (at least
    ``(1 - SPAN_TOLERANCE) * MIN_SPAN_LF_S`` seconds of intervals): a span up to 1.5
    averaging windows is one periodogram on the natural-resolution grid, as in
    :func:`hrv_frequency`, which handles longer spans.

    Returns
    -------
    float
        LF / HF (dimensionless); NaN without high-frequency power or with fewer than 6
        intervals.
    """
    t = beat_t_s
    if t.shape[0] < 2 or t[-1] - t[0] > 1.5 * AVERAGING_WINDOW_S:
        return hrv_frequency(t, nn_ms, segment).lf_hf
    df = 1.0 / float(t[-1] - t[0])
    k0 = max(0, math.ceil(LF_BAND_HZ[0] / df - 1e-9) - 1)  # the VLF band is not needed
    out = np.empty((1, max(1, _n_freq(HF_BAND_HZ[1], df) - k0)))
    n_used, _ = _psd_kernel(t, nn_ms.reshape(1, -1), segment, MIN_SEGMENT_SAMPLES, df, k0, out)
    if n_used < 2 * MIN_SEGMENT_SAMPLES:
        return math.nan
    lf, _ = _band_kernel(out[0], df, LF_BAND_HZ[0], LF_BAND_HZ[1], k0)
    hf, _ = _band_kernel(out[0], df, HF_BAND_HZ[0], HF_BAND_HZ[1], k0)
    return float(lf / hf) if hf > 0.0 else math.nan
