"""Texture kernels (ocean, rain, wind, stream, crickets) against per-sample references,
plus what each should sound like: wave periods, drop rates, gusts, bubbles, chirps."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from heartsong.audio import textures as tx
from heartsong.audio.kernels import brown_coefficients, seed_rng_states
from test_audio_refs import SOURCE_RMS, RefPink, RefRng, RefSvf, chunks, spectral_peak_hz

FS = 48000.0
LEAK, GAIN = brown_coefficients(20.0, FS)


def swell_shape(phase: float) -> float:
    r = tx.SWELL_RISE_FRACTION
    if phase < r:
        return 0.5 - 0.5 * math.cos(math.pi * phase / r)
    return 0.5 + 0.5 * math.cos(math.pi * (phase - r) / (1 - r))


def run_blocks(kernel: object, state: np.ndarray, rng: np.ndarray, sizes: list[int],
               *args: float) -> np.ndarray:
    """Run a texture kernel over consecutive blocks of the given sizes; concatenated output."""
    outs = []
    for n in sizes:
        out = np.zeros((n, 2))
        kernel(out, rng, state, FS, *args)  # type: ignore[operator]
        outs.append(out)
    return np.concatenate(outs)


def centroid_hz(x: np.ndarray) -> float:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / FS)
    return float(np.sum(f * mag) / np.sum(mag))


# ============================================================================= ocean
class RefOcean:
    """The ocean kernel's docstring, one sample at a time."""

    def __init__(self, rng: RefRng) -> None:
        self.rng = rng
        self.pink = [RefPink(), RefPink()]
        self.brown = [0.0, 0.0]
        self.lp = [0.0, 0.0]
        self.phase = 0.0
        self.period = 0.0
        self.a = 0.0
        self.amp = 0.0

    def block(self, n: int, fc0: float, fc1: float, d0: float, d1: float) -> np.ndarray:
        lo, hi = tx.SWELL_PERIOD_RANGE_S
        floor = tx.SWELL_CUTOFF_FLOOR
        if self.period <= 0:
            self.period = lo + (hi - lo) * self.rng.u01()
        out = np.zeros((n, 2))
        for start, stop in chunks(n):
            m = stop - start
            self.phase += m / (self.period * FS)
            if self.phase >= 1:
                self.phase -= 1
                self.period = lo + (hi - lo) * self.rng.u01()
            e = swell_shape(self.phase)
            f = stop / n
            fc = (fc0 + (fc1 - fc0) * f) * (floor + (1 - floor) * e)
            a1 = 1 - math.exp(-2 * math.pi * min(max(fc, 1.0), 0.45 * FS) / FS)
            depth = d0 + (d1 - d0) * f
            amp1 = 0.95 * (1 - depth + depth * e)
            a0, amp0 = (self.a, self.amp) if self.a != 0 else (a1, amp1)
            self.a, self.amp = a1, amp1
            for k in range(1, m + 1):
                a = a0 + (a1 - a0) * k / m
                amp = amp0 + (amp1 - amp0) * k / m
                for c in range(2):
                    pink = self.pink[c].step(self.rng.next())
                    self.brown[c] = LEAK * self.brown[c] + GAIN * self.rng.next()
                    x = 0.8 * self.brown[c] + 0.6 * pink
                    self.lp[c] += a * (x - self.lp[c])
                    out[start + k - 1, c] = amp * self.lp[c]
        return out


def test_ocean_matches_reference_including_a_new_wave() -> None:
    rng = seed_rng_states(1234, 1)
    ref = RefOcean(RefRng(int(rng[0])))
    st = np.zeros(tx.OCEAN_STATE)
    # the first block draws a period; then put the wave 40 samples before its end
    out0 = np.zeros((100, 2))
    tx._ocean_swell(out0, rng, st, FS, 800.0, 900.0, 0.3, 0.4, LEAK, GAIN)
    exp0 = ref.block(100, 800.0, 900.0, 0.3, 0.4)
    np.testing.assert_allclose(out0, exp0, rtol=1e-9, atol=1e-12)
    st[18] = ref.phase = 1.0 - 40.0 / (st[19] * FS)
    period_before = st[19]
    out1 = np.zeros((257, 2))  # a partial last chunk
    tx._ocean_swell(out1, rng, st, FS, 900.0, 1600.0, 0.4, 0.6, LEAK, GAIN)
    np.testing.assert_allclose(out1, ref.block(257, 900.0, 1600.0, 0.4, 0.6), rtol=1e-9,
                               atol=1e-12)
    assert st[19] != period_before and st[18] < 0.01  # a new wave began, with a new period
    assert st[19] == pytest.approx(ref.period) and st[18] == pytest.approx(ref.phase)


