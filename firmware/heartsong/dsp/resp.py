"""Respiratory rate from the heart: RSA in the beat intervals and modulation of the pulses.

Breathing leaves three marks on a pulse signal (Charlton et al. 2016, 2018):

* frequency modulation, respiratory sinus arrhythmia (RSA): the NN intervals shorten
  on inspiration. Schafer & Kratky (2008) estimate the breathing rate from the spectral
  peak of the NN series in 0.1-0.5 Hz; it also works with a chest strap's RR intervals;
* amplitude modulation (AM): the pulse amplitude, peak minus the preceding trough, rises
  and falls with intrathoracic pressure;
* baseline (intensity) modulation (BW): the mean of peak and trough follows the venous
  return.

Each series is sampled at the beat times; its Lomb-Scargle spectrum
(:mod:`heartsong.dsp.hrv_freq`, each segment detrended) gives the rate at the highest
peak, refined by a parabola through the peak and its neighbours. The band is widened
from Schafer & Kratky's 0.1-0.5 Hz down to 4 breaths/min (0.0667 Hz) because the device
paces slow breathing (resonance breathing sits at 4.5-7 breaths/min; Lehrer & Gevirtz
2014), and its top is held below 90 % of the beats' Nyquist rate, where RSA would alias.
The estimate's *quality* is the share of the band's power within +-0.03 Hz of the peak.

Slow breathing and the ~0.1 Hz Mayer wave (Julien 2006) share a frequency, so a peak
below 0.15 Hz (the Task Force LF/HF boundary) is not trusted blindly: spontaneous
breathing always leaves RSA in the HF band, slow breathing only its harmonic. When a
local peak above 0.15 Hz reaches a quarter of the power of the slow one and is not its
second harmonic, it is taken as the breathing and its quality is computed over the band
above 0.15 Hz. This guard is this project's heuristic, not a published rule.

Fusion follows Karlen et al.'s (2013) "smart fusion": the estimates of good enough
quality are averaged (weighted by quality) when their standard deviation is at most
4 breaths/min, and the window gives no rate when they disagree. A single estimate (a
chest strap gives RSA only) stands on its own quality. Spans longer than 1.5 windows
(64 s, about Karlen's 32-s windows doubled for the resolution slow breathing needs) are
estimated per window, with 50 % overlap, and the median of the window rates is returned.
A strong Mayer wave can still win over a weak RSA peak: that is the known limit of
RSA-based rates (Schafer & Kratky 2008), and one reason to fuse with the PPG marks.

References
----------
Schafer A, Kratky KW (2008) Estimation of breathing rate from respiratory sinus
arrhythmia: comparison of various methods. Ann Biomed Eng 36(3):476-485.
Karlen W, Raman S, Ansermino JM, Dumont GA (2013) Multiparameter respiratory rate
estimation from the photoplethysmogram. IEEE Trans Biomed Eng 60(7):1946-1953.
Charlton PH et al. (2016) An assessment of algorithms to estimate respiratory rate from
the electrocardiogram and photoplethysmogram. Physiol Meas 37(4):610-626.
Charlton PH et al. (2018) Breathing rate estimation from the electrocardiogram and
photoplethysmogram: a review. IEEE Rev Biomed Eng 11:2-20.
Lehrer PM, Gevirtz R (2014) Heart rate variability biofeedback: how and why does it work?
Front Psychol 5:756.
Julien C (2006) The enigma of Mayer waves: facts and models. Cardiovasc Res 70(1):12-21.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp import hrv_freq
from heartsong.dsp.hrv_freq import (
    MIN_SEGMENT_SAMPLES,
    Spectrum,
    _psd_kernel,
    lomb_scargle_psds,
)
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = [
    "MAX_SPREAD_BPM",
    "MIN_COVERAGE_S",
    "MIN_QUALITY",
    "RESP_BAND_HZ",
    "RespEstimate",
    "fuse_resp",
    "fused_resp_estimate",
    "ppg_pulse_features",
    "resp_estimates",
    "resp_from_psd",
    "resp_from_psds",
    "resp_from_spectrum",
    "resp_rate",
    "resp_rate_from_ppg",
    "resp_rate_from_rr",
    "resp_window_psds",
]

IntArray = npt.NDArray[np.int64]

#: Breathing band searched, Hz (4 to 30 breaths/min).
RESP_BAND_HZ: tuple[float, float] = (4.0 / 60.0, 0.5)
#: Below this frequency a spectral peak may be a Mayer wave rather than breathing, Hz
#: (the LF/HF boundary of the Task Force 1996).
MAYER_LIMIT_HZ = 0.15
#: A local peak above ``MAYER_LIMIT_HZ`` with at least this fraction of the power of a
#: higher peak below it is taken as the breathing (spontaneous breathing always leaves
#: RSA there; slow breathing leaves only its harmonic).
MAYER_HF_RATIO = 0.25
#: A peak within this distance of twice a slow peak's frequency is its harmonic, Hz.
HARMONIC_TOL_HZ = 0.02
#: Half width of the peak window that defines the quality, Hz.
PEAK_HALF_WIDTH_HZ = 0.03
#: Least quality (peak share of band power) an estimate needs to count.
MIN_QUALITY = 0.3
#: Largest standard deviation of fused estimates, breaths/min (Karlen et al. 2013).
MAX_SPREAD_BPM = 4.0
#: Window length for long spans, s.
RESP_WINDOW_S = 64.0
#: Least seconds of samples an estimate needs.
MIN_COVERAGE_S = 30.0
#: Frequency-grid points per natural resolution.
OVERSAMPLE = 4.0
#: Names of the estimates from each series.
_SOURCE_NAMES = {"nn_ms": "rsa", "amplitude": "ppg_am", "baseline": "ppg_bw"}
#: Top of the band as a fraction of the beats' Nyquist rate.
_NYQUIST_FRACTION = 0.9
#: Systolic peak searched this long after a beat's fiducial point, s (the detector may
#: report the mid-upstroke, which precedes the peak by about 0.1 s).
PEAK_SEARCH_AHEAD_S = 0.2
#: Systolic peak searched this long before the fiducial point, s.
PEAK_SEARCH_BACK_S = 0.05
#: Trough searched at most this long before the peak (and after the previous peak), s.
TROUGH_SEARCH_S = 1.5


@dataclass(frozen=True, slots=True)
class RespEstimate:
    """One breathing-rate estimate.

    Attributes
    ----------
    rate_bpm:
        Breaths per minute; NaN when there is no estimate.
    quality:
        Share of the breathing band's power near the peak, in [0, 1] (for a fused
        estimate, the mean of the fused ones); 0 without an estimate.
    source:
        ``"rsa"``, ``"ppg_am"``, ``"ppg_bw"``, or the fused sources joined by ``"+"``.
    reason:
        Why there is no estimate (empty when there is one).
    """

    rate_bpm: float
    quality: float
    source: str
    reason: str = ""

    @property
    def valid(self) -> bool:
        """True when there is a rate."""
        return math.isfinite(self.rate_bpm)


@njit(cache=True, nogil=True)
def _pulse_features_kernel(
    pos: FloatArray,
    raw: FloatArray,
    filt: FloatArray,
    mask: int,
    oldest: int,
    newest: int,
    prev_peak: int,
    back: int,
    ahead: int,
    trough_back: int,
    amplitude: FloatArray,
    baseline: FloatArray,
) -> int:
    """Amplitude and baseline of the pulse at each beat position; return the last peak.

    ``raw`` and ``filt`` hold absolute samples ``[oldest, newest)``, sample ``i`` at index
    ``i & mask``: a power-of-two ring (``mask = len - 1``) or a plain array
    (``mask = -1``). The pulse's peak is the maximum of ``filt`` within
    ``[p - back, p + ahead]`` of the beat position ``p``; its trough the minimum in the
    ``trough_back`` samples before the peak, after the previous peak. A window that
    leaves the stored samples gives NaN.
    """
    for b in range(pos.shape[0]):
        amplitude[b] = math.nan
        baseline[b] = math.nan
        c = round(pos[b])
        lo = max(c - back, oldest, prev_peak + 1)
        hi = min(c + ahead, newest - 1)
        if hi < lo:
            continue
        peak = lo
        peak_value = filt[lo & mask]
        for i in range(lo + 1, hi + 1):
            v = filt[i & mask]
            if v > peak_value:
                peak = i
                peak_value = v
        t_lo = max(peak - trough_back, oldest, prev_peak + 1)
        prev_peak = peak
        if t_lo >= peak:
            continue
        trough = t_lo
        trough_value = filt[t_lo & mask]
        for i in range(t_lo + 1, peak):
            v = filt[i & mask]
            if v < trough_value:
                trough = i
                trough_value = v
        amplitude[b] = peak_value - trough_value
        baseline[b] = 0.5 * (raw[peak & mask] + raw[trough & mask])
    return prev_peak


def ppg_pulse_features(
    raw: npt.ArrayLike, filtered: npt.ArrayLike, fs_hz: float, beats_samples: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Return each pulse's amplitude and baseline, the PPG's respiratory modulations.

    Parameters
    ----------
    raw:
        The PPG as recorded (any unit, pulses pointing up), for the baseline.
    filtered:
        The band-passed PPG (same length), for the amplitude and for finding the
        systolic peak and the trough before it.
    fs_hz:
        Sampling rate in Hz.
    beats_samples:
        Beat positions in samples (the systolic peak or a point on the upstroke),
        increasing.

    Returns
    -------
    tuple of FloatArray
        Per beat: the amplitude (band-passed peak minus the trough before it) and the
        baseline (mean of the raw signal at peak and trough), Charlton et al. (2016); NaN
        where the pulse is not inside the signal.
    """
    x = np.ascontiguousarray(raw, dtype=np.float64)
    f = np.ascontiguousarray(filtered, dtype=np.float64)
    pos = np.ascontiguousarray(beats_samples, dtype=np.float64)
    if x.ndim != 1 or f.shape != x.shape:
        raise InputDataError("filtered", f"one sample per raw sample, shape {x.shape}", f.shape)
    if not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
    if pos.ndim != 1 or not np.all(np.isfinite(pos)):
        raise InputDataError("beats_samples", "a 1-D array of finite sample positions")
    amplitude = np.empty(pos.shape[0])
    baseline = np.empty(pos.shape[0])
    _pulse_features_kernel(
        pos,
        x,
        f,
        -1,
        0,
        x.shape[0],
        -1,
        round(PEAK_SEARCH_BACK_S * fs_hz),
        round(PEAK_SEARCH_AHEAD_S * fs_hz),
        round(TROUGH_SEARCH_S * fs_hz),
        amplitude,
        baseline,
    )
    return amplitude, baseline


