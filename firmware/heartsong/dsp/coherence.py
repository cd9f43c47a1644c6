"""Heart-rhythm coherence: how much of the NN series' power sits in one spectral peak.

HRV biofeedback devices (HeartMath's emWave and Inner Balance) score *coherence*, the
sine-wave-like heart rhythm that slow, even breathing near 6 breaths/min produces. The
published method (McCraty et al. 2009; HeartMath knowledge base: "the power spectrum of
the most current 64 seconds of IBI data ... re-sampled every 5 seconds"):

1. the power spectrum of the last 64 s of inter-beat intervals;
2. the highest peak in 0.04-0.26 Hz;
3. *peak power*: the power in a window 0.030 Hz wide centred on that peak;
4. *total power*: the power of the whole spectrum, 0.0033-0.4 Hz;
5. the coherence ratio ``CR = peak / (total - peak)``.

This module returns the bounded form ``score = peak / total = CR / (1 + CR)`` in [0, 1]
(0: no concentrated rhythm, 1: all power in one peak); HeartMath's displayed 0-16
"coherence score" is a proprietary mapping of CR and is not reproduced. The spectrum is
the Lomb-Scargle density of :mod:`heartsong.dsp.hrv_freq` (each segment detrended, so a
slow drift does not dilute the score; HeartMath interpolates at 2 Hz instead), on a grid
four times finer than the natural resolution so the 0.030 Hz window holds several
points. A pure sinusoid over 64 s scores about 0.9 (the part of its spectral main lobe
inside +-0.015 Hz), white noise about 0.1-0.2. Spans longer than 1.5 windows are scored
every 16 s over the preceding 64 s and the scores averaged, as a session average is
(HeartMath scores every 5 s; a quarter-window step averages to practically the same
value for less than a third of the work).

Reference: McCraty R, Atkinson M, Tomasino D, Bradley RT (2009) The coherent heart:
heart-brain interactions, psychophysiological coherence, and the emergence of
system-wide order. Integral Review 5(2):10-115.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp import hrv_freq
from heartsong.dsp.hrv_freq import (
    MIN_SEGMENT_SAMPLES,
    Spectrum,
    _psd_kernel,
    _scan_kernel,
    lomb_scargle_psd,
)
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = [
    "COHERENCE_PEAK_BAND_HZ",
    "COHERENCE_TOTAL_BAND_HZ",
    "COHERENCE_WINDOW_S",
    "MIN_COVERAGE_S",
    "coherence_from_psd",
    "coherence_from_spectrum",
    "hrv_coherence",
]

#: Band searched for the coherence peak, Hz.
COHERENCE_PEAK_BAND_HZ: tuple[float, float] = (0.04, 0.26)
#: Half width of the peak window, Hz (the window is 0.030 Hz wide).
COHERENCE_PEAK_HALF_WIDTH_HZ = 0.015
#: Band of the total power, Hz.
COHERENCE_TOTAL_BAND_HZ: tuple[float, float] = (0.0033, 0.4)
#: Length of one scored window, s.
COHERENCE_WINDOW_S = 64.0
#: Interval between scores over long spans, s.
COHERENCE_STEP_S = 16.0
#: Least seconds of NN intervals a score needs (three quarters of a window).
MIN_COVERAGE_S = 48.0
#: Frequency-grid points per natural resolution.
OVERSAMPLE = 4.0


@njit(cache=True, nogil=True)
def _coherence_kernel(
    psd: FloatArray,
    df_hz: float,
    peak_lo_hz: float,
    peak_hi_hz: float,
    half_width_hz: float,
    total_lo_hz: float,
    total_hi_hz: float,
) -> float:
    """Peak power over total power of a density on ``df_hz * (1, 2, ...)``; NaN if no power."""
    total = 0.0
    best = -1
    for k in range(psd.shape[0]):
        f = (k + 1) * df_hz
        if total_lo_hz <= f < total_hi_hz:
            total += psd[k]
        if peak_lo_hz <= f <= peak_hi_hz and (best < 0 or psd[k] > psd[best]):
            best = k
    if best < 0 or not total > 0.0:
        return math.nan
    f_peak = (best + 1) * df_hz
    peak = 0.0
    for k in range(psd.shape[0]):
        if abs((k + 1) * df_hz - f_peak) <= half_width_hz + 1e-12:
            peak += psd[k]
    return min(1.0, peak / total)


@njit(cache=True, nogil=True)
def _coherence_score_kernel(psd: FloatArray, df_hz: float) -> float:
    """``_coherence_kernel`` with this module's peak band, peak half width and total band."""
    return _coherence_kernel(
        psd,
        df_hz,
        COHERENCE_PEAK_BAND_HZ[0],
        COHERENCE_PEAK_BAND_HZ[1],
        COHERENCE_PEAK_HALF_WIDTH_HZ,
        COHERENCE_TOTAL_BAND_HZ[0],
        COHERENCE_TOTAL_BAND_HZ[1],
    )


def coherence_from_psd(psd: FloatArray, df_hz: float) -> float:
    """Return the coherence score in [0, 1] of an NN density on ``df_hz * (1, 2, ...)``.

    Parameters
    ----------
    psd:
        Power spectral density of the NN series in ms^2/Hz, up to at least 0.4 Hz.
    df_hz:
        Grid step in Hz.

    Returns
    -------
    float
        Peak power over total power (see the module docstring); NaN without power.
    """
    score: float = _coherence_score_kernel(psd, df_hz)
    return score


