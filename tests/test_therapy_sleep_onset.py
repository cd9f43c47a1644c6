"""Sleep-onset detection from heart signals: each sign, the pacer veto, waking up."""

from __future__ import annotations

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.events import Metrics
from heartsong.therapy.sleep_onset import (
    SleepConfig,
    SleepObservation,
    SleepState,
    observe,
    sleep_step,
)

CFG = SleepConfig()
DT = 5.0
ONSET_S = 1200.0


def _night(
    seed: int,
    *,
    hr_drop: float = 5.0,
    rmssd_gain: float = 1.5,
    asleep_resp: float | None = 12.0,
    awake_resp: float = 14.0,
    move_every_s: float = 120.0,
    end_s: float = 2400.0,
) -> list[SleepObservation]:
    """Awake until ONSET_S (moving, irregular breathing), then asleep (still, regular)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(1, int(end_s / DT) + 1):
        t = k * DT
        asleep = t >= ONSET_S
        ramp = min(1.0, max(0.0, (t - ONSET_S) / 180.0))
        hr = 70.0 - hr_drop * ramp + 0.3 * rng.standard_normal()
        rmssd = 30.0 * (1.0 + (rmssd_gain - 1.0) * ramp) + 0.5 * rng.standard_normal()
        if asleep and asleep_resp is not None:
            resp = asleep_resp + 0.1 * rng.standard_normal()
        else:
            resp = awake_resp + 1.2 * rng.standard_normal()
        moving = not asleep and (t % move_every_s) < DT
        out.append(SleepObservation(t, hr, rmssd, resp, moving))
    return out


def _detect(obs: list[SleepObservation], pacer: float | None = None) -> float | None:
    st = SleepState()
    for o in obs:
        u = sleep_step(st, o, pacer, CFG)
        st = u.state
        if u.onset is not None:
            return o.t_s
    return None


@pytest.mark.parametrize("seed", range(5))
def test_detects_sleep_onset_within_five_minutes_and_not_before(seed: int) -> None:
    t = _detect(_night(seed))
    assert t is not None
    assert ONSET_S <= t <= ONSET_S + 300.0


def test_the_reason_names_the_evidence() -> None:
    st = SleepState()
    reason = None
    for o in _night(0):
        u = sleep_step(st, o, None, CFG)
        st = u.state
        reason = reason or u.onset
    assert reason is not None
    assert "still for" in reason and "HR 70 ->" in reason and "RMSSD" in reason
    assert "breathing 12.0 /min, regular" in reason


def test_movement_prevents_detection() -> None:
    obs = [
        SleepObservation(o.t_s, o.hr_bpm, o.rmssd_ms, o.resp_bpm, o.moving or o.t_s % 60 < DT)
        for o in _night(1)
    ]
    assert _detect(obs) is None


def test_without_a_pacer_all_three_signs_are_needed() -> None:
    # Breathing stays as irregular as awake: only HR and RMSSD change.
    assert _detect(_night(2, asleep_resp=None)) is None
    assert _detect(_night(2, hr_drop=0.0)) is None
    assert _detect(_night(2, rmssd_gain=1.0)) is None


def test_following_the_pacer_means_awake() -> None:
    """Still, HR falling, RMSSD rising, but breathing with the pacer: no sleep."""
    obs = _night(3, asleep_resp=12.0)
    assert _detect(obs, pacer=12.0) is None


def test_letting_go_of_a_followed_pacer_is_evidence() -> None:
    """Breathing 14/min at bedtime, then with the pacer at 6/min; asleep, it leaves the
    pacer for a slower-than-bedtime 12/min. HR and the breathing suffice then, without
    any RMSSD rise."""
    obs = _night(4, awake_resp=14.0, rmssd_gain=1.0, asleep_resp=12.0)

    def paced(o: SleepObservation) -> float | None:
        return 6.0 + 0.1 * np.sin(o.t_s) if 120.0 <= o.t_s < ONSET_S else o.resp_bpm

    obs = [SleepObservation(o.t_s, o.hr_bpm, o.rmssd_ms, paced(o), o.moving) for o in obs]
    t = _detect(obs, pacer=6.0)
    assert t is not None and ONSET_S <= t <= ONSET_S + 300.0


def test_an_unfollowed_pacer_gives_no_evidence() -> None:
    # Never followed (breathing 14 against a 6/min pacer): the unpaced rule applies.
    assert _detect(_night(5, rmssd_gain=1.0), pacer=6.0) is None


def test_two_movements_wake_the_sleeper() -> None:
    st = SleepState()
    obs = _night(6, end_s=2000.0)
    for o in obs:
        st = sleep_step(st, o, None, CFG).state
    assert st.asleep
    t = obs[-1].t_s
    woke = None
    for k, moving in enumerate([True, False] * 8 + [False] * 40):
        o = SleepObservation(t + (k + 1) * DT, 66.0, 40.0, 12.0, moving)
        u = sleep_step(st, o, None, CFG)
        st = u.state
        woke = woke or u.woke
    assert woke is None, "one movement spoiling a few windows is one episode"
    t += 400.0
    for k in range(20):  # moving at 0 s and again at 90 s: two episodes within 3 min
        o = SleepObservation(t + k * DT, 66.0, 40.0, 12.0, k in (0, 18))
        u = sleep_step(st, o, None, CFG)
        st = u.state
        woke = woke or u.woke
    assert woke is not None and "moved 2 times" in woke
    assert not st.asleep


def test_a_heart_rate_rise_wakes_the_sleeper() -> None:
    st = SleepState()
    obs = _night(7, end_s=2000.0)
    for o in obs:
        st = sleep_step(st, o, None, CFG).state
    assert st.asleep
    woke = None
    for k in range(30):
        o = SleepObservation(2000.0 + (k + 1) * DT, 75.0, 30.0, 12.0, False)
        u = sleep_step(st, o, None, CFG)
        st = u.state
        woke = woke or u.woke
    assert woke is not None and "HR" in woke


def test_observe_counts_a_poor_window_as_movement() -> None:
    good = Metrics(t_s=1.0, wall_s=0.0, hr_bpm=60.0, signal_quality=1.0)
    poor = Metrics(t_s=1.0, wall_s=0.0, hr_bpm=60.0, signal_quality=CFG.still_quality - 0.01)
    none = Metrics(t_s=1.0, wall_s=0.0)
    assert not observe(good, CFG).moving
    assert observe(poor, CFG).moving and observe(none, CFG).moving


def test_history_stays_bounded() -> None:
    st = SleepState()
    for o in _night(8, end_s=7200.0):
        st = sleep_step(st, o, None, CFG).state
    assert len(st.history) <= (CFG.reference_s + CFG.recent_s) / DT + 1


def test_bad_thresholds_name_the_field() -> None:
    with pytest.raises(InputDataError, match=r"sleep\.min_signs"):
        SleepConfig(min_signs=4)
