"""Synthesis primitives against plain NumPy/SciPy references, spectra and envelope timing."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.signal import lfilter

from heartsong.audio.kernels import (
    BREATH_INHALE_FRACTION,
    SOURCE_RMS,
    _apply_envelope,
    _apply_gain_ramp,
    _breath_envelope,
    _brown_noise,
    _limit_into,
    _mix_ramped,
    _one_pole_lowpass,
    _pink_noise,
    _soft_limit,
    _svf_bandpass,
    _white_noise,
    _xorshift_uniform,
    brown_coefficients,
    lowpass_coefficient,
    seed_rng_states,
    svf_coefficients,
)
from test_audio_refs import (
    KELLET_DELAYED,
    KELLET_DIRECT,
    KELLET_POLES,
    PINK_RAW_RMS,
    RefRng,
)

FS = 48000.0


# ----------------------------------------------------------------------------- references
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
    state = np.zeros(14)  # flat: left channel's 7 floats, then the right's
    ref_state = state.reshape(2, 7).copy()
    for n in (200, 137):  # two blocks: the state must carry over exactly
        out = np.zeros((n, 2))
        _pink_noise(out, rng_state, state)
        expected, ref_state = ref_pink(ref.block(n), ref_state)
        np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(state.reshape(2, 7), ref_state, rtol=1e-9, atol=1e-12)


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
        _pink_noise(out, rng, np.zeros(14))
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


def ref_svf_bandpass(x: np.ndarray, fc: float, q: float, fs: float) -> np.ndarray:
    """The SVF's band-pass as the bilinear transform of H(s) = (s/w0)/(s^2/w0^2 + s/(Q w0) + 1),
    prewarped at fc (what the trapezoidal SVF is), through scipy's lfilter."""
    k = 1.0 / math.tan(math.pi * fc / fs)  # s = k (1 - z^-1)/(1 + z^-1), w0 = 1
    b = np.array([k, 0.0, -k])
    a = np.array([k * k + k / q + 1.0, 2.0 - 2.0 * k * k, k * k - k / q + 1.0])
    return np.asarray(lfilter(b / a[0], a / a[0], x))


def test_svf_bandpass_matches_the_bilinear_band_pass_and_peaks_at_q() -> None:
    x = np.random.default_rng(4).standard_normal(3000)
    fc, q = 1200.0, 2.5
    a1, a2, a3 = svf_coefficients(fc, q, FS)
    st = np.zeros(4)
    y = np.array([_svf_bandpass(v, st, 2, a1, a2, a3) for v in x])
    assert np.all(st[:2] == 0.0)  # only its own two floats are touched
    np.testing.assert_allclose(y, ref_svf_bandpass(x, fc, q, FS), rtol=1e-9, atol=1e-12)
    # v1 peaks at gain Q at the centre frequency and falls off either side
    t = np.arange(int(FS)) / FS
    gains = []
    for f in (fc / 4, fc, fc * 4):
        st[:] = 0.0
        tone = np.sin(2 * np.pi * f * t)
        out = np.array([_svf_bandpass(v, st, 0, a1, a2, a3) for v in tone])
        gains.append(np.sqrt(2 * np.mean(out[len(out) // 2 :] ** 2)))
    assert gains[1] == pytest.approx(q, rel=0.01)
    assert gains[0] < gains[1] / 4 and gains[2] < gains[1] / 4


def test_svf_state_stays_continuous_when_the_centre_jumps() -> None:
    # A centre jump between samples (every 100 samples, 300 Hz <-> 3 kHz) never makes a
    # sample-to-sample step larger than the filter makes when held at either centre.
    x = np.random.default_rng(8).standard_normal(6000) * 0.1

    def run(centre: object) -> np.ndarray:
        st = np.zeros(2)
        out = []
        for i, v in enumerate(x):
            fc = centre(i) if callable(centre) else centre
            out.append(_svf_bandpass(v, st, 0, *svf_coefficients(float(fc), 1.0, FS)))
        return np.array(out)

    steady = max(np.abs(np.diff(run(c))).max() for c in (300.0, 3000.0))
    swept = run(lambda i: 300.0 if (i // 100) % 2 == 0 else 3000.0)
    assert np.all(np.isfinite(swept))
    assert np.abs(np.diff(swept)).max() <= 1.05 * steady


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
