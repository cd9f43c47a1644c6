"""Every heart metric of one time window, shared by the streaming and the batch pipelines.

:func:`window_metrics` takes a beat series (times, the NN interval ending at each beat,
and which successive differences may be taken) and a window, and returns the metrics
under their canonical names, each ``None`` with a reason when it cannot be measured
honestly:

* time domain (Task Force 1996; :mod:`heartsong.dsp.hrv_time`) and Poincare SD1/SD2
  (Brennan et al. 2001; :mod:`heartsong.dsp.hrv_nonlinear`) over ``[t_start_s, t_end_s]``;
* with ``freq``: LF/HF (:mod:`heartsong.dsp.hrv_freq`) over ``[freq_t_start_s, t_end_s]``
  (the streaming pipeline uses 5 min, the Task Force short-term length), and the
  breathing rate (:mod:`heartsong.dsp.resp`) and coherence (:mod:`heartsong.dsp.coherence`)
  over ``[t_start_s, t_end_s]``: both describe the breathing of the last minute (HeartMath
  scores coherence over 64 s), and a slow window would lag a breathing pacer by minutes.

A beat whose NN interval is NaN is a rejected beat: it is left out, and so are the two
differences it takes part in. With PPG pulse features, the breathing rate and coherence
of a window up to 96 s long also leave out beats whose features are unknown (one set of
periodograms serves both). Gaps longer than 3 s start a new segment for spectral
detrending (:func:`heartsong.dsp.hrv_freq.segments_from_holes`).

Cost. The streaming pipeline calls this every few seconds, next to an audio synthesiser,
so everything but LF/HF runs in one kernel call (:func:`_window_kernel`), which calls
the kernels of the modules named above; Python only turns its numbers into reasons. The
batch analysis measures all its sliding windows in one call (:func:`_windows_kernel`).
numba's cache watches a kernel's own file only, so a cached kernel of this module could
keep an old copy of a kernel it calls from another file: a digest of those files is
frozen into :func:`_compiled_sources_digest_kernel` when this module's kernels are
compiled, and when it no longer matches the files, they are recompiled
(:func:`_refresh_stale_kernels`, run at import).
"""

from __future__ import annotations

import importlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp.coherence import (
    COHERENCE_WINDOW_S,
    _coherence_score_kernel,
    hrv_coherence,
)
from heartsong.dsp.coherence import MIN_COVERAGE_S as COHERENCE_MIN_COVERAGE_S
from heartsong.dsp.hrv_freq import (
    MIN_SEGMENT_SAMPLES,
    MIN_SPAN_LF_S,
    SPAN_TOLERANCE,
    _psd_kernel,
    _segments_kernel,
    hrv_lf_hf,
    segments_from_holes,
)
from heartsong.dsp.hrv_nonlinear import _poincare_kernel
from heartsong.dsp.hrv_time import (
    PNN_THRESHOLD_MS,
    _mean_kernel,
    _pnn_kernel,
    _rmssd_kernel,
    _sdnn_kernel,
)
from heartsong.dsp.resp import _FEW_BEATS as _RESP_FEW_BEATS
from heartsong.dsp.resp import _FEW_SECONDS as _RESP_FEW_SECONDS
from heartsong.dsp.resp import MIN_COVERAGE_S as RESP_MIN_COVERAGE_S
from heartsong.dsp.resp import OVERSAMPLE as RESP_OVERSAMPLE
from heartsong.dsp.resp import (
    RESP_BAND_HZ,
    _resp_fused_kernel,
    resp_rate,
)
from heartsong.dsp.resp import _window_estimate as _resp_window_estimate
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels as _module_kernels
from heartsong.numba_cache import refresh_stale_kernels as _refresh_stale_kernels
from heartsong.numba_cache import sources_digest as _sources_digest

__all__ = ["WINDOW_METRIC_NAMES", "WindowMetrics", "WindowRules", "window_metrics"]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: The metrics of a window, in output order.
WINDOW_METRIC_NAMES = (
    "hr_bpm",
    "rmssd_ms",
    "sdnn_ms",
    "pnn50_pct",
    "lf_hf",
    "sd1_ms",
    "sd2_ms",
    "resp_rate_bpm",
    "coherence",
    "signal_quality",
)
_TIME_NAMES = ("hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct", "sd1_ms", "sd2_ms")
_DIFF_NAMES = ("rmssd_ms", "pnn50_pct", "sd1_ms", "sd2_ms")
_FREQ_NAMES = ("lf_hf", "resp_rate_bpm", "coherence")
_RESP_SOURCES = ("rsa", "ppg_am", "ppg_bw")
#: Longest hole (seconds) a spectral segment bridges (see ``segments_from_holes``).
_MAX_HOLE_S = 3.0
#: Spans up to this many coherence windows get one set of periodograms.
_SHORT_SPAN_WINDOWS = 1.5
_NO_SERIES = np.zeros(0)

