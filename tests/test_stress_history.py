"""Heart-rate history of the stress features: running low reference and earlier heart rate,
causal, checked against a plain NumPy version."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.stress.features import FEATURE_NAMES, HrContext, window_features
from heartsong.stress.history import HistorySettings, HrHistory

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


def reference(
    t: np.ndarray, hr: np.ndarray, usable: np.ndarray, s: HistorySettings
) -> list[tuple[float | None, float | None]]:
    """Recent low and earlier heart rate of every window from the whole arrays (NumPy)."""
    out: list[tuple[float | None, float | None]] = []
    for i in range(t.size):
        span = usable & (t <= t[i]) & (t > t[i] - s.window_s)
        low = float(np.quantile(hr[span], s.low_quantile)) if span.sum() >= s.min_windows else None
        back = np.flatnonzero(usable & (t <= t[i] - s.lag_s) & (t >= t[i] - s.max_lag_s))
        out.append((low, float(hr[back[-1]]) if back.size else None))
    return out


@pytest.mark.parametrize("step_s", [10.0, 2.5])
def test_history_matches_a_plain_numpy_version(step_s: float) -> None:
    rng = np.random.default_rng(11)
    n = int(1500 / step_s)
    t = 60.0 + step_s * np.arange(n)
    hr = 70.0 + 8.0 * np.sin(t / 200.0) + rng.normal(0.0, 2.0, n)
    usable = rng.random(n) > 0.35
    usable[int(n * 0.4): int(n * 0.4) + int(150 / step_s)] = False  # a 150-s dropout
    s = HistorySettings()
    hist = HrHistory(s)
    expected = reference(t, hr, usable, s)
    for i in range(n):
        w = dict(BASE, hr_bpm=float(hr[i]) if usable[i] else None)
        ctx = hist.observe(float(t[i]), w)
        low, earlier = expected[i]
        if low is None:
            assert ctx.recent_low_bpm is None
        else:
            assert ctx.recent_low_bpm == pytest.approx(low, abs=1e-9)
        if earlier is None:
            assert ctx.earlier_hr_bpm is None
        else:
            assert ctx.earlier_hr_bpm == pytest.approx(earlier, abs=1e-12)
    # Only the last window_s (or max_lag_s) of usable windows is kept.
    assert len(hist) <= s.window_s / step_s + 1


def test_recent_low_needs_enough_windows_and_follows_the_low_quantile() -> None:
    hist = HrHistory(HistorySettings(min_windows=3, low_quantile=0.0))
    assert hist.observe(10.0, dict(BASE, hr_bpm=80.0)).recent_low_bpm is None
    assert hist.observe(20.0, dict(BASE, hr_bpm=60.0)).recent_low_bpm is None
    ctx = hist.observe(30.0, dict(BASE, hr_bpm=90.0))
    assert ctx.recent_low_bpm == 60.0


def test_unusable_windows_are_not_recorded_and_earlier_needs_a_window_a_minute_back() -> None:
    hist = HrHistory()
    hist.observe(0.0, dict(BASE, hr_bpm=65.0))
    hist.observe(10.0, dict(BASE, signal_quality=0.1, hr_bpm=200.0))  # low quality
    assert len(hist) == 1
    assert hist.observe(50.0, dict(BASE)).earlier_hr_bpm is None  # only 50 s back
    assert hist.observe(60.0, dict(BASE)).earlier_hr_bpm == 65.0
    # At 70 s the window ending at 10 s would be the one a minute back, but it was not
    # usable: the one before it (0 s, 70 s back) is taken.
    assert hist.observe(70.0, dict(BASE, hr_bpm=None)).earlier_hr_bpm == 65.0
    # More than max_lag_s after the last usable window a minute back: no earlier value.
    fresh = HrHistory()
    fresh.observe(0.0, dict(BASE))
    assert fresh.observe(91.0, dict(BASE)).earlier_hr_bpm is None


def test_a_step_back_in_time_starts_a_new_history() -> None:
    hist = HrHistory()
    for k in range(10):
        hist.observe(100.0 + 10.0 * k, dict(BASE, hr_bpm=90.0))
    assert len(hist) == 10
    ctx = hist.observe(5.0, dict(BASE, hr_bpm=60.0))
    assert len(hist) == 1 and ctx.earlier_hr_bpm is None and ctx.recent_low_bpm is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window_s": 0.0}, "window_s"),
        ({"low_quantile": 1.5}, "low_quantile"),
        ({"min_windows": 0}, "min_windows"),
        ({"lag_s": 100.0, "max_lag_s": 90.0}, "lag_s"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputDataError, match=field):
        HistorySettings(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="t_s"):
        HrHistory().observe(math.nan, dict(BASE))


def test_history_features_are_log_ratios_and_fall_back_without_history() -> None:
    w = dict(BASE, hr_bpm=77.0)
    low_i = FEATURE_NAMES.index("hr_recent_low_log_ratio")
    ch_i = FEATURE_NAMES.index("hr_change_log_ratio")
    hr_i = FEATURE_NAMES.index("hr_log_ratio")
    v = window_features(w, BASE, context=HrContext(recent_low_bpm=66.0, earlier_hr_bpm=70.0)).values
    assert v is not None
    assert v[low_i] == pytest.approx(math.log(77.0 / 66.0))
    assert v[ch_i] == pytest.approx(math.log(1.1))
    bare = window_features(w, BASE).values
    assert bare is not None
    assert bare[low_i] == pytest.approx(bare[hr_i]) and bare[ch_i] == 0.0
    # A rise over the recent low and over a minute ago both read as positive.
    rising = window_features(w, BASE, context=HrContext(60.0, 65.0)).values
    assert rising is not None and rising[low_i] > v[low_i] and rising[ch_i] > v[ch_i]