def _none(source: str, reason: str) -> RespEstimate:
    return RespEstimate(math.nan, 0.0, source, reason)


@njit(cache=True, nogil=True)
def _resp_peak_kernel(
    psd: FloatArray,
    df_hz: float,
    low_hz: float,
    high_hz: float,
    half_width_hz: float,
    mayer_hz: float,
    hf_ratio: float,
    harmonic_tol_hz: float,
) -> tuple[float, float]:
    """Breathing peak (Hz, parabola-refined) in ``[low_hz, high_hz]`` and its power share.

    ``psd[k]`` is the density at ``(k + 1) * df_hz``. The highest point wins, unless it
    lies below ``mayer_hz`` and a local maximum above ``mayer_hz`` reaches ``hf_ratio``
    of it without being its second harmonic (within ``harmonic_tol_hz``): then that one
    wins, and its share is taken of the power above ``mayer_hz``. Returns NaN and 0 when
    the band holds fewer than 3 grid points, NaN and -1 when it holds no power.
    """
    k_lo = max(0, math.ceil(low_hz / df_hz - 1e-9) - 1)
    k_hi = min(psd.shape[0] - 1, math.floor(high_hz / df_hz + 1e-9) - 1)
    if k_hi - k_lo < 2:
        return math.nan, 0.0
    best = k_lo
    for k in range(k_lo, k_hi + 1):
        if psd[k] > psd[best]:
            best = k
    if not psd[best] > 0.0:
        return math.nan, -1.0
    if (best + 1) * df_hz < mayer_hz:
        k_mayer = max(k_lo + 1, math.ceil(mayer_hz / df_hz - 1e-9) - 1)
        alt = -1
        for k in range(k_mayer, k_hi):
            local = psd[k] > psd[k - 1] and psd[k] >= psd[k + 1]
            if local and (alt < 0 or psd[k] > psd[alt]):
                alt = k
        harmonic = abs((alt + 1) * df_hz - 2.0 * (best + 1) * df_hz) <= harmonic_tol_hz
        if alt >= 0 and psd[alt] >= hf_ratio * psd[best] and not harmonic:
            best = alt
            k_lo = k_mayer
    offset = 0.0
    if 0 < best < psd.shape[0] - 1:
        left = psd[best - 1]
        right = psd[best + 1]
        denom = left - 2.0 * psd[best] + right
        if denom < 0.0:
            offset = min(0.5, max(-0.5, 0.5 * (left - right) / denom))
    f_peak = (best + 1 + offset) * df_hz
    total = 0.0
    near = 0.0
    for k in range(k_lo, k_hi + 1):
        total += psd[k]
        if abs((k + 1) * df_hz - f_peak) <= half_width_hz:
            near += psd[k]
    return f_peak, near / total


