"""The therapy policy as pure functions: (inputs) -> (sound targets, reasons).

:func:`decide` turns the user's settings, the session's progress and, in closed loop, the
:class:`Guidance` of the therapy's state machines (pacer, stress response, sleep onset;
see :class:`heartsong.therapy.controller.TherapyController`) into the targets of the audio
engine, and explains every target that differs from the previous decision with a sentence
(an :class:`~heartsong.therapy.explain.Adaptation`).

Without guidance it is the open-loop policy of the foundation: the configured soundscape
and volume, a breath pacer at the configured rate in ``wind_down`` and ``calm``, no pacer
and ``SLEEP_ATTENUATION_DB`` less volume in ``sleep`` (low masking sound), and the sleep
timer's fade.

Modes: ``wind_down`` (evening, towards sleep), ``calm`` (stress relief at any hour),
``sleep`` (after sleep onset: low masking sound or silence). :func:`calm_base` gives the
calm-state sound for the time of day: darker at night (Endel, for example, adapts its
sound to the hour) and, in ``wind_down``, darker as the session goes on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from heartsong.audio.soundscapes import get_preset
from heartsong.events import Metrics, Mode, SoundTargets
from heartsong.therapy.explain import Adaptation
from heartsong.therapy.stress_response import SoundBase

__all__ = [
    "NIGHT_DARKENING",
    "SLEEP_ATTENUATION_DB",
    "WIND_DOWN_DARKENING",
    "WIND_DOWN_S",
    "Decision",
    "Guidance",
    "PolicyInput",
    "PolicySettings",
    "calm_base",
    "decide",
    "night_factor",
    "timer_done",
]

#: Sleep mode plays this much below the configured volume, in dB (masking, not music).
SLEEP_ATTENUATION_DB = 8.0
#: Brightness removed at full night (0..1 units).
NIGHT_DARKENING = 0.15
#: Brightness removed over a wind-down session (0..1 units) ...
WIND_DOWN_DARKENING = 0.1
#: ... within this many seconds.
WIND_DOWN_S = 1800.0
#: Intensity of the calm-state sound (0..1), the engine's default.
BASE_INTENSITY = 0.5


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What the user chose (config, buttons, MQTT)."""

    mode: Mode
    soundscape: str
    volume_db: float
    breath_rate_bpm: float
    sleep_timer_s: float  # 0 = off
    playing: bool = True