def test_ocean_waves_last_8_to_14_s_and_crests_are_louder() -> None:
    rng = seed_rng_states(11, 1)
    st = np.zeros(tx.OCEAN_STATE)
    block = np.zeros((4800, 2))  # 0.1 s
    periods, phases, rms = [], [], []
    for _ in range(1500):  # 150 s
        phases.append(st[18])
        tx._ocean_swell(block, rng, st, FS, 2000.0, 2000.0, 0.7, 0.7, LEAK, GAIN)
        periods.append(st[19])
        rms.append(np.sqrt(np.mean(block**2)))
    distinct = sorted(set(periods))
    assert len(distinct) >= 150 / 14 - 1
    assert all(8.0 <= p <= 14.0 for p in distinct)
    assert np.std(distinct) > 0.5  # not a metronome
    shape = np.array([swell_shape(p) for p in phases[10:]])
    rms_arr = np.array(rms[10:])
    assert rms_arr[shape > 0.8].mean() > 2.0 * rms_arr[shape < 0.2].mean()
    assert np.corrcoef(shape, rms_arr)[0, 1] > 0.8


# ============================================================================= rain
class RefRain:
    """The rain kernel's docstring, one sample at a time."""

    def __init__(self, rng: RefRng) -> None:
        self.rng = rng
        self.hp = [0.0, 0.0]
        self.lp = [0.0, 0.0]
        self.rr = [0, 0]
        # per ear, per voice: x, y, cos, sin, decay, excitation
        self.v = np.zeros((2, tx.RAIN_VOICES, 6))
        self.drops = 0

    def block(self, n: int, i0: float, i1: float, b0: float, b1: float) -> np.ndarray:
        r_lo, r_hi = tx.RAIN_RATE_HZ
        p_lo, p_hi = tx.RAIN_PITCH_HZ
        d_lo, d_hi = tx.RAIN_DECAY_S
        l_lo, l_hi = tx.RAIN_HISS_LP_HZ
        a_hp = 1 - math.exp(-2 * math.pi * tx.RAIN_HISS_HP_HZ / FS)
        k_exc = math.exp(-1 / (tx.RAIN_ATTACK_S * FS))
        out = np.zeros((n, 2))
        for start, stop in chunks(n):
            f = stop / n
            inten = i0 + (i1 - i0) * f
            bright = b0 + (b1 - b0) * f
            p_drop = r_lo * (r_hi / r_lo) ** inten / FS
            a_lp = 1 - math.exp(-2 * math.pi * l_lo * (l_hi / l_lo) ** bright / FS)
            pitch_scale = 2 ** (2 * bright - 1)
            hiss_gain = tx._RAIN_HISS_GAIN * (0.6 + 0.8 * inten)
            for i in range(start, stop):
                for c in range(2):
                    w = self.rng.next()
                    self.hp[c] += a_hp * (w - self.hp[c])
                    self.lp[c] += a_lp * ((w - self.hp[c]) - self.lp[c])
                    if self.rng.u01() < p_drop:
                        self.drops += 1
                        voice = self.v[c, self.rr[c]]
                        self.rr[c] = (self.rr[c] + 1) % tx.RAIN_VOICES
                        freq = pitch_scale * p_lo * (p_hi / p_lo) ** self.rng.u01()
                        tau = d_lo + (d_hi - d_lo) * self.rng.u01()
                        level = self.rng.u01()
                        ang = 2 * math.pi * min(freq, 0.4 * FS) / FS
                        voice[2:5] = math.cos(ang), math.sin(ang), math.exp(-1 / (tau * FS))
                        voice[5] += (1 - k_exc) * (0.2 + 0.8 * level * level)
                    drops = 0.0
                    for voice in self.v[c]:
                        x, y, cs, sn, r, e = voice
                        x += e
                        voice[5] = e * k_exc
                        voice[0], voice[1] = r * (cs * x - sn * y), r * (sn * x + cs * y)
                        drops += voice[1]
                    out[i, c] = hiss_gain * self.lp[c] + tx._RAIN_DROP_GAIN * drops
        return out