@njit(cache=True, nogil=True)
def _band_top(n_used: int, span_s: float) -> float:
    """Top of the breathing band for beats ``n_used`` over ``span_s`` s (90 % of their
    Nyquist rate, at most 0.5 Hz), Hz."""
    high: float = RESP_BAND_HZ[1]
    if n_used > 1 and span_s > 0.0:
        high = min(high, _NYQUIST_FRACTION * 0.5 * (n_used - 1) / span_s)
    return high


@njit(cache=True, nogil=True)
def _resp_peak(psd: FloatArray, df_hz: float, n_used: int, span_s: float) -> tuple[float, float]:
    """``_resp_peak_kernel`` with this module's rules: the breathing band up to
    ``_band_top(n_used, span_s)`` (beats used and their span in s), and the peak,
    Mayer-wave and harmonic constants."""
    return _resp_peak_kernel(
        psd,
        df_hz,
        RESP_BAND_HZ[0],
        _band_top(n_used, span_s),
        PEAK_HALF_WIDTH_HZ,
        MAYER_LIMIT_HZ,
        MAYER_HF_RATIO,
        HARMONIC_TOL_HZ,
    )


def _estimate(
    psd: FloatArray, df_hz: float, n_used: int, span_s: float, source: str
) -> RespEstimate:
    """Breathing-rate estimate from one density row (see :func:`resp_from_spectrum`)."""
    f_peak, quality = _resp_peak(psd, df_hz, n_used, span_s)
    if math.isnan(f_peak):
        if quality < 0.0:
            return _none(source, "no power in the breathing band")
        return _none(source, "samples too sparse for the breathing band")
    return RespEstimate(60.0 * float(f_peak), float(quality), source)