def coherence_from_spectrum(spectrum: Spectrum) -> float:
    """Return the coherence score in [0, 1] of an NN spectrum (see the module docstring).

    Parameters
    ----------
    spectrum:
        Power spectral density of the NN series in ms^2/Hz, covering at least 0.4 Hz.

    Returns
    -------
    float
        Peak power over total power; NaN when the total power is zero.
    """
    return coherence_from_psd(spectrum.psd, spectrum.df_hz)


def _score(t: FloatArray, nn: FloatArray, seg: npt.NDArray[np.int64]) -> float:
    """Coherence of one window, NaN when its NN intervals cover too little time."""
    if np.nansum(nn) / 1000.0 < MIN_COVERAGE_S:
        return math.nan
    spec = lomb_scargle_psd(t, nn, seg, f_max_hz=COHERENCE_TOTAL_BAND_HZ[1], oversample=OVERSAMPLE)
    return coherence_from_spectrum(spec)


def hrv_coherence(
    beat_t_s: npt.ArrayLike,
    nn_ms: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    window_s: float = COHERENCE_WINDOW_S,
    step_s: float = COHERENCE_STEP_S,
) -> float:
    """Return the heart-rhythm coherence score of an NN series, in [0, 1].

    Parameters
    ----------
    beat_t_s:
        Time of the beat ending each interval, in seconds, increasing.
    nn_ms:
        NN intervals in ms (non-finite values are left out).
    segment:
        Segment id per interval; each segment is detrended on its own. Default: one.
    window_s:
        Length of a scored window, in seconds (HeartMath: 64 s).
    step_s:
        Spans longer than ``1.5 * window_s`` are scored every ``step_s`` seconds over the
        preceding ``window_s`` and the scores averaged.

    Returns
    -------
    float
        The (mean) score; NaN when no window holds 48 s of NN intervals.
    """
    t = np.ascontiguousarray(beat_t_s, dtype=np.float64)
    nn = np.ascontiguousarray(nn_ms, dtype=np.float64)
    if t.ndim != 1 or nn.shape != t.shape:
        raise InputDataError("nn_ms", f"one interval per beat time, shape {t.shape}", nn.shape)
    seg = (
        np.zeros(t.shape[0], dtype=np.int64)
        if segment is None
        else np.ascontiguousarray(segment, dtype=np.int64)
    )
    if seg.shape != t.shape:
        raise InputDataError("segment", f"one id per beat, shape {t.shape}", seg.shape)
    if not (math.isfinite(window_s) and window_s > 0.0 and math.isfinite(step_s) and step_s > 0):
        raise InputDataError("window_s", "positive window and step in seconds", (window_s, step_s))
    if t.shape[0] < 3:
        return math.nan
    if t[-1] - t[0] <= 1.5 * window_s:
        return _score(t, nn, seg)
    ok, _, _, _ = _scan_kernel(t, nn)
    if not ok:
        raise InputDataError("beat_t_s", "finite, increasing times in seconds")
    ends = np.ascontiguousarray(np.arange(t[-1], t[0] + window_s - step_s, -step_s)[::-1])
    scores = np.empty(ends.shape[0])
    _scores_kernel(t, nn, seg, ends, window_s, scores)
    scores = scores[np.isfinite(scores)]
    return float(np.mean(scores)) if scores.size else math.nan


@njit(cache=True, nogil=True)
def _scores_kernel(
    t: FloatArray,
    nn: FloatArray,
    seg: npt.NDArray[np.int64],
    ends: FloatArray,
    window_s: float,
    out: FloatArray,
) -> None:
    """``out[w]``: the score of :func:`_score` over the beats in
    ``[ends[w] - window_s, ends[w]]`` (s), NaN where their NN intervals cover less than
    ``MIN_COVERAGE_S``; the windows of a long span in one call."""
    f_max = COHERENCE_TOTAL_BAND_HZ[1]
    for w in range(ends.shape[0]):
        lo = np.searchsorted(t, ends[w] - window_s, side="left")
        hi = np.searchsorted(t, ends[w], side="right")
        total = 0.0
        for i in range(lo, hi):
            if not math.isnan(nn[i]):
                total += nn[i]
        if total / 1000.0 < MIN_COVERAGE_S:
            out[w] = math.nan
            continue
        n = hi - lo
        span = t[hi - 1] - t[lo] if n > 1 else 0.0
        df = 1.0 / (OVERSAMPLE * span) if span > 0.0 else f_max
        psd = np.empty((1, max(1, math.floor(f_max / df + 1e-9))))
        y = np.empty((1, n))
        for i in range(n):
            y[0, i] = nn[lo + i]
        _psd_kernel(t[lo:hi], y, seg[lo:hi], MIN_SEGMENT_SAMPLES, df, 0, psd)
        out[w] = _coherence_score_kernel(psd[0], df)


# numba's cache watches a kernel's own file only: a digest of heartsong.dsp.hrv_freq,
# whose periodogram kernel _scores_kernel inlines, is frozen into the cache (see
# heartsong.numba_cache).
_SOURCES_DIGEST = sources_digest((hrv_freq,))


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of the hrv_freq source when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))
