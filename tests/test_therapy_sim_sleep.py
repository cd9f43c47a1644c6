"""The simulated sleeper: follows pacers within reach, calms, falls asleep; and the closed
loop with it, through the real DSP, as tools/simulate_sessions.py runs it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.events import RrBlock
from heartsong.sensors.sim_person import PersonParams
from heartsong.sensors.sim_sleep import (
    TICK_S,
    MovementArtifacts,
    SimulatedSleeper,
    SleeperParams,
)
from heartsong.sensors.sim_strap import SimulatedStrap
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.controller import TherapyController
from heartsong.therapy.policy import PolicySettings

PERSON = PersonParams(stress=0.7, breath_rate_bpm=13.0)
QUIET = SleeperParams(worries_per_hour=0.0, moves_per_hour_awake=0.0)


def _breathing_after(pacer: float | None, sleeper: SleeperParams, t_s: float = 600.0) -> float:
    s = SimulatedSleeper(PERSON, sleeper, seed=3)
    s.hear(pacer)
    s.advance(t_s)
    return s.breath_rate_bpm


def test_same_seed_same_night() -> None:
    a = SimulatedSleeper(PERSON, SleeperParams(), seed=5)
    b = SimulatedSleeper(PERSON, SleeperParams(), seed=5)
    for s in (a, b):
        s.hear(9.0)
        s.advance(900.0)
    assert a.stress == b.stress and a.breath_rate_bpm == b.breath_rate_bpm
    assert a.movements == b.movements


def test_follows_a_pacer_within_reach_only() -> None:
    spont = _breathing_after(None, QUIET)
    near = _breathing_after(spont - 2.0, QUIET)
    far = _breathing_after(spont - 8.0, QUIET)
    assert near == pytest.approx(spont - 2.0, abs=1.0)
    assert far == pytest.approx(spont, abs=1.5), "a pacer out of reach is not taken up"


def test_a_gradual_pacer_leads_further_than_a_jump() -> None:
    s = SimulatedSleeper(PERSON, QUIET, seed=4)
    rate = s.breath_rate_bpm
    t = 0.0
    while rate > 6.0:  # 0.5 /min every 45 s
        rate -= 0.5
        s.hear(rate)
        t += 45.0
        s.advance(t)
    s.advance(t + 300.0)
    assert s.following and s.breath_rate_bpm == pytest.approx(6.0, abs=0.8)


def test_slow_breathing_calms_and_calm_brings_sleep() -> None:
    sleeper = dataclasses.replace(QUIET, sleep_latency_s=120.0)
    paced = SimulatedSleeper(PERSON, sleeper, seed=6)
    alone = SimulatedSleeper(PERSON, sleeper, seed=6)
    rate = paced.breath_rate_bpm
    for k in range(1, 61):  # 30 min
        rate = max(6.0, rate - 0.5) if k % 2 == 0 else rate
        paced.hear(rate)
        paced.advance(30.0 * k)
        alone.advance(30.0 * k)
    assert paced.calm_s is not None
    assert alone.calm_s is None or alone.calm_s > paced.calm_s
    assert paced.asleep and paced.sleep_onset_s is not None
    assert paced.sleep_onset_s >= paced.calm_s + sleeper.sleep_latency_s - TICK_S
    assert not paced.following


def test_asleep_breathing_is_own_and_heart_slower() -> None:
    s = SimulatedSleeper(PERSON, dataclasses.replace(QUIET, sleep_latency_s=0.0,
                                                     calm_stress=1.0), seed=7)
    s.advance(30.0)
    hr_awake = s.person.hr_bpm
    s.hear(6.0)
    s.advance(600.0)
    assert s.asleep and s.stress == 0.0
    assert s.person.hr_bpm < hr_awake - 2.0
    assert s.breath_rate_bpm > 9.0, "a sleeper does not follow the pacer"


def test_movement_corrupts_only_beats_inside_a_movement() -> None:
    busy = dataclasses.replace(SleeperParams(), moves_per_hour_awake=120.0)
    s = SimulatedSleeper(PERSON, busy, seed=8)
    strap = SimulatedStrap(s.person)
    art = MovementArtifacts(s, seed=1)
    s.advance(900.0)
    changed = kept = 0
    previous_moving = False
    total_in = total_out = 0.0
    for _, rr, beats in strap.notifications_until(900.0):
        rr2, beats2 = art.apply(rr, beats)
        assert np.all(np.diff(beats2) > 0) and np.all(rr2 > 0)
        total_in += float(rr.sum())
        total_out += float(rr2.sum())
        moving = any(s.moving(b - r / 1000.0, b) for r, b in zip(rr, beats, strict=True))
        if len(rr2) != len(rr) or not np.allclose(rr2, rr):
            changed += 1
            # a beat missed at the end of a moving notification joins the next interval
            assert moving or previous_moving
        else:
            kept += 1
        if rr.size:  # an empty notification carries a missed beat over to the next
            previous_moving = moving
    assert changed > 0 and kept > changed
    assert total_out <= total_in and total_in - total_out < 3000.0  # only a carry is pending


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"SleeperParams\.capture_bpm"):
        SleeperParams(capture_bpm=-1.0)
    with pytest.raises(ValueError, match="pacer_bpm"):
        SimulatedSleeper(PERSON, SleeperParams(), seed=1).hear(1.0)


def test_closed_loop_leads_the_sleeper_into_slow_breathing() -> None:
    """The device's controller, real DSP, simulated strap: 25 simulated minutes."""
    sleeper = SimulatedSleeper(PERSON, dataclasses.replace(QUIET, capture_bpm=4.0), seed=11)
    strap = SimulatedStrap(sleeper.person)
    pipe = StreamingPipeline(window_s=60.0, update_s=5.0)
    ctl = TherapyController(PolicySettings("wind_down", "ocean", -20.0, 6.0, 0.0))
    ctl.start(0.0, 1.7e9)
    start_stress = sleeper.stress
    slow = 0
    for k in range(1, 301):
        t = 5.0 * k
        sleeper.advance(t)
        for arrival, rr, beats in strap.notifications_until(t):
            if rr.size:
                pipe.feed_rr(RrBlock(arrival, rr, beats))
        m = pipe.metrics(t, 1.7e9 + t, "ble")
        d = ctl.step(m, StressEstimate(0.5, "neutral"), t, 1.7e9 + t)
        sleeper.hear(d.targets.breath_rate_bpm if d.targets.playing else None)
        slow += sleeper.breath_rate_bpm < 8.0
    assert slow * 5.0 >= 300.0, "at least 5 of 25 minutes below 8 breaths/min"
    assert sleeper.stress < start_stress - 0.2