def test_rain_matches_reference_across_blocks_with_drops() -> None:
    rng = seed_rng_states(21, 1)
    ref = RefRain(RefRng(int(rng[0])))
    st = np.zeros(tx.RAIN_STATE)
    out = run_blocks(tx._rain, st, rng, [300], 0.9, 1.0, 0.2, 0.8)
    out = np.concatenate((out, run_blocks(tx._rain, st, rng, [157], 1.0, 1.0, 0.8, 0.8)))
    expected = np.concatenate(
        (ref.block(300, 0.9, 1.0, 0.2, 0.8), ref.block(157, 1.0, 1.0, 0.8, 0.8))
    )
    assert ref.drops >= 2  # the comparison covered drops
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)


def count_drops(intensity: float, seconds: float) -> int:
    """Drops in the left ear over ``seconds``, counted from its voice index one frame at a
    time (at most one drop per frame and ear)."""
    rng = seed_rng_states(5, 1)
    st = np.zeros(tx.RAIN_STATE)
    out = np.zeros((1, 2))
    drops = 0
    last = st[2]
    for _ in range(int(seconds * FS)):
        tx._rain(out, rng, st, FS, intensity, intensity, 0.5, 0.5)
        drops += int(st[2] - last) % tx.RAIN_VOICES
        last = st[2]
    return drops


def test_rain_drop_rate_follows_intensity() -> None:
    for intensity, rate in ((0.0, tx.RAIN_RATE_HZ[0]), (1.0, tx.RAIN_RATE_HZ[1])):
        n = count_drops(intensity, 1.0)
        # one ear's drops in one second: Poisson(rate), within 4 standard deviations
        assert abs(n - rate) < 4 * math.sqrt(rate) + 1


def test_rain_level_brightness_and_width() -> None:
    def render(intensity: float, brightness: float) -> np.ndarray:
        st = np.zeros(tx.RAIN_STATE)
        x = run_blocks(tx._rain, st, seed_rng_states(9, 1), [256] * 750, intensity, intensity,
                       brightness, brightness)
        return x[9600:]

    mid = render(0.5, 0.5)
    rms = float(np.sqrt(np.mean(mid**2)))
    assert rms == pytest.approx(SOURCE_RMS, rel=0.25)
    assert abs(np.corrcoef(mid[:, 0], mid[:, 1])[0, 1]) < 0.1  # each ear its own drops
    assert centroid_hz(render(0.5, 1.0)[:, 0]) > 1.3 * centroid_hz(render(0.5, 0.0)[:, 0])


# ============================================================================= wind
class RefWind:
    """The wind kernel's docstring, one sample at a time."""

    def __init__(self, rng: RefRng) -> None:
        self.rng = rng
        self.pink = [RefPink(), RefPink()]
        self.svf = [RefSvf(), RefSvf()]
        self.g = self.g_target = self.hold = 0.0
        self.fl = [0.0, 0.0]
        self.fl_target = [0.0, 0.0]
        self.amp = [0.0, 0.0]
        self.started = False

    def block(self, n: int, i0: float, i1: float, b0: float, b1: float) -> np.ndarray:
        c_lo, c_hi = tx.WIND_CENTRE_HZ
        h_lo, h_hi = tx.WIND_GUST_HOLD_S
        if not self.started:
            self.started = True
            self.g = self.g_target = 0.5
            self.fl = [0.5, 0.5]
            self.fl_target = [0.5, 0.5]
        out = np.zeros((n, 2))
        for start, stop in chunks(n):
            m = stop - start
            dt = m / FS
            f = stop / n
            inten = i0 + (i1 - i0) * f
            bright = b0 + (b1 - b0) * f
            self.hold -= dt
            if self.hold <= 0:
                self.g_target = self.rng.u01()
                self.hold = h_lo + (h_hi - h_lo) * self.rng.u01()
            self.g += (1 - math.exp(-dt / tx.WIND_GUST_TAU_S)) * (self.g_target - self.g)
            a_fl = 1 - math.exp(-dt / tx.WIND_FLUTTER_TAU_S)
            depth = 0.35 + 0.6 * inten
            centre = c_lo * (c_hi / c_lo) ** bright
            for c in range(2):
                if self.rng.u01() < dt / tx.WIND_FLUTTER_S:
                    self.fl_target[c] = self.rng.u01()
                self.fl[c] += a_fl * (self.fl_target[c] - self.fl[c])
                gc = min(max(self.g + 0.3 * (self.fl[c] - 0.5), 0.0), 1.0)
                q = 1 + 2 * gc
                fc = centre * 2 ** (tx.WIND_SWEEP_OCT * (gc - 0.5))
                amp1 = tx._WIND_MAKEUP * (1 - depth * (1 - gc)) / q
                amp0 = self.amp[c] if self.amp[c] != 0 else amp1
                self.amp[c] = amp1
                for k in range(1, m + 1):
                    x = self.pink[c].step(self.rng.next())
                    bp = self.svf[c].bandpass(x, fc, q, FS)
                    out[start + k - 1, c] = (amp0 + (amp1 - amp0) * k / m) * bp
        return out


