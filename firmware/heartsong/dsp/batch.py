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
5. each peak moved back to the steepest point of its upstroke
   (:func:`heartsong.dsp.peaks.ppg_max_upslope`), then template alignment of every pulse
   to the median of its neighbours, which both times the beat with sub-sample precision
   (by the pulse from its foot to just past the peak, :data:`heartsong.dsp.quality.
   TIMING_IBI`) and scores it over the whole pulse (:mod:`heartsong.dsp.quality`); this
   fiducial had the lowest or near-lowest pulse-arrival jitter against the ECG and the
   chest strap on every reference set (docs/VALIDATION.md). Beats whose correlation is
   below ``DROP_CORRELATION`` or whose amplitude is outside ``AMPLITUDE_RANGE`` times that
   of their neighbours are not pulses and are dropped;
6. artefact detection and correction (Lipponen & Tarvainen 2019,
   :mod:`heartsong.dsp.artifacts`): dropped and missed beats are filled in when at most two
   are missing in a row, otherwise the series is split; an interval still implausible after
   correction (outside 300-2000 ms, more than ``MAX_DEVIATION`` from its neighbours'
   median, or among neighbours spanning more than ``MAX_RANGE_RATIO``: beats found in
   noise) is rejected (NaN), never reported;
7. HRV over the whole record and over sliding windows
   (:func:`heartsong.dsp.window.window_metrics`; the sliding windows all in one kernel
   call, :func:`heartsong.dsp.window._window_rows_many`). A window's LF/HF is taken over the
   ``FREQ_WINDOW_S`` (5 min) before its end, recomputed only once the window end has
   moved ``LF_HF_STEP_S`` (60 s) since the last spectrum: the windows in between report
   the last one, and their ``lf_hf_t_start_s`` / ``lf_hf_t_end_s`` say which span it
   covers (two 5-min spans 60 s apart share four fifths of their beats, and the
   spectrum is a window's costliest measure). Successive differences that involve a
   corrected interval are left out of RMSSD and pNN50 (an interpolated interval carries
   no beat-to-beat information); mean HR and SDNN use every corrected NN interval.

Every metric is ``None`` with a reason when there are too few clean beats, and
``artifacts["unusable_s"]`` lists the stretches without any reported interval.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp import sorted_buffer
from heartsong.dsp.artifacts import ArtifactCorrection, correct_beats_lipponen2019
from heartsong.dsp.artifacts_stream import (
    _K_NN,
    _K_NNC,
    MAX_DEVIATION,
    MAX_RANGE_RATIO,
    NN_RANGE_MS,
    REJECT_HALF,
    REJECT_MIN_COUNT,
    _reject_kernel,
)
from heartsong.dsp.filters import PPG_BAND_HZ, butter_bandpass_sos, sos_filtfilt
from heartsong.dsp.hrv_freq import (
    MIN_SPAN_LF_S,
    SPAN_TOLERANCE,
    hrv_frequency,
    segments_from_holes,
)
from heartsong.dsp.peaks import ppg_findpeaks_elgendi, ppg_max_upslope
from heartsong.dsp.quality import BEAT_QUALITY_MIN, TIMING_IBI, ppg_align_beats
from heartsong.dsp.resp import ppg_pulse_features
from heartsong.dsp.sorted_buffer import _sorted_insert, _sorted_remove
from heartsong.dsp.window import (
    LOW_COVERAGE,
    WINDOW_METRIC_NAMES,
    WindowRules,
    _window_rows_many,
    window_metrics,
)
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

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
#: A window's LF/HF spectrum is recomputed once the window end has moved this far since
#: the last one, in seconds; the windows in between report the last spectrum (their
#: ``lf_hf_t_start_s`` and ``lf_hf_t_end_s`` say which span it covers). Two 5-min spans
#: 60 s apart share four fifths of their beats, and the spectrum is the costliest
#: measure of a window (with 10-s steps, recomputing it for every window would double the
#: cost of the whole analysis).
LF_HF_STEP_S = 60.0
#: The window rules of the analysis (window_metrics' defaults).
_RULES = WindowRules()
#: The window metrics in :func:`heartsong.dsp.window._window_rows_many`'s value order.
_WINDOW_VALUE_NAMES = WINDOW_METRIC_NAMES[:-1]
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
        Counts per artefact class, ``artifact_pct``, dropped beats, gaps, clipping, and
        ``unusable_s``: the ``[start, end]`` stretches (s) without a reported NN interval
        (lost, flat or implausible signal, and the record's edges), heartsong's own
        judgement of where the signal could not be measured.
    hrv:
        Whole-record metrics under :data:`HRV_KEYS` (None when not measurable).
    reasons:
        Why a whole-record metric is None, by key.
    windows:
        One dict per sliding window: ``t_start_s``, ``t_end_s``, the window metrics,
        ``signal_quality``, ``reasons``, and ``lf_hf_t_start_s`` / ``lf_hf_t_end_s``, the
        span the window's LF/HF spectrum covers (up to ``FREQ_WINDOW_S`` ending at most
        ``LF_HF_STEP_S`` before the window's end). Values are kept at full precision;
        :meth:`as_dict` rounds them for JSON.
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
            "artifacts": _json_artifacts(self.artifacts),
            "hrv": hrv,
            "windows": [{k: _json_value(v) for k, v in w.items()} for w in self.windows],
        }


def _json_artifacts(artifacts: dict[str, object]) -> dict[str, object]:
    """The artefact summary with its beat times rounded to 0.1 ms."""
    out = dict(artifacts)
    detected = out.get("detected_beats_s")
    if isinstance(detected, list):
        out["detected_beats_s"] = [round(v, 4) for v in detected]
    return out


def _json_value(value: object) -> object:
    """A metric as JSON: floats rounded to 4 digits, NaN and infinities as None."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    return value


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


#: Length of the stretches whose pulse shapes vote on the polarity, seconds.
POLARITY_SEGMENT_S = 10.0


def ppg_is_upright(filtered: FloatArray | list[FloatArray], fs_hz: float) -> bool:
    """True when a band-passed PPG's pulses point up (fast rise, slow fall).

    The skewness of the first difference is positive for an upright pulse wave: the
    systolic upstroke is steeper and shorter than the diastolic decay. It is taken in
    every :data:`POLARITY_SEGMENT_S` stretch and the median decides, so a glitch or a few
    minutes of movement cannot outvote the pulses of the rest of the recording (one
    skewness over a whole wrist recording took the motion's sign on half of Stress-Predict's
    E4 files, and one sample 100x the pulse flipped a clean record).

    Parameters
    ----------
    filtered:
        The band-passed PPG, or its pieces between gaps (each judged on its own).
    fs_hz:
        Sampling rate, Hz.
    """
    pieces = filtered if isinstance(filtered, list) else [filtered]
    n = max(round(POLARITY_SEGMENT_S * fs_hz), 3)
    skews = np.concatenate([
        _segment_skewness(np.ascontiguousarray(p, dtype=np.float64), n) for p in pieces
    ])
    skews = skews[np.isfinite(skews)]
    return bool(skews.size == 0 or np.median(skews) >= 0.0)


@njit(cache=True, nogil=True)
def _segment_skewness(x: FloatArray, n: int) -> FloatArray:
    """Skewness (third central moment over the SD cubed) of the finite first differences
    of ``x`` in consecutive stretches of ``n`` differences (a shorter tail stretch counts
    when at least half as long); NaN for a stretch with under half its differences finite
    or none that vary."""
    m = x.shape[0] - 1
    k = max(m // n, 1) if m >= (n + 1) // 2 else 0
    out = np.full(k, np.nan)
    for s in range(k):
        lo = s * n
        hi = m if s == k - 1 else lo + n
        count = 0
        total = 0.0
        for i in range(lo, hi):
            d = x[i + 1] - x[i]
            if math.isfinite(d):
                count += 1
                total += d
        if 2 * count < hi - lo or count < 3:
            continue
        mean = total / count
        m2 = 0.0
        m3 = 0.0
        for i in range(lo, hi):
            d = x[i + 1] - x[i]
            if math.isfinite(d):
                c = d - mean
                m2 += c * c
                m3 += c * c * c
        if m2 > 0.0:
            out[s] = (m3 / count) / (m2 / count) ** 1.5
    return out


def _pieces(x: FloatArray, min_len: int) -> list[tuple[int, int]]:
    """Runs of finite samples, ``[start, stop)``, at least ``min_len`` long."""
    finite = np.isfinite(x)
    if finite.all():  # the usual case: one piece, without scanning for the edges
        return [(0, int(x.size))] if x.size >= min_len else []
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
    started = time.perf_counter()
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
        longest = max((b - a for a, b in _pieces(sig, 1)), default=0)
        raise InputDataError(
            "ppg", f"at least {MIN_PIECE_S:g} s of consecutive finite samples",
            f"{longest / fs:.1f} s",
        )

    low_hz, high_hz = PPG_BAND_HZ
    sos = butter_bandpass_sos(low_hz, min(high_hz, 0.45 * fs), fs)
    filtered = [sos_filtfilt(sos, sig[a:b]) for a, b in pieces]
    if invert is None:
        upright = ppg_is_upright(filtered, fs)
        invert = not upright
        logger.info("PPG polarity from the pulse shape: %s", "inverted" if invert else "upright")
    times: list[FloatArray] = []
    corrs: list[FloatArray] = []
    feats: list[FloatArray] = []
    segs: list[npt.NDArray[np.int64]] = []
    n_detected = 0
    sign = -1.0 if invert else 1.0
    for seg_id, ((a, b), f) in enumerate(zip(pieces, filtered, strict=True)):
        s = f if sign > 0.0 else -f
        # Zeros after the end let the detector decide on the last pulse (its look-ahead
        # would otherwise hold back the final W2 / 2); peaks found there are dropped.
        padded = _gain_control(s, fs, pad=round(END_PAD_S * fs))
        peaks = ppg_findpeaks_elgendi(padded, fs)
        peaks = peaks[peaks < s.size - 1]
        n_detected += peaks.size
        upslope = ppg_max_upslope(s, fs, peaks)
        aligned, corr = ppg_align_beats(s, fs, upslope, timing_ibi=TIMING_IBI)
        times.append((a + aligned) / fs)
        corrs.append(corr)
        feats.append(np.vstack(ppg_pulse_features(sign * sig[a:b], s, fs, peaks)))
        segs.append(np.full(aligned.size, seg_id, dtype=np.int64))
    beat_t = np.concatenate(times)
    corr_all = np.concatenate(corrs)
    feat_all = np.concatenate(feats, axis=1)
    seg_all = np.concatenate(segs)
    keep = _plausible_pulses(corr_all, feat_all[0], seg_all)
    n_dropped = int(np.count_nonzero(~keep))
    if n_dropped:
        logger.info("%d of %d beats dropped: pulse unlike its neighbours", n_dropped, beat_t.size)
    beats_done = time.perf_counter()
    correction = correct_beats_lipponen2019(beat_t[keep], seg_all[keep])
    corrected = time.perf_counter()
    quality = _carry(correction.beat_t_s, beat_t[keep], corr_all[keep])
    pulses = (
        _carry(correction.beat_t_s, beat_t[keep], feat_all[0, keep]),
        _carry(correction.beat_t_s, beat_t[keep], feat_all[1, keep]),
    )
    extra = {
        "detected_beats_s": beat_t[keep].tolist(),
        "n_detected_beats": n_detected,
        "n_dropped_beats": n_dropped,
        "n_gaps": max(len(pieces), len(np.unique(correction.segment))) - 1,
        "clipped_pct": round(float(clipped_pct), 3),
        "polarity": "inverted" if invert else "upright",
    }
    logger.debug("grid starts at %.3f s of the input's time axis", t0)
    shared: list[float] = []
    result = _assemble(
        correction,
        quality,
        fs,
        duration_s,
        window_s,
        step_s,
        extra,
        ppg=True,
        pulses=pulses,
        shared_s=shared,
    )
    done = time.perf_counter()
    stage_ms = {
        "beats": 1e3 * (beats_done - started),
        "correction": 1e3 * (corrected - beats_done),
        "metrics": 1e3 * (done - corrected),
        "metrics_shared": 1e3 * sum(shared),
    }
    logger.debug("stage times (ms): %s", stage_ms, extra={"stage_ms": stage_ms})
    return result


def analyze_rr(
    rr_ms: npt.ArrayLike,
    *,
    beat_t_s: npt.ArrayLike | None = None,
    gap_before: npt.ArrayLike | None = None,
    window_s: float = 60.0,
    step_s: float = 10.0,
) -> AnalysisResult:
    """Analyse a series of RR intervals (a chest strap's), like :func:`analyze_recording`.

    Parameters
    ----------
    rr_ms:
        RR intervals in ms. Without ``beat_t_s`` they are back to back: the first beat is
        at 0 s and beat ``k`` ends interval ``k - 1``.
    beat_t_s:
        Optional time of the beat ending each interval, seconds (increasing). An interval
        whose first beat (``beat_t_s - rr_ms / 1000``) comes more than
        :data:`RR_JOIN_TOLERANCE_S` after the previous interval's last beat starts a new
        segment: beats were lost between them, and no interval spans the gap. Times are
        reported from the first beat.
    gap_before:
        Optional flags (with ``beat_t_s``): True starts a new segment at that interval
        (the device lost beats before it) whenever its first beat falls after the
        previous interval's last, however little; with no time between them there is
        no room for a lost beat, and the times win.
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
    if beat_t_s is None:
        beat_t = np.concatenate([[0.0], np.cumsum(rr) / 1000.0])
        segment = np.zeros(beat_t.size, dtype=np.int64)
    else:
        beat_t, segment = _rr_timeline(rr, beat_t_s, gap_before)
    correction = correct_beats_lipponen2019(beat_t, segment)
    quality = np.full(correction.beat_t_s.size, np.nan)
    extra: dict[str, object] = {
        "detected_beats_s": beat_t.tolist(),
        "n_detected_beats": int(beat_t.size),
        "n_gaps": int(segment[-1]),
    }
    return _assemble(
        correction, quality, None, float(beat_t[-1]), window_s, step_s, extra, ppg=False
    )


#: An RR interval whose first beat is this much later than the previous interval's last
#: beat follows a gap, seconds (exported beat times are rounded to 0.1 ms).
RR_JOIN_TOLERANCE_S = 0.05


def _rr_timeline(
    rr: FloatArray, beat_t_s: npt.ArrayLike, gap_before: npt.ArrayLike | None
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Beat times from the first beat (s) and a segment id per beat, for intervals with
    the times of their closing beats (see :func:`analyze_rr`)."""
    end = np.asarray(beat_t_s, dtype=np.float64)
    if end.shape != rr.shape or not np.all(np.isfinite(end)):
        raise InputDataError("beat_t_s", "a finite beat time in seconds for every interval")
    if np.any(np.diff(end) <= 0.0):
        raise InputDataError("beat_t_s", "increasing beat times in seconds")
    flagged = (np.zeros(rr.size, dtype=np.bool_) if gap_before is None
               else np.asarray(gap_before, dtype=np.bool_))
    if flagged.shape != rr.shape:
        raise InputDataError("gap_before", "one flag per interval", flagged.shape)
    start = end - rr / 1000.0
    prev = np.concatenate([[-math.inf], end[:-1]])
    # A new segment where the interval's first beat is not the previous one's last; its
    # first beat is then a beat of its own (when it does fall after the previous beat).
    new = (start > prev + RR_JOIN_TOLERANCE_S) | (flagged & (start > prev))
    new[0] = True
    segment_of_interval = np.cumsum(new) - 1
    t = np.empty(rr.size + int(new.sum()))
    seg = np.empty(t.size, dtype=np.int64)
    at = np.arange(rr.size) + np.cumsum(new)  # where each closing beat goes
    t[at] = end
    seg[at] = segment_of_interval
    first = at[new] - 1
    t[first] = start[new]
    seg[first] = segment_of_interval[new]
    return t - t[0], seg


def _check_windows(window_s: float, step_s: float) -> None:
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise InputDataError("window_s", "a positive duration in seconds", window_s)
    if not (math.isfinite(step_s) and step_s > 0.0):
        raise InputDataError("step_s", "a positive duration in seconds", step_s)


@njit(cache=True, nogil=True)
def _local_median_kernel(
    values: FloatArray, segment: npt.NDArray[np.int64], half: int, min_count: int
) -> FloatArray:
    """Median of the finite values within ``half`` places of each one, in its segment.

    Segments are runs of equal ids. NaN where fewer than ``min_count`` such values exist
    (the value itself included). Each run's window of finite values is kept sorted as it
    slides (one insertion and one removal per value) instead of taking a median per value.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    buf = np.empty(2 * half + 1)
    a = 0
    while a < n:
        b = a
        while b < n and segment[b] == segment[a]:
            b += 1
        m = 0
        nxt = a
        for i in range(a, b):
            while nxt < b and nxt <= i + half:
                if not np.isnan(values[nxt]):
                    m = _sorted_insert(buf, m, values[nxt])
                nxt += 1
            gone = i - half - 1
            if gone >= a and not np.isnan(values[gone]):
                m = _sorted_remove(buf, m, values[gone])
            if m >= min_count and m > 0:
                k = m // 2
                out[i] = buf[k] if m % 2 == 1 else (buf[k - 1] + buf[k]) / 2.0
        a = b
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

    An interval is rejected when it is outside ``NN_RANGE_MS``, further than
    ``MAX_DEVIATION`` from the median of the intervals around it (10 each side, same
    segment; at least 5 of them), a last safety net in the spirit of Malik et al. (1989)
    for stretches so disturbed that the artefact thresholds themselves are inflated, e.g.
    where the sensor lost the skin; or when those intervals span more than
    ``MAX_RANGE_RATIO`` (Orphanidou et al. 2015): beats detected in noise (a movement).
    The streaming pipeline's kernel (:func:`heartsong.dsp.artifacts_stream._reject_kernel`)
    does it over the whole series here, so both apply one rule.
    """
    n = correction.nn_ms.shape[0]
    table = np.empty((_K_NNC + 1, n))
    table[_K_NN] = correction.nn_ms
    lo_ms, hi_ms = NN_RANGE_MS
    _reject_kernel(
        table,
        np.ascontiguousarray(correction.segment, dtype=np.int64),
        0,
        0,
        n,
        lo_ms,
        hi_ms,
        MAX_DEVIATION,
        MAX_RANGE_RATIO,
        REJECT_HALF,
        REJECT_MIN_COUNT,
    )
    nn: FloatArray = table[_K_NNC].copy()
    return nn


def _gain_control(s: FloatArray, fs_hz: float, pad: int = 0) -> FloatArray:
    """Divide by the centred running RMS over ``AGC_WINDOW_S``: a movement or the finger
    settling on a camera can be ten times the pulse, and would otherwise lift the
    detector's threshold over the pulses that follow (automatic gain control). ``pad``
    zeros follow the result."""
    out: FloatArray = _gain_control_kernel(
        np.ascontiguousarray(s, dtype=np.float64), max(3, round(AGC_WINDOW_S * fs_hz)) // 2, pad
    )
    return out


@njit(cache=True, nogil=True)
def _gain_control_kernel(s: FloatArray, half: int, pad: int) -> FloatArray:
    """``s`` divided by its RMS over ``[i - half, i + half]`` (cut at the ends), the RMS
    floored at ``1e-12 + 1e-6`` times its largest value, followed by ``pad`` zeros."""
    n = s.shape[0]
    csum = np.empty(n + 1)
    csum[0] = 0.0
    for i in range(n):
        csum[i + 1] = csum[i] + s[i] * s[i]
    rms = np.empty(n)
    top = 0.0
    for i in range(n):
        lo = max(i - half, 0)
        hi = min(i + half + 1, n)
        rms[i] = math.sqrt(max(csum[hi] - csum[lo], 0.0) / (hi - lo))
        top = max(top, rms[i])
    floor = 1e-12 + 1e-6 * top
    out = np.zeros(n + pad)
    for i in range(n):
        out[i] = s[i] / max(rms[i], floor)
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
    shared_s: list[float] | None = None,
) -> AnalysisResult:
    """Whole-record and windowed metrics around a corrected beat series.

    ``shared_s``, if given, receives the seconds spent in the metric functions shared
    with the streaming pipeline (:func:`heartsong.dsp.window.window_metrics` and the
    LF/HF spectra), for the benchmark's breakdown.
    """
    clock = time.perf_counter
    spent = 0.0
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
    everything = np.array([-math.inf]), np.array([math.inf])
    whole_quality = float(_window_qualities(quality, correction, *everything)[0]) if ppg else None
    no_quality = "RR input: no PPG to judge"
    tic = clock()
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
    spent += clock() - tic
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
    # Scattered clean stretches too short a share of the record for its heart rate are
    # too short for its spectrum as well: the record's LF/HF, breathing and coherence
    # would speak for minutes, not for the recording.
    sparse = reasons.get("mean_hr_bpm", "")
    if sparse.startswith(LOW_COVERAGE):
        for key in ("lf_hf", "resp_rate_bpm", "coherence"):
            if hrv[key] is not None:
                hrv[key] = None
                reasons[key] = sparse

    n_windows = max(math.floor((duration_s - window_s) / step_s + 1e-9) + 1, 0)
    starts = step_s * np.arange(n_windows, dtype=np.float64)
    ends = starts + window_s
    qualities = _window_qualities(quality, correction, starts, ends) if ppg else None
    lo_idx = t.searchsorted(starts, side="left")
    hi_idx = t.searchsorted(ends, side="right")
    windows: list[dict[str, object]] = []
    tic = clock()
    # Every window in one kernel call; LF/HF comes from _lf_hf below, at a coarser step.
    rows = _window_rows_many(
        t, nn, valid, amp, base, lo_idx, hi_idx, starts, ends, qualities, _RULES, no_quality
    )
    spent += clock() - tic
    lf: tuple[float | None, str, float, float] = (None, "", 0.0, 0.0)
    for w, (values, why) in enumerate(rows):
        start, end = float(starts[w]), float(ends[w])
        if w == 0 or end - lf[3] >= LF_HF_STEP_S - 1e-9:
            tic = clock()
            lf = _lf_hf(t, nn, valid, max(0.0, end - FREQ_WINDOW_S), end)
            spent += clock() - tic
        entry: dict[str, object] = {"t_start_s": start, "t_end_s": end}
        entry.update(zip(_WINDOW_VALUE_NAMES, values, strict=True))
        # The name for the window's heart rate, as in the whole-record section;
        # ``hr_bpm`` (the same value) is the name the device's metrics, MQTT and the
        # stress features read.
        entry["mean_hr_bpm"] = entry["hr_bpm"]
        if "hr_bpm" in why:
            why["mean_hr_bpm"] = why["hr_bpm"]
        entry["lf_hf"] = lf[0]
        entry["signal_quality"] = None if qualities is None else float(qualities[w])
        if lf[1]:
            why["lf_hf"] = lf[1]
        entry["reasons"] = {k: v for k, v in why.items() if v}
        entry["lf_hf_t_start_s"] = lf[2]
        entry["lf_hf_t_end_s"] = lf[3]
        windows.append(entry)

    if shared_s is not None:
        shared_s.append(spent)
    ibi = nn
    artifacts["unusable_s"] = _unusable_spans(t, nn, duration_s)
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


def _window_qualities(
    quality: FloatArray, correction: ArtifactCorrection, starts: FloatArray, ends: FloatArray
) -> FloatArray:
    """Quality of each window ``[starts[w], ends[w]]`` (s), from prefix counts.

    The value of :func:`heartsong.dsp.quality.window_quality` for the window's beats:
    the share of beats whose correlation reaches ``BEAT_QUALITY_MIN``, times one minus
    the share of the window's intervals the artefact correction changed; 0 without beats.
    """
    t = correction.beat_t_s
    flags = correction.flags
    lo = t.searchsorted(starts, side="left")
    hi = t.searchsorted(ends, side="right")
    good = np.concatenate([[0], np.cumsum(quality >= BEAT_QUALITY_MIN)])
    n_int = np.concatenate([[0], np.cumsum(flags >= 0)])
    n_changed = np.concatenate([[0], np.cumsum(flags > 0)])
    n_beats = hi - lo
    intervals = n_int[hi] - n_int[lo]
    share = np.where(intervals > 0, (n_changed[hi] - n_changed[lo]) / np.maximum(intervals, 1), 0.0)
    out: FloatArray = np.where(
        n_beats > 0, (good[hi] - good[lo]) / np.maximum(n_beats, 1) * (1.0 - share), 0.0
    )
    return out


def _lf_hf(
    t: FloatArray, nn: FloatArray, valid: BoolArray, start_s: float, end_s: float
) -> tuple[float | None, str, float, float]:
    """LF/HF of the beats in ``[start_s, end_s]`` (s): (value or None, why not, span).

    The rule of :func:`heartsong.dsp.window.window_metrics`: the clean intervals must
    cover at least ``(1 - SPAN_TOLERANCE) * MIN_SPAN_LF_S`` seconds (Task Force 1996).
    """
    lo = int(t.searchsorted(start_s, side="left"))
    hi = int(t.searchsorted(end_s, side="right"))
    part = nn[lo:hi]
    coverage_s = float(np.sum(part[np.isfinite(part)])) / 1000.0
    needed = (1.0 - SPAN_TOLERANCE) * MIN_SPAN_LF_S
    if coverage_s < needed:
        why = f"clean beats cover too little for LF/HF: {coverage_s:.0f} s < {needed:.0f} s"
        return None, why, start_s, end_s
    tt, vv = t[lo:hi], valid[lo:hi]
    freq = hrv_frequency(tt, part, segments_from_holes(tt, part, vv))
    if not math.isfinite(freq.lf_hf):
        return None, "no high-frequency power to divide by", start_s, end_s
    return float(freq.lf_hf), "", start_s, end_s


def _unusable_spans(t: FloatArray, nn: FloatArray, duration_s: float) -> list[list[float]]:
    """Stretches of the recording without a reported NN interval, ``[start, end]`` in s.

    The complement of the intervals between consecutive beats joined by an NN interval:
    lost or flat signal, pulses that were not pulses, intervals rejected as implausible,
    and the edges of the recording before the first and after the last interval.
    """
    k = np.flatnonzero(np.isfinite(nn))
    k = k[k > 0]
    if k.size == 0:
        return [[0.0, round(duration_s, 3)]]
    cov_lo = t[k - 1]
    cov_hi = t[k]
    spans: list[list[float]] = []
    if cov_lo[0] > 0.0:
        spans.append([0.0, round(float(cov_lo[0]), 3)])
    breaks = np.flatnonzero(cov_lo[1:] > cov_hi[:-1])
    for i in breaks.tolist():
        spans.append([round(float(cov_hi[i]), 3), round(float(cov_lo[i + 1]), 3)])
    if cov_hi[-1] < duration_s:
        spans.append([round(float(cov_hi[-1]), 3), round(duration_s, 3)])
    return spans


# numba's cache watches a kernel's own file only: a digest of heartsong.dsp.sorted_buffer,
# whose kernels these inline, is frozen into the cache (see heartsong.numba_cache).
_SOURCES_DIGEST = sources_digest((sorted_buffer,))


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of the sorted-buffer source when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))
