"""Status and stress LEDs over MockPWMPin: pacer breathing, problem patterns, night dimming."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from controls_fakes import FakeHost
from heartsong.controls.controller import Controls
from heartsong.controls.leds import (
    INHALE_FRACTION,
    LedStatus,
    breath_level,
    choose_pattern,
    is_night,
    pattern_level,
)
from heartsong.controls.settings import ControlsConfig

RGB = {"rgb_red_pin": 5, "rgb_green_pin": 6, "rgb_blue_pin": 13}
CFG = ControlsConfig(bounce_ms=0.0, night_start="22:00", night_end="07:00", **RGB)  # type: ignore[arg-type]
BREATHING = LedStatus(playing=True, pacing=True)


def local_wall(hour: int, minute: int = 0) -> float:
    return dt.datetime(2024, 3, 5, hour, minute).timestamp()


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def host() -> FakeHost:
    return FakeHost(wall_s=local_wall(12))


@pytest.fixture
def controls(host: FakeHost, factory: MockFactory) -> Iterator[Controls]:
    c = host.controls(CFG, factory)
    yield c
    c.close()


def led_duty(factory: MockFactory, pin: int | None) -> float:
    assert pin is not None
    return float(factory.pin(pin).state)


def test_breath_level_shape() -> None:
    phases = np.linspace(0.0, 1.0, 401)[:-1]
    levels = np.array([breath_level(p) for p in phases])
    inhale = levels[phases < INHALE_FRACTION]
    exhale = levels[phases >= INHALE_FRACTION]
    assert np.all(np.diff(inhale) > 0) and np.all(np.diff(exhale) < 0)
    assert levels[0] == pytest.approx(0.0, abs=1e-12)
    assert breath_level(INHALE_FRACTION) == pytest.approx(1.0)
    assert breath_level(0.9999) == pytest.approx(0.0, abs=1e-6)
    assert breath_level(1.25) == pytest.approx(breath_level(0.25))


def test_status_led_follows_the_pacer_phase(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    controls.show(BREATHING)
    phases = np.linspace(0.0, 1.0, 101)[:-1]
    duties = []
    for k, phase in enumerate(phases):
        host.t = 0.02 * k
        host.phase = float(phase)
        controls.tick()
        duties.append(led_duty(factory, CFG.status_led_pin))
    d = np.array(duties)
    peak = int(np.argmax(d))
    assert phases[peak] == pytest.approx(INHALE_FRACTION, abs=0.011)
    assert np.all(np.diff(d[: peak + 1]) > 0)  # brightens through the inhale
    assert np.all(np.diff(d[peak:]) < 0)  # dims through the exhale
    assert d.min() > 0.0  # the floor keeps the LED visible at the end of the exhale
    assert d.max() <= CFG.led_brightness + 1e-12
    # the duty is a monotonic function of the pacer's breath level
    order = np.argsort([breath_level(p) for p in phases])
    assert np.all(np.diff(d[order]) >= 0)


def test_led_is_dimmer_at_night(host: FakeHost, factory: MockFactory, controls: Controls) -> None:
    controls.show(BREATHING)
    host.phase = INHALE_FRACTION
    day = []
    night = []
    for hour, sink in ((12, day), (23, night), (3, night), (6, night), (7, day), (21, day)):
        host.wall_s = local_wall(hour, 30)
        controls.tick()
        sink.append(led_duty(factory, CFG.status_led_pin))
    assert max(night) < min(day)
    assert max(night) <= CFG.night_brightness + 1e-12


def test_is_night_windows() -> None:
    assert is_night(local_wall(22, 0), "22:00", "07:00")
    assert not is_night(local_wall(21, 59), "22:00", "07:00")
    assert is_night(local_wall(6, 59), "22:00", "07:00")
    assert not is_night(local_wall(7, 0), "22:00", "07:00")
    assert is_night(local_wall(1, 0), "00:30", "05:00")
    assert not is_night(local_wall(5, 0), "00:30", "05:00")
    assert not is_night(local_wall(5, 0), "05:00", "05:00")


@pytest.mark.parametrize(
    ("status", "pattern"),
    [
        (LedStatus(fault=True, contact=False, playing=True, pacing=True), "fault"),
        (LedStatus(contact=False, strap_connecting=True, playing=True), "no_contact"),
        (LedStatus(strap_connecting=True, playing=True, pacing=True), "strap_connecting"),
        (LedStatus(broker_online=False, playing=True, pacing=True), "breathing"),
        (LedStatus(broker_online=False, playing=True), "broker_offline"),
        (LedStatus(broker_online=True, playing=True), "playing"),
        (LedStatus(broker_online=None), "off"),
    ],
)
def test_pattern_priority(status: LedStatus, pattern: str) -> None:
    assert choose_pattern(status) == pattern


def _on_fraction_and_flashes(pattern: str, period_s: float) -> tuple[float, int]:
    t = np.arange(0.0, period_s, 0.001)
    on = np.array([pattern_level(pattern, float(x), 0.0) for x in t]) > 0.5  # type: ignore[arg-type]
    rises = int(np.sum(on[1:] & ~on[:-1])) + int(on[0])
    return float(on.mean()), rises


def test_problem_patterns_are_told_apart() -> None:
    fault = _on_fraction_and_flashes("fault", 1.0)
    contact = _on_fraction_and_flashes("no_contact", 2.0)
    strap = _on_fraction_and_flashes("strap_connecting", 2.0)
    broker = _on_fraction_and_flashes("broker_offline", 4.0)
    assert fault == (pytest.approx(0.5, abs=0.01), 4)  # 4 Hz
    assert contact[1] == 2 and contact[0] < 0.2  # a double blink every 2 s
    assert strap == (pytest.approx(0.5, abs=0.01), 2)  # 1 Hz
    assert broker[1] == 1 and broker[0] < 0.05  # one short blip every 4 s


def test_fault_blinks_on_the_pin(host: FakeHost, factory: MockFactory, controls: Controls) -> None:
    controls.show(LedStatus(fault=True))
    seen = set()
    for k in range(20):
        host.t = 0.05 * k
        controls.tick()
        seen.add(round(led_duty(factory, CFG.status_led_pin), 6))
    assert seen == {0.0, round(CFG.led_brightness**2.2, 6)}


def test_holding_play_past_a_long_press_lights_the_led(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    assert CFG.play_pin is not None
    controls.show(LedStatus())
    controls.tick()
    assert led_duty(factory, CFG.status_led_pin) == 0.0
    factory.pin(CFG.play_pin).drive_low()
    host.t = CFG.long_press_s
    controls.tick()
    assert led_duty(factory, CFG.status_led_pin) > 0.0


def test_rgb_led_shows_the_stress_state(
    host: FakeHost, factory: MockFactory, controls: Controls
) -> None:
    def rgb() -> tuple[float, float, float]:
        return (led_duty(factory, 5), led_duty(factory, 6), led_duty(factory, 13))

    controls.show(LedStatus(stress_state="stressed"))
    controls.tick()
    r, g, b = rgb()
    assert r > g > b
    controls.show(LedStatus(stress_state="calm"))
    controls.tick()
    r, g, b = rgb()
    assert g > b > r
    day_green = g
    host.wall_s = local_wall(23)
    controls.tick()
    assert 0.0 < rgb()[1] < day_green
    controls.show(LedStatus(stress_state="unknown"))
    controls.tick()
    assert rgb() == (0.0, 0.0, 0.0)