# Fields of the window kernel's output vector.
_O_HR, _O_RMSSD, _O_SDNN, _O_PNN, _O_SD1, _O_SD2 = 0, 1, 2, 3, 4, 5
_O_N_CLEAN, _O_COVERED, _O_N_DIFFS, _O_TIME = 6, 7, 8, 9
_O_RESP, _O_RESP_Q, _O_RESP_CODE, _O_KEPT, _O_BEST, _O_COH, _O_LONG = (
    10,
    11,
    12,
    13,
    14,
    15,
    16,
)
_O_RATES, _O_QUALITIES = 17, 20  # per-source breathing estimates (3 each)
_N_OUT = 23
# Time-domain verdicts. The breathing verdicts beyond those of the fusion (0 to 2),
# _RESP_FEW_SECONDS and _RESP_FEW_BEATS, are those of resp._windows_kernel.
_TIME_OK, _TIME_FEW_BEATS, _TIME_LOW_COVERAGE, _TIME_FEW_DIFFS = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class WindowRules:
    """When a window holds too little to measure.

    Attributes
    ----------
    min_clean_intervals:
        Fewer clean NN intervals in the window and the time-domain values are None.
    min_coverage:
        Fraction of the window the clean intervals must cover, else the time-domain
        values are None.
    min_diffs:
        Fewer successive differences and RMSSD, pNN50, SD1 and SD2 are None.
    """

    min_clean_intervals: int = 20
    min_coverage: float = 0.5
    min_diffs: int = 10

    def __post_init__(self) -> None:
        if self.min_clean_intervals < 2:
            raise InputDataError("min_clean_intervals", "at least 2", self.min_clean_intervals)
        if self.min_diffs < 2:
            raise InputDataError("min_diffs", "at least 2", self.min_diffs)
        if not 0.0 <= self.min_coverage <= 1.0:
            raise InputDataError("min_coverage", "a fraction in [0, 1]", self.min_coverage)


_DEFAULT_RULES = WindowRules()

#: The metrics of a window in the field order of :class:`WindowMetrics`, ``hr_bpm`` to
#: ``coherence`` (None where not measured).
WindowValues = tuple[
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
]


@dataclass(frozen=True, slots=True)
class WindowMetrics:
    """The heart metrics of one window; ``None`` where not measurable, with a reason.

    Attributes
    ----------
    hr_bpm, rmssd_ms, sdnn_ms, pnn50_pct:
        Mean heart rate (bpm), RMSSD (ms), SDNN (ms), pNN50 (%).
    lf_hf:
        LF/HF power ratio (dimensionless).
    sd1_ms, sd2_ms:
        Poincare SD1 and SD2 (ms).
    resp_rate_bpm:
        Breathing rate, breaths per minute.
    coherence:
        Heart-rhythm coherence score in [0, 1].
    signal_quality:
        The quality the caller measured, in [0, 1].
    reasons:
        Why a value is None, keyed by metric name.
    """

    hr_bpm: float | None
    rmssd_ms: float | None
    sdnn_ms: float | None
    pnn50_pct: float | None
    lf_hf: float | None
    sd1_ms: float | None
    sd2_ms: float | None
    resp_rate_bpm: float | None
    coherence: float | None
    signal_quality: float | None
    reasons: dict[str, str]

    def as_dict(self) -> dict[str, object]:
        """The metrics under their names, plus ``reasons`` (only the non-empty ones)."""
        out: dict[str, object] = {name: getattr(self, name) for name in WINDOW_METRIC_NAMES}
        out["reasons"] = {k: v for k, v in self.reasons.items() if v}
        return out