def resp_from_psd(
    psd: FloatArray, df_hz: float, n_used: int, span_s: float, source: str
) -> RespEstimate:
    """Return the breathing rate from one density row of :func:`resp_window_psds`.

    ``psd`` lies on ``df_hz * (1, 2, ...)``; ``n_used`` samples spanning ``span_s``
    seconds set the Nyquist limit of the band. See :func:`resp_from_spectrum`.
    """
    return _estimate(psd, df_hz, n_used, span_s, source)


def resp_from_spectrum(spectrum: Spectrum, source: str) -> RespEstimate:
    """Return the breathing rate at the highest peak of a spectrum in the breathing band.

    Parameters
    ----------
    spectrum:
        Power spectral density of a respiration-modulated series (any unit^2/Hz), on the
        grid ``df_hz * (1, 2, ...)``.
    source:
        Name of the series, kept in the result.

    Returns
    -------
    RespEstimate
        The peak frequency times 60 (refined by a parabola through the peak and its two
        neighbours) with its quality; no rate when the band holds no power or the
        series' samples are too sparse to reach the band.
    """
    return _estimate(spectrum.psd, spectrum.df_hz, spectrum.n_samples, spectrum.span_s, source)


def resp_window_psds(
    t_s: FloatArray,
    series: dict[str, FloatArray],
    segment: IntArray,
    *,
    coverage_s: float | None = None,
) -> tuple[FloatArray, float, int, float] | str:
    """Return the periodograms the breathing rate of one window is read from, or why not.

    Parameters
    ----------
    t_s:
        Beat times in seconds, increasing, float64.
    series:
        Series sampled at ``t_s`` under the names ``"nn_ms"`` (RSA), ``"amplitude"`` and
        ``"baseline"`` (PPG); a beat enters only where every series is finite.
    segment:
        Segment id per beat (int64), each segment detrended on its own.
    coverage_s:
        Seconds the window covers, if the caller knows it already (default: the sum of
        the finite ``nn_ms``, else the time span).

    Returns
    -------
    tuple or str
        The densities (one row per series, in the order given) on the grid
        ``df * (1, 2, ...)`` up to 0.55 Hz with ``df = 1 / (4 * span)``, ``df`` in Hz, the
        number of beats used and their span in seconds; or the reason there are none: the
        window covers less than 30 s (the NN intervals' sum, else the time span) or holds
        fewer than 6 beats.
    """
    nn = series.get("nn_ms")
    if coverage_s is not None:
        coverage = coverage_s
    elif nn is not None:
        coverage = float(np.nansum(nn)) / 1000.0
    else:
        coverage = float(t_s[-1] - t_s[0]) if t_s.shape[0] > 1 else 0.0
    if coverage < MIN_COVERAGE_S:
        return f"too little signal for a breathing rate: {coverage:.0f} s < {MIN_COVERAGE_S:.0f} s"
    if t_s.shape[0] < 6:
        return "too few beats for a breathing rate"
    ys = np.empty((len(series), t_s.shape[0]))
    for row, values in enumerate(series.values()):
        ys[row] = values
    df = 1.0 / (OVERSAMPLE * float(t_s[-1] - t_s[0]))
    psds, n_used, span = lomb_scargle_psds(
        np.ascontiguousarray(t_s, dtype=np.float64),
        ys,
        np.ascontiguousarray(segment, dtype=np.int64),
        f_max_hz=RESP_BAND_HZ[1] + 0.05,
        df_hz=df,
    )
    if n_used < 6:
        return "too few beats for a breathing rate"
    return psds, df, n_used, span


