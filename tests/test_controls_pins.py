"""Pin checks: BCM range, reserved I2C/I2S/ID pins, no pin twice; the section's rules."""

from __future__ import annotations

import dataclasses

import pytest

from heartsong.controls.pins import RESERVED_PINS, pin_problem, validate_pins
from heartsong.controls.settings import ControlsConfig, controls_problem
from heartsong.errors import ConfigError


def test_defaults_are_valid() -> None:
    assert controls_problem(ControlsConfig()) is None
    assert controls_problem(ControlsConfig(), sensor_int_pin=4) is None


@pytest.mark.parametrize("pin", sorted(RESERVED_PINS))
def test_reserved_pins_are_refused(pin: int) -> None:
    problem = pin_problem({"controls.play_pin": pin})
    assert problem is not None
    key, value, expected = problem
    assert (key, value) == ("controls.play_pin", pin)
    assert RESERVED_PINS[pin] in expected


@pytest.mark.parametrize("pin", [-1, 28, 40, True, 2.0])
def test_out_of_range_or_wrong_type(pin: object) -> None:
    problem = pin_problem({"controls.next_pin": pin})  # type: ignore[dict-item]
    assert problem is not None and "BCM GPIO number from 0 to 27" in problem[2]


def test_a_pin_used_twice_names_both_keys() -> None:
    cfg = ControlsConfig(volume_down_pin=4)
    problem = controls_problem(cfg, sensor_int_pin=4)
    assert problem == ("controls.volume_down_pin", 4,
                       "must differ from sensor.int_pin = 4 (a pin can do one job)")
    with pytest.raises(ConfigError) as err:
        validate_pins({"a.pin": 5, "b.pin": None, "c.pin": 5}, "/etc/heartsong/config.toml")
    assert err.value.key == "c.pin" and "a.pin" in err.value.expected
    assert err.value.one_line().startswith("/etc/heartsong/config.toml: c.pin = 5")


def test_unset_pins_are_skipped() -> None:
    fields = ("play_pin", "next_pin", "volume_up_pin", "volume_down_pin", "status_led_pin")
    cfg = dataclasses.replace(ControlsConfig(), **dict.fromkeys(fields))
    assert controls_problem(cfg) is None


def test_rgb_needs_all_three_legs() -> None:
    problem = controls_problem(ControlsConfig(rgb_red_pin=5, rgb_green_pin=6))
    assert problem is not None and problem[0] == "controls.rgb_blue_pin"
    assert controls_problem(ControlsConfig(rgb_red_pin=5, rgb_green_pin=6, rgb_blue_pin=13)) is None


def test_timing_and_brightness_rules() -> None:
    p = controls_problem(ControlsConfig(long_press_s=3.0, shutdown_press_s=3.0))
    assert p is not None and p[0] == "controls.shutdown_press_s"
    p = controls_problem(ControlsConfig(led_brightness=0.1, night_brightness=0.2))
    assert p is not None and p[0] == "controls.night_brightness"
    # a disabled section is not checked (its pins are not opened)
    assert controls_problem(ControlsConfig(enabled=False, play_pin=2)) is None
