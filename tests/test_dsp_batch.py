"""Batch analysis: synthetic PPG with known beats, gaps, polarity, uneven times, RR input."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from heartsong.dsp.batch import (
    HRV_KEYS,
    analyze_recording,
    analyze_rr,
    ppg_is_upright,
    resample_uniform,
)
from heartsong.errors import InputDataError


def synthetic_ppg(
    fs: float, duration_s: float = 180.0, seed: int = 0, hr_bpm: float = 70.0
) -> tuple[np.ndarray, np.ndarray]:
    """Upright pulses (fast rise, slow fall) at beat times with RSA; returns (x, beats s)."""
    rng = np.random.default_rng(seed)
    beats = [0.5]
    mean_rr = 60.0 / hr_bpm
    while beats[-1] < duration_s:
        rsa = 0.05 * math.sin(2 * math.pi * 0.25 * beats[-1])
        beats.append(beats[-1] + mean_rr + rsa + 0.01 * rng.standard_normal())
    times = np.array(beats[:-1])
    t = np.arange(int(duration_s * fs)) / fs
    x = np.zeros_like(t)
    for b in times:
        d = t - b
        near = np.abs(d) < 1.0
        x[near] += np.where(
            d[near] < 0, np.exp(-0.5 * (d[near] / 0.06) ** 2), np.exp(-0.5 * (d[near] / 0.2) ** 2)
        )
    x += 0.02 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * 0.1 * t) + 500.0
    return x, times


def truth_stats(beats: np.ndarray) -> tuple[float, float]:
    rr = np.diff(beats) * 1000.0
    return 60000.0 / float(np.mean(rr)), float(np.sqrt(np.mean(np.diff(rr) ** 2)))


@pytest.mark.parametrize("fs", [25.0, 64.0, 100.0])
def test_hr_and_rmssd_match_the_truth(fs: float) -> None:
    x, beats = synthetic_ppg(fs, seed=int(fs))
    result = analyze_recording(x, fs)
    hr, rmssd = truth_stats(beats)
    assert result.hrv["mean_hr_bpm"] == pytest.approx(hr, abs=0.3)
    assert result.hrv["rmssd_ms"] == pytest.approx(rmssd, abs=3.0)
    assert result.artifacts["artifact_pct"] < 2.0
    assert abs(result.beats_s.size - beats.size) <= 2
    # Constant delay aside, every beat is found near its true time.
    idx = np.clip(np.searchsorted(result.beats_s, beats[2:-2]), 1, result.beats_s.size - 1)
    near = np.minimum(
        np.abs(result.beats_s[idx] - beats[2:-2]), np.abs(result.beats_s[idx - 1] - beats[2:-2])
    )
    assert np.median(near) < 0.08


def test_windows_cover_the_recording_and_carry_quality() -> None:
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=150.0)
    result = analyze_recording(x, fs, window_s=60.0, step_s=30.0)
    assert [w["t_start_s"] for w in result.windows] == [0.0, 30.0, 60.0, 90.0]
    for w in result.windows:
        assert w["t_end_s"] == w["t_start_s"] + 60.0
        assert 0.9 < w["signal_quality"] <= 1.0
        assert 60.0 < w["hr_bpm"] < 80.0
    # LF/HF looks back up to 5 min from the window's end: the first window is too short.
    assert result.windows[0]["lf_hf"] is None and "lf_hf" in result.windows[0]["reasons"]
    assert result.windows[-1]["lf_hf"] is not None


def test_inverted_signal_gives_the_same_beats() -> None:
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=60.0)
    up = analyze_recording(x, fs)
    auto = analyze_recording(-x, fs)
    forced = analyze_recording(-x, fs, invert=True)
    assert auto.artifacts["polarity"] == "inverted"
    np.testing.assert_allclose(auto.beats_s, up.beats_s, atol=1e-9)
    np.testing.assert_allclose(forced.beats_s, up.beats_s, atol=1e-9)
    t = np.arange(500) / 50.0
    sawtooth = (t * 1.2) % 1.0  # slow rise, fast fall: an inverted pulse shape
    assert not ppg_is_upright(sawtooth, 50.0) and ppg_is_upright(-sawtooth, 50.0)


def test_polarity_is_voted_by_stretches_so_a_glitch_cannot_flip_it() -> None:
    """One sample 100x the pulse decided a whole record's polarity when a single skewness
    of the first differences was taken over it (this one flipped the old rule)."""
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=120.0)
    spiked = x.copy()
    spiked[3000] += 100.0 * float(np.ptp(x))
    assert analyze_recording(spiked, fs).artifacts["polarity"] == "upright"
    assert analyze_recording(-spiked, fs).artifacts["polarity"] == "inverted"


def test_nan_gap_splits_the_series_and_no_interval_spans_it() -> None:
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=120.0)
    x[int(50 * fs) : int(60 * fs)] = np.nan
    result = analyze_recording(x, fs)
    assert result.artifacts["n_gaps"] >= 1
    inside = (result.beats_s > 50.0) & (result.beats_s < 60.0)
    assert not inside.any()
    after = int(np.searchsorted(result.beats_s, 60.0))
    assert math.isnan(result.ibi_ms[after])
    assert np.nanmax(result.ibi_ms) < 1200.0


def test_too_short_gives_null_metrics_with_reasons() -> None:
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=12.0)
    result = analyze_recording(x, fs, window_s=60.0)
    assert result.windows == []
    assert result.hrv["rmssd_ms"] is None
    assert "too few" in result.reasons["rmssd_ms"]
    out = result.as_dict()
    json.dumps(out, allow_nan=False)  # strictly valid JSON: NaN became null
    assert list(out) == ["fs_hz", "duration_s", "beats_s", "ibi_ms", "artifacts", "hrv", "windows"]
    assert set(HRV_KEYS) <= set(out["hrv"])  # type: ignore[arg-type]


def test_noise_only_is_refused_or_null_never_a_number() -> None:
    fs = 50.0
    noise = np.random.default_rng(5).normal(size=int(120 * fs))
    result = analyze_recording(noise, fs)
    assert result.artifacts["n_dropped_beats"] > 0 or result.artifacts["artifact_pct"] > 10
    for w in result.windows:
        assert w["signal_quality"] is None or w["signal_quality"] < 0.8


def test_uneven_timestamps_are_resampled() -> None:
    fs = 30.0
    x, beats = synthetic_ppg(100.0, duration_s=90.0, seed=3)
    t_fine = np.arange(x.size) / 100.0
    rng = np.random.default_rng(4)
    t_cam = np.cumsum(np.clip(1 / fs + 0.008 * rng.standard_normal(int(88 * fs)), 0.005, None))
    x_cam = np.interp(t_cam, t_fine, x)
    result = analyze_recording(x_cam, None, t_s=t_cam)
    assert result.fs_hz == 50.0  # the grid rate: at least 50 Hz
    hr, _ = truth_stats(beats[beats < 88.0])
    assert result.hrv["mean_hr_bpm"] == pytest.approx(hr, abs=0.5)


def test_resample_uniform_beats_linear_interpolation_and_marks_gaps() -> None:
    t = np.cumsum(np.random.default_rng(6).uniform(0.02, 0.045, size=300))
    y = np.sin(2 * np.pi * 1.5 * t)  # a 90-bpm pulse sampled like a phone camera
    out, fs, t0 = resample_uniform(t, y, 100.0)
    grid = t0 + np.arange(out.size) / fs
    truth = np.sin(2 * np.pi * 1.5 * grid)
    linear = np.interp(grid, t, y)
    inner = (grid > t[2]) & (grid < t[-3])
    cubic_rms = np.sqrt(np.mean((out[inner] - truth[inner]) ** 2))
    linear_rms = np.sqrt(np.mean((linear[inner] - truth[inner]) ** 2))
    assert cubic_rms < 0.5 * linear_rms
    assert np.max(np.abs(out - truth)) < 0.02
    t_gap = t.copy()
    t_gap[150:] += 1.0
    out, fs, t0 = resample_uniform(t_gap, y, 100.0)
    grid = t0 + np.arange(out.size) / fs
    assert np.isnan(out[(grid > t_gap[149]) & (grid < t_gap[150])]).all()
    assert np.isfinite(out[grid < t_gap[149]]).all()
    with pytest.raises(InputDataError, match="time_s"):
        resample_uniform(np.array([0.0, 0.1, 0.1, 0.2]), np.zeros(4))


def test_analyze_rr_corrects_an_extra_beat() -> None:
    rng = np.random.default_rng(8)
    rr = 900.0 + 30.0 * np.sin(np.arange(200) / 3.0) + 5.0 * rng.standard_normal(200)
    spoiled = np.concatenate([rr[:100], [300.0, rr[100] - 300.0], rr[101:]])
    result = analyze_rr(spoiled, window_s=60.0, step_s=30.0)
    assert result.fs_hz is None
    assert result.artifacts["extra"] == 1
    clean = analyze_rr(rr)
    assert result.hrv["rmssd_ms"] == pytest.approx(clean.hrv["rmssd_ms"], rel=0.05)
    assert result.hrv["mean_hr_bpm"] == pytest.approx(60000.0 / rr.mean(), abs=0.2)
    assert result.windows and all(w["signal_quality"] is None for w in result.windows)


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InputDataError, match="fs_hz"):
        analyze_recording(np.zeros(1000), 10.0)
    with pytest.raises(InputDataError, match="window_s"):
        analyze_recording(np.zeros(1000), 50.0, window_s=0.0)
    with pytest.raises(InputDataError, match="ppg"):
        analyze_recording(np.full(1000, np.nan), 50.0)
    with pytest.raises(InputDataError, match="rr_ms"):
        analyze_rr(np.array([800.0, 0.0]))


def test_local_median_kernel_matches_numpy() -> None:
    from heartsong.dsp.batch import _local_median_kernel

    rng = np.random.default_rng(9)
    values = rng.normal(size=120)
    values[rng.choice(120, size=15, replace=False)] = np.nan
    segment = (np.arange(120) >= 70).astype(np.int64)
    got = _local_median_kernel(values, segment, 4, 5)
    for i in range(120):
        lo, hi = max(0, i - 4), min(120, i + 5)
        near = values[lo:hi][segment[lo:hi] == segment[i]]
        near = near[np.isfinite(near)]
        if near.size >= 5:
            assert got[i] == pytest.approx(float(np.median(near)), abs=1e-12)
        else:
            assert np.isnan(got[i])


def test_local_median_kernel_handles_ties_and_runs() -> None:
    from heartsong.dsp.batch import _local_median_kernel

    rng = np.random.default_rng(10)
    values = np.round(rng.normal(size=300) * 2.0)  # many ties
    values[rng.choice(300, size=40, replace=False)] = np.nan
    segment = np.repeat(np.arange(6, dtype=np.int64), 50)
    got = _local_median_kernel(values, segment, 15, 5)
    for i in range(300):
        lo, hi = max(0, i - 15), min(300, i + 16)
        near = values[lo:hi][segment[lo:hi] == segment[i]]
        near = near[np.isfinite(near)]
        if near.size >= 5:
            assert got[i] == float(np.median(near))
        else:
            assert np.isnan(got[i])


def test_upright_and_gain_control_kernels_match_numpy() -> None:
    from scipy.stats import skew

    from heartsong.dsp.batch import _gain_control_kernel, _segment_skewness

    rng = np.random.default_rng(11)
    for seed in range(6):
        x = np.cumsum(rng.gamma(1.0 + seed, size=430) - (1.0 + seed))
        x[rng.integers(0, 430)] = np.nan
        got = _segment_skewness(x, 100)
        d = np.diff(x)
        edges = [0, 100, 200, 300, 429]  # the 29-difference tail joins the last stretch
        want = [skew(d[a:b][np.isfinite(d[a:b])]) for a, b in itertools.pairwise(edges)]
        np.testing.assert_allclose(got, want, rtol=1e-9)
    assert np.all(np.isnan(_segment_skewness(np.ones(50), 10)))  # nothing varies
    s = rng.normal(size=500) * np.linspace(0.1, 10.0, 500)
    half = 20
    idx = np.arange(500)
    csum = np.concatenate([[0.0], np.cumsum(s * s)])
    lo, hi = np.clip(idx - half, 0, 500), np.clip(idx + half + 1, 0, 500)
    rms = np.sqrt((csum[hi] - csum[lo]) / (hi - lo))
    expected = s / np.maximum(rms, 1e-12 + 1e-6 * rms.max())
    got = _gain_control_kernel(s, half, 7)
    np.testing.assert_allclose(got[:500], expected, rtol=1e-9)
    assert got.size == 507 and not got[500:].any()


def test_window_qualities_equal_window_quality_per_window() -> None:
    from heartsong.dsp.artifacts import correct_beats_lipponen2019
    from heartsong.dsp.batch import _window_qualities
    from heartsong.dsp.quality import BEAT_QUALITY_MIN, window_quality

    rng = np.random.default_rng(12)
    rr = 800.0 + 30.0 * rng.standard_normal(400)
    rr[[50, 51, 200]] = [400.0, 1200.0, 1600.0]
    correction = correct_beats_lipponen2019(np.concatenate([[0.0], np.cumsum(rr) / 1000.0]))
    t = correction.beat_t_s
    quality = rng.uniform(0.5, 1.0, size=t.size)
    quality[rng.choice(t.size, size=20, replace=False)] = np.nan
    starts = np.arange(0.0, 300.0, 10.0)
    got = _window_qualities(quality, correction, starts, starts + 60.0)
    for w, start in enumerate(starts):
        sel = (t >= start) & (t <= start + 60.0)
        flags = correction.flags[sel]
        n_int = np.count_nonzero(flags >= 0)
        share = np.count_nonzero(flags > 0) / n_int if n_int else 0.0
        expected = window_quality(quality[sel], artifact_share=share, threshold=BEAT_QUALITY_MIN)
        assert got[w] == pytest.approx(expected, abs=1e-15)


def test_unusable_spans_are_where_no_interval_is_reported() -> None:
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=150.0, seed=13)
    x[int(70 * fs) : int(82 * fs)] = np.nan
    result = analyze_recording(x, fs)
    spans = result.artifacts["unusable_s"]
    assert isinstance(spans, list)
    gap = [s for s in spans if s[1] - s[0] > 5.0]
    assert len(gap) == 1 and gap[0][0] <= 70.0 and gap[0][1] >= 82.0
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(150.0)
    t, nn = result.beats_s, result.ibi_ms
    measured = float(np.sum((t[1:] - t[:-1])[np.isfinite(nn[1:])]))
    assert measured + sum(b - a for a, b in spans) == pytest.approx(150.0, abs=0.01)


def test_lf_hf_reuses_a_spectrum_for_at_most_lf_hf_step() -> None:
    from heartsong.dsp.batch import FREQ_WINDOW_S, LF_HF_STEP_S
    from heartsong.dsp.window import window_metrics

    fs = 25.0
    x, _ = synthetic_ppg(fs, duration_s=420.0, seed=14)
    result = analyze_recording(x, fs, window_s=60.0, step_s=10.0)
    t, nn = result.beats_s, result.ibi_ms
    valid = np.zeros(t.size, dtype=bool)
    valid[1:] = np.isfinite(nn[1:]) & np.isfinite(nn[:-1]) & (result.beat_flags[1:] == 0)
    valid[1:] &= result.beat_flags[:-1] == 0
    anchors = 0
    for w in result.windows:
        end = float(w["t_end_s"])  # type: ignore[arg-type]
        lf_end = float(w["lf_hf_t_end_s"])  # type: ignore[arg-type]
        assert end - LF_HF_STEP_S < lf_end <= end
        assert w["lf_hf_t_start_s"] == pytest.approx(max(0.0, lf_end - FREQ_WINDOW_S))
        if lf_end == end and w["lf_hf"] is not None:
            anchors += 1
            ref = window_metrics(
                t, nn, valid, t_start_s=w["t_start_s"], t_end_s=end,  # type: ignore[arg-type]
                quality=None, freq=True, freq_t_start_s=max(0.0, end - FREQ_WINDOW_S),
            )
            assert w["lf_hf"] == pytest.approx(ref.lf_hf, abs=6e-5)  # JSON: 4 digits
    assert anchors >= 5
    assert result.windows[0]["lf_hf"] is None and "lf_hf" in result.windows[0]["reasons"]


def test_rr_with_beat_times_keeps_the_timeline_and_never_joins_across_a_gap() -> None:
    """Back to back, the intervals around a 20-s loss were joined and every later window
    shifted by 20 s (found with an exported session); with beat times they are not."""
    rng = np.random.default_rng(5)
    rr = 850.0 + 40.0 * np.sin(np.arange(400) * 0.7) + rng.normal(0.0, 8.0, 400)
    end = 3000.0 + np.cumsum(rr) / 1000.0
    end[200:] += 20.0  # beats lost for 20 s before interval 200
    gap = np.zeros(400, dtype=bool)
    gap[200] = True
    timed = analyze_rr(rr, beat_t_s=end, gap_before=gap)
    joined = analyze_rr(rr)
    assert timed.duration_s == pytest.approx(joined.duration_s + 20.0, abs=0.01)
    assert timed.artifacts["n_gaps"] == 1 and joined.artifacts["n_gaps"] == 0
    beats = np.asarray(timed.beats_s)
    assert beats[0] == 0.0 and beats.size == rr.size + 2  # each segment's first beat
    across = (beats[1:] > end[199] - 3000.0 + 1.0) & (beats[:-1] < end[199] - 3000.0 + 1.0)
    ibi = np.asarray(timed.ibi_ms, dtype=float)
    assert not np.any(np.isfinite(ibi[1:][across]))  # no interval spans the gap
    # The times alone make the gap; a flag makes one from any time between the beats
    # (here 30 ms, under the tolerance); with none, there is no room for a lost beat.
    assert analyze_rr(rr, beat_t_s=end).artifacts["n_gaps"] == 1
    short = end.copy()
    short[200:] -= 20.0 - 0.03
    assert analyze_rr(rr, beat_t_s=short).artifacts["n_gaps"] == 0
    assert analyze_rr(rr, beat_t_s=short, gap_before=gap).artifacts["n_gaps"] == 1
    still = end.copy()
    still[200:] -= 20.0
    assert analyze_rr(rr, beat_t_s=still, gap_before=gap).artifacts["n_gaps"] == 0
    with pytest.raises(InputDataError, match="beat_t_s"):
        analyze_rr(rr, beat_t_s=end[::-1])


def test_a_record_mostly_lost_gives_no_whole_record_spectrum_either() -> None:
    """With clean beats over too small a share of the record for its heart rate, the
    record's LF/HF, breathing rate and coherence are null for the same reason (they were
    reported from the few clean minutes while HR and RMSSD were null)."""
    fs = 50.0
    x, _ = synthetic_ppg(fs, duration_s=900.0)
    x[round(240 * fs):] = np.nan  # 4 clean minutes of 15
    out = analyze_recording(x, fs).as_dict()
    hrv = out["hrv"]
    assert isinstance(hrv, dict)
    reasons = hrv["reasons"]
    for key in ("mean_hr_bpm", "lf_hf", "resp_rate_bpm", "coherence"):
        assert hrv[key] is None and "cover too little" in reasons[key], key
    windows = out["windows"]
    assert isinstance(windows, list) and windows[5]["rmssd_ms"] is not None  # the clean part
