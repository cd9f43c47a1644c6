"""Synthesis kernels against plain NumPy/SciPy references, spectra and envelope timing."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.signal import lfilter

from heartsong.audio.kernels import (
    BREATH_INHALE_FRACTION,
    SOURCE_RMS,
    SWELL_CUTOFF_FLOOR,
    SWELL_PERIOD_RANGE_S,
    SWELL_RISE_FRACTION,
    _apply_envelope,
    _apply_gain_ramp,
    _breath_envelope,
    _brown_noise,
    _limit_into,
    _mix_ramped,
    _ocean_swell,
    _one_pole_lowpass,
    _pink_noise,
    _soft_limit,
    _white_noise,
    _xorshift_uniform,
    brown_coefficients,
    lowpass_coefficient,
    seed_rng_states,
)

FS = 48000.0
MASK64 = (1 << 64) - 1

# Kellet's refined pink filter as a table of parallel one-poles: (pole, input gain).
KELLET_POLES = (
    (0.99886, 0.0555179),
    (0.99332, 0.0750759),
    (0.96900, 0.1538520),
    (0.86650, 0.3104856),
    (0.55000, 0.5329522),
    (-0.7616, -0.0168980),
)
KELLET_DIRECT = 0.5362
KELLET_DELAYED = 0.115926
PINK_RAW_RMS = 1.7612


# ----------------------------------------------------------------------------- references
class RefRng:
    """xorshift64* in Python integers (Vigna 2016)."""

    def __init__(self, state: int) -> None:
        self.x = int(state)

    def next(self) -> float:
        x = self.x
        x ^= x >> 12
        x ^= (x << 25) & MASK64
        x ^= x >> 27
        self.x = x
        r = (x * 0x2545F4914F6CDD1D) & MASK64
        return (r >> 11) * 2.0**-52 - 1.0

    def block(self, frames: int) -> np.ndarray:
        """Draws for ``frames`` stereo frames, left then right, as (frames, 2)."""
        return np.array([self.next() for _ in range(2 * frames)]).reshape(frames, 2)


def ref_pink(w: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kellet's filter per channel with lfilter; returns (pink, new state)."""
    out = np.empty_like(w)
    new = state.copy()
    for c in range(2):
        x = w[:, c]
        y = KELLET_DIRECT * x
        for k, (pole, gain) in enumerate(KELLET_POLES):
            yk, _ = lfilter([gain], [1.0, -pole], x, zi=[pole * state[c, k]])
            y = y + yk
            new[c, k] = yk[-1]
        delayed = np.concatenate(([state[c, 6]], KELLET_DELAYED * x[:-1]))
        new[c, 6] = KELLET_DELAYED * x[-1]
        out[:, c] = (y + delayed) * SOURCE_RMS / PINK_RAW_RMS
    return out, new


def ref_brown(
    w: np.ndarray, state: np.ndarray, leak: float, gain: float
) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty_like(w)
    for c in range(2):
        out[:, c], _ = lfilter([gain], [1.0, -leak], w[:, c], zi=[leak * state[c]])
    return out, out[-1].copy()


def ramp(g0: float, g1: float, n: int) -> np.ndarray:
    return g0 + (g1 - g0) * (np.arange(n) + 1) / n


def ref_lowpass(x: np.ndarray, state: np.ndarray, a0: float, a1: float) -> np.ndarray:
    a = ramp(a0, a1, len(x))
    y = np.empty_like(x)
    prev = state.astype(float).copy()
    for i in range(len(x)):
        prev = prev + a[i] * (x[i] - prev)
        y[i] = prev
    return y


def ref_swell_shape(phase: np.ndarray) -> np.ndarray:
    r = SWELL_RISE_FRACTION
    return np.where(
        phase < r,
        0.5 - 0.5 * np.cos(np.pi * phase / r),
        0.5 + 0.5 * np.cos(np.pi * (phase - r) / (1 - r)),
    )


def ref_breath_shape(phase: np.ndarray, inhale: float) -> np.ndarray:
    return np.where(
        phase < inhale,
        0.5 - 0.5 * np.cos(np.pi * phase / inhale),
        0.5 + 0.5 * np.cos(np.pi * (phase - inhale) / (1 - inhale)),
    )


