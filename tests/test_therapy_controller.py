"""The closed-loop controller as the appliance drives it: per-update decisions, reasons,
sleep mode, user changes, and the resonance sessions kept across nights."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
from pathlib import Path

import pytest

from heartsong.events import Metrics
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.controller import RESP_WARMUP_S, TherapyController
from heartsong.therapy.policy import PolicySettings
from heartsong.therapy.resonance import ResonanceStore
from heartsong.therapy.settings import TherapyTuning

SETTINGS = PolicySettings("wind_down", "ocean", -20.0, 6.0, 0.0)
WALL0 = dt.datetime(2024, 3, 4, 22, 30).astimezone().timestamp()
DT = 5.0


def _metrics(t: float, resp: float | None, *, hr: float = 70.0, rmssd: float = 30.0,
             sdnn: float = 40.0, quality: float = 1.0) -> Metrics:
    return Metrics(t_s=t, wall_s=WALL0 + t, hr_bpm=hr, rmssd_ms=rmssd, sdnn_ms=sdnn,
                   resp_rate_bpm=resp, signal_quality=quality, source="ble", n_beats=70)


def _follow(ctl: TherapyController, t0: float, seconds: float, p: float | None = 0.3,
            lag: float = 0.2) -> list[str]:
    """Metrics whose breathing follows the pacer (``lag`` above it); all reasons."""
    reasons: list[str] = []
    t = t0
    while t < t0 + seconds:
        t += DT
        rate = ctl.pacer_bpm
        resp = 15.0 if rate is None else rate + lag
        est = StressEstimate(p, "neutral") if p is not None else None
        reasons += ctl.step(_metrics(t, resp), est, t, WALL0 + t).reasons
    return reasons


def test_session_start_then_the_pacer_starts_near_the_breathing() -> None:
    ctl = TherapyController(SETTINGS)
    d = ctl.start(0.0, WALL0)
    assert d.targets.breath_rate_bpm is None and d.mode == "wind_down"
    assert "session start: wind_down mode" in d.reasons[0]
    t = 0.0
    while t + DT < RESP_WARMUP_S:  # a part-filled window misread as the Mayer wave's 6/min
        t += DT
        d = ctl.step(_metrics(t, 6.1), StressEstimate(0.3, "neutral"), t, WALL0 + t)
        assert d.targets.breath_rate_bpm is None
    reasons: list[str] = []
    for _ in range(3):
        t += DT
        d = ctl.step(_metrics(t, 15.3), StressEstimate(0.3, "neutral"), t, WALL0 + t)
        reasons += d.reasons
    assert d.targets.breath_rate_bpm == pytest.approx(14.5)
    assert (
        "breath rate off -> 14.5 /min: pacer on near the measured breathing (15.3 /min)"
        in reasons
    )


def test_the_pacer_walks_down_as_the_breathing_follows_with_reasons() -> None:
    ctl = TherapyController(SETTINGS)
    ctl.start(0.0, WALL0)
    reasons = _follow(ctl, 0.0, 1800.0)
    steps = [r for r in reasons if r.startswith("breath rate") and "followed for" in r]
    assert len(steps) >= 5
    rates = [float(r.split(" -> ")[1].split(" ")[0]) for r in steps]
    assert rates[0] >= 13.0 and min(rates) <= 5.0  # down to 6, then the assessment below
    ups = [r for r in reasons if "resonance assessment" in r]
    assert ups, "after the lowest rate the assessment walks back up"


def test_breathing_that_does_not_follow_keeps_the_pacer() -> None:
    ctl = TherapyController(SETTINGS)
    ctl.start(0.0, WALL0)
    t = 0.0
    for _ in range(240):  # 20 min of breathing stuck at 15/min
        t += DT
        ctl.step(_metrics(t, 15.0), None, t, WALL0 + t)
    assert ctl.pacer_bpm is not None and ctl.pacer_bpm >= 13.5


def test_poor_signal_holds_the_pacer() -> None:
    ctl = TherapyController(SETTINGS)
    ctl.start(0.0, WALL0)
    _follow(ctl, 0.0, 120.0)
    rate = ctl.pacer_bpm
    t = 120.0
    for _ in range(120):
        t += DT
        assert rate is not None
        ctl.step(_metrics(t, rate, quality=0.2), StressEstimate(0.9, "stressed"), t, WALL0 + t)
    assert ctl.pacer_bpm == rate


def test_sleep_onset_switches_to_sleep_mode_and_fades() -> None:
    ctl = TherapyController(SETTINGS, TherapyTuning(sleep_fade_min=2.0))
    ctl.start(0.0, WALL0)
    _follow(ctl, 0.0, 1500.0)
    pacer = ctl.pacer_bpm
    assert pacer is not None
    t = 1500.0
    reasons: list[str] = []
    volumes: list[float] = []
    for k in range(120):  # asleep: breathing leaves the pacer, HR falls, RMSSD rises
        t += DT
        ramp = min(1.0, k / 36.0)
        m = _metrics(t, 12.0, hr=70.0 - 5.0 * ramp, rmssd=30.0 * (1 + 0.5 * ramp))
        d = ctl.step(m, StressEstimate(0.1, "calm"), t, WALL0 + t)
        reasons += d.reasons
        volumes.append(d.targets.volume_db)
    assert ctl.mode == "sleep" and ctl.pacer_bpm is None
    onset = next(r for r in reasons if r.startswith("mode wind_down -> sleep"))
    assert "sleep onset: still for" in onset and "HR" in onset
    assert any(r.startswith("breath rate") and "-> off: asleep" in r for r in reasons)
    fade = [r for r in reasons if "sleep fade" in r]
    assert len(fade) >= 3
    assert volumes[-1] == pytest.approx(-20.0 - 8.0 - TherapyTuning().sleep_fade_db)
    assert all(b <= a for a, b in itertools.pairwise(volumes))


def test_sleep_sound_off_fades_to_silence() -> None:
    ctl = TherapyController(SETTINGS, TherapyTuning(sleep_sound="off", sleep_fade_min=1.0))
    ctl.start(0.0, WALL0)
    ctl.sleep_onset_s = 100.0  # as if sleep onset had been detected at 100 s
    d = ctl.step(_metrics(200.0, 12.0), None, 200.0, WALL0 + 200.0)
    assert not d.targets.playing
    assert any("faded to silence" in r for r in d.reasons)


def test_user_changes_are_applied_and_explained() -> None:
    ctl = TherapyController(SETTINGS)
    ctl.start(0.0, WALL0)
    _follow(ctl, 0.0, 120.0)
    d = ctl.update_settings(dataclasses.replace(SETTINGS, soundscape="rain"), 125.0, WALL0 + 125)
    assert d.targets.soundscape == "rain"
    assert "soundscape ocean -> rain: user choice" in d.reasons
    d = ctl.update_settings(
        dataclasses.replace(SETTINGS, soundscape="rain", playing=False), 130.0, WALL0 + 130
    )
    assert not d.targets.playing and "sound paused by the user" in d.reasons


def test_open_loop_setting_keeps_the_fixed_pacer() -> None:
    ctl = TherapyController(SETTINGS, TherapyTuning(closed_loop=False))
    ctl.start(0.0, WALL0)
    t = 0.0
    for _ in range(60):
        t += DT
        d = ctl.step(_metrics(t, 15.0), None, t, WALL0 + t)
    assert d.targets.breath_rate_bpm == 6.0 and ctl.mode == "wind_down"


def test_stress_darkens_the_sound_with_a_reason() -> None:
    ctl = TherapyController(SETTINGS)
    start = ctl.start(0.0, WALL0).targets
    reasons = _follow(ctl, 0.0, 300.0, p=0.9)
    assert ctl.targets is not None and ctl.targets.brightness < start.brightness
    assert any(r.startswith("brightness") and "p_stress" in r for r in reasons)
    assert any(r.startswith("soundscape ocean -> brown_noise: stressed for") for r in reasons)


def test_resonance_sessions_are_kept_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    ctl = TherapyController(SETTINGS, store=ResonanceStore(path))
    ctl.start(0.0, WALL0)
    _follow(ctl, 0.0, 3600.0, lag=0.0)
    ctl.close()
    doc = json.loads(path.read_text(encoding="utf-8"))
    visits = doc["resonance"]["sessions"][0]["visits"]
    rates = {v[0] for v in visits}
    assert {4.5, 5.0, 5.5, 6.0} <= rates, "the assessment walked the band"
    again = TherapyController(SETTINGS, store=ResonanceStore(path))
    assert len(again.model.sessions) == 1


def test_unknown_masking_soundscape_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"therapy\.masking_soundscape"):
        TherapyController(SETTINGS, TherapyTuning(masking_soundscape="nope"))


def test_a_new_session_starts_afresh_with_new_settings() -> None:
    ctl = TherapyController(SETTINGS)
    ctl.start(0.0, WALL0)
    _follow(ctl, 0.0, 300.0)
    assert ctl.pacer_bpm is not None
    d = ctl.start(400.0, WALL0 + 400.0, dataclasses.replace(SETTINGS, mode="calm"))
    assert ctl.pacer_bpm is None and ctl.mode == "calm" and d.mode == "calm"
    assert d.reasons[0].startswith("session start: calm mode")
