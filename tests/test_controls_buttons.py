"""Buttons over gpiozero's MockFactory: gestures, hold-to-repeat timing, commands sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from controls_fakes import PRESETS, FakeHost
from heartsong.controls.buttons import ButtonSpec, HoldTracker
from heartsong.controls.controller import SHUTDOWN, Controls, gesture_command, make_controls
from heartsong.controls.settings import ControlsConfig
from heartsong.mqtt.commands import (
    SessionControl,
    SetPlaying,
    SetSleepTimer,
    SetSoundscape,
    SetVolume,
)
from heartsong.therapy.policy import PolicySettings

CFG = ControlsConfig(bounce_ms=0.0)  # no bounce window: mock edges are instantaneous


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def controls(host: FakeHost, factory: MockFactory) -> Iterator[Controls]:
    c = host.controls(CFG, factory)
    yield c
    c.close()


def press(factory: MockFactory, pin: int | None) -> None:
    assert pin is not None
    factory.pin(pin).drive_low()


def release(factory: MockFactory, pin: int | None) -> None:
    assert pin is not None
    factory.pin(pin).drive_high()


# -- the gesture state machine ---------------------------------------------------------


def test_repeat_starts_after_the_delay_and_keeps_the_interval() -> None:
    tr = HoldTracker(ButtonSpec(5, repeat=True, repeat_delay_s=0.5, repeat_interval_s=0.2))
    assert tr.press(10.0) == ["press"]
    assert tr.poll(10.49) == []
    assert tr.poll(10.5) == ["repeat"]
    assert tr.poll(10.69) == []
    assert tr.poll(10.7) == ["repeat"]
    # a late poll catches up every repeat that fell due: 10.9, 11.1, 11.3
    assert tr.poll(11.35) == ["repeat"] * 3
    assert tr.release(11.4) == []
    assert tr.poll(20.0) == []


def test_repeats_over_a_hold_match_the_hold_time() -> None:
    spec = ButtonSpec(5, repeat=True, repeat_delay_s=0.5, repeat_interval_s=0.2)
    for hold_s in (0.1, 0.5, 1.0, 2.35):
        tr = HoldTracker(spec)
        out = tr.press(0.0)
        t = 0.0
        while t < hold_s:
            t = min(t + 0.013, hold_s)
            out += tr.poll(t)
        out += tr.release(hold_s)
        expected = 0 if hold_s < 0.5 else 1 + int((hold_s - 0.5) / 0.2 + 1e-9)
        assert out.count("repeat") == expected, hold_s
        assert out.count("press") == 1


def test_action_button_press_long_and_very_long() -> None:
    spec = ButtonSpec(5, long_s=1.5, very_long_s=6.0)
    tr = HoldTracker(spec)
    assert tr.press(0.0) == []
    assert tr.release(1.49) == ["press"]
    tr.press(2.0)
    assert tr.poll(3.6) == []  # a long press completes on release, not while held
    assert tr.release(3.6) == ["long"]
    tr.press(10.0)
    assert tr.poll(15.99) == []
    assert tr.poll(16.0) == ["very_long"]
    assert tr.poll(17.0) == []
    assert tr.release(18.0) == []  # the release after a very long press does nothing else


def test_second_press_without_release_is_ignored() -> None:
    tr = HoldTracker(ButtonSpec(5))
    tr.press(0.0)
    assert tr.press(0.1) == []
    assert tr.release(0.2) == ["press"]
    assert tr.release(0.3) == []


# -- over the mock pins ----------------------------------------------------------------


def test_volume_button_steps_then_repeats_while_held(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    press(factory, CFG.volume_up_pin)
    assert controls.tick() == [SetVolume(-16.0)]
    host.t = 0.49
    assert controls.tick() == []
    host.t = 0.5
    assert controls.tick() == [SetVolume(-14.0)]
    host.t = 0.9  # repeats due at 0.7 and 0.9
    assert controls.tick() == [SetVolume(-12.0), SetVolume(-10.0)]
    release(factory, CFG.volume_up_pin)
    host.t = 5.0
    assert controls.tick() == []
    assert host.settings.volume_db == -10.0


def test_volume_stops_at_the_ceiling_and_the_floor(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    press(factory, CFG.volume_up_pin)
    for k in range(40):
        host.t = 0.1 * k
        controls.tick()
    release(factory, CFG.volume_up_pin)
    assert host.settings.volume_db == -6.0
    assert all(isinstance(c, SetVolume) and c.volume_db <= -6.0 for c in host.commands)
    n = len(host.commands)
    host.t = 10.0
    press(factory, CFG.volume_down_pin)
    controls.tick()
    release(factory, CFG.volume_down_pin)
    controls.tick()
    assert host.settings.volume_db == -8.0
    assert len(host.commands) == n + 1


def test_play_button_toggles_then_long_press_starts_a_session(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    press(factory, CFG.play_pin)
    host.t = 0.2
    release(factory, CFG.play_pin)
    assert controls.tick() == [SetPlaying(False)]
    assert host.settings.playing is False
    host.t = 1.0
    press(factory, CFG.play_pin)
    host.t = 3.0
    assert controls.tick() == []
    release(factory, CFG.play_pin)
    assert controls.tick() == [SessionControl("start")]
    assert host.settings.playing is True
    assert host.shutdowns == 0


def test_very_long_press_asks_for_shutdown_once(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    press(factory, CFG.play_pin)
    host.t = CFG.shutdown_press_s - 0.01
    controls.tick()
    assert host.shutdowns == 0
    host.t = CFG.shutdown_press_s
    assert controls.tick() == []
    assert host.shutdowns == 1
    host.t += 2.0
    release(factory, CFG.play_pin)
    controls.tick()
    assert host.shutdowns == 1
    assert host.commands == []  # neither a toggle nor a session on that release


def test_next_button_walks_presets_and_long_press_steps_the_timer(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    seen = []
    for k in range(len(PRESETS)):
        host.t = float(k)
        press(factory, CFG.next_pin)
        release(factory, CFG.next_pin)
        controls.tick()
        seen.append(host.settings.soundscape)
    assert seen == ["rain", "forest", "ocean"]
    timers = []
    for k in range(4):
        host.t = 10.0 + 3 * k
        press(factory, CFG.next_pin)
        host.t += 2.0
        release(factory, CFG.next_pin)
        (cmd,) = controls.tick()
        assert isinstance(cmd, SetSleepTimer)
        timers.append(cmd.minutes)
    assert timers == [15.0, 30.0, 60.0, 0.0]


def test_gesture_command_without_pins() -> None:
    s = PolicySettings("calm", "unknown_preset", -20.0, 6.0, 0.0)
    kw = dict(presets=PRESETS, volume_step_db=3.0, volume_min_db=-21.0, volume_max_db=-6.0,
              timer_remaining_min=14.0)
    assert gesture_command("next", "press", s, **kw) == SetSoundscape("ocean")  # type: ignore[arg-type]
    assert gesture_command("volume_down", "repeat", s, **kw) == SetVolume(-21.0)  # type: ignore[arg-type]
    assert gesture_command("next", "long", s, **kw) == SetSleepTimer(15.0)  # type: ignore[arg-type]
    assert gesture_command("play", "very_long", s, **kw) == SHUTDOWN  # type: ignore[arg-type]
    assert gesture_command("volume_up", "long", s, **kw) is None  # type: ignore[arg-type]


def test_pins_are_released_on_close(host: FakeHost, factory: MockFactory) -> None:
    c = host.controls(CFG, factory)
    c.close()
    c.close()  # safe twice
    again = host.controls(CFG, factory)  # the same pins can be opened again
    again.close()


def test_make_controls_runs_without_gpio(host: FakeHost, factory: MockFactory) -> None:
    assert make_controls(ControlsConfig(enabled=False)) is None

    class NoGpio(MockFactory):  # a board whose pins cannot be opened
        def pin(self, spec: object) -> MockPWMPin:
            raise OSError("no /dev/gpiochip0")

    made = make_controls(
        CFG, presets=PRESETS, volume_min_db=-60.0, volume_max_db=-6.0,
        settings=lambda: host.settings, send=host.send, timer_remaining_min=lambda: 0.0,
        breath_phase=lambda: 0.0, on_shutdown=host.shutdown, now=lambda: host.t,
        wall=lambda: host.wall_s, pin_factory=NoGpio(pin_class=MockPWMPin),
    )
    assert made is None


def test_leds_without_pwm_cost_only_the_leds(
    host: FakeHost, caplog: pytest.LogCaptureFixture
) -> None:
    """A pin backend without PWM (gpiozero's native one, when lgpio is missing) used to
    take the buttons down with the LEDs."""
    plain = MockFactory()  # MockPin: no PWM
    try:
        c = host.controls(CFG, plain)
        try:
            assert c.buttons is not None
            assert c.status_led is None and c.stress_led is None
            assert "status LED unavailable" in caplog.text
            press(plain, CFG.next_pin)
            release(plain, CFG.next_pin)
            c.tick()
            assert host.settings.soundscape == "rain"  # the button still works
        finally:
            c.close()
    finally:
        plain.reset()