def ref_soft_limit(x: np.ndarray, knee: float, ceiling: float) -> np.ndarray:
    ax = np.abs(x)
    bent = knee + (ceiling - knee) * np.tanh((ax - knee) / (ceiling - knee))
    y = np.minimum(np.where(ax > knee, bent, ax), ceiling)
    return np.asarray(np.nan_to_num(np.sign(x) * y, nan=0.0))


def band_slope_db_per_octave(x: np.ndarray, fs: float, f_lo: float, f_hi: float) -> float:
    """Least-squares slope of third-octave band power (Welch PSD) against log2 frequency."""
    seg = 8192
    win = np.hanning(seg)
    n_seg = (len(x) - seg) // (seg // 2) + 1
    psd = np.zeros(seg // 2 + 1)
    for i in range(n_seg):
        chunk = x[i * seg // 2 : i * seg // 2 + seg]
        psd += np.abs(np.fft.rfft(chunk * win)) ** 2
    f = np.fft.rfftfreq(seg, 1.0 / fs)
    centres = f_lo * 2.0 ** (np.arange(0, math.log2(f_hi / f_lo) + 1e-9, 1.0 / 3.0))
    levels = []
    for fc in centres:
        band = (f >= fc * 2 ** (-1 / 6)) & (f < fc * 2 ** (1 / 6))
        levels.append(10 * np.log10(psd[band].mean()))
    return float(np.polyfit(np.log2(centres), levels, 1)[0])


@pytest.fixture
def rng_state() -> np.ndarray:
    return seed_rng_states(1234, 1)


# ----------------------------------------------------------------------------- RNG
def test_xorshift_matches_reference_and_is_uniform(rng_state: np.ndarray) -> None:
    ref = RefRng(int(rng_state[0]))
    draws = np.array([_xorshift_uniform(rng_state) for _ in range(20000)])
    assert np.array_equal(draws[:500], [ref.next() for _ in range(500)])
    assert draws.min() >= -1.0 and draws.max() < 1.0
    assert abs(draws.mean()) < 0.02
    assert draws.var() == pytest.approx(1.0 / 3.0, rel=0.03)
    assert abs(np.corrcoef(draws[:-1], draws[1:])[0, 1]) < 0.03


def test_seed_rng_states_are_distinct_nonzero_and_deterministic() -> None:
    a = seed_rng_states(0, 4)
    assert a.dtype == np.uint64 and np.all(a != 0)
    assert len(set(a.tolist())) == 4
    assert np.array_equal(a, seed_rng_states(0, 4))
    assert not np.array_equal(a, seed_rng_states(1, 4))


# ----------------------------------------------------------------------------- noise
def test_white_noise_matches_reference(rng_state: np.ndarray) -> None:
    ref = RefRng(int(rng_state[0]))
    out = np.zeros((300, 2))
    _white_noise(out, rng_state)
    np.testing.assert_allclose(out, ref.block(300) * SOURCE_RMS * math.sqrt(3), rtol=1e-12)


def test_pink_noise_matches_lfilter_reference_across_blocks(rng_state: np.ndarray) -> None:
    ref = RefRng(int(rng_state[0]))
    state = np.zeros((2, 7))
    ref_state = state.copy()
    for n in (200, 137):  # two blocks: the state must carry over exactly
        out = np.zeros((n, 2))
        _pink_noise(out, rng_state, state)
        expected, ref_state = ref_pink(ref.block(n), ref_state)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state, ref_state, rtol=1e-9, atol=1e-12)


def test_brown_noise_matches_lfilter_reference(rng_state: np.ndarray) -> None:
    leak, gain = brown_coefficients(20.0, FS)
    ref = RefRng(int(rng_state[0]))
    state = np.array([0.1, -0.2])
    ref_state = state.copy()
    for n in (256, 99):
        out = np.zeros((n, 2))
        _brown_noise(out, rng_state, state, leak, gain)
        expected, ref_state = ref_brown(ref.block(n), ref_state, leak, gain)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state, ref_state, rtol=1e-9)


