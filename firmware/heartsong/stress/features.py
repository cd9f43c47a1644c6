"""Stress features of one HRV window, relative to the person's resting baseline.

The one implementation used both to train the classifier (``tools/train_stress_model.py``)
and on the device, so the model sees the same numbers in both places.

A window's raw metrics (:data:`RAW_METRICS`, the names of :class:`heartsong.events.Metrics`
and of :func:`heartsong.dsp.batch.analyze_recording`'s windows) are compared with the
person's baseline, the medians of the same metrics at rest
(:mod:`heartsong.stress.baseline`):

* quantities that scale with the person (heart rate, RMSSD, SDNN, LF/HF, SD2, SD1/SD2)
  enter as the natural log of their ratio to the baseline: a 10 % rise is about 0.095
  whatever the person's resting level (HRV differs far more between people than within
  one person);
* pNN50 (%), breathing rate (breaths/min), coherence and signal quality (both 0..1) enter
  as their difference from the baseline;
* two features look back in time at the heart rate the device has already seen
  (:class:`HrContext`, kept by :class:`heartsong.stress.history.HrHistory`; causal, the
  same on the device and in training): the log ratio of the heart rate to a low quantile
  of the last minutes' heart rates (``hr_recent_low_log_ratio``: people settle over an
  hour, so a rise over the recent low separates a task from the drift better than the
  start-of-session baseline alone), and its log ratio to the heart rate about a minute
  earlier (``hr_change_log_ratio``: the onset and end of an arousal). Without that
  history they fall back to the baseline heart rate and to no change (0).

SD1 and SD2 (Poincare plot, Brennan et al. 2001) are derived from RMSSD and SDNN with
Brennan's identities ``SD1^2 = SDSD^2 / 2`` and ``SD2^2 = 2 SDNN^2 - SD1^2``, taking RMSSD
for SDSD (they differ by the mean successive difference, about zero over a minute), so the
device needs no metric beyond :class:`~heartsong.events.Metrics`.

A window is *usable* only when the time-domain metrics exist (enough clean beats, see
:class:`heartsong.dsp.window.WindowRules`) and its signal quality, when measured, reaches
:data:`MIN_SIGNAL_QUALITY`; otherwise the stress stage answers ``unknown``. A missing
optional metric (LF/HF needs minutes of clean beats, the breathing rate a clear
modulation) counts as unchanged from the baseline (feature 0).

References
----------
Brennan M, Palaniswami M, Kamen P (2001) Do existing measures of Poincare plot geometry
reflect nonlinear features of heart rate variability? IEEE Trans Biomed Eng
48(11):1342-1347.
Task Force of the ESC and NASPE (1996) Heart rate variability: standards of measurement,
physiological interpretation and clinical use. Circulation 93(5):1043-1065.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = [
    "FEATURE_CLIP",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "MIN_SIGNAL_QUALITY",
    "RAW_METRICS",
    "REQUIRED_METRICS",
    "HrContext",
    "WindowFeatures",
    "gate_reason",
    "standardize",
    "window_features",
]

#: Raw window metrics a baseline holds and the features are made of (Metrics names).
RAW_METRICS: tuple[str, ...] = (
    "hr_bpm",
    "rmssd_ms",
    "sdnn_ms",
    "pnn50_pct",
    "lf_hf",
    "resp_rate_bpm",
    "coherence",
    "signal_quality",
)
#: Without these a window is not usable (stress state ``unknown``).
REQUIRED_METRICS: tuple[str, ...] = ("hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct")
#: Lowest signal quality (0..1, share of template-matching beats) of a usable window.
MIN_SIGNAL_QUALITY = 0.3
#: Every feature this module computes, in this order; a model uses a subset, named in
#: its spec (``models/stress_features.json``).
FEATURE_NAMES: tuple[str, ...] = (
    "hr_log_ratio",
    "rmssd_log_ratio",
    "sdnn_log_ratio",
    "pnn50_diff_pct",
    "lf_hf_log_ratio",
    "sd2_log_ratio",
    "sd1_sd2_log_ratio",
    "resp_rate_diff_bpm",
    "coherence_diff",
    "signal_quality_diff",
    "hr_recent_low_log_ratio",
    "hr_change_log_ratio",
)
#: Bumped whenever a feature's computation changes: a model trained on other features
#: is refused (its spec names the version it was trained with).
FEATURE_VERSION = 2
#: Standardised features are clipped to +-this many training standard deviations (0.6 %
#: of the training windows lie further out). The int8 model's input range is this range:
#: 256 steps over +-4 SD resolve 0.03 SD, where +-6 SD would flip more decisions near the
#: threshold between the float and the int8 model.
FEATURE_CLIP = 4.0
#: SD2 is floored at this fraction of SD1 (the identity can go negative when SDNN and
#: RMSSD come from slightly different beats), so SD1/SD2 is at most 10.
_SD2_FLOOR = 0.1


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """The features of one window, or why there are none.

    Attributes
    ----------
    values:
        One value per :data:`FEATURE_NAMES` entry (dimensionless log ratios, or
        differences in the metric's unit), or None when the window is not usable.
    reason:
        Why ``values`` is None (empty otherwise).
    """

    values: FloatArray | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class HrContext:
    """What the recent past says about the heart rate (from :class:`~heartsong.stress.
    history.HrHistory`).

    Attributes
    ----------
    recent_low_bpm:
        A low quantile of the usable windows' heart rates over the last minutes, bpm
        (None while there are too few).
    earlier_hr_bpm:
        Heart rate of the usable window about a minute earlier, bpm (None without one).
    """

    recent_low_bpm: float | None = None
    earlier_hr_bpm: float | None = None


def _value(window: Mapping[str, object], name: str) -> float | None:
    """The finite number under ``name``, else None (absent, None, NaN, not a number)."""
    v = window.get(name)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def gate_reason(window: Mapping[str, object], min_quality: float = MIN_SIGNAL_QUALITY) -> str:
    """Why a window is not usable for a stress estimate, or ``""`` when it is.

    Parameters
    ----------
    window:
        The window's metrics under :data:`RAW_METRICS` names (None when not measured).
    min_quality:
        Lowest signal quality in [0, 1]; a window without a measured quality (RR
        intervals from a strap) is not judged on it.

    Returns
    -------
    str
        A sentence naming the missing metric or the low quality, or ``""``.
    """
    for name in REQUIRED_METRICS:
        value = _value(window, name)
        if value is None:
            return f"too few clean beats: no {name} in this window"
        if name != "pnn50_pct" and value <= 0.0:
            return f"{name} is not positive ({value:g})"
    quality = _value(window, "signal_quality")
    if quality is not None and quality < min_quality:
        return f"signal quality {quality:.2f} < {min_quality:.2f}"
    return ""


def _sd1_sd2(rmssd_ms: float, sdnn_ms: float) -> tuple[float, float]:
    """SD1 and SD2 in ms from RMSSD and SDNN (Brennan et al. 2001 identities)."""
    sd1 = rmssd_ms / math.sqrt(2.0)
    sd2_sq = 2.0 * sdnn_ms * sdnn_ms - sd1 * sd1
    sd2 = math.sqrt(max(sd2_sq, (_SD2_FLOOR * sd1) ** 2))
    return sd1, sd2


def _log_ratio(value: float | None, base: float | None) -> float:
    if value is None or base is None or value <= 0.0 or base <= 0.0:
        return 0.0
    return math.log(value / base)


def _diff(value: float | None, base: float | None) -> float:
    if value is None or base is None:
        return 0.0
    return value - base


def window_features(
    window: Mapping[str, object],
    baseline: Mapping[str, float],
    *,
    min_quality: float = MIN_SIGNAL_QUALITY,
    context: HrContext | None = None,
) -> WindowFeatures:
    """Compute the stress features of one window against a baseline.

    Parameters
    ----------
    window:
        The window's metrics under :data:`RAW_METRICS` names: ``hr_bpm`` (bpm),
        ``rmssd_ms``, ``sdnn_ms`` (ms), ``pnn50_pct`` (%), ``lf_hf``, ``resp_rate_bpm``
        (breaths/min), ``coherence`` and ``signal_quality`` (0..1); None when not measured.
    baseline:
        The person's resting value of each of the same metrics (NaN when unknown); the
        required ones must be finite and positive.
    min_quality:
        Lowest signal quality of a usable window (see :func:`gate_reason`).
    context:
        The recent heart rates (:class:`HrContext`, bpm); None counts as no history: the
        recent low is the baseline heart rate and the change is 0.

    Returns
    -------
    WindowFeatures
        Values in :data:`FEATURE_NAMES` order, or None with the reason.

    Raises
    ------
    InputDataError
        When the baseline lacks a required metric.
    """
    for name in REQUIRED_METRICS:
        rest = baseline.get(name)
        if rest is None or not math.isfinite(rest) or (name != "pnn50_pct" and rest <= 0.0):
            raise InputDataError(f"baseline.{name}", "a finite, positive resting value", rest)
    why = gate_reason(window, min_quality)
    if why:
        return WindowFeatures(None, why)
    v = {name: _value(window, name) for name in RAW_METRICS}
    b = {name: _finite_or_none(baseline.get(name)) for name in RAW_METRICS}
    rmssd, sdnn = v["rmssd_ms"], v["sdnn_ms"]
    b_rmssd, b_sdnn = b["rmssd_ms"], b["sdnn_ms"]
    assert rmssd is not None and sdnn is not None and b_rmssd is not None and b_sdnn is not None
    hr = v["hr_bpm"]
    ctx = context or HrContext()
    low = ctx.recent_low_bpm if ctx.recent_low_bpm is not None else b["hr_bpm"]
    sd1, sd2 = _sd1_sd2(rmssd, sdnn)
    b_sd1, b_sd2 = _sd1_sd2(b_rmssd, b_sdnn)
    out = np.array(
        [
            _log_ratio(v["hr_bpm"], b["hr_bpm"]),
            _log_ratio(rmssd, b_rmssd),
            _log_ratio(sdnn, b_sdnn),
            _diff(v["pnn50_pct"], b["pnn50_pct"]),
            _log_ratio(v["lf_hf"], b["lf_hf"]),
            _log_ratio(sd2, b_sd2),
            math.log(sd1 / sd2) - math.log(b_sd1 / b_sd2),
            _diff(v["resp_rate_bpm"], b["resp_rate_bpm"]),
            _diff(v["coherence"], b["coherence"]),
            _diff(v["signal_quality"], b["signal_quality"]),
            _log_ratio(hr, low),
            _log_ratio(hr, ctx.earlier_hr_bpm) if ctx.earlier_hr_bpm is not None else 0.0,
        ],
        dtype=np.float64,
    )
    return WindowFeatures(out)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def standardize(
    values: FloatArray,
    mean: Sequence[float] | FloatArray,
    scale: Sequence[float] | FloatArray,
    clip: float = FEATURE_CLIP,
) -> FloatArray:
    """Standardise features with the training set's mean and scale, then clip.

    Parameters
    ----------
    values:
        Features, shape ``(n_features,)`` or ``(n_windows, n_features)``.
    mean, scale:
        Per-feature training mean and standard deviation (scale > 0), in the features'
        units.
    clip:
        Results are limited to ``[-clip, clip]`` (standard deviations).

    Returns
    -------
    FloatArray
        ``(values - mean) / scale``, clipped, float64.
    """
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(scale, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    if x.shape[-1] != m.shape[0] or s.shape != m.shape:
        raise InputDataError(
            "features", f"{m.shape[0]} values per window (as the spec's mean/scale)", x.shape
        )
    out: FloatArray = np.clip((x - m) / s, -clip, clip)
    return out