def resp_estimates(
    t_s: FloatArray, series: dict[str, FloatArray], segment: IntArray
) -> list[RespEstimate]:
    """Estimate the breathing rate from each series of one window (no fusion).

    Parameters are as for :func:`resp_window_psds`.

    Returns
    -------
    list of RespEstimate
        One per series, in the order given (``rsa``, ``ppg_am``, ``ppg_bw``).
    """
    sources = [_SOURCE_NAMES[k] for k in series]
    got = resp_window_psds(t_s, series, segment)
    if isinstance(got, str):
        return [_none(src, got) for src in sources]
    psds, df, n_used, span = got
    return [_estimate(psds[j], df, n_used, span, src) for j, src in enumerate(sources)]


@njit(cache=True, nogil=True)
def _fuse_kernel(
    rates: FloatArray, qualities: FloatArray, min_quality: float, max_spread: float
) -> tuple[float, float, int, int, int]:
    """Karlen et al. (2013) fusion of per-source estimates (NaN rate: none).

    Returns ``(rate, mean quality, code, kept, best)``: ``code`` 0 fused, 1 none good
    enough (``best`` indexes the best rated one, -1 when none is rated), 2 the kept ones
    disagree; ``kept`` has bit ``j`` set for each estimate used.
    """
    n_kept = 0
    kept = 0
    total = 0.0
    weight = 0.0
    weighted = 0.0
    best = -1
    for j in range(rates.shape[0]):
        r = rates[j]
        if r != r:
            continue
        if best < 0 or qualities[j] > qualities[best]:
            best = j
        if qualities[j] >= min_quality:
            kept |= 1 << j
            n_kept += 1
            total += r
            weight += qualities[j]
            weighted += r * qualities[j]
    if n_kept == 0:
        return math.nan, 0.0, 1, 0, best
    mean = total / n_kept
    ss = 0.0
    for j in range(rates.shape[0]):
        if kept >> j & 1:
            ss += (rates[j] - mean) ** 2
    if math.sqrt(ss / n_kept) > max_spread:  # population sd
        return math.nan, 0.0, 2, kept, best
    return weighted / weight, weight / n_kept, 0, kept, best


@njit(cache=True, nogil=True)
def _resp_fused_kernel(
    psds: FloatArray,
    df_hz: float,
    n_used: int,
    span_s: float,
    rates: FloatArray,
    qualities: FloatArray,
) -> tuple[float, float, int, int, int]:
    """Breathing peak of every density row (``_resp_peak``: ``n_used`` beats over
    ``span_s`` s), then their fusion with this module's quality and spread limits (see
    ``_fuse_kernel``).

    ``rates`` (breaths/min, NaN without a peak) and ``qualities`` (as
    ``_resp_peak_kernel``: -1 for no power) receive the per-row estimates.
    """
    for j in range(psds.shape[0]):
        f_peak, q = _resp_peak(psds[j], df_hz, n_used, span_s)
        rates[j] = 60.0 * f_peak
        qualities[j] = q
    return _fuse_kernel(rates, qualities, MIN_QUALITY, MAX_SPREAD_BPM)


def _fused(
    rate: float,
    quality: float,
    code: int,
    kept: int,
    best: int,
    sources: Sequence[str],
    rates: Sequence[float],
    qualities: Sequence[float],
    reasons: Sequence[str],
    min_quality: float,
) -> RespEstimate:
    """The fusion kernel's verdict as a :class:`RespEstimate` with its reason."""
    names = [src for j, src in enumerate(sources) if kept >> j & 1]
    if code == 0:
        return RespEstimate(float(rate), float(quality), "+".join(names))
    if code == 2:
        listed = ", ".join(
            f"{src} {rates[j]:.1f}" for j, src in enumerate(sources) if kept >> j & 1
        )
        return _none("+".join(names), f"breathing estimates disagree ({listed} breaths/min)")
    if best >= 0:
        return _none(
            sources[best],
            f"no clear breathing peak: quality {qualities[best]:.2f} < {min_quality:.2f}",
        )
    given = [r for r in reasons if r]
    return _none("", given[0] if given else "no breathing estimate")


