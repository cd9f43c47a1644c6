"""Synthesis primitives: random numbers, noise colours, filters, envelopes, gain ramps, limiter.

Every kernel is a numba ``@njit(cache=True)`` function on float64 stereo blocks of shape
``(frames, 2)`` and keeps its state in a flat float64 array passed in by the caller (the
layout is given in each docstring), so the audio callback that runs them never allocates
(see ``heartsong.audio.mixer``). Sample rates are in Hz (48 kHz on the device). Every
generator is scaled to an RMS of about ``SOURCE_RMS`` (-12 dBFS), so a layer gain of 1 with
the master volume at 0 dB puts the noise peaks (crest factor about 4) near full scale.
The textures built on these (ocean, rain, wind, stream, crickets) are in
``heartsong.audio.textures``, the tonal layers in ``heartsong.audio.tonal``.

Methods
-------
* Random numbers: xorshift64* (Vigna 2016, "An experimental exploration of Marsaglia's
  xorshift generators, scrambled", ACM Trans. Math. Softw. 42(4):30), seeded through
  SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators",
  OOPSLA), one 64-bit state word per generator; no NumPy random inside the callback.
* Pink noise: Paul Kellet's "refined" sum of first-order low-passes (music-dsp mailing
  list, 1999; accurate to +-0.05 dB above 9.2 Hz at 44.1 kHz, and the slope is unchanged at
  48 kHz within the audible band).
* Brown (red) noise: a leaky integrator of white noise, ``y[n] = leak*y[n-1] + g*w[n]``,
  with its corner well below the audible band (Smith, *Introduction to Digital Filters*,
  2007, "one-pole filter").
* Low-pass: the one-pole ``y += a*(x - y)`` with ``a = 1 - exp(-2*pi*fc/fs)`` (impulse
  invariance of an RC low-pass; Smith 2007), its coefficient ramped linearly per sample
  across a block so a cutoff change never steps.
* Band-pass: the trapezoidal ("zero-delay feedback") state-variable filter of Zavalishin
  (2012, *The Art of VA Filter Design*, ch. 4) in Simper's form (2013, "Linear trapezoidal
  integrated SVF", Cytomic technical paper): its state stays continuous when the cutoff
  moves, so it can be swept at control rate without zipper clicks.
* Breath envelope: a phase accumulator at the pacing rate; the sound swells over the
  inhale (40 % of the cycle) and ebbs over the exhale (60 %), exhale >= inhale as in
  resonance-frequency breathing (Lehrer & Gevirtz 2014, Front. Psychol. 5:756).
* Master limiter: identity below the knee, a tanh knee that approaches the ceiling
  asymptotically above it, then a hard clip at the ceiling as the last guard.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "BREATH_INHALE_FRACTION",
    "PINK_STATE",
    "SOURCE_RMS",
    "SVF_STATE",
    "brown_coefficients",
    "lowpass_coefficient",
    "seed_rng_states",
    "svf_coefficients",
]

U64Array = npt.NDArray[np.uint64]
F64Array = npt.NDArray[np.float64]

#: RMS level of every generator's output (linear full scale, -12 dBFS).
SOURCE_RMS: Final = 0.25
#: Fraction of a breath cycle spent inhaling (inhale:exhale = 4:6).
BREATH_INHALE_FRACTION: Final = 0.4
#: Floats of state of one channel's pink filter (Kellet's six poles plus a delayed input).
PINK_STATE: Final = 7
#: Floats of state of one channel's state-variable filter (two integrator memories).
SVF_STATE: Final = 2

# xorshift64* constants as uint64 scalars, so numba keeps the arithmetic in uint64.
_SH12 = np.uint64(12)
_SH25 = np.uint64(25)
_SH27 = np.uint64(27)
_SH11 = np.uint64(11)
_XS_MULT = np.uint64(0x2545F4914F6CDD1D)
_TWO_POW_M52 = 2.0**-52

# White: uniform on [-1, 1) has RMS 1/sqrt(3).
_WHITE_GAIN = SOURCE_RMS * math.sqrt(3.0)
# Kellet's pink filter, output RMS for uniform [-1, 1) input measured once at 48 kHz
# (2**22 samples): 1.7612; this gain brings it to SOURCE_RMS.
PINK_GAIN: Final = SOURCE_RMS / 1.7612

_MASK64 = (1 << 64) - 1


def seed_rng_states(seed: int, n: int) -> U64Array:
    """Derive ``n`` independent, non-zero xorshift64* states from one integer seed.

    Parameters
    ----------
    seed:
        Any integer (taken modulo 2**64).
    n:
        Number of generator states to make.

    Returns
    -------
    U64Array
        Shape ``(n,)``, consecutive outputs of SplitMix64 (Steele, Lea & Flood 2014), which
        spreads even small or similar seeds over the whole state space.
    """
    x = seed & _MASK64
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        x = (x + 0x9E3779B97F4A7C15) & _MASK64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
        out[i] = z if z != 0 else 0x9E3779B97F4A7C15
    return out


def brown_coefficients(corner_hz: float, fs_hz: float) -> tuple[float, float]:
    """Leak and input gain of the brown-noise integrator for a given corner frequency.

    Parameters
    ----------
    corner_hz:
        Frequency in Hz below which the spectrum flattens (keeps the integrator bounded and
        the speaker free of sub-audio energy).
    fs_hz:
        Sampling rate in Hz.

    Returns
    -------
    tuple[float, float]
        ``(leak, gain)`` with ``leak = exp(-2*pi*corner/fs)`` and ``gain`` such that the
        output RMS is ``SOURCE_RMS`` for uniform [-1, 1) input: the stationary variance of
        ``y = leak*y + g*w`` is ``g**2 * var(w) / (1 - leak**2)``.
    """
    leak = math.exp(-2.0 * math.pi * corner_hz / fs_hz)
    gain = SOURCE_RMS * math.sqrt(3.0 * (1.0 - leak * leak))
    return leak, gain


@njit(cache=True)
def lowpass_coefficient(cutoff_hz: float, fs_hz: float) -> float:
    """Coefficient ``a`` of the one-pole low-pass ``y += a*(x - y)``.

    Parameters
    ----------
    cutoff_hz:
        -3 dB frequency in Hz (clamped to 0.45 * fs so the filter stays a low-pass).
    fs_hz:
        Sampling rate in Hz.

    Returns
    -------
    float
        ``1 - exp(-2*pi*fc/fs)`` in (0, 1) (impulse invariance of an RC low-pass).
    """
    fc = min(max(cutoff_hz, 1.0), 0.45 * fs_hz)
    return 1.0 - math.exp(-2.0 * math.pi * fc / fs_hz)


@njit(cache=True)
def _xorshift_uniform(rng: U64Array) -> float:
    """Advance the xorshift64* state ``rng[0]`` and return a uniform on [-1, 1).

    The 53 high bits of the scrambled output become the mantissa (Vigna 2016).
    """
    x = rng[0]
    x ^= x >> _SH12
    x ^= x << _SH25
    x ^= x >> _SH27
    rng[0] = x
    r = x * _XS_MULT
    return float(r >> _SH11) * _TWO_POW_M52 - 1.0


@njit(cache=True)
def _uniform01(rng: U64Array) -> float:
    """A uniform draw on [0, 1) from the xorshift64* state ``rng[0]``."""
    return 0.5 * (_xorshift_uniform(rng) + 1.0)


@njit(cache=True)
def _white_noise(out: npt.NDArray[np.float64], rng: U64Array) -> None:
    """Fill ``out`` (frames, 2) with independent uniform white noise per channel.

    RMS ``SOURCE_RMS``; ``rng`` is a one-word state, drawn left then right per frame.
    """
    for i in range(out.shape[0]):
        for c in range(2):
            out[i, c] = _WHITE_GAIN * _xorshift_uniform(rng)


@njit(cache=True)
def _pink_step(b: F64Array, off: int, w: float) -> float:
    """One sample of Kellet's refined pink filter; ``b[off:off+7]`` holds its state."""
    b[off] = 0.99886 * b[off] + w * 0.0555179
    b[off + 1] = 0.99332 * b[off + 1] + w * 0.0750759
    b[off + 2] = 0.96900 * b[off + 2] + w * 0.1538520
    b[off + 3] = 0.86650 * b[off + 3] + w * 0.3104856
    b[off + 4] = 0.55000 * b[off + 4] + w * 0.5329522
    b[off + 5] = -0.7616 * b[off + 5] - w * 0.0168980
    y = b[off] + b[off + 1] + b[off + 2] + b[off + 3] + b[off + 4] + b[off + 5] + b[off + 6]
    y += w * 0.5362
    b[off + 6] = w * 0.115926
    return float(y)