def test_wind_matches_reference_across_blocks() -> None:
    rng = seed_rng_states(31, 1)
    ref = RefWind(RefRng(int(rng[0])))
    st = np.zeros(tx.WIND_STATE)
    out = np.concatenate((
        run_blocks(tx._wind, st, rng, [300], 0.2, 0.9, 0.1, 0.7),
        run_blocks(tx._wind, st, rng, [200], 0.9, 0.9, 0.7, 0.7),
    ))
    expected = np.concatenate(
        (ref.block(300, 0.2, 0.9, 0.1, 0.7), ref.block(200, 0.9, 0.9, 0.7, 0.7))
    )
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)


def test_wind_gusts_sweep_and_swell_more_at_high_intensity() -> None:
    def windows(intensity: float, brightness: float) -> tuple[np.ndarray, np.ndarray]:
        st = np.zeros(tx.WIND_STATE)
        x = run_blocks(tx._wind, st, seed_rng_states(2, 1), [4800] * 400, intensity,
                       intensity, brightness, brightness)[48000:, 0]  # 39 s after 1 s
        w = x[: len(x) // 12000 * 12000].reshape(-1, 12000)  # 0.25 s windows
        return np.sqrt(np.mean(w**2, axis=1)), np.array([centroid_hz(v) for v in w])

    rms_hi, cen_hi = windows(1.0, 0.5)
    rms_lo, _ = windows(0.0, 0.5)
    _, cen_dark = windows(0.5, 0.0)
    _, cen_bright = windows(0.5, 1.0)
    assert np.std(cen_hi) / np.mean(cen_hi) > 0.1  # the band moves with the gusts
    assert np.ptp(np.log(rms_hi)) > 1.5 * np.ptp(np.log(rms_lo))  # deeper swells
    assert np.median(cen_bright) > 3.0 * np.median(cen_dark)
    assert np.sqrt(np.mean(rms_hi**2)) == pytest.approx(SOURCE_RMS, rel=0.5)


# ============================================================================= stream
class RefStream:
    """The stream kernel's docstring, one sample at a time."""

    def __init__(self, rng: RefRng) -> None:
        self.rng = rng
        self.svf = [RefSvf(), RefSvf()]
        # per ear, per voice: x, y, r cos, r sin, r, f0, d, age
        self.v = np.zeros((2, tx.STREAM_VOICES, 8))
        self.bubbles = 0

    @staticmethod
    def rotate(voice: np.ndarray) -> None:
        freq = voice[5] * (1 + tx.STREAM_RISE * voice[6] * voice[7])
        w = 2 * math.pi * min(freq, 0.4 * FS) / FS
        voice[2], voice[3] = voice[4] * math.cos(w), voice[4] * math.sin(w)

    def block(self, n: int, i0: float, i1: float, b0: float, b1: float) -> np.ndarray:
        q_lo, q_hi = tx.STREAM_RATE_HZ
        r_lo, r_hi = tx.STREAM_RADIUS_MM
        u_lo, u_hi = tx.STREAM_RUSH_HZ
        out = np.zeros((n, 2))
        for start, stop in chunks(n):
            dt = (stop - start) / FS
            f = stop / n
            inten = i0 + (i1 - i0) * f
            bright = b0 + (b1 - b0) * f
            p = q_lo * (q_hi / q_lo) ** inten * dt
            size = 2 ** (0.5 - bright)
            centre = u_lo * (u_hi / u_lo) ** bright
            rush_gain = tx._STREAM_RUSH_GAIN * (0.5 + inten) / tx.STREAM_RUSH_Q
            for c in range(2):
                for voice in self.v[c]:
                    if abs(voice[0]) + abs(voice[1]) > 1e-6:
                        voice[7] += dt
                        self.rotate(voice)
                if self.rng.u01() < p:
                    self.bubbles += 1
                    energy = self.v[c, :, 0] ** 2 + self.v[c, :, 1] ** 2
                    voice = self.v[c, int(np.argmin(energy))]
                    u = self.rng.u01()
                    radius = size * r_lo * (r_hi / r_lo) ** (u * u)
                    f0 = 3260.0 / radius
                    d = 0.043 * f0 + 0.0014 * f0**1.5
                    voice[0] += (radius / (size * r_hi)) ** 1.2
                    voice[4:8] = math.exp(-d / FS), f0, d, 0.0
                    self.rotate(voice)
                for i in range(start, stop):
                    rush = self.svf[c].bandpass(self.rng.next(), centre, tx.STREAM_RUSH_Q, FS)
                    total = 0.0
                    for voice in self.v[c]:
                        x, y, rc, rs = voice[:4]
                        voice[0], voice[1] = rc * x - rs * y, rs * x + rc * y
                        total += voice[1]
                    out[i, c] = rush_gain * rush + tx._STREAM_BUBBLE_GAIN * total
        return out


def test_stream_matches_reference_across_blocks_with_bubbles() -> None:
    rng = seed_rng_states(41, 1)
    ref = RefStream(RefRng(int(rng[0])))
    st = np.zeros(tx.STREAM_STATE)
    out = np.concatenate((
        run_blocks(tx._stream, st, rng, [400], 1.0, 1.0, 0.3, 0.6),
        run_blocks(tx._stream, st, rng, [170], 1.0, 0.8, 0.6, 0.6),
    ))
    expected = np.concatenate(
        (ref.block(400, 1.0, 1.0, 0.3, 0.6), ref.block(170, 1.0, 0.8, 0.6, 0.6))
    )
    assert ref.bubbles >= 3
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)


