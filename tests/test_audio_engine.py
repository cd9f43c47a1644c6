"""The audio engine end to end: ceiling, ramps, fades, crossfades, publication, sinks."""

from __future__ import annotations

import dataclasses
import threading
import time
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from heartsong.audio import (
    PRESETS,
    AudioEngine,
    Layer,
    NullSink,
    ParamRange,
    PyAudioSink,
    Sink,
    Soundscape,
    WavSink,
    get_preset,
    list_output_devices,
)
from heartsong.audio.params import P_SEQ, P_VOLUME_DB, ParamBoard, ParamValues, _read_params
from heartsong.audio.soundscape_model import BOUNDS
from heartsong.errors import AudioDeviceError, InputDataError
from heartsong.events import SoundTargets

FS = 48000
BLOCK = 256


def make_engine(**kwargs: object) -> AudioEngine:
    engine = AudioEngine(**kwargs)  # type: ignore[arg-type]
    engine.warm_up()
    return engine


def render_seconds(engine: AudioEngine, seconds: float, block: int = BLOCK) -> np.ndarray:
    """Render ``seconds`` in blocks of at most ``block`` frames, as the callback would."""
    frames = round(seconds * engine.sample_rate_hz)
    out = np.zeros((frames, 2), dtype=np.float32)
    for start in range(0, frames, block):
        engine.render(out[start : start + block])
    return out


def max_step(x: np.ndarray) -> float:
    """Largest sample-to-sample change on either channel (a click detector)."""
    return float(np.abs(np.diff(x, axis=0)).max())


def window_rms(x: np.ndarray, window: int) -> np.ndarray:
    n = len(x) // window
    return np.asarray(np.sqrt(np.mean(x[: n * window].reshape(n, window, 2) ** 2, axis=(1, 2))))


# ----------------------------------------------------------------------------- presets
def test_presets_are_frozen_data_with_ocean_and_brown_noise() -> None:
    assert {"ocean", "brown_noise"} <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.layers and preset.description
        assert 0.0 <= preset.intensity.lo <= preset.intensity.hi <= 1.0
        assert 3.0 <= preset.breath_rate_bpm.lo <= preset.breath_rate_bpm.hi <= 20.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["ocean"].breath_depth = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        PRESETS["rain"] = PRESETS["ocean"]  # type: ignore[index]
    assert get_preset("ocean") is PRESETS["ocean"]


def test_get_preset_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(InputDataError) as err:
        get_preset("whale_song")
    assert err.value.field == "soundscape"
    assert "'ocean'" in str(err.value) and "'brown_noise'" in str(err.value)
    assert "whale_song" in str(err.value)


def test_soundscape_validation_names_the_field() -> None:
    with pytest.raises(InputDataError, match=r"x\.layers"):
        Soundscape("x", "dup", (Layer("pink", 1.0), Layer("pink", 0.5)))
    with pytest.raises(InputDataError, match=r"x\.breath_rate_bpm"):
        Soundscape("x", "fast", (Layer("pink", 1.0),), breath_rate_bpm=ParamRange(3.0, 40.0))
    with pytest.raises(InputDataError, match=r"layer\.source"):
        Layer("violin", 1.0)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="range"):
        ParamRange(1.0, 0.0)


# ----------------------------------------------------------------------------- engine basics
@pytest.fixture(scope="module")
def warm() -> AudioEngine:
    """One warm engine: compiles (or loads) the kernels once for the module."""
    return make_engine()


def test_engine_is_silent_until_told_to_play(warm: AudioEngine) -> None:
    engine = make_engine(fade_s=0.5)
    assert engine.is_silent
    out = render_seconds(engine, 0.2)
    assert not out.any()
    frames = len(out)
    engine.set_targets(SoundTargets("ocean", volume_db=-12.0))
    assert engine.is_silent  # nothing rendered yet
    out = render_seconds(engine, 1.0)
    frames += len(out)
    assert not engine.is_silent
    rms = window_rms(out, 4800)
    assert rms[0] < rms[-1]  # faded in
    assert rms[-1] > 0.01
    assert engine.current_preset == "ocean"
    assert engine.frames_rendered == frames


