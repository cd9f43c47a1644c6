"""Loudness matching of the presets: render each one offline, measure it, derive its trim.

A preset's loudness is measured at its default controls with the breath pacer off, at
``REFERENCE_VOLUME_DB`` (far below the limiter's knee, so the limiter cannot colour the
measurement), then referred to 0 dB volume. The trim that brings it to
``TARGET_LOUDNESS_LUFS`` is its current ``trim_db`` plus the difference. Used by
``heartsong soundscapes --measure`` and by the loudness test; never at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from heartsong.audio.engine import AudioEngine
from heartsong.audio.loudness import integrated_loudness
from heartsong.audio.soundscape_model import TARGET_LOUDNESS_LUFS, Soundscape
from heartsong.audio.soundscapes import PRESETS
from heartsong.errors import InputDataError

__all__ = ["REFERENCE_VOLUME_DB", "PresetLoudness", "measure_presets", "preset_loudness"]

#: Master volume in dBFS at which presets are measured.
REFERENCE_VOLUME_DB: Final = -30.0
#: Seconds rendered and discarded before measuring (fade-in, filter and swell start-up).
SETTLE_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class PresetLoudness:
    """One preset's measured loudness and the trim that matches it to the target.

    Attributes
    ----------
    name:
        The preset.
    lufs:
        Integrated loudness in LUFS at its defaults and 0 dB volume, with its current trim.
    trim_db:
        The ``trim_db`` that would put it at the target (current trim + target - lufs).
    """

    name: str
    lufs: float
    trim_db: float


def preset_loudness(
    name: str,
    seconds: float = 60.0,
    seed: int = 0,
    presets: Mapping[str, Soundscape] = PRESETS,
    sample_rate_hz: int = 48000,
) -> float:
    """Integrated loudness in LUFS of preset ``name`` at its defaults and 0 dB volume.

    Parameters
    ----------
    name:
        Preset name.
    seconds:
        Audio measured in seconds (after ``SETTLE_S``), at least 0.4; a minute covers
        several ocean waves and most of a pad progression, for a figure stable to about
        0.2 LU.
    seed:
        Seed of the engine's generators.
    presets:
        Where ``name`` is looked up.
    sample_rate_hz:
        Rendering rate in Hz.

    Raises
    ------
    InputDataError
        Unknown preset, or ``seconds`` shorter than one gating block.
    """
    if name not in presets:
        raise InputDataError("soundscape", f"one of {', '.join(map(repr, presets))}", name)
    if not seconds >= 0.4:
        raise InputDataError("seconds", "at least 0.4 s", seconds)
    preset = presets[name]
    engine = AudioEngine(
        sample_rate_hz=sample_rate_hz, max_volume_db=0.0, fade_s=0.1, seed=seed, presets=presets
    )
    defaults = preset.defaults()
    defaults.pop("breath_rate_bpm", None)
    defaults["volume_db"] = REFERENCE_VOLUME_DB
    engine.set_params(soundscape=name, playing=True, breath_rate_bpm=None, **defaults)
    block = np.zeros((engine.buffer_frames, 2), dtype=np.float32)
    for _ in range(engine.frames_for(SETTLE_S) // engine.buffer_frames):
        engine.render(block)
    out = np.zeros((engine.frames_for(seconds), 2), dtype=np.float32)
    for start in range(0, out.shape[0], engine.buffer_frames):
        engine.render(out[start : start + engine.buffer_frames])
    return integrated_loudness(out, sample_rate_hz) - REFERENCE_VOLUME_DB


def measure_presets(
    seconds: float = 60.0,
    seed: int = 0,
    presets: Mapping[str, Soundscape] = PRESETS,
    target_lufs: float = TARGET_LOUDNESS_LUFS,
) -> list[PresetLoudness]:
    """Loudness of every preset and the trims that would match them to ``target_lufs``."""
    found = []
    for name, preset in presets.items():
        lufs = preset_loudness(name, seconds, seed, presets)
        found.append(PresetLoudness(name, lufs, round(preset.trim_db + target_lufs - lufs, 1)))
    return found