def resp_from_psds(
    psds: FloatArray, df_hz: float, n_used: int, span_s: float, sources: Sequence[str]
) -> RespEstimate:
    """Return the fused breathing rate of one window from :func:`resp_window_psds`.

    The estimate of every row (:func:`resp_from_psd`) fused as :func:`fuse_resp` does,
    in one kernel call.

    Parameters
    ----------
    psds:
        Densities, one row per series, on ``df_hz * (1, 2, ...)``.
    df_hz:
        Grid step in Hz.
    n_used, span_s:
        Beats used and their span in seconds (they set the band's Nyquist limit).
    sources:
        The name of each row (``"rsa"``, ``"ppg_am"``, ``"ppg_bw"``).

    Returns
    -------
    RespEstimate
        The fused rate in breaths per minute, or no rate and the reason.
    """
    k = psds.shape[0]
    rates = np.empty(k)
    qualities = np.empty(k)
    rate, quality, code, kept, best = _resp_fused_kernel(
        psds, df_hz, n_used, span_s, rates, qualities
    )
    return fused_resp_estimate(rate, quality, code, kept, best, rates, qualities, sources)


def fused_resp_estimate(
    rate: float,
    quality: float,
    code: int,
    kept: int,
    best: int,
    rates: FloatArray,
    qualities: FloatArray,
    sources: Sequence[str],
) -> RespEstimate:
    """The verdict of the row estimation and fusion kernel as a :class:`RespEstimate`.

    ``rate``, ``quality``, ``code``, ``kept`` and ``best`` are what the fusion returns
    (see :func:`resp_from_psds`); ``rates`` (breaths/min, NaN without a peak) and
    ``qualities`` (-1 for a row without power) are the per-row estimates, ``sources``
    their names. The reason, when there is no rate, is the one :func:`fuse_resp` gives.
    """
    if code == 0:
        names = [src for j, src in enumerate(sources) if kept >> j & 1]
        return RespEstimate(float(rate), float(quality), "+".join(names))
    k = len(sources)
    reasons = [
        ""
        if rates[j] == rates[j]
        else (
            "no power in the breathing band"
            if qualities[j] < 0.0
            else "samples too sparse for the breathing band"
        )
        for j in range(k)
    ]
    return _fused(
        rate,
        quality,
        code,
        kept,
        best,
        sources,
        rates[:k].tolist(),
        qualities[:k].tolist(),
        reasons,
        MIN_QUALITY,
    )


def fuse_resp(
    estimates: Sequence[RespEstimate],
    *,
    min_quality: float = MIN_QUALITY,
    max_spread_bpm: float = MAX_SPREAD_BPM,
) -> RespEstimate:
    """Fuse breathing-rate estimates after Karlen et al. (2013).

    Parameters
    ----------
    estimates:
        Estimates from different modulations of the same window.
    min_quality:
        Estimates of lower quality are left out.
    max_spread_bpm:
        Largest standard deviation of the kept rates, in breaths/min.

    Returns
    -------
    RespEstimate
        The quality-weighted mean of the kept rates; no rate when none is kept (the
        reason names the best candidate) or when they disagree.
    """
    rates = np.array([e.rate_bpm for e in estimates], dtype=np.float64)
    qualities = np.array([e.quality for e in estimates], dtype=np.float64)
    rate, quality, code, kept, best = _fuse_kernel(rates, qualities, min_quality, max_spread_bpm)
    return _fused(
        rate,
        quality,
        code,
        kept,
        best,
        [e.source for e in estimates],
        rates.tolist(),
        qualities.tolist(),
        [e.reason for e in estimates],
        min_quality,
    )


def _check(
    beat_t_s: npt.ArrayLike, series: dict[str, npt.ArrayLike | None], segment: npt.ArrayLike | None
) -> tuple[FloatArray, dict[str, FloatArray], IntArray]:
    t = np.ascontiguousarray(beat_t_s, dtype=np.float64)
    if t.ndim != 1:
        raise InputDataError("beat_t_s", "a 1-D array of times in seconds", t.shape)
    out: dict[str, FloatArray] = {}
    for name, values in series.items():
        if values is None:
            continue
        v = np.ascontiguousarray(values, dtype=np.float64)
        if v.shape != t.shape:
            raise InputDataError(name, f"one value per beat, shape {t.shape}", v.shape)
        out[name] = v
    if segment is None:
        seg = np.zeros(t.shape[0], dtype=np.int64)
    else:
        seg = np.ascontiguousarray(segment, dtype=np.int64)
        if seg.shape != t.shape:
            raise InputDataError("segment", f"one id per beat, shape {t.shape}", seg.shape)
    return t, out, seg