def test_constructor_rejects_bad_settings() -> None:
    for kwargs, field in (
        ({"crossfade_s": 1.0}, "crossfade_s"),
        ({"max_volume_db": 3.0}, "max_volume_db"),
        ({"buffer_frames": 0}, "buffer_frames"),
        ({"sample_rate_hz": 44100.5}, "sample_rate_hz"),
        ({"fade_s": float("nan")}, "fade_s"),
    ):
        with pytest.raises(InputDataError) as err:
            AudioEngine(**kwargs)
        assert err.value.field == field


def test_set_targets_clamps_into_preset_ranges_and_ceiling() -> None:
    engine = AudioEngine(max_volume_db=-10.0)
    engine.set_targets(
        SoundTargets(
            "brown_noise", volume_db=+12.0, intensity=3.0, brightness=1.0, breath_rate_bpm=40
        )
    )
    t = engine.targets
    assert t is not None
    preset = PRESETS["brown_noise"]
    assert t.volume_db == -10.0
    assert t.intensity == preset.intensity.hi
    assert t.brightness == preset.brightness.hi < 1.0
    assert t.breath_rate_bpm == preset.breath_rate_bpm.hi
    engine.set_targets(SoundTargets("ocean", volume_db=-200.0, breath_rate_bpm=0))
    assert engine.targets is not None
    assert engine.targets.volume_db == PRESETS["ocean"].volume_db.lo
    assert engine.targets.breath_rate_bpm is None


@pytest.mark.parametrize(
    ("targets", "field"),
    [
        (SoundTargets("whale_song"), "soundscape"),
        (SoundTargets("ocean", volume_db=float("nan")), "volume_db"),
        (SoundTargets("ocean", intensity=float("inf")), "intensity"),
        (SoundTargets("ocean", breath_rate_bpm=-6.0), "breath_rate_bpm"),
    ],
)
def test_set_targets_rejects_bad_values_naming_the_field(targets: SoundTargets, field: str) -> None:
    engine = AudioEngine()
    with pytest.raises(InputDataError) as err:
        engine.set_targets(targets)
    assert err.value.field == field
    assert engine.targets is None  # nothing published


def test_same_seed_same_audio_and_callback_equals_render(warm: AudioEngine) -> None:
    a, b, c = (make_engine(seed=s, fade_s=0.1) for s in (5, 5, 6))
    targets = SoundTargets("ocean", volume_db=-12.0, breath_rate_bpm=6.0)
    for e in (a, b, c):
        e.set_targets(targets)
    out_a = render_seconds(a, 100 * BLOCK / FS)
    frames = []
    for _ in range(100):
        data, flag = b.process_callback(None, BLOCK, {}, 0)
        assert flag == 0 and len(data) == BLOCK * 2 * 4
        frames.append(np.frombuffer(data, dtype=np.float32).reshape(BLOCK, 2))
    np.testing.assert_array_equal(np.concatenate(frames), out_a)
    assert not np.array_equal(render_seconds(c, 0.5), out_a)


def test_callback_counts_output_underflows_and_overflows(warm: AudioEngine) -> None:
    engine = make_engine()
    for status in (0, 0x4, 0x8, 0x10, 0x4 | 0x10, 0x1):  # 0x10 priming, 0x1 input underflow
        engine.process_callback(None, BLOCK, {}, status)
    assert engine.underruns == 3


def test_callback_handles_an_unexpected_frame_count(warm: AudioEngine) -> None:
    engine = make_engine()
    data, _ = engine.process_callback(None, 1000, {}, 0)
    assert len(data) == 1000 * 2 * 4
    assert engine.frames_rendered == 1000


# ----------------------------------------------------------------------------- safety
BLARING = Soundscape(
    "blaring",
    "Everything at the loudest gains and trim the data model allows.",
    tuple(Layer(source, 4.0, 0.0) for source in ("white", "pad", "rain", "pulse", "binaural")),
    volume_db=ParamRange(-90.0, 0.0),
    tempo_bpm=ParamRange(30.0, 120.0),
    beat_hz=ParamRange(0.5, 30.0),
    trim_db=40.0,
)