@pytest.mark.parametrize(
    ("kind", "slope", "tol"),
    [("white", 0.0, 1.0), ("pink", -3.0, 1.5), ("brown", -6.0, 1.5)],
)
def test_noise_spectrum_slope(kind: str, slope: float, tol: float) -> None:
    rng = seed_rng_states(7, 1)
    out = np.zeros((1 << 19, 2))  # ~11 s
    if kind == "white":
        _white_noise(out, rng)
    elif kind == "pink":
        _pink_noise(out, rng, np.zeros((2, 7)))
    else:
        leak, gain = brown_coefficients(20.0, FS)
        _brown_noise(out, rng, np.zeros(2), leak, gain)
    x = out[4800:]  # skip the start-up transient of the filters
    measured = band_slope_db_per_octave(x[:, 0], FS, 100.0, 5000.0)
    assert measured == pytest.approx(slope, abs=tol)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(SOURCE_RMS, rel=0.15)
    # the channels are independent noises
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.1


# ----------------------------------------------------------------------------- filters
def test_one_pole_lowpass_matches_reference_with_ramped_coefficient() -> None:
    x = np.random.default_rng(3).standard_normal((300, 2))
    state = np.array([0.3, -0.1])
    a0 = lowpass_coefficient(200.0, FS)
    a1 = lowpass_coefficient(5000.0, FS)
    expected = ref_lowpass(x, state, a0, a1)
    buf = x.copy()
    _one_pole_lowpass(buf, state, a0, a1)
    np.testing.assert_allclose(buf, expected, rtol=1e-12)
    np.testing.assert_allclose(state, expected[-1])


def test_lowpass_coefficient_gives_minus_3_db_at_cutoff() -> None:
    for fc in (100.0, 1000.0, 3000.0):
        a = lowpass_coefficient(fc, FS)
        assert a == pytest.approx(1.0 - math.exp(-2 * math.pi * fc / FS))
        z = np.exp(-2j * np.pi * fc / FS)
        gain_db = 20 * np.log10(abs(a / (1 - (1 - a) * z)))
        assert gain_db == pytest.approx(-3.0, abs=0.3)
    # clamped below Nyquist, monotonic in the cutoff
    assert lowpass_coefficient(1e6, FS) == lowpass_coefficient(0.45 * FS, FS) < 1.0
    assert lowpass_coefficient(100.0, FS) < lowpass_coefficient(200.0, FS)


# ----------------------------------------------------------------------------- ocean
def ref_ocean(
    n: int,
    rng: RefRng,
    pink_state: np.ndarray,
    brown_state: np.ndarray,
    lp_state: np.ndarray,
    swell: np.ndarray,
    fc0: float,
    fc1: float,
    d0: float,
    d1: float,
    leak: float,
    gain: float,
) -> np.ndarray:
    """Per-sample loop written from the description in the kernel's docstring."""
    p_lo, p_hi = SWELL_PERIOD_RANGE_S
    pink_g = SOURCE_RMS / PINK_RAW_RMS
    out = np.zeros((n, 2))
    fc = ramp(fc0, fc1, n)
    depth = ramp(d0, d1, n)
    ps = pink_state.copy()
    for i in range(n):
        e = float(ref_swell_shape(np.array(swell[0])))
        cutoff = min(
            max(fc[i] * (SWELL_CUTOFF_FLOOR + (1 - SWELL_CUTOFF_FLOOR) * e), 1.0), 0.45 * FS
        )
        a = 1 - math.exp(-2 * math.pi * cutoff / FS)
        amp = 0.95 * (1 - depth[i] + depth[i] * e)
        for c in range(2):
            w_pink = rng.next()
            b = ps[c]
            for k, (pole, g) in enumerate(KELLET_POLES):
                b[k] = pole * b[k] + g * w_pink
            pink = (b[:6].sum() + b[6] + KELLET_DIRECT * w_pink) * pink_g
            b[6] = KELLET_DELAYED * w_pink
            brown_state[c] = leak * brown_state[c] + gain * rng.next()
            x = 0.8 * brown_state[c] + 0.6 * pink
            lp_state[c] += a * (x - lp_state[c])
            out[i, c] = amp * lp_state[c]
        swell[0] += 1 / (swell[1] * FS)
        if swell[0] >= 1:
            swell[0] -= 1
            swell[1] = p_lo + (p_hi - p_lo) * 0.5 * (rng.next() + 1)
    pink_state[:] = ps
    return out


