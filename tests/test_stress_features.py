"""Stress features: ratios and differences to the baseline, SD1/SD2, the usability gate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.stress.features import (
    FEATURE_CLIP,
    FEATURE_NAMES,
    MIN_SIGNAL_QUALITY,
    RAW_METRICS,
    gate_reason,
    standardize,
    window_features,
)

BASE = {
    "hr_bpm": 70.0,
    "rmssd_ms": 40.0,
    "sdnn_ms": 50.0,
    "pnn50_pct": 20.0,
    "lf_hf": 1.5,
    "resp_rate_bpm": 14.0,
    "coherence": 0.3,
    "signal_quality": 0.8,
}


def feature(values: np.ndarray | None, name: str) -> float:
    assert values is not None
    return float(values[FEATURE_NAMES.index(name)])


def test_a_window_equal_to_the_baseline_has_all_features_zero() -> None:
    f = window_features(dict(BASE), BASE)
    assert f.reason == ""
    assert f.values is not None and f.values.shape == (len(FEATURE_NAMES),)
    np.testing.assert_allclose(f.values, 0.0, atol=1e-12)


def test_ratios_and_differences_have_their_units() -> None:
    w = dict(BASE, hr_bpm=77.0, rmssd_ms=20.0, pnn50_pct=5.0, resp_rate_bpm=18.0, lf_hf=3.0)
    v = window_features(w, BASE).values
    assert feature(v, "hr_log_ratio") == pytest.approx(math.log(1.1))
    assert feature(v, "rmssd_log_ratio") == pytest.approx(math.log(0.5))
    assert feature(v, "lf_hf_log_ratio") == pytest.approx(math.log(2.0))
    assert feature(v, "pnn50_diff_pct") == pytest.approx(-15.0)
    assert feature(v, "resp_rate_diff_bpm") == pytest.approx(4.0)


def test_a_faster_heart_gives_a_larger_hr_feature() -> None:
    values = [feature(window_features(dict(BASE, hr_bpm=hr), BASE).values, "hr_log_ratio")
              for hr in (60.0, 70.0, 80.0, 95.0)]
    assert values == sorted(values) and values[1] == pytest.approx(0.0)


def poincare_numpy(rr: np.ndarray) -> tuple[float, float]:
    """SD1, SD2 from the Poincare plot's rotated axes (Brennan et al. 2001), plain NumPy."""
    x, y = rr[:-1], rr[1:]
    sd1 = float(np.std((y - x) / math.sqrt(2.0), ddof=1))
    sd2 = float(np.std((y + x) / math.sqrt(2.0), ddof=1))
    return sd1, sd2


def test_sd1_sd2_from_rmssd_and_sdnn_match_the_poincare_plot() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(300)
    # Slow (LF-like) and breathing-rate (HF) oscillation plus noise, ms.
    rr = 850 + 40 * np.sin(2 * np.pi * t / 12) + 25 * np.sin(2 * np.pi * t / 4.2)
    rr = rr + rng.normal(0, 8, t.size)
    d = np.diff(rr)
    rmssd = float(np.sqrt(np.mean(d * d)))
    sdnn = float(np.std(rr, ddof=1))
    sd1, sd2 = poincare_numpy(rr)
    base = dict(BASE, rmssd_ms=rmssd, sdnn_ms=sdnn)
    # Against a baseline with SD1 = SD2 (ratio 1), the ratio feature is log(SD1/SD2) itself.
    flat = dict(BASE, rmssd_ms=math.sqrt(2.0) * 40.0, sdnn_ms=40.0)
    v = window_features(base, flat).values
    assert feature(v, "sd1_sd2_log_ratio") == pytest.approx(math.log(sd1 / sd2), abs=0.02)
    assert feature(v, "sd2_log_ratio") == pytest.approx(math.log(sd2 / 40.0), abs=0.02)


@pytest.mark.parametrize("missing", ["hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct"])
def test_a_window_without_a_required_metric_is_not_usable(missing: str) -> None:
    w = dict(BASE)
    w[missing] = None  # type: ignore[assignment]
    f = window_features(w, BASE)
    assert f.values is None
    assert missing in f.reason and "clean beats" in f.reason


def test_low_signal_quality_is_not_usable_but_unmeasured_quality_is() -> None:
    low = dict(BASE, signal_quality=MIN_SIGNAL_QUALITY - 0.01)
    assert "signal quality" in gate_reason(low)
    assert window_features(low, BASE).values is None
    strap = dict(BASE)
    strap["signal_quality"] = None  # type: ignore[assignment]
    assert gate_reason(strap) == ""
    assert feature(window_features(strap, BASE).values, "signal_quality_diff") == 0.0


@pytest.mark.parametrize("name", ["lf_hf", "resp_rate_bpm", "coherence"])
def test_a_missing_optional_metric_counts_as_unchanged(name: str) -> None:
    w = dict(BASE, hr_bpm=80.0)
    w[name] = None  # type: ignore[assignment]
    v = window_features(w, BASE).values
    key = {"lf_hf": "lf_hf_log_ratio", "resp_rate_bpm": "resp_rate_diff_bpm",
           "coherence": "coherence_diff"}[name]
    assert feature(v, key) == 0.0
    assert feature(v, "hr_log_ratio") > 0.0
    unknown_base = dict(BASE, **{name: math.nan})
    assert feature(window_features(dict(BASE, **{name: 9.0}), unknown_base).values, key) == 0.0


def test_non_numbers_and_nan_count_as_missing() -> None:
    assert "hr_bpm" in gate_reason(dict(BASE, hr_bpm=math.nan))
    assert "hr_bpm" in gate_reason(dict(BASE, hr_bpm="70"))  # type: ignore[arg-type]
    assert "not positive" in gate_reason(dict(BASE, rmssd_ms=0.0))


def test_a_baseline_without_a_required_metric_is_refused() -> None:
    with pytest.raises(InputDataError, match=r"baseline\.hr_bpm"):
        window_features(dict(BASE), dict(BASE, hr_bpm=math.nan))


def test_standardize_scales_and_clips() -> None:
    x = np.array([[1.0, 10.0], [3.0, -1000.0]])
    z = standardize(x, [1.0, 0.0], [2.0, 5.0])
    np.testing.assert_allclose(z, [[0.0, 2.0], [1.0, -FEATURE_CLIP]])
    with pytest.raises(InputDataError, match="features"):
        standardize(np.zeros(3), [0.0, 0.0], [1.0, 1.0])


def test_raw_metrics_are_metrics_fields() -> None:
    from dataclasses import fields

    from heartsong.events import Metrics

    names = {f.name for f in fields(Metrics)}
    assert set(RAW_METRICS) <= names
