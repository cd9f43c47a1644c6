"""The ``[controls]`` configuration section: button and LED pins, press timing, LED levels.

Written in the style of :mod:`heartsong.config` (a frozen dataclass whose fields carry
their check and documentation), so the configuration can include it as one more section::

    controls: ControlsConfig = field(default_factory=ControlsConfig)

and check it with :func:`controls_problem` among its cross-field rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heartsong.config_checks import Boolean, ClockTime, Integer, Number, OrUnset, setting
from heartsong.controls.pins import pin_problem

__all__ = ["ControlsConfig", "controls_problem", "pin_assignments"]

_GPIO = Integer(0, 27, "BCM GPIO number")


@dataclass(frozen=True)
class ControlsConfig:
    """Buttons and LEDs on the GPIO header (BCM numbering)."""

    enabled: bool = field(
        default=True,
        metadata=setting(
            Boolean(), "Use the GPIO buttons and LEDs (false on a board without them)."
        ),
    )
    play_pin: int | None = field(
        default=17,
        metadata=setting(
            OrUnset(_GPIO),
            "Play/pause button (to ground). Hold for controls.long_press_s: breathing "
            "session; hold for controls.shutdown_press_s: safe shutdown.",
        ),
    )
    next_pin: int | None = field(
        default=27,
        metadata=setting(
            OrUnset(_GPIO),
            "Next-soundscape button. Hold for controls.long_press_s: sleep timer "
            "15 -> 30 -> 60 min -> off.",
        ),
    )
    volume_up_pin: int | None = field(
        default=22, metadata=setting(OrUnset(_GPIO), "Volume-up button (hold to repeat).")
    )
    volume_down_pin: int | None = field(
        default=23, metadata=setting(OrUnset(_GPIO), "Volume-down button (hold to repeat).")
    )
    status_led_pin: int | None = field(
        default=12,
        metadata=setting(
            OrUnset(_GPIO), "Status LED (PWM; breathes with the pacer, blinks on problems)."
        ),
    )
    rgb_red_pin: int | None = field(
        default=None, metadata=setting(OrUnset(_GPIO), "Red leg of the optional stress LED.")
    )
    rgb_green_pin: int | None = field(
        default=None, metadata=setting(OrUnset(_GPIO), "Green leg of the optional stress LED.")
    )
    rgb_blue_pin: int | None = field(
        default=None, metadata=setting(OrUnset(_GPIO), "Blue leg of the optional stress LED.")
    )
    rgb_common_anode: bool = field(
        default=False,
        metadata=setting(Boolean(), "Set for a common-anode RGB LED (legs driven low = on)."),
    )
    long_press_s: float = field(
        default=1.5,
        metadata=setting(Number(0.5, 5, "s"), "Hold time in s that makes a long press."),
    )
    shutdown_press_s: float = field(
        default=6.0,
        metadata=setting(
            Number(3, 20, "s"),
            "Hold time in s of the play button that shuts the device down safely; more "
            "than controls.long_press_s.",
        ),
    )
    repeat_delay_s: float = field(
        default=0.5,
        metadata=setting(
            Number(0.2, 2, "s"), "Hold time in s before a volume button starts repeating."
        ),
    )
    repeat_interval_s: float = field(
        default=0.2,
        metadata=setting(Number(0.05, 1, "s"), "Interval in s between repeated volume steps."),
    )
    volume_step_db: float = field(
        default=2.0,
        metadata=setting(Number(0.5, 6, "dB"), "Volume change in dB per press or repeat."),
    )
    bounce_ms: float = field(
        default=20.0,
        metadata=setting(Number(0, 100, "ms"), "Contact bounce ignored after an edge, in ms."),
    )
    led_brightness: float = field(
        default=0.6,
        metadata=setting(Number(0, 1), "LED brightness by day (0..1 of full)."),
    )
    night_brightness: float = field(
        default=0.05,
        metadata=setting(
            Number(0, 1),
            "LED brightness at night (0..1 of full); at most controls.led_brightness.",
        ),
    )
    night_start: str = field(
        default="21:30",
        metadata=setting(ClockTime(), "Local time at which the LEDs dim for the night."),
    )
    night_end: str = field(
        default="07:00",
        metadata=setting(ClockTime(), "Local time at which the LEDs return to day brightness."),
    )


def pin_assignments(
    controls: ControlsConfig, sensor_int_pin: int | None = None
) -> dict[str, int | None]:
    """Dotted configuration key -> BCM pin for every pin the device uses."""
    return {
        "sensor.int_pin": sensor_int_pin,
        "controls.play_pin": controls.play_pin,
        "controls.next_pin": controls.next_pin,
        "controls.volume_up_pin": controls.volume_up_pin,
        "controls.volume_down_pin": controls.volume_down_pin,
        "controls.status_led_pin": controls.status_led_pin,
        "controls.rgb_red_pin": controls.rgb_red_pin,
        "controls.rgb_green_pin": controls.rgb_green_pin,
        "controls.rgb_blue_pin": controls.rgb_blue_pin,
    }


def controls_problem(
    controls: ControlsConfig, sensor_int_pin: int | None = None
) -> tuple[str, object, str] | None:
    """The first cross-field problem of the section, as ``(dotted key, value, expected)``.

    Checks the pins (:func:`heartsong.controls.pins.pin_problem`, together with the
    sensor's INT pin), that the RGB LED has all three legs or none, that a shutdown press
    is longer than a long press, and that night is not brighter than day.
    """
    if not controls.enabled:
        return None
    problem = pin_problem(pin_assignments(controls, sensor_int_pin))
    if problem is not None:
        return problem
    rgb = {
        "controls.rgb_red_pin": controls.rgb_red_pin,
        "controls.rgb_green_pin": controls.rgb_green_pin,
        "controls.rgb_blue_pin": controls.rgb_blue_pin,
    }
    if any(p is not None for p in rgb.values()):
        for key, pin in rgb.items():
            if pin is None:
                return key, None, "must be set when another RGB LED pin is set (all three or none)"
    if controls.shutdown_press_s <= controls.long_press_s:
        return (
            "controls.shutdown_press_s",
            controls.shutdown_press_s,
            f"must exceed controls.long_press_s = {controls.long_press_s:g} (s)",
        )
    if controls.night_brightness > controls.led_brightness:
        return (
            "controls.night_brightness",
            controls.night_brightness,
            f"must not exceed controls.led_brightness = {controls.led_brightness:g}",
        )
    return None
