"""``heartsong soundscapes`` and ``heartsong render``: list the presets, render a session.

``heartsong soundscapes [--json] [--measure]`` lists every preset with its layers and the
ranges within which therapy may move its controls; ``--measure`` renders each one and
reports its loudness (ITU-R BS.1770) and the trim that would match it to the target.

``heartsong render --soundscape NAME --seconds N --out FILE.wav [--seed N]
[--set KEY=VALUE ...] [--script SCRIPT.json]`` renders offline what the device would play:
the soundscape fades in, the script's changes apply at their times (see
``heartsong.audio.script``), and the last ``fade_s`` seconds fade out.

Exit codes: 0 done, 1 the output file cannot be written, 2 bad input (one line on standard
error naming the problem).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heartsong.errors import AudioDeviceError, ConfigError, InputDataError

if TYPE_CHECKING:
    from heartsong.audio.soundscape_model import Soundscape
    from heartsong.config import Config

__all__ = ["add_parser", "describe", "format_listing", "run"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def add_parser(subparsers: Any) -> None:
    """Register ``soundscapes`` and ``render`` on an ``argparse`` sub-parser collection.

    Parameters
    ----------
    subparsers:
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    s: argparse.ArgumentParser = subparsers.add_parser(
        "soundscapes",
        help="list the soundscape presets, their parameters and ranges",
        description="List the soundscape presets with their layers and the ranges within "
        "which therapy may move each control.",
    )
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--measure", action="store_true",
                   help="render each preset and measure its loudness (a few seconds)")

    r: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="render a soundscape session offline to a WAV file",
        description="Render what the device would play to a 16-bit stereo WAV file: the "
        "soundscape fades in, --set and the script's changes apply, the end fades out.",
    )
    r.add_argument("--soundscape", required=True, metavar="NAME",
                   help="preset to start with (see `heartsong soundscapes`)")
    r.add_argument("--seconds", required=True, type=float, metavar="N",
                   help="length of the render in seconds")
    r.add_argument("--out", required=True, type=Path, metavar="FILE.wav",
                   help="WAV file to write (replaced if it exists)")
    r.add_argument("--seed", type=int, default=0, metavar="N",
                   help="seed of the noise generators (default 0)")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a control at the start, e.g. intensity=0.7 or beat_hz=4 (repeatable)")
    r.add_argument("--script", type=Path, default=None, metavar="SCRIPT.json",
                   help='timed changes, a JSON list like [{"t": 30, "set": {"intensity": '
                        '0.3}}, {"t": 60, "soundscape": "rain"}]')


def describe(preset: Soundscape, measured_lufs: float | None = None) -> dict[str, object]:
    """A preset as plain data (what ``soundscapes --json`` prints for it)."""
    params: dict[str, object] = {}
    for name, rng in preset.ranges().items():
        params[name] = (
            None if rng is None else {"min": rng.lo, "max": rng.hi, "default": rng.value}
        )
    out: dict[str, object] = {
        "name": preset.name,
        "description": preset.description,
        "layers": [
            {"source": layer.source, "gain": layer.gain, "intensity_depth": layer.intensity_depth}
            for layer in preset.layers
        ],
        "params": params,
        "breath_depth": preset.breath_depth,
        "root_hz": preset.root_hz,
        "intonation": preset.intonation,
        "carrier_hz": preset.carrier_hz,
        "trim_db": preset.trim_db,
    }
    if measured_lufs is not None:
        out["measured_lufs"] = round(measured_lufs, 2)
    return out


def _num(x: float) -> str:
    return f"{x:g}"


def format_listing(described: list[dict[str, Any]], target_lufs: float) -> str:
    """The presets (as from :func:`describe`) as a readable table, ending with a newline."""
    lines = [f"{len(described)} soundscapes, loudness-matched to {target_lufs:g} LUFS at 0 dB:"]
    for d in described:
        lines.append("")
        lines.append(f"{d['name']}: {d['description']}")
        layers = ", ".join(f"{x['source']} {x['gain']:.2f}" for x in d["layers"])
        lines.append(f"  layers      {layers}")
        for name, rng in d["params"].items():
            if rng is None:
                lines.append(f"  {name:<16} -  (no effect in this preset)")
            else:
                lines.append(
                    f"  {name:<16} {_num(rng['min'])} .. {_num(rng['max'])}"
                    f"  (default {_num(rng['default'])})"
                )
        if "measured_lufs" in d:
            lines.append(
                f"  loudness    {d['measured_lufs']:.1f} LUFS at 0 dB "
                f"(trim {d['trim_db']:+.1f} dB)"
            )
    return "\n".join(lines) + "\n"


