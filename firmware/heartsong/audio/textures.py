"""Nature textures built on the noise primitives: ocean, rain, wind, a stream, crickets.

Each texture is one numba ``@njit(cache=True)`` kernel that fills a stereo float64 block
``(frames, 2)`` and keeps all of its memory in one flat float64 state array (``*_STATE``
floats, zeros = a fresh start) and one xorshift64* word, so the audio callback never
allocates. Slow controls (cutoffs, gust level, bubble pitch) are recomputed every
``CONTROL_FRAMES`` samples and interpolated in between; everything that reaches the output
is continuous, so a control change never clicks. ``intensity`` and ``brightness`` are in
0..1 and are passed at the start and end of the block (linear ramp between). Every texture
is scaled so its RMS is near ``SOURCE_RMS`` at intensity 0.5 (the presets' loudness trims
do the exact matching).

Methods
-------
* Ocean: brown + pink noise through a one-pole low-pass whose cutoff and gain follow a wave
  envelope (slow rise to the crest, faster break), a new period of 8-14 s drawn at every
  wave.
* Rain: a hiss of band-limited white noise plus drops: a Poisson stream of excitations, each
  ringing a decaying coupled-form ("magic circle") resonator tuned at random (Smith,
  *Physical Audio Signal Processing*, 2010, "digital sinusoid generators"); retuning a
  resonator never steps its output, so voices are reused round-robin.
* Wind: pink noise through a swept state-variable band-pass (Zavalishin 2012) whose centre,
  resonance and level follow slowly drawn gusts, with a faster flutter per ear.
* Stream: bubbles after van den Doel (2005, "Physically based models for liquid sounds",
  ACM Trans. Appl. Percept. 2(4):534-546): each bubble is a damped sinusoid at the Minnaert
  frequency ``f0 = 3.26 m/s / r`` (Minnaert 1933) with damping ``d = 0.043 f0 +
  0.0014 f0**1.5`` per second and a pitch that rises as ``f0 (1 + xi d t)`` while it
  decays, radii drawn mostly small, over a "rush" of white noise through a wide
  state-variable band-pass.
* Crickets: two field crickets, one near each ear: a carrier near 4.5 kHz gated into
  chirps of 3-5 smooth pulses (about 30 pulses per second), chirps at random intervals
  (the pattern of *Gryllus* calling song; Pollack & Hoy 1979, Science 204:429-432).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.audio.kernels import (
    PINK_GAIN,
    PINK_STATE,
    _pink_step,
    _svf_bandpass,
    _uniform01,
    _xorshift_uniform,
    svf_coefficients,
)

__all__ = [
    "CONTROL_FRAMES",
    "CRICKETS_STATE",
    "OCEAN_STATE",
    "RAIN_STATE",
    "STREAM_STATE",
    "SWELL_CUTOFF_FLOOR",
    "SWELL_PERIOD_RANGE_S",
    "SWELL_RISE_FRACTION",
    "WIND_STATE",
]

F64Array = npt.NDArray[np.float64]
U64Array = npt.NDArray[np.uint64]

#: Samples between two updates of a texture's slow controls (0.67 ms at 48 kHz).
CONTROL_FRAMES: Final = 32

# ----------------------------------------------------------------------------- ocean
#: Shortest and longest ocean-wave period in seconds.
SWELL_PERIOD_RANGE_S: Final = (8.0, 14.0)
#: Fraction of a wave period spent rising to the crest (the rest is the break).
SWELL_RISE_FRACTION: Final = 0.62
#: Lowest swell cutoff as a fraction of the base cutoff (wave trough).
SWELL_CUTOFF_FLOOR: Final = 0.2
#: Ocean state: pink (2 x 7), brown (2), low-pass (2), wave phase, wave period in s, the
#: low-pass coefficient and gain at the end of the last control chunk.
OCEAN_STATE: Final = 2 * PINK_STATE + 8
_OC_BROWN = 2 * PINK_STATE
_OC_LP = _OC_BROWN + 2
_OC_PHASE = _OC_LP + 2
_OC_PERIOD = _OC_PHASE + 1
_OC_A = _OC_PERIOD + 1
_OC_AMP = _OC_A + 1
# Ocean texture mix before its low-pass: mostly brown (body), some pink (hiss).
_OCEAN_BROWN = 0.8
_OCEAN_PINK = 0.6
# Make-up gain bringing the ocean texture near SOURCE_RMS at a 1.2 kHz crest cutoff and
# depth 0.5 (measured once; the low-pass removes most of the pink part above the cutoff).
_OCEAN_MAKEUP = 0.95

# ----------------------------------------------------------------------------- rain
#: Drop resonators per ear.
RAIN_VOICES: Final = 3
#: Drops per second per ear at intensity 0 and 1.
RAIN_RATE_HZ: Final = (40.0, 260.0)
#: Drop pitch range in Hz at brightness 0.5 (an octave lower at 0, higher at 1).
RAIN_PITCH_HZ: Final = (1200.0, 4200.0)
#: Drop ring time constants in s (shortest, longest).
RAIN_DECAY_S: Final = (0.003, 0.012)
#: Time constant of a drop's excitation in s (softens the attack).
RAIN_ATTACK_S: Final = 0.0004
#: Hiss high-pass corner in Hz, and its low-pass corner at brightness 0 and 1 in Hz.
RAIN_HISS_HP_HZ: Final = 400.0
RAIN_HISS_LP_HZ: Final = (1500.0, 12000.0)
_RN_VOICE = 6  # per voice: x, y, cos, sin, decay, excitation
_RN_CH = 3 + RAIN_VOICES * _RN_VOICE  # per ear: hp memory, lp memory, round-robin, voices
#: Rain state: per ear hiss filters, next voice, and the voices.
RAIN_STATE: Final = 2 * _RN_CH
# Hiss and drop levels (measured once at intensity 0.5, brightness 0.5 to give SOURCE_RMS
# with the hiss at about -4 dB relative to the drops).
_RAIN_HISS_GAIN = 0.87
_RAIN_DROP_GAIN = 1.22

# ----------------------------------------------------------------------------- wind
#: Band-pass centre in Hz at brightness 0 and 1 (mid gust).
WIND_CENTRE_HZ: Final = (250.0, 2000.0)
#: How far gusts sweep the centre, in octaves (full gust range).
WIND_SWEEP_OCT: Final = 1.4
#: Seconds between gust targets (shortest, longest), and the gust smoothing in s.
WIND_GUST_HOLD_S: Final = (1.5, 5.0)
WIND_GUST_TAU_S: Final = 1.6
#: Mean seconds between flutter targets of one ear, and their smoothing in s.
WIND_FLUTTER_S: Final = 0.7
WIND_FLUTTER_TAU_S: Final = 0.3
_WD_SVF = 2 * PINK_STATE  # svf memories (2 x 2)
_WD_GUST = _WD_SVF + 4  # gust level, gust target, hold time left
_WD_FLUT = _WD_GUST + 3  # flutter level (2), flutter target (2)
_WD_AMP = _WD_FLUT + 4  # last amplitude per ear (2)
#: Wind state: pink (2 x 7), band-pass (2 x 2), gust (3), flutter (4), amplitude (2).
WIND_STATE: Final = _WD_AMP + 2
# Make-up gain of the band-passed pink noise (measured once at intensity and brightness
# 0.5: a band of about an octave keeps ~1/5 of the pink noise's RMS).
_WIND_MAKEUP = 5.8

# ----------------------------------------------------------------------------- stream
#: Bubble resonators per ear.
STREAM_VOICES: Final = 6
#: Bubbles per second per ear at intensity 0 and 1.
STREAM_RATE_HZ: Final = (60.0, 420.0)
#: Bubble radius range in mm at brightness 0.5 (the Minnaert pitch is 3260 Hz mm / r).
STREAM_RADIUS_MM: Final = (1.2, 7.0)
#: Pitch rise factor xi of van den Doel (2005).
STREAM_RISE: Final = 0.1
#: Rush band-pass centre in Hz at brightness 0 and 1, and its Q.
STREAM_RUSH_HZ: Final = (700.0, 3500.0)
STREAM_RUSH_Q: Final = 0.8
_MINNAERT_HZ_MM = 3260.0
_ST_VOICE = 8  # per voice: x, y, r cos, r sin, decay r, f0, d, age in s
_ST_CH = 3 + STREAM_VOICES * _ST_VOICE  # (spare), band-pass (2), voices
#: Stream state: per ear a spare float, the rush band-pass and the bubbles.
STREAM_STATE: Final = 2 * _ST_CH
# Bubble and rush levels (measured once at intensity and brightness 0.5 for SOURCE_RMS).
_STREAM_BUBBLE_GAIN = 0.73
_STREAM_RUSH_GAIN = 0.52

# ----------------------------------------------------------------------------- crickets
#: Carrier range of a cricket in Hz.
CRICKET_PITCH_HZ: Final = (4100.0, 4900.0)
#: One pulse: sounding part and whole period in s.
CRICKET_PULSE_S: Final = (0.014, 0.032)
#: Pulses per chirp (fewest, most).
CRICKET_PULSES: Final = (3, 5)
#: Mean seconds between chirps at intensity 0 and 1.
CRICKET_INTERVAL_S: Final = (1.6, 0.5)
#: How much of each cricket reaches the far ear.
CRICKET_CROSSFEED: Final = 0.35
_CK = 8  # per cricket: x, y, cos, sin, samples to next chirp, pulses left, pos, (spare)
#: Crickets state: two crickets.
CRICKETS_STATE: Final = 2 * _CK
# Peak gain of a pulse: a chirp sounds at about SOURCE_RMS; with the silences between
# chirps the texture's RMS is about a quarter of it (crest factor about 10).
_CRICKET_GAIN = 0.55


# ============================================================================= ocean
@njit(cache=True)
def _swell_shape(phase: float) -> float:
    """Wave envelope in [0, 1] at ``phase`` in [0, 1): raised-cosine rise, faster fall.

    Rises from the trough (0) to the crest (1) over ``SWELL_RISE_FRACTION`` of the period
    and falls back over the rest; smooth (zero slope) at trough and crest.
    """
    r = SWELL_RISE_FRACTION
    if phase < r:
        return 0.5 - 0.5 * math.cos(math.pi * phase / r)
    return 0.5 + 0.5 * math.cos(math.pi * (phase - r) / (1.0 - r))


@njit(cache=True)
def _ocean_swell(
    out: F64Array,
    rng: U64Array,
    st: F64Array,
    fs_hz: float,
    cutoff0_hz: float,
    cutoff1_hz: float,
    depth0: float,
    depth1: float,
    brown_leak: float,
    brown_gain: float,
) -> None:
    """Fill ``out`` (frames, 2) with the ocean texture: swelling, filtered brown + pink noise.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    rng:
        A one-word xorshift64* state, used for the noise and the wave periods.
    st:
        ``OCEAN_STATE`` floats: pink filter (2 x 7), brown integrator (2), swell low-pass
        (2), wave phase in [0, 1), wave period in s (0 draws a new one at once), low-pass
        coefficient and gain reached at the end of the last chunk (0 = fresh).
    fs_hz:
        Sampling rate in Hz.
    cutoff0_hz, cutoff1_hz:
        Base (crest) cutoff of the swell low-pass at the block's start and end, in Hz; the
        trough is ``SWELL_CUTOFF_FLOOR`` times it, so the crest sounds brighter.
    depth0, depth1:
        Swell depth 0..1 at the block's start and end: the amplitude runs from
        ``1 - depth`` (trough) to 1 (crest).
    brown_leak, brown_gain:
        Integrator coefficients from :func:`~heartsong.audio.kernels.brown_coefficients`.

    Notes
    -----
    Every ``CONTROL_FRAMES`` samples the wave phase advances by the chunk, the envelope
    ``e`` is evaluated at the chunk's end, and the low-pass coefficient
    ``1 - exp(-2 pi fc / fs)`` and the gain ramp linearly to their new values over the
    chunk. Each new wave draws its period uniformly from ``SWELL_PERIOD_RANGE_S`` so the
    sea does not sound like a metronome.
    """
    n = out.shape[0]
    if n == 0:
        return
    p_lo, p_hi = SWELL_PERIOD_RANGE_S
    if st[_OC_PERIOD] <= 0.0:
        st[_OC_PERIOD] = p_lo + (p_hi - p_lo) * _uniform01(rng)
    two_pi_over_fs = 2.0 * math.pi / fs_hz
    fc_max = 0.45 * fs_hz
    for start in range(0, n, CONTROL_FRAMES):
        stop = min(start + CONTROL_FRAMES, n)
        m = stop - start
        ph = st[_OC_PHASE] + m / (st[_OC_PERIOD] * fs_hz)
        if ph >= 1.0:
            ph -= 1.0
            st[_OC_PERIOD] = p_lo + (p_hi - p_lo) * _uniform01(rng)
        st[_OC_PHASE] = ph
        e = _swell_shape(ph)
        f = stop / n
        fc = (cutoff0_hz + (cutoff1_hz - cutoff0_hz) * f) * (
            SWELL_CUTOFF_FLOOR + (1.0 - SWELL_CUTOFF_FLOOR) * e
        )
        a1 = 1.0 - math.exp(-two_pi_over_fs * min(max(fc, 1.0), fc_max))
        depth = depth0 + (depth1 - depth0) * f
        amp1 = _OCEAN_MAKEUP * (1.0 - depth + depth * e)
        a0 = st[_OC_A]
        amp0 = st[_OC_AMP]
        if a0 == 0.0:  # fresh state: start on the current values
            a0 = a1
            amp0 = amp1
        st[_OC_A] = a1
        st[_OC_AMP] = amp1
        da = (a1 - a0) / m
        dg = (amp1 - amp0) / m
        for i in range(start, stop):
            k = i - start + 1
            a = a0 + da * k
            amp = amp0 + dg * k
            for c in range(2):
                pink = PINK_GAIN * _pink_step(st, c * PINK_STATE, _xorshift_uniform(rng))
                brown = brown_leak * st[_OC_BROWN + c] + brown_gain * _xorshift_uniform(rng)
                st[_OC_BROWN + c] = brown
                x = _OCEAN_BROWN * brown + _OCEAN_PINK * pink
                y = st[_OC_LP + c] + a * (x - st[_OC_LP + c])
                st[_OC_LP + c] = y
                out[i, c] = amp * y


# ============================================================================= rain
@njit(cache=True)
def _rain(
    out: F64Array,
    rng: U64Array,
    st: F64Array,
    fs_hz: float,
    intensity0: float,
    intensity1: float,
    brightness0: float,
    brightness1: float,
) -> None:
    """Fill ``out`` (frames, 2) with rain: a soft hiss and drops ringing at random pitches.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    rng:
        A one-word xorshift64* state (hiss samples, drop times, pitches, decays, levels).
    st:
        ``RAIN_STATE`` floats. Per ear: hiss high-pass memory, hiss low-pass memory, next
        voice index, then ``RAIN_VOICES`` resonators of (x, y, cos, sin, decay per sample,
        excitation).
    fs_hz:
        Sampling rate in Hz.
    intensity0, intensity1:
        0..1 at the block's start and end: drop rate from ``RAIN_RATE_HZ[0]`` to ``[1]``
        drops per second per ear (exponential), and the hiss level.
    brightness0, brightness1:
        0..1 at the block's start and end: drop pitch (an octave either side of
        ``RAIN_PITCH_HZ``) and the hiss low-pass corner (``RAIN_HISS_LP_HZ``).

    Notes
    -----
    A drop loads an excitation that decays in ``RAIN_ATTACK_S`` and drives its resonator
    (``x += e``, then the rotation by the drop's angle, shrunk by its decay), so the drop
    rises within a few samples instead of stepping. Drops are drawn per sample with
    probability ``rate / fs`` (a Bernoulli approximation of a Poisson process).
    """
    n = out.shape[0]
    if n == 0:
        return
    r_lo, r_hi = RAIN_RATE_HZ
    p_lo, p_hi = RAIN_PITCH_HZ
    d_lo, d_hi = RAIN_DECAY_S
    l_lo, l_hi = RAIN_HISS_LP_HZ
    a_hp = 1.0 - math.exp(-2.0 * math.pi * RAIN_HISS_HP_HZ / fs_hz)
    k_exc = math.exp(-1.0 / (RAIN_ATTACK_S * fs_hz))
    two_pi_over_fs = 2.0 * math.pi / fs_hz
    for start in range(0, n, CONTROL_FRAMES):
        stop = min(start + CONTROL_FRAMES, n)
        f = (stop) / n
        inten = intensity0 + (intensity1 - intensity0) * f
        bright = brightness0 + (brightness1 - brightness0) * f
        p_drop = r_lo * (r_hi / r_lo) ** inten / fs_hz
        a_lp = 1.0 - math.exp(-two_pi_over_fs * l_lo * (l_hi / l_lo) ** bright)
        pitch_scale = 2.0 ** (2.0 * bright - 1.0)
        hiss_gain = _RAIN_HISS_GAIN * (0.6 + 0.8 * inten)
        for i in range(start, stop):
            for c in range(2):
                base = c * _RN_CH
                w = _xorshift_uniform(rng)
                hp_mem = st[base] + a_hp * (w - st[base])
                st[base] = hp_mem
                lp = st[base + 1] + a_lp * ((w - hp_mem) - st[base + 1])
                st[base + 1] = lp
                if _uniform01(rng) < p_drop:
                    v = int(st[base + 2])
                    st[base + 2] = float((v + 1) % RAIN_VOICES)
                    vb = base + 3 + v * _RN_VOICE
                    freq = pitch_scale * p_lo * (p_hi / p_lo) ** _uniform01(rng)
                    tau = d_lo + (d_hi - d_lo) * _uniform01(rng)
                    level = _uniform01(rng)
                    w_ang = two_pi_over_fs * min(freq, 0.4 * fs_hz)
                    st[vb + 2] = math.cos(w_ang)
                    st[vb + 3] = math.sin(w_ang)
                    st[vb + 4] = math.exp(-1.0 / (tau * fs_hz))
                    st[vb + 5] += (1.0 - k_exc) * (0.2 + 0.8 * level * level)
                drops = 0.0
                for v in range(RAIN_VOICES):
                    vb = base + 3 + v * _RN_VOICE
                    e = st[vb + 5]
                    x = st[vb] + e
                    y = st[vb + 1]
                    st[vb + 5] = e * k_exc
                    cs = st[vb + 2]
                    sn = st[vb + 3]
                    r = st[vb + 4]
                    st[vb] = r * (cs * x - sn * y)
                    y = r * (sn * x + cs * y)
                    st[vb + 1] = y
                    drops += y
                out[i, c] = hiss_gain * lp + _RAIN_DROP_GAIN * drops


# ============================================================================= wind
@njit(cache=True)
def _wind(
    out: F64Array,
    rng: U64Array,
    st: F64Array,
    fs_hz: float,
    intensity0: float,
    intensity1: float,
    brightness0: float,
    brightness1: float,
) -> None:
    """Fill ``out`` (frames, 2) with wind: pink noise through a band-pass swept by gusts.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    rng:
        A one-word xorshift64* state (noise, gust and flutter targets).
    st:
        ``WIND_STATE`` floats: pink filters (2 x 7), band-pass memories (2 x 2), gust level,
        gust target and seconds until the next target, flutter level (2) and target (2),
        the last amplitude of each ear (2).
    fs_hz:
        Sampling rate in Hz.
    intensity0, intensity1:
        0..1 at the block's start and end: gust depth (how far the level and pitch swing).
    brightness0, brightness1:
        0..1 at the block's start and end: band centre from ``WIND_CENTRE_HZ[0]`` to
        ``[1]`` (exponential).

    Notes
    -----
    Every ``CONTROL_FRAMES`` samples the gust level (0..1) moves towards its target with time
    constant ``WIND_GUST_TAU_S`` and each ear's flutter with ``WIND_FLUTTER_TAU_S``; the ear's
    gust ``g`` sets the band centre ``fc * 2**(WIND_SWEEP_OCT (g - 1/2))``, the resonance
    ``Q = 1 + 2 g`` (stronger gusts whistle) and the level ``1 - depth (1 - g)``, ramped
    linearly over the next ``CONTROL_FRAMES`` samples.
    """
    n = out.shape[0]
    if n == 0:
        return
    c_lo, c_hi = WIND_CENTRE_HZ
    h_lo, h_hi = WIND_GUST_HOLD_S
    if st[_WD_GUST + 2] <= 0.0 and st[_WD_GUST] == 0.0:  # fresh state: start mid-gust
        st[_WD_GUST] = 0.5
        st[_WD_GUST + 1] = 0.5
        for c in range(2):
            st[_WD_FLUT + c] = 0.5
            st[_WD_FLUT + 2 + c] = 0.5
    for start in range(0, n, CONTROL_FRAMES):
        stop = min(start + CONTROL_FRAMES, n)
        m = stop - start
        dt = m / fs_hz
        f = stop / n
        inten = intensity0 + (intensity1 - intensity0) * f
        bright = brightness0 + (brightness1 - brightness0) * f
        hold = st[_WD_GUST + 2] - dt
        if hold <= 0.0:
            st[_WD_GUST + 1] = _uniform01(rng)
            hold = h_lo + (h_hi - h_lo) * _uniform01(rng)
        st[_WD_GUST + 2] = hold
        g = st[_WD_GUST] + (1.0 - math.exp(-dt / WIND_GUST_TAU_S)) * (
            st[_WD_GUST + 1] - st[_WD_GUST]
        )
        st[_WD_GUST] = g
        a_fl = 1.0 - math.exp(-dt / WIND_FLUTTER_TAU_S)
        depth = 0.35 + 0.6 * inten
        centre = c_lo * (c_hi / c_lo) ** bright
        for c in range(2):
            if _uniform01(rng) < dt / WIND_FLUTTER_S:
                st[_WD_FLUT + 2 + c] = _uniform01(rng)
            fl = st[_WD_FLUT + c] + a_fl * (st[_WD_FLUT + 2 + c] - st[_WD_FLUT + c])
            st[_WD_FLUT + c] = fl
            gc = min(max(g + 0.3 * (fl - 0.5), 0.0), 1.0)
            q = 1.0 + 2.0 * gc
            a1, a2, a3 = svf_coefficients(
                centre * 2.0 ** (WIND_SWEEP_OCT * (gc - 0.5)), q, fs_hz
            )
            amp1 = _WIND_MAKEUP * (1.0 - depth * (1.0 - gc)) / q
            amp0 = st[_WD_AMP + c]
            if amp0 == 0.0:
                amp0 = amp1
            st[_WD_AMP + c] = amp1
            da = (amp1 - amp0) / m
            for i in range(start, stop):
                x = PINK_GAIN * _pink_step(st, c * PINK_STATE, _xorshift_uniform(rng))
                bp = _svf_bandpass(x, st, _WD_SVF + 2 * c, a1, a2, a3)
                out[i, c] = (amp0 + da * (i - start + 1)) * bp


# ============================================================================= stream
@njit(cache=True)
def _bubble_rotation(st: F64Array, vb: int, fs_hz: float) -> None:
    """Set voice ``vb``'s decaying rotation for its pitch ``f0 (1 + xi d age)`` (van den Doel):
    ``r cos(w)`` and ``r sin(w)`` with ``w = 2 pi f / fs`` and the per-sample decay ``r``."""
    freq = st[vb + 5] * (1.0 + STREAM_RISE * st[vb + 6] * st[vb + 7])
    w = 2.0 * math.pi * min(freq, 0.4 * fs_hz) / fs_hz
    r = st[vb + 4]
    st[vb + 2] = r * math.cos(w)
    st[vb + 3] = r * math.sin(w)


@njit(cache=True)
def _quietest_bubble(st: F64Array, first: int) -> int:
    """Offset of the bubble voice with the least energy ``x**2 + y**2`` (voices from ``first``)."""
    best = first
    least = st[first] * st[first] + st[first + 1] * st[first + 1]
    for v in range(1, STREAM_VOICES):
        vb = first + v * _ST_VOICE
        e = st[vb] * st[vb] + st[vb + 1] * st[vb + 1]
        if e < least:
            least = e
            best = vb
    return best


@njit(cache=True)
def _stream(
    out: F64Array,
    rng: U64Array,
    st: F64Array,
    fs_hz: float,
    intensity0: float,
    intensity1: float,
    brightness0: float,
    brightness1: float,
) -> None:
    """Fill ``out`` (frames, 2) with a brook: rising bubbles over a rush of band-passed noise.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    rng:
        A one-word xorshift64* state (rush noise, bubble times and radii).
    st:
        ``STREAM_STATE`` floats. Per ear: a spare float, the rush band-pass (2), then
        ``STREAM_VOICES`` bubbles of (x, y, r cos w, r sin w, decay per sample r, f0 in
        Hz, damping d in 1/s, age in s).
    fs_hz:
        Sampling rate in Hz.
    intensity0, intensity1:
        0..1 at the block's start and end: bubble rate from ``STREAM_RATE_HZ[0]`` to
        ``[1]`` per second per ear (exponential) and the rush level.
    brightness0, brightness1:
        0..1 at the block's start and end: bubble sizes (smaller, higher bubbles when
        brighter, up to half an octave either way) and the rush centre (``STREAM_RUSH_HZ``).

    Notes
    -----
    Bubbles are born at the start of a ``CONTROL_FRAMES`` chunk (0.67 ms at 48 kHz), one
    with probability ``rate * chunk / fs`` per ear (at most 0.28: a Bernoulli thinning of
    the Poisson process that loses under 15 % of the bubbles at the highest rate). A new
    bubble of radius ``r`` (mm) takes the quietest voice and adds ``A = (r / r_max)**1.2``
    (bigger bubbles are louder) to its ``x``; the output is ``y``, so it starts from the
    voice's current value (whatever is left of the last bubble keeps ringing at the new
    pitch) and never steps. Its pitch rises every chunk; its amplitude decays by
    ``exp(-d / fs)`` per sample. Radii are ``r_lo (r_hi / r_lo)**(u**2)`` for uniform ``u``:
    mostly small bubbles.
    """
    n = out.shape[0]
    if n == 0:
        return
    q_lo, q_hi = STREAM_RATE_HZ
    r_lo, r_hi = STREAM_RADIUS_MM
    u_lo, u_hi = STREAM_RUSH_HZ
    for start in range(0, n, CONTROL_FRAMES):
        stop = min(start + CONTROL_FRAMES, n)
        dt = (stop - start) / fs_hz
        f = stop / n
        inten = intensity0 + (intensity1 - intensity0) * f
        bright = brightness0 + (brightness1 - brightness0) * f
        p_bubble = q_lo * (q_hi / q_lo) ** inten * dt
        size = 2.0 ** (0.5 - bright)
        a1, a2, a3 = svf_coefficients(u_lo * (u_hi / u_lo) ** bright, STREAM_RUSH_Q, fs_hz)
        rush_gain = _STREAM_RUSH_GAIN * (0.5 + inten) / STREAM_RUSH_Q
        for c in range(2):
            base = c * _ST_CH
            first = base + 3
            for v in range(STREAM_VOICES):
                vb = first + v * _ST_VOICE
                if abs(st[vb]) + abs(st[vb + 1]) > 1e-6:
                    st[vb + 7] += dt
                    _bubble_rotation(st, vb, fs_hz)
            if _uniform01(rng) < p_bubble:
                vb = _quietest_bubble(st, first)
                u = _uniform01(rng)
                radius = size * r_lo * (r_hi / r_lo) ** (u * u)
                f0 = _MINNAERT_HZ_MM / radius
                d = 0.043 * f0 + 0.0014 * f0**1.5
                st[vb] += (radius / (size * r_hi)) ** 1.2
                st[vb + 4] = math.exp(-d / fs_hz)
                st[vb + 5] = f0
                st[vb + 6] = d
                st[vb + 7] = 0.0
                _bubble_rotation(st, vb, fs_hz)
            for i in range(start, stop):
                x = _xorshift_uniform(rng)
                rush = _svf_bandpass(x, st, base + 1, a1, a2, a3)
                bubbles = 0.0
                for v in range(STREAM_VOICES):
                    vb = first + v * _ST_VOICE
                    bx = st[vb]
                    by = st[vb + 1]
                    rc = st[vb + 2]
                    rs = st[vb + 3]
                    st[vb] = rc * bx - rs * by
                    by = rs * bx + rc * by
                    st[vb + 1] = by
                    bubbles += by
                out[i, c] = rush_gain * rush + _STREAM_BUBBLE_GAIN * bubbles


# ============================================================================= crickets
@njit(cache=True)
def _cricket_pulse(pos: float, on: float) -> float:
    """Level of a pulse ``pos`` samples in, sounding for ``on`` samples: ``(4u(1-u))**2``."""
    if pos >= on:
        return 0.0
    u = pos / on
    b = 4.0 * u * (1.0 - u)
    return b * b


@njit(cache=True)
def _crickets(
    out: F64Array,
    rng: U64Array,
    st: F64Array,
    fs_hz: float,
    intensity0: float,
    intensity1: float,
) -> None:
    """Fill ``out`` (frames, 2) with two crickets chirping, one near each ear.

    Parameters
    ----------
    out:
        Output block, shape (frames, 2).
    rng:
        A one-word xorshift64* state (pitches, pulses per chirp, intervals).
    st:
        ``CRICKETS_STATE`` floats. Per cricket: carrier (x, y, cos, sin), samples until the
        next chirp, pulses left in the chirp, samples into the current pulse, unused.
        A cricket whose rotation is zero draws its pitch from ``CRICKET_PITCH_HZ`` first.
    fs_hz:
        Sampling rate in Hz.
    intensity0, intensity1:
        0..1 at the block's start and end: mean chirp interval from
        ``CRICKET_INTERVAL_S[0]`` to ``[1]`` seconds (each interval 0.6-1.4 times the mean).

    Notes
    -----
    Each pulse is the smooth bump ``(4u(1-u))**2`` over its ``CRICKET_PULSE_S[0]`` sounding
    part (zero value and slope at both ends), so the gated carrier never clicks. The carrier
    is renormalised to unit amplitude at every chirp, so rounding cannot make it drift.
    """
    n = out.shape[0]
    if n == 0:
        return
    on = CRICKET_PULSE_S[0] * fs_hz
    period = CRICKET_PULSE_S[1] * fs_hz
    i_lo, i_hi = CRICKET_INTERVAL_S
    inten = 0.5 * (intensity0 + intensity1)
    mean_gap = (i_lo + (i_hi - i_lo) * inten) * fs_hz
    for k in range(2):
        b = k * _CK
        if st[b + 2] == 0.0 and st[b + 3] == 0.0:
            p_lo, p_hi = CRICKET_PITCH_HZ
            w = 2.0 * math.pi * (p_lo + (p_hi - p_lo) * _uniform01(rng)) / fs_hz
            st[b] = 1.0
            st[b + 1] = 0.0
            st[b + 2] = math.cos(w)
            st[b + 3] = math.sin(w)
            st[b + 4] = mean_gap * (0.2 + _uniform01(rng))
    for i in range(n):
        left = 0.0
        right = 0.0
        for k in range(2):
            b = k * _CK
            x = st[b]
            y = st[b + 1]
            cs = st[b + 2]
            sn = st[b + 3]
            st[b] = cs * x - sn * y
            y = sn * x + cs * y
            st[b + 1] = y
            level = 0.0
            if st[b + 5] > 0.0:  # inside a chirp
                level = _cricket_pulse(st[b + 6], on)
                st[b + 6] += 1.0
                if st[b + 6] >= period:
                    st[b + 6] = 0.0
                    st[b + 5] -= 1.0
            else:
                st[b + 4] -= 1.0
                if st[b + 4] <= 0.0:
                    lo, hi = CRICKET_PULSES
                    st[b + 5] = float(lo + int((hi - lo + 1) * _uniform01(rng)))
                    st[b + 6] = 0.0
                    st[b + 4] = mean_gap * (0.6 + 0.8 * _uniform01(rng))
                    norm = math.sqrt(st[b] * st[b] + y * y)
                    st[b] /= norm
                    st[b + 1] = y / norm
            s = _CRICKET_GAIN * level * y
            if k == 0:
                left += s
                right += CRICKET_CROSSFEED * s
            else:
                right += s
                left += CRICKET_CROSSFEED * s
        out[i, 0] = left
        out[i, 1] = right
