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

The streaming pipeline calls this every few seconds, so the statistics run in a few
kernel calls (the time-domain ones are the kernels of :mod:`heartsong.dsp.hrv_time` and
:mod:`heartsong.dsp.hrv_nonlinear`) rather than in many small NumPy calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp.coherence import COHERENCE_WINDOW_S, coherence_from_psd, hrv_coherence
from heartsong.dsp.coherence import MIN_COVERAGE_S as COHERENCE_MIN_COVERAGE_S
from heartsong.dsp.hrv_freq import (
    MIN_SPAN_LF_S,
    SPAN_TOLERANCE,
    hrv_frequency,
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
from heartsong.dsp.resp import (
    RespEstimate,
    fuse_resp,
    resp_from_psd,
    resp_rate,
    resp_window_psds,
)
from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = ["WINDOW_METRIC_NAMES", "WindowMetrics", "WindowRules", "window_metrics"]

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


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@njit(cache=True)
def _scan_beats_kernel(t: FloatArray, nn: FloatArray) -> int:
    """0 when valid; 1 when ``t`` is not finite and increasing; 2 when an ``nn`` is <= 0/inf."""
    for i in range(t.shape[0]):
        if not math.isfinite(t[i]) or (i > 0 and not t[i] > t[i - 1]):
            return 1
        v = nn[i]
        if v == v and not (v > 0.0 and math.isfinite(v)):
            return 2
    return 0


@njit(cache=True)
def _compact_kernel(
    nn: FloatArray, valid_diff: BoolArray, clean: FloatArray, pairs: BoolArray
) -> tuple[int, float]:
    """Copy the finite ``nn`` to the front of ``clean`` and mark their successive pairs.

    A pair counts when both beats are adjacent in the input and the later one's
    ``valid_diff`` allows it. Returns the number of clean intervals and their sum (ms).
    """
    m = 0
    last = -2
    total = 0.0
    for i in range(nn.shape[0]):
        v = nn[i]
        if v == v:
            if m > 0:
                pairs[m - 1] = last == i - 1 and valid_diff[i]
            clean[m] = v
            total += v
            m += 1
            last = i
    return m, total


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
    code = _scan_beats_kernel(t, nn)
    if code == 1:
        raise InputDataError("beat_t_s", "finite, increasing beat times in seconds")
    if code == 2:
        raise InputDataError("nn_ms", "positive NN intervals in ms (NaN for rejected beats)")
    return t, nn, vd


def _optional_series(values: npt.ArrayLike | None, name: str, n: int) -> FloatArray | None:
    if values is None:
        return None
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise InputDataError(name, f"one value per beat, shape ({n},)", arr.shape)
    return arr


def _time_domain(
    nn: FloatArray, vd: BoolArray, window_s: float, rules: WindowRules
) -> tuple[dict[str, float | None], dict[str, str], float]:
    """Time-domain and Poincare metrics of the beats of one window, and their coverage (s)."""
    values: dict[str, float | None] = dict.fromkeys(_TIME_NAMES)
    clean = np.empty(nn.shape[0])
    pairs = np.zeros(max(nn.shape[0] - 1, 0), dtype=np.bool_)
    n_clean, total_ms = _compact_kernel(nn, vd, clean, pairs)
    covered_s = float(total_ms) / 1000.0
    coverage = covered_s / window_s
    problem = ""
    if n_clean < rules.min_clean_intervals:
        problem = f"too few clean beats: {n_clean} < {rules.min_clean_intervals}"
    elif coverage < rules.min_coverage:
        problem = (
            f"clean beats cover too little of the window: {coverage:.0%} < {rules.min_coverage:.0%}"
        )
    if problem:
        return values, dict.fromkeys(_TIME_NAMES, problem), covered_s
    # The kernels of hrv_time and hrv_nonlinear, called from here rather than from a
    # kernel of this module: numba's cache would not notice a change in their files.
    c = clean[:n_clean]
    p = pairs[: max(n_clean - 1, 0)]
    values["hr_bpm"] = 60000.0 / float(_mean_kernel(c))
    values["sdnn_ms"] = float(_sdnn_kernel(c))
    n_diffs = int(np.count_nonzero(p))
    if n_diffs < rules.min_diffs:
        short = f"too few successive differences: {n_diffs} < {rules.min_diffs}"
        return values, dict.fromkeys(_DIFF_NAMES, short), covered_s
    sd1, sd2, _ = _poincare_kernel(c, p)
    values["rmssd_ms"] = float(_rmssd_kernel(c, p))
    values["pnn50_pct"] = float(_pnn_kernel(c, p, PNN_THRESHOLD_MS))
    values["sd1_ms"] = float(sd1)
    values["sd2_ms"] = float(sd2)
    return values, {}, covered_s


@njit(cache=True)
def _finite_sum_kernel(x: FloatArray) -> float:
    """Sum of the finite values of ``x``."""
    total = 0.0
    for v in x:
        if math.isfinite(v):
            total += v
    return total


def _lf_hf(
    t: FloatArray, nn: FloatArray, vd: BoolArray, coverage_s: float
) -> tuple[float | None, str]:
    """LF/HF of the beats of the frequency window (``coverage_s`` of intervals), or why not."""
    needed = (1.0 - SPAN_TOLERANCE) * MIN_SPAN_LF_S
    if coverage_s < needed:
        return None, (
            f"clean beats cover too little for LF/HF: {coverage_s:.0f} s < {needed:.0f} s"
        )
    freq = hrv_frequency(t, nn, segments_from_holes(t, nn, vd))
    if not math.isfinite(freq.lf_hf):
        return None, "no high-frequency power to divide by"
    return freq.lf_hf, ""


def _short_freq(
    t: FloatArray,
    nn: FloatArray,
    vd: BoolArray,
    amplitude: FloatArray | None,
    baseline: FloatArray | None,
    coverage_s: float,
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Breathing rate and coherence of the beats of one window (``coverage_s`` of intervals).

    A beat enters only with a clean interval and, when PPG features are given, known
    features (the pulse of a rejected beat is as unreliable as its interval). A window of
    up to 1.5 coherence windows is analysed from one set of periodograms (the breathing
    grid, 4 points per natural resolution up to 0.55 Hz, is the coherence grid extended,
    so the NN row serves both); a longer span goes to the windowed estimators of
    :mod:`heartsong.dsp.resp` and :mod:`heartsong.dsp.coherence`.
    """
    series = {"nn_ms": nn}
    if amplitude is not None and baseline is not None:
        series["amplitude"] = amplitude
        series["baseline"] = baseline
    seg = segments_from_holes(t, nn, vd)
    span = float(t[-1] - t[0]) if t.shape[0] > 1 else 0.0
    score = math.nan
    if span > 1.5 * COHERENCE_WINDOW_S:
        resp = resp_rate(t, nn, seg, amplitude=amplitude, baseline=baseline)
        if coverage_s >= COHERENCE_MIN_COVERAGE_S:
            score = hrv_coherence(t, nn, seg)
    else:
        got = resp_window_psds(t, series, seg, coverage_s=coverage_s)
        if isinstance(got, str):
            resp = RespEstimate(math.nan, 0.0, "", got)
        else:
            psds, df, n_used, used_span = got
            resp = fuse_resp(
                [
                    resp_from_psd(psds[j], df, n_used, used_span, _RESP_SOURCES[j])
                    for j in range(len(series))
                ]
            )
            if coverage_s >= COHERENCE_MIN_COVERAGE_S:
                score = coherence_from_psd(psds[0], df)
    values: dict[str, float | None] = {"resp_rate_bpm": None, "coherence": None}
    reasons: dict[str, str] = {}
    if resp.valid:
        values["resp_rate_bpm"] = resp.rate_bpm
    else:
        reasons["resp_rate_bpm"] = resp.reason
    if math.isfinite(score):
        values["coherence"] = score
    elif coverage_s < COHERENCE_MIN_COVERAGE_S:
        reasons["coherence"] = (
            f"clean beats cover too little for coherence: {coverage_s:.0f} s "
            f"< {COHERENCE_MIN_COVERAGE_S:.0f} s"
        )
    else:
        reasons["coherence"] = "no spectral power in the window"
    return values, reasons


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
    rules = rules or WindowRules()
    if not (math.isfinite(t_start_s) and math.isfinite(t_end_s) and t_end_s > t_start_s):
        raise InputDataError("t_end_s", f"a finite time after t_start_s = {t_start_s}", t_end_s)
    if quality is not None and not 0.0 <= quality <= 1.0:
        raise InputDataError("quality", "a fraction in [0, 1] or None", quality)
    t, nn, vd = _check_inputs(beat_t_s, nn_ms, valid_diff)
    amp = _optional_series(amplitude, "amplitude", t.shape[0])
    base = _optional_series(baseline, "baseline", t.shape[0])
    lo = int(t.searchsorted(t_start_s, side="left"))
    hi = int(t.searchsorted(t_end_s, side="right"))

    values, reasons, covered_s = _time_domain(nn[lo:hi], vd[lo:hi], t_end_s - t_start_s, rules)
    if freq:
        short_values, short_reasons = _short_freq(
            t[lo:hi],
            nn[lo:hi],
            vd[lo:hi],
            None if amp is None else amp[lo:hi],
            None if base is None else base[lo:hi],
            covered_s,
        )
        values.update(short_values)
        reasons.update(short_reasons)
        f_lo, f_covered_s = lo, covered_s
        if freq_t_start_s is not None:
            if not (math.isfinite(freq_t_start_s) and freq_t_start_s < t_end_s):
                raise InputDataError(
                    "freq_t_start_s", "a finite time before t_end_s", freq_t_start_s
                )
            f_lo = int(t.searchsorted(freq_t_start_s, side="left"))
            f_covered_s = _finite_sum_kernel(nn[f_lo:hi]) / 1000.0
        values["lf_hf"], why = _lf_hf(t[f_lo:hi], nn[f_lo:hi], vd[f_lo:hi], f_covered_s)
        if why:
            reasons["lf_hf"] = why
    else:
        reasons.update(dict.fromkeys(_FREQ_NAMES, "frequency-domain measures not requested"))
    if quality is None:
        reasons["signal_quality"] = quality_reason
    return WindowMetrics(
        hr_bpm=values["hr_bpm"],
        rmssd_ms=values["rmssd_ms"],
        sdnn_ms=values["sdnn_ms"],
        pnn50_pct=values["pnn50_pct"],
        lf_hf=values.get("lf_hf"),
        sd1_ms=values["sd1_ms"],
        sd2_ms=values["sd2_ms"],
        resp_rate_bpm=values.get("resp_rate_bpm"),
        coherence=values.get("coherence"),
        signal_quality=quality,
        reasons=reasons,
    )
