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
from ``PRE_IBI`` = 0.3 to ``POST_IBI`` = 0.5 median inter-beat intervals around the
beat's fiducial point (the systolic peak, or in the batch analysis the steepest
upstroke). Each template column keeps its sliding window of values sorted (one insertion
and one removal per beat), so the templates of a night cost ``O(n_beats * width * n_template)``
simple steps instead of a sort per beat and column.

The same templates refine the beat times (:func:`ppg_align_beats`): every pulse is
shifted, with sub-sample resolution, to the lag that maximises its correlation with the
template of its neighbours (a matched filter: Woody CD (1967), "Characterization of an
adaptive filter for the analysis of variable latency neuroelectric signals", Med. Biol.
Eng. 5:539-553). A single fiducial sample is disturbed by noise and by the ADC step
(10-bit monitors); the pulse shape averages both out, which matters for RMSSD, where
timing noise of standard deviation ``s`` adds about ``sqrt(6) s`` (the successive
difference of an interval involves three beat times). The correlation that times the
beat can be limited to part of the pulse (``timing_ibi``; the batch analysis uses
:data:`TIMING_IBI`, foot to just past the peak), while the quality is always the
correlation over the whole pulse window at the chosen lag.

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

from heartsong.dsp import sorted_buffer
from heartsong.dsp.sorted_buffer import _sorted_insert, _sorted_remove, _sorted_replace
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = [
    "BEAT_QUALITY_MIN",
    "POST_IBI",
    "PRE_IBI",
    "TIMING_IBI",
    "beat_quality",
    "ppg_align_beats",
    "window_quality",
]

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]

#: Correlation from which a pulse counts as good (Orphanidou et al. 2015 use 0.86 for the
#: mean over a window; a single pulse is allowed a little less).
BEAT_QUALITY_MIN = 0.8
#: Pulse window around the beat's fiducial point, in median inter-beat intervals.
PRE_IBI = 0.3
POST_IBI = 0.5
#: The part of the pulse window that times a beat, (before, after) its fiducial point in
#: median inter-beat intervals: around the steepest upstroke, from the foot to just past
#: the systolic peak. The diastolic part, shaped by reflected waves that vary with blood
#: pressure and breathing, is left out (see docs/VALIDATION.md for the comparison).
TIMING_IBI: tuple[float, float] = (0.2, 0.3)


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _median_without(buf: FloatArray, m: int, value: float) -> float:
    """Median of the sorted ``buf[:m]`` with one occurrence of ``value`` left out.

    The same number as ``np.median`` of the remaining ``m - 1`` values (the mean of the
    two middle ones for an even count).
    """
    # With ``value`` left out, rank ``k`` holds ``buf[k]`` below its first occurrence and
    # ``buf[k + 1]`` from there on; ``buf[k] < value`` says which, without a search.
    r = m - 1
    k = r // 2
    hi = float(buf[k] if buf[k] < value else buf[k + 1])
    if r % 2 == 1:
        return hi
    k -= 1
    lo = float(buf[k] if buf[k] < value else buf[k + 1])
    return (lo + hi) / 2.0


@njit(cache=True, nogil=True)
def _templates_kernel(
    pulses: FloatArray, half: int, first: int, width: int
) -> tuple[FloatArray, IntArray]:
    """Leave-one-out median templates: for each row, the column-wise median of the valid
    rows within ``half`` places (itself excluded), over columns ``[first, first + width)``.

    Rows whose first sample is NaN are invalid. Each column keeps its window of values
    sorted while the window slides (the value that leaves is replaced by the one that
    enters), so a template costs ``O(width * half)`` instead of ``width`` separate
    medians. Returns the templates (NaN rows where a row is invalid or has no valid
    neighbour) and each row's number of valid neighbours.
    """
    n = pulses.shape[0]
    valid = np.empty(n, dtype=np.bool_)
    for i in range(n):
        valid[i] = not np.isnan(pulses[i, 0])
    count = np.zeros(n, dtype=np.int64)
    m = 0
    for i in range(n):  # neighbours of row i: a window sum over the valid flags
        if i == 0:
            for j in range(min(n, half + 1)):
                m += valid[j]
        else:
            if i + half < n:
                m += valid[i + half]
            if i - half - 1 >= 0:
                m -= valid[i - half - 1]
        count[i] = m - valid[i]
    cols = np.empty((width, n))  # column-major copy: each sweep reads contiguously
    for i in range(n):
        for c in range(width):
            cols[c, i] = pulses[i, first + c]
    out = np.full((width, n), np.nan)
    buf = np.empty(2 * half + 1)
    for c in range(width):
        col = cols[c]
        m = 0
        nxt = 0
        for i in range(n):
            gone = i - half - 1
            come = i + half
            if gone >= 0 and come < n and valid[gone] and valid[come]:
                _sorted_replace(buf, m, col[gone], col[come])
                nxt = come + 1
            else:
                while nxt < n and nxt <= come:
                    if valid[nxt]:
                        m = _sorted_insert(buf, m, col[nxt])
                    nxt += 1
                if gone >= 0 and valid[gone]:
                    m = _sorted_remove(buf, m, col[gone])
            if valid[i] and m > 1:
                out[c, i] = _median_without(buf, m, col[i])
    return out.T.copy(), count


