"""The resonance-breathing pacer: a rate that leads the measured breathing down, step by step.

Paced breathing near the baroreflex resonance (about 6 breaths/min) is the best-supported
form of HRV biofeedback (Lehrer & Gevirtz 2014), and its protocols lower the pace
gradually from the person's own rate (Lehrer, Vaschillo & Vaschillo 2000) rather than on a
clock. This pacer does that in closed loop:

* it **starts near the measured breathing rate** (``start_offset_bpm`` below the median
  of the first ``start_samples`` measured rates, on the ``step_bpm`` grid, so one
  misread window does not set the start), or at ``fallback_start_bpm`` when no rate was
  measured within ``wait_s``;
* it **steps down only as fast as the breathing follows**: the next step comes after the
  measured rate has stayed within the tolerance above the pacer for ``hold_s`` (a leaky
  count: an update that misses takes back as much time as it would have added). The
  tolerance is ``tolerance_bpm``, or half the last step when that is larger: the
  breathing has followed once it has come at least half way. A measured rate more than
  ``ahead_margin_bpm`` *below* the pacer is not following either (a misread window: the
  ~0.1 Hz Mayer wave can pass for slow breathing). Steps are ``step_bpm`` times one, two
  or three, the distance to the target divided by ``fast_above_bpm`` and rounded (large
  far from the target, small near it), and never pass the target;
* when the breathing stays more than ``lost_margin_bpm`` above the pacer for ``lost_s``,
  the person has let go of it, and the pacer **goes back** to the last rate that was
  followed (at least one step up) so it can be caught again. It does not jump to the
  breathing: a sleeper's breathing would then seem to follow it. It also **learns to
  lead more gently**: after each loss (up to three) the largest step shrinks by one
  ``step_bpm`` and the hold grows by ``hold_s``;
* a target above the pacer (the resonance estimate moved up, the assessment returns) is
  approached one step per ``hold_s`` (or the caller's dwell) without waiting for the
  breathing.

The tolerance is below the step on purpose: right after a step the (lagging) measured
rate still sits at the old pace, which must not count as following the new one.

The pacer also keeps the breath **phase** (cycles, 0 = start of an inhale), which advances
continuously when the rate changes, and :func:`breath_level` gives the envelope the audio
engine plays (raised-cosine rise over the inhale, fall over the longer exhale; the
engine's ``BREATH_INHALE_FRACTION`` = 0.4, inhale:exhale = 4:6), so LEDs can breathe
along even when the sound is muted. A longer exhale than inhale is what slow-breathing
protocols ask for (Zaccaro et al. 2018).

All functions are pure: :func:`pacer_step` maps (state, inputs) to a new state and the
reason for a rate change.

References
----------
Lehrer PM, Vaschillo E, Vaschillo B (2000) Resonant frequency biofeedback training to
increase cardiac variability: rationale and manual for training. Appl Psychophysiol
Biofeedback 25(3):177-191.
Lehrer PM, Gevirtz R (2014) Heart rate variability biofeedback: how and why does it work?
Front Psychol 5:756.
Zaccaro A et al. (2018) How breath-control can change your life: a systematic review on
psycho-physiological correlates of slow breathing. Front Hum Neurosci 12:353.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Literal

from heartsong.audio.kernels import BREATH_INHALE_FRACTION
from heartsong.errors import InputDataError, check_number
from heartsong.therapy.explain import format_duration

__all__ = [
    "PACER_RANGE_BPM",
    "PacerConfig",
    "PacerStage",
    "PacerState",
    "PacerUpdate",
    "advance_phase",
    "breath_level",
    "pacer_step",
]

#: The rates the pacer may play, breaths per minute (the sound presets' widest range).
PACER_RANGE_BPM: tuple[float, float] = (3.0, 20.0)
_EPS = 1e-6

PacerStage = Literal["off", "waiting", "pacing"]


def _check(name: str, value: float, low: float, high: float, unit: str) -> None:
    check_number(f"pacer.{name}", value, low, high, unit)


@dataclass(frozen=True, slots=True)
class PacerConfig:
    """How the pacer leads (validated on construction; rates in breaths/min, times in s).

    Attributes
    ----------
    step_bpm:
        Size of one step and the grid the pacer's rates lie on.
    tolerance_bpm:
        The measured rate "follows" while at most this far above the pacer (below
        ``step_bpm``, see the module docstring).
    hold_s:
        Seconds of following needed before the next step down.
    lost_margin_bpm, lost_s:
        Breathing more than ``lost_margin_bpm`` above the pacer for ``lost_s`` seconds
        means the pacer was lost: it steps back up.
    start_offset_bpm:
        The first rate is this far below the measured breathing rate.
    start_samples:
        Measured rates whose median sets the first rate.
    ahead_margin_bpm:
        A measured rate more than this below the pacer does not count as following.
    fallback_start_bpm, wait_s:
        The first rate when no breathing rate was measured within ``wait_s`` seconds.
    fast_above_bpm:
        Steps are ``step_bpm`` times round(distance to the target / this), 1 to 3.
    inhale_fraction:
        Share of a breath cycle spent inhaling (the audio engine's, 0.4).
    """

    step_bpm: float = 0.5
    tolerance_bpm: float = 0.45
    hold_s: float = 30.0
    lost_margin_bpm: float = 1.0
    lost_s: float = 90.0
    start_offset_bpm: float = 0.5
    start_samples: int = 3
    ahead_margin_bpm: float = 2.0
    fallback_start_bpm: float = 10.0
    wait_s: float = 90.0
    fast_above_bpm: float = 2.0
    inhale_fraction: float = BREATH_INHALE_FRACTION

    def __post_init__(self) -> None:
        _check("step_bpm", self.step_bpm, 0.1, 2.0, "breaths/min")
        _check("tolerance_bpm", self.tolerance_bpm, 0.05, self.step_bpm, "breaths/min")
        _check("hold_s", self.hold_s, 5.0, 3600.0, "s")
        _check("lost_margin_bpm", self.lost_margin_bpm, self.tolerance_bpm, 10.0, "breaths/min")
        _check("lost_s", self.lost_s, 5.0, 3600.0, "s")
        _check("start_offset_bpm", self.start_offset_bpm, 0.0, 5.0, "breaths/min")
        _check("start_samples", self.start_samples, 1, 60, "rates")
        _check("ahead_margin_bpm", self.ahead_margin_bpm, 0.5, 20.0, "breaths/min")
        _check("fallback_start_bpm", self.fallback_start_bpm, *PACER_RANGE_BPM, "breaths/min")
        _check("wait_s", self.wait_s, 0.0, 3600.0, "s")
        _check("fast_above_bpm", self.fast_above_bpm, 0.5, 20.0, "breaths/min")
        _check("inhale_fraction", self.inhale_fraction, 0.2, 0.5, "of a cycle")


@dataclass(frozen=True, slots=True)
class PacerState:
    """Where the pacer is (times in seconds, rates in breaths/min).

    Attributes
    ----------
    stage:
        ``off``; ``waiting`` for a first breathing rate; ``pacing``.
    rate_bpm:
        The rate played, None unless pacing.
    phase:
        Breath phase in cycles, [0, 1): 0 starts an inhale.
    t_s:
        Monotonic time of the last step, or None before the first.
    waited_s:
        Time spent waiting for a breathing rate.
    at_rate_s:
        Time since the rate last changed.
    followed_s:
        Leaky count of the time the measured breathing followed the current rate.
    lost_s:
        Continuous time the breathing stayed well above the pacer.
    last_step_bpm:
        Size of the last step down (0 before the first).
    seen:
        Measured rates seen while waiting to start.
    losses:
        How often the breathing let go of the pacer this session; each loss makes the
        pacer more careful (see :func:`pacer_step`).
    followed_bpm:
        The last rate the breathing was seen to follow (the rate of the last step down).
    """

    stage: PacerStage = "off"
    rate_bpm: float | None = None
    phase: float = 0.0
    t_s: float | None = None
    waited_s: float = 0.0
    at_rate_s: float = 0.0
    followed_s: float = 0.0
    lost_s: float = 0.0
    last_step_bpm: float = 0.0
    seen: tuple[float, ...] = ()
    losses: int = 0
    followed_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class PacerUpdate:
    """The new pacer state, and the reason when its rate changed (else None)."""

    state: PacerState
    cause: str | None = None


def breath_level(phase: float, inhale_fraction: float = BREATH_INHALE_FRACTION) -> float:
    """Breath envelope in [0, 1] at ``phase`` (cycles; 0 = start of inhale, 1 = top of it).

    A raised-cosine rise over the inhale (``phase < inhale_fraction``) and fall over the
    exhale, the same shape as the audio engine's breath envelope, for LEDs.
    """
    p = phase - math.floor(phase)
    if p < inhale_fraction:
        return 0.5 - 0.5 * math.cos(math.pi * p / inhale_fraction)
    return 0.5 + 0.5 * math.cos(math.pi * (p - inhale_fraction) / (1.0 - inhale_fraction))


def advance_phase(phase: float, rate_bpm: float | None, dt_s: float) -> float:
    """The phase (cycles, [0, 1)) after ``dt_s`` seconds at ``rate_bpm`` (None: it stays)."""
    if rate_bpm is None or dt_s <= 0.0:
        return phase
    p = phase + rate_bpm * dt_s / 60.0
    return p - math.floor(p)


def _snap(rate: float, step: float) -> float:
    """``rate`` rounded down onto the step grid, within the pacer range."""
    snapped = math.floor(rate / step + 1e-9) * step
    return min(PACER_RANGE_BPM[1], max(PACER_RANGE_BPM[0], snapped))


def _start(state: PacerState, rate: float, cause: str) -> PacerUpdate:
    return PacerUpdate(
        dataclasses.replace(
            state,
            stage="pacing",
            rate_bpm=rate,
            at_rate_s=0.0,
            followed_s=0.0,
            lost_s=0.0,
            last_step_bpm=0.0,
            seen=(),
        ),
        cause,
    )


def pacer_step(
    state: PacerState,
    *,
    now_s: float,
    active: bool,
    measured_bpm: float | None,
    target_bpm: float,
    cfg: PacerConfig,
    dwell_s: float | None = None,
) -> PacerUpdate:
    """Advance the pacer to ``now_s`` and decide its rate.

    Parameters
    ----------
    state:
        The state after the previous call.
    now_s:
        Monotonic time in seconds (not before ``state.t_s``).
    active:
        Whether the pacer should play (False: it turns off and forgets its progress).
    measured_bpm:
        The breathing rate measured over the last window, breaths/min, or None when it
        is unknown or the signal is too poor to trust (the pacer then holds).
    target_bpm:
        Where the pacer is heading (the resonance rate or an assessment step), breaths/min.
    cfg:
        Pacing rules.
    dwell_s:
        Least time at a rate before the next step, seconds (default ``cfg.hold_s``; longer
        while assessing the resonance rate, so each rate gets a full metrics window).

    Returns
    -------
    PacerUpdate
        The new state and, when the rate changed or the pacer started, why.
    """
    if not math.isfinite(target_bpm):
        raise InputDataError("target_bpm", "a finite rate in breaths/min", target_bpm)
    target = min(PACER_RANGE_BPM[1], max(PACER_RANGE_BPM[0], target_bpm))
    dt = 0.0 if state.t_s is None else max(0.0, now_s - state.t_s)
    state = dataclasses.replace(
        state, t_s=now_s, phase=advance_phase(state.phase, state.rate_bpm, dt)
    )
    if not active:
        return PacerUpdate(PacerState(phase=state.phase, t_s=now_s))
    if state.stage == "off":
        state = dataclasses.replace(state, stage="waiting", waited_s=0.0, seen=())
        dt = 0.0
    if state.stage == "waiting":
        if measured_bpm is not None:
            seen = (*state.seen, measured_bpm)
            if len(seen) < cfg.start_samples:
                return PacerUpdate(
                    dataclasses.replace(state, seen=seen, waited_s=state.waited_s + dt)
                )
            breathing = statistics.median(seen)
            rate = max(target, _snap(breathing - cfg.start_offset_bpm, cfg.step_bpm))
            return _start(
                state, rate, f"pacer on near the measured breathing ({breathing:.1f} /min)"
            )
        waited = state.waited_s + dt
        if waited >= cfg.wait_s:
            rate = max(target, cfg.fallback_start_bpm)
            return _start(
                state, rate, f"pacer on: no breathing rate measured in {format_duration(waited)}"
            )
        return PacerUpdate(dataclasses.replace(state, waited_s=waited))

    if state.rate_bpm is None:  # pacing always has a rate; restart if it was lost
        return PacerUpdate(dataclasses.replace(state, stage="waiting", waited_s=0.0))
    rate = state.rate_bpm
    at_rate = state.at_rate_s + dt
    followed, lost = state.followed_s, state.lost_s
    tolerance = max(cfg.tolerance_bpm, 0.5 * state.last_step_bpm)
    if measured_bpm is not None:
        if rate - cfg.ahead_margin_bpm <= measured_bpm <= rate + tolerance:
            followed += dt
        else:
            followed = max(0.0, followed - dt)
        lost = lost + dt if measured_bpm > rate + cfg.lost_margin_bpm else 0.0
    # Each time the person let go, lead more gently: smaller steps, longer holds.
    hold = cfg.hold_s * (1 + state.losses)
    dwell = cfg.hold_s if dwell_s is None else max(cfg.hold_s, dwell_s)
    new_rate = rate
    step = 0.0
    losses = state.losses
    cause: str | None = None
    if rate > target + _EPS and followed >= hold and at_rate >= dwell:
        largest = max(1, 3 - state.losses)
        multiple = min(largest, max(1, round((rate - target) / cfg.fast_above_bpm)))
        step = cfg.step_bpm * multiple
        new_rate = max(target, rate - step)
        cause = f"breathing followed for {format_duration(followed)}"
    elif rate < target - _EPS and at_rate >= dwell:
        new_rate = min(target, rate + cfg.step_bpm)
        step = 0.0
        cause = f"moving up towards {target:.1f} /min"
    elif lost >= cfg.lost_s and measured_bpm is not None:
        back = state.followed_bpm if state.followed_bpm is not None else rate
        new_rate = min(PACER_RANGE_BPM[1], max(rate + cfg.step_bpm, back))
        losses = min(state.losses + 1, 3)
        cause = f"breathing stayed at {measured_bpm:.1f} /min for {format_duration(lost)}"
    if cause is not None and abs(new_rate - rate) > _EPS:
        return PacerUpdate(
            dataclasses.replace(
                state,
                rate_bpm=new_rate,
                at_rate_s=0.0,
                followed_s=0.0,
                lost_s=0.0,
                last_step_bpm=max(0.0, rate - new_rate) if step > 0.0 else 0.0,
                losses=losses,
                followed_bpm=rate if step > 0.0 else state.followed_bpm,
            ),
            cause,
        )
    return PacerUpdate(
        dataclasses.replace(state, at_rate_s=at_rate, followed_s=followed, lost_s=lost)
    )
