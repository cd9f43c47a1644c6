"""The response measure: changes over the episode, drift correction, and no update without
enough clean data."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.events import Metrics
from heartsong.therapy.response import (
    HR_SCALE_BPM,
    Drift,
    Response,
    ResponseConfig,
    ResponseRecorder,
    Sample,
    calm_score,
    corrected,
    expected_drift,
    measure_response,
    phase_bin,
)

CFG = ResponseConfig()
DT = 5.0


def _episode(
    hr_slope_bpm_per_min: float,
    *,
    minutes: float = 10.0,
    noise: float = 0.0,
    seed: int = 0,
    missing_every: int = 0,
) -> list[Sample]:
    rng = np.random.default_rng(seed)
    out = []
    n = int(minutes * 60 / DT)
    for k in range(n + 1):
        t = k * DT
        if missing_every and k % missing_every != 0:
            out.append(Sample(t, None, None, None))
            continue
        hr = 70.0 + hr_slope_bpm_per_min * t / 60.0 + noise * float(rng.standard_normal())
        rm = 30.0 * math.exp(0.02 * t / 60.0)
        p = 0.6 - 0.02 * t / 60.0
        out.append(Sample(t, hr, rm, p))
    return out


def _resp(name: str, session_s: float, d_hr: float, day: int = 0) -> Response:
    return Response(name, 1.7e9 + 86400.0 * day, session_s, 600.0, d_hr, None, None, 100)


def test_a_clean_linear_fall_is_measured_over_the_window() -> None:
    out = measure_response(_episode(-0.4), "rain", 1.7e9, 0.0, CFG)
    r = out.response
    assert r is not None, out.reason
    # -0.4 bpm/min over the 10-min window
    assert r.d_hr_bpm == pytest.approx(-4.0, abs=0.05)
    assert r.d_rmssd_log == pytest.approx(0.2, abs=0.01)  # 0.02 /min in ln(RMSSD)
    assert r.d_p_stress == pytest.approx(-0.2, abs=0.01)
    assert r.calm > 0 and r.soundscape == "rain"


def test_noise_is_averaged_out_by_the_line_fit() -> None:
    changes = [
        measure_response(_episode(-0.3, noise=1.5, seed=s), "rain", 1.7e9, 0.0, CFG).response
        for s in range(20)
    ]
    d = [c.d_hr_bpm for c in changes if c is not None and c.d_hr_bpm is not None]
    assert len(d) == 20
    assert np.mean(d) == pytest.approx(-3.0, abs=0.5)
    assert np.std(d) < 1.0  # one noisy update of SD 1.5 bpm moves the fit little


def test_a_rising_heart_rate_is_a_negative_calm_score() -> None:
    r = measure_response(_episode(+0.3), "ocean", 1.7e9, 0.0, CFG).response
    assert r is not None and r.d_hr_bpm is not None and r.d_hr_bpm > 2.5
    assert calm_score(r.d_hr_bpm, None, None) == pytest.approx(-r.d_hr_bpm / HR_SCALE_BPM)


def test_too_short_an_episode_gives_no_update_with_the_reason() -> None:
    out = measure_response(_episode(-0.4, minutes=3.0), "rain", 1.7e9, 0.0, CFG)
    assert out.response is None and "played 3.0 min < 5.0 min" in out.reason


def test_too_little_clean_data_gives_no_update_with_the_reason() -> None:
    out = measure_response(_episode(-0.4, missing_every=3), "rain", 1.7e9, 0.0, CFG)
    assert out.response is None and "clean signal" in out.reason and "< 60%" in out.reason
    # the same episode with 2 in 3 updates clean is measured
    ok = measure_response(_episode(-0.4), "rain", 1.7e9, 0.0, CFG)
    assert ok.response is not None


def test_no_clean_reference_gives_no_update() -> None:
    samples = [
        s if s.t_s > 60.0 else Sample(s.t_s, None, None, None) for s in _episode(-0.4)
    ]
    out = measure_response(samples, "rain", 1.7e9, 0.0, CFG)
    assert out.response is None and "clean updates in the first 60 s" in out.reason


def test_the_recorder_counts_a_poor_signal_as_missing() -> None:
    rec = ResponseRecorder("rain", 100.0, 1.7e9, 0.0, CFG, DT)
    for k in range(121):
        t = 100.0 + k * DT
        q = 0.2 if k % 2 else 0.9  # half the updates unusable
        rec.add(Metrics(t_s=t, wall_s=1.7e9 + t, hr_bpm=70.0 - 0.004 * k * DT,
                        rmssd_ms=30.0, signal_quality=q), t)
    assert rec.full(100.0 + 600.0)
    out = rec.finish()
    assert out.response is None and "clean signal 50%" in out.reason


def test_drift_is_removed_phase_by_phase() -> None:
    """Two sounds of equal effect: one always at the session's start, where everybody
    settles fast, the other always later. Raw changes differ by 3 bpm; corrected, they
    are equal. A third sound played in both phases anchors each phase's drift."""
    history = []
    for night in range(6):
        history += [
            (_resp("early", 0.0, -4.0, night), 1.0),
            (_resp("both", 0.0, -4.0, night), 1.0),
            (_resp("late", 1200.0, -1.0, night), 1.0),
            (_resp("both", 1200.0, -1.0, night), 1.0),
        ]
    early = _resp("early", 0.0, -4.0)
    late = _resp("late", 1200.0, -1.0)
    assert early.d_hr_bpm is not None and late.d_hr_bpm is not None
    assert early.d_hr_bpm - late.d_hr_bpm == pytest.approx(-3.0)
    ce = corrected(early, expected_drift(history, early))
    cl = corrected(late, expected_drift(history, late))
    assert ce.d_hr_bpm == pytest.approx(cl.d_hr_bpm, abs=1e-9)
    assert ce.d_hr_bpm == pytest.approx(0.0, abs=1e-9)