@njit(cache=True, nogil=True)
def _beat_quality_kernel(pulses: FloatArray, half: int) -> FloatArray:
    """Correlation of each pulse with the median of up to ``2 * half`` neighbours."""
    n = pulses.shape[0]
    width = pulses.shape[1]
    templates, count = _templates_kernel(pulses, half, 0, width)
    q = np.full(n, np.nan)
    for i in range(n):
        if count[i] > 0 and not np.isnan(pulses[i, 0]):
            q[i] = _corr(pulses[i], templates[i])
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


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _centred(v: FloatArray, out: FloatArray) -> float:
    """Write ``v`` minus its mean to ``out``; return the sum of squares of ``out``."""
    n = v.shape[0]
    mean = 0.0
    for k in range(n):
        mean += v[k]
    mean /= n
    ss = 0.0
    for k in range(n):
        out[k] = v[k] - mean
        ss += out[k] * out[k]
    return ss


@njit(cache=True, nogil=True)
def _corr_centred(a: FloatArray, tc: FloatArray, tss: float) -> float:
    """Pearson correlation of ``a`` with an already centred ``tc`` (sum of squares ``tss``)."""
    n = a.shape[0]
    mean = 0.0
    for k in range(n):
        mean += a[k]
    mean /= n
    sab = 0.0
    saa = 0.0
    for k in range(n):
        da = a[k] - mean
        sab += da * tc[k]
        saa += da * da
    if saa <= 0.0 or tss <= 0.0:
        return math.nan
    return sab / math.sqrt(saa * tss)


@njit(cache=True, nogil=True)
def _lagged_corr(
    row: FloatArray, first: int, width: int, tc: FloatArray, tss: float, out: FloatArray
) -> None:
    """``out[d]`` = Pearson correlation of ``row[d + first : d + first + width]`` with the
    centred template ``tc`` (sum of squares ``tss``), for every lag ``d``.

    The row is first centred on its own mean (so the one-pass variance below cannot lose
    precision to a large offset); the segment sums then slide from one lag to the next.
    """
    mean = 0.0
    for k in range(row.shape[0]):
        mean += row[k]
    mean /= row.shape[0]
    s1 = 0.0
    s2 = 0.0
    for k in range(first, first + width):
        v = row[k] - mean
        s1 += v
        s2 += v * v
    for d in range(out.shape[0]):
        if d > 0:
            v_out = row[d + first - 1] - mean
            v_in = row[d + first + width - 1] - mean
            s1 += v_in - v_out
            s2 += v_in * v_in - v_out * v_out
        sab = 0.0
        for k in range(width):
            sab += (row[d + first + k] - mean) * tc[k]
        saa = s2 - s1 * s1 / width
        out[d] = sab / math.sqrt(saa * tss) if saa > 0.0 and tss > 0.0 else math.nan