@njit(cache=True, nogil=True)
def _scan_beats_kernel(t: FloatArray, nn: FloatArray) -> int:
    """0 when valid; 1 when ``t`` is not finite and increasing; 2 when an ``nn`` is <= 0/inf."""
    for i in range(t.shape[0]):
        if not math.isfinite(t[i]) or (i > 0 and not t[i] > t[i - 1]):
            return 1
        v = nn[i]
        if v == v and not (v > 0.0 and math.isfinite(v)):
            return 2
    return 0


@njit(cache=True, nogil=True)
def _compact_kernel(
    nn: FloatArray, valid_diff: BoolArray, clean: FloatArray, pairs: BoolArray
) -> tuple[int, float, int]:
    """Copy the finite ``nn`` to the front of ``clean`` and mark their successive pairs.

    A pair counts when both beats are adjacent in the input and the later one's
    ``valid_diff`` allows it. Returns the number of clean intervals, their sum (ms) and
    the number of pairs.
    """
    m = 0
    last = -2
    total = 0.0
    n_pairs = 0
    for i in range(nn.shape[0]):
        v = nn[i]
        if v == v:
            if m > 0:
                ok = last == i - 1 and valid_diff[i]
                pairs[m - 1] = ok
                n_pairs += ok
            clean[m] = v
            total += v
            m += 1
            last = i
    return m, total, n_pairs


@njit(cache=True, nogil=True)
def _finite_sum_kernel(x: FloatArray) -> float:
    """Sum of the finite values of ``x``."""
    total = 0.0
    for v in x:
        if math.isfinite(v):
            total += v
    return total


@njit(cache=True, nogil=True)
def _window_kernel(
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amplitude: FloatArray,
    baseline: FloatArray,
    first: int,
    lo: int,
    hi: int,
    window_s: float,
    min_clean: int,
    min_coverage: float,
    min_diffs: int,
    freq: bool,
    out: FloatArray,
) -> int:
    """Time domain, breathing rate and coherence of the beats in rows ``[lo, hi)``.

    Rows ``[first, hi)`` are checked (times finite and increasing, intervals positive).

    ``amplitude`` and ``baseline`` are empty without PPG features. Fills ``out`` (see the
    ``_O_*`` fields; NaN where not measured, with the verdict codes that say why),
    including the per-source breathing estimates (rates in breaths/min from
    ``out[_O_RATES]``, their qualities from ``out[_O_QUALITIES]``). A window longer than
    1.5 coherence windows is flagged (``out[_O_LONG]``) for the windowed estimators
    instead. Returns 0, or 1 / 2 when the times / intervals are invalid (see
    ``_scan_beats_kernel``).
    """
    code = _scan_beats_kernel(t[first:hi], nn[first:hi])
    if code != 0:
        return code
    for k in range(out.shape[0]):
        out[k] = math.nan
    w_nn = nn[lo:hi]
    w_vd = vd[lo:hi]
    n = hi - lo
    clean = np.empty(n)
    pairs = np.empty(max(n - 1, 0), dtype=np.bool_)
    n_clean, total_ms, n_diffs = _compact_kernel(w_nn, w_vd, clean, pairs)
    covered_s = total_ms / 1000.0
    out[_O_N_CLEAN] = n_clean
    out[_O_COVERED] = covered_s
    out[_O_N_DIFFS] = n_diffs
    out[_O_LONG] = 0.0
    if n_clean < min_clean:
        out[_O_TIME] = _TIME_FEW_BEATS
    elif covered_s / window_s < min_coverage:
        out[_O_TIME] = _TIME_LOW_COVERAGE
    else:
        c = clean[:n_clean]
        out[_O_HR] = 60000.0 / _mean_kernel(c)
        out[_O_SDNN] = _sdnn_kernel(c)
        if n_diffs < min_diffs:
            out[_O_TIME] = _TIME_FEW_DIFFS
        else:
            out[_O_TIME] = _TIME_OK
            p = pairs[: n_clean - 1]
            sd1, sd2, _ = _poincare_kernel(c, p)
            out[_O_RMSSD] = _rmssd_kernel(c, p)
            out[_O_PNN] = _pnn_kernel(c, p, PNN_THRESHOLD_MS)
            out[_O_SD1] = sd1
            out[_O_SD2] = sd2
    if not freq:
        return 0
    w_t = t[lo:hi]
    span = w_t[n - 1] - w_t[0] if n > 1 else 0.0
    if span > _SHORT_SPAN_WINDOWS * COHERENCE_WINDOW_S:
        out[_O_LONG] = 1.0
        return 0
    # Breathing rate and coherence from one set of periodograms (the rules of
    # heartsong.dsp.resp.resp_window_psds): the NN row, and the PPG rows if given.
    if covered_s < RESP_MIN_COVERAGE_S:
        out[_O_RESP_CODE] = _RESP_FEW_SECONDS
        return 0
    if n < 6:
        out[_O_RESP_CODE] = _RESP_FEW_BEATS
        return 0
    rows = 3 if amplitude.shape[0] == t.shape[0] else 1
    ys = np.empty((rows, n))
    for i in range(n):
        ys[0, i] = w_nn[i]
    if rows == 3:
        for i in range(n):
            ys[1, i] = amplitude[lo + i]
            ys[2, i] = baseline[lo + i]
    seg = np.empty(n, dtype=np.int64)
    _segments_kernel(w_t, w_vd, _MAX_HOLE_S, seg)
    df = 1.0 / (RESP_OVERSAMPLE * span)
    # Up to the top of the breathing band and a point beyond (the peak's parabola); the
    # coherence bands end below it. (resp_window_psds goes to 0.55 Hz: same values.)
    n_freq = max(3, math.floor(RESP_BAND_HZ[1] / df + 1e-9) + 2)
    psds = np.empty((rows, n_freq))
    n_used, used_span = _psd_kernel(w_t, ys, seg, MIN_SEGMENT_SAMPLES, df, 0, psds)
    if n_used < 6:
        out[_O_RESP_CODE] = _RESP_FEW_BEATS
        return 0
    rate, quality, fused, kept, best = _resp_fused_kernel(
        psds,
        df,
        n_used,
        used_span,
        out[_O_RATES : _O_RATES + rows],
        out[_O_QUALITIES : _O_QUALITIES + rows],
    )
    out[_O_RESP] = rate
    out[_O_RESP_Q] = quality
    out[_O_RESP_CODE] = fused
    out[_O_KEPT] = kept
    out[_O_BEST] = best
    if covered_s >= COHERENCE_MIN_COVERAGE_S:
        out[_O_COH] = _coherence_score_kernel(psds[0], df)
    return 0


