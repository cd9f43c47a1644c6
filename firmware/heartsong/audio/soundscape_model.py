"""What a soundscape is, as data: its layers, its tuning, and what therapy may move.

A :class:`Soundscape` is a frozen description, not code: a mix of layers (each one of the
engine's generators in ``SOURCES`` at a linear gain), the pitch material of its tonal
layers, a loudness trim, and for each of the six therapy-movable controls the range within
which the policy may move it (``None`` when the control does nothing in this preset). The
presets themselves are in ``heartsong.audio.soundscapes``; the engine turns them into a numeric
table once at start-up and the audio callback only reads that table.

Controls and their meaning
--------------------------
``volume_db``
    Master volume in dBFS (the engine's ceiling applies on top); at 0 dB every preset
    plays at ``TARGET_LOUDNESS_LUFS`` (loudness-matched through ``trim_db``).
``intensity`` (0..1)
    Scales each layer between ``gain * (1 - intensity_depth)`` and ``gain`` and makes the
    textures busier (deeper swell, more drops and bubbles, stronger gusts, wider detune).
``brightness`` (0..1)
    Low-pass cutoff on the noise bed and the pad (150 Hz to 12 kHz, exponential) and the
    textures' own filters and pitches.
``tempo_bpm``
    Beats per minute of the soft pulse; the pad changes chord every 16 beats.
``breath_rate_bpm``
    Breath pacer rate in breaths per minute (or off); the mix swells on the inhale and ebbs
    on the exhale by ``breath_depth``.
``beat_hz``
    Binaural beat or isochronic pulse rate in Hz (delta 0.5-4, theta 4-8, alpha 8-13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

from heartsong.audio.harmony import INTONATIONS, Intonation
from heartsong.errors import InputDataError, check_number

__all__ = [
    "BEAT_SOURCES",
    "BOUNDS",
    "FILTERED_SOURCES",
    "MOVABLE",
    "SOURCES",
    "TARGET_LOUDNESS_LUFS",
    "TEMPO_SOURCES",
    "Layer",
    "LayerSource",
    "ParamRange",
    "Soundscape",
]

LayerSource = Literal[
    "white",
    "pink",
    "brown",
    "pad",
    "ocean",
    "rain",
    "wind",
    "stream",
    "crickets",
    "binaural",
    "isochronic",
    "pulse",
    "composer",
]
#: The engine's generators, in the order of its source table.
SOURCES: Final[tuple[LayerSource, ...]] = (
    "white",
    "pink",
    "brown",
    "pad",
    "ocean",
    "rain",
    "wind",
    "stream",
    "crickets",
    "binaural",
    "isochronic",
    "pulse",
    "composer",
)
#: Generators that go through the brightness low-pass (the others shape their own tone).
FILTERED_SOURCES: Final[tuple[LayerSource, ...]] = ("white", "pink", "brown", "pad")
#: Generators that follow ``tempo_bpm``.
TEMPO_SOURCES: Final[tuple[LayerSource, ...]] = ("pad", "pulse", "composer")
#: Generators that follow ``beat_hz``.
BEAT_SOURCES: Final[tuple[LayerSource, ...]] = ("binaural", "isochronic")

#: The six controls therapy may move, in display order.
MOVABLE: Final = (
    "volume_db",
    "intensity",
    "brightness",
    "tempo_bpm",
    "breath_rate_bpm",
    "beat_hz",
)
#: The widest range any preset may allow for each control (units in the names).
BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "volume_db": (-90.0, 0.0),
    "intensity": (0.0, 1.0),
    "brightness": (0.0, 1.0),
    "tempo_bpm": (30.0, 120.0),
    "breath_rate_bpm": (3.0, 20.0),
    "beat_hz": (0.5, 30.0),
}
#: Integrated loudness (ITU-R BS.1770) of every preset at its defaults and 0 dB volume.
TARGET_LOUDNESS_LUFS: Final = -20.0

#: Accepted root (pad, pulse) and carrier (binaural, isochronic) frequencies in Hz.
ROOT_BOUNDS_HZ: Final = (40.0, 500.0)
CARRIER_BOUNDS_HZ: Final = (60.0, 1000.0)


@dataclass(frozen=True, slots=True)
class ParamRange:
    """A closed interval ``[lo, hi]`` of allowed values and the value used when none is set.

    ``default`` None means the middle of the range. Units are the parameter's.
    """

    lo: float
    hi: float
    default: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo <= self.hi):
            raise InputDataError("range", "finite bounds with lo <= hi", (self.lo, self.hi))
        if self.default is not None and not self.lo <= self.default <= self.hi:
            raise InputDataError(
                "range.default", f"a value within {self.lo:g}..{self.hi:g}", self.default
            )

    @property
    def value(self) -> float:
        """The default value: ``default``, or the middle of the range."""
        return self.default if self.default is not None else 0.5 * (self.lo + self.hi)

    def clamp(self, value: float) -> float:
        """``value`` limited to ``[lo, hi]``."""
        return min(max(value, self.lo), self.hi)

    def within(self, lo: float, hi: float) -> bool:
        """True when this range lies inside ``[lo, hi]``."""
        return lo <= self.lo and self.hi <= hi


@dataclass(frozen=True, slots=True)
class Layer:
    """One generator in a soundscape's mix.

    Attributes
    ----------
    source:
        Which generator (one of ``SOURCES``).
    gain:
        Linear amplitude at full intensity (every generator has an RMS of about -12 dBFS).
    intensity_depth:
        0..1: how much ``intensity`` scales this layer; 0 = always at ``gain``, 1 = silent
        at intensity 0.
    """

    source: LayerSource
    gain: float
    intensity_depth: float = 0.5

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputDataError("layer.source", f"one of {', '.join(SOURCES)}", self.source)
        if not (math.isfinite(self.gain) and 0.0 <= self.gain <= 4.0):
            raise InputDataError("layer.gain", "a linear gain from 0 to 4", self.gain)
        check_number("layer.intensity_depth", self.intensity_depth, 0.0, 1.0)


def _default_breath() -> ParamRange:
    return ParamRange(*BOUNDS["breath_rate_bpm"], default=6.0)


@dataclass(frozen=True, slots=True)
class Soundscape:
    """A preset: its layers, tuning, loudness trim and the ranges therapy may move.

    Attributes
    ----------
    name:
        Preset name as used in config, MQTT and ``SoundTargets.soundscape``.
    description:
        One sentence for people (Home Assistant, ``heartsong soundscapes``).
    layers:
        The mix; at most one layer per source.
    intensity, brightness:
        Allowed ranges within 0..1.
    breath_rate_bpm:
        Allowed pacing rates in breaths per minute, within ``BOUNDS``.
    volume_db:
        Allowed master volume in dBFS, within ``BOUNDS``.
    tempo_bpm:
        Allowed tempo in beats per minute; required exactly when a layer follows the tempo
        (``TEMPO_SOURCES``), else None.
    beat_hz:
        Allowed beat rate in Hz; required exactly when a layer follows it
        (``BEAT_SOURCES``), else None.
    breath_depth:
        0..1: how far the pacer lowers the level at the end of each exhale.
    root_hz:
        Root of the pad's chords in Hz (the pulse sounds an octave below it).
    intonation:
        The pad's tuning and progression (``heartsong.audio.harmony``).
    carrier_hz:
        Tone of the binaural beats and isochronic pulses in Hz.
    trim_db:
        Gain in dB that brings the preset at its defaults to ``TARGET_LOUDNESS_LUFS`` at
        0 dB volume (measured with ``heartsong soundscapes --measure``).
    """

    name: str
    description: str
    layers: tuple[Layer, ...]
    intensity: ParamRange = field(default_factory=lambda: ParamRange(0.0, 1.0))
    brightness: ParamRange = field(default_factory=lambda: ParamRange(0.0, 1.0))
    breath_rate_bpm: ParamRange = field(default_factory=_default_breath)
    volume_db: ParamRange = field(default_factory=lambda: ParamRange(-60.0, -6.0, -20.0))
    tempo_bpm: ParamRange | None = None
    beat_hz: ParamRange | None = None
    breath_depth: float = 0.5
    root_hz: float = 130.81
    intonation: Intonation = "just"
    carrier_hz: float = 200.0
    trim_db: float = 0.0

    def __post_init__(self) -> None:
        if not self.layers:
            raise InputDataError(f"{self.name}.layers", "at least one layer")
        sources = [layer.source for layer in self.layers]
        if len(set(sources)) != len(sources):
            raise InputDataError(f"{self.name}.layers", "at most one layer per source", sources)
        for label, group in (("tempo_bpm", TEMPO_SOURCES), ("beat_hz", BEAT_SOURCES)):
            needed = any(s in group for s in sources)
            given = getattr(self, label) is not None
            if needed != given:
                expected = (
                    f"a range, because a layer follows it ({', '.join(group)})"
                    if needed
                    else f"None, because no layer follows it ({', '.join(group)})"
                )
                raise InputDataError(f"{self.name}.{label}", expected, getattr(self, label))
        for label, rng in self.ranges().items():
            if rng is None:
                continue
            lo, hi = BOUNDS[label]
            if not rng.within(lo, hi):
                raise InputDataError(
                    f"{self.name}.{label}", f"a range within {lo:g}..{hi:g}", rng
                )
        check_number(f"{self.name}.breath_depth", self.breath_depth, 0.0, 1.0)
        for label, value, (lo, hi) in (
            ("root_hz", self.root_hz, ROOT_BOUNDS_HZ),
            ("carrier_hz", self.carrier_hz, CARRIER_BOUNDS_HZ),
            ("trim_db", self.trim_db, (-40.0, 40.0)),
        ):
            check_number(f"{self.name}.{label}", value, lo, hi)
        if self.intonation not in INTONATIONS:
            raise InputDataError(
                f"{self.name}.intonation", f"one of {', '.join(INTONATIONS)}", self.intonation
            )

    def ranges(self) -> dict[str, ParamRange | None]:
        """The six movable controls (``MOVABLE`` order) and their ranges (None = no effect)."""
        return {name: getattr(self, name) for name in MOVABLE}

    def defaults(self) -> dict[str, float]:
        """The default value of every control that has an effect in this preset."""
        return {name: rng.value for name, rng in self.ranges().items() if rng is not None}

    def layer_gain(self, source: LayerSource) -> tuple[float, float]:
        """``(gain, intensity_depth)`` of ``source`` in this mix; ``(0, 0)`` if absent."""
        for layer in self.layers:
            if layer.source == source:
                return layer.gain, layer.intensity_depth
        return 0.0, 0.0
