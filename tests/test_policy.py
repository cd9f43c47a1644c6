"""The policy: settings and closed-loop guidance -> sound targets, a reason for every change."""

from __future__ import annotations

import datetime as dt

import pytest

from heartsong.therapy.policy import (
    SLEEP_ATTENUATION_DB,
    Guidance,
    PolicyInput,
    PolicySettings,
    calm_base,
    decide,
    night_factor,
)


def _settings(**kw: object) -> PolicySettings:
    base: dict[str, object] = dict(
        mode="wind_down", soundscape="ocean", volume_db=-18.0, breath_rate_bpm=6.0,
        sleep_timer_s=0.0,
    )
    base.update(kw)
    return PolicySettings(**base)  # type: ignore[arg-type]


def test_session_start_explains_itself() -> None:
    d = decide(PolicyInput(_settings(), 0.0), None)
    assert d.targets.soundscape == "ocean" and d.targets.playing
    assert d.targets.breath_rate_bpm == 6.0
    assert len(d.reasons) == 1 and "wind_down" in d.reasons[0] and "6.0/min" in d.reasons[0]


def test_sleep_mode_is_quieter_and_unpaced() -> None:
    d = decide(PolicyInput(_settings(mode="sleep"), 0.0), None)
    assert d.targets.breath_rate_bpm is None
    assert d.targets.volume_db == -18.0 - SLEEP_ATTENUATION_DB


def test_no_change_gives_no_reason() -> None:
    first = decide(PolicyInput(_settings(), 0.0), None)
    again = decide(PolicyInput(_settings(), 60.0), first.targets)
    assert again.targets == first.targets and again.reasons == ()


def test_sleep_timer_fades_out_once_with_reason() -> None:
    s = _settings(sleep_timer_s=1200.0)
    before = decide(PolicyInput(s, 1199.0), decide(PolicyInput(s, 0.0), None).targets)
    assert before.targets.playing and before.reasons == ()
    after = decide(PolicyInput(s, 1200.0), before.targets)
    assert not after.targets.playing
    assert any("sleep timer" in r for r in after.reasons)
    later = decide(PolicyInput(s, 1300.0), after.targets)
    assert later.reasons == ()


def test_user_changes_are_explained() -> None:
    first = decide(PolicyInput(_settings(), 0.0), None).targets
    d = decide(PolicyInput(_settings(soundscape="brown_noise", volume_db=-24.0), 5.0), first)
    text = " ".join(d.reasons)
    assert "ocean -> brown_noise" in text and "-18 -> -24 dB" in text


def test_sound_back_on_is_a_change_with_its_cause() -> None:
    """It was the bare reason "sound resumed", with no structured record and no why."""
    first = decide(PolicyInput(_settings(playing=False), 0.0), None).targets
    d = decide(PolicyInput(_settings(), 5.0), first)
    (a,) = [a for a in d.adaptations if a.what == "playing"]
    assert (a.before, a.after) == (False, True) and d.reasons[0] == "sound on: user setting"


# -- closed-loop guidance ------------------------------------------------------------------


def test_a_tempo_that_starts_is_logged_too() -> None:
    """A change from no tempo (a preset without a pulse) to one was not logged at all."""
    s = _settings()
    first = decide(PolicyInput(s, 0.0, guidance=Guidance("wind_down", None)), None)
    d = decide(PolicyInput(s, 5.0, guidance=Guidance("wind_down", None, tempo_bpm=54.0)),
               first.targets, previous_tempo_bpm=None)
    (a,) = [a for a in d.adaptations if a.what == "tempo_bpm"]
    assert (a.before, a.after) == (None, 54.0) and a.because == "soundscape with a pulse"


def _local(hour: int, minute: int = 0) -> float:
    return dt.datetime(2024, 3, 4, hour, minute).astimezone().timestamp()