def test_output_never_exceeds_the_ceiling_for_random_extreme_targets(warm: AudioEngine) -> None:
    rng = np.random.default_rng(42)
    presets = {**PRESETS, "blaring": BLARING}
    for max_db in (-6.0, -20.0, 0.0):
        engine = make_engine(
            max_volume_db=max_db, fade_s=0.1, seed=int(rng.integers(1000)), presets=presets
        )
        ceiling = np.float32(10 ** (max_db / 20))
        assert engine.ceiling <= ceiling
        peak = 0.0
        for _ in range(60):
            extreme = {
                key: float(rng.choice([-1e3, 0.0, 1.0, 5.0, 1e3]))
                for key in ("intensity", "brightness", "tempo_bpm", "beat_hz")
            }
            engine.set_params(
                soundscape=str(rng.choice(list(presets))),
                playing=True,
                volume_db=float(rng.uniform(-10.0, 40.0)),
                breath_rate_bpm=float(rng.choice([3.0, 20.0, 100.0])),
                **extreme,
            )
            out = render_seconds(engine, 0.1)
            peak = max(peak, float(np.abs(out).max()))
        assert peak <= engine.ceiling
        assert peak > 0.5 * engine.ceiling  # the test did drive it hard


def loudest(name: str) -> dict[str, object]:
    """Every control of preset ``name`` at the top of its range (the largest steps)."""
    values: dict[str, object] = {"soundscape": name, "playing": True, "breath_rate_bpm": None}
    for key, rng in PRESETS[name].ranges().items():
        if rng is not None and key != "breath_rate_bpm":
            values[key] = rng.hi
    return values


def random_change(name: str, rng: np.random.Generator) -> dict[str, object]:
    """A random point inside preset ``name``'s ranges (pacer on 70 % of the time)."""
    values: dict[str, object] = {"soundscape": name, "playing": True}
    for key, r in PRESETS[name].ranges().items():
        if r is not None:
            values[key] = float(rng.uniform(r.lo, r.hi))
    if rng.random() < 0.3:
        values["breath_rate_bpm"] = None
    return values


@pytest.fixture(scope="module")
def steady_steps() -> dict[str, float]:
    """Largest sample-to-sample step of each preset held at its loudest, brightest setting."""
    steps = {}
    for name in PRESETS:
        engine = make_engine(seed=1, max_volume_db=0.0)
        engine.set_params(**loudest(name))
        render_seconds(engine, 3.0)  # past the fade-in
        steps[name] = max_step(render_seconds(engine, 10.0))
    return steps


@pytest.mark.parametrize("name", list(PRESETS))
def test_no_clicks_when_a_preset_changes_every_100_ms(name: str,
                                                      steady_steps: dict[str, float]) -> None:
    engine = make_engine(seed=2, max_volume_db=0.0)
    rng = np.random.default_rng(hash(name) % 1000)
    outs = []
    for _ in range(150):  # 15 s, every control moved every 100 ms
        engine.set_params(**random_change(name, rng))
        outs.append(render_seconds(engine, 0.1))
    assert max_step(np.concatenate(outs)) <= 1.25 * steady_steps[name]


def test_no_clicks_with_changes_every_100_ms_and_a_switch_every_10_s(
    steady_steps: dict[str, float],
) -> None:
    names = list(PRESETS)
    engine = make_engine(seed=3, max_volume_db=0.0)
    rng = np.random.default_rng(3)
    segments = []
    for name in names:
        outs = []
        for _ in range(100):
            engine.set_params(**random_change(name, rng))
            outs.append(render_seconds(engine, 0.1))
        segments.append(np.concatenate(outs))
    for i, (name, seg) in enumerate(zip(names, segments, strict=True)):
        # while crossfading, both presets play: either one's steady steps are allowed
        allowed = max(steady_steps[name], steady_steps[names[i - 1]] if i else 0.0)
        assert max_step(seg) <= 1.25 * allowed, name

    # The detector is not blind: the same steady sound 12 dB lower, stepped up by 12 dB to
    # the reference's level without a ramp (at its loudest sample), is caught.
    quiet = make_engine(seed=4, max_volume_db=0.0)
    top = PRESETS["warm_drone"].volume_db.hi
    quiet.set_params(**{**loudest("warm_drone"), "volume_db": top - 12.0})
    render_seconds(quiet, 3.0)
    x = render_seconds(quiet, 1.0)
    k = int(np.argmax(np.abs(x[:, 0])))
    x[k:] *= 10 ** (12 / 20)
    assert max_step(x) > 1.25 * steady_steps["warm_drone"]