@njit(cache=True, nogil=True)
def _windows_kernel(
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amplitude: FloatArray,
    baseline: FloatArray,
    lo: IntArray,
    hi: IntArray,
    starts: FloatArray,
    ends: FloatArray,
    min_clean: int,
    min_coverage: float,
    min_diffs: int,
    out: FloatArray,
) -> int:
    """:func:`_window_kernel` (with ``freq``) for many windows in one call.

    Window ``w`` is rows ``[lo[w], hi[w])``, ``ends[w] - starts[w]`` seconds long; its
    output goes to ``out[w]``. Returns 0, or the first non-zero code of a window.
    """
    for w in range(lo.shape[0]):
        code = _window_kernel(
            t,
            nn,
            vd,
            amplitude,
            baseline,
            lo[w],
            lo[w],
            hi[w],
            ends[w] - starts[w],
            min_clean,
            min_coverage,
            min_diffs,
            True,
            out[w],
        )
        if code != 0:
            return code
    return 0


# -- keeping numba's cache honest about the kernels called from other files ------------

#: The modules whose kernels (and constants) the kernels of this module use.
_KERNEL_SOURCES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"heartsong.dsp.{name}")
    for name in ("hrv_time", "hrv_nonlinear", "hrv_freq", "resp", "coherence")
)


