"""Tonal kernels (pad, binaural beats, isochronic pulses, soft pulse) and the harmony tables:
against per-sample references, and exact frequencies measured on renders."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from heartsong.audio import tonal as tn
from heartsong.audio.engine import AudioEngine
from heartsong.audio.harmony import (
    CHORDS_PER_PROGRESSION,
    INTONATIONS,
    PAD_VOICES,
    PENTATONIC_SCALE,
    PROGRESSIONS,
    chord_table,
)
from heartsong.audio.loudness import integrated_loudness
from heartsong.audio.soundscapes import PRESETS
from test_audio_refs import SOURCE_RMS, spectral_peak_hz

FS = 48000.0
CHORDS = chord_table()


_GRID = np.linspace(0.0, 1.0, 1 << 16, endpoint=False)
_PEAK = np.max(np.abs(sum(a * np.sin(2 * np.pi * h * _GRID) for h, a in tn.PAD_HARMONICS)))


def pad_wave(phase: np.ndarray | float) -> np.ndarray:
    """The pad waveform computed from its harmonics (not the table), peak-normalised."""
    p = np.asarray(phase, dtype=float)
    return np.asarray(sum(a * np.sin(2 * np.pi * h * p) for h, a in tn.PAD_HARMONICS) / _PEAK)


def smoothstep(x: float) -> float:
    return x * x * (3 - 2 * x)


# ============================================================================= harmony
def test_chord_table_holds_the_progressions_exactly() -> None:
    assert CHORDS.shape == (len(INTONATIONS), CHORDS_PER_PROGRESSION, PAD_VOICES)
    for i, name in enumerate(INTONATIONS):
        for j, chord in enumerate(PROGRESSIONS[name]):
            assert CHORDS[i, j].tolist() == [float(r) for r in chord]
            assert list(chord) == sorted(chord)  # voices bass first, never crossing


def octave_reduced(r: Fraction) -> Fraction:
    while r >= 2:
        r /= 2
    while r < 1:
        r *= 2
    return r


def test_pentatonic_chords_use_only_the_scale_and_just_chords_are_consonant() -> None:
    scale = set(PENTATONIC_SCALE)
    for chord in PROGRESSIONS["pentatonic"]:
        assert {octave_reduced(r) for r in chord} <= scale
    for chord in PROGRESSIONS["just"] + PROGRESSIONS["pentatonic"]:
        for a, b in itertools.combinations(chord, 2):
            interval = octave_reduced(b / a)
            # simple ratios only: Tenney height n*d <= 144 admits the fifths, fourths, thirds,
            # sixths and the whole tone (9/8, 16/9) but no semitone (16/15) or tritone (45/32)
            assert interval.numerator * interval.denominator <= 144, (a, b)
    # at least one voice holds its note into the next chord
    for name in INTONATIONS:
        prog = PROGRESSIONS[name]
        for a, b in itertools.pairwise((*prog, prog[0])):
            assert sum(x != y for x, y in zip(a, b, strict=True)) <= 3


# ============================================================================= pad
class RefPad:
    """The pad kernel's docstring, one sample at a time, with the exact waveform."""

    def __init__(self) -> None:
        self.idx = 0
        self.t = 0.0
        # per voice: current Hz, next Hz, envelope, stage, delay, phase a, phase b
        self.v = np.zeros((PAD_VOICES, 7))

    def block(self, n: int, chords: np.ndarray, root: float, chord_s: float, c0: float,
              c1: float) -> np.ndarray:
        dt = n / FS
        if self.v[0, 0] == 0:
            for k, voice in enumerate(self.v):
                f = root * chords[self.idx, k]
                voice[:5] = f, f, 1.0, 0.0, 0.0
        self.t += dt
        if self.t >= chord_s:
            self.t = self.t - chord_s if self.t - chord_s < chord_s else 0.0
            self.idx = (self.idx + 1) % chords.shape[0]
        near, far = tn.PAD_PAN
        step = dt / tn.PAD_VOICE_FADE_S
        env1 = np.zeros(PAD_VOICES)
        for k, voice in enumerate(self.v):
            want = root * chords[self.idx, k]
            if want != voice[1]:
                voice[1] = want
                if voice[3] == 0:
                    voice[4] = k * tn.PAD_STAGGER_S
            if voice[3] == 0 and voice[1] != voice[0]:
                voice[4] -= dt
                if voice[4] <= 0:
                    voice[3] = 1
            env1[k] = {0: voice[2], 1: max(0.0, voice[2] - step),
                       2: min(1.0, voice[2] + step)}[int(voice[3])]
        env0 = self.v[:, 2].copy()
        # the pad's power: every voice's squared gain, kept at PAD_VOICES
        norm0 = math.sqrt(PAD_VOICES / max(sum(smoothstep(e) ** 2 for e in env0),
                                           tn.PAD_MIN_POWER))
        norm1 = math.sqrt(PAD_VOICES / max(sum(smoothstep(e) ** 2 for e in env1),
                                           tn.PAD_MIN_POWER))
        out = np.zeros((n, 2))
        i = np.arange(1, n + 1)
        for k, voice in enumerate(self.v):
            g0 = tn._PAD_GAIN * norm0 * smoothstep(env0[k])
            g1 = tn._PAD_GAIN * norm1 * smoothstep(env1[k])
            g = g0 + (g1 - g0) * i / n
            spread = 1 + tn.PAD_DETUNE_SPREAD * k
            d0, d1 = 2 ** (c0 * spread / 1200), 2 ** (c1 * spread / 1200)
            f = voice[0]
            inc_a = f * d0 / FS + (f * d1 / FS - f * d0 / FS) * i / n
            inc_b = f / d0 / FS + (f / d1 / FS - f / d0 / FS) * i / n
            pa = (voice[5] + np.cumsum(inc_a)) % 1.0
            pb = (voice[6] + np.cumsum(inc_b)) % 1.0
            wa, wb = g * pad_wave(pa), g * pad_wave(pb)
            la, lb = (near, far) if k % 2 == 0 else (far, near)
            out[:, 0] += la * wa + lb * wb
            out[:, 1] += lb * wa + la * wb
            voice[5], voice[6] = pa[-1], pb[-1]
        for k, voice in enumerate(self.v):
            voice[2] = env1[k]
            if voice[3] == 1 and env1[k] == 0:
                voice[0] = voice[1]
                voice[3] = 2
            elif voice[3] == 2 and env1[k] == 1:
                voice[3] = 0
        return out


