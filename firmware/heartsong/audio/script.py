"""Session scripts: timed changes of controls and soundscapes, rendered offline.

A script is a JSON list of changes, each at a time ``t`` in seconds from the start of the
render::

    [{"t": 0, "set": {"intensity": 0.8, "breath_rate_bpm": 6}},
     {"t": 120, "soundscape": "rain"},
     {"t": 300, "set": {"beat_hz": 3, "volume_db": -30}}]

``set`` takes any control :meth:`AudioEngine.set_params` takes (``volume_db``,
``intensity``, ``brightness``, ``tempo_bpm``, ``breath_rate_bpm`` (null = off),
``beat_hz``, ``playing``); ``soundscape`` switches preset (with the engine's equal-power
crossfade). An entry may have both. :func:`render_script` plays such a session into a sink
exactly as the device would hear it, block for block, so ``heartsong render`` previews a
whole night.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from heartsong.audio.engine import AudioEngine
from heartsong.audio.soundscape_model import BOUNDS, MOVABLE
from heartsong.errors import InputDataError, check_number

__all__ = ["SETTABLE", "ScriptChange", "check_setting", "load_script", "parse_script",
           "render_script"]

#: Keys a ``set`` entry may contain.
SETTABLE = (*MOVABLE, "playing")
#: The latest time a change may name, seconds (a week; far beyond any render).
MAX_SCRIPT_S = 7 * 86400.0
#: The unit each numeric control's error message names.
_UNITS = {"volume_db": "dBFS", "intensity": "", "brightness": "", "tempo_bpm": "beats/min",
          "breath_rate_bpm": "breaths/min (0: off)", "beat_hz": "Hz"}


class _Pumped(Protocol):
    """The part of a sink :func:`render_script` uses."""

    def pump(self, engine: AudioEngine, seconds: float) -> int:
        """Render ``seconds`` of audio from ``engine``."""
        ...


@dataclass(frozen=True, slots=True)
class ScriptChange:
    """One timed change: controls to set and/or a soundscape to switch to, at ``t_s``."""

    t_s: float
    values: dict[str, object] = field(default_factory=dict)
    soundscape: str | None = None

    def as_params(self) -> dict[str, object]:
        """Keyword arguments for :meth:`AudioEngine.set_params`."""
        params = dict(self.values)
        if self.soundscape is not None:
            params["soundscape"] = self.soundscape
        return params


def check_setting(where: str, key: str, value: object) -> object:
    """``value`` for the settable control ``key``, checked (``where`` names it in the
    error): a bool for ``playing``, None where a control allows it, else a number within
    the widest range any preset allows."""
    if key == "playing":
        if not isinstance(value, bool):
            raise InputDataError(where, "true or false", value)
        return value
    if value is None and key in ("breath_rate_bpm", "tempo_bpm", "beat_hz"):
        return None
    if key == "breath_rate_bpm" and value == 0 and not isinstance(value, bool):
        return 0.0  # pacer off
    # The widest range any preset allows: a value outside it is a mistake to report, not
    # something to clamp quietly (inside it, the preset's own range still applies).
    lo, hi = BOUNDS[key]
    return check_number(where, value, lo, hi, _UNITS[key])


def parse_script(entries: object, soundscapes: Iterable[str]) -> list[ScriptChange]:
    """Validate a decoded script and return its changes sorted by time (stable).

    Parameters
    ----------
    entries:
        The decoded JSON: a list of objects with ``t`` and ``set`` and/or ``soundscape``.
    soundscapes:
        The preset names a ``soundscape`` change may name.

    Raises
    ------
    InputDataError
        The first problem, naming its place (``script[2].set.intensity``) and what was
        expected.
    """
    names = tuple(soundscapes)
    if not isinstance(entries, list):
        raise InputDataError("script", 'a JSON list of {"t": s, "set": {...}} changes', entries)
    changes: list[ScriptChange] = []
    for i, entry in enumerate(entries):
        where = f"script[{i}]"
        if not isinstance(entry, Mapping):
            raise InputDataError(where, 'an object like {"t": 10, "set": {"intensity": 0.3}}')
        unknown = sorted(set(entry) - {"t", "set", "soundscape"})
        if unknown:
            raise InputDataError(f"{where}.{unknown[0]}", "only t, set and soundscape")
        t = check_number(f"{where}.t", entry.get("t"), 0.0, MAX_SCRIPT_S, "s")
        if "set" not in entry and "soundscape" not in entry:
            raise InputDataError(where, 'a "set" object or a "soundscape" name')
        values: dict[str, object] = {}
        if "set" in entry:
            raw = entry["set"]
            if not isinstance(raw, Mapping) or not raw:
                raise InputDataError(f"{where}.set", f"an object of some of {', '.join(SETTABLE)}")
            for key, value in raw.items():
                if key not in SETTABLE:
                    raise InputDataError(f"{where}.set.{key}", f"one of {', '.join(SETTABLE)}")
                values[key] = check_setting(f"{where}.set.{key}", key, value)
        soundscape = entry.get("soundscape")
        if "soundscape" in entry and soundscape not in names:
            raise InputDataError(
                f"{where}.soundscape", f"one of {', '.join(map(repr, names))}", soundscape
            )
        changes.append(ScriptChange(t, values, soundscape))
    return sorted(changes, key=lambda c: c.t_s)


def load_script(path: str | Path, soundscapes: Iterable[str]) -> list[ScriptChange]:
    """Read and validate a script file (see :func:`parse_script`).

    Raises
    ------
    InputDataError
        The file cannot be read, is not JSON (line and column named), or is not a valid
        script.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise InputDataError(f"--script {p}", "a readable JSON file", exc.strerror) from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputDataError(
            f"--script {p}", f"valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return parse_script(entries, soundscapes)


def render_script(
    engine: AudioEngine,
    sink: _Pumped,
    seconds: float,
    changes: Sequence[ScriptChange],
    fade_out_s: float = 0.0,
) -> int:
    """Render ``seconds`` of audio into ``sink``, applying each change at its time.

    A change takes effect at the first frame at or after its time (so at most one frame
    late); changes after the end are ignored. The engine's targets must already be set
    for the start (soundscape, playing).

    Parameters
    ----------
    engine:
        The engine to render (warmed up or not).
    sink:
        A pumped sink (``WavSink``, ``NullSink``).
    seconds:
        Length of the render in seconds.
    changes:
        Sorted changes (:func:`parse_script`).
    fade_out_s:
        When > 0, fade to silence over the last ``fade_out_s`` seconds so the file ends
        quietly (skipped when the render is shorter than twice that).

    Returns
    -------
    int
        Frames rendered.
    """
    total = engine.frames_for(seconds)
    fs = engine.sample_rate_hz
    timeline: list[tuple[int, ScriptChange | None]] = [
        (math.ceil(c.t_s * fs - 1e-9), c) for c in changes
    ]
    fade_frames = engine.frames_for(fade_out_s) if fade_out_s > 0.0 else 0
    if fade_frames and total >= 2 * fade_frames:
        timeline.append((total - fade_frames, None))
        timeline.sort(key=lambda item: item[0])
    done = 0
    for frame, change in timeline:
        if frame >= total:
            break
        if frame > done:
            sink.pump(engine, (frame - done) / fs)
            done = frame
        if change is None:
            engine.fade_out(fade_out_s)
        else:
            engine.set_params(**change.as_params())
    if total > done:
        sink.pump(engine, (total - done) / fs)
    return total