_SOURCES_DIGEST = _sources_digest(_KERNEL_SOURCES)


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of ``_KERNEL_SOURCES`` when this module's kernels were compiled (numba
    freezes globals at compilation, and the cache keeps the frozen value)."""
    return _SOURCES_DIGEST


# (The window loops of heartsong.dsp.coherence and heartsong.dsp.resp, which inline
# kernels of hrv_freq, guard their own caches the same way.)
_refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, _module_kernels(globals()))


def _check_inputs(
    beat_t_s: npt.ArrayLike, nn_ms: npt.ArrayLike, valid_diff: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, BoolArray]:
    t = np.ascontiguousarray(beat_t_s, dtype=np.float64)
    nn = np.ascontiguousarray(nn_ms, dtype=np.float64)
    vd = np.ascontiguousarray(valid_diff)
    if t.ndim != 1:
        raise InputDataError("beat_t_s", "a 1-D array of beat times in seconds", t.shape)
    if nn.shape != t.shape:
        raise InputDataError("nn_ms", f"one interval per beat, shape {t.shape}", nn.shape)
    if vd.dtype != np.bool_ or vd.shape != t.shape:
        raise InputDataError(
            "valid_diff", f"a boolean array of shape {t.shape}", (vd.dtype, vd.shape)
        )
    return t, nn, vd


def _optional_series(values: npt.ArrayLike | None, name: str, n: int) -> FloatArray | None:
    if values is None:
        return None
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise InputDataError(name, f"one value per beat, shape ({n},)", arr.shape)
    return arr


#: The start of the reason given when the clean beats cover too little of a window.
LOW_COVERAGE = "clean beats cover too little of the window"


def _time_reasons(
    out: Sequence[float], rules: WindowRules, window_s: float, reasons: dict[str, str]
) -> None:
    """Why the time-domain values of the kernel's ``out`` are missing, if they are."""
    verdict = out[_O_TIME]
    if verdict == _TIME_FEW_BEATS:
        problem = f"too few clean beats: {int(out[_O_N_CLEAN])} < {rules.min_clean_intervals}"
        reasons.update(dict.fromkeys(_TIME_NAMES, problem))
    elif verdict == _TIME_LOW_COVERAGE:
        coverage = out[_O_COVERED] / window_s
        problem = f"{LOW_COVERAGE}: {coverage:.0%} < {rules.min_coverage:.0%}"
        reasons.update(dict.fromkeys(_TIME_NAMES, problem))
    elif verdict == _TIME_FEW_DIFFS:
        problem = f"too few successive differences: {int(out[_O_N_DIFFS])} < {rules.min_diffs}"
        reasons.update(dict.fromkeys(_DIFF_NAMES, problem))


def _short_freq_verdict(
    out: Sequence[float], out_array: FloatArray, n_rows: int, reasons: dict[str, str]
) -> tuple[float, float]:
    """Breathing rate and coherence from the kernel's output (as floats and as the array
    holding the per-source estimates), reasons where missing."""
    covered_s = out[_O_COVERED]
    code = int(out[_O_RESP_CODE])
    rate = math.nan
    if code == 0:  # fused (the usual case): the rate as it is, no estimate to build
        rate = out[_O_RESP]
    else:
        # Why not, as heartsong.dsp.resp words it: status 4 / 5 before any spectrum,
        # else the fusion's (rate, quality, code, kept, best) from _O_RESP on.
        resp = _resp_window_estimate(
            code if code in (_RESP_FEW_SECONDS, _RESP_FEW_BEATS) else 0,
            covered_s,
            out_array[_O_RESP : _O_BEST + 1],
            out_array[_O_RATES : _O_RATES + n_rows],
            out_array[_O_QUALITIES : _O_QUALITIES + n_rows],
            _RESP_SOURCES[:n_rows],
        )
        if resp.valid:
            rate = resp.rate_bpm
        else:
            reasons["resp_rate_bpm"] = resp.reason
    score = out[_O_COH]
    if not math.isfinite(score):
        _coherence_reason(score, covered_s, reasons)
    return rate, score


def _coherence_reason(score: float, covered_s: float, reasons: dict[str, str]) -> None:
    if math.isfinite(score):
        return
    if covered_s < COHERENCE_MIN_COVERAGE_S:
        reasons["coherence"] = (
            f"clean beats cover too little for coherence: {covered_s:.0f} s "
            f"< {COHERENCE_MIN_COVERAGE_S:.0f} s"
        )
    else:
        reasons["coherence"] = "no spectral power in the window"


def _long_span_freq(
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amplitude: FloatArray | None,
    baseline: FloatArray | None,
    covered_s: float,
    reasons: dict[str, str],
) -> tuple[float, float]:
    """Breathing rate and coherence of a span longer than 1.5 coherence windows, from the
    windowed estimators of :mod:`heartsong.dsp.resp` and :mod:`heartsong.dsp.coherence`."""
    seg = segments_from_holes(t, nn, vd, _MAX_HOLE_S)
    resp = resp_rate(t, nn, seg, amplitude=amplitude, baseline=baseline)
    if not resp.valid:
        reasons["resp_rate_bpm"] = resp.reason
    score = hrv_coherence(t, nn, seg) if covered_s >= COHERENCE_MIN_COVERAGE_S else math.nan
    _coherence_reason(score, covered_s, reasons)
    return resp.rate_bpm, score