@njit(cache=True)
def _pink_noise(out: F64Array, rng: U64Array, state: F64Array) -> None:
    """Fill ``out`` (frames, 2) with pink (-3 dB/octave) noise, Kellet's filter.

    ``state`` has 2 * ``PINK_STATE`` floats: the filter memory of the left, then the right
    channel. RMS ``SOURCE_RMS``.
    """
    for i in range(out.shape[0]):
        for c in range(2):
            out[i, c] = PINK_GAIN * _pink_step(state, c * PINK_STATE, _xorshift_uniform(rng))


@njit(cache=True)
def _brown_noise(
    out: F64Array, rng: U64Array, state: F64Array, leak: float, gain: float
) -> None:
    """Fill ``out`` (frames, 2) with brown (-6 dB/octave) noise from a leaky integrator.

    ``state`` has shape (2,), the integrator of each channel; ``leak`` and ``gain`` come
    from :func:`brown_coefficients`.
    """
    for i in range(out.shape[0]):
        for c in range(2):
            y = leak * state[c] + gain * _xorshift_uniform(rng)
            state[c] = y
            out[i, c] = y


@njit(cache=True)
def _one_pole_lowpass(buf: F64Array, state: F64Array, a0: float, a1: float) -> None:
    """Low-pass ``buf`` (frames, 2) in place, coefficient ramped from ``a0`` to ``a1``.

    The coefficient of sample ``i`` of ``n`` is ``a0 + (a1 - a0) * (i + 1) / n``, so the
    last sample uses ``a1`` and the next block continues from there; ``state`` (2,) holds
    each channel's last output.
    """
    n = buf.shape[0]
    if n == 0:
        return
    da = (a1 - a0) / n
    for i in range(n):
        a = a0 + da * (i + 1)
        for c in range(2):
            y = state[c] + a * (buf[i, c] - state[c])
            state[c] = y
            buf[i, c] = y