@njit(cache=True, nogil=True)
def _align_kernel(
    pulses: FloatArray,
    half: int,
    max_lag: int,
    min_neighbours: int,
    t_lo: int,
    t_hi: int,
) -> tuple[FloatArray, FloatArray]:
    """Lag (samples) that best matches each pulse to its neighbours' template, and the
    pulse's correlation with that template at the chosen lag.

    ``pulses`` rows are sampled ``max_lag`` samples wider than the template on each side.
    The template is the median of up to ``2 * half`` neighbouring rows (the pulse itself
    excluded) over the central ``width`` columns. The lag maximises the Pearson
    correlation over the template columns ``[t_lo, t_hi)`` (the timing part of the pulse)
    and is refined by a parabola through the best integer lag and its neighbours; the
    returned correlation is over all ``width`` columns at the best integer lag (the
    pulse's quality).
    """
    n = pulses.shape[0]
    width = pulses.shape[1] - 2 * max_lag
    tw = t_hi - t_lo
    lags = np.zeros(n)
    corr = np.full(n, np.nan)
    templates, count = _templates_kernel(pulses, half, max_lag, width)
    full_c = np.empty(width)
    part_c = np.empty(tw)
    c = np.empty(2 * max_lag + 1)
    for i in range(n):
        if np.isnan(pulses[i, 0]) or count[i] < min_neighbours:
            continue
        full_ss = _centred(templates[i], full_c)
        part_ss = _centred(templates[i, t_lo:t_hi], part_c)
        _lagged_corr(pulses[i], t_lo, tw, part_c, part_ss, c)
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
        corr[i] = _corr_centred(pulses[i, best : best + width], full_c, full_ss)
    return lags, corr


def ppg_align_beats(
    x_filtered: FloatArray,
    fs_hz: float,
    beats_samples: npt.ArrayLike,
    *,
    n_template: int = 30,
    max_lag_s: float = 0.05,
    timing_ibi: tuple[float, float] = (PRE_IBI, POST_IBI),
) -> tuple[FloatArray, FloatArray]:
    """Refine beat positions by aligning each pulse to its neighbours' median template.

    Parameters
    ----------
    x_filtered:
        The band-passed PPG (any amplitude unit).
    fs_hz:
        Sampling rate in Hz.
    beats_samples:
        Beat positions in samples (a fiducial point of each pulse, e.g. the steepest
        upstroke from :func:`heartsong.dsp.peaks.ppg_max_upslope`), increasing.
    n_template:
        Neighbouring pulses (half before, half after) in each template.
    max_lag_s:
        Largest shift applied to a beat, in seconds.
    timing_ibi:
        The part of the pulse window that times the beat, as (before, after) the beat
        position in median inter-beat intervals; at most the pulse window
        (``PRE_IBI``, ``POST_IBI``). :data:`TIMING_IBI` (foot to just past the systolic
        peak) is what the batch analysis uses.

    Returns
    -------
    tuple of FloatArray
        The aligned positions in samples, and each beat's correlation in [-1, 1] with its
        template over the whole pulse window at the chosen lag, its quality (NaN where
        the pulse window leaves the signal or fewer than 3 neighbours exist; such beats
        keep their position).
    """
    x, peaks = _check_inputs(x_filtered, fs_hz, beats_samples, n_template)
    before, after = timing_ibi
    if not (0.0 < before <= PRE_IBI and 0.0 < after <= POST_IBI):
        raise InputDataError(
            "timing_ibi", f"(before, after) within (0, {PRE_IBI}] x (0, {POST_IBI}]", timing_ibi
        )
    if peaks.size < 4:
        return peaks.copy(), np.full(peaks.size, np.nan)
    pre, post = _pulse_span(peaks)
    ibi = float(np.median(np.diff(peaks)))
    t_lo = max(0, pre - max(1, round(before * ibi)))
    t_hi = min(pre + post + 1, pre + max(1, round(after * ibi)) + 1)
    max_lag = max(1, round(max_lag_s * fs_hz))
    pulses = _sample_pulses_kernel(x, peaks, -pre - max_lag, pre + post + 1 + 2 * max_lag)
    lags, corr = _align_kernel(pulses, max(1, n_template // 2), max_lag, 3, t_lo, t_hi)
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


# numba's cache watches a kernel's own file only: a digest of heartsong.dsp.sorted_buffer,
# whose kernels these inline, is frozen into the cache (see heartsong.numba_cache).
_SOURCES_DIGEST = sources_digest((sorted_buffer,))


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of the sorted-buffer source when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))
