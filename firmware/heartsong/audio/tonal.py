"""Tonal layers: a pad of detuned voices, binaural beats, isochronic pulses, a soft pulse.

Every oscillator is a float64 phase accumulator (phase in cycles, wrapped to [0, 1)) read
through a one-period wavetable with linear interpolation, so its frequency is exact to
float64 precision and a frequency change never moves the phase (no click). Each kernel is
a numba ``@njit(cache=True)`` function that fills a stereo float64 block ``(frames, 2)``
and keeps its memory in one flat float64 state array (``*_STATE`` floats, zeros = fresh).
Each layer's RMS is near ``SOURCE_RMS`` (the presets' loudness trims do the exact
matching).

Methods
-------
* Pad: ``PAD_VOICES`` voices, each two oscillators detuned by +-``detune`` cents and panned
  apart, so their slow beating moves between the ears (the classic "chorus" ensemble; Dattorro
  1997, "Effect design part 2", J. Audio Eng. Soc. 45(10)). The waveform sums harmonics
  1..8 at ``h**-1.5`` (softer than a sawtooth, band-limited for the pad's range). Chords
  come from ``heartsong.audio.harmony``; at each chord change a voice whose note changes
  fades out over ``PAD_VOICE_FADE_S``, takes its new pitch while silent and fades back
  in, voices staggered by ``PAD_STAGGER_S``: the harmony moves slowly and never glides.
* Binaural beats: a pure tone at ``carrier - beat/2`` in the left ear and ``carrier +
  beat/2`` in the right; the brain hears the difference ``beat`` (Oster 1973, "Auditory
  beats in the brain", Sci. Am. 229(4):94-102). Delta 0.5-4 Hz, theta 4-8 Hz, alpha 8-13 Hz.
* Isochronic pulses: one tone in both ears, gated at ``beat`` Hz by the smooth pulse
  ``max(sin(2 pi phi), 0)**2`` (on for half a cycle, zero value and slope at its ends).
* Soft pulse: the pad waveform an octave below the preset's root, struck at ``tempo`` beats
  per minute with a raised-cosine attack of ``PULSE_ATTACK_S`` from its current level (so
  a new beat over a ringing one never steps) and an exponential decay ``PULSE_DECAY_S``.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.audio.harmony import PAD_VOICES
from heartsong.audio.kernels import SOURCE_RMS

__all__ = [
    "BINAURAL_STATE",
    "ISOCHRONIC_STATE",
    "PAD_CHORD_BEATS",
    "PAD_DETUNE_SPREAD",
    "PAD_HARMONICS",
    "PAD_MIN_CHORD_S",
    "PAD_MIN_POWER",
    "PAD_STAGGER_S",
    "PAD_STATE",
    "PAD_TABLE",
    "PAD_VOICE_FADE_S",
    "PULSE_ATTACK_S",
    "PULSE_DECAY_S",
    "PULSE_STATE",
    "SINE_TABLE",
    "TABLE_SIZE",
    "chord_period_s",
]

F64Array = npt.NDArray[np.float64]

#: Points per wavetable period, a power of two (each table has one extra point, equal to
#: the first).
TABLE_SIZE: Final = 4096
assert TABLE_SIZE & (TABLE_SIZE - 1) == 0
_GRID = np.arange(TABLE_SIZE + 1) / TABLE_SIZE
#: One period of a sine, ``TABLE_SIZE + 1`` points.
SINE_TABLE: Final = np.sin(2.0 * np.pi * _GRID)
#: Harmonics of the pad waveform and their amplitudes ``h**-1.5``.
PAD_HARMONICS: Final = tuple((h, h**-1.5) for h in range(1, 9))
_pad_wave = sum(a * np.sin(2.0 * np.pi * h * _GRID) for h, a in PAD_HARMONICS)
#: One period of the pad waveform, peak-normalised to 1.
PAD_TABLE: Final = _pad_wave / np.max(np.abs(_pad_wave))
_PAD_TABLE_RMS = float(np.sqrt(np.mean(PAD_TABLE[:-1] ** 2)))

# ----------------------------------------------------------------------------- pad
#: Seconds a changing voice takes to fade out (and again to fade back in).
PAD_VOICE_FADE_S: Final = 2.5
#: Seconds between the starts of neighbouring voices' changes.
PAD_STAGGER_S: Final = 1.2
#: Beats of the tempo per chord.
PAD_CHORD_BEATS: Final = 16
#: Shortest chord in seconds (so every voice finishes its change first).
PAD_MIN_CHORD_S: Final = 2.0 * PAD_VOICE_FADE_S + (PAD_VOICES - 1) * PAD_STAGGER_S + 1.0
#: Voice ``v`` is detuned by ``detune * (1 + PAD_DETUNE_SPREAD * v)`` cents.
PAD_DETUNE_SPREAD: Final = 0.3
#: Pan weights (near ear, far ear) of a voice's two oscillators.
PAD_PAN: Final = (0.85, 0.5)
#: Least pad power (sum of squared voice gains) the normalisation makes up for: half of
#: the voices silent at most (+3 dB).
PAD_MIN_POWER: Final = PAD_VOICES / 2.0
_PV = 8  # per voice: current Hz, next Hz, envelope, stage, delay s, phases a, b, next envelope
_PAD_VOICE0 = 2  # after chord index and time in chord
#: Pad state: chord index, seconds into the chord, then per voice (8 floats).
PAD_STATE: Final = _PAD_VOICE0 + PAD_VOICES * _PV
_STAGE_HOLD = 0.0
_STAGE_FALL = 1.0
_STAGE_RISE = 2.0
# Incoherent sum of 2 oscillators x PAD_VOICES per ear at the pan weights -> SOURCE_RMS.
_PAD_GAIN = SOURCE_RMS / (
    _PAD_TABLE_RMS * math.sqrt(PAD_VOICES * (PAD_PAN[0] ** 2 + PAD_PAN[1] ** 2))
)

# ----------------------------------------------------------------------------- beats
#: Binaural state: left and right phases.
BINAURAL_STATE: Final = 2
_BINAURAL_AMP = SOURCE_RMS * math.sqrt(2.0)
#: Isochronic state: carrier phase, pulse phase.
ISOCHRONIC_STATE: Final = 2
# mean(max(sin, 0)**4) = 3/16; times the carrier's 1/2.
_ISO_AMP = SOURCE_RMS / math.sqrt(3.0 / 16.0 * 0.5)

# ----------------------------------------------------------------------------- pulse
#: Attack and decay time constant of the soft pulse in seconds.
PULSE_ATTACK_S: Final = 0.03
PULSE_DECAY_S: Final = 0.2
#: Pulse state: beat phase, oscillator phase, level, attack progress (-1 = decaying),
#: level when the attack began.
PULSE_STATE: Final = 5
# RMS of an exponential decay repeated every second (60 bpm): sqrt(tau/2 (1 - e^-2/tau)).
_PULSE_ENV_RMS = math.sqrt(PULSE_DECAY_S / 2.0 * (1.0 - math.exp(-2.0 / PULSE_DECAY_S)))
_PULSE_GAIN = SOURCE_RMS / (_PAD_TABLE_RMS * _PULSE_ENV_RMS)


def chord_period_s(tempo_bpm: float) -> float:
    """Seconds per pad chord at ``tempo_bpm``: ``PAD_CHORD_BEATS`` beats, at least
    ``PAD_MIN_CHORD_S``."""
    return max(PAD_CHORD_BEATS * 60.0 / tempo_bpm, PAD_MIN_CHORD_S)


@njit(cache=True)
def _table_read(table: F64Array, phase: float) -> float:
    """``table`` (one period + 1 point) at ``phase`` in [0, 1), linearly interpolated.

    The index is masked to the table (``TABLE_SIZE`` is a power of two), so even a phase
    outside [0, 1) reads inside the table: a wrong sample at worst, never a wild read.
    """
    x = phase * TABLE_SIZE
    k = int(x)
    i = k & (TABLE_SIZE - 1)
    a = table[i]
    return float(a + (x - k) * (table[i + 1] - a))


@njit(cache=True)
def _smoothstep(x: float) -> float:
    """``3x**2 - 2x**3`` on [0, 1] (zero slope at both ends)."""
    return x * x * (3.0 - 2.0 * x)


@njit(cache=True)
def _pad_reset(st: F64Array, chords: F64Array, root_hz: float) -> None:
    """Put every voice straight on the current chord at full level (while the pad is silent)."""
    idx = int(st[0])
    for v in range(PAD_VOICES):
        b = _PAD_VOICE0 + v * _PV
        f = root_hz * chords[idx, v]
        st[b] = f
        st[b + 1] = f
        st[b + 2] = 1.0
        st[b + 3] = _STAGE_HOLD
        st[b + 4] = 0.0


@njit(cache=True)
def _pad(
    out: F64Array,
    st: F64Array,
    chords: F64Array,
    root_hz: float,
    chord_s: float,
    detune0_cents: float,
    detune1_cents: float,
    fs_hz: float,
) -> None:
    """Fill ``out`` (frames, 2) with the pad: detuned voices moving slowly through chords.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    st:
        ``PAD_STATE`` floats: chord index, seconds into the chord, then per voice: current
        and next frequency in Hz, envelope 0..1, stage (0 hold, 1 fading out, 2 fading in),
        seconds before its change starts, the two oscillator phases, the envelope at the
        end of the block being rendered.
    chords:
        ``(chords, PAD_VOICES)`` ratios to the root (one intonation of
        :func:`~heartsong.audio.harmony.chord_table`).
    root_hz:
        Root frequency in Hz; a change (another preset) is taken like a chord change.
    chord_s:
        Seconds per chord (:func:`chord_period_s` of the tempo).
    detune0_cents, detune1_cents:
        Detune at the block's start and end, in cents: voice ``v``'s two oscillators are
        ``+-detune (1 + PAD_DETUNE_SPREAD v)`` cents from its pitch.
    fs_hz:
        Sampling rate in Hz.

    Notes
    -----
    Chord changes, stage changes and frequency changes happen only at block boundaries; a
    voice takes its new frequency at a boundary where its envelope is exactly 0. Its gain
    ``smoothstep(envelope) * norm``, interpolated linearly across each block, includes
    ``norm = sqrt(PAD_VOICES / max(sum of smoothstep(envelope)**2, PAD_MIN_POWER))``, so
    while voices fade the others swell a little and the pad's power (and loudness) stays
    level through a chord change. Each voice has its own detune: in just intonation the
    harmonics of octave- and fifth-related voices coincide exactly, and with equal detunes
    they would add coherently, making the loudness of a chord depend on its voicing and on
    the oscillators' phases; with different detunes they beat slowly and add in power.
    """
    n = out.shape[0]
    out[:, :] = 0.0
    if n == 0:
        return
    dt = n / fs_hz
    n_chords = chords.shape[0]
    if st[_PAD_VOICE0] == 0.0:  # fresh state
        _pad_reset(st, chords, root_hz)
    t = st[1] + dt
    if t >= chord_s:
        t = t - chord_s if t - chord_s < chord_s else 0.0
        st[0] = float((int(st[0]) + 1) % n_chords)
    st[1] = t
    idx = int(st[0])
    step = dt / PAD_VOICE_FADE_S
    det0 = 2.0 ** (detune0_cents / 1200.0)
    det1 = 2.0 ** (detune1_cents / 1200.0)
    near, far = PAD_PAN
    # 1. each voice's stage and its envelope at the end of this block
    p0 = 0.0
    p1 = 0.0
    for v in range(PAD_VOICES):
        b = _PAD_VOICE0 + v * _PV
        want = root_hz * chords[idx, v]
        stage = st[b + 3]
        if want != st[b + 1]:
            st[b + 1] = want
            if stage == _STAGE_HOLD:
                st[b + 4] = v * PAD_STAGGER_S
        env0 = st[b + 2]
        if stage == _STAGE_HOLD and st[b + 1] != st[b]:
            st[b + 4] -= dt
            if st[b + 4] <= 0.0:
                stage = _STAGE_FALL
        if stage == _STAGE_FALL:
            env1 = max(0.0, env0 - step)
        elif stage == _STAGE_RISE:
            env1 = min(1.0, env0 + step)
        else:
            env1 = env0
        st[b + 3] = stage
        st[b + 7] = env1
        p0 += _smoothstep(env0) ** 2
        p1 += _smoothstep(env1) ** 2
    # 2. the voices, their gains normalised so the pad's power stays that of all voices
    norm0 = math.sqrt(PAD_VOICES / max(p0, PAD_MIN_POWER))
    norm1 = math.sqrt(PAD_VOICES / max(p1, PAD_MIN_POWER))
    for v in range(PAD_VOICES):
        b = _PAD_VOICE0 + v * _PV
        g0 = _PAD_GAIN * norm0 * _smoothstep(st[b + 2])
        g1 = _PAD_GAIN * norm1 * _smoothstep(st[b + 7])
        dg = (g1 - g0) / n
        freq = st[b]
        spread = 1.0 + PAD_DETUNE_SPREAD * v  # each voice its own detune (see the Notes)
        r0 = det0**spread
        r1 = det1**spread
        inc_a0 = freq * r0 / fs_hz
        inc_b0 = freq / r0 / fs_hz
        da = (freq * r1 / fs_hz - inc_a0) / n
        db = (freq / r1 / fs_hz - inc_b0) / n
        if v % 2 == 0:
            la, ra, lb, rb = near, far, far, near
        else:
            la, ra, lb, rb = far, near, near, far
        pa = st[b + 5]
        pb = st[b + 6]
        if g0 > 0.0 or g1 > 0.0:
            for i in range(n):
                pa += inc_a0 + da * (i + 1)
                if pa >= 1.0:
                    pa -= 1.0
                pb += inc_b0 + db * (i + 1)
                if pb >= 1.0:
                    pb -= 1.0
                g = g0 + dg * (i + 1)
                wa = g * _table_read(PAD_TABLE, pa)
                wb = g * _table_read(PAD_TABLE, pb)
                out[i, 0] += la * wa + lb * wb
                out[i, 1] += ra * wa + rb * wb
        st[b + 5] = pa
        st[b + 6] = pb
    # 3. stage changes: a voice that reached silence takes its new pitch
    for v in range(PAD_VOICES):
        b = _PAD_VOICE0 + v * _PV
        env1 = st[b + 7]
        st[b + 2] = env1
        stage = st[b + 3]
        if stage == _STAGE_FALL and env1 == 0.0:
            st[b] = st[b + 1]
            stage = _STAGE_RISE
        elif stage == _STAGE_RISE and env1 == 1.0:
            stage = _STAGE_HOLD
        st[b + 3] = stage


@njit(cache=True)
def _binaural(
    out: F64Array,
    st: F64Array,
    carrier0_hz: float,
    carrier1_hz: float,
    beat0_hz: float,
    beat1_hz: float,
    fs_hz: float,
) -> None:
    """Fill ``out`` (frames, 2) with binaural beats: ``carrier -+ beat/2`` left and right.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    st:
        ``BINAURAL_STATE`` floats: left and right phase in cycles.
    carrier0_hz, carrier1_hz:
        Carrier frequency in Hz at the block's start and end (ramped per sample).
    beat0_hz, beat1_hz:
        Beat frequency in Hz at the block's start and end: the right ear is exactly this
        much higher than the left.
    fs_hz:
        Sampling rate in Hz.
    """
    n = out.shape[0]
    if n == 0:
        return
    dc = (carrier1_hz - carrier0_hz) / n
    db = (beat1_hz - beat0_hz) / n
    inv = 1.0 / fs_hz
    pl = st[0]
    pr = st[1]
    for i in range(n):
        c = carrier0_hz + dc * (i + 1)
        half = 0.5 * (beat0_hz + db * (i + 1))
        pl += (c - half) * inv
        if pl >= 1.0:
            pl -= 1.0
        pr += (c + half) * inv
        if pr >= 1.0:
            pr -= 1.0
        out[i, 0] = _BINAURAL_AMP * _table_read(SINE_TABLE, pl)
        out[i, 1] = _BINAURAL_AMP * _table_read(SINE_TABLE, pr)
    st[0] = pl
    st[1] = pr


@njit(cache=True)
def _isochronic(
    out: F64Array,
    st: F64Array,
    carrier0_hz: float,
    carrier1_hz: float,
    rate0_hz: float,
    rate1_hz: float,
    fs_hz: float,
) -> None:
    """Fill ``out`` (frames, 2) with isochronic pulses: a tone gated smoothly at ``rate``.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2); both ears get the same signal.
    st:
        ``ISOCHRONIC_STATE`` floats: carrier phase, pulse phase (cycles).
    carrier0_hz, carrier1_hz:
        Tone frequency in Hz at the block's start and end.
    rate0_hz, rate1_hz:
        Pulse rate in Hz at the block's start and end; each pulse is
        ``max(sin(2 pi phi), 0)**2`` of the pulse phase.
    fs_hz:
        Sampling rate in Hz.
    """
    n = out.shape[0]
    if n == 0:
        return
    dc = (carrier1_hz - carrier0_hz) / n
    dr = (rate1_hz - rate0_hz) / n
    inv = 1.0 / fs_hz
    pc = st[0]
    pp = st[1]
    for i in range(n):
        pc += (carrier0_hz + dc * (i + 1)) * inv
        if pc >= 1.0:
            pc -= 1.0
        pp += (rate0_hz + dr * (i + 1)) * inv
        if pp >= 1.0:
            pp -= 1.0
        gate = max(_table_read(SINE_TABLE, pp), 0.0)
        y = _ISO_AMP * gate * gate * _table_read(SINE_TABLE, pc)
        out[i, 0] = y
        out[i, 1] = y
    st[0] = pc
    st[1] = pp


@njit(cache=True)
def _pulse(
    out: F64Array,
    st: F64Array,
    tempo0_bpm: float,
    tempo1_bpm: float,
    pitch_hz: float,
    fs_hz: float,
) -> None:
    """Fill ``out`` (frames, 2) with a soft pulse struck at the tempo.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2); both ears get the same signal.
    st:
        ``PULSE_STATE`` floats: beat phase (cycles), oscillator phase (cycles), level,
        attack progress 0..1 (-1 while decaying), level at the start of the attack. A fresh
        (zero) state begins with a beat.
    tempo0_bpm, tempo1_bpm:
        Tempo in beats per minute at the block's start and end.
    pitch_hz:
        Fundamental of the pulse in Hz (the pad waveform, so it has audible harmonics on
        small speakers).
    fs_hz:
        Sampling rate in Hz.
    """
    n = out.shape[0]
    if n == 0:
        return
    dtempo = (tempo1_bpm - tempo0_bpm) / n
    inv_beat = 1.0 / (60.0 * fs_hz)
    attack_step = 1.0 / (PULSE_ATTACK_S * fs_hz)
    decay = math.exp(-1.0 / (PULSE_DECAY_S * fs_hz))
    inc = pitch_hz / fs_hz
    bp = st[0]
    op = st[1]
    env = st[2]
    att = st[3]
    start = st[4]
    for i in range(n):
        bp += (tempo0_bpm + dtempo * (i + 1)) * inv_beat
        if bp >= 1.0:
            bp -= 1.0
            att = 0.0
            start = env
        if att >= 0.0:
            att += attack_step
            if att >= 1.0:
                att = -1.0
                env = 1.0
            else:
                env = start + (1.0 - start) * _smoothstep(att)
        else:
            env *= decay
        op += inc
        if op >= 1.0:
            op -= 1.0
        y = _PULSE_GAIN * env * _table_read(PAD_TABLE, op)
        out[i, 0] = y
        out[i, 1] = y
    st[0] = bp
    st[1] = op
    st[2] = env
    st[3] = att
    st[4] = start
