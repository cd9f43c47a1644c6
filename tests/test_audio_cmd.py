"""``heartsong soundscapes`` and ``heartsong render`` (audio_cmd), and session scripts."""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from heartsong import audio_cmd
from heartsong.audio.engine import AudioEngine
from heartsong.audio.script import load_script, parse_script, render_script
from heartsong.audio.sinks import NullSink
from heartsong.audio.soundscape_model import MOVABLE, TARGET_LOUDNESS_LUFS
from heartsong.audio.soundscapes import PRESETS
from heartsong.config import Config, with_overrides
from heartsong.errors import InputDataError

FS = 48000


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heartsong")
    sub = parser.add_subparsers(dest="command", required=True)
    audio_cmd.add_parser(sub)
    return parser.parse_args(argv)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, FS)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2) / 32768


def window_rms(x: np.ndarray, seconds: float) -> np.ndarray:
    w = int(seconds * FS)
    n = len(x) // w
    return np.asarray(np.sqrt(np.mean(x[: n * w].reshape(n, w, 2) ** 2, axis=(1, 2))))


# ----------------------------------------------------------------------------- soundscapes
def test_soundscapes_lists_every_preset_with_its_ranges(capsys: pytest.CaptureFixture[str]) -> None:
    assert audio_cmd.run(parse("soundscapes")) == 0
    out = capsys.readouterr().out
    for name, preset in PRESETS.items():
        assert f"{name}: {preset.description}" in out
    assert "beat_hz          1 .. 12  (default 6)" in out  # binaural_sleep
    assert "tempo_bpm        -  (no effect in this preset)" in out
    assert f"{TARGET_LOUDNESS_LUFS:g} LUFS" in out