def _lf_hf(t: FloatArray, nn: FloatArray, vd: BoolArray, coverage_s: float) -> tuple[float, str]:
    """LF/HF of the beats of the frequency window (``coverage_s`` of intervals), or why not."""
    needed = (1.0 - SPAN_TOLERANCE) * MIN_SPAN_LF_S
    if coverage_s < needed:
        return math.nan, (
            f"clean beats cover too little for LF/HF: {coverage_s:.0f} s < {needed:.0f} s"
        )
    seg = np.empty(t.shape[0], dtype=np.int64)
    _segments_kernel(t, vd, _MAX_HOLE_S, seg)
    ratio = hrv_lf_hf(t, nn, seg)
    if not math.isfinite(ratio):
        return math.nan, "no high-frequency power to divide by"
    return ratio, ""


def window_metrics(
    beat_t_s: FloatArray,
    nn_ms: FloatArray,
    valid_diff: BoolArray,
    *,
    t_start_s: float,
    t_end_s: float,
    quality: float | None,
    freq: bool,
    freq_t_start_s: float | None = None,
    lf_hf: bool = True,
    amplitude: FloatArray | None = None,
    baseline: FloatArray | None = None,
    rules: WindowRules | None = None,
    quality_reason: str = "signal quality not measured",
) -> WindowMetrics:
    """Compute every heart metric of the window ``[t_start_s, t_end_s]``.

    Parameters
    ----------
    beat_t_s:
        Beat times in seconds, increasing (may extend beyond the window).
    nn_ms:
        ``nn_ms[i]`` is the NN interval ending at ``beat_t_s[i]``, in ms; NaN for a beat
        rejected as an artefact or without a known interval.
    valid_diff:
        ``valid_diff[i]`` says whether ``nn[i] - nn[i - 1]`` may be taken (no gap between
        the two beats); same length as ``beat_t_s``.
    t_start_s, t_end_s:
        The window, in seconds (beats with ``t_start_s <= t <= t_end_s``).
    quality:
        The window's signal quality in [0, 1] as the caller measured it, or None.
    freq:
        Whether to compute LF/HF, the breathing rate and coherence (None with a reason
        otherwise).
    freq_t_start_s:
        Start of the LF/HF window in seconds (default ``t_start_s``); it needs at least
        about 2 minutes of clean beats.
    lf_hf:
        With ``freq``, whether to compute LF/HF (the costliest measure; a caller that
        holds a recent value passes False and gets None with a reason).
    amplitude, baseline:
        Optional PPG pulse amplitude and baseline per beat (NaN where unknown) for the
        breathing rate (:func:`heartsong.dsp.resp.resp_rate`).
    rules:
        Minimum beats, coverage and differences (:class:`WindowRules`).
    quality_reason:
        The reason given when ``quality`` is None.

    Returns
    -------
    WindowMetrics
        The metrics; a value is None, with a reason, when too few clean beats or too
        short a span stand behind it.
    """
    values, reasons = _window_values(
        beat_t_s,
        nn_ms,
        valid_diff,
        t_start_s=t_start_s,
        t_end_s=t_end_s,
        quality=quality,
        freq=freq,
        freq_t_start_s=freq_t_start_s,
        lf_hf=lf_hf,
        amplitude=amplitude,
        baseline=baseline,
        rules=rules,
        quality_reason=quality_reason,
    )
    hr, rmssd, sdnn, pnn50, lf_hf_ratio, sd1, sd2, resp_rate_bpm, coherence = values
    return WindowMetrics(
        hr_bpm=hr,
        rmssd_ms=rmssd,
        sdnn_ms=sdnn,
        pnn50_pct=pnn50,
        lf_hf=lf_hf_ratio,
        sd1_ms=sd1,
        sd2_ms=sd2,
        resp_rate_bpm=resp_rate_bpm,
        coherence=coherence,
        signal_quality=quality,
        reasons=reasons,
    )


