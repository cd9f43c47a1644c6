"""The foundation policy: settings -> sound targets, with a reason for every change."""

from __future__ import annotations

from heartsong.therapy.policy import (
    SLEEP_ATTENUATION_DB,
    PolicyInput,
    PolicySettings,
    decide,
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
