"""Batch analysis of a whole recording: PPG (or RR intervals) in, beats and HRV out.

The stages, each documented where it lives:

1. gaps: NaN samples (a lost or unusable stretch) split the recording into pieces that
   are analysed apart; no interval spans a gap. Irregular timestamps are first put on a
   uniform grid (:func:`resample_uniform`).
2. polarity: a pulse rises fast and falls slowly, so the first difference of an upright
   PPG is positively skewed; a negatively skewed signal (raw reflective counts, camera
   brightness) is inverted, unless the caller says which way it points.
3. zero-phase Butterworth band-pass 0.5-8 Hz (:mod:`heartsong.dsp.filters`);
4. systolic peaks (Elgendi et al. 2013, :mod:`heartsong.dsp.peaks`) on the band-passed
   signal divided by its running RMS over ``AGC_WINDOW_S`` (automatic gain control, so
   a movement does not raise the threshold over the pulses after it);
5. template alignment of every pulse to the median of its neighbours, which both times the
   beat with sub-sample precision and scores it (:mod:`heartsong.dsp.quality`); beats whose
   correlation is below ``DROP_CORRELATION`` or whose amplitude is outside
   ``AMPLITUDE_RANGE`` times that of their neighbours are not pulses and are dropped;
6. artefact detection and correction (Lipponen & Tarvainen 2019,
   :mod:`heartsong.dsp.artifacts`): dropped and missed beats are filled in when at most two
   are missing in a row, otherwise the series is split; an interval still implausible after
   correction (outside 300-2000 ms, or more than ``MAX_DEVIATION`` from its neighbours'
   median) is rejected (NaN), never reported;
7. HRV over the whole record and over sliding windows
   (:func:`heartsong.dsp.window.window_metrics`; LF/HF of a window over the
   ``FREQ_WINDOW_S`` before its end). Successive differences that involve a corrected
   interval are left out of RMSSD and pNN50 (an interpolated interval carries no
   beat-to-beat information); mean HR and SDNN use every corrected NN interval.

Every metric is ``None`` with a reason when there are too few clean beats.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp.artifacts import ArtifactCorrection, correct_beats_lipponen2019
from heartsong.dsp.filters import PPG_BAND_HZ, butter_bandpass_sos, sos_filtfilt
from heartsong.dsp.peaks import ppg_findpeaks_elgendi
from heartsong.dsp.quality import BEAT_QUALITY_MIN, ppg_align_beats, window_quality
from heartsong.dsp.window import window_metrics
from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = [
    "DROP_CORRELATION",
    "HRV_KEYS",
    "MIN_FS_HZ",
    "AnalysisResult",
    "analyze_recording",
    "analyze_rr",
    "ppg_is_upright",
    "resample_uniform",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]

#: Lowest sampling rate accepted for PPG, Hz (a 0.5-8 Hz pulse needs at least this).
MIN_FS_HZ = 20.0
#: Beats whose pulse correlates less than this with its template are not pulses.
DROP_CORRELATION = 0.5
#: Beats whose pulse amplitude is outside this range, relative to the median of their
#: neighbours, are not pulses (a sensor losing the skin, a movement).
AMPLITUDE_RANGE = (0.5, 3.0)
#: Neighbouring pulses for the amplitude median.
AMPLITUDE_NEIGHBOURS = 30
#: After correction, an interval further than this fraction from the median of the
#: intervals around it was not repaired; it is rejected (NaN) instead.
MAX_DEVIATION = 0.3
#: Plausible NN intervals, ms (200 to 30 beats per minute).
IBI_RANGE_MS = (300.0, 2000.0)
#: Window of the running RMS the detector input is divided by, seconds.
AGC_WINDOW_S = 5.0
#: Zeros appended to each piece so the detector can decide on its last pulse, seconds.
END_PAD_S = 1.0
#: Pieces of signal shorter than this between gaps are not analysed, in seconds.
MIN_PIECE_S = 5.0
#: Grid rate for irregular timestamps when no rate is asked for, Hz (at least).
MIN_GRID_HZ = 50.0
#: A step between timestamps longer than this many median steps (and 0.25 s) is a gap.
GAP_STEPS = 5.0
#: LF/HF of a window is taken over this much time before its end (Task Force 1996
#: short-term length), in seconds; the other measures over the window itself.
FREQ_WINDOW_S = 300.0
#: Whole-record HRV keys, in output order (``mean_hr_bpm`` is the window's ``hr_bpm``).
HRV_KEYS: tuple[str, ...] = (
    "mean_hr_bpm",
    "rmssd_ms",
    "sdnn_ms",
    "pnn50_pct",
    "lf_hf",
    "sd1_ms",
    "sd2_ms",
    "resp_rate_bpm",
    "coherence",
)


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """Everything ``heartsong analyze`` reports about one recording.

    Attributes
    ----------
    fs_hz:
        Sampling rate the PPG was analysed at, Hz (None for RR input).
    duration_s:
        Length of the recording, seconds.
    beats_s:
        Corrected beat times, seconds from the start of the recording.
    ibi_ms:
        NN interval ending at each beat, ms; NaN for the first beat after a gap.
    beat_flags:
        Artefact class of each interval (see :data:`heartsong.dsp.artifacts.
        ARTIFACT_NAMES`), -1 for the first beat after a gap.
    beat_quality:
        Template correlation of each corrected beat in [-1, 1]; NaN for beats filled in
        by the correction and for RR input.
    artifacts:
        Counts per artefact class, ``artifact_pct``, dropped beats, gaps, clipping.
    hrv:
        Whole-record metrics under :data:`HRV_KEYS` (None when not measurable).
    reasons:
        Why a whole-record metric is None, by key.
    windows:
        One dict per sliding window: ``t_start_s``, ``t_end_s``, the window metrics,
        ``signal_quality`` and ``reasons``.
    """

    fs_hz: float | None
    duration_s: float
    beats_s: FloatArray
    ibi_ms: FloatArray
    beat_flags: npt.NDArray[np.int8]
    beat_quality: FloatArray
    artifacts: dict[str, object]
    hrv: dict[str, float | None]
    reasons: dict[str, str]
    windows: list[dict[str, object]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """The result as plain JSON-ready values (NaN becomes None), units in the names."""
        hrv: dict[str, object] = {k: _json_float(v) for k, v in self.hrv.items()}
        if self.reasons:
            hrv["reasons"] = dict(self.reasons)
        return {
            "fs_hz": _json_float(self.fs_hz),
            "duration_s": _json_float(self.duration_s),
            "beats_s": [_json_float(v, 4) for v in self.beats_s.tolist()],
            "ibi_ms": [_json_float(v, 2) for v in self.ibi_ms.tolist()],
            "artifacts": self.artifacts,
            "hrv": hrv,
            "windows": self.windows,
        }


def _json_float(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


# -- input conditioning --------------------------------------------------------------


def resample_uniform(
    t_s: npt.ArrayLike, x: npt.ArrayLike, fs_hz: float | None = None
) -> tuple[FloatArray, float, float]:
    """Put irregularly timed samples on a uniform grid (cubic Hermite interpolation).

    Parameters
    ----------
    t_s:
        Sample times in seconds, strictly increasing (e.g. camera frame times).
    x:
        Samples (any unit); NaN marks unusable samples.
    fs_hz:
        Grid rate in Hz; default: the median rate, at least ``MIN_GRID_HZ``.

    Returns
    -------
    tuple
        The resampled signal, the grid rate in Hz and the time of its first sample (s).
        Grid points in a gap (a step longer than ``GAP_STEPS`` median steps and 0.25 s)
        or next to a NaN sample are NaN.

    Notes
    -----
    Cubic Hermite interpolation with Catmull-Rom slopes for uneven knots, the centred
    difference ``(x[i+1] - x[i-1]) / (t[i+1] - t[i-1])`` (Catmull E, Rom R (1974), "A class
    of local interpolating splines", in Computer Aided Geometric Design, Academic Press,
    317-326). It is local (a sample affects its four neighbouring intervals only),
    continuous in value and slope, and keeps the pulse peaks that linear interpolation
    would flatten at camera frame rates.
    """
    t = np.ascontiguousarray(t_s, dtype=np.float64)
    v = np.ascontiguousarray(x, dtype=np.float64)
    if t.ndim != 1 or t.shape != v.shape:
        raise InputDataError("time_s", f"one time per sample, shape {v.shape}", t.shape)
    if t.size < 4:
        raise InputDataError("time_s", "at least 4 samples", t.size)
    if not np.all(np.isfinite(t)):
        raise InputDataError("time_s", "finite times in seconds")
    steps = np.diff(t)
    if np.any(steps <= 0.0):
        bad = int(np.flatnonzero(steps <= 0.0)[0]) + 1
        raise InputDataError("time_s", f"strictly increasing times (row {bad + 1})", t[bad])
    median_step = float(np.median(steps))
    if fs_hz is None:
        fs_hz = max(MIN_GRID_HZ, 1.0 / median_step)
    if not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
    grid = t[0] + np.arange(math.floor((t[-1] - t[0]) * fs_hz) + 1) / fs_hz
    # Slopes at the knots: centred differences, one-sided at the ends.
    slope = np.empty_like(v)
    slope[1:-1] = (v[2:] - v[:-2]) / (t[2:] - t[:-2])
    slope[0] = (v[1] - v[0]) / steps[0]
    slope[-1] = (v[-1] - v[-2]) / steps[-1]
    k = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, t.size - 2)
    h = steps[k]
    u = (grid - t[k]) / h
    u2 = u * u
    u3 = u2 * u
    out = (
        (2 * u3 - 3 * u2 + 1) * v[k]
        + (u3 - 2 * u2 + u) * h * slope[k]
        + (-2 * u3 + 3 * u2) * v[k + 1]
        + (u3 - u2) * h * slope[k + 1]
    )
    gap = steps > max(GAP_STEPS * median_step, 0.25)
    bad = gap[k] | ~np.isfinite(out)
    if np.any(gap):
        logger.info("%d gaps in the timestamps (longest %.2f s)", int(gap.sum()), steps.max())
    out[bad] = np.nan
    return out, float(fs_hz), float(t[0])


def ppg_is_upright(filtered: FloatArray) -> bool:
    """True when a band-passed PPG's pulses point up (fast rise, slow fall).

    The skewness of the first difference is positive for an upright pulse wave: the
    systolic upstroke is steeper and shorter than the diastolic decay.
    """
    d = np.diff(np.asarray(filtered, dtype=np.float64))
    d = d[np.isfinite(d)]
    if d.size < 3:
        return True
    centred = d - d.mean()
    m2 = float(np.mean(centred**2))
    if m2 <= 0.0:
        return True
    return float(np.mean(centred**3)) >= 0.0


def _pieces(x: FloatArray, min_len: int) -> list[tuple[int, int]]:
    """Runs of finite samples, ``[start, stop)``, at least ``min_len`` long."""
    finite = np.isfinite(x)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return [(a, b) for a, b in runs if b - a >= min_len]


# -- analysis ------------------------------------------------------------------------


def analyze_recording(
    x: npt.ArrayLike,
    fs_hz: float | None,
    *,
    t_s: npt.ArrayLike | None = None,
    window_s: float = 60.0,
    step_s: float = 10.0,
    invert: bool | None = None,
    clipped_pct: float = 0.0,
) -> AnalysisResult:
    """Analyse a whole PPG recording: beats, artefacts, HRV overall and per window.

    Parameters
    ----------
    x:
        PPG samples (any amplitude unit); NaN marks a gap (a lost stretch).
    fs_hz:
        Sampling rate in Hz of a uniformly sampled ``x``; with ``t_s``, the rate of the
        uniform grid to resample to (None: the median rate, at least 50 Hz).
    t_s:
        Optional sample times in seconds for irregularly sampled input (camera PPG).
    window_s, step_s:
        Sliding-window length and step, in seconds.
    invert:
        True if systole makes the signal fall (raw reflective counts), False if it makes
        it rise; None decides from the pulse shape (:func:`ppg_is_upright`).
    clipped_pct:
        Share of samples the reader found at the ADC rails, in %, reported as is.

    Returns
    -------
    AnalysisResult
        See :class:`AnalysisResult`; metrics are None with a reason when there are too
        few clean beats.
    """
    _check_windows(window_s, step_s)
    sig = np.asarray(x, dtype=np.float64)
    if sig.ndim != 1 or sig.size == 0:
        raise InputDataError("ppg", "a 1-D, non-empty array of samples", sig.shape)
    t0 = 0.0
    if t_s is not None:
        sig, fs, t0 = resample_uniform(t_s, sig, fs_hz)
    elif fs_hz is None or not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive sampling rate in Hz (or sample times)", fs_hz)
    else:
        fs = float(fs_hz)
    if fs < MIN_FS_HZ:
        raise InputDataError("fs_hz", f"a sampling rate of at least {MIN_FS_HZ:g} Hz", fs)
    duration_s = sig.size / fs
    pieces = _pieces(sig, round(MIN_PIECE_S * fs))
    if not pieces:
        raise InputDataError(
            "ppg", f"at least {MIN_PIECE_S:g} s of consecutive finite samples", sig.size
        )

    low_hz, high_hz = PPG_BAND_HZ
    sos = butter_bandpass_sos(low_hz, min(high_hz, 0.45 * fs), fs)
    filtered = [sos_filtfilt(sos, sig[a:b]) for a, b in pieces]
    if invert is None:
        upright = ppg_is_upright(np.concatenate(filtered))
        invert = not upright
        logger.info("PPG polarity from the pulse shape: %s", "inverted" if invert else "upright")
    times: list[FloatArray] = []
    corrs: list[FloatArray] = []
    feats: list[FloatArray] = []
    segs: list[npt.NDArray[np.int64]] = []
    n_detected = 0
    sign = -1.0 if invert else 1.0
    for seg_id, ((a, b), f) in enumerate(zip(pieces, filtered, strict=True)):
        s = sign * f
        # Zeros after the end let the detector decide on the last pulse (its look-ahead
        # would otherwise hold back the final W2 / 2); peaks found there are dropped.
        padded = np.concatenate([_gain_control(s, fs), np.zeros(round(END_PAD_S * fs))])
        peaks = ppg_findpeaks_elgendi(padded, fs)
        peaks = peaks[peaks < s.size - 1]
        n_detected += peaks.size
        aligned, corr = ppg_align_beats(s, fs, peaks)
        times.append((a + aligned) / fs)
        corrs.append(corr)
        feats.append(_pulse_features(s, sign * sig[a:b], peaks, fs))
        segs.append(np.full(aligned.size, seg_id, dtype=np.int64))
    beat_t = np.concatenate(times)
    corr_all = np.concatenate(corrs)
    feat_all = np.concatenate(feats, axis=1)
    seg_all = np.concatenate(segs)
    keep = _plausible_pulses(corr_all, feat_all[0], seg_all)
    n_dropped = int(np.count_nonzero(~keep))
    if n_dropped:
        logger.info("%d of %d beats dropped: pulse unlike its neighbours", n_dropped, beat_t.size)
    correction = correct_beats_lipponen2019(beat_t[keep], seg_all[keep])
    quality = _carry(correction.beat_t_s, beat_t[keep], corr_all[keep])
    pulses = (
        _carry(correction.beat_t_s, beat_t[keep], feat_all[0, keep]),
        _carry(correction.beat_t_s, beat_t[keep], feat_all[1, keep]),
    )
    extra = {
        "detected_beats_s": [round(float(v), 4) for v in beat_t[keep]],
        "n_detected_beats": n_detected,
        "n_dropped_beats": n_dropped,
        "n_gaps": max(len(pieces), len(np.unique(correction.segment))) - 1,
        "clipped_pct": round(float(clipped_pct), 3),
        "polarity": "inverted" if invert else "upright",
    }
    logger.debug("grid starts at %.3f s of the input's time axis", t0)
    return _assemble(
        correction, quality, fs, duration_s, window_s, step_s, extra, ppg=True, pulses=pulses
    )


def analyze_rr(
    rr_ms: npt.ArrayLike,
    *,
    window_s: float = 60.0,
    step_s: float = 10.0,
) -> AnalysisResult:
    """Analyse a series of RR intervals (a chest strap's), like :func:`analyze_recording`.

    Parameters
    ----------
    rr_ms:
        Consecutive RR intervals in ms; the first beat is at 0 s and beat ``k`` ends
        interval ``k - 1``.
    window_s, step_s:
        Sliding-window length and step, in seconds.

    Returns
    -------
    AnalysisResult
        With ``fs_hz`` None and no per-beat quality (NaN); artefacts are corrected as for
        PPG beats.
    """
    _check_windows(window_s, step_s)
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.ndim != 1 or rr.size == 0:
        raise InputDataError("rr_ms", "a 1-D, non-empty series of intervals in ms", rr.shape)
    if not (np.all(np.isfinite(rr)) and np.all(rr > 0.0)):
        raise InputDataError("rr_ms", "finite, positive intervals in ms")
    beat_t = np.concatenate([[0.0], np.cumsum(rr) / 1000.0])
    correction = correct_beats_lipponen2019(beat_t)
    quality = np.full(correction.beat_t_s.size, np.nan)
    extra: dict[str, object] = {
        "detected_beats_s": [round(float(v), 4) for v in beat_t],
        "n_detected_beats": int(beat_t.size),
    }
    return _assemble(
        correction, quality, None, float(beat_t[-1]), window_s, step_s, extra, ppg=False
    )


def _check_windows(window_s: float, step_s: float) -> None:
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise InputDataError("window_s", "a positive duration in seconds", window_s)
    if not (math.isfinite(step_s) and step_s > 0.0):
        raise InputDataError("step_s", "a positive duration in seconds", step_s)


@njit(cache=True)
def _local_median_kernel(
    values: FloatArray, segment: npt.NDArray[np.int64], half: int, min_count: int
) -> FloatArray:
    """Median of the finite values within ``half`` places of each one, in its segment.

    NaN where fewer than ``min_count`` such values exist (the value itself included).
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    buf = np.empty(2 * half + 1)
    for i in range(n):
        m = 0
        for j in range(max(0, i - half), min(n, i + half + 1)):
            if segment[j] == segment[i] and not np.isnan(values[j]):
                buf[m] = values[j]
                m += 1
        if m >= min_count:
            out[i] = np.median(buf[:m])
    return out


def _plausible_pulses(
    corr: FloatArray, amplitude: FloatArray, segment: npt.NDArray[np.int64]
) -> BoolArray:
    """Which detected beats look like pulses: shape (template correlation) and size.

    A beat is dropped when its correlation with the template is below
    ``DROP_CORRELATION`` or its amplitude is outside ``AMPLITUDE_RANGE`` times the median
    amplitude of its ``AMPLITUDE_NEIGHBOURS`` neighbours in the same piece. Unknown values
    (NaN, a pulse too near an edge) do not count against a beat.
    """
    keep = ~(corr < DROP_CORRELATION)
    ref = _local_median_kernel(
        np.ascontiguousarray(amplitude), segment, AMPLITUDE_NEIGHBOURS // 2, 5
    )
    rel = amplitude / ref
    low, high = AMPLITUDE_RANGE
    keep &= ~((rel < low) | (rel > high))
    return keep


def _reject_unrepaired(correction: ArtifactCorrection) -> FloatArray:
    """NN intervals, with those the correction could not make plausible set to NaN.

    An interval is rejected when it is outside ``IBI_RANGE_MS`` or further than
    ``MAX_DEVIATION`` from the median of the intervals around it (10 each side, same
    segment; at least 5 of them), a last safety net in the spirit of Malik et al. (1989)
    for stretches so disturbed that the artefact thresholds themselves are inflated, e.g.
    where the sensor lost the skin.
    """
    nn = correction.nn_ms.copy()
    lo_ms, hi_ms = IBI_RANGE_MS
    nn[(nn < lo_ms) | (nn > hi_ms)] = np.nan
    med = _local_median_kernel(nn, correction.segment, 10, 5)
    far = ~(np.abs(nn - med) <= MAX_DEVIATION * med)  # also True where med is NaN
    nn[far] = np.nan
    return nn


def _gain_control(s: FloatArray, fs_hz: float) -> FloatArray:
    """Divide by the centred running RMS over ``AGC_WINDOW_S``: a movement or the finger
    settling on a camera can be ten times the pulse, and would otherwise lift the
    detector's threshold over the pulses that follow (automatic gain control)."""
    w = max(3, round(AGC_WINDOW_S * fs_hz))
    csum = np.concatenate([[0.0], np.cumsum(s * s)])
    idx = np.arange(s.size)
    lo = np.clip(idx - w // 2, 0, s.size)
    hi = np.clip(idx + w // 2 + 1, 0, s.size)
    rms = np.sqrt((csum[hi] - csum[lo]) / (hi - lo))
    floor = 1e-12 + 1e-6 * float(np.max(rms))
    out: FloatArray = s / np.maximum(rms, floor)
    return out


def _pulse_features(s: FloatArray, raw: FloatArray, peaks: FloatArray, fs_hz: float) -> FloatArray:
    """Amplitude and baseline of each pulse, shape ``(2, n)``, for the breathing rate.

    The trough is the minimum of the band-passed pulse in the 0.4 s before its peak (after
    the previous peak); amplitude = band-passed peak - trough, baseline = the mean of the
    unfiltered signal at peak and trough (the band-pass removes the slow baseline swing
    that breathing causes).
    """
    out = np.full((2, peaks.size), np.nan)
    back = round(0.4 * fs_hz)
    prev = -1
    for i, p in enumerate(np.round(peaks).astype(np.int64).tolist()):
        lo = max(p - back, prev + 1, 0)
        if p - lo >= 2:
            trough = lo + int(np.argmin(s[lo:p]))
            out[0, i] = s[p] - s[trough]
            out[1, i] = 0.5 * (raw[p] + raw[trough])
        prev = p
    return out


def _carry(corrected_t: FloatArray, detected_t: FloatArray, values: FloatArray) -> FloatArray:
    """Carry a per-detected-beat value over to the corrected beat at the same time.

    Beats that the correction moved or filled in get NaN.
    """
    out = np.full(corrected_t.size, np.nan)
    if detected_t.size == 0 or corrected_t.size == 0:
        return out
    idx = np.clip(np.searchsorted(detected_t, corrected_t), 0, detected_t.size - 1)
    for cand in (idx, np.maximum(idx - 1, 0)):
        same = np.abs(detected_t[cand] - corrected_t) < 1e-9
        out[same] = values[cand[same]]
    return out


def _beat_series(correction: ArtifactCorrection) -> BoolArray:
    """``valid_diff`` for :func:`window_metrics`: may ``nn[i] - nn[i - 1]`` be taken?

    Only when both intervals are in one segment and neither was changed by the
    correction (an interpolated interval carries no beat-to-beat information).
    """
    flags = correction.flags
    valid = np.zeros(flags.shape[0], dtype=np.bool_)
    valid[1:] = (
        (correction.segment[1:] == correction.segment[:-1]) & (flags[1:] == 0) & (flags[:-1] == 0)
    )
    return valid


def _assemble(
    correction: ArtifactCorrection,
    quality: FloatArray,
    fs_hz: float | None,
    duration_s: float,
    window_s: float,
    step_s: float,
    extra: dict[str, object],
    *,
    ppg: bool,
    pulses: tuple[FloatArray, FloatArray] | None = None,
) -> AnalysisResult:
    """Whole-record and windowed metrics around a corrected beat series."""
    counts: dict[str, object] = dict(correction.counts)
    artifacts: dict[str, object] = {
        "method": "lipponen2019",
        **counts,
        "artifact_pct": round(correction.artifact_pct, 3),
        **extra,
        "beat_flags": correction.flags.astype(int).tolist(),
    }
    t = correction.beat_t_s
    nn = _reject_unrepaired(correction)
    valid = _beat_series(correction)
    amp = pulses[0] if pulses is not None else None
    base = pulses[1] if pulses is not None else None
    whole_quality = _quality(quality, correction, -math.inf, math.inf) if ppg else None
    no_quality = "RR input: no PPG to judge"
    whole = window_metrics(
        t,
        nn,
        valid,
        t_start_s=0.0,
        t_end_s=max(duration_s, 1e-3),
        quality=whole_quality,
        freq=True,
        amplitude=amp,
        baseline=base,
        quality_reason=no_quality,
    ).as_dict()
    raw_reasons = whole.pop("reasons", None)
    reasons: dict[str, str] = (
        {str(k): str(v) for k, v in raw_reasons.items()} if isinstance(raw_reasons, dict) else {}
    )
    hrv: dict[str, float | None] = {}
    for key in HRV_KEYS:
        src = "hr_bpm" if key == "mean_hr_bpm" else key
        value = whole.get(src)
        hrv[key] = float(value) if isinstance(value, (int, float)) else None
        if src in reasons:
            reasons[key] = reasons.pop(src)
    reasons = {k: v for k, v in reasons.items() if k in HRV_KEYS}

    windows: list[dict[str, object]] = []
    n_windows = math.floor((duration_s - window_s) / step_s + 1e-9) + 1
    for w in range(max(n_windows, 0)):
        start = w * step_s
        end = start + window_s
        q = _quality(quality, correction, start, end) if ppg else None
        metrics = window_metrics(
            t,
            nn,
            valid,
            t_start_s=start,
            t_end_s=end,
            quality=q,
            freq=True,
            freq_t_start_s=max(0.0, end - FREQ_WINDOW_S),
            amplitude=amp,
            baseline=base,
            quality_reason=no_quality,
        ).as_dict()
        entry: dict[str, object] = {"t_start_s": round(start, 3), "t_end_s": round(end, 3)}
        for key, value in metrics.items():
            entry[key] = _json_float(value) if isinstance(value, float) else value
        windows.append(entry)

    ibi = nn
    artifacts["n_rejected_intervals"] = int(
        np.count_nonzero(np.isnan(nn) & np.isfinite(correction.nn_ms))
    )
    return AnalysisResult(
        fs_hz=fs_hz,
        duration_s=duration_s,
        beats_s=correction.beat_t_s,
        ibi_ms=ibi,
        beat_flags=correction.flags,
        beat_quality=quality,
        artifacts=artifacts,
        hrv=hrv,
        reasons=reasons,
        windows=windows,
    )


def _quality(
    quality: FloatArray, correction: ArtifactCorrection, lo_s: float, hi_s: float
) -> float:
    """Window quality: good-beat share times (1 - share of corrected intervals)."""
    sel = (correction.beat_t_s >= lo_s) & (correction.beat_t_s <= hi_s)
    flags = correction.flags[sel]
    n_int = int(np.count_nonzero(flags >= 0))
    share = float(np.count_nonzero(flags > 0)) / n_int if n_int else 0.0
    return window_quality(quality[sel], artifact_share=share, threshold=BEAT_QUALITY_MIN)