def _window_values(
    beat_t_s: FloatArray,
    nn_ms: FloatArray,
    valid_diff: BoolArray,
    *,
    t_start_s: float,
    t_end_s: float,
    quality: float | None,
    freq: bool,
    freq_t_start_s: float | None = None,
    lf_hf: bool = True,
    amplitude: FloatArray | None = None,
    baseline: FloatArray | None = None,
    rules: WindowRules | None = None,
    quality_reason: str = "signal quality not measured",
) -> tuple[WindowValues, dict[str, str]]:
    """:func:`window_metrics` as plain values: the metrics in the field order of
    :class:`WindowMetrics` up to ``coherence``, and the reasons (for the streaming hot
    path, which needs no dataclass)."""
    rules = rules or _DEFAULT_RULES
    if not (math.isfinite(t_start_s) and math.isfinite(t_end_s) and t_end_s > t_start_s):
        raise InputDataError("t_end_s", f"a finite time after t_start_s = {t_start_s}", t_end_s)
    if quality is not None and not 0.0 <= quality <= 1.0:
        raise InputDataError("quality", "a fraction in [0, 1] or None", quality)
    t, nn, vd = _check_inputs(beat_t_s, nn_ms, valid_diff)
    amp = _optional_series(amplitude, "amplitude", t.shape[0])
    base = _optional_series(baseline, "baseline", t.shape[0])
    lo = int(t.searchsorted(t_start_s, side="left"))
    hi = int(t.searchsorted(t_end_s, side="right"))
    return _window_rows(
        t,
        nn,
        vd,
        amp,
        base,
        0,
        lo,
        hi,
        t_start_s,
        t_end_s,
        quality,
        freq,
        freq_t_start_s,
        lf_hf,
        rules,
        quality_reason,
    )


def _window_rows(
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amp: FloatArray | None,
    base: FloatArray | None,
    first: int,
    lo: int,
    hi: int,
    t_start_s: float,
    t_end_s: float,
    quality: float | None,
    freq: bool,
    freq_t_start_s: float | None,
    lf_hf: bool,
    rules: WindowRules,
    quality_reason: str,
) -> tuple[WindowValues, dict[str, str]]:
    """:func:`_window_values` for series already validated (C-contiguous float64 times,
    intervals and features, a bool mask) whose window is rows ``[lo, hi)`` and whose rows
    from ``first`` on may take part (the LF/HF window; rows outside ``[first, hi)`` are
    never read, and the beat times in it are checked in the kernel)."""
    series_amp, series_base = (
        (amp, base) if amp is not None and base is not None else (_NO_SERIES, _NO_SERIES)
    )
    window_s = t_end_s - t_start_s
    out = np.empty(_N_OUT)
    code = _window_kernel(
        t,
        nn,
        vd,
        series_amp,
        series_base,
        first,
        lo,
        hi,
        window_s,
        rules.min_clean_intervals,
        rules.min_coverage,
        rules.min_diffs,
        freq,
        out,
    )
    if code == 1:
        raise InputDataError("beat_t_s", "finite, increasing beat times in seconds")
    if code == 2:
        raise InputDataError("nn_ms", "positive NN intervals in ms (NaN for rejected beats)")
    o = out.tolist()  # Python floats from here: cheaper to test than NumPy scalars
    reasons: dict[str, str] = {}
    resp_rate_bpm, coherence = _kernel_verdicts(
        o, out, t, nn, vd, amp, base, lo, hi, window_s, freq, rules, reasons
    )
    lf_hf_value = math.nan
    if freq:
        if not lf_hf:
            reasons["lf_hf"] = "LF/HF not requested for this window"
        else:
            f_lo, f_covered_s = lo, o[_O_COVERED]
            if freq_t_start_s is not None:
                if not (math.isfinite(freq_t_start_s) and freq_t_start_s < t_end_s):
                    raise InputDataError(
                        "freq_t_start_s", "a finite time before t_end_s", freq_t_start_s
                    )
                f_lo = first + int(t[first:hi].searchsorted(freq_t_start_s, side="left"))
                f_covered_s = _finite_sum_kernel(nn[f_lo:hi]) / 1000.0
            value, why = _lf_hf(t[f_lo:hi], nn[f_lo:hi], vd[f_lo:hi], f_covered_s)
            if why:
                reasons["lf_hf"] = why
            else:
                lf_hf_value = value
    else:
        reasons.update(dict.fromkeys(_FREQ_NAMES, "frequency-domain measures not requested"))
    if quality is None:
        reasons["signal_quality"] = quality_reason
    return _values(o, lf_hf_value, resp_rate_bpm, coherence), reasons


