"""Soundscape presets as data: which noise layers play, how loud, and what therapy may move.

A :class:`Soundscape` is a frozen description, not code: a mix of layers (each one of the
engine's generators in ``SOURCES`` at a linear gain) and the ranges within which the
therapy policy may move the engine's four controls. The engine turns the presets into a
numeric table once at start-up; the callback only reads that table.

Controls and their meaning
--------------------------
``intensity`` (0..1)
    Scales each layer between ``gain * (1 - intensity_depth)`` and ``gain`` and deepens
    the ocean swell.
``brightness`` (0..1)
    Cutoff of the low-pass on the mix, exponentially from 150 Hz to 12 kHz.
``breath_rate_bpm`` (3..20, or off)
    Breath pacer rate; the mix swells on the inhale and ebbs on the exhale by
    ``breath_depth``.
``volume_db``
    Master volume in dBFS (the engine's ceiling applies on top).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from heartsong.errors import InputDataError

__all__ = [
    "BREATH_RATE_BOUNDS_BPM",
    "PRESETS",
    "SOURCES",
    "Layer",
    "LayerSource",
    "ParamRange",
    "Soundscape",
    "get_preset",
]

LayerSource = Literal["white", "pink", "brown", "ocean"]
#: The engine's generators, in the order of its source table.
SOURCES: Final[tuple[LayerSource, ...]] = ("white", "pink", "brown", "ocean")
#: Widest breath-pacing range any preset may allow, in breaths per minute.
BREATH_RATE_BOUNDS_BPM: Final = (3.0, 20.0)
#: Widest master-volume range any preset may allow, in dBFS.
VOLUME_BOUNDS_DB: Final = (-90.0, 0.0)


@dataclass(frozen=True, slots=True)
class ParamRange:
    """A closed interval ``[lo, hi]`` of allowed values (units as the parameter's)."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo <= self.hi):
            raise InputDataError("range", "finite bounds with lo <= hi", (self.lo, self.hi))

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
        Linear amplitude at full intensity (every generator has an RMS of -12 dBFS).
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
        if not 0.0 <= self.intensity_depth <= 1.0:
            raise InputDataError(
                "layer.intensity_depth", "a number from 0 to 1", self.intensity_depth
            )


@dataclass(frozen=True, slots=True)
class Soundscape:
    """A preset: its layers and the ranges within which therapy may move the controls.

    Attributes
    ----------
    name:
        Preset name as used in config, MQTT and ``SoundTargets.soundscape``.
    description:
        One sentence for people (Home Assistant, ``heartsong doctor``).
    layers:
        The mix; at most one layer per source.
    intensity, brightness:
        Allowed ranges within 0..1.
    breath_rate_bpm:
        Allowed pacing rates in breaths per minute, within ``BREATH_RATE_BOUNDS_BPM``.
    volume_db:
        Allowed master volume in dBFS, within ``VOLUME_BOUNDS_DB``.
    breath_depth:
        0..1: how far the pacer lowers the level at the end of each exhale.
    """

    name: str
    description: str
    layers: tuple[Layer, ...]
    intensity: ParamRange = field(default_factory=lambda: ParamRange(0.0, 1.0))
    brightness: ParamRange = field(default_factory=lambda: ParamRange(0.0, 1.0))
    breath_rate_bpm: ParamRange = field(default_factory=lambda: ParamRange(*BREATH_RATE_BOUNDS_BPM))
    volume_db: ParamRange = field(default_factory=lambda: ParamRange(-60.0, -6.0))
    breath_depth: float = 0.5

    def __post_init__(self) -> None:
        if not self.layers:
            raise InputDataError(f"{self.name}.layers", "at least one layer")
        sources = [layer.source for layer in self.layers]
        if len(set(sources)) != len(sources):
            raise InputDataError(f"{self.name}.layers", "at most one layer per source", sources)
        for label, rng, bounds in (
            ("intensity", self.intensity, (0.0, 1.0)),
            ("brightness", self.brightness, (0.0, 1.0)),
            ("breath_rate_bpm", self.breath_rate_bpm, BREATH_RATE_BOUNDS_BPM),
            ("volume_db", self.volume_db, VOLUME_BOUNDS_DB),
        ):
            if not rng.within(*bounds):
                raise InputDataError(
                    f"{self.name}.{label}", f"a range within {bounds[0]:g}..{bounds[1]:g}", rng
                )
        if not 0.0 <= self.breath_depth <= 1.0:
            raise InputDataError(
                f"{self.name}.breath_depth", "a number from 0 to 1", self.breath_depth
            )

    def layer_gain(self, source: LayerSource) -> tuple[float, float]:
        """``(gain, intensity_depth)`` of ``source`` in this mix; ``(0, 0)`` if absent."""
        for layer in self.layers:
            if layer.source == source:
                return layer.gain, layer.intensity_depth
        return 0.0, 0.0


_OCEAN = Soundscape(
    name="ocean",
    description="Waves rolling in every 8 to 14 seconds over a low rumble of surf.",
    layers=(
        Layer("ocean", gain=1.0, intensity_depth=0.4),
        Layer("brown", gain=0.35, intensity_depth=0.6),
    ),
    brightness=ParamRange(0.1, 0.8),
    breath_depth=0.35,
)

_BROWN_NOISE = Soundscape(
    name="brown_noise",
    description="Deep, steady brown noise with a breath of pink air on top.",
    layers=(
        Layer("brown", gain=1.0, intensity_depth=0.3),
        Layer("pink", gain=0.12, intensity_depth=0.8),
    ),
    brightness=ParamRange(0.0, 0.6),
    breath_depth=0.5,
)

#: The presets by name, in the order of the engine's preset table.
PRESETS: Final[Mapping[str, Soundscape]] = MappingProxyType(
    {preset.name: preset for preset in (_OCEAN, _BROWN_NOISE)}
)


def get_preset(name: str) -> Soundscape:
    """The preset called ``name``.

    Raises
    ------
    InputDataError
        ``field="soundscape"`` when there is no such preset; the message lists them all.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise InputDataError(
            "soundscape", f"one of {', '.join(repr(n) for n in PRESETS)}", name
        ) from None