def _over_windows(
    t: FloatArray, series: dict[str, FloatArray], seg: IntArray, window_s: float
) -> RespEstimate:
    """Fused estimate of one window, or the median over windows of a long span."""
    if t.shape[0] < 2 or t[-1] - t[0] <= 1.5 * window_s:
        return fuse_resp(resp_estimates(t, series, seg))
    ends = np.array([*np.arange(t[0] + window_s, t[-1], window_s / 2.0).tolist(), float(t[-1])])
    sources = [_SOURCE_NAMES[k] for k in series]
    ys = np.empty((len(series), t.shape[0]))
    for row, values in enumerate(series.values()):
        ys[row] = values
    n_win = ends.shape[0]
    status = np.empty(n_win, dtype=np.int64)
    coverage = np.empty(n_win)
    fused = np.full((n_win, 5), np.nan)
    rates = np.empty((n_win, len(sources)))
    qualities = np.empty((n_win, len(sources)))
    _windows_kernel(
        t, ys, seg, ends, window_s, "nn_ms" in series, status, coverage, fused, rates, qualities
    )
    good = np.flatnonzero((status == 0) & (fused[:, 2] == 0.0) & np.isfinite(fused[:, 0]))
    if good.size == 0:
        return _window_estimate(
            int(status[-1]), float(coverage[-1]), fused[-1], rates[-1], qualities[-1], sources
        )
    kept = fused[good, 3].astype(np.int64).tolist()
    return RespEstimate(
        float(np.median(fused[good, 0])),
        float(np.mean(fused[good, 1])),
        "+".join(sorted({src for bits in kept for j, src in enumerate(sources) if bits >> j & 1})),
    )


def _window_estimate(
    status: int,
    coverage_s: float,
    fused: FloatArray,
    rates: FloatArray,
    qualities: FloatArray,
    sources: Sequence[str],
) -> RespEstimate:
    """The estimate of one window of :func:`_windows_kernel`: what
    ``fuse_resp(resp_estimates(...))`` gives for its beats."""
    if status == _FEW_SECONDS:
        return _none(
            "",
            f"too little signal for a breathing rate: {coverage_s:.0f} s < {MIN_COVERAGE_S:.0f} s",
        )
    if status == _FEW_BEATS:
        return _none("", "too few beats for a breathing rate")
    rate, quality, code, kept, best = fused.tolist()
    return fused_resp_estimate(
        rate, quality, int(code), int(kept), int(best), rates, qualities, sources
    )


#: Window verdicts of :func:`_windows_kernel` before any spectrum (also those of the
#: window kernel of :mod:`heartsong.dsp.window`).
_FEW_SECONDS, _FEW_BEATS = 4, 5


@njit(cache=True, nogil=True)
def _windows_kernel(
    t: FloatArray,
    ys: FloatArray,
    seg: IntArray,
    ends: FloatArray,
    window_s: float,
    has_nn: bool,
    status: IntArray,
    coverage: FloatArray,
    fused: FloatArray,
    rates: FloatArray,
    qualities: FloatArray,
) -> None:
    """The breathing estimate of every window ``[ends[w] - window_s, ends[w]]`` (s) of
    the series ``ys`` (rows: NN intervals first if ``has_nn``, then PPG features), by the
    rules of :func:`resp_window_psds` and :func:`resp_from_psds`, in one call.

    Writes per window: ``status`` 0 (estimated), ``_FEW_SECONDS`` or ``_FEW_BEATS``;
    ``coverage`` (s: the finite NN intervals' sum, else the time span); ``fused`` the
    fusion's ``(rate, quality, code, kept, best)``; and the per-row ``rates`` and
    ``qualities`` (see ``_resp_fused_kernel``).
    """
    n_rows = ys.shape[0]
    f_max = RESP_BAND_HZ[1] + 0.05
    for w in range(ends.shape[0]):
        lo = np.searchsorted(t, ends[w] - window_s, side="left")
        hi = np.searchsorted(t, ends[w], side="right")
        n = hi - lo
        cov = 0.0
        if has_nn:
            for i in range(lo, hi):
                if not math.isnan(ys[0, i]):
                    cov += ys[0, i]
            cov /= 1000.0
        elif n > 1:
            cov = t[hi - 1] - t[lo]
        coverage[w] = cov
        if cov < MIN_COVERAGE_S:
            status[w] = _FEW_SECONDS
            continue
        if n < 6:
            status[w] = _FEW_BEATS
            continue
        df = 1.0 / (OVERSAMPLE * (t[hi - 1] - t[lo]))
        psds = np.empty((n_rows, max(1, math.floor(f_max / df + 1e-9))))
        y = np.empty((n_rows, n))
        for j in range(n_rows):
            for i in range(n):
                y[j, i] = ys[j, lo + i]
        n_used, span = _psd_kernel(t[lo:hi], y, seg[lo:hi], MIN_SEGMENT_SAMPLES, df, 0, psds)
        if n_used < 6:
            status[w] = _FEW_BEATS
            continue
        status[w] = 0
        rate, quality, code, kept, best = _resp_fused_kernel(
            psds, df, n_used, span, rates[w], qualities[w]
        )
        fused[w, 0] = rate
        fused[w, 1] = quality
        fused[w, 2] = code
        fused[w, 3] = kept
        fused[w, 4] = best