@njit(cache=True)
def svf_coefficients(cutoff_hz: float, q: float, fs_hz: float) -> tuple[float, float, float]:
    """Coefficients ``(a1, a2, a3)`` of the trapezoidal state-variable filter (Simper 2013).

    Parameters
    ----------
    cutoff_hz:
        Centre (band-pass) or corner (low-pass) frequency in Hz, clamped to 1 Hz..0.45 fs.
    q:
        Quality factor (> 0); the band-pass output ``v1`` peaks at ``1/k = q`` times the
        input at the centre, so callers scale it by ``k = 1/q`` for unity gain.
    fs_hz:
        Sampling rate in Hz.

    Returns
    -------
    tuple[float, float, float]
        ``g = tan(pi fc / fs)``, ``k = 1/q``: ``a1 = 1/(1 + g(g + k))``, ``a2 = g a1``,
        ``a3 = g a2``.
    """
    fc = min(max(cutoff_hz, 1.0), 0.45 * fs_hz)
    g = math.tan(math.pi * fc / fs_hz)
    k = 1.0 / q
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return a1, a2, g * a2


@njit(cache=True)
def _svf_bandpass(
    x: float, st: F64Array, off: int, a1: float, a2: float, a3: float
) -> float:
    """One sample of the trapezoidal SVF; returns the band-pass output ``v1``.

    ``st[off]`` and ``st[off+1]`` are the integrators' memories ``ic1eq``, ``ic2eq``
    (Simper 2013): ``v3 = x - ic2eq``, ``v1 = a1 ic1eq + a2 v3``, ``v2 = ic2eq + a2 ic1eq +
    a3 v3``, then ``ic1eq = 2 v1 - ic1eq``, ``ic2eq = 2 v2 - ic2eq``.
    """
    ic1 = st[off]
    ic2 = st[off + 1]
    v3 = x - ic2
    v1 = a1 * ic1 + a2 * v3
    v2 = ic2 + a2 * ic1 + a3 * v3
    st[off] = 2.0 * v1 - ic1
    st[off + 1] = 2.0 * v2 - ic2
    return float(v1)


@njit(cache=True)
def _breath_shape(phase: float, inhale_fraction: float) -> float:
    """Breath level in [0, 1] at cycle ``phase`` in [0, 1): 0 at the start of an inhale.

    Raised-cosine rise to 1 over the inhale (``phase < inhale_fraction``), raised-cosine
    fall back to 0 over the exhale.
    """
    if phase < inhale_fraction:
        return 0.5 - 0.5 * math.cos(math.pi * phase / inhale_fraction)
    return 0.5 + 0.5 * math.cos(math.pi * (phase - inhale_fraction) / (1.0 - inhale_fraction))