def run_pad(st: np.ndarray, blocks: int, n: int, root: float, chord_s: float,
            chords: np.ndarray = CHORDS[0], cents: float = 6.0) -> np.ndarray:
    outs = []
    for _ in range(blocks):
        out = np.zeros((n, 2))
        tn._pad(out, st, chords, root, chord_s, cents, cents, FS)
        outs.append(out)
    return np.concatenate(outs)


def test_pad_matches_reference_through_a_chord_change() -> None:
    st = np.zeros(tn.PAD_STATE)
    ref = RefPad()
    chord_s = tn.PAD_MIN_CHORD_S
    blocks = int((chord_s + 4.0) * FS / 4096)  # past the change and into the first fade
    for b in range(blocks):
        c0, c1 = 4.0 + b % 3, 4.0 + (b + 1) % 3
        out = np.zeros((4096, 2))
        tn._pad(out, st, CHORDS[0], 110.0, chord_s, c0, c1, FS)
        expected = ref.block(4096, CHORDS[0], 110.0, chord_s, c0, c1)
        # the 4096-point table's linear interpolation errs by at most (1/4096)**2 / 8 times
        # the waveform's second derivative: about 5e-6 of full scale
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    assert int(st[0]) == ref.idx == 1
    assert ref.v[0, 3] != 0 or ref.v[1, 3] != 0  # a voice is changing


