"""LED behaviour: the status LED's level over time, night dimming, the stress colour.

Pure functions decide the levels (tested without pins); :class:`StatusLed` and
:class:`StressLed` only write them to gpiozero's ``PWMLED`` and ``RGBLED``.

Status LED, highest priority first:

==================  =============================================================
state               pattern
==================  =============================================================
fault               fast blink, 4 Hz
no sensor contact   two short blinks every 2 s
strap connecting    slow blink, 1 Hz
breathing session   follows the breath pacer: brightens on the inhale, dims on the exhale
broker offline      one short blink every 4 s
playing             steady low glow
idle                off
==================  =============================================================

Levels are perceptual (0..1) and mapped to PWM duty with a gamma of 2.2, so the breathing
looks even to the eye (CIE lightness is close to a power law of luminance).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from heartsong.events import StressState

__all__ = [
    "INHALE_FRACTION",
    "STRESS_COLOURS",
    "LedStatus",
    "Pattern",
    "StatusLed",
    "StressLed",
    "breath_level",
    "choose_pattern",
    "night_scale",
    "pattern_level",
]

#: Fraction of a pacer cycle spent inhaling (the engine's phase 0.4 starts the exhale).
INHALE_FRACTION: Final = 0.4
#: Perceptual level -> PWM duty exponent.
GAMMA: Final = 2.2
#: Level of the steady glow while sound plays without a pacer.
GLOW_LEVEL: Final = 0.25
#: Lowest level of the breathing LED (so the exhale's end is still visible).
BREATH_FLOOR: Final = 0.05

Pattern = Literal[
    "fault", "no_contact", "strap_connecting", "breathing", "broker_offline", "playing", "off"
]

#: Stress state -> (red, green, blue) at full brightness.
STRESS_COLOURS: Final[Mapping[StressState, tuple[float, float, float]]] = {
    "calm": (0.0, 0.8, 0.2),
    "neutral": (0.1, 0.3, 0.9),
    "stressed": (1.0, 0.35, 0.0),
    "unknown": (0.0, 0.0, 0.0),
}


@dataclass(frozen=True, slots=True)
class LedStatus:
    """What the LEDs should show, as the appliance knows it.

    Attributes
    ----------
    fault:
        A part failed (a source stopped, the audio device broke).
    contact:
        False when the sensor in use reports no finger / no strap contact.
    strap_connecting:
        True while the BLE strap is configured but not (yet) delivering beats.
    broker_online:
        The MQTT link's state, or None when MQTT is off.
    playing:
        The therapy sound is on.
    pacing:
        A breath pacer runs (the status LED breathes with it).
    stress_state:
        The latest stress state (the RGB LED's colour).
    """

    fault: bool = False
    contact: bool = True
    strap_connecting: bool = False
    broker_online: bool | None = None
    playing: bool = False
    pacing: bool = False
    stress_state: StressState = "unknown"


def choose_pattern(status: LedStatus) -> Pattern:
    """The status LED's pattern for ``status`` (the table in the module docstring)."""
    if status.fault:
        return "fault"
    if not status.contact:
        return "no_contact"
    if status.strap_connecting:
        return "strap_connecting"
    if status.playing and status.pacing:
        return "breathing"
    if status.broker_online is False:
        return "broker_offline"
    return "playing" if status.playing else "off"


def breath_level(phase: float, inhale_fraction: float = INHALE_FRACTION) -> float:
    """LED level (0..1) for a breath-pacer phase in [0, 1): raised cosine up, then down.

    The inhale (phase 0 .. ``inhale_fraction``) rises from 0 to 1, the exhale falls back
    to 0 at phase 1, each as half a cosine so the level has no corners.
    """
    p = phase % 1.0
    if p < inhale_fraction:
        return 0.5 - 0.5 * math.cos(math.pi * p / inhale_fraction)
    return 0.5 + 0.5 * math.cos(math.pi * (p - inhale_fraction) / (1.0 - inhale_fraction))


def _blinks(t: float, period_s: float, on_s: float, count: int = 1, gap_s: float = 0.0) -> float:
    u = t % period_s
    for k in range(count):
        start = k * (on_s + gap_s)
        if start <= u < start + on_s:
            return 1.0
    return 0.0


def pattern_level(pattern: Pattern, t: float, phase: float) -> float:
    """The perceptual level (0..1) of ``pattern`` at time ``t`` (s) and pacer ``phase``."""
    if pattern == "fault":
        return _blinks(t, 0.25, 0.125)
    if pattern == "no_contact":
        return _blinks(t, 2.0, 0.12, count=2, gap_s=0.18)
    if pattern == "strap_connecting":
        return _blinks(t, 1.0, 0.5)
    if pattern == "breathing":
        return BREATH_FLOOR + (1.0 - BREATH_FLOOR) * breath_level(phase)
    if pattern == "broker_offline":
        return _blinks(t, 4.0, 0.1)
    if pattern == "playing":
        return GLOW_LEVEL
    return 0.0


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def is_night(wall_s: float, night_start: str, night_end: str) -> bool:
    """True when the local time of Unix time ``wall_s`` lies in [night_start, night_end).

    Times are ``"HH:MM"``; a night that crosses midnight (22:00 -> 07:00) is handled.
    """
    local = dt.datetime.fromtimestamp(wall_s)
    m = local.hour * 60 + local.minute
    start, end = _minutes(night_start), _minutes(night_end)
    if start == end:
        return False
    if start < end:
        return start <= m < end
    return m >= start or m < end


def night_scale(
    wall_s: float, night_start: str, night_end: str, day: float, night: float
) -> float:
    """The LED brightness (0..1 of full) at Unix time ``wall_s``: ``night`` or ``day``."""
    return night if is_night(wall_s, night_start, night_end) else day


def duty(level: float, brightness: float) -> float:
    """PWM duty (0..1) for a perceptual ``level`` at ``brightness`` (both 0..1)."""
    x = min(max(level * brightness, 0.0), 1.0)
    return float(x**GAMMA)


class StatusLed:
    """The single-colour status LED on a PWM pin (gpiozero ``PWMLED``)."""

    def __init__(self, pin: int, *, pin_factory: Any = None, frequency_hz: int = 200) -> None:
        from gpiozero import PWMLED  # hardware library: imported when the LED is made

        self._led: Any = PWMLED(pin, frequency=frequency_hz, pin_factory=pin_factory)
        self.value = 0.0

    def show(self, value: float) -> None:
        """Set the PWM duty (0..1); the pin is written only when the duty changes."""
        if value != self.value and self._led is not None:
            self._led.value = value
            self.value = value

    def close(self) -> None:
        """Switch off and release the pin (safe to call twice)."""
        if self._led is not None:
            self._led.close()
            self._led = None


class StressLed:
    """The optional RGB LED showing the stress state (gpiozero ``RGBLED``)."""

    def __init__(
        self,
        red: int,
        green: int,
        blue: int,
        *,
        common_anode: bool = False,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import RGBLED  # hardware library: imported when the LED is made

        self._led: Any = RGBLED(
            red, green, blue, active_high=not common_anode, pin_factory=pin_factory
        )
        self.colour: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def show(self, state: StressState, brightness: float) -> None:
        """Show the colour of ``state`` at ``brightness`` (0..1), gamma-corrected."""
        colour = tuple(duty(c, brightness) for c in STRESS_COLOURS[state])
        rgb = (colour[0], colour[1], colour[2])
        if rgb != self.colour and self._led is not None:
            self._led.value = rgb
            self.colour = rgb

    def close(self) -> None:
        """Switch off and release the pins (safe to call twice)."""
        if self._led is not None:
            self._led.close()
            self._led = None