def _kernel_verdicts(
    o: list[float],
    out: FloatArray,
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amp: FloatArray | None,
    base: FloatArray | None,
    lo: int,
    hi: int,
    window_s: float,
    freq: bool,
    rules: WindowRules,
    reasons: dict[str, str],
) -> tuple[float, float]:
    """Reasons for what the window kernel's output ``o`` (``out`` as a list) lacks, and
    the breathing rate and coherence (NaN if not measured); a window longer than the
    kernel's spectral span gets them from the windowed estimators."""
    if o[_O_TIME] != _TIME_OK:
        _time_reasons(o, rules, window_s, reasons)
    if not freq:
        return math.nan, math.nan
    ppg = amp is not None and base is not None
    if o[_O_LONG]:
        return _long_span_freq(
            t[lo:hi],
            nn[lo:hi],
            vd[lo:hi],
            amp[lo:hi] if ppg and amp is not None else None,
            base[lo:hi] if ppg and base is not None else None,
            o[_O_COVERED],
            reasons,
        )
    return _short_freq_verdict(o, out, 3 if ppg else 1, reasons)


def _values(
    o: list[float], lf_hf_value: float, resp_rate_bpm: float, coherence: float
) -> WindowValues:
    """The metrics in the field order of :class:`WindowMetrics` up to ``coherence``."""
    isfinite = math.isfinite
    return (
        o[_O_HR] if isfinite(o[_O_HR]) else None,
        o[_O_RMSSD] if isfinite(o[_O_RMSSD]) else None,
        o[_O_SDNN] if isfinite(o[_O_SDNN]) else None,
        o[_O_PNN] if isfinite(o[_O_PNN]) else None,
        lf_hf_value if isfinite(lf_hf_value) else None,
        o[_O_SD1] if isfinite(o[_O_SD1]) else None,
        o[_O_SD2] if isfinite(o[_O_SD2]) else None,
        resp_rate_bpm if isfinite(resp_rate_bpm) else None,
        coherence if isfinite(coherence) else None,
    )


def _window_rows_many(
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amp: FloatArray | None,
    base: FloatArray | None,
    lo: IntArray,
    hi: IntArray,
    starts: FloatArray,
    ends: FloatArray,
    qualities: FloatArray | None,
    rules: WindowRules,
    quality_reason: str,
) -> list[tuple[WindowValues, dict[str, str]]]:
    """:func:`_window_rows` with ``freq`` but without LF/HF (no value and no reason for
    it), for many windows of one validated series: window ``w`` is rows
    ``[lo[w], hi[w])`` and ``[starts[w], ends[w]]`` seconds, its quality
    ``qualities[w]`` (None for all when ``qualities`` is None). One kernel call measures
    every window (the batch analysis's hot path); the values equal :func:`_window_rows`'s.
    """
    n_win = lo.shape[0]
    out = np.empty((n_win, _N_OUT))
    series_amp, series_base = (
        (amp, base) if amp is not None and base is not None else (_NO_SERIES, _NO_SERIES)
    )
    code = _windows_kernel(
        t,
        nn,
        vd,
        series_amp,
        series_base,
        np.ascontiguousarray(lo, dtype=np.int64),
        np.ascontiguousarray(hi, dtype=np.int64),
        np.ascontiguousarray(starts, dtype=np.float64),
        np.ascontiguousarray(ends, dtype=np.float64),
        rules.min_clean_intervals,
        rules.min_coverage,
        rules.min_diffs,
        out,
    )
    if code == 1:
        raise InputDataError("beat_t_s", "finite, increasing beat times in seconds")
    if code == 2:
        raise InputDataError("nn_ms", "positive NN intervals in ms (NaN for rejected beats)")
    rows = out.tolist()
    results: list[tuple[WindowValues, dict[str, str]]] = []
    for w in range(n_win):
        o = rows[w]
        reasons: dict[str, str] = {}
        window_s = float(ends[w]) - float(starts[w])
        resp_rate_bpm, coherence = _kernel_verdicts(
            o,
            out[w],
            t,
            nn,
            vd,
            amp,
            base,
            int(lo[w]),
            int(hi[w]),
            window_s,
            True,
            rules,
            reasons,
        )
        if qualities is None:
            reasons["signal_quality"] = quality_reason
        results.append((_values(o, math.nan, resp_rate_bpm, coherence), reasons))
    return results
