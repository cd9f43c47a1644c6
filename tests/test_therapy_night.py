"""The night after sleep onset: a wake never brings the evening back at once, choosing
"sleep" while asleep changes nothing audible, and a pacer nobody hears is not run.

Found by an audit: two brief movements in deep sleep restored the evening volume in one
step (+18 dB, +48 dB from silence), restarted the pacer, and sleep was never detected again
(the breathing followed the new pacer, and the bedtime signs were spent); a "sleep" mode
command while asleep cancelled the fade; after the sleep timer the pacer kept stepping and
its silent rates went into the resonance model.
"""

from __future__ import annotations

import dataclasses
import itertools

from heartsong.events import Metrics
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.controller import WAKE_CEILING_DB, WAKE_RISE_DB_PER_MIN, TherapyController
from heartsong.therapy.policy import PolicySettings

WALL0 = 1_709_587_800.0
CALM = StressEstimate(0.3, "calm")
#: Wind-down at -20 dB, no sleep timer.
EVENING = PolicySettings("wind_down", "ocean", -20.0, 6.0, 0.0)


class Night:
    """A controller fed 5-s metrics updates of a person in bed."""

    def __init__(self, settings: PolicySettings) -> None:
        self.ctl = TherapyController(settings)
        self.t = 0.0
        self.decision = self.ctl.start(0.0, WALL0)
        self.volumes: list[float] = []
        self.reasons: list[str] = []

    def step(self, hr: float, rmssd: float, resp: float, quality: float = 0.99) -> None:
        self.t += 5.0
        m = Metrics(t_s=self.t, wall_s=WALL0 + self.t, hr_bpm=hr, rmssd_ms=rmssd,
                    sdnn_ms=1.3 * rmssd, resp_rate_bpm=resp, signal_quality=quality,
                    source="ble")
        self.decision = self.ctl.step(m, CALM, self.t, WALL0 + self.t)
        tg = self.decision.targets
        self.reasons += self.decision.reasons
        self.volumes.append(tg.volume_db if tg.playing else -120.0)

    def fall_asleep(self) -> None:
        while self.t < 720.0:
            self.step(70, 30, 14.0 if self.t < 600 else 13.5)
        while self.ctl.sleep_onset_s is None and self.t < 3000.0:
            self.step(62, 45, 10.0)
        assert self.ctl.mode == "sleep"
        end = self.t + 1200.0
        while self.t < end:
            self.step(62, 45, 10.0)


def test_a_night_wake_rises_slowly_stays_quiet_and_sleep_comes_back() -> None:
    night = Night(EVENING)
    night.fall_asleep()
    asleep_db = night.volumes[-1]
    start = len(night.volumes)
    for k in range(30):  # turning over twice, 2 min apart
        night.step(62, 45, 10.0, 0.3 if k in (0, 24) else 0.99)
    assert any("awake again" in r for r in night.reasons[-30:])  # logged, with why
    after = night.volumes[start:]
    assert max(after) <= -20.0 + WAKE_CEILING_DB  # never back to the evening's volume
    assert after[0] <= asleep_db + 1e-9  # no step up at the wake itself
    steps = [b - a for a, b in itertools.pairwise(after)]
    assert max(steps) <= WAKE_RISE_DB_PER_MIN + 1e-9  # small steps only (one a minute)
    assert night.decision.targets.breath_rate_bpm is None  # no pacer in the night
    for _ in range(120):  # still asleep physiologically: sleep is found again
        night.step(62, 45, 10.0)
    assert night.ctl.mode == "sleep"
    assert max(night.volumes[start:]) <= -20.0 + WAKE_CEILING_DB


def test_choosing_sleep_while_asleep_keeps_the_fade() -> None:
    night = Night(EVENING)
    night.fall_asleep()
    before = night.decision.targets
    d = night.ctl.update_settings(
        dataclasses.replace(night.ctl.settings, mode="sleep"), night.t, WALL0 + night.t)
    assert night.ctl.mode == "sleep"
    assert d.targets.volume_db <= before.volume_db and d.targets.playing == before.playing


def test_no_pacer_runs_after_the_sleep_timer_silenced_the_sound() -> None:
    night = Night(dataclasses.replace(EVENING, sleep_timer_s=600.0))  # 10-min timer
    while night.t < 3600.0:
        night.step(65, 35, max(6.0, 14.0 - night.t / 300.0))
        if night.t > 610.0:
            assert not night.decision.targets.playing
            assert night.ctl.pacer.rate_bpm is None
    assert not night.ctl.session.visits  # nothing sampled from a pacer nobody heard


def test_a_wind_down_command_while_asleep_wakes_the_evening_back() -> None:
    """The command was compared with the setting (wind_down), not with the mode in force
    (sleep), and answered "mode is already wind_down" without doing anything."""
    from heartsong.mqtt.apply import apply_command
    from heartsong.mqtt.commands import SetMode

    night = Night(EVENING)
    night.fall_asleep()
    applied = apply_command(night.ctl.settings, SetMode("wind_down"), session_elapsed_s=night.t,
                            mode_now=night.ctl.mode)
    assert applied.chose_mode and "sleep -> wind_down" in applied.reason
    d = night.ctl.update_settings(applied.settings, night.t, WALL0 + night.t,
                                  chose_mode=applied.chose_mode)
    assert night.ctl.mode == "wind_down" and d.targets.volume_db == -20.0  # the user's own
