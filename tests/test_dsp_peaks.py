"""Elgendi et al. (2013) PPG peak detection: accuracy, streaming == batch, NumPy reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heartsong.dsp.filters import sos_filtfilt
from heartsong.dsp.peaks import (
    UPSLOPE_SEARCH_IBI,
    ElgendiPeakStream,
    ppg_findpeaks_elgendi,
    ppg_max_upslope,
)
from heartsong.dsp.pipeline import ppg_bandpass_sos
from heartsong.errors import InputDataError

REFERENCE_CSV = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "ppg_reference"
    / "neurokit_resting_5min"
    / "bio_resting_5min_100hz.csv"
)


def synthetic_ppg(
    fs: float,
    duration_s: float = 60.0,
    hr_bpm: float = 70.0,
    seed: int = 0,
    noise: float = 0.03,
    dicrotic: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian systolic pulses at known (jittered) beat times, noise and baseline wander."""
    rng = np.random.default_rng(seed)
    n_beats = int(duration_s * hr_bpm / 60.0) + 2
    rr_s = 60.0 / hr_bpm * (1.0 + 0.05 * rng.standard_normal(n_beats))
    beats = 0.3 + np.cumsum(rr_s)
    beats = beats[beats < duration_s - 0.3]
    t = np.arange(int(duration_s * fs)) / fs
    x = np.zeros_like(t)
    for b in beats:
        x += np.exp(-0.5 * ((t - b) / 0.07) ** 2)
        if dicrotic:
            x += dicrotic * np.exp(-0.5 * ((t - b - 0.25) / 0.04) ** 2)
    x += noise * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 0.25 * t) + 1000.0
    return x, beats


def _filtered(x: np.ndarray, fs: float) -> np.ndarray:
    return sos_filtfilt(ppg_bandpass_sos(fs), x)


def _interior(times: np.ndarray, duration_s: float) -> np.ndarray:
    return times[(times > 1.0) & (times < duration_s - 1.0)]


def _timing_errors(found_s: np.ndarray, true_s: np.ndarray) -> np.ndarray:
    """Distance from each true beat to the nearest detected one, in seconds."""
    idx = np.clip(np.searchsorted(found_s, true_s), 1, found_s.size - 1)
    err: np.ndarray = np.minimum(np.abs(found_s[idx] - true_s), np.abs(found_s[idx - 1] - true_s))
    return err


