"""Smoothing of p_stress in time and the hysteresis state machine."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.stress.smoothing import StressSmoother, StressThresholds

TH = StressThresholds(calm_enter=0.25, calm_exit=0.30, stressed_exit=0.40, stressed_enter=0.45)


def run(smoother: StressSmoother, ps: list[float | None], dt: float = 10.0) -> list[str]:
    return [smoother.update(dt * i, p).state for i, p in enumerate(ps)]


def test_smoothing_is_exponential_in_time_whatever_the_update_rate() -> None:
    for dt in (1.0, 5.0, 10.0):
        s = StressSmoother(TH, tau_s=30.0, warmup_s=0.0)
        s.update(0.0, 0.0)
        out = None
        for k in range(1, round(60.0 / dt) + 1):
            out = s.update(k * dt, 1.0)
        assert out is not None and out.p_stress is not None
        assert out.p_stress == pytest.approx(1.0 - math.exp(-2.0), abs=1e-9)


def test_states_follow_the_smoothed_probability() -> None:
    s = StressSmoother(TH, tau_s=1e-3, warmup_s=0.0)  # tiny tau: no smoothing
    states = run(s, [0.1, 0.35, 0.5, 0.42, 0.38, 0.27, 0.2, 0.28, 0.32])
    assert states == ["calm", "neutral", "stressed", "stressed", "neutral", "neutral", "calm",
                      "calm", "neutral"]


def test_the_first_verdict_needs_an_entry_threshold() -> None:
    assert run(StressSmoother(TH, tau_s=1e-3, warmup_s=0.0), [0.46]) == ["stressed"]
    assert run(StressSmoother(TH, tau_s=1e-3, warmup_s=0.0), [0.42]) == ["neutral"]
    assert run(StressSmoother(TH, tau_s=1e-3, warmup_s=0.0), [0.28]) == ["neutral"]
    assert run(StressSmoother(TH, tau_s=1e-3, warmup_s=0.0), [0.2]) == ["calm"]


def test_hysteresis_stops_flapping_around_a_threshold() -> None:
    rng = np.random.default_rng(3)
    ps = list(np.clip(0.45 + rng.normal(0.0, 0.02, 400), 0.0, 1.0))
    with_h = run(StressSmoother(TH, tau_s=1e-3, warmup_s=0.0), ps)
    no_h = run(StressSmoother(StressThresholds(0.2499, 0.25, 0.45, 0.4501), tau_s=1e-3,
                              warmup_s=0.0), ps)

    def changes(states: list[str]) -> int:
        return sum(a != b for a, b in itertools.pairwise(states))

    assert changes(with_h) < changes(no_h) / 5


def test_an_unusable_window_is_unknown_with_its_reason_and_keeps_the_average() -> None:
    s = StressSmoother(TH, tau_s=30.0, warmup_s=0.0)
    s.update(0.0, 0.9)
    gap = s.update(10.0, None, "too few clean beats")
    assert gap.state == "unknown" and gap.p_stress is None and gap.reason == "too few clean beats"
    after = s.update(20.0, 0.9)
    assert after.state == "stressed" and after.p_stress == pytest.approx(0.9)


def test_warm_up_and_reset_after_a_long_gap() -> None:
    s = StressSmoother(TH, tau_s=30.0, warmup_s=20.0, max_gap_s=120.0)
    first = [s.update(t, 0.1) for t in (0.0, 10.0, 20.0)]
    assert [r.state for r in first] == ["unknown", "unknown", "calm"]
    assert "warming up" in first[0].reason
    late = s.update(500.0, 0.9)  # more than max_gap_s later: start afresh
    assert late.state == "unknown" and "warming up" in late.reason
    assert s.update(520.0, 0.9).p_stress == pytest.approx(0.9)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputDataError, match="thresholds"):
        StressThresholds(0.3, 0.2, 0.4, 0.5)
    with pytest.raises(InputDataError, match="thresholds"):
        StressThresholds(0.1, 0.2, 0.4, 1.5)
    with pytest.raises(InputDataError, match="tau_s"):
        StressSmoother(TH, tau_s=0.0)
    with pytest.raises(InputDataError, match="p_stress"):
        StressSmoother(TH).update(0.0, 1.2)
