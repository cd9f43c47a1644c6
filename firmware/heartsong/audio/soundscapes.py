"""The soundscape presets as data: nine mixes of the engine's generators, loudness-matched.

What a preset may contain (layers, ranges, tuning) is defined in
``heartsong.audio.soundscape_model``; its types are re-exported here.

Each preset's ``trim_db`` brings it, at its default controls and 0 dB volume, to
``TARGET_LOUDNESS_LUFS`` (ITU-R BS.1770 integrated loudness); ``heartsong soundscapes
--measure`` measures them again and prints the trims to write here after a change to a
generator or a mix, and ``tests/test_audio_loudness.py`` fails when a preset drifts by
more than 1 LU, so switching presets never jumps in level.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from heartsong.audio.soundscape_model import SOURCES, Layer, ParamRange, Soundscape
from heartsong.errors import InputDataError

__all__ = ["PRESETS", "SOURCES", "Layer", "ParamRange", "Soundscape", "get_preset"]

_OCEAN = Soundscape(
    name="ocean",
    description="Waves rolling in every 8 to 14 seconds over a low rumble of surf.",
    layers=(
        Layer("ocean", gain=1.0, intensity_depth=0.4),
        Layer("brown", gain=0.35, intensity_depth=0.6),
    ),
    brightness=ParamRange(0.1, 0.8, 0.45),
    breath_depth=0.35,
    trim_db=0.0,
)

_RAIN = Soundscape(
    name="rain",
    description="Steady rain on leaves: a soft hiss, drops close by and a distant rumble.",
    layers=(
        Layer("rain", gain=1.0, intensity_depth=0.4),
        Layer("brown", gain=0.3, intensity_depth=0.5),
        Layer("pink", gain=0.12, intensity_depth=0.7),
    ),
    brightness=ParamRange(0.3, 1.0, 0.6),
    breath_depth=0.3,
    trim_db=-12.7,
)

_FOREST_NIGHT = Soundscape(
    name="forest_night",
    description="Wind in the trees at night, a brook nearby and two crickets, one each side.",
    layers=(
        Layer("wind", gain=0.55, intensity_depth=0.5),
        Layer("crickets", gain=0.3, intensity_depth=0.6),
        Layer("stream", gain=0.3, intensity_depth=0.5),
        Layer("brown", gain=0.2, intensity_depth=0.5),
    ),
    brightness=ParamRange(0.1, 0.7, 0.35),
    breath_depth=0.35,
    trim_db=-4.7,
)

_BROWN_NOISE = Soundscape(
    name="brown_noise",
    description="Deep, steady brown noise with a breath of pink air on top.",
    layers=(
        Layer("brown", gain=1.0, intensity_depth=0.3),
        Layer("pink", gain=0.12, intensity_depth=0.8),
    ),
    brightness=ParamRange(0.0, 0.6, 0.3),
    breath_depth=0.5,
    trim_db=-2.0,
)

_WARM_DRONE = Soundscape(
    name="warm_drone",
    description="A warm pad in just intonation drifting through four chords over a soft pulse.",
    layers=(
        Layer("pad", gain=1.0, intensity_depth=0.3),
        Layer("pulse", gain=0.3, intensity_depth=0.8),
        Layer("brown", gain=0.15, intensity_depth=0.5),
    ),
    brightness=ParamRange(0.1, 0.7, 0.35),
    tempo_bpm=ParamRange(40.0, 72.0, 56.0),
    breath_depth=0.45,
    root_hz=130.81,
    intonation="just",
    trim_db=-8.1,
)

_BINAURAL_SLEEP = Soundscape(
    name="binaural_sleep",
    description="Binaural beats on a 200 Hz tone under brown noise, from alpha down to delta.",
    layers=(
        Layer("binaural", gain=0.7, intensity_depth=0.2),
        Layer("brown", gain=0.7, intensity_depth=0.4),
        Layer("pink", gain=0.08, intensity_depth=0.8),
    ),
    brightness=ParamRange(0.0, 0.5, 0.25),
    beat_hz=ParamRange(1.0, 12.0, 6.0),
    breath_depth=0.3,
    carrier_hz=200.0,
    trim_db=-6.7,
)

_MOUNTAIN_STREAM = Soundscape(
    name="mountain_stream",
    description="A bubbling mountain brook with a light breeze.",
    layers=(
        Layer("stream", gain=1.0, intensity_depth=0.4),
        Layer("wind", gain=0.25, intensity_depth=0.6),
        Layer("pink", gain=0.1, intensity_depth=0.7),
    ),
    brightness=ParamRange(0.2, 0.9, 0.5),
    breath_depth=0.3,
    trim_db=-9.6,
)

_ALPHA_PULSES = Soundscape(
    name="alpha_pulses",
    description="Isochronic alpha pulses on a 300 Hz tone inside a pentatonic pad.",
    layers=(
        Layer("isochronic", gain=0.45, intensity_depth=0.5),
        Layer("pad", gain=0.8, intensity_depth=0.3),
        Layer("pink", gain=0.15, intensity_depth=0.6),
    ),
    brightness=ParamRange(0.2, 0.8, 0.5),
    tempo_bpm=ParamRange(40.0, 80.0, 60.0),
    beat_hz=ParamRange(8.0, 13.0, 10.0),
    breath_depth=0.35,
    root_hz=196.0,
    intonation="pentatonic",
    carrier_hz=300.0,
    trim_db=-7.4,
)

_EVOLVING_GARDEN = Soundscape(
    name="evolving_garden",
    description=(
        "Music composed as it plays: a pentatonic melody over slowly moving just chords "
        "that wander through related keys, never looping."
    ),
    layers=(
        Layer("composer", gain=1.0, intensity_depth=0.25),
        Layer("brown", gain=0.12, intensity_depth=0.5),
    ),
    brightness=ParamRange(0.1, 0.8, 0.35),
    tempo_bpm=ParamRange(40.0, 72.0, 54.0),
    breath_depth=0.35,
    trim_db=-4.2,
)

#: The presets by name, in the order of the engine's preset table.
PRESETS: Final[Mapping[str, Soundscape]] = MappingProxyType(
    {
        preset.name: preset
        for preset in (
            _OCEAN,
            _RAIN,
            _FOREST_NIGHT,
            _BROWN_NOISE,
            _WARM_DRONE,
            _BINAURAL_SLEEP,
            _MOUNTAIN_STREAM,
            _ALPHA_PULSES,
            _EVOLVING_GARDEN,
        )
    }
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
