"""The resonance-breathing pacer: starts near the breathing, steps only when followed."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.therapy.pacer import (
    PacerConfig,
    PacerState,
    PacerUpdate,
    advance_phase,
    breath_level,
    pacer_step,
)

CFG = PacerConfig()
UPDATE_S = 5.0


def _run(
    measured: float | None,
    *,
    steps: int,
    target: float = 6.0,
    state: PacerState | None = None,
    t0: float = 0.0,
) -> tuple[PacerState, list[PacerUpdate]]:
    """Step the pacer ``steps`` times with a constant measured rate."""
    st = state or PacerState()
    out = []
    for k in range(steps):
        u = pacer_step(
            st, now_s=t0 + k * UPDATE_S, active=True, measured_bpm=measured,
            target_bpm=target, cfg=CFG,
        )
        st = u.state
        out.append(u)
    return st, out


def _start_with(values: list[float], target: float = 6.0) -> PacerUpdate:
    st = PacerState()
    u = PacerUpdate(st)
    for k, v in enumerate(values):
        u = pacer_step(st, now_s=k * UPDATE_S, active=True, measured_bpm=v, target_bpm=target,
                       cfg=CFG)
        st = u.state
    return u


def test_starts_near_the_measured_breathing_on_the_step_grid() -> None:
    assert _start_with([15.2, 15.2]).state.stage == "waiting"
    u = _start_with([15.2, 6.1, 15.4])  # one misread window (a Mayer wave) among them
    assert u.state.stage == "pacing"
    assert u.state.rate_bpm == pytest.approx(14.5)  # median 15.2 - 0.5 = 14.7, to the grid
    assert u.cause is not None and "15.2" in u.cause


def test_never_starts_below_the_target() -> None:
    assert _start_with([5.0] * CFG.start_samples).state.rate_bpm == pytest.approx(6.0)


def test_waits_for_a_rate_then_falls_back() -> None:
    st, ups = _run(None, steps=int(CFG.wait_s / UPDATE_S))
    assert st.stage == "waiting" and st.rate_bpm is None
    assert all(u.cause is None for u in ups)
    st, ups = _run(None, steps=2, state=st, t0=CFG.wait_s)
    assert st.rate_bpm == pytest.approx(CFG.fallback_start_bpm)
    assert any(u.cause is not None and "no breathing rate" in u.cause for u in ups)


def test_does_not_step_while_the_breathing_stays_behind() -> None:
    st, _ = _run(12.0, steps=CFG.start_samples)  # pacer at 11.5
    start = st.rate_bpm
    st, ups = _run(12.0, steps=int(600 / UPDATE_S), state=st, t0=UPDATE_S)  # 10 min at 12.0
    assert st.rate_bpm == start
    assert all(u.cause is None for u in ups)


def test_steps_down_after_following_and_explains_it() -> None:
    st, _ = _run(12.0, steps=CFG.start_samples)
    rate = st.rate_bpm
    assert rate is not None
    st, ups = _run(rate, steps=int(2 * CFG.hold_s / UPDATE_S) + 1, state=st, t0=UPDATE_S)
    changed = [u for u in ups if u.cause is not None]
    assert changed, "a followed pacer must step down"
    first = changed[0]
    assert first.state.rate_bpm is not None and first.state.rate_bpm < rate
    assert "breathing followed for" in (first.cause or "")


def test_right_after_a_step_the_old_rate_does_not_count_as_following() -> None:
    st, _ = _run(12.0, steps=CFG.start_samples)
    old = st.rate_bpm
    assert old is not None
    st, ups = _run(old, steps=int(CFG.hold_s / UPDATE_S) + 2, state=st, t0=UPDATE_S)
    new = st.rate_bpm
    assert new is not None and new < old
    # The measured rate stays at the old pace: no further step down, however long
    # (the pacer may step back up, as a lost pacer does).
    st, ups = _run(old, steps=200, state=st, t0=1000.0)
    rates = [u.state.rate_bpm for u in ups]
    assert all(r is not None and r >= new for r in rates)


def test_large_steps_far_from_the_target_small_near_it() -> None:
    def first_step(rate: float, target: float) -> float:
        st = PacerState(stage="pacing", rate_bpm=rate, t_s=0.0)
        u = pacer_step(
            st, now_s=CFG.hold_s, active=True, measured_bpm=rate, target_bpm=target, cfg=CFG
        )
        u = pacer_step(
            u.state, now_s=2 * CFG.hold_s, active=True, measured_bpm=rate, target_bpm=target,
            cfg=CFG,
        )
        assert u.state.rate_bpm is not None
        return rate - u.state.rate_bpm

    far, near = first_step(16.0, 6.0), first_step(7.0, 6.0)
    assert far > near > 0.0
    assert near == pytest.approx(CFG.step_bpm)
    assert far <= 3 * CFG.step_bpm + 1e-9


def test_never_passes_the_target() -> None:
    st = PacerState(stage="pacing", rate_bpm=6.5, t_s=0.0)
    for k in range(1, 200):
        rate = st.rate_bpm
        st = pacer_step(
            st, now_s=k * UPDATE_S, active=True, measured_bpm=rate, target_bpm=5.8, cfg=CFG
        ).state
    assert st.rate_bpm == pytest.approx(5.8)


def test_steps_back_up_when_the_pacer_is_lost() -> None:
    st = PacerState(stage="pacing", rate_bpm=7.0, t_s=0.0)
    st, ups = _run(9.5, steps=int(CFG.lost_s / UPDATE_S) + 2, state=st, t0=UPDATE_S)
    assert st.rate_bpm == pytest.approx(7.0 + CFG.step_bpm)
    cause = next(u.cause for u in ups if u.cause is not None)
    assert "breathing stayed at 9.5 /min" in cause


def test_a_misread_slow_rate_is_not_following() -> None:
    """A window misread as 6/min (the Mayer wave) while the pacer plays 14/min."""
    st = PacerState(stage="pacing", rate_bpm=14.0, t_s=0.0)
    st, _ = _run(6.2, steps=int(3 * CFG.hold_s / UPDATE_S), state=st, t0=UPDATE_S)
    assert st.rate_bpm == 14.0 and st.followed_s == 0.0


def test_unknown_breathing_holds_everything() -> None:
    st = PacerState(stage="pacing", rate_bpm=8.0, t_s=0.0, followed_s=20.0)
    st2, ups = _run(None, steps=100, state=st, t0=UPDATE_S)
    assert st2.rate_bpm == 8.0 and st2.followed_s == 20.0 and st2.lost_s == 0.0
    assert all(u.cause is None for u in ups)


def test_a_target_above_the_pacer_is_approached_without_waiting_for_breathing() -> None:
    st = PacerState(stage="pacing", rate_bpm=4.5, t_s=0.0)
    st, _ = _run(None, steps=int(CFG.hold_s / UPDATE_S) + 2, state=st, t0=UPDATE_S, target=7.0)
    assert st.rate_bpm == pytest.approx(5.0)


def test_dwell_lengthens_the_stay_at_a_rate() -> None:
    def steps_within(dwell: float | None) -> int:
        st = PacerState(stage="pacing", rate_bpm=7.0, t_s=0.0)
        n = 0
        for k in range(1, int(300 / UPDATE_S)):
            u = pacer_step(
                st, now_s=k * UPDATE_S, active=True, measured_bpm=st.rate_bpm,
                target_bpm=4.5, cfg=CFG, dwell_s=dwell,
            )
            n += u.cause is not None
            st = u.state
        return n

    assert steps_within(None) > steps_within(120.0) >= 2


def test_inactive_turns_off_and_forgets_progress() -> None:
    st = PacerState(stage="pacing", rate_bpm=8.0, t_s=0.0, followed_s=25.0, phase=0.25)
    u = pacer_step(st, now_s=15.0, active=False, measured_bpm=8.0, target_bpm=6.0, cfg=CFG)
    assert u.state.stage == "off" and u.state.rate_bpm is None and u.state.followed_s == 0.0
    assert u.state.phase == pytest.approx(advance_phase(0.25, 8.0, 15.0))


def test_leads_a_first_order_breather_down_to_the_target() -> None:
    """Closed loop with a lagging follower: the pacer reaches the target, never far ahead."""
    breath = 15.0
    measured_lag: list[float] = []
    st = PacerState()
    max_lead = 0.0
    for k in range(int(1800 / UPDATE_S)):
        t = k * UPDATE_S
        measured = float(np.mean(measured_lag[-12:])) if measured_lag else None  # 60-s window
        st = pacer_step(
            st, now_s=t, active=True, measured_bpm=measured, target_bpm=6.0, cfg=CFG
        ).state
        if st.rate_bpm is not None:
            breath += (st.rate_bpm - breath) * (1.0 - math.exp(-UPDATE_S / 40.0))
            max_lead = max(max_lead, breath - st.rate_bpm)
        measured_lag.append(breath)
    assert st.rate_bpm == pytest.approx(6.0)
    assert max_lead <= 3 * CFG.step_bpm + 0.5


def test_a_person_who_cannot_go_lower_is_not_left_behind() -> None:
    """Breathing that will not go below 9/min: the pacer settles within reach of it."""
    st = PacerState()
    for k in range(int(3600 / UPDATE_S)):
        measured = 9.0 if st.rate_bpm is None else max(9.0, st.rate_bpm)
        st = pacer_step(
            st, now_s=k * UPDATE_S, active=True, measured_bpm=measured, target_bpm=6.0, cfg=CFG
        ).state
    assert st.rate_bpm is not None
    assert 9.0 - CFG.lost_margin_bpm - CFG.step_bpm <= st.rate_bpm <= 9.0


def test_breath_envelope_matches_the_audio_shape_with_a_longer_exhale() -> None:
    f = CFG.inhale_fraction
    assert f == pytest.approx(0.4)
    assert breath_level(0.0) == pytest.approx(0.0)
    assert breath_level(f) == pytest.approx(1.0)
    assert breath_level(0.999999) == pytest.approx(0.0, abs=1e-6)
    phases = np.linspace(0.0, 1.0, 1001)[:-1]
    levels = np.array([breath_level(p) for p in phases])
    rising = np.diff(levels) > 0
    assert rising[: int(f * 1000) - 1].all() and not rising[int(f * 1000) + 1 :].any()
    # Exhale (falling part) takes longer than the inhale.
    assert (~rising).sum() > rising.sum()


def test_phase_is_continuous_across_rate_changes() -> None:
    p = advance_phase(0.9, 6.0, 2.0)  # 0.2 cycle
    assert p == pytest.approx(0.1)
    assert advance_phase(0.3, None, 10.0) == 0.3
    st = PacerState(stage="pacing", rate_bpm=10.0, t_s=0.0, phase=0.0)
    u = pacer_step(st, now_s=3.0, active=True, measured_bpm=None, target_bpm=6.0, cfg=CFG)
    assert u.state.phase == pytest.approx(0.5)


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(InputDataError, match=r"pacer\.tolerance_bpm"):
        PacerConfig(step_bpm=0.5, tolerance_bpm=0.8)
    with pytest.raises(InputDataError, match="target_bpm"):
        pacer_step(
            PacerState(), now_s=0.0, active=True, measured_bpm=10.0, target_bpm=math.nan,
            cfg=CFG,
        )


def test_after_a_loss_the_pacer_leads_more_gently() -> None:
    def first_step(state: PacerState) -> tuple[float, float]:
        """(size of the first step down, time it took) with breathing on the pacer."""
        t = 0.0
        while True:
            t += UPDATE_S
            rate = state.rate_bpm
            assert rate is not None
            u = pacer_step(state, now_s=t, active=True, measured_bpm=rate, target_bpm=6.0,
                           cfg=CFG)
            state = u.state
            if u.cause is not None:
                assert state.rate_bpm is not None
                return rate - state.rate_bpm, t

    fresh = PacerState(stage="pacing", rate_bpm=14.0, t_s=0.0)
    lost_once = dataclasses.replace(fresh, losses=1)
    size0, time0 = first_step(fresh)
    size1, time1 = first_step(lost_once)
    assert size1 < size0 and time1 > time0
    st = PacerState(stage="pacing", rate_bpm=7.0, t_s=0.0)
    st, _ = _run(9.5, steps=int(CFG.lost_s / UPDATE_S) + 2, state=st, t0=UPDATE_S)
    assert st.losses == 1


def test_a_lost_pacer_goes_back_to_the_last_rate_followed() -> None:
    st = PacerState(stage="pacing", rate_bpm=12.0, t_s=0.0, followed_bpm=13.5)
    st, _ = _run(16.0, steps=int(CFG.lost_s / UPDATE_S) + 2, state=st, t0=UPDATE_S)
    assert st.rate_bpm == pytest.approx(13.5)