def test_pad_voices_change_pitch_only_while_silent() -> None:
    st = np.zeros(tn.PAD_STATE)
    chord_s = tn.PAD_MIN_CHORD_S
    n = 256
    history = []
    # four chord changes, and time for the last voice to finish the last one
    seconds = 4 * chord_s + (PAD_VOICES - 1) * tn.PAD_STAGGER_S + tn.PAD_VOICE_FADE_S + 1.0
    for _ in range(int(seconds * FS / n)):
        out = np.zeros((n, 2))
        tn._pad(out, st, CHORDS[1], 196.0, chord_s, 6.0, 6.0, FS)
        history.append(st.copy())
    h = np.array(history)
    chords_seen = [int(c) for c, _ in itertools.groupby(h[:, 0])]
    assert chords_seen == [0, 1, 2, 3, 0]
    changes = 0
    for v in range(PAD_VOICES):
        b = 2 + 8 * v
        freq, env = h[:, b], h[:, b + 2]
        for k in np.flatnonzero(np.diff(freq) != 0) + 1:
            changes += 1
            # the voice took its new pitch at the end of a block that faded it to silence,
            # so the next block starts the new pitch from zero
            assert env[k] == 0.0 and env[k - 1] > 0.0 and env[k + 1] > 0.0
            assert freq[k] == pytest.approx(196.0 * CHORDS[1][int(h[k, 0]), v])
    moved = sum(
        sum(a != b for a, b in zip(x, y, strict=True))
        for x, y in itertools.pairwise([*PROGRESSIONS["pentatonic"], PROGRESSIONS["pentatonic"][0]])
    )
    assert changes == moved


def test_pad_plays_the_chord_detuned_around_each_note_and_never_steps() -> None:
    st = np.zeros(tn.PAD_STATE)
    held = run_pad(st, 200, 1024, 110.0, 1e9, cents=8.0)[:, 0]  # no chord change, 4.3 s
    chord = 110.0 * CHORDS[0][0]
    for v, f in enumerate(chord):
        peak = spectral_peak_hz(held, FS, f * 0.97, f * 1.03)
        # the strongest line near each note is one of its two detuned oscillators (or, for
        # a note an octave above another voice, that voice's second harmonic)
        cents = [8.0 * (1 + tn.PAD_DETUNE_SPREAD * k) for k in range(v + 1)]
        assert min(abs(peak / f - 2 ** (s * c / 1200)) for c in cents for s in (-1, 1)) < 1e-3
    steady_step = np.abs(np.diff(held)).max()
    st = np.zeros(tn.PAD_STATE)
    moving = run_pad(st, int(3 * tn.PAD_MIN_CHORD_S * FS / 256), 256, 110.0, tn.PAD_MIN_CHORD_S)
    assert np.abs(np.diff(moving, axis=0)).max() <= 1.1 * steady_step
    assert float(np.sqrt(np.mean(held**2))) == pytest.approx(SOURCE_RMS, rel=0.25)


# ============================================================================= binaural
def test_binaural_matches_reference_with_ramps() -> None:
    st = np.array([0.25, 0.5])
    out = np.zeros((500, 2))
    tn._binaural(out, st, 200.0, 220.0, 4.0, 6.0, FS)
    i = np.arange(1, 501)
    carrier = 200.0 + 20.0 * i / 500
    beat = 4.0 + 2.0 * i / 500
    ph_l = 0.25 + np.cumsum(carrier - beat / 2) / FS
    ph_r = 0.5 + np.cumsum(carrier + beat / 2) / FS
    amp = SOURCE_RMS * math.sqrt(2)
    np.testing.assert_allclose(out[:, 0], amp * np.sin(2 * np.pi * ph_l), atol=2e-6)
    np.testing.assert_allclose(out[:, 1], amp * np.sin(2 * np.pi * ph_r), atol=2e-6)
    assert st[0] == pytest.approx(ph_l[-1] % 1.0) and st[1] == pytest.approx(ph_r[-1] % 1.0)


