"""Stress response: gradual, hysteretic, rate-limited, and holding on a poor signal."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.therapy.stress_response import (
    SoundBase,
    StressResponseConfig,
    StressResponseState,
    StressResponseUpdate,
    stress_response_step,
    user_soundscape,
)

BASE = SoundBase("ocean", brightness=0.45, intensity=0.5, tempo_bpm=56.0, tempo_min_bpm=40.0,
                 brightness_min=0.1, brightness_max=0.8)
CFG = StressResponseConfig(switch_interval_s=600.0, masking_soundscape="brown_noise")
DT = 5.0


def _feed(
    ps: list[float | None],
    *,
    quality: float | None = 1.0,
    state: StressResponseState | None = None,
    t0: float = 0.0,
    cfg: StressResponseConfig = CFG,
) -> tuple[StressResponseState, list[StressResponseUpdate]]:
    st = state or StressResponseState()
    out = []
    for k, p in enumerate(ps):
        u = stress_response_step(
            st, now_s=t0 + k * DT, p_stress=p, quality=quality, base=BASE, cfg=cfg
        )
        st = u.state
        out.append(u)
    return st, out


def test_rising_stress_darkens_slows_and_masks() -> None:
    calm, _ = _feed([0.1] * 60)
    tense, _ = _feed([0.9] * 60)
    assert calm.brightness is not None and tense.brightness is not None
    assert tense.brightness < calm.brightness
    assert tense.intensity is not None and calm.intensity is not None
    assert tense.intensity > calm.intensity
    assert tense.tempo_bpm is not None and calm.tempo_bpm is not None
    assert tense.tempo_bpm < calm.tempo_bpm
    assert tense.brightness >= BASE.brightness_min


def test_changes_are_gradual_with_the_time_constant() -> None:
    st, _ = _feed([0.2] * 12)
    st, _ = _feed([0.8], state=st, t0=60.0)
    assert st.level is not None and st.level < 0.2 + 0.6 * 0.25  # one update moves little
    n = round(CFG.tau_s / DT)
    st, _ = _feed([0.8] * n, state=st, t0=65.0)
    expected = 0.2 + 0.6 * (1.0 - math.exp(-(n + 1) * DT / CFG.tau_s))
    assert st.level == pytest.approx(expected, abs=0.01)


def test_targets_move_in_whole_steps_with_reasons() -> None:
    st, _ = _feed([0.2] * 24)
    st, ups = _feed([0.9] * 48, state=st, t0=120.0)
    moved = [u for u in ups if "brightness" in u.causes]
    assert moved
    for u in moved:
        assert u.causes["brightness"].startswith("p_stress ")
    values = [st.brightness for st in [u.state for u in moved]]
    diffs = np.diff([v for v in values if v is not None])
    assert np.all(np.abs(np.abs(diffs) / CFG.step - np.round(np.abs(diffs) / CFG.step)) < 1e-6)


def test_stressed_state_has_hysteresis() -> None:
    st, _ = _feed([0.8] * 40)
    assert st.stressed
    st, _ = _feed([0.55] * 60, state=st, t0=200.0)
    assert st.stressed, "0.55 is between the thresholds: stays stressed"
    st, _ = _feed([0.3] * 60, state=st, t0=500.0)
    assert not st.stressed
    st, _ = _feed([0.55] * 60, state=st, t0=800.0)
    assert not st.stressed, "0.55 is between the thresholds: stays calm"


def test_lasting_stress_switches_to_masking_with_a_reason() -> None:
    st, ups = _feed([0.9] * 40)
    switch = [u for u in ups if "soundscape" in u.causes]
    assert len(switch) == 1
    assert st.soundscape == "brown_noise"
    assert "stressed for" in switch[0].causes["soundscape"]
    st, ups = _feed([0.1] * 200, state=st, t0=200.0)
    back = [u for u in ups if "soundscape" in u.causes]
    assert len(back) == 1 and st.soundscape == "ocean"
    assert back[0].state.t_s is not None and back[0].state.t_s >= 0.0 + CFG.switch_interval_s


def _switch_times(ups: list[StressResponseUpdate]) -> list[float]:
    return [u.state.t_s for u in ups if "soundscape" in u.causes and u.state.t_s is not None]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_stress_noise_switches_at_most_once_per_interval(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ps = list(np.clip(0.6 + 0.35 * rng.standard_normal(int(4 * 3600 / DT)), 0.0, 1.0))
    _, ups = _feed(ps)
    times = _switch_times(ups)
    assert times, "noise this large does cross the thresholds"
    assert np.all(np.diff(times) >= CFG.switch_interval_s)


def test_adversarial_stress_blocks_cannot_force_faster_switching() -> None:
    ps: list[float | None] = []
    for block in range(40):  # 2-min blocks alternating very calm and very stressed
        ps += [0.95 if block % 2 else 0.05] * int(120 / DT)
    _, ups = _feed(ps)
    times = _switch_times(ups)
    assert len(times) >= 2
    assert np.all(np.diff(times) >= CFG.switch_interval_s)


def test_stationary_noise_does_not_make_targets_flap() -> None:
    rng = np.random.default_rng(7)
    ps = list(np.clip(0.4 + 0.1 * rng.standard_normal(int(3600 / DT)), 0.0, 1.0))
    _, ups = _feed(ps)
    changes = sum(1 for u in ups if "brightness" in u.causes)
    assert changes <= 4, f"brightness changed {changes} times in an hour of noise"


def test_low_quality_holds_state_and_says_so_once() -> None:
    st, _ = _feed([0.2] * 24)
    held, ups = _feed([0.95] * 60, quality=0.3, state=st, t0=120.0)
    assert held.brightness == st.brightness and held.level == st.level
    assert held.soundscape == st.soundscape
    notes = [n.message for u in ups for n in u.notes]
    assert len(notes) == 1 and "signal quality 0.30 < 0.50" in notes[0]
    assert all(not u.causes for u in ups)
    _, ups = _feed([0.95], state=held, t0=420.0)
    assert any("resumes" in n.message for n in ups[0].notes)


def test_no_estimate_holds_with_its_reason() -> None:
    u = stress_response_step(
        StressResponseState(), now_s=0.0, p_stress=None, quality=1.0, base=BASE, cfg=CFG,
        why_unknown="no stress model installed",
    )
    assert u.state.holding and u.state.brightness == pytest.approx(BASE.brightness)
    assert "no stress model installed" in u.notes[0].message


def test_the_users_choice_starts_the_interval() -> None:
    st, _ = _feed([0.1] * 4)
    st = user_soundscape(st, "rain", 20.0)
    assert st.soundscape == "rain" and st.last_switch_s == 20.0
    st, _ = _feed([0.95] * int(300 / DT), state=st, t0=25.0)
    assert st.soundscape == "rain", "no switch within the interval after the user's choice"


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(InputDataError, match="p_stress"):
        stress_response_step(
            StressResponseState(), now_s=0.0, p_stress=1.5, quality=1.0, base=BASE, cfg=CFG
        )
    with pytest.raises(InputDataError, match=r"therapy\.stress_leave"):
        StressResponseConfig(enter_stressed=0.5, leave_stressed=0.6)
