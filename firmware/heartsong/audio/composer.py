"""Evolving composition: harmony and melody composed sample by sample as they play.

The ``composer`` layer (preset ``evolving_garden``) is one numba kernel,
:func:`_composer`, that keeps its whole score in a flat float64 state array and draws
every musical decision from the layer's xorshift generator at beat boundaries, so the
audio callback neither allocates nor calls back into Python. What it composes:

* **Scale and key**: the major pentatonic scale in just intonation (1, 9/8, 5/4, 3/2,
  5/3; no semitones, so no two notes ever clash). At the end of a phrase the key moves
  a just fifth up or down with probability ``MODULATE_P`` (folded into half an octave
  either side of the root), so the music wanders through related keys and an hour
  never settles into a cycle.
* **Harmony**: nine chords of three scale degrees (``CHORDS``) chosen by a first-order
  Markov chain (``TRANSITIONS``; Ames 1989 reviews Markov composition), one chord every
  ``CHORD_BEATS`` beats, never rocking straight back to the chord before; a phrase is
  ``PHRASE_CHORDS`` chords and its last chord resolves to the tonic with probability
  ``CADENCE_P`` (phrase structure).
* **Voice leading**: three pad voices each move to the nearest tone of the next chord
  that no lower voice took (the smallest motion, the rule of common-practice voice
  leading) and glide there slowly (time constant ``GLIDE_S``); each voice's level wanders
  (a new level in ``LEVEL_RANGE`` on a beat with probability ``LEVEL_P``, reached with
  time constant ``LEVEL_TAU_S``), so even a chord heard before comes back in another
  colour; at a chord change one voice moves by an octave with probability
  ``REVOICE_P`` (a new voicing).
* **Melody**: notes of the scale two octaves above the root, mostly by step (a random
  walk of -2..+2 scale steps that turns back at the range's ends), held 1-4 beats, on
  a beat with probability ``density``; each note has a soft envelope (raised-cosine
  attack ``ATTACK_S``, exponential decay, a faster release when the next note starts in
  the other of two voices), so notes overlap legato and never click. The first beat of
  each phrase's last chord is left silent (the melody breathes).

What therapy moves: ``tempo_bpm`` (beats per minute: chord and note rate),
``intensity`` (note density 0.2-0.7 per beat) and ``brightness`` (harmonic content of
pad and melody: pure sine at 0, the soft ``PAD_TABLE`` wave at 1). The output's RMS is
near ``SOURCE_RMS`` at the defaults; the preset's ``trim_db`` does the exact loudness
matching.

References
----------
Ames C (1989) The Markov process as a compositional model: a survey and tutorial.
Leonardo 22(2):175-187.
Huron D (2001) Tone and voice: a derivation of the rules of voice-leading from
perceptual principles. Music Perception 19(1):1-64.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.audio.harmony import PENTATONIC_SCALE
from heartsong.audio.kernels import SOURCE_RMS, _uniform01
from heartsong.audio.tonal import _PAD_TABLE_RMS, PAD_TABLE, SINE_TABLE, _smoothstep, _table_read

__all__ = [
    "ATTACK_S",
    "CADENCE_P",
    "CHORDS",
    "CHORD_BEATS",
    "COMPOSER_ROOT_HZ",
    "COMPOSER_STATE",
    "GLIDE_S",
    "MODULATE_P",
    "PHRASE_CHORDS",
    "SCALE",
    "TRANSITIONS",
    "density_of",
]

F64Array = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]

#: The root of the composition at key 1 in Hz (C3).
COMPOSER_ROOT_HZ: Final = 130.81
#: The major pentatonic scale in just intonation, ratios to the key.
SCALE: Final = np.array([float(r) for r in PENTATONIC_SCALE])
#: Chords as three scale degrees (0 = key note): I, ii(sus), iii(sus), V(sus), vi, Isus2,
#: ii(add4), I/E (first-inversion colour), vi(sus).
CHORDS: Final = np.array(
    [[0, 2, 3], [1, 3, 4], [2, 4, 1], [3, 4, 1], [4, 0, 2], [0, 1, 3], [1, 2, 4], [2, 3, 0],
     [4, 1, 3]],
    dtype=np.int64,
)
#: Markov chain over ``CHORDS``: row = current chord, column = probability of the next.
TRANSITIONS: Final = np.array(
    [
        [0.0, 0.15, 0.1, 0.2, 0.2, 0.1, 0.1, 0.05, 0.1],
        [0.15, 0.0, 0.1, 0.25, 0.1, 0.1, 0.1, 0.1, 0.1],
        [0.2, 0.1, 0.0, 0.1, 0.25, 0.05, 0.1, 0.1, 0.1],
        [0.35, 0.1, 0.05, 0.0, 0.15, 0.1, 0.05, 0.1, 0.1],
        [0.15, 0.2, 0.1, 0.2, 0.0, 0.05, 0.1, 0.1, 0.1],
        [0.3, 0.15, 0.05, 0.15, 0.1, 0.0, 0.1, 0.05, 0.1],
        [0.15, 0.1, 0.15, 0.2, 0.15, 0.05, 0.0, 0.1, 0.1],
        [0.2, 0.1, 0.1, 0.15, 0.2, 0.1, 0.1, 0.0, 0.05],
        [0.2, 0.15, 0.1, 0.2, 0.1, 0.1, 0.1, 0.05, 0.0],
    ]
)
assert np.allclose(TRANSITIONS.sum(axis=1), 1.0) and np.all(np.diag(TRANSITIONS) == 0.0)
#: Beats per chord, and chords per phrase.
CHORD_BEATS: Final = 8
PHRASE_CHORDS: Final = 4
#: Probability that a phrase ends on the tonic, and that the key moves after a phrase.
CADENCE_P: Final = 0.7
MODULATE_P: Final = 0.4
#: Voice-leading glide time constant, s.
GLIDE_S: Final = 1.5
#: Melody attack, s; decay time constant per held beat, s; release time constant, s.
ATTACK_S: Final = 0.25
DECAY_PER_BEAT_S: Final = 0.9
RELEASE_S: Final = 0.5
#: Each beat, a pad voice draws a new level with this probability; levels glide with
#: time constant ``LEVEL_TAU_S`` between ``LEVEL_RANGE`` (the chord's colour keeps moving).
LEVEL_P: Final = 0.2
LEVEL_TAU_S: Final = 4.0
LEVEL_RANGE: Final = (0.3, 1.0)
#: Probability that a chord change also moves one voice by an octave (new voicing).
REVOICE_P: Final = 0.3
#: Melody note velocities are drawn from this range.
VELOCITY_RANGE: Final = (0.55, 1.0)
#: Melody range in scale steps above two octaves over the key (two octaves of notes).
MELODY_STEPS: Final = 10
#: Pad voices; the key stays within this factor either side of the root.
PAD_VOICES: Final = 3
KEY_FOLD: Final = math.sqrt(2.0)
assert PAD_VOICES == 3

# State layout -------------------------------------------------------------------------
_G_BEAT = 0  # beat phase, cycles
_G_BEAT_N = 1  # beats into the chord
_G_CHORD = 2  # current chord
_G_CHORD_N = 3  # chords into the phrase
_G_KEY = 4  # key, ratio to COMPOSER_ROOT_HZ
_G_MEL = 5  # melody position, scale steps
_G_LEFT = 6  # beats left of the current melody note
_G_INIT = 7  # 1 once started
_G_SLOT = 8  # the melody slot that sounds the current note
_G_PREV = 9  # the chord before the current one
_PAD0 = 10  # per pad voice: frequency, target frequency, phase, level, target level
_PV = 5
_MEL0 = _PAD0 + PAD_VOICES * _PV  # per melody slot: freq, phase, env, attack, start,
_MV = 7  # decay time constant, velocity
#: Floats of composer state (zeros = a fresh start).
COMPOSER_STATE: Final = _MEL0 + 2 * _MV

_SINE_RMS = math.sqrt(0.5)
# Pad: three incoherent voices at 0.4 (the melody leads); melody: one voice at 1,
# sounding about half the time at a mean envelope near 0.5.
_PAD_AMP = 0.4
_MEL_AMP = 1.0
_GAIN = SOURCE_RMS / (_SINE_RMS * math.sqrt(PAD_VOICES * _PAD_AMP**2 + 0.125 * _MEL_AMP**2))


@njit(cache=True)
def density_of(intensity: float) -> float:
    """Probability that a free beat starts a melody note at ``intensity`` 0..1."""
    return 0.2 + 0.5 * min(1.0, max(0.0, intensity))


@njit(cache=True)
def _pitch(key: float, step: int, octave_shift: int) -> float:
    """Hz of scale step ``step`` (any integer; 5 steps = one octave) in ``key``."""
    octave = step // 5
    degree = step - 5 * octave
    return float(COMPOSER_ROOT_HZ * key * SCALE[degree] * 2.0 ** (octave + octave_shift))


@njit(cache=True)
def _lead_voices(st: F64Array, chord: int, key: float, jump: bool) -> None:
    """Give each pad voice the nearest free tone of ``chord`` (lowest voice first).

    Written for ``PAD_VOICES == 3`` (two taken tones are remembered).
    """
    taken0 = 0.0  # the tones the lower voices took (no array: nothing is allocated)
    taken1 = 0.0
    for v in range(PAD_VOICES):
        b = _PAD0 + v * _PV
        cur = st[b]
        if cur <= 0.0:  # fresh: spread the voices over the octave below and above the root
            cur = COMPOSER_ROOT_HZ * key * (0.75 + 0.6 * v)
        best = -1.0
        best_d = 1e9
        for i in range(3):
            degree = CHORDS[chord, i]
            for octave in range(-1, 2):
                f = _pitch(key, degree + 5 * octave, 0)
                if f < 0.45 * COMPOSER_ROOT_HZ or f > 2.6 * COMPOSER_ROOT_HZ:
                    continue
                if (v >= 1 and abs(math.log(taken0 / f)) < 0.01) or (
                    v >= 2 and abs(math.log(taken1 / f)) < 0.01
                ):
                    continue
                d = abs(math.log(f / cur))
                if d < best_d:
                    best_d = d
                    best = f
        if v == 0:
            taken0 = best
        else:
            taken1 = best
        st[b + 1] = best
        if jump:
            st[b] = best


@njit(cache=True)
def _draw_chord(chord: int, rng: U64Array) -> int:
    """One draw of the Markov chain from ``chord``."""
    u = _uniform01(rng)
    acc = 0.0
    for j in range(TRANSITIONS.shape[1]):
        acc += TRANSITIONS[chord, j]
        if u < acc:
            return j
    return 0


@njit(cache=True)
def _next_chord(chord: int, last_of_phrase: bool, rng: U64Array, previous: int = -1) -> int:
    """The next chord: a Markov draw, or the tonic at a cadence.

    A draw that would go straight back to ``previous`` (A-B-A, a rocking the ear takes
    for a loop) is drawn once more.
    """
    if last_of_phrase and _uniform01(rng) < CADENCE_P and chord != 0:
        return 0
    nxt = _draw_chord(chord, rng)
    if nxt == previous:
        nxt = _draw_chord(chord, rng)
    return nxt


@njit(cache=True)
def _strike(st: F64Array, freq: float, beats: float, beat_s: float, velocity: float) -> (
    None
):
    """Start a melody note in the quieter slot; the other slot releases."""
    a = _MEL0
    b = _MEL0 + _MV
    slot = a if st[a + 2] <= st[b + 2] else b
    other = b if slot == a else a
    st[slot] = freq
    st[slot + 3] = 0.0  # attack progress
    st[slot + 4] = st[slot + 2]  # level at the attack's start
    st[slot + 5] = DECAY_PER_BEAT_S * beats + 0.3 * beats * beat_s
    st[slot + 6] = velocity
    if st[other + 3] < 0.0 or st[other + 2] > 0.0:
        st[other + 3] = -1.0
        st[other + 5] = RELEASE_S
    st[_G_SLOT] = float(slot)


@njit(cache=True)
def _release(st: F64Array) -> None:
    """Let the sounding melody note go (a rest)."""
    for s in (_MEL0, _MEL0 + _MV):
        if st[s + 3] < 0.0:
            st[s + 5] = min(st[s + 5], RELEASE_S * 2.0)


@njit(cache=True)
def _on_beat(st: F64Array, rng: U64Array, intensity: float, beat_s: float) -> None:
    """The score's decisions at a beat: chord and phrase, key, melody."""
    beat_n = int(st[_G_BEAT_N]) + 1
    chord_n = int(st[_G_CHORD_N])
    if beat_n >= CHORD_BEATS:
        beat_n = 0
        chord_n += 1
        key = st[_G_KEY]
        if chord_n >= PHRASE_CHORDS:
            chord_n = 0
            if _uniform01(rng) < MODULATE_P:
                key *= 1.5 if _uniform01(rng) < 0.5 else 1.0 / 1.5
                while key > KEY_FOLD:
                    key *= 0.5
                while key < 1.0 / KEY_FOLD:
                    key *= 2.0
                st[_G_KEY] = key
        old = int(st[_G_CHORD])
        chord = _next_chord(old, chord_n == PHRASE_CHORDS - 1, rng, int(st[_G_PREV]))
        st[_G_PREV] = float(old)
        st[_G_CHORD] = float(chord)
        _lead_voices(st, chord, key, False)
        if _uniform01(rng) < REVOICE_P:  # open or close the voicing: one voice an octave
            v = min(int(_uniform01(rng) * PAD_VOICES), PAD_VOICES - 1)
            b = _PAD0 + v * _PV + 1
            f = st[b] * (2.0 if st[b] < COMPOSER_ROOT_HZ else 0.5)
            if 0.45 * COMPOSER_ROOT_HZ <= f <= 2.6 * COMPOSER_ROOT_HZ:
                st[b] = f
    st[_G_BEAT_N] = float(beat_n)
    st[_G_CHORD_N] = float(chord_n)
    for v in range(PAD_VOICES):
        if _uniform01(rng) < LEVEL_P:
            lo, hi = LEVEL_RANGE
            st[_PAD0 + v * _PV + 4] = lo + (hi - lo) * _uniform01(rng)

    left = st[_G_LEFT] - 1.0
    if left > 0.0:
        st[_G_LEFT] = left
        return
    breath = chord_n == PHRASE_CHORDS - 1 and beat_n == 0
    if breath or _uniform01(rng) >= density_of(intensity):
        _release(st)
        st[_G_LEFT] = 1.0
        return
    u = _uniform01(rng)
    step = -2 if u < 0.1 else -1 if u < 0.4 else 0 if u < 0.5 else 1 if u < 0.85 else 2
    pos = int(st[_G_MEL]) + step
    if pos < 0 or pos > MELODY_STEPS:
        pos = int(st[_G_MEL]) - step
    pos = min(max(pos, 0), MELODY_STEPS)
    if beat_n == 0 and _uniform01(rng) < 0.6:  # strong beat: prefer a chord tone
        chord = int(st[_G_CHORD])
        best = pos
        for d in range(0, 3):
            for sgn in (1, -1):
                q = pos + sgn * d
                if 0 <= q <= MELODY_STEPS and (q % 5) in (
                    CHORDS[chord, 0], CHORDS[chord, 1], CHORDS[chord, 2]
                ):
                    best = q
                    break
            if best != pos or (pos % 5) in (CHORDS[chord, 0], CHORDS[chord, 1],
                                            CHORDS[chord, 2]):
                break
        pos = best
    st[_G_MEL] = float(pos)
    w = _uniform01(rng)
    beats = 1.0 if w < 0.3 else 2.0 if w < 0.7 else 3.0 if w < 0.9 else 4.0
    st[_G_LEFT] = beats
    lo, hi = VELOCITY_RANGE
    _strike(st, _pitch(st[_G_KEY], pos, 2), beats, beat_s, lo + (hi - lo) * _uniform01(rng))


