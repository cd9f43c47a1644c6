"""Frequency-domain HRV: the Lomb-Scargle kernel, PSD scaling, Task Force bands, gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal

from heartsong.dsp.hrv_freq import (
    _band_kernel,
    _lomb_scargle_kernel,
    band_power,
    hrv_frequency,
    hrv_lf_hf,
    lomb_scargle_psd,
    lomb_scargle_psds,
    segments_from_holes,
)
from heartsong.errors import InputDataError


def beat_times(duration_s: float, mean_s: float = 0.85, seed: int = 0) -> np.ndarray:
    """Uneven beat times (jittered intervals) over ``duration_s`` seconds."""
    rng = np.random.default_rng(seed)
    n = int(duration_s / mean_s * 1.1)
    t = np.cumsum(mean_s + 0.05 * rng.standard_normal(n))
    return t[t < duration_s]


def modulated_nn(
    t: np.ndarray, lf_ms: float, hf_ms: float, noise_ms: float = 0.0, seed: int = 1
) -> np.ndarray:
    """NN series: 800 ms + sinusoids at 0.1 Hz (LF) and 0.25 Hz (HF) of the given amplitudes."""
    rng = np.random.default_rng(seed)
    return (
        800.0
        + lf_ms * np.sin(2 * np.pi * 0.1 * t)
        + hf_ms * np.sin(2 * np.pi * 0.25 * t + 1.0)
        + noise_ms * rng.standard_normal(t.size)
    )


def lomb_scargle_numpy(t: np.ndarray, y: np.ndarray, f_hz: np.ndarray) -> np.ndarray:
    """Classic Lomb-Scargle (Scargle 1982, eq. 10), written out with NumPy per frequency."""
    out = np.empty(f_hz.size)
    for k, f in enumerate(f_hz):
        w = 2 * np.pi * f
        tau = np.arctan2(np.sum(np.sin(2 * w * t)), np.sum(np.cos(2 * w * t))) / (2 * w)
        c = np.cos(w * (t - tau))
        s = np.sin(w * (t - tau))
        out[k] = 0.5 * (np.sum(y * c) ** 2 / np.sum(c * c) + np.sum(y * s) ** 2 / np.sum(s * s))
    return out


def test_kernel_matches_numpy_and_scipy() -> None:
    rng = np.random.default_rng(3)
    t = 1000.0 + np.sort(rng.uniform(0.0, 120.0, 150))  # absolute monotonic times
    y = rng.standard_normal((2, 150))
    y -= y.mean(axis=1, keepdims=True)
    f0, df, n_freq = 0.01, 0.0037, 140
    out = np.empty((2, n_freq))
    _lomb_scargle_kernel(t, np.ascontiguousarray(y), f0, df, out)
    f = f0 + df * np.arange(n_freq)
    for row in range(2):
        ref = lomb_scargle_numpy(t, y[row], f)
        np.testing.assert_allclose(out[row], ref, rtol=1e-8, atol=1e-10 * ref.max())
        sp = scipy.signal.lombscargle(t, y[row], 2 * np.pi * f)
        np.testing.assert_allclose(out[row], sp, rtol=1e-8, atol=1e-10 * sp.max())


def test_band_kernel_matches_numpy_sum() -> None:
    rng = np.random.default_rng(4)
    psd = rng.uniform(0.0, 5.0, 200)
    df = 0.002
    f = df * np.arange(1, 201)
    power, peak = _band_kernel(psd, df, 0.04, 0.15)
    inside = (f >= 0.04) & (f < 0.15)
    assert power == pytest.approx(psd[inside].sum() * df, rel=1e-12)
    assert peak == pytest.approx(f[inside][np.argmax(psd[inside])])


@pytest.mark.parametrize(("f0", "jitter"), [(0.1, 0.0), (0.1037, 0.05), (0.25, 0.1)])
def test_density_integrates_to_the_variance_of_a_sinusoid(f0: float, jitter: float) -> None:
    rng = np.random.default_rng(5)
    t = np.cumsum(0.85 + jitter * rng.standard_normal(350))
    spec = lomb_scargle_psd(t, 30.0 * np.sin(2 * np.pi * f0 * t), f_max_hz=0.55)
    assert band_power(spec, (0.0, 0.55)) == pytest.approx(30.0**2 / 2, rel=0.03)
    assert spec.f_hz[np.argmax(spec.psd)] == pytest.approx(f0, abs=spec.df_hz)


def test_multi_series_rows_equal_single_series() -> None:
    t = beat_times(90.0)
    ys = np.vstack([modulated_nn(t, 30.0, 10.0, 3.0), modulated_nn(t, 5.0, 25.0, 3.0, seed=2)])
    seg = np.zeros(t.size, dtype=np.int64)
    psds, n_used, span = lomb_scargle_psds(t, ys, seg, f_max_hz=0.5, df_hz=0.004)
    assert n_used == t.size and span == pytest.approx(t[-1] - t[0])
    for row in range(2):
        single = lomb_scargle_psd(t, ys[row], f_max_hz=0.5, df_hz=0.004)
        np.testing.assert_allclose(psds[row], single.psd, rtol=1e-10)


def test_known_lf_and_hf_amplitudes_give_known_band_powers() -> None:
    t = beat_times(300.0)
    freq = hrv_frequency(t, modulated_nn(t, 30.0, 20.0, noise_ms=1.0))
    assert freq.lf_ms2 == pytest.approx(30.0**2 / 2, rel=0.06)
    assert freq.hf_ms2 == pytest.approx(20.0**2 / 2, rel=0.06)
    assert freq.lf_hf == pytest.approx((30.0 / 20.0) ** 2, rel=0.1)
    assert freq.lf_peak_hz == pytest.approx(0.1, abs=0.004)
    assert freq.hf_peak_hz == pytest.approx(0.25, abs=0.004)
    assert freq.vlf_ms2 < 0.02 * freq.lf_ms2 and freq.n_windows == 1
    assert freq.total_ms2 == pytest.approx(freq.vlf_ms2 + freq.lf_ms2 + freq.hf_ms2)


def test_doubling_hf_quarters_lf_hf() -> None:
    t = beat_times(300.0, seed=2)
    base = hrv_frequency(t, modulated_nn(t, 25.0, 10.0)).lf_hf
    doubled = hrv_frequency(t, modulated_nn(t, 25.0, 20.0)).lf_hf
    assert doubled == pytest.approx(base / 4.0, rel=0.05)


def test_short_coverage_gives_nan_per_band() -> None:
    t = beat_times(90.0)
    freq = hrv_frequency(t, modulated_nn(t, 30.0, 20.0))
    assert math.isfinite(freq.hf_ms2) and math.isnan(freq.lf_ms2) and math.isnan(freq.lf_hf)
    assert math.isnan(freq.vlf_ms2) and math.isnan(freq.total_ms2)
    t = beat_times(45.0)
    assert math.isnan(hrv_frequency(t, modulated_nn(t, 30.0, 20.0)).hf_ms2)
    assert math.isnan(hrv_frequency(t[:4], np.full(4, 800.0)).lf_hf)


def test_missing_beats_barely_change_the_band_powers() -> None:
    t = beat_times(300.0, seed=6)
    nn = modulated_nn(t, 30.0, 20.0, noise_ms=1.0)
    full = hrv_frequency(t, nn)
    holes = nn.copy()
    holes[np.random.default_rng(7).choice(t.size, t.size // 10, replace=False)] = np.nan
    sparse = hrv_frequency(t, holes)
    # 10 % of the samples missing at random: the periodogram's window gets holes, which
    # spreads a little power, but the bands stay close.
    assert sparse.lf_ms2 == pytest.approx(full.lf_ms2, rel=0.2)
    assert sparse.hf_ms2 == pytest.approx(full.hf_ms2, rel=0.2)


def test_segments_are_detrended_apart_so_a_step_is_not_power() -> None:
    t = beat_times(300.0, seed=8)
    nn = modulated_nn(t, 20.0, 20.0)
    after = t > 150.0
    nn[after] += 150.0  # heart rate level changed across a gap
    seg = after.astype(np.int64)
    split = hrv_frequency(t, nn, seg)
    joined = hrv_frequency(t, nn)
    assert split.lf_ms2 == pytest.approx(200.0, rel=0.15)
    assert split.vlf_ms2 < 0.05 * split.lf_ms2
    # Not split, the step shows up as slow power and leaks into LF.
    assert joined.vlf_ms2 > 100.0 * split.vlf_ms2
    assert joined.lf_ms2 > 1.3 * split.lf_ms2


def test_long_spans_average_five_minute_windows() -> None:
    t = beat_times(1500.0, seed=9)
    nn = modulated_nn(t, 30.0, 20.0, noise_ms=1.0)
    long = hrv_frequency(t, nn)
    short = hrv_frequency(t[t < 300.0], nn[t < 300.0])
    assert long.n_windows == 9  # 0, 150, ..., 1200 s starts
    assert long.lf_hf == pytest.approx(short.lf_hf, rel=0.1)
    assert long.vlf_ms2 < 0.05 * long.lf_ms2


def test_segments_from_holes_breaks_only_at_long_holes() -> None:
    t = np.array([0.0, 0.8, 1.6, 3.2, 4.0, 10.0, 10.8])
    nn = np.array([np.nan, 800.0, 800.0, np.nan, 800.0, np.nan, 800.0])
    valid = np.array([False, True, True, False, False, False, True])
    np.testing.assert_array_equal(segments_from_holes(t, nn, valid), [0, 0, 0, 0, 0, 1, 1])


def test_bad_inputs_raise_naming_the_field() -> None:
    t = beat_times(120.0)
    nn = modulated_nn(t, 10.0, 10.0)
    with pytest.raises(InputDataError, match="beat_t_s"):
        hrv_frequency(t[::-1], nn)
    with pytest.raises(InputDataError, match="nn_ms"):
        hrv_frequency(t, -nn)
    with pytest.raises(InputDataError, match="nn_ms"):
        hrv_frequency(t, nn[:-1])
    with pytest.raises(InputDataError, match="segment"):
        hrv_frequency(t, nn, np.zeros(3, dtype=np.int64))
    with pytest.raises(InputDataError, match="f_max_hz"):
        lomb_scargle_psd(t, nn, f_max_hz=0.0)


@pytest.mark.parametrize("duration_s", [150.0, 300.0, 600.0])
def test_lf_hf_fast_path_equals_hrv_frequency(duration_s: float) -> None:
    rng = np.random.default_rng(int(duration_s))
    n = int(duration_s / 0.85)
    k = np.arange(n)
    rr = 850.0 + 40.0 * np.sin(2 * np.pi * k / 4.0) + 30.0 * np.sin(2 * np.pi * k / 12.0)
    rr = rr + 10.0 * rng.standard_normal(n)
    t = np.cumsum(rr) / 1000.0
    nn = rr.copy()
    nn[[20, 21, 90]] = np.nan  # rejected beats
    seg = np.zeros(n, dtype=np.int64)
    seg[n // 2 :] = 1
    expected = hrv_frequency(t, nn, seg).lf_hf
    assert np.isfinite(expected)
    assert hrv_lf_hf(t, nn, seg) == pytest.approx(expected, rel=1e-12)
