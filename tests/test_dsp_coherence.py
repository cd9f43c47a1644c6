"""Coherence score: kernel against NumPy, sine versus noise, windows, the paced person."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from heartsong.dsp.coherence import _coherence_kernel, coherence_from_psd, hrv_coherence
from heartsong.dsp.hrv_freq import lomb_scargle_psd
from heartsong.errors import InputDataError
from heartsong.sensors.simulated import PersonParams, SimulatedPerson


def beats(duration_s: float, mean_s: float = 0.85, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.cumsum(mean_s + 0.04 * rng.standard_normal(int(duration_s / mean_s * 1.1)))
    return t[t < duration_s]


def coherence_numpy(psd: np.ndarray, df: float) -> float:
    """Peak (+-0.015 Hz around the highest point in 0.04-0.26 Hz) over total (0.0033-0.4 Hz)."""
    f = df * np.arange(1, psd.size + 1)
    band = (f >= 0.04) & (f <= 0.26)
    f_peak = f[band][np.argmax(psd[band])]
    peak = psd[np.abs(f - f_peak) <= 0.015 + 1e-12].sum()
    total = psd[(f >= 0.0033) & (f < 0.4)].sum()
    return float(peak / total)


def test_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        psd = rng.exponential(1.0, 200)
        df = float(rng.uniform(0.002, 0.004))
        ref = coherence_numpy(psd, df)
        got = _coherence_kernel(psd, df, 0.04, 0.26, 0.015, 0.0033, 0.4)
        assert got == pytest.approx(ref, rel=1e-12)
        assert coherence_from_psd(psd, df) == pytest.approx(ref, rel=1e-12)
    assert math.isnan(coherence_from_psd(np.zeros(100), 0.004))


def test_pure_slow_oscillation_is_coherent_and_noise_is_not() -> None:
    t = beats(64.0)
    rng = np.random.default_rng(2)
    sine = hrv_coherence(t, 850.0 + 50.0 * np.sin(2 * np.pi * 0.1 * t))
    noise = hrv_coherence(t, 850.0 + 50.0 * rng.standard_normal(t.size))
    assert sine > 0.8
    assert noise < 0.3


def test_more_noise_means_less_coherence() -> None:
    t = beats(64.0, seed=3)
    rng = np.random.default_rng(4)
    white = rng.standard_normal(t.size)
    scores = [
        hrv_coherence(t, 850.0 + 40.0 * np.sin(2 * np.pi * 0.1 * t) + s * white)
        for s in (0.0, 10.0, 25.0, 60.0)
    ]
    assert all(a > b for a, b in itertools.pairwise(scores))


def test_long_spans_average_64_s_scores() -> None:
    t = beats(600.0, seed=5)
    nn = 850.0 + 50.0 * np.sin(2 * np.pi * 0.1 * t)
    long = hrv_coherence(t, nn)
    one = hrv_coherence(t[t < 64.0], nn[t < 64.0])
    assert long == pytest.approx(one, abs=0.03)
    assert long > 0.8


def test_too_little_signal_gives_nan() -> None:
    t = beats(40.0)
    assert math.isnan(hrv_coherence(t, 850.0 + 50.0 * np.sin(2 * np.pi * 0.1 * t)))
    with pytest.raises(InputDataError, match="nn_ms"):
        hrv_coherence(t, np.ones(3))


def test_paced_breathing_raises_the_simulated_persons_coherence() -> None:
    person = SimulatedPerson(PersonParams(stress=0.2), seed=11)
    spontaneous = person.advance(300.0)
    person.set_pacer(6.0)
    paced = person.advance(600.0)

    def last_minute(b: np.ndarray) -> float:
        t = b[1:]
        nn = np.diff(b) * 1000.0
        keep = t > t[-1] - 64.0
        return hrv_coherence(t[keep], nn[keep])

    before, after = last_minute(spontaneous), last_minute(paced)
    assert after > 0.75
    assert after > before + 0.15


def coherence_windows_loop(t: np.ndarray, nn: np.ndarray) -> float:
    """Reference for long spans: a Python loop over the 64-s windows every 16 s, each
    scored from the public Lomb-Scargle density, the finite scores averaged."""
    scores = []
    for end in np.arange(t[-1], t[0] + 64.0 - 16.0, -16.0)[::-1]:
        w = (t >= end - 64.0) & (t <= end)
        if np.nansum(nn[w]) / 1000.0 < 48.0:
            continue
        spec = lomb_scargle_psd(t[w], nn[w], f_max_hz=0.4, oversample=4.0)
        scores.append(coherence_from_psd(spec.psd, spec.df_hz))
    return float(np.mean(scores)) if scores else math.nan


@pytest.mark.parametrize("seed", [1, 2])
def test_the_window_loop_kernel_matches_a_python_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = beats(400.0, seed=seed)
    nn = 850.0 + 50.0 * np.sin(2 * np.pi * 0.1 * t) + 20.0 * rng.standard_normal(t.size)
    nn[rng.choice(t.size, 20, replace=False)] = np.nan  # rejected beats
    nn[(t > 150.0) & (t < 200.0)] = np.nan  # a lost stretch: windows without a score
    expected = coherence_windows_loop(t, nn)
    assert 0.0 < expected < 1.0
    assert hrv_coherence(t, nn) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(InputDataError, match="beat_t_s"):
        hrv_coherence(t[::-1].copy(), nn)
