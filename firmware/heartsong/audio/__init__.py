"""Calming audio: numba synthesis kernels, soundscape presets, the engine and its sinks.

``AudioEngine`` renders click-free, allocation-free audio from targets published by the
control side; a sink takes it to a speaker (``PyAudioSink``, which reopens a lost device),
a WAV file (``WavSink``) or nowhere (``NullSink``). PyAudio is imported only when a
``PyAudioSink`` is made or the output devices are listed.
"""

from __future__ import annotations

from heartsong.audio.engine import AudioEngine
from heartsong.audio.sinks import (
    NullSink,
    PyAudioSink,
    Sink,
    WavSink,
    list_output_devices,
)
from heartsong.audio.soundscape_model import Layer, ParamRange, Soundscape
from heartsong.audio.soundscapes import PRESETS, get_preset

__all__ = [
    "PRESETS",
    "AudioEngine",
    "Layer",
    "NullSink",
    "ParamRange",
    "PyAudioSink",
    "Sink",
    "Soundscape",
    "WavSink",
    "get_preset",
    "list_output_devices",
]
