"""The render kernel: targets in, one block of limited stereo float32 out, nothing allocated.

``_render`` is the whole audio callback in one numba function. It takes a consistent
snapshot of the published targets (``heartsong.audio.params``), then renders in blocks of at
most ``buffer_frames`` frames; each block ramps its controls towards the targets, runs the
generators of the current (and, while crossfading, the previous) preset, mixes them,
applies the breath pacer, the master gain and the limiter. All memory is preallocated by
``heartsong.audio.engine.AudioEngine`` and passed in as arrays whose layouts are below.

Ramps (why nothing ever clicks)
-------------------------------
* Volume, intensity, brightness, tempo, beat rate and pitches follow one-pole smoothers per
  block (time constants in ``cfg``; volume in dB, then converted to linear), and every gain,
  filter coefficient and frequency is interpolated linearly per sample across the block.
* The play/stop gate is a linear ramp over ``fade_s`` seconds shaped by a smoothstep; a
  device reopen (``P_RESUME``) restarts it from silence.
* A preset change crossfades over ``crossfade_s`` (>= 2 s) with equal power per source:
  ``g = sqrt(cos(pi x/2)**2 g_from**2 + sin(pi x/2)**2 g_to**2)``, which is the classic
  equal-power crossfade for sources only one preset uses and keeps a source both presets
  share at a steady level (no +3 dB bump at the midpoint). A tonal source keeps its pitch
  while it fades out and takes the new preset's pitch while it is silent.
* The sleep timer multiplies the master gain by ``(1 - p)**3`` over its fade (``p`` from 0
  to 1): about -18 dB at half way, smooth to silence, then the gate closes.
* While the output is silent the engine jumps to its targets (preset and controls), so a
  fade-in starts from the requested sound rather than gliding from the previous one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.audio import (
    composer,
    harmony,
    kernels,
    params,
    soundscape_model,
    textures,
    tonal,
)
from heartsong.audio.composer import COMPOSER_STATE, _composer
from heartsong.audio.harmony import INTONATIONS
from heartsong.audio.kernels import (
    BREATH_INHALE_FRACTION,
    _apply_envelope,
    _apply_gain_ramp,
    _breath_envelope,
    _brown_noise,
    _limit_into,
    _mix_ramped,
    _one_pole_lowpass,
    _pink_noise,
    _white_noise,
    lowpass_coefficient,
)
from heartsong.audio.params import (
    P_BEAT_HZ,
    P_BREATH_RATE_BPM,
    P_BRIGHTNESS,
    P_FADE_S,
    P_INTENSITY,
    P_PLAYING,
    P_PRESET,
    P_RESUME,
    P_SLEEP_AT_FRAME,
    P_SLEEP_FADE_S,
    P_TEMPO_BPM,
    P_VOLUME_DB,
    _read_params,
)
from heartsong.audio.soundscape_model import FILTERED_SOURCES, SOURCES, Soundscape
from heartsong.audio.textures import (
    CRICKETS_STATE,
    OCEAN_STATE,
    RAIN_STATE,
    STREAM_STATE,
    WIND_STATE,
    _crickets,
    _ocean_swell,
    _rain,
    _stream,
    _wind,
)
from heartsong.audio.tonal import (
    BINAURAL_STATE,
    ISOCHRONIC_STATE,
    PAD_CHORD_BEATS,
    PAD_MIN_CHORD_S,
    PAD_STATE,
    PULSE_STATE,
    _binaural,
    _isochronic,
    _pad,
    _pad_reset,
    _pulse,
)
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = ["N_CFG", "N_CTL", "N_SOURCES", "PT_COLS", "STATE_WIDTH", "preset_table"]

F32Array = npt.NDArray[np.float32]
F64Array = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]

# PortAudio callback status bits (portaudio.h); kept here so this module does not import
# pyaudio.
_PA_OUTPUT_UNDERFLOW: Final = 0x4
_PA_OUTPUT_OVERFLOW: Final = 0x8
XRUN_FLAGS: Final = _PA_OUTPUT_UNDERFLOW | _PA_OUTPUT_OVERFLOW

# Source indices: the order of ``soundscapes.SOURCES``; the first N_FILTERED go through
# the brightness low-pass.
S_WHITE: Final = 0
S_PINK: Final = 1
S_BROWN: Final = 2
S_PAD: Final = 3
S_OCEAN: Final = 4
S_RAIN: Final = 5
S_WIND: Final = 6
S_STREAM: Final = 7
S_CRICKETS: Final = 8
S_BINAURAL: Final = 9
S_ISOCHRONIC: Final = 10
S_PULSE: Final = 11
S_COMPOSER: Final = 12
N_SOURCES: Final = 13
N_FILTERED: Final = 4
assert SOURCES[:N_FILTERED] == FILTERED_SOURCES and len(SOURCES) == N_SOURCES
assert SOURCES.index("pulse") == S_PULSE and SOURCES.index("binaural") == S_BINAURAL

#: Floats of state per source (one row of the state matrix each, plus one for the mixer).
STATE_WIDTH: Final = max(
    2 * 7,  # pink
    2,  # brown
    PAD_STATE,
    OCEAN_STATE,
    RAIN_STATE,
    WIND_STATE,
    STREAM_STATE,
    CRICKETS_STATE,
    BINAURAL_STATE,
    ISOCHRONIC_STATE,
    PULSE_STATE,
    COMPOSER_STATE,
)
#: Row of the state matrix holding the mixer's own memory (brightness low-pass, 2 floats).
STATE_MIXER: Final = N_SOURCES

# Preset table columns: gains, intensity depths, breath depth, loudness trim (linear),
# root Hz, carrier Hz, intonation index.
PT_GAIN: Final = 0
PT_DEPTH: Final = N_SOURCES
PT_BREATH_DEPTH: Final = 2 * N_SOURCES
PT_TRIM: Final = PT_BREATH_DEPTH + 1
PT_ROOT_HZ: Final = PT_TRIM + 1
PT_CARRIER_HZ: Final = PT_ROOT_HZ + 1
PT_INTONATION: Final = PT_CARRIER_HZ + 1
PT_COLS: Final = PT_INTONATION + 1

# Configuration array (read-only for the kernel).
F_FS: Final = 0
F_CEILING: Final = 1
F_KNEE: Final = 2
F_BROWN_LEAK: Final = 3
F_BROWN_GAIN: Final = 4
F_LP_MIN_HZ: Final = 5
F_LP_MAX_HZ: Final = 6
F_TAU_VOLUME_S: Final = 7
F_TAU_PARAM_S: Final = 8
F_TAU_SLOW_S: Final = 9
F_CROSSFADE_S: Final = 10
F_SWELL_DEPTH_MIN: Final = 11
F_SWELL_DEPTH_MAX: Final = 12
F_TAU_PITCH_S: Final = 13
F_DETUNE_MIN_CENTS: Final = 14
F_DETUNE_MAX_CENTS: Final = 15
N_CFG: Final = 16

# Control state (written by the kernel; read, never written, by the control side).
C_VOLUME_DB: Final = 0
C_INTENSITY: Final = 1
C_BRIGHTNESS: Final = 2
C_BREATH_BPM: Final = 3
C_BREATH_DEPTH: Final = 4
C_BREATH_PHASE: Final = 5
C_BREATH_LEVEL: Final = 6
C_GATE: Final = 7
C_MASTER: Final = 8
C_LP_A: Final = 9
C_OCEAN_CUTOFF_HZ: Final = 10
C_SWELL_DEPTH: Final = 11
C_XFADE: Final = 12
C_PRESET: Final = 13
C_XRUNS: Final = 14
C_FRAMES: Final = 15
C_TEMPO_BPM: Final = 16
C_BEAT_HZ: Final = 17
C_BIN_CARRIER_HZ: Final = 18
C_ISO_CARRIER_HZ: Final = 19
C_PULSE_HZ: Final = 20
C_PAD_ROOT_HZ: Final = 21
C_PAD_INTONATION: Final = 22
C_SLEEP_GAIN: Final = 23
C_RESUME: Final = 24
C_SRC_GAIN: Final = 25
C_SRC_FROM: Final = C_SRC_GAIN + N_SOURCES
N_CTL: Final = C_SRC_FROM + N_SOURCES


@njit(cache=True)
def _cutoff_hz(brightness: float, cfg: F64Array) -> float:
    """Low-pass cutoff in Hz for ``brightness`` 0..1 (exponential between the bounds)."""
    lo = cfg[F_LP_MIN_HZ]
    hi = cfg[F_LP_MAX_HZ]
    return float(lo * (hi / lo) ** brightness)


@njit(cache=True)
def _target_gain(presets: F64Array, p: int, k: int, intensity: float) -> float:
    """Linear gain of source ``k`` in preset ``p`` at ``intensity`` 0..1, loudness trim included."""
    return float(
        presets[p, PT_TRIM]
        * presets[p, PT_GAIN + k]
        * (1.0 - presets[p, PT_DEPTH + k] * (1.0 - intensity))
    )


@njit(cache=True)
def _swell_depth(intensity: float, cfg: F64Array) -> float:
    """Ocean swell depth 0..1 at ``intensity``."""
    lo = cfg[F_SWELL_DEPTH_MIN]
    return float(lo + (cfg[F_SWELL_DEPTH_MAX] - lo) * intensity)


@njit(cache=True)
def _pitch_targets(
    ctl: F64Array, presets: F64Array, p: int, a_pitch: float, jump: bool
) -> None:
    """Move the tonal sources' pitches towards preset ``p``'s (only those ``p`` plays).

    A source that ``p`` does not play keeps its pitch (it is fading out); one that is
    silent, or all of them when ``jump``, take the new pitch at once, the others glide
    (``a_pitch`` per block). The pad takes the new root and intonation at once: its voices
    move to them one by one, each while silent (``tonal._pad``).
    """
    for k, col, c in (
        (S_BINAURAL, PT_CARRIER_HZ, C_BIN_CARRIER_HZ),
        (S_ISOCHRONIC, PT_CARRIER_HZ, C_ISO_CARRIER_HZ),
        (S_PULSE, PT_ROOT_HZ, C_PULSE_HZ),
    ):
        if presets[p, PT_GAIN + k] <= 0.0:
            continue
        target = presets[p, col] * (0.5 if k == S_PULSE else 1.0)
        if jump or ctl[C_SRC_GAIN + k] == 0.0 or ctl[c] <= 0.0:
            ctl[c] = target
        else:
            ctl[c] += a_pitch * (target - ctl[c])
    if presets[p, PT_GAIN + S_PAD] > 0.0:  # the pad changes root by moving its voices
        ctl[C_PAD_INTONATION] = presets[p, PT_INTONATION]
        ctl[C_PAD_ROOT_HZ] = presets[p, PT_ROOT_HZ]


@njit(cache=True)
def _jump_to_targets(
    snap: F64Array,
    ctl: F64Array,
    cfg: F64Array,
    presets: F64Array,
    chords: F64Array,
    state: F64Array,
    p: int,
) -> None:
    """While silent: set every smoothed control straight to its target (nothing to hear)."""
    ctl[C_PRESET] = p
    ctl[C_XFADE] = 1.0
    ctl[C_VOLUME_DB] = snap[P_VOLUME_DB]
    ctl[C_INTENSITY] = snap[P_INTENSITY]
    ctl[C_BRIGHTNESS] = snap[P_BRIGHTNESS]
    ctl[C_TEMPO_BPM] = min(max(snap[P_TEMPO_BPM], 1.0), 1000.0)
    ctl[C_BEAT_HZ] = min(max(snap[P_BEAT_HZ], 0.0), 100.0)
    rate = snap[P_BREATH_RATE_BPM]
    if rate > 0.0:
        ctl[C_BREATH_BPM] = rate
        ctl[C_BREATH_DEPTH] = presets[p, PT_BREATH_DEPTH]
    else:
        ctl[C_BREATH_DEPTH] = 0.0
    fc = _cutoff_hz(snap[P_BRIGHTNESS], cfg)
    ctl[C_LP_A] = lowpass_coefficient(fc, cfg[F_FS])
    ctl[C_OCEAN_CUTOFF_HZ] = fc
    ctl[C_SWELL_DEPTH] = _swell_depth(snap[P_INTENSITY], cfg)
    _pitch_targets(ctl, presets, p, 1.0, True)
    if ctl[C_PAD_ROOT_HZ] > 0.0:
        _pad_reset(state[S_PAD], chords[int(ctl[C_PAD_INTONATION])], ctl[C_PAD_ROOT_HZ])
    for k in range(N_SOURCES):
        g = _target_gain(presets, p, k, snap[P_INTENSITY])
        ctl[C_SRC_GAIN + k] = g
        ctl[C_SRC_FROM + k] = g


@njit(cache=True)
def _sleep_gain(snap: F64Array, frames: float, fs: float) -> float:
    """Sleep-timer gain at audio frame ``frames``: 1 before the fade, ``(1-p)**3`` during it,
    0 after; 1 when no timer is set."""
    at = snap[P_SLEEP_AT_FRAME]
    if at < 0.0:
        return 1.0
    p = (frames - at) / max(snap[P_SLEEP_FADE_S] * fs, 1.0)
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    q = 1.0 - p
    return float(q * q * q)


@njit(cache=True)
def _render_source(
    k: int,
    dst: F64Array,
    ctl: F64Array,
    cfg: F64Array,
    chords: F64Array,
    rng: U64Array,
    st: F64Array,
    i0: float,
    i1: float,
    b0: float,
    b1: float,
    t0: float,
    t1: float,
    beat0: float,
    beat1: float,
) -> None:
    """Run generator ``k`` into ``dst`` (frames, 2) with the block's start/end controls
    (intensity ``i``, brightness ``b``, tempo ``t`` in bpm, beat in Hz)."""
    fs = cfg[F_FS]
    if k == S_WHITE:
        _white_noise(dst, rng)
    elif k == S_PINK:
        _pink_noise(dst, rng, st)
    elif k == S_BROWN:
        _brown_noise(dst, rng, st, cfg[F_BROWN_LEAK], cfg[F_BROWN_GAIN])
    elif k == S_PAD:
        lo = cfg[F_DETUNE_MIN_CENTS]
        hi = cfg[F_DETUNE_MAX_CENTS]
        chord_s = max(PAD_CHORD_BEATS * 60.0 / t1, PAD_MIN_CHORD_S)
        _pad(
            dst,
            st,
            chords[int(ctl[C_PAD_INTONATION])],
            ctl[C_PAD_ROOT_HZ],
            chord_s,
            lo + (hi - lo) * i0,
            lo + (hi - lo) * i1,
            fs,
        )
    elif k == S_OCEAN:
        _ocean_swell(
            dst,
            rng,
            st,
            fs,
            _cutoff_hz(b0, cfg),
            _cutoff_hz(b1, cfg),
            _swell_depth(i0, cfg),
            _swell_depth(i1, cfg),
            cfg[F_BROWN_LEAK],
            cfg[F_BROWN_GAIN],
        )
    elif k == S_RAIN:
        _rain(dst, rng, st, fs, i0, i1, b0, b1)
    elif k == S_WIND:
        _wind(dst, rng, st, fs, i0, i1, b0, b1)
    elif k == S_STREAM:
        _stream(dst, rng, st, fs, i0, i1, b0, b1)
    elif k == S_CRICKETS:
        _crickets(dst, rng, st, fs, i0, i1)
    elif k == S_BINAURAL:
        c = ctl[C_BIN_CARRIER_HZ]
        _binaural(dst, st, c, c, beat0, beat1, fs)
    elif k == S_ISOCHRONIC:
        c = ctl[C_ISO_CARRIER_HZ]
        _isochronic(dst, st, c, c, beat0, beat1, fs)
    elif k == S_PULSE:
        _pulse(dst, st, t0, t1, ctl[C_PULSE_HZ], fs)
    else:
        _composer(dst, rng, st, fs, t0, t1, i0, i1, b0, b1)


@njit(cache=True)
def _render_block(
    out: F32Array,
    snap: F64Array,
    ctl: F64Array,
    cfg: F64Array,
    presets: F64Array,
    chords: F64Array,
    rng: U64Array,
    state: F64Array,
    scratch: F64Array,
    env: F64Array,
) -> None:
    """Render one block (at most ``env.shape[0]`` frames) into ``out``; see ``_render``."""
    n = out.shape[0]
    fs = cfg[F_FS]
    dt = n / fs
    p = int(snap[P_PRESET])
    if p < 0 or p >= presets.shape[0]:
        p = int(ctl[C_PRESET])
    t_rate = snap[P_BREATH_RATE_BPM]
    sleep1 = _sleep_gain(snap, ctl[C_FRAMES] + n, fs)
    want_play = snap[P_PLAYING] > 0.5 and sleep1 > 0.0

    if snap[P_RESUME] != ctl[C_RESUME]:  # the device was reopened: fade in from silence
        ctl[C_RESUME] = snap[P_RESUME]
        ctl[C_GATE] = 0.0
        ctl[C_MASTER] = 0.0
    if ctl[C_GATE] <= 0.0 and ctl[C_MASTER] == 0.0:
        _jump_to_targets(snap, ctl, cfg, presets, chords, state, p)
        if not want_play:
            out[:, :] = 0.0
            ph = ctl[C_BREATH_PHASE] + ctl[C_BREATH_BPM] * dt / 60.0 if t_rate > 0.0 else 0.0
            ctl[C_BREATH_PHASE] = ph - math.floor(ph)
            ctl[C_SLEEP_GAIN] = sleep1
            ctl[C_FRAMES] += n
            return

    if p != int(ctl[C_PRESET]):
        for k in range(N_SOURCES):
            ctl[C_SRC_FROM + k] = ctl[C_SRC_GAIN + k]
        ctl[C_PRESET] = p
        ctl[C_XFADE] = 0.0

    # Per-block smoothers; the values before the update start each block's ramps.
    a_vol = 1.0 - math.exp(-dt / cfg[F_TAU_VOLUME_S])
    a_par = 1.0 - math.exp(-dt / cfg[F_TAU_PARAM_S])
    a_slow = 1.0 - math.exp(-dt / cfg[F_TAU_SLOW_S])
    a_pitch = 1.0 - math.exp(-dt / cfg[F_TAU_PITCH_S])
    vol_db = ctl[C_VOLUME_DB] + a_vol * (snap[P_VOLUME_DB] - ctl[C_VOLUME_DB])
    ctl[C_VOLUME_DB] = vol_db
    i0 = ctl[C_INTENSITY]
    i1 = i0 + a_par * (snap[P_INTENSITY] - i0)
    ctl[C_INTENSITY] = i1
    b0 = ctl[C_BRIGHTNESS]
    b1 = b0 + a_par * (snap[P_BRIGHTNESS] - b0)
    ctl[C_BRIGHTNESS] = b1
    # (the control side keeps tempo and beat within soundscape_model.BOUNDS; the clamps
    # here only make sure no value can ever reach the generators negative or zero)
    t0 = ctl[C_TEMPO_BPM]
    t1 = t0 + a_slow * (min(max(snap[P_TEMPO_BPM], 1.0), 1000.0) - t0)
    ctl[C_TEMPO_BPM] = t1
    beat0 = ctl[C_BEAT_HZ]
    beat1 = beat0 + a_slow * (min(max(snap[P_BEAT_HZ], 0.0), 100.0) - beat0)
    ctl[C_BEAT_HZ] = beat1
    rate0 = ctl[C_BREATH_BPM]
    rate1 = rate0 + a_slow * (t_rate - rate0) if t_rate > 0.0 else rate0
    ctl[C_BREATH_BPM] = rate1
    depth_t = presets[p, PT_BREATH_DEPTH] if t_rate > 0.0 else 0.0
    depth0 = ctl[C_BREATH_DEPTH]
    depth1 = depth0 + a_slow * (depth_t - depth0)
    ctl[C_BREATH_DEPTH] = depth1
    _pitch_targets(ctl, presets, p, a_pitch, False)

    step = dt / max(snap[P_FADE_S], 0.05)
    gate = min(1.0, ctl[C_GATE] + step) if want_play else max(0.0, ctl[C_GATE] - step)
    ctl[C_GATE] = gate
    x = min(1.0, ctl[C_XFADE] + dt / cfg[F_CROSSFADE_S])
    ctl[C_XFADE] = x
    w_from = math.cos(0.5 * math.pi * x)
    w_to = math.sin(0.5 * math.pi * x)

    tmp = scratch[0, :n]
    fmix = scratch[1, :n]
    dmix = scratch[2, :n]
    fmix[:, :] = 0.0
    dmix[:, :] = 0.0
    for k in range(N_SOURCES):
        g_from = w_from * ctl[C_SRC_FROM + k]
        g_to = w_to * _target_gain(presets, p, k, i1)
        g0 = ctl[C_SRC_GAIN + k]
        g1 = math.sqrt(g_from * g_from + g_to * g_to)
        ctl[C_SRC_GAIN + k] = g1
        if g0 == 0.0 and g1 == 0.0:
            continue
        if k == S_PAD and g0 == 0.0:  # entering from silence: start on the current chord
            _pad_reset(state[S_PAD], chords[int(ctl[C_PAD_INTONATION])], ctl[C_PAD_ROOT_HZ])
        _render_source(
            k, tmp, ctl, cfg, chords, rng[k : k + 1], state[k], i0, i1, b0, b1, t0, t1,
            beat0, beat1,
        )
        _mix_ramped(fmix if k < N_FILTERED else dmix, tmp, g0, g1)
    # Track the ocean's controls even while it is muted, so it re-enters without a jump.
    ctl[C_OCEAN_CUTOFF_HZ] = _cutoff_hz(b1, cfg)
    ctl[C_SWELL_DEPTH] = _swell_depth(i1, cfg)

    a1 = lowpass_coefficient(_cutoff_hz(b1, cfg), fs)
    _one_pole_lowpass(fmix, state[STATE_MIXER], ctl[C_LP_A], a1)
    ctl[C_LP_A] = a1
    _mix_ramped(dmix, fmix, 1.0, 1.0)

    ctl[C_BREATH_LEVEL] = _breath_envelope(
        env[:n],
        ctl[C_BREATH_PHASE : C_BREATH_PHASE + 1],
        rate0,
        rate1,
        depth0,
        depth1,
        fs,
        BREATH_INHALE_FRACTION,
    )
    _apply_envelope(dmix, env[:n])

    smooth_gate = gate * gate * (3.0 - 2.0 * gate)
    m1 = 10.0 ** (vol_db / 20.0) * smooth_gate * sleep1
    ctl[C_SLEEP_GAIN] = sleep1
    _apply_gain_ramp(dmix, ctl[C_MASTER], m1)
    ctl[C_MASTER] = m1
    _limit_into(out, dmix, cfg[F_KNEE], cfg[F_CEILING])
    ctl[C_FRAMES] += n


@njit(cache=True)
def _render(
    out: F32Array,
    board: F64Array,
    staging: F64Array,
    snap: F64Array,
    ctl: F64Array,
    cfg: F64Array,
    presets: F64Array,
    chords: F64Array,
    rng: U64Array,
    state: F64Array,
    scratch: F64Array,
    env: F64Array,
    status: int,
) -> None:
    """Fill ``out`` (frames, 2) float32 with the next audio; the whole callback in one kernel.

    Parameters
    ----------
    out:
        The device buffer, shape (frames, 2), float32.
    board, staging, snap:
        The published targets (``ParamBoard.array``), scratch for the seqlock copy, and the
        last consistent snapshot (kept when a write is under way).
    ctl:
        ``N_CTL`` floats of control state (smoothed values, gains, counters).
    cfg:
        ``N_CFG`` floats of configuration.
    presets:
        ``(presets, PT_COLS)``: the preset table (:func:`preset_table`).
    chords:
        ``(intonations, chords, voices)`` ratios (``harmony.chord_table``).
    rng:
        ``N_SOURCES`` xorshift64* words, one per generator.
    state:
        ``(N_SOURCES + 1, STATE_WIDTH)``: each generator's memory, then the mixer's.
    scratch:
        ``(3, block, 2)``: one generator's output, the filtered mix, the direct mix.
    env:
        ``(block,)``: the breath envelope; its length is the longest block rendered.
    status:
        PortAudio's callback status flags; output underflow/overflow is counted.
    """
    if (status & XRUN_FLAGS) != 0:
        ctl[C_XRUNS] += 1.0
    _read_params(board, staging, snap)
    total = out.shape[0]
    block = env.shape[0]
    pos = 0
    while pos < total:
        n = min(block, total - pos)
        _render_block(
            out[pos : pos + n], snap, ctl, cfg, presets, chords, rng, state, scratch, env
        )
        pos += n


def preset_table(presets: Mapping[str, Soundscape]) -> F64Array:
    """The presets as the numeric table the kernel reads: one row per preset, in order."""
    table = np.zeros((len(presets), PT_COLS), dtype=np.float64)
    for row, preset in enumerate(presets.values()):
        for k, source in enumerate(SOURCES):
            gain, depth = preset.layer_gain(source)
            table[row, PT_GAIN + k] = gain
            table[row, PT_DEPTH + k] = depth
        table[row, PT_BREATH_DEPTH] = preset.breath_depth
        table[row, PT_TRIM] = 10.0 ** (preset.trim_db / 20.0)
        table[row, PT_ROOT_HZ] = preset.root_hz
        table[row, PT_CARRIER_HZ] = preset.carrier_hz
        table[row, PT_INTONATION] = float(INTONATIONS.index(preset.intonation))
    return table


# numba's cache watches a kernel's own file only, and these kernels inline the synthesis
# kernels of the modules below: a digest of those files is frozen into the cache, and a
# change there recompiles the mixer and those modules' kernels (composer, textures and
# tonal call into harmony, kernels and tonal without a guard of their own; see
# :mod:`heartsong.numba_cache`).
_KERNEL_SOURCES: Final = (composer, harmony, kernels, params, soundscape_model, textures, tonal)
_SOURCES_DIGEST: Final = sources_digest(_KERNEL_SOURCES)


@njit(cache=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of ``_KERNEL_SOURCES`` when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(
    _SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()), _KERNEL_SOURCES
)
