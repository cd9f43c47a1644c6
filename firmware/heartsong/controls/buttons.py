"""Push buttons: press edges from gpiozero, gestures (press, repeat, long, very long) in time.

gpiozero reports the edges (its callbacks run on the pin backend's thread); they are
queued with their time stamp and turned into gestures by :meth:`Buttons.poll`, which the
appliance's loop calls on its tick. Gesture timing is a small state machine over an
injected clock (:class:`HoldTracker`), so it is tested without waiting in real time and
does not depend on gpiozero's own hold thread.

Gestures
--------
* repeat buttons (volume): ``press`` at the press, then ``repeat`` after ``repeat_delay_s``
  held and every ``repeat_interval_s`` after that;
* action buttons (play, next): ``press`` on a release before ``long_s``; ``long`` on a
  release after ``long_s`` (and before ``very_long_s``); ``very_long`` as soon as the
  button has been held for ``very_long_s`` (nothing more on its release).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ButtonSpec", "Buttons", "Gesture", "HoldTracker"]

log = logging.getLogger(__name__)

Gesture = Literal["press", "repeat", "long", "very_long"]


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    """One button's pin and timing.

    Attributes
    ----------
    pin:
        BCM GPIO number; the button connects it to ground (internal pull-up).
    repeat:
        True for a hold-to-repeat button (volume), False for an action button.
    repeat_delay_s, repeat_interval_s:
        Hold time before the first repeat and between repeats, in seconds.
    long_s:
        Hold time of a long press, in seconds (action buttons).
    very_long_s:
        Hold time of a very long press, in seconds, or None for none (action buttons).
    """

    pin: int
    repeat: bool = False
    repeat_delay_s: float = 0.5
    repeat_interval_s: float = 0.2
    long_s: float = 1.5
    very_long_s: float | None = None


class HoldTracker:
    """The gesture state machine of one button, driven by press/release times in seconds."""

    def __init__(self, spec: ButtonSpec) -> None:
        self.spec = spec
        self._pressed_at: float | None = None
        self._next_repeat = 0.0
        self._very_long_sent = False

    @property
    def is_held(self) -> bool:
        """True between a press and its release."""
        return self._pressed_at is not None

    def held_s(self, now: float) -> float:
        """How long the button has been held at ``now``, in seconds (0 when released)."""
        return 0.0 if self._pressed_at is None else max(now - self._pressed_at, 0.0)

    def press(self, t: float) -> list[Gesture]:
        """The button went down at ``t`` (a second press without a release is ignored)."""
        if self._pressed_at is not None:
            return []
        self._pressed_at = t
        self._very_long_sent = False
        if self.spec.repeat:
            self._next_repeat = t + self.spec.repeat_delay_s
            return ["press"]
        return []

    def release(self, t: float) -> list[Gesture]:
        """The button came up at ``t``: the gestures this completes (after :meth:`poll`)."""
        if self._pressed_at is None:
            return []
        out = self.poll(t)
        held = t - self._pressed_at
        self._pressed_at = None
        if self.spec.repeat or self._very_long_sent:
            return out
        out.append("long" if held >= self.spec.long_s else "press")
        return out

    def poll(self, now: float) -> list[Gesture]:
        """Gestures due while the button is held, up to ``now`` (repeats, very long)."""
        if self._pressed_at is None:
            return []
        out: list[Gesture] = []
        if self.spec.repeat:
            while self._next_repeat <= now:
                out.append("repeat")
                self._next_repeat += self.spec.repeat_interval_s
        elif (
            self.spec.very_long_s is not None
            and not self._very_long_sent
            and now - self._pressed_at >= self.spec.very_long_s
        ):
            self._very_long_sent = True
            out.append("very_long")
        return out


class Buttons:
    """A set of named gpiozero buttons whose edges become gestures on :meth:`poll`.

    Parameters
    ----------
    specs:
        Button name -> pin and timing.
    now:
        The clock that stamps edges, in seconds (``clock.monotonic``); called from the
        pin backend's thread, so it must be thread-safe.
    pin_factory:
        gpiozero pin factory (``MockFactory`` in tests; None = gpiozero's default).
    bounce_s:
        Edges within this many seconds of the previous one are ignored (contact bounce).
    """

    def __init__(
        self,
        specs: Mapping[str, ButtonSpec],
        *,
        now: Callable[[], float],
        pin_factory: Any = None,
        bounce_s: float = 0.02,
    ) -> None:
        from gpiozero import Button  # hardware library: imported when buttons are made

        self._now = now
        self._edges: queue.SimpleQueue[tuple[str, bool, float]] = queue.SimpleQueue()
        self.trackers = {name: HoldTracker(spec) for name, spec in specs.items()}
        self._devices: dict[str, Any] = {}
        try:
            for name, spec in specs.items():
                dev = Button(
                    spec.pin,
                    pull_up=True,
                    bounce_time=bounce_s if bounce_s > 0 else None,
                    pin_factory=pin_factory,
                )
                dev.when_pressed = self._edge(name, True)
                dev.when_released = self._edge(name, False)
                self._devices[name] = dev
        except Exception:
            self.close()
            raise

    def _edge(self, name: str, pressed: bool) -> Callable[[], None]:
        def on_edge() -> None:
            self._edges.put((name, pressed, self._now()))

        return on_edge

    def poll(self, now: float) -> list[tuple[str, Gesture]]:
        """All gestures completed since the last poll, in order, up to ``now`` (seconds)."""
        out: list[tuple[str, Gesture]] = []
        while True:
            try:
                name, pressed, t = self._edges.get_nowait()
            except queue.Empty:
                break
            tracker = self.trackers[name]
            gestures = tracker.press(t) if pressed else tracker.release(t)
            out.extend((name, g) for g in gestures)
        for name, tracker in self.trackers.items():
            out.extend((name, g) for g in tracker.poll(now))
        return out

    def held_s(self, name: str, now: float) -> float:
        """How long button ``name`` has been held at ``now``, in seconds (0 if released)."""
        return self.trackers[name].held_s(now)

    def close(self) -> None:
        """Release the pins (safe to call twice)."""
        for dev in self._devices.values():
            dev.close()
        self._devices.clear()

    def __repr__(self) -> str:
        held = [n for n, t in self.trackers.items() if t.is_held]
        return f"<Buttons {sorted(self.trackers)} held={held}>"
