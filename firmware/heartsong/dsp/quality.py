"""PPG pulse templates: per-beat quality, template alignment of beat times, window quality.

Per beat, after Li & Clifford (2012) and Orphanidou et al. (2015): every pulse is cut out
around its systolic peak, the *template* is the sample-wise median of the pulses around
it, and the beat's quality is the Pearson correlation of its pulse with that template.

* Li Q, Clifford GD (2012). "Dynamic time warping and machine learning for signal quality
  assessment of pulsatile signals". Physiol. Meas. 33(9):1491-1501.
* Orphanidou C, Bonnici T, Charlton P, Clifton D, Vallance D, Tarassenko L (2015).
  "Signal-quality indices for the electrocardiogram and photoplethysmogram: derivation
  and applications to wireless monitoring". IEEE J. Biomed. Health Inform. 19(3):832-838
  (template = average beat, acceptable when the mean correlation is at least 0.86).

Here the template is a running median over the ``n_template`` neighbouring pulses (the
beat itself excluded), so slow changes of pulse shape over a night do not count against
the signal and one odd pulse cannot spoil its neighbours' template. The pulse window runs
from ``0.3`` to ``0.5`` median inter-beat intervals around the peak.

The same templates refine the beat times (:func:`ppg_align_beats`): every pulse is
shifted, with sub-sample resolution, to the lag that maximises its correlation with the
template of its neighbours (a matched filter: Woody CD (1967), "Characterization of an
adaptive filter for the analysis of variable latency neuroelectric signals", Med. Biol.
Eng. 5:539-553). A single fiducial sample is disturbed by noise and by the ADC step
(10-bit monitors); the whole pulse shape averages both out, which matters for RMSSD,
where timing noise of standard deviation ``s`` adds about ``sqrt(6) s`` (the successive
difference of an interval involves three beat times).

Per window, the quality is the share of beats whose correlation reaches the threshold,
reduced by the share of intervals the artefact correction had to change:
``q = (n_good / n_beats) * (1 - artifact_share)``, in [0, 1].
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = ["BEAT_QUALITY_MIN", "beat_quality", "ppg_align_beats", "window_quality"]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

#: Correlation from which a pulse counts as good (Orphanidou et al. 2015 use 0.86 for the
#: mean over a window; a single pulse is allowed a little less).
BEAT_QUALITY_MIN = 0.8
#: Pulse window around the systolic peak, in median inter-beat intervals.
PRE_IBI = 0.3
POST_IBI = 0.5


@njit(cache=True)
def _pulse_matrix_kernel(x: FloatArray, centres: IntArray, pre: int, post: int) -> FloatArray:
    """Cut ``x[c - pre : c + post + 1]`` for every centre; NaN rows where it does not fit."""
    n = centres.shape[0]
    width = pre + post + 1
    out = np.full((n, width), np.nan)
    for i in range(n):
        lo = centres[i] - pre
        if lo < 0 or centres[i] + post >= x.shape[0]:
            continue
        for k in range(width):
            out[i, k] = x[lo + k]
    return out


@njit(cache=True)
def _corr(a: FloatArray, b: FloatArray) -> float:
    """Pearson correlation of two equal-length vectors; NaN if either is constant."""
    n = a.shape[0]
    ma = 0.0
    mb = 0.0
    for k in range(n):
        ma += a[k]
        mb += b[k]
    ma /= n
    mb /= n
    sab = 0.0
    saa = 0.0
    sbb = 0.0
    for k in range(n):
        da = a[k] - ma
        db = b[k] - mb
        sab += da * db
        saa += da * da
        sbb += db * db
    if saa <= 0.0 or sbb <= 0.0:
        return math.nan
    return sab / math.sqrt(saa * sbb)


@njit(cache=True)
def _beat_quality_kernel(pulses: FloatArray, half: int) -> FloatArray:
    """Correlation of each pulse with the median of up to ``2 * half`` neighbours."""
    n = pulses.shape[0]
    width = pulses.shape[1]
    q = np.full(n, np.nan)
    col = np.empty(2 * half)
    template = np.empty(width)
    for i in range(n):
        if np.isnan(pulses[i, 0]):
            continue
        lo = max(0, i - half)
        hi = min(n, i + half + 1)
        for k in range(width):
            m = 0
            for j in range(lo, hi):
                if j != i and not np.isnan(pulses[j, 0]):
                    col[m] = pulses[j, k]
                    m += 1
            if m == 0:
                template[k] = np.nan
            else:
                template[k] = np.median(col[:m])
        if np.isnan(template[0]):
            continue
        q[i] = _corr(pulses[i], template)
    return q


def beat_quality(
    x_filtered: FloatArray,
    fs_hz: float,
    peaks_samples: npt.ArrayLike,
    *,
    n_template: int = 30,
) -> FloatArray:
    """Return each beat's correlation with the median template of its neighbours.

    Parameters
    ----------
    x_filtered:
        The band-passed PPG (any amplitude unit).
    fs_hz:
        Sampling rate in Hz.
    peaks_samples:
        Systolic peak positions in samples (fractional allowed), increasing.
    n_template:
        Number of neighbouring pulses (half before, half after) in the template.

    Returns
    -------
    FloatArray
        One Pearson correlation in [-1, 1] per beat; NaN where the pulse window does not
        fit in the signal, the pulse is flat, or no neighbour exists.
    """
    x, peaks = _check_inputs(x_filtered, fs_hz, peaks_samples, n_template)
    if peaks.size < 2:
        return np.full(peaks.size, np.nan)
    pre, post = _pulse_span(peaks)
    centres = np.round(peaks).astype(np.int64)
    pulses = _pulse_matrix_kernel(x, centres, pre, post)
    q: FloatArray = _beat_quality_kernel(pulses, max(1, n_template // 2))
    return q


@njit(cache=True)
def _sample_pulses_kernel(x: FloatArray, pos: FloatArray, first: int, width: int) -> FloatArray:
    """Sample ``x`` at ``pos[i] + first + k`` (linear interpolation), ``k < width``.

    Rows whose span leaves the signal are NaN.
    """
    n = pos.shape[0]
    last_idx = x.shape[0] - 1
    out = np.full((n, width), np.nan)
    for i in range(n):
        start = pos[i] + first
        if start < 0.0 or start + width - 1 > last_idx:
            continue
        base = int(start)  # start >= 0: truncation is the floor
        frac = start - base
        for k in range(width):
            j = base + k
            if j + 1 <= last_idx:
                out[i, k] = x[j] + frac * (x[j + 1] - x[j])
            else:
                out[i, k] = x[j]
    return out


@njit(cache=True)
def _align_kernel(
    pulses: FloatArray, half: int, max_lag: int, min_neighbours: int
) -> tuple[FloatArray, FloatArray]:
    """Lag (samples) and correlation that best match each pulse to its neighbours' template.

    ``pulses`` rows are sampled ``max_lag`` samples wider than the template on each side.
    The template is the median of up to ``2 * half`` neighbouring rows (the pulse itself
    excluded) over the central columns; the lag maximising the Pearson correlation is
    refined by a parabola through the best integer lag and its neighbours.
    """
    n = pulses.shape[0]
    width = pulses.shape[1] - 2 * max_lag
    lags = np.zeros(n)
    corr = np.full(n, np.nan)
    col = np.empty(2 * half)
    template = np.empty(width)
    c = np.empty(2 * max_lag + 1)
    for i in range(n):
        if np.isnan(pulses[i, 0]):
            continue
        lo = max(0, i - half)
        hi = min(n, i + half + 1)
        m = 0
        for k in range(width):
            m = 0
            for j in range(lo, hi):
                if j != i and not np.isnan(pulses[j, 0]):
                    col[m] = pulses[j, k + max_lag]
                    m += 1
            if m > 0:
                template[k] = np.median(col[:m])
        if m < min_neighbours:
            continue
        for d in range(2 * max_lag + 1):
            c[d] = _corr(pulses[i, d : d + width], template)
        best = 0
        for d in range(1, 2 * max_lag + 1):
            if c[d] > c[best] or np.isnan(c[best]):
                best = d
        if np.isnan(c[best]):
            continue
        offset = 0.0
        if 0 < best < 2 * max_lag:
            denom = c[best - 1] - 2.0 * c[best] + c[best + 1]
            if denom < 0.0:
                offset = min(0.5, max(-0.5, 0.5 * (c[best - 1] - c[best + 1]) / denom))
        lags[i] = best - max_lag + offset
        corr[i] = c[best]
    return lags, corr


def ppg_align_beats(
    x_filtered: FloatArray,
    fs_hz: float,
    beats_samples: npt.ArrayLike,
    *,
    n_template: int = 30,
    max_lag_s: float = 0.05,
) -> tuple[FloatArray, FloatArray]:
    """Refine beat positions by aligning each pulse to its neighbours' median template.

    Parameters
    ----------
    x_filtered:
        The band-passed PPG (any amplitude unit).
    fs_hz:
        Sampling rate in Hz.
    beats_samples:
        Beat positions in samples (e.g. systolic peaks), increasing.
    n_template:
        Neighbouring pulses (half before, half after) in each template.
    max_lag_s:
        Largest shift applied to a beat, in seconds.

    Returns
    -------
    tuple of FloatArray
        The aligned positions in samples, and each beat's correlation with its template at
        the chosen lag in [-1, 1] (NaN where the pulse window leaves the signal or fewer
        than 3 neighbours exist; such beats keep their position).
    """
    x, peaks = _check_inputs(x_filtered, fs_hz, beats_samples, n_template)
    if peaks.size < 4:
        return peaks.copy(), np.full(peaks.size, np.nan)
    pre, post = _pulse_span(peaks)
    max_lag = max(1, round(max_lag_s * fs_hz))
    pulses = _sample_pulses_kernel(x, peaks, -pre - max_lag, pre + post + 1 + 2 * max_lag)
    lags, corr = _align_kernel(pulses, max(1, n_template // 2), max_lag, 3)
    aligned: FloatArray = peaks + lags
    if np.any(np.diff(aligned) <= 0.0):
        logger.debug("template alignment would reorder beats; keeping the input positions")
        return peaks.copy(), corr
    return aligned, corr


def _check_inputs(
    x_filtered: FloatArray, fs_hz: float, peaks_samples: npt.ArrayLike, n_template: int
) -> tuple[FloatArray, FloatArray]:
    x = np.ascontiguousarray(x_filtered, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise InputDataError("x_filtered", "a 1-D array of finite samples")
    if not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
    peaks = np.ascontiguousarray(peaks_samples, dtype=np.float64)
    if peaks.ndim != 1 or not np.all(np.isfinite(peaks)):
        raise InputDataError("peaks_samples", "a 1-D array of finite sample positions")
    if peaks.size > 1 and np.any(np.diff(peaks) <= 0.0):
        raise InputDataError("peaks_samples", "strictly increasing sample positions")
    if n_template < 2:
        raise InputDataError("n_template", "at least 2 neighbouring pulses", n_template)
    return x, peaks


def _pulse_span(peaks: FloatArray) -> tuple[int, int]:
    """Samples before and after the beat in a pulse window (from the median interval)."""
    ibi = float(np.median(np.diff(peaks)))
    return max(2, round(PRE_IBI * ibi)), max(2, round(POST_IBI * ibi))


def window_quality(
    quality: npt.ArrayLike,
    *,
    artifact_share: float = 0.0,
    threshold: float = BEAT_QUALITY_MIN,
) -> float:
    """Return the signal quality of a window in [0, 1].

    Parameters
    ----------
    quality:
        Per-beat correlations of the beats in the window (NaN counts as bad).
    artifact_share:
        Fraction in [0, 1] of the window's intervals that artefact correction changed.
    threshold:
        Correlation from which a beat counts as good.

    Returns
    -------
    float
        ``share of good beats * (1 - artifact_share)``; 0 for a window without beats.
    """
    q = np.asarray(quality, dtype=np.float64)
    if q.ndim != 1:
        raise InputDataError("quality", "a 1-D array of per-beat correlations", q.shape)
    if not (math.isfinite(artifact_share) and 0.0 <= artifact_share <= 1.0):
        raise InputDataError("artifact_share", "a fraction in [0, 1]", artifact_share)
    if q.size == 0:
        return 0.0
    good = float(np.count_nonzero(q >= threshold)) / q.size
    return good * (1.0 - artifact_share)