@pytest.mark.parametrize(("carrier", "beat"), [(200.0, 2.0), (200.0, 6.0), (300.0, 10.0)])
def test_binaural_ears_differ_by_exactly_the_beat(carrier: float, beat: float) -> None:
    st = np.zeros(2)
    out = np.zeros((int(20 * FS), 2))
    tn._binaural(out, st, carrier, carrier, beat, beat, FS)
    left = spectral_peak_hz(out[:, 0], FS, carrier - 20, carrier + 20)
    right = spectral_peak_hz(out[:, 1], FS, carrier - 20, carrier + 20)
    assert left == pytest.approx(carrier - beat / 2, abs=1e-3)
    assert right == pytest.approx(carrier + beat / 2, abs=1e-3)
    assert right - left == pytest.approx(beat, abs=2e-3)


@pytest.mark.parametrize("beat", [2.5, 4.0, 10.0])  # delta, theta, alpha
def test_binaural_preset_render_has_exactly_the_configured_beat(beat: float) -> None:
    engine = AudioEngine(max_volume_db=0.0, fade_s=0.1, seed=4)
    engine.set_params(soundscape="binaural_sleep", playing=True, volume_db=-12.0, beat_hz=beat)
    engine.warm_up()
    out = np.zeros((int(22 * FS), 2), dtype=np.float32)
    for start in range(0, len(out), 256):
        engine.render(out[start : start + 256])
    x = out[int(2 * FS) :].astype(np.float64)  # 20 s after the fade-in
    carrier = PRESETS["binaural_sleep"].carrier_hz
    left = spectral_peak_hz(x[:, 0], FS, carrier - 15, carrier + 15)
    right = spectral_peak_hz(x[:, 1], FS, carrier - 15, carrier + 15)
    assert right - left == pytest.approx(beat, abs=0.01)
    # on the FFT grid (0.05 Hz bins) the peaks are exactly beat / 0.05 bins apart
    f = np.fft.rfftfreq(len(x), 1 / FS)
    band = (f > carrier - 15) & (f < carrier + 15)
    bins = [np.flatnonzero(band)[np.argmax(np.abs(np.fft.rfft(x[:, c]))[band])] for c in (0, 1)]
    assert (bins[1] - bins[0]) * (f[1] - f[0]) == pytest.approx(beat, abs=1e-9)


# ============================================================================= isochronic
def test_isochronic_matches_reference_and_pulses_at_the_rate() -> None:
    st = np.array([0.1, 0.9])
    out = np.zeros((700, 2))
    tn._isochronic(out, st, 300.0, 310.0, 10.0, 12.0, FS)
    i = np.arange(1, 701)
    pc = 0.1 + np.cumsum(300.0 + 10.0 * i / 700) / FS
    pp = 0.9 + np.cumsum(10.0 + 2.0 * i / 700) / FS
    gate = np.maximum(np.sin(2 * np.pi * pp), 0.0) ** 2
    expected = tn._ISO_AMP * gate * np.sin(2 * np.pi * pc)
    np.testing.assert_allclose(out[:, 0], expected, atol=2e-5)
    np.testing.assert_array_equal(out[:, 0], out[:, 1])

    st = np.zeros(2)
    long = np.zeros((int(10 * FS), 2))
    tn._isochronic(long, st, 300.0, 300.0, 10.0, 10.0, FS)
    power = long[:, 0] ** 2
    assert spectral_peak_hz(power - power.mean(), FS, 1.0, 30.0) == pytest.approx(10.0, abs=0.01)
    assert np.mean(long[:, 0] == 0.0) == pytest.approx(0.5, abs=0.01)  # silent half-cycles
    assert float(np.sqrt(np.mean(long**2))) == pytest.approx(SOURCE_RMS, rel=0.02)