@njit(cache=True)
def _composer(
    out: F64Array,
    rng: U64Array,
    st: F64Array,
    fs_hz: float,
    tempo0_bpm: float,
    tempo1_bpm: float,
    intensity0: float,
    intensity1: float,
    brightness0: float,
    brightness1: float,
) -> None:
    """Fill ``out`` (frames, 2) with the composed harmony and melody.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    rng:
        A one-word xorshift64* state: every musical decision.
    st:
        ``COMPOSER_STATE`` floats (layout in the module; zeros = a fresh start on the
        tonic).
    fs_hz:
        Sampling rate in Hz.
    tempo0_bpm, tempo1_bpm:
        Tempo in beats per minute at the block's start and end.
    intensity0, intensity1:
        0..1 at the block's start and end: melody density (:func:`density_of`).
    brightness0, brightness1:
        0..1 at the block's start and end: harmonic content (sine to ``PAD_TABLE``).
    """
    n = out.shape[0]
    if n == 0:
        return
    if st[_G_INIT] == 0.0:
        st[_G_INIT] = 1.0
        st[_G_KEY] = 1.0
        st[_G_CHORD] = 0.0
        st[_G_PREV] = -1.0
        st[_G_MEL] = 5.0
        st[_G_BEAT] = 0.999
        st[_G_BEAT_N] = float(CHORD_BEATS - 1)
        st[_G_CHORD_N] = float(PHRASE_CHORDS - 1)
        _lead_voices(st, 0, 1.0, True)
        for v in range(PAD_VOICES):
            st[_PAD0 + v * _PV + 3] = 0.8
            st[_PAD0 + v * _PV + 4] = 0.8
    dtempo = (tempo1_bpm - tempo0_bpm) / n
    dint = (intensity1 - intensity0) / n
    db = (brightness1 - brightness0) / n
    glide = 1.0 - math.exp(-1.0 / (GLIDE_S * fs_hz))
    level_glide = 1.0 - math.exp(-1.0 / (LEVEL_TAU_S * fs_hz))
    attack_step = 1.0 / (ATTACK_S * fs_hz)
    inv_fs = 1.0 / fs_hz
    pad_norm = _SINE_RMS / _PAD_TABLE_RMS
    for i in range(n):
        tempo = max(tempo0_bpm + dtempo * (i + 1), 1.0)
        bp = st[_G_BEAT] + tempo / 60.0 * inv_fs
        if bp >= 1.0:
            bp -= 1.0
            _on_beat(st, rng, intensity0 + dint * i, 60.0 / tempo)
        st[_G_BEAT] = bp
        bright = min(max(brightness0 + db * i, 0.0), 1.0)
        soft = 1.0 - bright
        left = 0.0
        right = 0.0
        for v in range(PAD_VOICES):
            b = _PAD0 + v * _PV
            f = st[b] + glide * (st[b + 1] - st[b])
            st[b] = f
            ph = st[b + 2] + f * inv_fs
            ph -= math.floor(ph)
            st[b + 2] = ph
            level = st[b + 3] + level_glide * (st[b + 4] - st[b + 3])
            st[b + 3] = level
            y = _PAD_AMP * level * (
                soft * _table_read(SINE_TABLE, ph) + bright * pad_norm * _table_read(PAD_TABLE, ph)
            )
            pan = 0.3 + 0.2 * v  # voices spread from left to right
            left += y * (1.0 - pan) * 1.4142
            right += y * pan * 1.4142
        for s in (_MEL0, _MEL0 + _MV):
            env = st[s + 2]
            att = st[s + 3]
            if att >= 0.0:
                att += attack_step
                if att >= 1.0:
                    att = -1.0
                    env = 1.0
                else:
                    env = st[s + 4] + (1.0 - st[s + 4]) * _smoothstep(att)
                st[s + 3] = att
            elif env > 0.0:  # a silent slot (most of the time, one of the two) stays 0
                env *= math.exp(-inv_fs / max(st[s + 5], 0.05))
                if env < 1e-5:
                    env = 0.0
            st[s + 2] = env
            if env == 0.0:
                continue
            ph = st[s + 1] + st[s] * inv_fs
            ph -= math.floor(ph)
            st[s + 1] = ph
            y = _MEL_AMP * st[s + 6] * env * (
                soft * _table_read(SINE_TABLE, ph)
                + bright * pad_norm * _table_read(PAD_TABLE, ph)
            )
            left += 0.55 * y * 1.2
            right += 0.45 * y * 1.2
        out[i, 0] = _GAIN * left
        out[i, 1] = _GAIN * right
