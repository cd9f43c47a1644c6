"""The controls the appliance runs: buttons -> commands, appliance state -> LEDs.

Buttons produce the same command values as the smart home
(:mod:`heartsong.mqtt.commands`), handed to the appliance's own command handler
(``Appliance.on_command``), so a press and an MQTT message change the device the same way
and are logged alike. One :meth:`Controls.tick` on the appliance's loop turns the queued
button edges into commands and sets the LEDs.

========  ==========================  ===================================  ==============
button    press                       long press (controls.long_press_s)   very long press
========  ==========================  ===================================  ==============
play      sound on / off              start a breathing session            safe shutdown
next      next soundscape             sleep timer 15 -> 30 -> 60 -> off    --
vol +/-   volume step (hold repeats)  --                                   --
========  ==========================  ===================================  ==============

The shutdown itself is the appliance's decision: the controls only call ``on_shutdown``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from heartsong.controls.buttons import Buttons, ButtonSpec, Gesture
from heartsong.controls.leds import (
    LedStatus,
    StatusLed,
    StressLed,
    choose_pattern,
    duty,
    night_scale,
    pattern_level,
)
from heartsong.controls.settings import ControlsConfig
from heartsong.mqtt.commands import (
    Command,
    SessionControl,
    SetPlaying,
    SetSleepTimer,
    SetSoundscape,
    SetVolume,
)
from heartsong.therapy.policy import PolicySettings

__all__ = ["SLEEP_TIMER_STEPS_MIN", "Controls", "gesture_command", "make_controls"]

log = logging.getLogger(__name__)

#: Sleep-timer choices of the next button's long press, in minutes (then off).
SLEEP_TIMER_STEPS_MIN: Final = (15.0, 30.0, 60.0)
#: Seconds between ticks of :meth:`Controls.run` (50 Hz: smooth LED breathing).
TICK_S: Final = 0.02

SHUTDOWN: Final = "shutdown"


def _next_timer(remaining_min: float) -> float:
    for step in SLEEP_TIMER_STEPS_MIN:
        if remaining_min < step - 0.5:
            return step
    return 0.0


def gesture_command(
    button: str,
    gesture: Gesture,
    settings: PolicySettings,
    *,
    presets: Sequence[str],
    volume_step_db: float,
    volume_min_db: float,
    volume_max_db: float,
    timer_remaining_min: float,
) -> Command | str | None:
    """What one gesture asks for: a command, :data:`SHUTDOWN`, or None (nothing to do).

    Parameters
    ----------
    button, gesture:
        ``"play" | "next" | "volume_up" | "volume_down"`` and what the button did.
    settings:
        The appliance's settings in force (what "toggle" and "next" start from).
    presets:
        Soundscape names in the order the next button walks through them.
    volume_step_db, volume_min_db, volume_max_db:
        Step per press and the allowed range, in dB (the maximum is the safety ceiling).
    timer_remaining_min:
        Minutes left on the sleep timer (0 = off), from which the long press steps on.
    """
    if button == "play":
        if gesture == "press":
            return SetPlaying(not settings.playing)
        if gesture == "long":
            return SessionControl("start")
        if gesture == "very_long":
            return SHUTDOWN
        return None
    if button == "next":
        if gesture == "press" and presets:
            i = presets.index(settings.soundscape) if settings.soundscape in presets else -1
            return SetSoundscape(presets[(i + 1) % len(presets)])
        if gesture == "long":
            return SetSleepTimer(_next_timer(timer_remaining_min))
        return None
    if button in ("volume_up", "volume_down") and gesture in ("press", "repeat"):
        sign = 1.0 if button == "volume_up" else -1.0
        target = min(max(settings.volume_db + sign * volume_step_db, volume_min_db),
                     volume_max_db)
        return None if target == settings.volume_db else SetVolume(target)
    return None


class Controls:
    """Buttons and LEDs, glued to the appliance by plain callables.

    Parameters
    ----------
    cfg:
        The ``[controls]`` section (pins already validated).
    presets:
        Soundscape names for the next button.
    volume_min_db, volume_max_db:
        The volume range in dB; ``volume_max_db`` is ``audio.max_volume_db``.
    settings:
        Returns the appliance's settings in force.
    send:
        Takes a command (``Appliance.on_command``); called on the loop that ticks.
    timer_remaining_min:
        Returns the minutes left on the sleep timer (0 = off).
    breath_phase:
        Returns the pacer phase in [0, 1) (``AudioEngine.breath_phase``).
    on_shutdown:
        Called once when the play button is held for ``shutdown_press_s``.
    now, wall:
        Monotonic and Unix time in seconds (``clock.monotonic``, ``clock.wall``).
    pin_factory:
        gpiozero pin factory; None = gpiozero's default for this board.
    """

    def __init__(
        self,
        cfg: ControlsConfig,
        *,
        presets: Sequence[str],
        volume_min_db: float,
        volume_max_db: float,
        settings: Callable[[], PolicySettings],
        send: Callable[[Command], None],
        timer_remaining_min: Callable[[], float],
        breath_phase: Callable[[], float],
        on_shutdown: Callable[[], None],
        now: Callable[[], float],
        wall: Callable[[], float],
        pin_factory: Any = None,
    ) -> None:
        self.cfg = cfg
        self.presets = tuple(presets)
        self.volume_min_db = volume_min_db
        self.volume_max_db = volume_max_db
        self._settings = settings
        self._send = send
        self._timer_remaining_min = timer_remaining_min
        self._breath_phase = breath_phase
        self._on_shutdown = on_shutdown
        self._now = now
        self._wall = wall
        self.status = LedStatus()
        self.shutdown_requested = False
        self.buttons: Buttons | None = None
        self.status_led: StatusLed | None = None
        self.stress_led: StressLed | None = None
        try:
            self._open(pin_factory)
        except Exception:
            self.close()
            raise

    def _open(self, pin_factory: Any) -> None:
        c = self.cfg
        specs: dict[str, ButtonSpec] = {}
        long_s, delay_s, every_s = c.long_press_s, c.repeat_delay_s, c.repeat_interval_s
        if c.play_pin is not None:
            specs["play"] = ButtonSpec(c.play_pin, long_s=long_s, very_long_s=c.shutdown_press_s)
        if c.next_pin is not None:
            specs["next"] = ButtonSpec(c.next_pin, long_s=long_s)
        for name, pin in (("volume_up", c.volume_up_pin), ("volume_down", c.volume_down_pin)):
            if pin is not None:
                specs[name] = ButtonSpec(
                    pin, repeat=True, repeat_delay_s=delay_s, repeat_interval_s=every_s
                )
        if specs:
            self.buttons = Buttons(
                specs, now=self._now, pin_factory=pin_factory, bounce_s=c.bounce_ms / 1000.0
            )
        # An LED that cannot be driven (a pin backend without PWM) costs only that LED:
        # the buttons stay.
        status = c.status_led_pin
        if status is not None:
            self.status_led = _optional_led(
                "status", lambda: StatusLed(status, pin_factory=pin_factory))
        red, green, blue = c.rgb_red_pin, c.rgb_green_pin, c.rgb_blue_pin
        if red is not None and green is not None and blue is not None:
            self.stress_led = _optional_led("stress", lambda: StressLed(
                red, green, blue, common_anode=c.rgb_common_anode, pin_factory=pin_factory,
            ))

    def show(self, status: LedStatus) -> None:
        """Set what the LEDs show from now on (call after each metrics update)."""
        self.status = status

    def brightness(self) -> float:
        """LED brightness now (0..1): ``led_brightness`` by day, ``night_brightness`` at night."""
        c = self.cfg
        return night_scale(
            self._wall(), c.night_start, c.night_end, c.led_brightness, c.night_brightness
        )

    def tick(self) -> list[Command]:
        """Turn pending button gestures into commands (sent) and update the LEDs.

        Returns the commands sent, in order.
        """
        now = self._now()
        sent: list[Command] = []
        if self.buttons is not None:
            for button, gesture in self.buttons.poll(now):
                sent.extend(self._handle(button, gesture))
        self._update_leds(now)
        return sent

    def _handle(self, button: str, gesture: Gesture) -> list[Command]:
        c = self.cfg
        what = gesture_command(
            button, gesture, self._settings(),
            presets=self.presets, volume_step_db=c.volume_step_db,
            volume_min_db=self.volume_min_db, volume_max_db=self.volume_max_db,
            timer_remaining_min=self._timer_remaining_min(),
        )
        log.debug("button %s: %s -> %s", button, gesture, what)
        if what is None:
            return []
        if isinstance(what, str):
            if not self.shutdown_requested:
                self.shutdown_requested = True
                log.warning("play button held %.0f s: shutdown requested", c.shutdown_press_s)
                self._on_shutdown()
            return []
        self._send(what)
        return [what]

    def _update_leds(self, now: float) -> None:
        bright = self.brightness()
        if self.status_led is not None:
            held = 0.0 if self.buttons is None or "play" not in self.buttons.trackers else (
                self.buttons.held_s("play", now)
            )
            if held >= self.cfg.long_press_s:
                level = 1.0  # feedback: a release now is a long press
            else:
                level = pattern_level(choose_pattern(self.status), now, self._breath_phase())
            self.status_led.show(duty(level, bright))
        if self.stress_led is not None:
            self.stress_led.show(self.status.stress_state, bright)

    async def run(self, period_s: float = TICK_S) -> None:
        """Tick every ``period_s`` seconds of real time until cancelled."""
        while True:
            try:
                self.tick()
            except Exception:  # a control glitch must not stop the controls
                log.exception("controls tick failed")
            await asyncio.sleep(period_s)

    def close(self) -> None:
        """Switch the LEDs off and release every pin (safe to call twice)."""
        for part in (self.buttons, self.status_led, self.stress_led):
            if part is not None:
                part.close()

    def __repr__(self) -> str:
        return f"<Controls {self.buttons!r} pattern={choose_pattern(self.status)}>"


_Led = TypeVar("_Led")


def _optional_led(label: str, make: Callable[[], _Led]) -> _Led | None:
    """The LED ``make`` opens, or None with a warning: an LED the pin backend cannot drive
    (no PWM) costs only that LED, the buttons stay."""
    try:
        return make()
    except Exception as exc:  # gpiozero: PinPWMUnsupported, PinInvalidPin, ...
        log.warning("%s LED unavailable (%s: %s)", label, type(exc).__name__, exc)
        return None


def make_controls(cfg: ControlsConfig, **kwargs: Any) -> Controls | None:
    """The controls for the device, or None when disabled or when the GPIO cannot be opened.

    ``kwargs`` are :class:`Controls`' keyword arguments. A board without GPIO (a laptop,
    a container) is logged once and the device runs without buttons and LEDs.
    """
    if not cfg.enabled:
        return None
    try:
        return Controls(cfg, **kwargs)
    except Exception as exc:  # gpiozero raises BadPinFactory, PinError, OSError...
        log.warning("buttons and LEDs unavailable (%s: %s); running without them",
                    type(exc).__name__, exc)
        return None