def test_volume_change_is_ramped_not_stepped(warm: AudioEngine) -> None:
    # Two engines with the same seed play the same noise; only the master gain differs,
    # so their sample ratio is the gain ratio (levels stay below the limiter's knee).
    moving, steady = make_engine(fade_s=0.1, seed=4), make_engine(fade_s=0.1, seed=4)
    for e in (moving, steady):
        e.set_targets(SoundTargets("ocean", volume_db=-40.0))
    render_seconds(moving, 1.0)
    render_seconds(steady, 1.0)
    moving.set_targets(SoundTargets("ocean", volume_db=-20.0))
    a = render_seconds(moving, 3.0).astype(np.float64)
    b = render_seconds(steady, 3.0).astype(np.float64)
    ok = np.abs(b) > 1e-4
    gain_db = 20 * np.log10(np.abs(a[ok]) / np.abs(b[ok]))
    assert gain_db[:20].max() < 0.5  # starts where it was
    assert gain_db[-1000:] == pytest.approx(20.0, abs=0.05)  # arrives
    # never more than 0.1 dB between neighbouring samples: a smooth ramp, not a step
    assert np.abs(np.diff(gain_db)).max() < 0.1
    t_half = np.argmax(gain_db > 10.0) / FS / 2  # ~stereo-interleaved index -> seconds
    assert 0.1 < t_half < 1.0
    assert moving.volume_db == pytest.approx(-20.0, abs=0.05)


def test_fade_out_reaches_silence_and_playing_fades_back_in(warm: AudioEngine) -> None:
    engine = make_engine(fade_s=0.2)
    targets = SoundTargets("ocean", volume_db=-12.0, breath_rate_bpm=6.0)
    engine.set_targets(targets)
    render_seconds(engine, 1.0)
    assert not engine.is_silent
    engine.fade_out(1.0)
    assert engine.targets is not None and not engine.targets.playing
    out = render_seconds(engine, 1.2)
    assert engine.is_silent
    tail = out[FS + BLOCK :]
    assert tail.size and not tail.any()
    rms = window_rms(out[:FS], 4800)
    assert np.all(np.diff(rms) < 0.002)  # monotonic apart from the swell's own motion
    assert rms[-1] < 0.05 * rms[0]
    assert not render_seconds(engine, 0.5).any()  # stays silent
    engine.set_targets(targets)
    assert render_seconds(engine, 0.5).any()


def test_preset_change_crossfades_with_equal_power(warm: AudioEngine) -> None:
    engine = make_engine(fade_s=0.1, crossfade_s=3.0)
    engine.set_targets(SoundTargets("brown_noise", volume_db=-12.0, brightness=0.3))
    before = render_seconds(engine, 2.0)
    engine.set_targets(SoundTargets("ocean", volume_db=-12.0, brightness=0.3))
    during = render_seconds(engine, 1.5)
    assert 0.0 < engine.crossfade_progress < 1.0  # still crossfading after 1.5 s
    during = np.concatenate((during, render_seconds(engine, 1.6)))
    assert engine.crossfade_progress == 1.0
    after = render_seconds(engine, 12.0)
    assert engine.current_preset == "ocean"
    rms_during = window_rms(during, 4800)
    lo = min(window_rms(before, 4800).min(), window_rms(after, 4800).min())
    hi = max(window_rms(before, 4800).max(), window_rms(after, 4800).max())
    # equal power: no dip and no bump beyond what either preset does on its own (+-3 dB)
    assert rms_during.min() > lo / 1.42
    assert rms_during.max() < hi * 1.42