@dataclass(frozen=True, slots=True)
class Guidance:
    """What the closed loop asks for beyond the user's settings.

    Attributes
    ----------
    mode:
        The session's mode now (the user's, or ``sleep`` after sleep onset).
    pacer_bpm:
        Pacer rate in breaths/min, or None for none.
    soundscape, brightness, intensity, tempo_bpm:
        Sound controls (None: the user's soundscape / the engine's default level).
    volume_offset_db:
        Added to the user's volume, dB (the sleep fade; <= 0).
    playing:
        False once a fade to silence has finished.
    causes:
        Target field -> why it has its value, for the reasons of changes.
    """

    mode: Mode
    pacer_bpm: float | None
    soundscape: str | None = None
    brightness: float | None = None
    intensity: float | None = None
    tempo_bpm: float | None = None
    volume_offset_db: float = 0.0
    playing: bool = True
    causes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """Everything the policy may look at for one decision.

    ``metrics`` is the latest update (the closed loop has already read it into the
    guidance); ``wall_s`` is the Unix time (for the time of day) or None.
    """

    settings: PolicySettings
    session_elapsed_s: float
    metrics: Metrics | None = None
    guidance: Guidance | None = None
    wall_s: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The targets for the audio engine and why they differ from the previous ones.

    ``reasons`` are the sentences of ``adaptations`` (plus those of the foundation's own
    changes); ``tempo_bpm`` is the pulse tempo for presets that have one (None: the
    preset's own); ``mode`` is the session's mode now.
    """

    targets: SoundTargets
    reasons: tuple[str, ...]
    tempo_bpm: float | None = None
    mode: Mode | None = None
    adaptations: tuple[Adaptation, ...] = ()


def night_factor(wall_s: float) -> float:
    """How much it is night at Unix time ``wall_s`` (local time), 0..1.

    0 from 07:00 to 19:00, rising linearly to 1 at 23:00, 1 until 05:00, falling to 0 at
    07:00.
    """
    t = dt.datetime.fromtimestamp(wall_s).astimezone()
    h = t.hour + t.minute / 60.0 + t.second / 3600.0
    if 7.0 <= h < 19.0:
        return 0.0
    if 19.0 <= h < 23.0:
        return (h - 19.0) / 4.0
    if h >= 23.0 or h < 5.0:
        return 1.0
    return (7.0 - h) / 2.0


def calm_base(
    soundscape: str, playing_preset: str, mode: Mode, wall_s: float | None, elapsed_s: float
) -> SoundBase:
    """The calm-state sound: the user's soundscape, and the controls of the preset playing.

    Brightness starts at the preset's default and is lowered by ``NIGHT_DARKENING`` times
    :func:`night_factor` and, in ``wind_down``, by up to ``WIND_DOWN_DARKENING`` over
    ``WIND_DOWN_S`` of the session; it stays within the preset's range. Tempo is the
    preset's default (None for presets without a pulse).
    """
    preset = get_preset(playing_preset)
    rng = preset.brightness
    bright = rng.default if rng.default is not None else 0.5 * (rng.lo + rng.hi)
    if wall_s is not None:
        bright -= NIGHT_DARKENING * night_factor(wall_s)
    if mode == "wind_down":
        bright -= WIND_DOWN_DARKENING * min(1.0, max(0.0, elapsed_s) / WIND_DOWN_S)
    bright = min(rng.hi, max(rng.lo, bright))
    tempo: float | None = None
    tempo_lo: float | None = None
    if preset.tempo_bpm is not None:
        t = preset.tempo_bpm
        tempo = t.default if t.default is not None else 0.5 * (t.lo + t.hi)
        tempo_lo = t.lo
    return SoundBase(
        soundscape, round(bright, 3), BASE_INTENSITY, tempo, tempo_lo, rng.lo, rng.hi
    )


def timer_done(s: PolicySettings, elapsed_s: float) -> bool:
    """Whether the sleep timer has run out ``elapsed_s`` seconds into the session."""
    return s.sleep_timer_s > 0 and elapsed_s >= s.sleep_timer_s


_DEFAULT_CAUSES: dict[str, str] = {
    "soundscape": "user choice",
    "volume_db": "user setting",
    "breath_rate_bpm": "user setting",
    "brightness": "calm setting",
    "intensity": "calm setting",
}


def decide(
    inp: PolicyInput, previous: SoundTargets | None, *, previous_tempo_bpm: float | None = None
) -> Decision:
    """Compute sound targets from the settings, the session's progress and the guidance.

    Parameters
    ----------
    inp:
        Settings, session time in seconds, the latest metrics and, in closed loop, the
        guidance of the therapy's state machines.
    previous:
        The targets in force, or None at session start; used only to explain changes.
    previous_tempo_bpm:
        The tempo in force (to explain a tempo change).

    Returns
    -------
    Decision
        Targets, and one reason per target that changed (or the session-start sentence).
    """
    s = inp.settings
    g = inp.guidance
    mode: Mode = g.mode if g is not None else s.mode
    timer_over = timer_done(s, inp.session_elapsed_s)
    playing = s.playing and not timer_over and (g is None or g.playing)
    volume_db = s.volume_db + (g.volume_offset_db if g is not None else 0.0)
    if mode == "sleep":
        volume_db -= SLEEP_ATTENUATION_DB
    pacer: float | None
    if g is not None:
        pacer = g.pacer_bpm
    elif mode == "sleep":
        pacer = None
    else:
        pacer = s.breath_rate_bpm
    defaults = SoundTargets(s.soundscape)
    targets = SoundTargets(
        soundscape=(g.soundscape if g is not None and g.soundscape else s.soundscape),
        playing=playing,
        volume_db=volume_db,
        intensity=(
            g.intensity if g is not None and g.intensity is not None else defaults.intensity
        ),
        brightness=(
            g.brightness if g is not None and g.brightness is not None else defaults.brightness
        ),
        breath_rate_bpm=pacer,
    )
    tempo = g.tempo_bpm if g is not None else None
    causes: Mapping[str, str] = g.causes if g is not None else {}

    reasons: list[str] = []
    adaptations: list[Adaptation] = []
    if previous is None:
        pace = "no pacer" if pacer is None else f"pacer {pacer:.1f}/min"
        reasons.append(
            f"session start: {mode} mode, {targets.soundscape} at {volume_db:.0f} dB, {pace}"
        )
        return Decision(targets, tuple(reasons), tempo, mode, ())

    if previous.playing and not playing:
        if timer_over:
            reasons.append(f"sleep timer: {s.sleep_timer_s / 60:.0f} min elapsed, fading out")
        elif not s.playing:
            reasons.append("sound paused by the user")
        else:
            adaptations.append(
                Adaptation("playing", True, False, causes.get("playing", "faded out"))
            )
    elif playing and not previous.playing:
        adaptations.append(
            Adaptation("playing", False, True, causes.get("playing", "user setting"))
        )
    for name in ("soundscape", "volume_db", "breath_rate_bpm", "brightness", "intensity"):
        before = getattr(previous, name)
        after = getattr(targets, name)
        if before != after:
            cause = causes.get(name, _DEFAULT_CAUSES[name])
            adaptations.append(Adaptation(name, before, after, cause))
    if g is not None and tempo != previous_tempo_bpm:
        # from none too: a switch to a preset with a pulse starts one, and says why
        default = "soundscape with a pulse" if previous_tempo_bpm is None else ""
        adaptations.append(
            Adaptation("tempo_bpm", previous_tempo_bpm, tempo, causes.get("tempo_bpm", default))
        )
    reasons.extend(a.message for a in adaptations)
    return Decision(targets, tuple(reasons), tempo, mode, tuple(adaptations))
