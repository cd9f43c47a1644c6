"""Butterworth design and biquad filtering against SciPy, streaming against one-shot."""

from __future__ import annotations

import numpy as np
import pytest

from heartsong.dsp.filters import (
    _filtfilt_kernel,
    _sos_filter_kernel,
    butter_bandpass_sos,
    sos_filter_stream,
    sos_filter_zi,
    sos_filtfilt,
    sos_group_delay_s,
)
from heartsong.errors import InputDataError

signal = pytest.importorskip("scipy.signal")

CASES = [
    (fs, order, band)
    for fs in (25.0, 50.0, 100.0, 400.0)
    for order in (1, 2, 3)
    for band in ((0.5, 8.0), (0.1, 0.4 * fs), (3.0, 4.0))
]


def _response(sos: np.ndarray, fs: float) -> np.ndarray:
    _, h = signal.sosfreqz(sos, worN=1024, fs=fs)
    return np.asarray(h)


@pytest.mark.parametrize(("fs", "order", "band"), CASES)
def test_design_matches_scipy_butter(fs: float, order: int, band: tuple[float, float]) -> None:
    sos = butter_bandpass_sos(band[0], band[1], fs, order)
    ref = signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    assert sos.shape == ref.shape == (order, 6)
    np.testing.assert_allclose(_response(sos, fs), _response(ref, fs), atol=1e-10)
    _, ref_poles, _ = signal.butter(order, band, btype="bandpass", fs=fs, output="zpk")
    poles = np.concatenate([np.roots(row[3:]) for row in sos])
    np.testing.assert_allclose(np.sort_complex(poles), np.sort_complex(ref_poles), atol=1e-9)


def test_default_band_has_unit_centre_gain_and_half_power_edges() -> None:
    fs = 50.0
    sos = butter_bandpass_sos(0.5, 8.0, fs)
    _, h = signal.sosfreqz(sos, worN=[0.5, 2.0, 8.0, 0.05, 20.0], fs=fs)
    gain = np.abs(h)
    assert gain[0] == pytest.approx(2**-0.5, rel=1e-9)  # -3 dB at both edges
    assert gain[2] == pytest.approx(2**-0.5, rel=1e-9)
    assert gain[1] == pytest.approx(1.0, abs=0.01)  # near the centre (2 Hz)
    assert gain[3] < 0.01 and gain[4] < 0.2  # stop bands


@pytest.mark.parametrize("fs", [25.0, 100.0])
def test_stream_kernel_matches_sosfilt_including_state(fs: float) -> None:
    rng = np.random.default_rng(1)
    sos = butter_bandpass_sos(0.5, 8.0, fs)
    x = rng.standard_normal(3000) + 1e5
    zi = sos_filter_zi(sos) * x[0]
    y_ref, zf_ref = signal.sosfilt(sos, x, zi=zi.copy())
    y = sos_filter_stream(sos, x, zi)
    np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-8)
    np.testing.assert_allclose(zi, zf_ref, rtol=0, atol=1e-8)


def test_zi_matches_scipy_and_removes_the_dc_transient() -> None:
    sos = butter_bandpass_sos(0.5, 8.0, 50.0)
    np.testing.assert_allclose(sos_filter_zi(sos), signal.sosfilt_zi(sos), atol=1e-12)
    x = np.full(500, 123456.0)
    settled = sos_filter_stream(sos, x, sos_filter_zi(sos) * x[0])
    cold = sos_filter_stream(sos, x, np.zeros((2, 2)))
    assert np.max(np.abs(settled)) < 1e-6
    assert np.max(np.abs(cold)) > 1e3