def resp_rate_from_rr(
    beat_t_s: npt.ArrayLike,
    nn_ms: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    window_s: float = RESP_WINDOW_S,
) -> RespEstimate:
    """Estimate the breathing rate from respiratory sinus arrhythmia (Schafer & Kratky 2008).

    Parameters
    ----------
    beat_t_s:
        Time of the beat ending each interval, in seconds, increasing.
    nn_ms:
        NN (or a strap's RR) intervals in ms; non-finite values are left out.
    segment:
        Segment id per interval (each segment is detrended on its own).
    window_s:
        Window length for spans longer than 1.5 windows, in seconds.

    Returns
    -------
    RespEstimate
        Breaths per minute with its quality; no rate (and a reason) when the intervals
        cover less than 30 s or the spectral peak is not clear.
    """
    t, series, seg = _check(beat_t_s, {"nn_ms": nn_ms}, segment)
    return _over_windows(t, series, seg, window_s)


def resp_rate_from_ppg(
    beat_t_s: npt.ArrayLike,
    amplitude: npt.ArrayLike,
    baseline: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    window_s: float = RESP_WINDOW_S,
) -> RespEstimate:
    """Estimate the breathing rate from the pulses' amplitude and baseline modulation.

    Parameters
    ----------
    beat_t_s:
        Time of each pulse, in seconds, increasing.
    amplitude:
        Pulse amplitude (peak minus preceding trough) per pulse, any unit; NaN unknown.
    baseline:
        Pulse baseline (mean of peak and trough) per pulse, any unit; NaN unknown.
    segment:
        Segment id per pulse.
    window_s:
        Window length for spans longer than 1.5 windows, in seconds.

    Returns
    -------
    RespEstimate
        The fusion (:func:`fuse_resp`) of the AM and BW estimates.
    """
    t, series, seg = _check(beat_t_s, {"amplitude": amplitude, "baseline": baseline}, segment)
    return _over_windows(t, series, seg, window_s)


def resp_rate(
    beat_t_s: npt.ArrayLike,
    nn_ms: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    amplitude: npt.ArrayLike | None = None,
    baseline: npt.ArrayLike | None = None,
    window_s: float = RESP_WINDOW_S,
) -> RespEstimate:
    """Estimate the breathing rate from every modulation available, fused (Karlen 2013).

    Parameters
    ----------
    beat_t_s:
        Time of each beat, in seconds, increasing.
    nn_ms:
        Interval ending at each beat, in ms (NaN where rejected): the RSA series.
    segment:
        Segment id per beat.
    amplitude, baseline:
        Optional PPG pulse amplitude and baseline per beat (NaN where unknown), as for
        :func:`resp_rate_from_ppg`; without them only RSA is used.
    window_s:
        Window length for spans longer than 1.5 windows, in seconds.

    Returns
    -------
    RespEstimate
        The fused rate in breaths per minute, or no rate with the reason.
    """
    t, series, seg = _check(
        beat_t_s, {"nn_ms": nn_ms, "amplitude": amplitude, "baseline": baseline}, segment
    )
    return _over_windows(t, series, seg, window_s)


# numba's cache watches a kernel's own file only: a digest of heartsong.dsp.hrv_freq,
# whose periodogram kernel _windows_kernel inlines, is frozen into the cache (see
# heartsong.numba_cache).
_SOURCES_DIGEST = sources_digest((hrv_freq,))


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of the hrv_freq source when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))