@njit(cache=True)
def _breath_envelope(
    env: npt.NDArray[np.float64],
    phase: npt.NDArray[np.float64],
    rate0_bpm: float,
    rate1_bpm: float,
    depth0: float,
    depth1: float,
    fs_hz: float,
    inhale_fraction: float,
) -> float:
    """Fill ``env`` (frames,) with the breath-pacing gain and advance the pacer phase.

    Parameters
    ----------
    env:
        Output, one gain per frame: ``1 - depth * (1 - shape(phase))``, so the sound
        swells to full level at the top of the inhale and ebbs to ``1 - depth`` at the end
        of the exhale.
    phase:
        Shape (1,): the pacer phase in [0, 1), 0 = start of an inhale; advanced in place.
    rate0_bpm, rate1_bpm:
        Breathing rate at the block's start and end in breaths per minute (ramped per
        sample; 0 stops the phase).
    depth0, depth1:
        Modulation depth 0..1 at the block's start and end.
    fs_hz:
        Sampling rate in Hz.
    inhale_fraction:
        Fraction of the cycle spent inhaling (``BREATH_INHALE_FRACTION``).

    Returns
    -------
    float
        The breath shape (0..1) at the last frame, for LEDs that breathe along.
    """
    n = env.shape[0]
    shape = _breath_shape(phase[0], inhale_fraction)
    if n == 0:
        return shape
    dr = (rate1_bpm - rate0_bpm) / n
    dd = (depth1 - depth0) / n
    inv = 1.0 / (60.0 * fs_hz)
    ph = phase[0]
    for i in range(n):
        shape = _breath_shape(ph, inhale_fraction)
        depth = depth0 + dd * (i + 1)
        env[i] = 1.0 - depth * (1.0 - shape)
        ph += (rate0_bpm + dr * (i + 1)) * inv
        if ph >= 1.0:
            ph -= 1.0
    phase[0] = ph
    return shape


@njit(cache=True)
def _mix_ramped(
    dst: npt.NDArray[np.float64], src: npt.NDArray[np.float64], g0: float, g1: float
) -> None:
    """Add ``src`` (frames, 2) into ``dst`` with a gain ramped linearly from ``g0`` to ``g1``.

    Gain of frame ``i`` of ``n`` is ``g0 + (g1 - g0) * (i + 1) / n`` (reaches ``g1`` on the
    last frame, so consecutive blocks join without a step).
    """
    n = dst.shape[0]
    if n == 0:
        return
    dg = (g1 - g0) / n
    for i in range(n):
        g = g0 + dg * (i + 1)
        dst[i, 0] += g * src[i, 0]
        dst[i, 1] += g * src[i, 1]


@njit(cache=True)
def _apply_gain_ramp(buf: npt.NDArray[np.float64], g0: float, g1: float) -> None:
    """Multiply ``buf`` (frames, 2) in place by a gain ramped linearly from ``g0`` to ``g1``.

    Same ramp as :func:`_mix_ramped`.
    """
    n = buf.shape[0]
    if n == 0:
        return
    dg = (g1 - g0) / n
    for i in range(n):
        g = g0 + dg * (i + 1)
        buf[i, 0] *= g
        buf[i, 1] *= g


@njit(cache=True)
def _apply_envelope(buf: npt.NDArray[np.float64], env: npt.NDArray[np.float64]) -> None:
    """Multiply each frame of ``buf`` (frames, 2) in place by ``env`` (frames,)."""
    for i in range(buf.shape[0]):
        buf[i, 0] *= env[i]
        buf[i, 1] *= env[i]


@njit(cache=True)
def _soft_limit(x: float, knee: float, ceiling: float) -> float:
    """Limit one sample: identity up to ``knee``, tanh knee above, hard clip at ``ceiling``.

    Above the knee ``|y| = knee + (ceiling - knee) * tanh((|x| - knee) / (ceiling - knee))``:
    continuous with slope 1 at the knee and never above the ceiling. NaN becomes 0.
    """
    if x != x:
        return 0.0
    ax = abs(x)
    if ax > knee:
        span = ceiling - knee
        ax = knee + span * math.tanh((ax - knee) / span) if span > 0.0 else knee
    ax = min(ax, ceiling)
    return ax if x >= 0.0 else -ax


@njit(cache=True)
def _limit_into(
    out: npt.NDArray[np.float32], buf: npt.NDArray[np.float64], knee: float, ceiling: float
) -> None:
    """Write ``buf`` (frames, 2) through the soft limiter into the float32 ``out``.

    ``ceiling`` must be representable in float32 (the engine rounds it down), so the stored
    samples never exceed it.
    """
    for i in range(buf.shape[0]):
        out[i, 0] = _soft_limit(buf[i, 0], knee, ceiling)
        out[i, 1] = _soft_limit(buf[i, 1], knee, ceiling)