def test_ocean_swell_matches_reference_including_a_new_wave(rng_state: np.ndarray) -> None:
    leak, gain = brown_coefficients(20.0, FS)
    n = 400
    # start 100 samples before the end of a 9 s wave, so a new period is drawn mid-block
    swell = np.array([1.0 - 100.0 / (9.0 * FS), 9.0])
    pink, brown, lp = np.full((2, 7), 0.01), np.array([0.05, -0.05]), np.zeros(2)
    ref = RefRng(int(rng_state[0]))
    r_swell, r_pink, r_brown, r_lp = swell.copy(), pink.copy(), brown.copy(), lp.copy()
    expected = ref_ocean(n, ref, r_pink, r_brown, r_lp, r_swell, 800, 1600, 0.3, 0.6, leak, gain)
    out = np.zeros((n, 2))
    _ocean_swell(out, rng_state, pink, brown, lp, swell, FS, 800, 1600, 0.3, 0.6, leak, gain)
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(swell, r_swell, rtol=1e-12)
    assert SWELL_PERIOD_RANGE_S[0] <= swell[1] <= SWELL_PERIOD_RANGE_S[1]
    assert swell[0] < 0.01  # wrapped


def test_ocean_waves_last_8_to_14_s_and_crests_are_louder() -> None:
    rng = seed_rng_states(11, 1)
    leak, gain = brown_coefficients(20.0, FS)
    pink, brown, lp, swell = np.zeros((2, 7)), np.zeros(2), np.zeros(2), np.zeros(2)
    block = np.zeros((4800, 2))  # 0.1 s
    periods, phases, rms = [], [], []
    for _ in range(1500):  # 150 s
        phases.append(swell[0])
        _ocean_swell(block, rng, pink, brown, lp, swell, FS, 2000, 2000, 0.7, 0.7, leak, gain)
        periods.append(swell[1])
        rms.append(np.sqrt(np.mean(block**2)))
    distinct = sorted(set(periods))
    assert len(distinct) >= 150 / 14 - 1
    assert all(8.0 <= p <= 14.0 for p in distinct)
    assert np.std(distinct) > 0.5  # not a metronome
    shape = ref_swell_shape(np.array(phases))
    rms_arr = np.array(rms[10:])
    crest = rms_arr[shape[10:] > 0.8].mean()
    trough = rms_arr[shape[10:] < 0.2].mean()
    assert crest > 2.0 * trough
    assert np.corrcoef(shape[10:], rms_arr)[0, 1] > 0.8


# ----------------------------------------------------------------------------- breath
def test_breath_envelope_matches_reference() -> None:
    n = 500
    phase = np.array([0.39])  # crosses from inhale to exhale inside the block
    env = np.zeros(n)
    rate0, rate1, d0, d1 = 300.0, 360.0, 0.2, 0.5  # fast, to cover much of a cycle
    last = _breath_envelope(env, phase, rate0, rate1, d0, d1, FS, BREATH_INHALE_FRACTION)
    rates = ramp(rate0, rate1, n)
    ph = 0.39 + np.concatenate(([0.0], np.cumsum(rates[:-1] / (60 * FS))))
    ph = ph % 1.0
    expected = 1 - ramp(d0, d1, n) * (1 - ref_breath_shape(ph, BREATH_INHALE_FRACTION))
    np.testing.assert_allclose(env, expected, rtol=1e-9)
    assert phase[0] == pytest.approx((ph[-1] + rates[-1] / (60 * FS)) % 1.0)
    assert last == pytest.approx(float(ref_breath_shape(ph[-1:], BREATH_INHALE_FRACTION)[0]))