def test_bubble_pitch_rises_as_it_decays() -> None:
    # van den Doel (2005): f(t) = f0 (1 + xi d t); the rotation angle grows with the age
    st = np.zeros(8)
    f0 = 1000.0
    d = 0.043 * f0 + 0.0014 * f0**1.5
    st[4:8] = math.exp(-d / FS), f0, d, 0.0
    tx._bubble_rotation(st, 0, FS)
    w0 = math.atan2(st[3], st[2])
    assert w0 == pytest.approx(2 * math.pi * f0 / FS)
    assert math.hypot(st[2], st[3]) == pytest.approx(math.exp(-d / FS))
    st[7] = 0.02
    tx._bubble_rotation(st, 0, FS)
    assert math.atan2(st[3], st[2]) / w0 == pytest.approx(1 + tx.STREAM_RISE * d * 0.02)


def test_stream_level_brightness_and_busyness() -> None:
    def render(intensity: float, brightness: float) -> np.ndarray:
        st = np.zeros(tx.STREAM_STATE)
        return run_blocks(tx._stream, st, seed_rng_states(7, 1), [256] * 1000, intensity,
                          intensity, brightness, brightness)[9600:]

    mid = render(0.5, 0.5)
    assert float(np.sqrt(np.mean(mid**2))) == pytest.approx(SOURCE_RMS, rel=0.25)
    assert abs(np.corrcoef(mid[:, 0], mid[:, 1])[0, 1]) < 0.1
    assert centroid_hz(render(0.5, 1.0)[:, 0]) > 1.3 * centroid_hz(render(0.5, 0.0)[:, 0])
    assert np.mean(render(1.0, 0.5) ** 2) > 1.5 * np.mean(render(0.0, 0.5) ** 2)