def test_breath_pacer_phase_follows_the_rate_and_shapes_the_level(warm: AudioEngine) -> None:
    # Same seed, same noise: the paced engine's samples divided by the unpaced one's are
    # exactly the breath envelope (levels stay below the limiter's knee).
    paced, plain = make_engine(fade_s=0.1, seed=8), make_engine(fade_s=0.1, seed=8)
    paced.set_targets(SoundTargets("brown_noise", volume_db=-20.0, breath_rate_bpm=6.0))
    plain.set_targets(SoundTargets("brown_noise", volume_db=-20.0))
    render_seconds(paced, 1.0)
    render_seconds(plain, 1.0)
    depth = PRESETS["brown_noise"].breath_depth
    phases, levels, ratios = [], [], []
    for _ in range(3750):  # 20 s = two whole breaths, one 5.3 ms block at a time
        a = render_seconds(paced, BLOCK / FS)
        b = render_seconds(plain, BLOCK / FS)
        phases.append(paced.breath_phase)
        levels.append(paced.breath_level)
        ratios.append(float(a[-1, 0]) / float(b[-1, 0]))
    advance = np.diff(phases) % 1.0
    np.testing.assert_allclose(advance, 6.0 / 60.0 * BLOCK / FS, rtol=1e-6)
    level = np.array(levels)
    assert level.min() < 0.01 and level.max() > 0.99  # whole breaths covered
    np.testing.assert_allclose(ratios, 1.0 - depth * (1.0 - level), rtol=1e-4)
    # inhale (level rising) takes 40 % of the blocks, exhale the other 60 %
    rising = np.mean(np.diff(level) > 0)
    assert rising == pytest.approx(0.4, abs=0.01)

    # pacer off: the modulation decays to nothing within a few time constants
    paced.set_targets(SoundTargets("brown_noise", volume_db=-20.0, breath_rate_bpm=None))
    render_seconds(paced, 10.0)
    render_seconds(plain, 10.0)
    a = render_seconds(paced, 1.0).astype(np.float64)
    b = render_seconds(plain, 1.0).astype(np.float64)
    ok = np.abs(b) > 1e-4
    np.testing.assert_allclose(a[ok] / b[ok], 1.0, atol=0.01)


# ----------------------------------------------------------------------------- real-time rules
def test_render_does_not_allocate_after_warm_up(warm: AudioEngine) -> None:
    engine = make_engine(fade_s=0.1, crossfade_s=60.0)
    engine.set_targets(SoundTargets("forest_night", volume_db=-12.0, breath_rate_bpm=6.0))
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    for _ in range(20):
        engine.render(out)
    engine.set_params(soundscape="alpha_pulses")  # both presets' layers run while crossfading
    for _ in range(20):
        engine.render(out)
    tracemalloc.start()
    try:
        engine.render(out)
        results = []
        for calls in (100, 1000):
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            for _ in range(calls):
                engine.render(out)
            current, peak = tracemalloc.get_traced_memory()
            results.append((current - base, peak - base))
    finally:
        tracemalloc.stop()
    (net100, peak100), (net1000, peak1000) = results
    # Nothing retained, and the only transient is numba's argument packing for one call
    # (< 1 KiB, the same for 100 or 1000 calls: nothing grows with the number of calls).
    assert net100 <= 256 and net1000 <= 256
    assert peak100 <= 1024 and peak1000 <= peak100 + 128


# ----------------------------------------------------------------------------- publication
def values(k: int) -> ParamValues:
    """A set of targets whose every field encodes ``k`` (to detect torn reads)."""
    return ParamValues(
        volume_db=-float(k),
        intensity=k / 1e6,
        brightness=k / 1e6,
        breath_rate_bpm=float(k),
        playing=bool(k % 2),
        preset=k,
        fade_s=float(k),
    )


def test_param_board_round_trip_and_refuses_a_torn_read() -> None:
    board = ParamBoard(values(0))
    assert board.sequence == 2
    assert board.publish(values(7)) == 4
    assert board.read() == values(7)
    board.array[P_SEQ] += 1  # a writer is between its two counter updates
    board.array[P_VOLUME_DB] = -99.0
    staging = np.zeros_like(board.array)
    snapshot = np.full_like(board.array, 123.0)
    assert not _read_params(board.array, staging, snapshot)
    assert np.all(snapshot == 123.0)  # previous snapshot kept
    assert board.read() is None


def test_param_board_reads_are_consistent_under_concurrent_writers() -> None:
    board = ParamBoard(values(0))
    stop = threading.Event()

    def writer(offset: int) -> None:
        k = offset
        while not stop.is_set():
            board.publish(values(k))
            k += 2

    threads = [threading.Thread(target=writer, args=(o,)) for o in (1, 2)]
    for t in threads:
        t.start()
    seen = 0
    try:
        deadline = time.monotonic() + 10.0
        while seen < 3000 and time.monotonic() < deadline:
            v = board.read()
            if v is not None:
                assert v == values(int(v.breath_rate_bpm))
                seen += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen >= 3000
    assert board.sequence % 2 == 0