def test_drift_is_balanced_over_soundscapes_not_over_episodes() -> None:
    # 9 episodes of a good sound and 1 of a poor one: the drift is their midpoint, not
    # the good sound's level, so choosing a sound often does not erase its advantage
    history = [(_resp("good", 0.0, -5.0, n), 1.0) for n in range(9)]
    history.append((_resp("poor", 0.0, -1.0, 9), 1.0))
    d = expected_drift(history, _resp("any", 0.0, 0.0))
    assert d.d_hr_bpm == pytest.approx(-3.0)
    assert d.episodes == pytest.approx(10.0)


def test_without_history_there_is_no_correction_and_a_phase_borrows_its_neighbour() -> None:
    r = _resp("rain", 0.0, -2.0)
    d0 = expected_drift([], r)
    assert not d0.known and corrected(r, d0) == r
    # only phase 0 known
    d = expected_drift([(_resp("ocean", 0.0, -3.0), 1.0)], _resp("rain", 2000.0, -1.0))
    assert phase_bin(2000.0) == 3 and d.known and d.d_hr_bpm == pytest.approx(-3.0)
    assert Drift().known is False


def test_a_higher_start_is_expected_to_fall_further() -> None:
    """The law of initial values: across nights, the heart rate fell by half of how far it
    started above 65 bpm, whatever played. An episode starting at 75 bpm is expected to
    fall 5 bpm, one starting at 67 bpm 1 bpm; both falls are then no effect of the sound."""
    history = []
    for night, start in enumerate((66.0, 68.0, 70.0, 72.0, 74.0, 76.0)):
        for name in ("rain", "ocean"):
            r = _resp(name, 0.0, -0.5 * (start - 65.0), night)
            history.append((dataclasses.replace(r, ref_hr_bpm=start), 1.0))
    high = dataclasses.replace(_resp("rain", 0.0, -5.0), ref_hr_bpm=75.0)
    low = dataclasses.replace(_resp("rain", 0.0, -1.0), ref_hr_bpm=67.0)
    for ep in (high, low):
        c = corrected(ep, expected_drift(history, ep))
        assert c.d_hr_bpm == pytest.approx(0.0, abs=1e-9)
    # without the start level the correction is the mean fall only (3 bpm)
    plain = _resp("rain", 0.0, -5.0)
    assert corrected(plain, expected_drift(history, plain)).d_hr_bpm == pytest.approx(-2.0)


def test_measured_responses_keep_their_start_levels() -> None:
    r = measure_response(_episode(-0.4), "rain", 1.7e9, 0.0, CFG).response
    # the median of the first minute: 70 bpm falling 0.4 bpm/min, at 30 s
    assert r is not None and r.ref_hr_bpm == pytest.approx(69.8, abs=0.01)
    assert r.ref_p_stress == pytest.approx(0.6 - 0.02 * 0.5, abs=0.01)


def test_bad_config_is_refused_naming_the_field() -> None:
    with pytest.raises(InputDataError, match="min_length_s"):
        ResponseConfig(window_s=300.0, min_length_s=400.0)
    with pytest.raises(InputDataError, match="min_clean_fraction"):
        ResponseConfig(min_clean_fraction=1.5)