# ============================================================================= crickets
class RefCrickets:
    """The crickets kernel's docstring, one sample at a time."""

    def __init__(self, rng: RefRng) -> None:
        self.rng = rng
        self.k = np.zeros((2, 8))  # x, y, cos, sin, wait, pulses, pos

    def block(self, n: int, i0: float, i1: float) -> np.ndarray:
        on = tx.CRICKET_PULSE_S[0] * FS
        period = tx.CRICKET_PULSE_S[1] * FS
        lo, hi = tx.CRICKET_INTERVAL_S
        gap = (lo + (hi - lo) * 0.5 * (i0 + i1)) * FS
        for c in self.k:
            if c[2] == 0 and c[3] == 0:
                p_lo, p_hi = tx.CRICKET_PITCH_HZ
                w = 2 * math.pi * (p_lo + (p_hi - p_lo) * self.rng.u01()) / FS
                c[:4] = 1.0, 0.0, math.cos(w), math.sin(w)
                c[4] = gap * (0.2 + self.rng.u01())
        out = np.zeros((n, 2))
        for i in range(n):
            for j, c in enumerate(self.k):
                x, y, cs, sn = c[:4]
                c[0], y = cs * x - sn * y, sn * x + cs * y
                c[1] = y
                level = 0.0
                if c[5] > 0:
                    u = c[6] / on
                    level = (4 * u * (1 - u)) ** 2 if c[6] < on else 0.0
                    c[6] += 1
                    if c[6] >= period:
                        c[6] = 0
                        c[5] -= 1
                else:
                    c[4] -= 1
                    if c[4] <= 0:
                        p_lo, p_hi = tx.CRICKET_PULSES
                        c[5] = p_lo + int((p_hi - p_lo + 1) * self.rng.u01())
                        c[6] = 0
                        c[4] = gap * (0.6 + 0.8 * self.rng.u01())
                        norm = math.hypot(c[0], y)
                        c[0], c[1] = c[0] / norm, y / norm
                s = tx._CRICKET_GAIN * level * y
                near, far = (0, 1) if j == 0 else (1, 0)
                out[i, near] += s
                out[i, far] += tx.CRICKET_CROSSFEED * s
        return out


def test_crickets_match_reference_through_a_chirp() -> None:
    rng = seed_rng_states(51, 1)
    ref = RefCrickets(RefRng(int(rng[0])))
    st = np.zeros(tx.CRICKETS_STATE)
    out = run_blocks(tx._crickets, st, rng, [2000] * 12, 1.0, 1.0)  # 0.5 s at intensity 1
    expected = np.concatenate([ref.block(2000, 1.0, 1.0) for _ in range(12)])
    assert np.abs(expected).max() > 0.1  # a chirp happened
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)


def test_crickets_chirp_in_groups_of_smooth_pulses_at_their_pitch() -> None:
    st = np.zeros(tx.CRICKETS_STATE)
    x = run_blocks(tx._crickets, st, seed_rng_states(3, 1), [4800] * 300, 0.5, 0.5)  # 30 s
    # undo the crossfeed: each cricket on its own
    k = tx.CRICKET_CROSSFEED
    crickets = ((x[:, 0] - k * x[:, 1]) / (1 - k * k), (x[:, 1] - k * x[:, 0]) / (1 - k * k))
    lo, hi = tx.CRICKET_INTERVAL_S
    mean_gap = lo + (hi - lo) * 0.5
    pitches = []
    for s in crickets:
        pitches.append(spectral_peak_hz(s, FS, 3000.0, 6000.0))
        sounding = (np.abs(s) > 1e-12).astype(int)
        starts = np.flatnonzero(np.diff(sounding) == 1) + 1
        ends = np.flatnonzero(np.diff(sounding) == -1) + 1
        ends = ends[ends > starts[0]]
        lengths = ends[: len(starts)] - starts[: len(ends)]
        # each pulse sounds for CRICKET_PULSE_S[0] (its first sample, u = 0, is silent)
        assert np.all(np.abs(lengths - (tx.CRICKET_PULSE_S[0] * FS - 1)) <= 1)
        gaps = np.diff(starts) / FS
        within = gaps[gaps < 0.1]
        np.testing.assert_allclose(within, tx.CRICKET_PULSE_S[1], atol=2 / FS)
        chirps = np.split(starts, np.flatnonzero(np.diff(starts) / FS > 0.1) + 1)
        sizes = [len(c) for c in chirps]
        assert len(sizes) >= 15
        assert set(sizes) <= set(range(tx.CRICKET_PULSES[0], tx.CRICKET_PULSES[1] + 1))
        assert len(set(sizes)) > 1  # not always the same chirp
        silences = np.array([b[0] - a[-1] for a, b in itertools.pairwise(chirps)])
        silences = silences / FS - tx.CRICKET_PULSE_S[1]  # from the last pulse's end
        assert silences.min() >= 0.6 * mean_gap - 0.01
        assert silences.max() <= 1.4 * mean_gap + 0.01
    # two crickets, each at its own pitch within the species' range
    assert all(tx.CRICKET_PITCH_HZ[0] <= p <= tx.CRICKET_PITCH_HZ[1] for p in pitches)
    assert abs(pitches[0] - pitches[1]) > 1.0
