"""BS.1770 loudness meter (coefficients, known levels, gating) and the loudness matching of
the presets: every preset at the target, and no jump in level when switching."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.signal import lfilter

from heartsong.audio.calibration import REFERENCE_VOLUME_DB, measure_presets, preset_loudness
from heartsong.audio.engine import AudioEngine
from heartsong.audio.loudness import (
    _biquad,
    block_loudness,
    integrated_loudness,
    k_weighting,
    k_weighting_coefficients,
)
from heartsong.audio.soundscape_model import TARGET_LOUDNESS_LUFS
from heartsong.audio.soundscapes import PRESETS
from heartsong.errors import InputDataError

FS = 48000


def sine(freq: float, dbfs: float, seconds: float, fs: int = FS) -> np.ndarray:
    t = np.arange(int(seconds * fs)) / fs
    return np.asarray(10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t))


def response_db(b: tuple[float, ...], a: tuple[float, ...], f: np.ndarray, fs: float) -> np.ndarray:
    z = np.exp(-2j * np.pi * f / fs)
    h = (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)
    return np.asarray(20 * np.log10(np.abs(h)))


# ----------------------------------------------------------------------------- K-weighting
def test_k_weighting_at_48k_is_the_standards_table() -> None:
    (sb, sa), (hb, ha) = k_weighting_coefficients(48000.0)
    # ITU-R BS.1770-4, Tables 1 and 2
    assert sb == (1.53512485958697, -2.69169618940638, 1.19839281085285)
    assert sa == (1.0, -1.69065929318241, 0.73248077421585)
    assert hb == (1.0, -2.0, 1.0)
    assert ha == (1.0, -1.99004745483398, 0.99007225036621)
    f = np.array([20.0, 40.0, 100.0, 1000.0, 1682.0, 5000.0, 15000.0])
    total = response_db(sb, sa, f, FS) + response_db(hb, ha, f, FS)
    assert total[0] < -10.0 and total[1] < -3.0 and total[2] > -1.5  # the RLB high-pass
    assert total[-1] == pytest.approx(4.0, abs=0.1)  # the +4 dB shelf
    assert total[3] == pytest.approx(0.69, abs=0.02)  # why the formula has -0.691


@pytest.mark.parametrize("fs", [44100.0, 96000.0])
def test_k_weighting_at_other_rates_keeps_the_response(fs: float) -> None:
    f = np.geomspace(20.0, 15000.0, 200)
    ref = sum(response_db(b, a, f, 48000.0) for b, a in k_weighting_coefficients(48000.0))
    got = sum(response_db(b, a, f, fs) for b, a in k_weighting_coefficients(fs))
    np.testing.assert_allclose(got, ref, atol=0.1)  # the bilinear warping differs slightly


def test_biquad_kernel_matches_lfilter() -> None:
    x = np.random.default_rng(1).standard_normal(5000)
    (b, a), _ = k_weighting_coefficients(44100.0)
    out = np.empty_like(x)
    _biquad(x, np.array(b), np.array(a), out)
    np.testing.assert_allclose(out, lfilter(b, a, x), rtol=1e-10, atol=1e-12)
    stereo = np.stack([x, -x], axis=1)
    kw = k_weighting(stereo, 44100.0)
    np.testing.assert_allclose(kw[:, 1], -kw[:, 0])


# ----------------------------------------------------------------------------- levels
@pytest.mark.parametrize("fs", [48000, 44100])
def test_full_scale_sine_reads_0_lufs_in_stereo_and_minus_3_in_mono(fs: int) -> None:
    x = sine(997.0, 0.0, 5.0, fs)
    assert integrated_loudness(np.stack([x, x], axis=1), fs) == pytest.approx(0.0, abs=0.05)
    assert integrated_loudness(x, fs) == pytest.approx(-3.01, abs=0.05)


def test_ebu_3341_style_sines_and_gating() -> None:
    # EBU Tech 3341 case 1: stereo 1 kHz at -23 dBFS reads -23.0 LUFS
    x = sine(1000.0, -23.0, 20.0)
    assert integrated_loudness(np.stack([x, x], axis=1), FS) == pytest.approx(-23.0, abs=0.1)
    # case 3-like: -36, -23, -36 dBFS: the quiet parts are gated out (relative gate)
    parts = [sine(1000.0, db, s) for db, s in ((-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0))]
    y = np.concatenate(parts)
    assert integrated_loudness(np.stack([y, y], axis=1), FS) == pytest.approx(-23.0, abs=0.1)
    # the relative gate is what did it: the ungated mean of the blocks is lower
    blocks = block_loudness(np.stack([y, y], axis=1), FS)
    ungated = 10 * math.log10(np.mean(10 ** (blocks / 10)))
    assert ungated < -23.4
    # absolute gate: silence does not count, and silence alone is -inf
    z = np.concatenate((np.zeros(10 * FS), x))
    assert integrated_loudness(np.stack([z, z], axis=1), FS) == pytest.approx(-23.0, abs=0.1)
    assert integrated_loudness(np.zeros((FS, 2)), FS) == float("-inf")


def test_loudness_rejects_bad_audio_naming_the_field() -> None:
    for bad in (np.zeros(100), np.zeros((0, 2)), np.full((FS, 2), np.nan), np.zeros((2, 2, 2))):
        with pytest.raises(InputDataError) as err:
            integrated_loudness(bad, FS)
        assert err.value.field == "audio"
    with pytest.raises(InputDataError, match="fs_hz"):
        k_weighting_coefficients(1000.0)


# ----------------------------------------------------------------------------- presets
def test_every_preset_is_at_the_target_loudness() -> None:
    found = measure_presets(seconds=30.0, seed=3)
    assert [r.name for r in found] == list(PRESETS)
    for r in found:
        assert r.lufs == pytest.approx(TARGET_LOUDNESS_LUFS, abs=1.0), r
        assert r.trim_db == pytest.approx(PRESETS[r.name].trim_db, abs=1.0)


def test_measurement_follows_the_trim_and_is_volume_independent() -> None:
    # A preset's measured loudness moves by exactly its trim change (the meter is linear)
    name = "brown_noise"
    base = preset_loudness(name, seconds=10.0, seed=1)
    louder = {**PRESETS, name: _with_trim(name, PRESETS[name].trim_db + 6.0)}
    assert preset_loudness(name, seconds=10.0, seed=1, presets=louder) == pytest.approx(
        base + 6.0, abs=0.01
    )
    assert REFERENCE_VOLUME_DB <= -20.0  # measured far below the limiter's knee


def _with_trim(name: str, trim_db: float) -> object:
    import dataclasses

    return dataclasses.replace(PRESETS[name], trim_db=trim_db)


def test_switching_presets_does_not_jump_in_level() -> None:
    """One continuous render, a preset switch every 20 s: each preset's loudness after its
    crossfade stays within 1.5 LU of the others, and the crossfades stay in between."""
    engine = AudioEngine(max_volume_db=0.0, fade_s=0.1, seed=12, crossfade_s=3.0)
    engine.warm_up()
    names = list(PRESETS)
    segments = []
    block = np.zeros((256, 2), dtype=np.float32)
    for name in names:
        defaults = PRESETS[name].defaults()
        defaults.pop("breath_rate_bpm")
        defaults["volume_db"] = -30.0
        engine.set_params(soundscape=name, playing=True, breath_rate_bpm=None, **defaults)
        seg = np.zeros((20 * FS, 2), dtype=np.float32)
        for start in range(0, len(seg), 256):
            engine.render(seg[start : start + 256])
        segments.append(seg)
        assert engine.render(block) is None and engine.current_preset == name
    levels = [integrated_loudness(seg[3 * FS :], FS) for seg in segments]  # after crossfade
    assert max(levels) - min(levels) < 1.5, dict(zip(names, levels, strict=True))
    for before, seg in itertools.pairwise(segments):
        # equal-power crossfade: the short-term loudness (400 ms blocks) stays within what
        # the outgoing and incoming presets do on their own (+-1.5 LU; the pad's own chord
        # changes and the ocean's waves move it by more than that)
        around = np.concatenate(
            (block_loudness(before[-10 * FS :], FS), block_loudness(seg[3 * FS :], FS))
        )
        during = block_loudness(seg[: 3 * FS], FS)
        assert around.min() - 1.5 < during.min() and during.max() < around.max() + 1.5