def _cmd_soundscapes(args: argparse.Namespace) -> int:
    from heartsong.audio.calibration import preset_loudness
    from heartsong.audio.soundscape_model import TARGET_LOUDNESS_LUFS
    from heartsong.audio.soundscapes import PRESETS

    described = []
    for name, preset in PRESETS.items():
        if args.measure:
            lufs = preset_loudness(name)
            d = describe(preset, lufs)
            d["matched_trim_db"] = round(preset.trim_db + TARGET_LOUDNESS_LUFS - lufs, 1)
        else:
            d = describe(preset)
        described.append(d)
    if args.json:
        doc = {"target_lufs": TARGET_LOUDNESS_LUFS, "soundscapes": described}
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
    else:
        sys.stdout.write(format_listing(described, TARGET_LOUDNESS_LUFS))
        if args.measure:
            trims = ", ".join(f"{d['name']} {d['matched_trim_db']:+.1f}" for d in described)
            sys.stdout.write(f"\nmatched trims (dB): {trims}\n")
    return EXIT_OK


def _initial_params(args: argparse.Namespace, volume_db: float) -> dict[str, object]:
    """The controls at the start of a render: the preset's defaults, then ``--set``."""
    from heartsong.audio.script import SETTABLE, check_setting
    from heartsong.audio.soundscapes import get_preset
    from heartsong.config import parse_override

    preset = get_preset(args.soundscape)
    params: dict[str, object] = dict(preset.defaults())
    params.pop("breath_rate_bpm", None)
    params.update(soundscape=preset.name, playing=True, breath_rate_bpm=None, volume_db=volume_db)
    for text in args.sets:
        key, value = parse_override(text)
        if key not in SETTABLE:
            raise InputDataError(f"--set {key}", f"one of {', '.join(SETTABLE)}")
        params[key] = check_setting(f"--set {key}", key, value)  # as a script entry's
    return params


def _cmd_render(args: argparse.Namespace, cfg: Config | None) -> int:
    import numpy as np

    from heartsong.audio.engine import AudioEngine
    from heartsong.audio.loudness import integrated_loudness
    from heartsong.audio.script import load_script, render_script
    from heartsong.audio.sinks import WavSink
    from heartsong.audio.soundscapes import PRESETS

    if not (math.isfinite(args.seconds) and 0.0 < args.seconds <= 24 * 3600):
        raise InputDataError("--seconds", "a duration from 0 to 86400 s", args.seconds)
    audio = cfg.audio if cfg is not None else None
    engine = AudioEngine(
        sample_rate_hz=audio.sample_rate_hz if audio else 48000,
        buffer_frames=audio.buffer_frames if audio else 256,
        max_volume_db=audio.max_volume_db if audio else -6.0,
        fade_s=audio.fade_s if audio else 3.0,
        seed=args.seed,
    )
    start = _initial_params(args, audio.volume_db if audio else -20.0)
    changes = load_script(args.script, PRESETS) if args.script is not None else []
    engine.set_params(**start)
    engine.warm_up()
    sink = WavSink(args.out, engine.sample_rate_hz)
    try:
        sink.start()
        render_script(engine, sink, args.seconds, changes, fade_out_s=engine.fade_s)
    finally:
        sink.close()
    with wave.open(str(args.out), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    x = pcm / 32768.0
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    peak_db = 20.0 * math.log10(peak) if peak > 0.0 else float("-inf")
    long_enough = len(x) >= 0.4 * engine.sample_rate_hz
    lufs = integrated_loudness(x, engine.sample_rate_hz) if long_enough else float("nan")
    sys.stdout.write(
        f"wrote {args.out}: {len(x) / engine.sample_rate_hz:.1f} s of {args.soundscape} at "
        f"{engine.sample_rate_hz} Hz, {len(changes)} script change(s), peak {peak_db:.1f} dBFS, "
        f"loudness {lufs:.1f} LUFS\n"
    )
    return EXIT_OK


def run(args: argparse.Namespace, cfg: Config | None = None) -> int:
    """Execute ``heartsong soundscapes`` or ``heartsong render``; return the exit code.

    Parameters
    ----------
    args:
        Namespace from a parser built with :func:`add_parser` (``args.command`` names the
        sub-command).
    cfg:
        The loaded configuration: ``render`` takes the sample rate, buffer size, volume,
        ceiling and fade from ``[audio]``; None uses the defaults (48 kHz, 256 frames,
        -20 dB, ceiling -6 dB, 3 s fades).
    """
    name = args.command
    try:
        if name == "soundscapes":
            return _cmd_soundscapes(args)
        return _cmd_render(args, cfg)
    except (InputDataError, ConfigError) as exc:
        text = exc.one_line() if isinstance(exc, ConfigError) else str(exc)
        sys.stderr.write(f"heartsong {name}: {text}\n")
        return EXIT_USAGE
    except AudioDeviceError as exc:
        sys.stderr.write(f"heartsong {name}: {exc}\n")
        return EXIT_FAILURE