def test_soundscapes_json_is_complete_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert audio_cmd.run(parse("soundscapes", "--json")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["target_lufs"] == TARGET_LOUDNESS_LUFS
    assert [s["name"] for s in doc["soundscapes"]] == list(PRESETS)
    assert len(doc["soundscapes"]) >= 6
    for entry in doc["soundscapes"]:
        preset = PRESETS[entry["name"]]
        assert list(entry["params"]) == list(MOVABLE)
        for key, rng in entry["params"].items():
            model = getattr(preset, key)
            if model is None:
                assert rng is None
            else:
                assert rng == {"min": model.lo, "max": model.hi, "default": model.value}
        assert {layer["source"] for layer in entry["layers"]} == {
            layer.source for layer in preset.layers
        }


def test_soundscapes_measure_reports_loudness_and_matching_trims(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert audio_cmd.run(parse("soundscapes", "--json", "--measure")) == 0
    doc = json.loads(capsys.readouterr().out)
    for entry in doc["soundscapes"]:
        assert entry["measured_lufs"] == pytest.approx(TARGET_LOUDNESS_LUFS, abs=1.0)
        assert entry["matched_trim_db"] == pytest.approx(entry["trim_db"], abs=1.0)


# ----------------------------------------------------------------------------- render
def test_render_writes_the_session_with_the_script_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "night.json"
    script.write_text(json.dumps([
        {"t": 2, "set": {"intensity": 1.0, "breath_rate_bpm": 6}},
        {"t": 4, "soundscape": "binaural_sleep", "set": {"beat_hz": 4}},
        {"t": 8, "set": {"playing": False}},
    ]))
    out = tmp_path / "night.wav"
    args = parse("render", "--soundscape", "rain", "--seconds", "12", "--out", str(out),
                 "--seed", "3", "--set", "volume_db=-12", "--script", str(script))
    assert audio_cmd.run(args) == 0
    line = capsys.readouterr().out
    assert f"wrote {out}: 12.0 s of rain at 48000 Hz, 3 script change(s)" in line
    x = read_wav(out)
    assert len(x) == 12 * FS
    rms = window_rms(x, 0.5)
    assert rms[0] < rms[2]  # faded in
    assert rms[4:16].min() > 0.01  # playing, through the crossfade
    assert np.abs(x[-FS:]).max() == 0.0  # paused at 8 s (3 s fade): silent at the end
    # the binaural carrier is there once the crossfade is done
    carrier = PRESETS["binaural_sleep"].carrier_hz
    seg = x[int(6.5 * FS) : int(8.5 * FS), 0]
    spectrum = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    f = np.fft.rfftfreq(len(seg), 1 / FS)
    band = (f > carrier - 10) & (f < carrier + 10)
    assert spectrum[band].max() > 10 * np.median(spectrum[(f > 100) & (f < 400)])


def test_render_is_deterministic_and_follows_the_config(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.wav" for n in "abc")
    for path, seed in ((a, "1"), (b, "1"), (c, "2")):
        assert audio_cmd.run(parse("render", "--soundscape", "ocean", "--seconds", "2",
                                   "--out", str(path), "--seed", seed)) == 0
    assert a.read_bytes() == b.read_bytes() and a.read_bytes() != c.read_bytes()
    cfg = with_overrides(Config(), {"audio.max_volume_db": -30.0, "audio.volume_db": -30.0,
                                    "audio.fade_s": 0.5})
    quiet = tmp_path / "quiet.wav"
    assert audio_cmd.run(parse("render", "--soundscape", "warm_drone", "--seconds", "3",
                               "--out", str(quiet), "--set", "volume_db=0"), cfg) == 0
    x = read_wav(quiet)
    assert 0.0 < np.abs(x).max() <= 10 ** (-30 / 20) + 1 / 32768


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--soundscape", "whale_song"), "soundscape"),
        (("--soundscape", "rain", "--set", "loudness=3"), "--set loudness"),
        (("--soundscape", "rain", "--set", "intensity=loud"), "--set intensity"),
        (("--soundscape", "rain", "--set", "volume_db=5"), "--set volume_db: a number from"),
        (("--soundscape", "rain", "--set", "novalue"), "KEY=VALUE"),
        (("--soundscape", "rain", "--seconds", "-1"), "--seconds"),
    ],
)
def test_render_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    args = ["render", "--seconds", "1", "--out", str(tmp_path / "x.wav"), *argv]
    assert audio_cmd.run(parse(*args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("heartsong render: ") and message in err[0]
    assert not (tmp_path / "x.wav").exists()


def test_render_unwritable_output_exits_1(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("render", "--soundscape", "rain", "--seconds", "1",
                 "--out", str(tmp_path / "missing" / "x.wav"))
    assert audio_cmd.run(args) == 1
    assert "missing" in capsys.readouterr().err


# ----------------------------------------------------------------------------- scripts
@pytest.mark.parametrize(
    ("entries", "field"),
    [
        ({"t": 0}, "script"),
        ([{"t": 0}], "script[0]"),
        ([{"t": -1, "set": {"intensity": 0.1}}], "script[0].t"),
        ([{"t": "soon", "set": {"intensity": 0.1}}], "script[0].t"),
        ([{"t": 1e308, "set": {"intensity": 0.1}}], "script[0].t"),  # was an OverflowError
        ([{"t": 0, "set": {"intensity": 2}}], "script[0].set.intensity"),  # was clamped
        ([{"t": 0, "set": {"volume_db": 5}}], "script[0].set.volume_db"),
        ([{"t": 0, "set": {"beat_hz": 0.1}}], "script[0].set.beat_hz"),
        ([{"t": 0, "set": {}}], "script[0].set"),
        ([{"t": 0, "set": {"volume": -3}}], "script[0].set.volume"),
        ([{"t": 0, "set": {"playing": 1}}], "script[0].set.playing"),
        ([{"t": 0, "set": {"tempo_bpm": float("nan")}}], "script[0].set.tempo_bpm"),
        ([{"t": 0, "set": {"intensity": 0.5}}, {"t": 1, "soundscape": "x"}],
         "script[1].soundscape"),
        ([{"t": 0, "sound": "rain"}], "script[0].sound"),
    ],
)
def test_script_errors_name_the_entry_and_field(entries: object, field: str) -> None:
    with pytest.raises(InputDataError) as err:
        parse_script(entries, PRESETS)
    assert err.value.field == field


def test_script_file_errors_and_sorting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"t": 1,}]')
    with pytest.raises(InputDataError, match="line 1, column"):
        load_script(bad, PRESETS)
    with pytest.raises(InputDataError, match="readable"):
        load_script(tmp_path / "none.json", PRESETS)
    changes = parse_script(
        [{"t": 5, "soundscape": "rain"}, {"t": 1, "set": {"breath_rate_bpm": None}}], PRESETS
    )
    assert [c.t_s for c in changes] == [1.0, 5.0]
    assert changes[0].as_params() == {"breath_rate_bpm": None}
    assert changes[1].as_params() == {"soundscape": "rain"}


def test_render_script_applies_each_change_at_its_frame() -> None:
    engine = AudioEngine(fade_s=0.1)
    engine.set_params(soundscape="ocean", playing=True)
    changes = parse_script(
        [
            {"t": 0.5, "soundscape": "rain"},
            {"t": 0.25, "set": {"intensity": 0.9}},
            {"t": 9.0, "set": {"intensity": 0.1}},
        ],
        PRESETS,
    )
    seen = []

    class Spy(NullSink):
        def pump(self, e: AudioEngine, seconds: float) -> int:
            seen.append((e.frames_rendered, e.params["soundscape"], e.params["intensity"]))
            return super().pump(e, seconds)

    assert render_script(engine, Spy(pull=True), 1.0, changes) == FS
    assert seen == [(0, "ocean", 0.5), (FS // 4, "ocean", 0.9), (FS // 2, "rain", 0.9)]
    assert engine.frames_rendered == FS  # the change at 9 s is after the end