def elgendi_reference(
    s: np.ndarray,
    fs: float,
    beta: float = 0.02,
    refractory_s: float = 0.3,
    mean_window_s: float = 10.0,
) -> np.ndarray:
    """Plain NumPy version of the streaming Elgendi detector (same rules, no state)."""
    w1, w2 = round(0.111 * fs), round(0.667 * fs)
    refractory, n_mean = round(refractory_s * fs), round(mean_window_s * fs)
    n = s.size
    y = np.where(s > 0.0, s, 0.0) ** 2
    csum = np.concatenate([[0.0], np.cumsum(y)])

    def centred_mean(w: int) -> np.ndarray:
        m = np.arange(n)
        hi = np.minimum(m + w // 2, n - 1) + 1
        lo = np.maximum(m - (w - 1) // 2, 0)
        mean: np.ndarray = (csum[hi] - csum[lo]) / w
        return mean

    running = np.empty(n)  # exact mean, then exponential with span n_mean
    acc = 0.0
    for i in range(n):
        acc += (y[i] - acc) / min(i + 1, n_mean)
        running[i] = acc
    decided = np.arange((w2 - 1) // 2, n - w2 // 2)
    thr = centred_mean(w2)[decided] + beta * running[decided + w2 // 2]
    inside = (centred_mean(w1)[decided] > thr).astype(int)
    change = np.diff(inside, prepend=0)
    starts = decided[change == 1]
    ends = decided[change == -1]  # first sample after each block
    peaks: list[float] = []
    last = -(10**9)
    for start in starts:
        later = ends[ends > start]
        if later.size == 0 or later[0] - start < w1:
            continue
        best = start + int(np.argmax(s[start : later[0]]))
        if best - last < refractory:
            continue
        left, centre, right = s[best - 1], s[best], s[best + 1]
        denom = left - 2 * centre + right
        offset = 0.0 if denom >= 0 else float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))
        peaks.append(best + offset)
        last = best
    return np.array(peaks)


@pytest.mark.parametrize("fs", [25.0, 50.0, 100.0])
def test_all_beats_found_with_small_timing_error(fs: float) -> None:
    duration = 60.0
    x, beats = synthetic_ppg(fs, duration, seed=int(fs))
    found = ppg_findpeaks_elgendi(_filtered(x, fs), fs) / fs
    true_in = _interior(beats, duration)
    assert _interior(found, duration).size == true_in.size  # no extra, none missed
    err = _timing_errors(found, true_in)
    assert np.max(err) < 0.03
    assert np.median(err) < 0.005


def test_parabolic_interpolation_beats_sample_rounding() -> None:
    fs, duration = 25.0, 60.0
    x, beats = synthetic_ppg(fs, duration, seed=3, noise=0.01)
    pos = ppg_findpeaks_elgendi(_filtered(x, fs), fs)
    true_in = _interior(beats, duration)
    interpolated = np.median(_timing_errors(pos / fs, true_in))
    rounded = np.median(_timing_errors(np.round(pos) / fs, true_in))
    assert interpolated < 0.5 * rounded
    assert rounded > 0.004  # rounding alone is off by ~ a quarter sample (10 ms) here


@pytest.mark.parametrize("fs", [25.0, 50.0, 100.0])
def test_kernel_matches_numpy_reference(fs: float) -> None:
    x, _ = synthetic_ppg(fs, 40.0, seed=7, dicrotic=0.3)
    s = _filtered(x, fs)
    np.testing.assert_allclose(
        ppg_findpeaks_elgendi(s, fs), elgendi_reference(s, fs), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("fs", [25.0, 50.0, 100.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_equals_batch_for_random_blocks(fs: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, _ = synthetic_ppg(fs, 30.0, hr_bpm=80.0, seed=seed)
    s = _filtered(x, fs)
    batch = ppg_findpeaks_elgendi(s, fs)
    stream = ElgendiPeakStream(fs)
    found: list[np.ndarray] = []
    start = 0
    while start < s.size:
        size = int(rng.choice([1, 2, int(rng.integers(3, 90))]))
        found.append(stream.process(s[start : start + size]))
        start += size
    assert stream.samples_seen == s.size
    np.testing.assert_array_equal(np.concatenate(found), batch)
    assert batch.size > 30


def test_refractory_period_drops_a_dicrotic_wave() -> None:
    fs, duration = 50.0, 60.0
    x, beats = synthetic_ppg(fs, duration, seed=4, noise=0.01, dicrotic=0.9)
    s = _filtered(x, fs)
    with_refractory = ppg_findpeaks_elgendi(s, fs)
    without = ppg_findpeaks_elgendi(s, fs, refractory_s=0.05)
    true_in = _interior(beats, duration)
    assert _interior(with_refractory / fs, duration).size == true_in.size
    assert _interior(without / fs, duration).size >= true_in.size + 5


def test_faster_heart_gives_more_peaks_and_shorter_intervals() -> None:
    fs = 50.0
    slow = ppg_findpeaks_elgendi(_filtered(synthetic_ppg(fs, hr_bpm=55.0)[0], fs), fs)
    fast = ppg_findpeaks_elgendi(_filtered(synthetic_ppg(fs, hr_bpm=95.0)[0], fs), fs)
    assert fast.size > slow.size
    assert np.mean(np.diff(fast)) < np.mean(np.diff(slow))
    assert np.mean(np.diff(fast)) / fs == pytest.approx(60.0 / 95.0, rel=0.03)


def test_reset_restarts_sample_count() -> None:
    fs = 50.0
    s = _filtered(synthetic_ppg(fs, 20.0)[0], fs)
    stream = ElgendiPeakStream(fs)
    first = stream.process(s)
    stream.reset()
    assert stream.samples_seen == 0
    np.testing.assert_array_equal(stream.process(s), first)


def test_bad_parameters_and_samples_raise_naming_the_field() -> None:
    with pytest.raises(InputDataError, match="peak_window_s"):
        ElgendiPeakStream(2.0)  # W1 would be 0 samples
    with pytest.raises(InputDataError, match="beat_window_s"):
        ElgendiPeakStream(50.0, beat_window_s=0.03)  # W2 would be 2 samples
    with pytest.raises(InputDataError, match="fs_hz"):
        ElgendiPeakStream(0.0)
    with pytest.raises(InputDataError, match="filtered"):
        ElgendiPeakStream(50.0).process(np.array([0.0, np.inf]))


@pytest.mark.skipif(not REFERENCE_CSV.exists(), reason="shared reference recording absent")
def test_reference_recording_beat_count_matches_ecg() -> None:
    nk = pytest.importorskip("neurokit2")
    data = np.genfromtxt(REFERENCE_CSV, delimiter=",", names=True)
    fs = 100.0
    ppg_beats = ppg_findpeaks_elgendi(_filtered(data["PPG"], fs), fs) / fs
    _, info = nk.ecg_peaks(data["ECG"], sampling_rate=int(fs))
    r_peaks = np.asarray(info["ECG_R_Peaks"]) / fs
    assert abs(ppg_beats.size - r_peaks.size) <= 0.01 * r_peaks.size
    # Each pulse arrives a roughly constant transit time after its R peak, so pairing every
    # pulse with the R peak before it, the two interval series agree beat by beat.
    k = np.searchsorted(r_peaks, ppg_beats) - 1
    paired = np.diff(k) == 1
    assert np.mean(paired) > 0.98
    ibi_diff_s = np.diff(ppg_beats)[paired] - np.diff(r_peaks[k])[paired]
    assert np.median(np.abs(ibi_diff_s)) < 0.010


def skewed_pulses(fs: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pulses rising with a 0.05-s and falling with a 0.15-s Gaussian flank; (x, peaks s)."""
    rng = np.random.default_rng(seed)
    times = 1.0 + 0.85 * np.arange(60) + 0.03 * rng.standard_normal(60)
    t = np.arange(int((times[-1] + 1.5) * fs)) / fs
    x = np.zeros_like(t)
    for b in times:
        d = t - b
        x += np.where(d < 0, np.exp(-0.5 * (d / 0.05) ** 2), np.exp(-0.5 * (d / 0.15) ** 2))
    return x + 0.002 * rng.standard_normal(t.size), times


def max_upslope_reference(x: np.ndarray, peaks: np.ndarray, back: int) -> np.ndarray:
    """Plain NumPy: argmax of the centred difference before each peak, parabola-refined."""
    d = np.full(x.size, -np.inf)
    d[1:-1] = x[2:] - x[:-2]
    out = np.empty(peaks.size)
    prev = -1
    for b, pk in enumerate(peaks):
        p = int(np.floor(pk + 0.5))
        lo, hi = max(1, p - back, prev + 1), min(p, x.size - 2)
        prev = p
        if hi - lo < 1:
            out[b] = pk
            continue
        k = lo + int(np.argmax(d[lo : hi + 1]))
        off = 0.0
        if 2 <= k <= x.size - 3:
            left, centre, right = d[k - 1], d[k], d[k + 1]
            den = left - 2 * centre + right
            if den < 0:
                off = float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))
        out[b] = k + off
    return out


@pytest.mark.parametrize("fs", [25.0, 100.0])
def test_max_upslope_matches_numpy_and_precedes_the_peak(fs: float) -> None:
    x, true_t = skewed_pulses(fs, seed=int(fs))
    peaks = ppg_findpeaks_elgendi(x, fs)
    assert peaks.size >= true_t.size - 1  # the last pulse may lack the look-ahead
    up = ppg_max_upslope(x, fs, peaks)
    back = max(2, round(UPSLOPE_SEARCH_IBI * float(np.median(np.diff(peaks)))))
    np.testing.assert_allclose(up, max_upslope_reference(x, peaks, back), atol=1e-12)
    assert np.all(up < peaks) and np.all(np.diff(up) > 0)
    # The steepest point of these pulses is 0.05 s (one rise sigma) before the peak.
    lead_s = (peaks - up) / fs
    assert np.median(lead_s) == pytest.approx(0.05, abs=0.5 / fs + 0.005)


def test_max_upslope_bad_input_names_the_field() -> None:
    x, _ = skewed_pulses(50.0)
    with pytest.raises(InputDataError, match="peaks_samples"):
        ppg_max_upslope(x, 50.0, [30.0, 10.0])
    with pytest.raises(InputDataError, match="filtered"):
        ppg_max_upslope(np.array([np.nan, 1.0, 2.0]), 50.0, [1.0])
    assert ppg_max_upslope(x, 50.0, [40.0]).tolist() == [40.0]