@pytest.mark.parametrize("rate_bpm", [3.0, 6.0, 12.0, 20.0])
def test_breath_period_matches_rate_and_exhale_is_longer(rate_bpm: float) -> None:
    fs = 1000.0  # a low rate keeps the test fast; the kernel is rate-agnostic
    seconds = 3 * 60.0 / rate_bpm + 1.0
    env = np.zeros(int(seconds * fs))
    _breath_envelope(env, np.zeros(1), rate_bpm, rate_bpm, 1.0, 1.0, fs, BREATH_INHALE_FRACTION)
    # troughs (start of each inhale): 0 at the start, then each local minimum
    inner = np.flatnonzero((env[1:-1] < env[:-2]) & (env[1:-1] <= env[2:])) + 1
    troughs = np.concatenate(([0], inner))
    assert len(troughs) == 4  # three whole cycles, the fourth just begun
    period_s = np.diff(troughs) / fs
    np.testing.assert_allclose(period_s, 60.0 / rate_bpm, atol=2.0 / fs)
    # crest (end of inhale, start of exhale) of each cycle
    crests = np.array([t0 + np.argmax(env[t0:t1]) for t0, t1 in itertools.pairwise(troughs)])
    inhale_s = (crests - troughs[:-1]) / fs
    exhale_s = (troughs[1:] - crests) / fs
    assert np.all(exhale_s >= inhale_s)
    np.testing.assert_allclose(inhale_s / period_s, BREATH_INHALE_FRACTION, atol=0.01)
    assert env.min() == pytest.approx(0.0, abs=1e-6) and env.max() == pytest.approx(1.0)


def test_breath_rate_zero_freezes_the_phase() -> None:
    phase = np.array([0.25])
    env = np.zeros(256)
    _breath_envelope(env, phase, 0.0, 0.0, 0.5, 0.5, FS, BREATH_INHALE_FRACTION)
    assert phase[0] == 0.25
    assert np.ptp(env) == 0.0


# ----------------------------------------------------------------------------- gains
def test_gain_ramps_match_reference_and_join_between_blocks() -> None:
    rng = np.random.default_rng(5)
    src = rng.standard_normal((128, 2))
    dst = rng.standard_normal((128, 2))
    expected = dst + ramp(0.2, 0.9, 128)[:, None] * src
    _mix_ramped(dst, src, 0.2, 0.9)
    np.testing.assert_allclose(dst, expected, rtol=1e-12)

    ones = np.ones((300, 2))
    _apply_gain_ramp(ones[:100], 0.0, 0.5)
    _apply_gain_ramp(ones[100:], 0.5, 1.0)
    g = ones[:, 0]
    np.testing.assert_allclose(np.diff(g), np.concatenate(([0.005] * 99, [0.0025] * 200)))

    env = rng.uniform(0, 1, 64)
    buf = rng.standard_normal((64, 2))
    expected = buf * env[:, None]
    _apply_envelope(buf, env)
    np.testing.assert_allclose(buf, expected)


# ----------------------------------------------------------------------------- limiter
def test_soft_limiter_matches_reference_and_never_exceeds_ceiling() -> None:
    ceiling = float(np.float32(0.5))
    knee = 0.25
    x = np.concatenate(
        (np.linspace(-4, 4, 2001), np.random.default_rng(9).standard_normal(4000) * 3, [np.nan])
    )
    y = np.array([_soft_limit(v, knee, ceiling) for v in x])
    np.testing.assert_allclose(y, ref_soft_limit(x, knee, ceiling), rtol=1e-12, atol=1e-15)
    assert np.all(np.abs(y) <= ceiling)
    below = np.abs(x) <= knee
    np.testing.assert_array_equal(y[below], x[below])  # transparent below the knee
    ramp_x = np.linspace(0, 4, 2001)
    ramp_y = np.array([_soft_limit(v, knee, ceiling) for v in ramp_x])
    assert np.all(np.diff(ramp_y) >= 0)  # monotonic
    # slope 1 at the knee: no kink
    eps = 1e-6
    assert (_soft_limit(knee + eps, knee, ceiling) - knee) / eps == pytest.approx(1.0, abs=1e-4)

    buf = np.stack([x[:-1], -x[:-1]], axis=1) * 2
    out = np.zeros(buf.shape, dtype=np.float32)
    _limit_into(out, buf, knee, ceiling)
    assert out.dtype == np.float32
    assert np.abs(out).max() <= np.float32(ceiling)
    np.testing.assert_allclose(out, ref_soft_limit(buf, knee, ceiling).astype(np.float32))