# ----------------------------------------------------------------------------- sinks
def test_wav_sink_writes_a_valid_file_of_the_right_length(
    warm: AudioEngine, tmp_path: Path
) -> None:
    path = tmp_path / "night.wav"
    engine = make_engine(fade_s=0.1, seed=9)
    twin = make_engine(fade_s=0.1, seed=9)
    for e in (engine, twin):
        e.set_targets(SoundTargets("ocean", volume_db=-12.0))
    sink = WavSink(path)
    assert isinstance(sink, Sink) and not sink.realtime and sink.latency_s == 0.0
    assert sink.pump(engine, 1.0) == FS
    assert sink.pump(engine, 0.25) == FS // 4
    sink.close()
    sink.close()  # safe twice
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, FS)
        assert wav.getnframes() == FS + FS // 4
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    expected = render_seconds(twin, 1.25)
    np.testing.assert_allclose(pcm / 32767.0, expected, atol=1.0 / 32767.0)
    assert np.abs(pcm).max() > 100
    with pytest.raises(AudioDeviceError):
        sink.pump(engine, 0.1)


def test_wav_sink_rejects_bad_durations_rates_and_paths(tmp_path: Path) -> None:
    engine = AudioEngine()
    sink = WavSink(tmp_path / "x.wav")
    with pytest.raises(InputDataError, match="seconds"):
        sink.pump(engine, -1.0)
    sink.pump(engine, 0.01)
    with pytest.raises(InputDataError, match="sample_rate_hz"):
        sink.pump(AudioEngine(sample_rate_hz=44100), 0.01)
    sink.close()

    fixed = WavSink(tmp_path / "fixed.wav", sample_rate_hz=44100)
    fixed.start()  # created at start when the rate is known
    assert fixed.is_active and (tmp_path / "fixed.wav").exists()
    with pytest.raises(InputDataError, match="sample_rate_hz"):
        fixed.pump(engine, 0.01)
    fixed.stop()
    assert not fixed.is_active
    fixed.close()

    with pytest.raises(AudioDeviceError, match="no_such_dir"):
        WavSink(tmp_path / "no_such_dir" / "x.wav", sample_rate_hz=FS).start()


def test_null_sink_discards_or_measures(warm: AudioEngine) -> None:
    engine = make_engine(fade_s=0.1)
    engine.set_targets(SoundTargets("brown_noise", volume_db=-6.0, intensity=1.0))
    idle = NullSink()
    assert isinstance(idle, Sink) and not idle.realtime
    idle.start()
    assert idle.is_active
    assert idle.pump(engine, 1.0) == FS
    assert engine.frames_rendered == 0 and idle.peak == 0.0  # nothing pulled
    meter = NullSink(pull=True)
    meter.pump(engine, 2.0)
    assert engine.frames_rendered == 2 * FS == meter.frames
    assert 0.0 < meter.rms < meter.peak <= engine.ceiling
    meter.close()
    meter.close()
    assert not meter.is_active
    with pytest.raises(AudioDeviceError):
        meter.pump(engine, 0.1)


def test_list_output_devices_returns_names() -> None:
    names = list_output_devices()
    assert isinstance(names, list)
    assert all(isinstance(n, str) and n for n in names)


def test_pyaudio_sink_unknown_device_lists_the_outputs() -> None:
    engine = AudioEngine()
    with pytest.raises(AudioDeviceError) as err:
        PyAudioSink(engine, device_name="No Such Speaker 9000")
    message = str(err.value)
    assert "'No Such Speaker 9000'" in message
    assert "outputs found:" in message
    for name in list_output_devices():
        assert repr(name) in message


@pytest.mark.jack
def test_pyaudio_sink_plays_through_a_real_device(warm: AudioEngine, jack_server: object) -> None:
    """Through PortAudio to the JACK dummy server that `make test` runs (skipped without)."""
    assert list_output_devices()
    engine = make_engine(fade_s=0.1)
    engine.set_targets(SoundTargets("ocean", volume_db=-30.0))
    sink = PyAudioSink(engine)
    assert isinstance(sink, Sink) and sink.realtime
    assert sink.pump(engine, 1.0) == 0  # the device pulls; nothing to pump
    try:
        assert sink.latency_s > 0.0
        sink.start()
        deadline = time.monotonic() + 5.0
        while engine.frames_rendered < 10 * BLOCK and time.monotonic() < deadline:
            time.sleep(0.02)
        assert engine.frames_rendered >= 10 * BLOCK
        assert sink.is_active
        sink.stop()
        assert not sink.is_active
    finally:
        sink.close()
        sink.close()  # safe twice
    assert engine.callback_error is None