def test_guidance_sets_targets_and_each_change_has_its_cause() -> None:
    s = _settings()
    first = decide(PolicyInput(s, 0.0, guidance=Guidance("wind_down", None)), None)
    g = Guidance(
        "wind_down", 7.5, soundscape="brown_noise", brightness=0.3, intensity=0.65,
        tempo_bpm=50.0,
        causes={
            "breath_rate_bpm": "pacer on near the measured breathing (8.1 /min)",
            "soundscape": "stressed for 2 min (p_stress 0.72)",
            "brightness": "p_stress 0.40 -> 0.70",
            "intensity": "p_stress 0.40 -> 0.70",
        },
    )
    d = decide(PolicyInput(s, 60.0, guidance=g), first.targets, previous_tempo_bpm=56.0)
    t = d.targets
    assert (t.breath_rate_bpm, t.soundscape, t.brightness, t.intensity) == (
        7.5, "brown_noise", 0.3, 0.65
    )
    assert d.tempo_bpm == 50.0 and d.mode == "wind_down"
    text = list(d.reasons)
    assert "breath rate off -> 7.5 /min: pacer on near the measured breathing (8.1 /min)" in text
    assert "soundscape ocean -> brown_noise: stressed for 2 min (p_stress 0.72)" in text
    assert "brightness 50% -> 30%: p_stress 0.40 -> 0.70" in text
    assert "masking 50% -> 65%: p_stress 0.40 -> 0.70" in text
    assert any(r.startswith("pulse 56 -> 50 beats/min") for r in text)
    assert len(d.adaptations) == len(d.reasons) == 5
    again = decide(PolicyInput(s, 65.0, guidance=g), t, previous_tempo_bpm=50.0)
    assert again.reasons == ()


def test_guided_sleep_mode_is_quieter_by_the_fade_and_can_stop() -> None:
    s = _settings()
    awake = decide(PolicyInput(s, 0.0, guidance=Guidance("wind_down", 6.0)), None).targets
    g = Guidance("sleep", None, volume_offset_db=-4.0, causes={"volume_db": "sleep fade 40%"})
    d = decide(PolicyInput(s, 600.0, guidance=g), awake)
    assert d.targets.volume_db == -18.0 - SLEEP_ATTENUATION_DB - 4.0
    assert "volume -18 -> -30 dB: sleep fade 40%" in d.reasons
    off = Guidance("sleep", None, playing=False, causes={"playing": "faded to silence"})
    d2 = decide(PolicyInput(s, 900.0, guidance=off), d.targets)
    assert not d2.targets.playing and "sound off: faded to silence" in d2.reasons


def test_user_pause_wins_over_guidance() -> None:
    first = decide(PolicyInput(_settings(), 0.0, guidance=Guidance("calm", 6.0)), None)
    d = decide(PolicyInput(_settings(playing=False), 5.0, guidance=Guidance("calm", 6.0)),
               first.targets)
    assert not d.targets.playing and "sound paused by the user" in d.reasons


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [(12, 0, 0.0), (19, 0, 0.0), (21, 0, 0.5), (23, 30, 1.0), (3, 0, 1.0), (6, 0, 0.5)],
)
def test_night_factor(hour: int, minute: int, expected: float) -> None:
    assert night_factor(_local(hour, minute)) == pytest.approx(expected)


def test_calm_base_is_darker_at_night_and_later_in_wind_down() -> None:
    noon = calm_base("ocean", "ocean", "calm", _local(12), 0.0)
    night = calm_base("ocean", "ocean", "calm", _local(23, 30), 0.0)
    later = calm_base("ocean", "ocean", "wind_down", _local(23, 30), 1800.0)
    assert noon.brightness > night.brightness > later.brightness >= noon.brightness_min
    assert noon.tempo_bpm is None  # ocean has no pulse
    drone = calm_base("warm_drone", "warm_drone", "calm", None, 0.0)
    assert drone.tempo_bpm is not None and drone.tempo_min_bpm is not None
    assert drone.tempo_min_bpm < drone.tempo_bpm