@pytest.mark.parametrize("seed", range(5))
def test_stream_in_random_blocks_equals_one_shot(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sos = butter_bandpass_sos(0.5, 8.0, 50.0)
    x = rng.standard_normal(2000)
    whole = sos_filter_stream(sos, x, np.zeros((2, 2)))
    cuts = np.sort(rng.choice(np.arange(1, x.size), size=40, replace=False))
    zi = np.zeros((2, 2))
    parts = [sos_filter_stream(sos, part, zi) for part in np.split(x, cuts)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("padlen", [None, 0, 60])
def test_filtfilt_matches_sosfiltfilt(padlen: int | None) -> None:
    rng = np.random.default_rng(2)
    sos = butter_bandpass_sos(0.5, 8.0, 100.0)
    x = np.cumsum(rng.standard_normal(1500)) + 500.0
    ref = (
        signal.sosfiltfilt(sos, x) if padlen is None else signal.sosfiltfilt(sos, x, padlen=padlen)
    )
    np.testing.assert_allclose(sos_filtfilt(sos, x, padlen=padlen), ref, atol=1e-8)


def test_filtfilt_is_zero_phase_and_causal_filter_is_not() -> None:
    fs = 50.0
    sos = butter_bandpass_sos(0.5, 8.0, fs)
    t = np.arange(500) / fs
    pulse = np.exp(-0.5 * ((t - 5.0) / 0.1) ** 2)
    centre = int(np.argmax(pulse))
    zero_phase = sos_filtfilt(sos, pulse)
    causal = sos_filter_stream(sos, pulse, np.zeros((2, 2)))
    assert int(np.argmax(zero_phase)) == centre

    def asymmetry(y: np.ndarray) -> float:
        left = y[centre - 100 : centre]
        right = y[centre + 1 : centre + 101][::-1]
        return float(np.max(np.abs(left - right)) / np.max(np.abs(y)))

    assert asymmetry(zero_phase) < 1e-3  # the pulse keeps its symmetric shape
    assert asymmetry(causal) > 0.05  # a causal filter distorts (phase) it


@pytest.mark.parametrize("f_hz", [0.7, 1.2, 3.0, 7.0])
def test_group_delay_matches_scipy(f_hz: float) -> None:
    fs = 50.0
    sos = butter_bandpass_sos(0.5, 8.0, fs)
    _, gd = signal.group_delay(signal.sos2tf(sos), w=[f_hz], fs=fs)
    assert sos_group_delay_s(sos, f_hz, fs) == pytest.approx(gd[0] / fs, rel=1e-6)


def test_bad_design_and_state_raise_naming_the_field() -> None:
    with pytest.raises(InputDataError, match="high_hz"):
        butter_bandpass_sos(0.5, 8.0, 15.0)
    with pytest.raises(InputDataError, match="low_hz"):
        butter_bandpass_sos(0.0, 8.0, 50.0)
    with pytest.raises(InputDataError, match="order"):
        butter_bandpass_sos(0.5, 8.0, 50.0, order=0)
    sos = butter_bandpass_sos(0.5, 8.0, 50.0)
    with pytest.raises(InputDataError, match="zi"):
        sos_filter_stream(sos, np.zeros(10), np.zeros((3, 2)))
    with pytest.raises(InputDataError, match="x"):
        sos_filter_stream(sos, np.array([1.0, np.nan]), np.zeros((2, 2)))
    with pytest.raises(InputDataError, match="x"):
        sos_filtfilt(sos, np.zeros(10))


@pytest.mark.parametrize("padlen", [0, 1, 15, 40])
def test_fused_filtfilt_kernel_equals_two_plain_passes(padlen: int) -> None:
    rng = np.random.default_rng(padlen)
    x = np.cumsum(rng.normal(size=700)) + 300.0
    sos = butter_bandpass_sos(0.5, 8.0, 100.0)
    zi = sos_filter_zi(sos)
    if padlen:
        ext = np.concatenate(
            [2 * x[0] - x[padlen:0:-1], x, 2 * x[-1] - x[-2 : -padlen - 2 : -1]]
        )
    else:
        ext = x.copy()
    forward = _sos_filter_kernel(sos, ext, zi * ext[0])
    backward = _sos_filter_kernel(sos, forward[::-1].copy(), zi * forward[-1])[::-1]
    expected = backward[padlen : padlen + x.size]
    np.testing.assert_array_equal(_filtfilt_kernel(sos, x, padlen, zi), expected)