# ----------------------------------------------------------------------------- named params
def test_set_params_moves_some_controls_and_keeps_the_others() -> None:
    engine = AudioEngine(max_volume_db=-10.0)
    assert engine.targets is None and engine.params == {}
    engine.set_params(soundscape="warm_drone", playing=True, intensity=0.3)
    p = engine.params
    preset = PRESETS["warm_drone"]
    assert p["soundscape"] == "warm_drone" and p["playing"] is True and p["intensity"] == 0.3
    assert p["tempo_bpm"] == preset.tempo_bpm.value  # never set: the preset's default
    assert p["breath_rate_bpm"] is None
    engine.set_params(tempo_bpm=500.0, brightness=0.5, volume_db=3.0)
    p = engine.params
    assert p["intensity"] == 0.3  # kept
    assert p["tempo_bpm"] == preset.tempo_bpm.hi  # clamped into the preset's range
    assert p["volume_db"] == -10.0  # the ceiling wins over the preset's range
    assert engine.targets == SoundTargets("warm_drone", True, -10.0, 0.3, 0.5, None)
    # the request is kept across presets and clamped into each one's range (or, where the
    # preset does not use the control, into the widest bounds)
    engine.set_params(soundscape="ocean")
    assert engine.params["tempo_bpm"] == BOUNDS["tempo_bpm"][1]
    engine.set_params(soundscape="alpha_pulses", beat_hz=2.0)
    assert engine.params["beat_hz"] == PRESETS["alpha_pulses"].beat_hz.lo  # 8 Hz: alpha
    assert engine.params["tempo_bpm"] == PRESETS["alpha_pulses"].tempo_bpm.hi


@pytest.mark.parametrize(
    ("named", "field"),
    [
        ({"loudness": 3.0}, "loudness"),
        ({"soundscape": "whale_song"}, "soundscape"),
        ({"intensity": "high"}, "intensity"),
        ({"beat_hz": float("nan")}, "beat_hz"),
        ({"tempo_bpm": True}, "tempo_bpm"),
        ({"playing": "yes"}, "playing"),
        ({"breath_rate_bpm": -1.0}, "breath_rate_bpm"),
    ],
)
def test_set_params_rejects_bad_names_and_values(named: dict[str, object], field: str) -> None:
    engine = AudioEngine()
    engine.set_params(soundscape="ocean", playing=True)
    before = engine.params
    with pytest.raises(InputDataError) as err:
        engine.set_params(**{"intensity": 0.9, **named})
    assert err.value.field == field
    assert engine.params == before  # nothing published


def test_set_targets_takes_tempo_and_beat_from_richer_targets() -> None:
    @dataclasses.dataclass(frozen=True)
    class RicherTargets(SoundTargets):  # what SoundTargets may grow into
        tempo_bpm: float | None = None
        beat_hz: float | None = None

    engine = AudioEngine()
    engine.set_targets(RicherTargets("binaural_sleep", beat_hz=2.0))  # type: ignore[call-arg]
    assert engine.params["beat_hz"] == 2.0
    engine.set_targets(SoundTargets("binaural_sleep"))  # plain targets keep the beat
    assert engine.params["beat_hz"] == 2.0


def test_tempo_and_beat_glide_in_the_callback() -> None:
    engine = make_engine(fade_s=0.1)
    engine.set_params(soundscape="binaural_sleep", playing=True, beat_hz=2.0)
    render_seconds(engine, 0.5)
    engine.set_params(beat_hz=10.0)
    board = engine._board.read()
    assert board is not None and board.beat_hz == 10.0
    x = render_seconds(engine, 1.0)  # half a time constant: not there yet, no jump
    assert np.all(np.isfinite(x))
    assert 2.0 < engine._ctl[17] < 10.0  # C_BEAT_HZ: smoothed towards the target
    render_seconds(engine, 14.0)
    assert engine._ctl[17] == pytest.approx(10.0, abs=0.02)