# ============================================================================= pulse
def ref_pulse(st: np.ndarray, n: int, t0: float, t1: float, pitch: float) -> np.ndarray:
    bp, op, env, att, start = st
    out = np.zeros(n)
    decay = math.exp(-1 / (tn.PULSE_DECAY_S * FS))
    for i in range(n):
        bp += (t0 + (t1 - t0) * (i + 1) / n) / (60 * FS)
        if bp >= 1:
            bp -= 1
            att, start = 0.0, env
        if att >= 0:
            att += 1 / (tn.PULSE_ATTACK_S * FS)
            if att >= 1:
                att, env = -1.0, 1.0
            else:
                env = start + (1 - start) * smoothstep(att)
        else:
            env *= decay
        op = (op + pitch / FS) % 1.0
        out[i] = tn._PULSE_GAIN * env * float(pad_wave(op))
    st[:] = bp, op, env, att, start
    return out


def test_pulse_matches_reference_through_beats() -> None:
    st = np.zeros(tn.PULSE_STATE)
    ref_st = st.copy()
    for t0, t1 in ((110.0, 120.0), (120.0, 120.0)):
        out = np.zeros((int(0.6 * FS), 2))
        tn._pulse(out, st, t0, t1, 65.0, FS)
        # table interpolation: about 5e-6 of the waveform's peak (the pulse peaks near 1.2)
        np.testing.assert_allclose(out[:, 0], ref_pulse(ref_st, len(out), t0, t1, 65.0),
                                   atol=2e-5)
    np.testing.assert_allclose(st, ref_st, atol=1e-9)


@pytest.mark.parametrize("tempo", [48.0, 72.0, 120.0])
def test_pulse_beats_at_the_tempo_without_a_step(tempo: float) -> None:
    st = np.zeros(tn.PULSE_STATE)
    n = 48  # 1 ms blocks, to see each attack start
    outs, attack = [], []
    for _ in range(int(12 * FS / n)):
        out = np.zeros((n, 2))
        tn._pulse(out, st, tempo, tempo, 65.0, FS)
        outs.append(out[:, 0])
        attack.append(st[3])
    att = np.array(attack)
    starts = np.flatnonzero((att[1:] >= 0) & ((att[:-1] < 0) | (att[1:] < att[:-1]))) + 1
    np.testing.assert_allclose(np.diff(starts) * n / FS, 60.0 / tempo, atol=1.5 * n / FS)
    x = np.concatenate(outs)
    # the loudest moment of each beat is right after its attack
    period = int(60.0 / tempo * FS)
    first = starts[1] * n
    for k in range(3):
        beat = np.abs(x[first + k * period : first + (k + 1) * period])
        assert np.argmax(beat) < (tn.PULSE_ATTACK_S + 0.03) * FS
    # no step: never faster than a full-level tone of the pulse's own harmonics could move
    amp = tn._PULSE_GAIN / _PEAK
    slope = 2 * np.pi * 65.0 / FS * amp * sum(h * a for h, a in tn.PAD_HARMONICS)
    assert np.abs(np.diff(x)).max() <= slope


@pytest.mark.parametrize("intonation", [0, 1])
def test_pad_loudness_stays_level_from_chord_to_chord(intonation: int) -> None:
    # each chord (its held part and the change into it) within 0.6 LU of the others: the
    # per-voice detunes keep coinciding harmonics from adding coherently, and the power
    # normalisation makes up for the voices that are fading
    chord_s = 2 * tn.PAD_MIN_CHORD_S
    st = np.zeros(tn.PAD_STATE)
    x = run_pad(st, int(4 * chord_s * FS / 256) + 1, 256, 130.81, chord_s,
                chords=CHORDS[intonation], cents=7.5)
    per_chord = [
        integrated_loudness(x[int(k * chord_s * FS) : int((k + 1) * chord_s * FS)], FS)
        for k in range(4)
    ]
    assert max(per_chord) - min(per_chord) < 0.6, per_chord
