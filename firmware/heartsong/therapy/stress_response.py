"""Stress response: rising stress makes the sound darker, slower and more masking, gradually.

Arousal is answered by lowering what excites it: high-frequency content (brightness),
tempo and the salience of the environment (more masking). The rules:

* the stress probability is smoothed by a first-order filter with time constant ``tau_s``
  (tens of seconds), so one noisy estimate moves nothing;
* the targets follow the smoothed level linearly (brightness ``-brightness_drop * level``,
  masking intensity ``+masking_rise * level``, tempo ``* (1 - pulse_slowdown * level)``)
  but are only *announced* in whole steps (``step`` in 0..1 units, ``tempo_step_bpm``)
  towards the desired value: a change smaller than one step never moves a target, so noise
  cannot make a target flap around a step boundary;
* the "stressed" state has hysteresis: it is entered at ``enter_stressed`` and left at
  ``leave_stressed``;
* after ``stressed_for_s`` in the stressed state the soundscape switches to the masking
  preset, and back to the user's choice when the state ends; at most one switch in any
  ``switch_interval_s`` (the user's own choice also starts the interval);
* while the signal quality is below ``quality_min`` or no stress estimate exists, the
  response **holds**: nothing moves and no time counts towards a switch.

Everything here is a pure function of (state, inputs). This is the project's design, built
on the general finding that slow, dark, steady sound is judged more relaxing than fast,
bright sound (e.g. Bernardi et al. 2006 for tempo); it is not a published algorithm.

References
----------
Bernardi L, Porta C, Sleight P (2006) Cardiovascular, cerebrovascular, and respiratory
changes induced by different types of music in musicians and non-musicians: the
importance of silence. Heart 92(4):445-452.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from heartsong.errors import InputDataError, check_number
from heartsong.therapy.explain import Adaptation, format_duration

__all__ = [
    "SoundBase",
    "StressResponseConfig",
    "StressResponseState",
    "StressResponseUpdate",
    "stress_response_step",
    "user_soundscape",
]

_EPS = 1e-9


def _check(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    check_number(f"therapy.{name}", value, low, high, unit)


@dataclass(frozen=True, slots=True)
class StressResponseConfig:
    """The stress response's rules (levels in 0..1, times in seconds).

    Attributes
    ----------
    tau_s:
        Time constant of the stress smoothing.
    enter_stressed, leave_stressed:
        Hysteresis thresholds of the stressed state on the smoothed ``p_stress``.
    brightness_drop, masking_rise:
        Change of brightness (down) and intensity (up) at smoothed stress 1.
    pulse_slowdown:
        Fraction by which the tempo drops at smoothed stress 1.
    step, tempo_step_bpm:
        Smallest announced change of brightness/intensity (0..1) and of tempo (beats/min).
    stressed_for_s:
        Time in the stressed state before the masking soundscape is chosen.
    switch_interval_s:
        At most one soundscape switch within any interval of this length.
    masking_soundscape:
        Preset switched to under stress, or None for no switching.
    quality_min:
        Below this signal quality the response holds its state.
    """

    tau_s: float = 30.0
    enter_stressed: float = 0.65
    leave_stressed: float = 0.45
    brightness_drop: float = 0.3
    masking_rise: float = 0.3
    pulse_slowdown: float = 0.25
    step: float = 0.05
    tempo_step_bpm: float = 2.0
    stressed_for_s: float = 60.0
    switch_interval_s: float = 900.0
    masking_soundscape: str | None = "brown_noise"
    quality_min: float = 0.5

    def __post_init__(self) -> None:
        _check("stress_tau_s", self.tau_s, 1.0, 600.0, "s")
        _check("stress_enter", self.enter_stressed, 0.0, 1.0)
        _check("stress_leave", self.leave_stressed, 0.0, self.enter_stressed)
        _check("brightness_drop", self.brightness_drop, 0.0, 1.0)
        _check("masking_rise", self.masking_rise, 0.0, 1.0)
        _check("pulse_slowdown", self.pulse_slowdown, 0.0, 0.9)
        _check("step", self.step, 0.01, 0.5)
        _check("tempo_step_bpm", self.tempo_step_bpm, 0.5, 20.0, "beats/min")
        _check("stressed_for_s", self.stressed_for_s, 0.0, 3600.0, "s")
        _check("switch_interval_s", self.switch_interval_s, 0.0, 86400.0, "s")
        _check("quality_min", self.quality_min, 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class SoundBase:
    """The sound without stress: the user's soundscape and its calm-state controls.

    ``brightness_min``/``brightness_max`` bound the brightness the preset allows;
    ``tempo_bpm`` is None for presets without a pulse; ``tempo_min_bpm`` is the lowest
    tempo the preset allows.
    """

    soundscape: str
    brightness: float
    intensity: float
    tempo_bpm: float | None = None
    tempo_min_bpm: float | None = None
    brightness_min: float = 0.0
    brightness_max: float = 1.0


@dataclass(frozen=True, slots=True)
class StressResponseState:
    """The response's memory (times in seconds, levels in 0..1).

    Attributes
    ----------
    t_s:
        Monotonic time of the last step (None before the first).
    level:
        Smoothed ``p_stress`` (None until a trusted estimate arrived).
    stressed:
        The hysteretic stressed state.
    stressed_s:
        Trusted time spent in the current stressed state.
    holding:
        True while the signal is too poor (or no estimate exists).
    soundscape:
        The soundscape chosen ("" before the first step).
    last_switch_s:
        When the soundscape last changed (by this response or the user), or None.
    brightness, intensity, tempo_bpm:
        The announced values (None before the first step / for presets without tempo).
    announced_level:
        The smoothed level at the last announced change.
    """

    t_s: float | None = None
    level: float | None = None
    stressed: bool = False
    stressed_s: float = 0.0
    holding: bool = False
    soundscape: str = ""
    last_switch_s: float | None = None
    brightness: float | None = None
    intensity: float | None = None
    tempo_bpm: float | None = None
    announced_level: float | None = None


@dataclass(frozen=True, slots=True)
class StressResponseUpdate:
    """The new state; why each target moved (field -> cause); notes on state changes."""

    state: StressResponseState
    causes: dict[str, str]
    notes: tuple[Adaptation, ...] = ()


def _quantised(current: float | None, desired: float, step: float) -> float:
    """``current`` moved towards ``desired`` by whole steps (the first value is ``desired``)."""
    if current is None:
        return desired
    n = math.trunc((desired - current) / step + (1e-9 if desired > current else -1e-9))
    return current + n * step


def user_soundscape(
    state: StressResponseState, name: str, now_s: float
) -> StressResponseState:
    """The state after the user chose soundscape ``name`` at ``now_s`` (starts the interval)."""
    if name == state.soundscape:
        return state
    return dataclasses.replace(state, soundscape=name, last_switch_s=now_s)


def stress_response_step(
    state: StressResponseState,
    *,
    now_s: float,
    p_stress: float | None,
    quality: float | None,
    base: SoundBase,
    cfg: StressResponseConfig,
    why_unknown: str = "",
) -> StressResponseUpdate:
    """Advance the stress response to ``now_s``.

    Parameters
    ----------
    state:
        The state after the previous step.
    now_s:
        Monotonic time, seconds.
    p_stress:
        The stress stage's probability in [0, 1], or None when unknown.
    quality:
        Signal quality of the metrics window in [0, 1], or None when unknown.
    base:
        The calm-state sound (user's soundscape, time-of-day brightness, ...).
    cfg:
        Rules.
    why_unknown:
        Why ``p_stress`` is None (for the hold note).

    Returns
    -------
    StressResponseUpdate
        New state, causes of the targets that moved, notes when the hold starts or ends.
    """
    if p_stress is not None and not (math.isfinite(p_stress) and 0.0 <= p_stress <= 1.0):
        raise InputDataError("p_stress", "a probability in [0, 1] or None", p_stress)
    dt = 0.0 if state.t_s is None else max(0.0, now_s - state.t_s)
    s = dataclasses.replace(state, t_s=now_s)
    if not s.soundscape:
        s = dataclasses.replace(s, soundscape=base.soundscape)
    notes: list[Adaptation] = []
    trusted = p_stress is not None and quality is not None and quality >= cfg.quality_min
    if not trusted:
        if not s.holding:
            if p_stress is None:
                why = f"no stress estimate ({why_unknown})" if why_unknown else "no stress estimate"
            else:
                shown = "unknown" if quality is None else f"{quality:.2f}"
                why = f"signal quality {shown} < {cfg.quality_min:.2f}"
            notes.append(Adaptation.note(f"stress response holds: {why}"))
        s = dataclasses.replace(s, holding=True)
    else:
        assert p_stress is not None
        if s.holding:
            notes.append(Adaptation.note("stress response resumes: trusted estimates again"))
        alpha = 1.0 - math.exp(-dt / cfg.tau_s) if s.level is not None else 1.0
        level = p_stress if s.level is None else s.level + alpha * (p_stress - s.level)
        stressed = s.stressed
        if not stressed and level >= cfg.enter_stressed:
            stressed = True
        elif stressed and level <= cfg.leave_stressed:
            stressed = False
        stressed_s = s.stressed_s + dt if stressed and s.stressed else 0.0
        s = dataclasses.replace(
            s, holding=False, level=level, stressed=stressed, stressed_s=stressed_s
        )

    level = s.level if s.level is not None else 0.0
    causes: dict[str, str] = {}
    before = s.announced_level
    if before is not None and abs(level - before) >= 0.01:
        cause_level = f"p_stress {before:.2f} -> {level:.2f}"
    else:
        cause_level = f"calm setting of {s.soundscape} for this hour (p_stress {level:.2f})"
    lo, hi = base.brightness_min, base.brightness_max
    brightness = _quantised(
        s.brightness, max(lo, min(hi, base.brightness - cfg.brightness_drop * level)), cfg.step
    )
    intensity = _quantised(
        s.intensity, max(0.0, min(1.0, base.intensity + cfg.masking_rise * level)), cfg.step
    )
    tempo: float | None = None
    if base.tempo_bpm is not None:
        desired = base.tempo_bpm * (1.0 - cfg.pulse_slowdown * level)
        if base.tempo_min_bpm is not None:
            desired = max(base.tempo_min_bpm, desired)
        tempo = _quantised(s.tempo_bpm, desired, cfg.tempo_step_bpm)
    moved = False
    for name, old, new in (
        ("brightness", s.brightness, brightness),
        ("intensity", s.intensity, intensity),
        ("tempo_bpm", s.tempo_bpm, tempo),
    ):
        if old is not None and new is not None and abs(new - old) > _EPS:
            causes[name] = cause_level
            moved = True
    s = dataclasses.replace(
        s,
        brightness=brightness,
        intensity=intensity,
        tempo_bpm=tempo,
        announced_level=level if (moved or s.announced_level is None) else s.announced_level,
    )

    want = base.soundscape
    if cfg.masking_soundscape and s.stressed and s.stressed_s >= cfg.stressed_for_s:
        want = cfg.masking_soundscape
    free = s.last_switch_s is None or now_s - s.last_switch_s >= cfg.switch_interval_s
    if want != s.soundscape and free and not s.holding:
        if want == cfg.masking_soundscape:
            causes["soundscape"] = (
                f"stressed for {format_duration(s.stressed_s)} (p_stress {level:.2f})"
            )
        else:
            causes["soundscape"] = f"stress eased (p_stress {level:.2f})"
        s = dataclasses.replace(s, soundscape=want, last_switch_s=now_s)
    return StressResponseUpdate(s, causes, tuple(notes))