# ----------------------------------------------------------------------------- sleep timer
def test_sleep_timer_fades_out_slowly_then_stays_silent_until_cleared() -> None:
    timed, plain = make_engine(fade_s=0.1, seed=6), make_engine(fade_s=0.1, seed=6)
    for e in (timed, plain):
        e.set_targets(SoundTargets("brown_noise", volume_db=-24.0))
        render_seconds(e, 0.5)
    timed.set_sleep_timer(1.0, fade_s=4.0)
    assert timed.sleep_remaining_s == pytest.approx(5.0)
    gains, expected = [], []
    start = timed.frames_rendered + FS
    for _ in range(int(6.0 * FS / BLOCK)):
        a = render_seconds(timed, BLOCK / FS).astype(np.float64)
        b = render_seconds(plain, BLOCK / FS).astype(np.float64)
        if np.abs(b[-1, 0]) > 1e-4 and not timed.is_silent:
            gains.append(a[-1, 0] / b[-1, 0])
            p = min(max((timed.frames_rendered - start) / (4.0 * FS), 0.0), 1.0)
            expected.append((1.0 - p) ** 3)
    np.testing.assert_allclose(gains, expected, atol=1e-4)
    assert min(gains) < 0.01 and max(gains) == pytest.approx(1.0)
    assert timed.is_asleep and timed.sleep_remaining_s == 0.0
    render_seconds(timed, 0.3)  # the gate closes behind the fade
    assert timed.is_silent
    timed.set_targets(SoundTargets("brown_noise", volume_db=-24.0))  # still asleep
    assert not render_seconds(timed, 0.5).any()
    timed.set_sleep_timer(None)
    assert timed.sleep_remaining_s is None and not timed.is_asleep
    assert render_seconds(timed, 0.5).any()  # fades back in


def test_sleep_timer_rejects_bad_durations() -> None:
    engine = AudioEngine()
    for after, fade, field in ((-1.0, None, "after_s"), (1.0, 0.0, "fade_s"),
                               (float("inf"), None, "after_s")):
        with pytest.raises(InputDataError) as err:
            engine.set_sleep_timer(after, fade)
        assert err.value.field == field


# ----------------------------------------------------------------------------- resume
def test_resume_from_silence_fades_back_in() -> None:
    engine = make_engine(fade_s=0.5, seed=7)
    engine.set_targets(SoundTargets("ocean", volume_db=-12.0))
    steady = render_seconds(engine, 2.0)
    level = float(np.sqrt(np.mean(steady[-FS // 2 :] ** 2)))
    engine.resume_from_silence()
    x = render_seconds(engine, 1.0)
    rms = window_rms(x, 2400)
    assert np.abs(x[:BLOCK]).max() < 0.05 * level  # starts from silence
    assert rms[0] < rms[5] < rms[-1] and rms[-1] > 0.5 * level  # and fades in over fade_s


def test_warm_up_leaves_the_engine_untouched_and_frames_for_validates() -> None:
    engine = AudioEngine()
    engine.set_params(soundscape="rain", playing=True)
    ctl, state = engine._ctl.copy(), engine._state.copy()
    engine.warm_up()
    assert engine.is_warm and engine.frames_rendered == 0
    np.testing.assert_array_equal(engine._ctl, ctl)
    np.testing.assert_array_equal(engine._state, state)
    assert engine.frames_for(0.5) == FS // 2
    for bad in (-1.0, float("nan"), True, "1"):
        with pytest.raises(InputDataError, match="seconds"):
            engine.frames_for(bad)  # type: ignore[arg-type]


def test_the_mixers_numba_cache_follows_the_synthesis_modules() -> None:
    # The mixer inlines the kernels of other audio modules; numba's cache would keep an
    # old copy of them after an update, so a digest of their sources is compiled in.
    from heartsong.audio import mixer
    from heartsong.numba_cache import sources_digest

    assert mixer._compiled_sources_digest_kernel() == mixer._SOURCES_DIGEST != 0
    names = {m.__name__.rsplit(".", 1)[-1] for m in mixer._KERNEL_SOURCES}
    assert {"composer", "textures", "tonal", "kernels"} <= names
    assert sources_digest(mixer._KERNEL_SOURCES) == mixer._SOURCES_DIGEST
