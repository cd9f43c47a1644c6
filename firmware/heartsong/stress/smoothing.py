"""Stress probability over time: smoothed, then a state with hysteresis.

One window's ``p_stress`` is noisy; the published value is a first-order (exponential)
average over time with time constant ``tau_s``, weighted by the time between updates so
the device (an update every few seconds) and ``heartsong analyze`` (every window step)
smooth alike. The state follows the smoothed value with hysteresis, so it does not flap
around a threshold:

* ``stressed`` is entered at ``stressed_enter`` and left below ``stressed_exit``;
* ``calm`` is entered at ``calm_enter`` and left above ``calm_exit``;
* in between, ``neutral`` (also the first verdict, unless an entry threshold is crossed);
* ``unknown`` for a window that is not usable (too few clean beats: no guess), and until
  usable windows have come in for ``warmup_s``; after ``max_gap_s`` without a usable
  window the average starts afresh.

The thresholds come with the model (``models/stress_features.json``), chosen by the
training script from the training data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from heartsong.errors import InputDataError
from heartsong.events import StressState

__all__ = ["SmoothedStress", "StressSmoother", "StressThresholds"]


@dataclass(frozen=True, slots=True)
class StressThresholds:
    """Hysteresis thresholds on the smoothed probability, ordered
    ``calm_enter < calm_exit <= stressed_exit < stressed_enter`` (all in [0, 1])."""

    calm_enter: float
    calm_exit: float
    stressed_exit: float
    stressed_enter: float

    def __post_init__(self) -> None:
        values = (self.calm_enter, self.calm_exit, self.stressed_exit, self.stressed_enter)
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
            raise InputDataError("thresholds", "probabilities in [0, 1]", values)
        if not (values[0] < values[1] <= values[2] < values[3]):
            raise InputDataError(
                "thresholds",
                "calm_enter < calm_exit <= stressed_exit < stressed_enter",
                values,
            )


@dataclass(frozen=True, slots=True)
class SmoothedStress:
    """The smoothed probability (None when unknown), the state, and why it is unknown."""

    p_stress: float | None
    state: StressState
    reason: str = ""


@dataclass
class StressSmoother:
    """Exponential smoothing of ``p_stress`` in time and a hysteresis state machine.

    Parameters
    ----------
    thresholds:
        See :class:`StressThresholds`.
    tau_s:
        Time constant of the average, seconds.
    warmup_s:
        Usable windows must have come in for this long before a state is given, seconds.
    max_gap_s:
        Longer than this without a usable window, the average starts afresh, seconds.
    """

    thresholds: StressThresholds
    tau_s: float = 30.0
    warmup_s: float = 20.0
    max_gap_s: float = 120.0
    _p: float | None = field(default=None, init=False)
    _t_first: float = field(default=0.0, init=False)
    _t_last: float = field(default=0.0, init=False)
    _state: StressState = field(default="unknown", init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tau_s) and self.tau_s > 0.0):
            raise InputDataError("tau_s", "a positive number of seconds", self.tau_s)
        for name, value in (("warmup_s", self.warmup_s), ("max_gap_s", self.max_gap_s)):
            if not (math.isfinite(value) and value >= 0.0):
                raise InputDataError(name, "a number of seconds >= 0", value)

    def reset(self) -> None:
        """Forget the history (a new session)."""
        self._p = None
        self._state = "unknown"

    def update(self, t_s: float, p_window: float | None, reason: str = "") -> SmoothedStress:
        """Take one window's probability (None when the window is not usable).

        Parameters
        ----------
        t_s:
            Time of the window's end, seconds (increasing).
        p_window:
            The model's probability for this window, or None.
        reason:
            Why ``p_window`` is None (repeated in the result).

        Returns
        -------
        SmoothedStress
            ``unknown`` with a reason for an unusable window or during the warm-up.
        """
        if self._p is not None and t_s - self._t_last > self.max_gap_s:
            self.reset()
        if p_window is None:
            return SmoothedStress(None, "unknown", reason or "no stress estimate")
        if not (math.isfinite(p_window) and 0.0 <= p_window <= 1.0):
            raise InputDataError("p_stress", "a probability in [0, 1]", p_window)
        if self._p is None:
            self._p = p_window
            self._t_first = t_s
        else:
            dt = max(t_s - self._t_last, 0.0)
            a = math.exp(-dt / self.tau_s)
            self._p = a * self._p + (1.0 - a) * p_window
        self._t_last = t_s
        if t_s - self._t_first < self.warmup_s:
            return SmoothedStress(
                None,
                "unknown",
                f"warming up: {t_s - self._t_first:.0f} s of usable windows < "
                f"{self.warmup_s:.0f} s",
            )
        self._state = self._next_state(self._p)
        return SmoothedStress(self._p, self._state)

    def _next_state(self, p: float) -> StressState:
        th = self.thresholds
        state = self._state
        if state == "stressed" and p >= th.stressed_exit:
            return "stressed"
        if state == "calm" and p <= th.calm_exit:
            return "calm"
        if p >= th.stressed_enter:
            return "stressed"
        if p <= th.calm_enter:
            return "calm"
        return "neutral"
