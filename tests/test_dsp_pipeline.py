"""The streaming DSP pipeline: beats from PPG and RR blocks, gaps, windows, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from heartsong.dsp.batch import analyze_recording
from heartsong.dsp.hrv_freq import hrv_frequency
from heartsong.dsp.pipeline import StreamingPipeline, analyze_ppg, warm_up
from heartsong.errors import InputDataError
from heartsong.events import Metrics, PpgBlock, RrBlock
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson, SimulatedStrap

T0_S = 1000.0  # monotonic clocks do not start at zero


def raw_ppg(
    fs: float, duration_s: float, hr_bpm: float = 70.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Raw-count-like PPG (falls at systole) with pulses at known times (s from sample 0)."""
    rng = np.random.default_rng(seed)
    rr_s = 60.0 / hr_bpm * (1.0 + 0.05 * rng.standard_normal(int(duration_s * hr_bpm / 60) + 2))
    beats = 0.3 + np.cumsum(rr_s)
    beats = beats[beats < duration_s - 0.3]
    t = np.arange(int(duration_s * fs)) / fs
    pulse = np.zeros_like(t)
    for b in beats:
        pulse += np.exp(-0.5 * ((t - b) / 0.07) ** 2)
    pulse += 0.03 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 0.25 * t)
    return 60000.0 - 400.0 * pulse, beats


def ppg_blocks(
    x: np.ndarray, fs: float, t0_s: float, seed: int = 0, gap_samples: int = 0
) -> list[PpgBlock]:
    """Split a signal into random-sized blocks; the first carries ``gap_samples``."""
    rng = np.random.default_rng(seed)
    blocks, start = [], 0
    while start < x.size:
        n = int(rng.integers(1, 64))
        blocks.append(
            PpgBlock(
                t0_s=t0_s + start / fs,
                fs_hz=fs,
                ir=x[start : start + n],
                red=np.zeros(0),
                gap_samples=gap_samples if start == 0 else 0,
            )
        )
        start += n
    return blocks


def rr_blocks(
    rr_ms: np.ndarray, t_start_s: float, per_block: int = 2, gap_before: bool = False
) -> list[RrBlock]:
    """Wearable notifications carrying ``per_block`` intervals each."""
    times = t_start_s + np.cumsum(rr_ms) / 1000.0
    blocks = []
    for i in range(0, rr_ms.size, per_block):
        blocks.append(
            RrBlock(
                t_s=float(times[min(i + per_block, rr_ms.size) - 1]) + 0.05,
                rr_ms=rr_ms[i : i + per_block],
                beat_times_s=times[i : i + per_block],
                gap_before=gap_before and i == 0,
            )
        )
    return blocks


def feed_all(pipe: StreamingPipeline, blocks: list[PpgBlock] | list[RrBlock]) -> np.ndarray:
    out = [pipe.feed_ppg(b) if isinstance(b, PpgBlock) else pipe.feed_rr(b) for b in blocks]
    return np.concatenate(out) if out else np.zeros(0)


def varying_rr(n: int, seed: int = 0, mean_ms: float = 850.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    rr: np.ndarray = mean_ms + 50.0 * np.sin(2 * np.pi * k / 5.0) + 15.0 * rng.standard_normal(n)
    return rr


def test_too_few_beats_gives_none_with_a_reason() -> None:
    pipe = StreamingPipeline()
    feed_all(pipe, rr_blocks(varying_rr(8), T0_S))
    m = pipe.metrics(T0_S + 10.0, 1.7e9, "ble")
    for name in ("hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct"):
        assert getattr(m, name) is None
        assert m.reasons[name] == "too few clean beats: 8 < 20"
    assert m.n_beats == 8 and m.signal_quality == 1.0 and m.source == "ble"
    assert m.lf_hf is None and m.reasons["lf_hf"] == (
        "clean beats cover too little for LF/HF: 7 s < 108 s"
    )
    assert m.coherence is None and m.reasons["coherence"].startswith("clean beats cover")
    assert m.resp_rate_bpm is None and "too little signal" in m.reasons["resp_rate_bpm"]
    assert m.p_stress is None and m.stress_state == "unknown"


def test_empty_pipeline_reports_no_quality() -> None:
    m = StreamingPipeline().metrics(5.0, 0.0, "none")
    assert m.n_beats == 0 and m.signal_quality is None
    assert "signal_quality" in m.reasons and m.reasons["hr_bpm"].startswith("too few")


def test_known_rr_series_gives_numpy_metrics_over_the_window() -> None:
    rr = varying_rr(120)
    pipe = StreamingPipeline(window_s=60.0)
    accepted = feed_all(pipe, rr_blocks(rr, T0_S, per_block=3))
    times = T0_S + np.cumsum(rr) / 1000.0
    np.testing.assert_allclose(accepted, times)
    t_end = float(times[-1])
    m = pipe.metrics(t_end, 1.7e9, "ble")

    nn = rr[times >= t_end - 60.0]
    diff = np.diff(nn)
    assert m.n_beats == nn.size and m.signal_quality == 1.0
    assert m.reasons.keys() <= {"lf_hf", "resp_rate_bpm"}  # 100 s: too short for LF/HF
    assert m.hr_bpm == pytest.approx(60000.0 / np.mean(nn), rel=1e-12)
    assert m.sdnn_ms == pytest.approx(np.std(nn, ddof=1), rel=1e-12)
    assert m.rmssd_ms == pytest.approx(np.sqrt(np.mean(diff**2)), rel=1e-12)
    assert m.pnn50_pct == pytest.approx(100.0 * np.mean(np.abs(diff) > 50.0), rel=1e-12)
    assert m.as_dict()["hr_bpm"] == round(60000.0 / np.mean(nn), 4)


def test_window_forgets_old_beats_and_faster_heart_raises_hr() -> None:
    pipe = StreamingPipeline(window_s=60.0, freq_window_s=120.0)
    slow = varying_rr(120, mean_ms=1000.0)
    feed_all(pipe, rr_blocks(slow, T0_S))
    t_slow = T0_S + slow.sum() / 1000.0
    hr_slow = pipe.metrics(t_slow, 0.0, "ble").hr_bpm
    fast = varying_rr(150, seed=1, mean_ms=600.0)
    feed_all(pipe, rr_blocks(fast, t_slow))
    t_fast = t_slow + fast.sum() / 1000.0
    hr_fast = pipe.metrics(t_fast, 0.0, "ble").hr_bpm
    assert hr_slow is not None and hr_fast is not None
    assert hr_slow == pytest.approx(60.0, abs=2.0)
    assert hr_fast == pytest.approx(100.0, abs=2.0)
    # bounded history: only about one LF/HF window of beats is kept
    assert pipe.n_stored_beats <= 120.0 / 0.6 + 10


def test_rr_gap_is_not_bridged() -> None:
    before, after = varying_rr(40, mean_ms=800.0), varying_rr(40, seed=2, mean_ms=1100.0)
    t_after = T0_S + before.sum() / 1000.0 + 5.0  # 5 s of lost notifications
    gapped = StreamingPipeline(window_s=120.0)
    feed_all(gapped, rr_blocks(before, T0_S))
    feed_all(gapped, rr_blocks(after, t_after, gap_before=True))
    t_end = t_after + after.sum() / 1000.0
    m = gapped.metrics(t_end, 0.0, "ble")
    diffs = np.concatenate([np.diff(before), np.diff(after)])
    assert m.signal_quality == 1.0
    assert m.rmssd_ms == pytest.approx(np.sqrt(np.mean(diffs**2)), rel=1e-12)
    assert len(set(gapped.beat_window(t_end).segment.tolist())) == 2

    # The same beats without the gap flag: the strap's own intervals join the two runs
    # into one series, and a change of level is not an artefact.
    bridged = StreamingPipeline(window_s=120.0)
    feed_all(bridged, rr_blocks(before, T0_S))
    feed_all(bridged, rr_blocks(after, t_after))
    joined = bridged.metrics(t_end, 0.0, "ble")
    across = np.diff(np.concatenate([before, after]))
    assert joined.signal_quality == 1.0
    assert joined.rmssd_ms == pytest.approx(np.sqrt(np.mean(across**2)), rel=1e-12)
    assert m.rmssd_ms is not None and joined.rmssd_ms > m.rmssd_ms  # the step counts now


def test_a_missed_beat_is_filled_in_and_left_out_of_rmssd() -> None:
    rr = varying_rr(70)
    true_beats = T0_S + np.cumsum(rr) / 1000.0
    sent = np.delete(rr, 31)
    sent[30] += rr[31]  # the strap missed the beat ending interval 31: one double interval
    times = np.delete(true_beats, 30)
    pipe = StreamingPipeline(window_s=60.0)
    notes = [
        RrBlock(float(t), np.array([v]), np.array([t])) for t, v in zip(times, sent, strict=True)
    ]
    feed_all(pipe, notes)
    t_end = float(true_beats[-1])
    m = pipe.metrics(t_end, 0.0, "ble")
    w = pipe.corrected_window(t_end, 70.0)
    assert pipe.artifact_counts["missed"] == 1 and w.n_beats == rr.size
    np.testing.assert_array_equal(np.flatnonzero(w.flags > 0), [30, 31])  # the two halves
    np.testing.assert_allclose(w.nn_ms[30:32], sent[30] / 2.0)
    np.testing.assert_allclose(w.t_s[[29, 31]], true_beats[[29, 31]])
    # RMSSD leaves out every difference that involves an interpolated interval.
    in_window = true_beats >= t_end - 60.0
    allowed = np.ones(rr.size, dtype=bool)  # difference ending at beat i
    allowed[30:33] = False  # 29-30, 30-31, 31-32
    allowed[0] = False
    d = np.diff(rr, prepend=np.nan)
    diffs = d[allowed & in_window & np.roll(in_window, 1)]
    assert m.rmssd_ms == pytest.approx(np.sqrt(np.mean(diffs**2)), rel=1e-9)
    n_intervals = int(np.count_nonzero(in_window))
    assert m.signal_quality == pytest.approx(1.0 - 2.0 / n_intervals)


def test_low_coverage_and_few_differences_give_reasons() -> None:
    pipe = StreamingPipeline(window_s=60.0)
    feed_all(pipe, rr_blocks(np.full(25, 600.0), T0_S))  # 15 s of a 60 s window
    m = pipe.metrics(T0_S + 15.0, 0.0, "ble")
    assert m.hr_bpm is None and m.reasons["hr_bpm"] == (
        "clean beats cover too little of the window: 25% < 50%"
    )

    # Runs of 6 beats between lost notifications: intervals, but few differences.
    pipe = StreamingPipeline(window_s=40.0, min_diffs=30)
    t = T0_S
    for _ in range(5):
        feed_all(pipe, rr_blocks(np.full(6, 1000.0), t, per_block=6, gap_before=True))
        t += 7.0
    m = pipe.metrics(t, 0.0, "ble")
    assert m.hr_bpm == pytest.approx(60.0) and m.sdnn_ms == pytest.approx(0.0)
    assert m.rmssd_ms is None and m.pnn50_pct is None
    assert m.reasons["rmssd_ms"] == "too few successive differences: 25 < 30"  # 5 per run

    # A beat alone between gaps cannot be checked against neighbours: it is not used.
    alone = StreamingPipeline(window_s=60.0)
    t = T0_S
    for _ in range(40):
        feed_all(alone, rr_blocks(np.array([1000.0]), t, gap_before=True))
        t += 1.5
    m = alone.metrics(t, 0.0, "ble")
    assert m.hr_bpm is None and m.reasons["hr_bpm"] == "too few clean beats: 0 < 20"


@pytest.mark.parametrize("fs", [25.0, 50.0, 100.0])
def test_ppg_stream_finds_beats_and_metrics_match_truth(fs: float) -> None:
    duration = 80.0
    x, beats = raw_ppg(fs, duration, seed=int(fs))
    pipe = StreamingPipeline(fs_hz=fs, chunk_s=0.5)  # beats out within 0.5 s + detector lag
    found = feed_all(pipe, ppg_blocks(x, fs, T0_S, seed=1)) - T0_S
    assert np.all(np.diff(found) > 0)
    true_in = beats[(beats > 1.5) & (beats < duration - 1.0)]
    idx = np.clip(np.searchsorted(found, true_in), 1, found.size - 1)
    err = np.minimum(np.abs(found[idx] - true_in), np.abs(found[idx - 1] - true_in))
    assert np.max(err) < 0.05 and np.median(err) < 0.015

    t_end = T0_S + duration
    m = pipe.metrics(t_end, 0.0, "ppg")
    window = beats[beats >= duration - 60.0]
    rr_true = np.diff(window) * 1000.0
    # 5 % beat-to-beat jitter: Lipponen's rules may call the odd interval ectopic
    assert m.signal_quality is not None and m.signal_quality >= 0.9
    assert m.hr_bpm == pytest.approx(60000.0 / rr_true.mean(), abs=1.0)
    assert m.rmssd_ms == pytest.approx(np.sqrt(np.mean(np.diff(rr_true) ** 2)), rel=0.1)
    assert m.sdnn_ms == pytest.approx(np.std(rr_true, ddof=1), rel=0.1)


def test_ppg_upright_signal_with_invert_off() -> None:
    fs = 50.0
    x, _ = raw_ppg(fs, 40.0)
    inverted = feed_all(StreamingPipeline(), ppg_blocks(x, fs, T0_S))
    upright = feed_all(StreamingPipeline(invert_ppg=False), ppg_blocks(-x, fs, T0_S))
    np.testing.assert_allclose(upright, inverted, atol=1e-9)


def _beats_across_a_hole(fs: float, flag: str) -> tuple[StreamingPipeline, np.ndarray, float]:
    """Feed PPG with 2.5 s of samples missing, the loss signalled as ``flag``."""
    x, _ = raw_ppg(fs, 90.0, seed=5)
    cut, hole = int(40.0 * fs), int(2.5 * fs)
    pipe = StreamingPipeline()
    feed_all(pipe, ppg_blocks(x[:cut], fs, T0_S))
    t_resume = T0_S + (cut + hole) / fs
    rest = x[cut + hole :]
    if flag == "gap_samples":
        feed_all(pipe, ppg_blocks(rest, fs, t_resume, gap_samples=hole))
    elif flag == "time_jump":
        feed_all(pipe, ppg_blocks(rest, fs, t_resume))
    else:  # "contact": the lost stretch arrives, flagged as no finger
        lost = x[cut : cut + hole]
        pipe.feed_ppg(PpgBlock(T0_S + cut / fs, fs, lost, np.zeros(0), contact=False))
        feed_all(pipe, ppg_blocks(rest, fs, t_resume))
    t_end = T0_S + 90.0
    return pipe, pipe.beat_window(t_end).ibi_ms, t_resume


@pytest.mark.parametrize("flag", ["gap_samples", "time_jump", "contact"])
def test_ppg_intervals_never_span_a_gap(flag: str) -> None:
    pipe, ibi, t_resume = _beats_across_a_hole(50.0, flag)
    window = pipe.beat_window(T0_S + 90.0)
    assert np.nanmax(ibi) < 2000.0  # an interval across 2.5 s of loss would be longer
    after = window.t_s >= t_resume
    first_after = int(np.argmax(after))
    assert math.isnan(window.ibi_ms[first_after])
    assert window.segment[first_after] != window.segment[first_after - 1]
    assert window.t_s[first_after] >= t_resume + pipe.settle_s
    m = pipe.metrics(T0_S + 90.0, 0.0, "ppg")
    assert m.signal_quality is not None and m.signal_quality >= 0.85
    assert m.rmssd_ms is not None


def test_ppg_rate_change_restarts_without_bridging() -> None:
    x50, _ = raw_ppg(50.0, 40.0, seed=6)
    x100, _ = raw_ppg(100.0, 40.0, seed=7)
    pipe = StreamingPipeline(fs_hz=50.0)
    first = feed_all(pipe, ppg_blocks(x50, 50.0, T0_S))
    second = feed_all(pipe, ppg_blocks(x100, 100.0, T0_S + 40.0))
    assert pipe.fs_hz == 100.0
    assert first.size > 35 and second.size > 35
    window = pipe.beat_window(T0_S + 80.0)
    switch = int(np.argmax(window.t_s >= T0_S + 40.0))
    assert math.isnan(window.ibi_ms[switch])
    assert window.segment[switch] != window.segment[switch - 1]


def test_small_rate_jitter_keeps_one_unbroken_stream() -> None:
    fs = 50.0
    x, beats = raw_ppg(fs, 60.0, seed=10)
    pipe = StreamingPipeline(fs_hz=fs)
    jittered = [
        PpgBlock(b.t0_s, fs * (1.0 + 2e-4 * (-1) ** i), b.ir, b.red)
        for i, b in enumerate(ppg_blocks(x, fs, T0_S))
    ]
    found = feed_all(pipe, jittered) - T0_S
    assert pipe.fs_hz == fs
    assert len(set(pipe.beat_window(T0_S + 60.0).segment.tolist())) == 1
    true_in = beats[(beats > 1.5) & (beats < 59.0)]
    assert found[(found > 1.5) & (found < 59.0)].size == true_in.size


def test_switching_input_clears_the_history() -> None:
    pipe = StreamingPipeline()
    x, _ = raw_ppg(50.0, 30.0)
    feed_all(pipe, ppg_blocks(x, 50.0, T0_S))
    assert pipe.n_stored_beats > 20
    feed_all(pipe, rr_blocks(np.full(5, 900.0), T0_S + 30.0))
    assert pipe.n_stored_beats == 5


def test_streaming_and_batch_agree_on_intervals() -> None:
    fs = 50.0
    x, _ = raw_ppg(fs, 60.0, seed=8)
    stream = feed_all(StreamingPipeline(), ppg_blocks(x, fs, T0_S)) - T0_S
    batch = analyze_ppg(x, fs, invert=True)
    batch = batch[batch >= stream[0] - 0.2]
    n = min(stream.size, batch.size)
    assert abs(stream.size - batch.size) <= 1
    assert np.median(np.abs(np.diff(stream[:n]) - np.diff(batch[:n]))) < 0.005


def test_analyze_ppg_finds_known_beats_and_rejects_short_input() -> None:
    fs = 100.0
    x, beats = raw_ppg(fs, 60.0, seed=9)
    found = analyze_ppg(x, fs, invert=True)
    true_in = beats[(beats > 1.0) & (beats < 59.0)]
    assert found[(found > 1.0) & (found < 59.0)].size == true_in.size
    with pytest.raises(InputDataError, match="x"):
        analyze_ppg(x[:50], fs)
    with pytest.raises(InputDataError, match="fs_hz"):
        analyze_ppg(x, -1.0)


def test_bad_blocks_raise_naming_the_field() -> None:
    pipe = StreamingPipeline()
    bad_ppg = PpgBlock(0.0, 50.0, np.array([1.0, np.nan]), np.zeros(0))
    with pytest.raises(InputDataError, match=r"PpgBlock\.ir"):
        pipe.feed_ppg(bad_ppg)
    with pytest.raises(InputDataError, match=r"PpgBlock\.fs_hz"):
        pipe.feed_ppg(PpgBlock(0.0, 0.0, np.zeros(4), np.zeros(0)))
    mismatched = RrBlock(1.0, np.array([800.0, 810.0]), np.array([1.0]))
    with pytest.raises(InputDataError, match=r"RrBlock\.beat_times_s"):
        pipe.feed_rr(mismatched)
    with pytest.raises(InputDataError, match=r"RrBlock\.rr_ms"):
        pipe.feed_rr(RrBlock(1.0, np.array([0.0]), np.array([1.0])))
    with pytest.raises(InputDataError, match="window_s"):
        StreamingPipeline(window_s=0.0)


def test_update_due_follows_update_interval() -> None:
    pipe = StreamingPipeline(update_s=5.0)
    assert pipe.update_due(0.0)
    pipe.metrics(10.0, 0.0, "none")
    assert not pipe.update_due(14.9)
    assert pipe.update_due(15.0)


def test_warm_up_runs_every_kernel() -> None:
    warm_up()
    StreamingPipeline().warm_up()


# -- the simulated person through the streaming pipeline ----------------------------------

SIM_FS = 50.0


def simulate_stream(
    duration_s: float,
    seed: int,
    pacer: tuple[float, float] | None = None,
    freq_update_s: float = 30.0,
) -> tuple[StreamingPipeline, StreamingPipeline, np.ndarray, np.ndarray, list[Metrics]]:
    """Run a calm simulated person's finger PPG and chest strap through two pipelines.

    Returns both pipelines (PPG, RR), the true beat times, the true breathing rate per
    second (time, breaths/min) and the PPG pipeline's metrics every 5 s.
    """
    params = PersonParams(stress=0.0, motion_artifacts_per_hour=0.0)
    person = SimulatedPerson(params, seed=seed)
    truth = person.cursor(0.0)
    synth = PpgSynth(person, SIM_FS, seed=seed + 1)
    strap = SimulatedStrap(person)
    ppg_pipe = StreamingPipeline(freq_update_s=freq_update_s)
    rr_pipe = StreamingPipeline(freq_update_s=freq_update_s)
    beats, rates, history = [], [], []
    step = int(SIM_FS / 4)  # a FIFO read every 0.25 s
    while synth.t_next_s < duration_s:
        if pacer is not None and synth.t_next_s >= pacer[0] and person.pacer_bpm is None:
            person.set_pacer(pacer[1])
        t0 = synth.t_next_s
        ir, red, contact = synth.read(step)
        ppg_pipe.feed_ppg(PpgBlock(t0 + T0_S, SIM_FS, ir, red, contact=contact))
        for t_s, rr, bt in strap.notifications_until(synth.t_next_s):
            rr_pipe.feed_rr(RrBlock(t_s + T0_S, rr, bt + T0_S))
        beats.append(truth.read_until(synth.t_next_s))
        rates.append((synth.t_next_s, person.breath_rate_bpm))
        if round(synth.t_next_s * 4) % 20 == 0:
            history.append(ppg_pipe.metrics(T0_S + synth.t_next_s, 0.0, "ppg"))
    return ppg_pipe, rr_pipe, np.concatenate(beats) + T0_S, np.array(rates), history


@pytest.mark.parametrize("source", ["ppg", "ble"])
def test_streaming_metrics_follow_the_simulated_person(source: str) -> None:
    duration = 420.0
    ppg_pipe, rr_pipe, beats, rates, _ = simulate_stream(duration, seed=21, freq_update_s=5.0)
    pipe = ppg_pipe if source == "ppg" else rr_pipe
    t_end = T0_S + duration
    m = pipe.metrics(t_end, 0.0, source)  # type: ignore[arg-type]

    last = beats[beats >= t_end - 60.0]
    rr = np.diff(last) * 1000.0
    assert m.hr_bpm == pytest.approx(60000.0 / rr.mean(), abs=1.0)
    assert m.rmssd_ms == pytest.approx(np.sqrt(np.mean(np.diff(rr) ** 2)), rel=0.15)
    five = beats[beats >= t_end - 300.0]
    true_lf_hf = hrv_frequency(five[1:], np.diff(five) * 1000.0).lf_hf
    assert m.lf_hf == pytest.approx(true_lf_hf, rel=0.35)
    true_breath = float(rates[rates[:, 0] > duration - 60.0, 1].mean())
    assert true_breath == pytest.approx(14.0, abs=1.0)
    assert m.resp_rate_bpm == pytest.approx(true_breath, abs=1.0)
    assert m.coherence is not None and 0.0 <= m.coherence <= 1.0
    assert m.signal_quality is not None and m.signal_quality >= 0.9 and not m.reasons


def test_paced_breathing_shows_in_resp_rate_and_coherence() -> None:
    _, rr_pipe, _, rates, _ = simulate_stream(240.0, seed=22, pacer=(90.0, 6.0))
    before = rr_pipe.metrics(T0_S + 90.0, 0.0, "ble")
    # (metrics at 90 s asked after the fact: the window still holds those beats)
    after = rr_pipe.metrics(T0_S + 240.0, 0.0, "ble")
    true_after = float(rates[rates[:, 0] > 180.0, 1].mean())
    assert true_after == pytest.approx(6.0, abs=0.7)
    assert before.resp_rate_bpm == pytest.approx(14.0, abs=1.5)
    assert after.resp_rate_bpm == pytest.approx(true_after, abs=0.7)
    assert before.coherence is not None and after.coherence is not None
    assert after.coherence > 0.7 and after.coherence > before.coherence + 0.15


def test_lf_hf_is_recomputed_every_freq_update_s_and_held_between() -> None:
    rr = varying_rr(500, seed=3)
    pipe = StreamingPipeline(freq_update_s=30.0)
    feed_all(pipe, rr_blocks(rr, T0_S))
    t = T0_S + rr.sum() / 1000.0 - 60.0
    first = pipe.metrics(t, 0.0, "ble").lf_hf
    held = pipe.metrics(t + 10.0, 0.0, "ble").lf_hf
    fresh = pipe.metrics(t + 40.0, 0.0, "ble").lf_hf
    assert first is not None and held == first
    assert fresh is not None and fresh != first


def test_every_beat_is_reported_once_whoever_processed_it() -> None:
    fs = 50.0
    x, _ = raw_ppg(fs, 60.0, seed=12)
    pipe = StreamingPipeline(fs_hz=fs)
    reported = []
    for i, block in enumerate(ppg_blocks(x, fs, T0_S, seed=2)):
        reported.append(pipe.feed_ppg(block))
        if i % 7 == 0:  # metrics process the pending samples mid-chunk
            pipe.metrics(block.t_end_s, 0.0, "ppg")
    stored = pipe.beat_window(T0_S + 60.0, 120.0).t_s  # processes the last partial chunk
    reported.append(pipe.feed_ppg(PpgBlock(T0_S + 60.0, fs, np.zeros(0), np.zeros(0))))
    out = np.concatenate(reported)
    np.testing.assert_array_equal(np.sort(out), out)
    np.testing.assert_array_equal(out, stored)


def test_chunk_size_does_not_change_the_beats() -> None:
    fs = 100.0
    x, _ = raw_ppg(fs, 40.0, seed=13)
    small = StreamingPipeline(fs_hz=fs, chunk_s=0.1)
    large = StreamingPipeline(fs_hz=fs, chunk_s=5.0)
    a = feed_all(small, ppg_blocks(x, fs, T0_S))
    feed_all(large, ppg_blocks(x, fs, T0_S))
    np.testing.assert_allclose(large.beat_window(T0_S + 40.0).t_s, a[a >= T0_S + 0.0], atol=1e-9)


def test_ppg_beats_carry_pulse_features_and_rr_beats_do_not() -> None:
    fs = 50.0
    x, _ = raw_ppg(fs, 30.0, seed=14)
    pipe = StreamingPipeline(fs_hz=fs)
    feed_all(pipe, ppg_blocks(x, fs, T0_S))
    w = pipe.beat_window(T0_S + 30.0)
    assert np.all(w.amplitude[1:] > 0.0) and np.all(np.isfinite(w.baseline[1:]))
    # pulses of 400 counts on a 60000 baseline, sign flipped: the baseline is near -60000
    assert np.median(w.amplitude) == pytest.approx(400.0, rel=0.3)
    assert np.median(w.baseline) == pytest.approx(-60000.0, rel=0.01)
    rr = StreamingPipeline()
    feed_all(rr, rr_blocks(varying_rr(30), T0_S))
    assert np.all(np.isnan(rr.beat_window(T0_S + 30.0).amplitude))


def test_a_backlog_longer_than_a_chunk_keeps_its_pulse_features() -> None:
    fs = 50.0
    x, _ = raw_ppg(fs, 30.0, seed=15)
    pipe = StreamingPipeline(fs_hz=fs, chunk_s=2.0)
    beats = pipe.feed_ppg(PpgBlock(T0_S, fs, x, np.zeros(0)))  # 30 s in one block
    w = pipe.beat_window(T0_S + 30.0)
    assert beats.size > 25 and w.n_beats == beats.size
    assert np.count_nonzero(np.isfinite(w.amplitude)) >= w.n_beats - 1


# -- the streaming pipeline against the batch analysis --------------------------------------


def stream_windows(
    pipe: StreamingPipeline, blocks: list[PpgBlock], t0_s: float
) -> dict[int, Metrics]:
    """Feed the blocks; metrics at every 10 s of signal from 60 s on, by window end (s)."""
    out: dict[int, Metrics] = {}
    for block in blocks:
        pipe.feed_ppg(block)
        end_s = block.t_end_s - t0_s
        if end_s >= 60.0 and abs(end_s / 10.0 - round(end_s / 10.0)) < 1e-9:
            out[round(end_s)] = pipe.metrics(block.t_end_s, 0.0, "ppg")
    return out


def window_errors(
    batch_windows: list[dict[str, object]], streamed: dict[int, Metrics]
) -> tuple[np.ndarray, np.ndarray]:
    """Per window measured by both: streamed minus batch HR (bpm) and RMSSD (ms)."""
    d_hr, d_rmssd = [], []
    for w in batch_windows:
        m = streamed.get(round(float(w["t_end_s"])))  # type: ignore[arg-type]
        hr, rmssd = w["hr_bpm"], w["rmssd_ms"]
        if m is None or m.hr_bpm is None or m.rmssd_ms is None:
            continue
        if isinstance(hr, float) and isinstance(rmssd, float):
            d_hr.append(m.hr_bpm - hr)
            d_rmssd.append(m.rmssd_ms - rmssd)
    return np.array(d_hr), np.array(d_rmssd)


def test_streaming_windows_match_the_batch_on_a_real_recording(shared_data: Path) -> None:
    path = shared_data / "ppg_reference" / "neurokit_resting_5min" / "bio_resting_5min_100hz.csv"
    x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)  # columns ECG, PPG, RSP
    fs = 100.0
    batch = analyze_recording(x, fs, window_s=60.0, step_s=10.0)
    pipe = StreamingPipeline(fs_hz=fs, invert_ppg=batch.artifacts["polarity"] == "inverted")
    blocks = [PpgBlock(T0_S + i / fs, fs, x[i : i + 25], np.zeros(0)) for i in range(0, x.size, 25)]
    d_hr, d_rmssd = window_errors(batch.windows, stream_windows(pipe, blocks, T0_S))
    assert d_rmssd.size >= 20  # nearly every window from 60 s to 300 s
    assert np.median(np.abs(d_rmssd)) <= 3.0 and np.max(np.abs(d_rmssd)) <= 10.0
    assert np.median(np.abs(d_hr)) <= 0.5


def test_streaming_windows_match_the_batch_on_the_simulated_person() -> None:
    fs = 50.0
    person = SimulatedPerson(PersonParams(stress=0.0, motion_artifacts_per_hour=0.0), seed=31)
    synth = PpgSynth(person, fs, seed=32)
    blocks, samples = [], []
    while synth.t_next_s < 300.0:
        t0 = synth.t_next_s
        ir, red, contact = synth.read(25)
        blocks.append(PpgBlock(T0_S + t0, fs, ir, red, contact=contact))
        samples.append(ir)
    batch = analyze_recording(np.concatenate(samples), fs, window_s=60.0, step_s=10.0)
    d_hr, d_rmssd = window_errors(batch.windows, stream_windows(StreamingPipeline(), blocks, T0_S))
    assert d_rmssd.size >= 20
    assert np.median(np.abs(d_rmssd)) <= 3.0 and np.median(np.abs(d_hr)) <= 0.5


def test_a_lost_pulse_is_corrected_in_the_stream() -> None:
    fs = 50.0
    x, beats = raw_ppg(fs, 120.0, seed=16)
    t = np.arange(x.size) / fs
    lost = beats[70]
    flat = (t > lost - 0.25) & (t < lost + 0.35)  # the sensor missed one pulse
    x[flat] = np.interp(t[flat], [lost - 0.25, lost + 0.35], [x[flat][0], x[flat][-1]])
    pipe = StreamingPipeline(fs_hz=fs)
    feed_all(pipe, ppg_blocks(x, fs, T0_S))
    m = pipe.metrics(T0_S + 120.0, 0.0, "ppg")
    w = pipe.corrected_window(T0_S + 120.0, 70.0)
    assert pipe.artifact_counts["missed"] >= 1
    inserted = w.t_s[np.isnan(w.quality) & (w.flags > 0)]
    assert inserted.size >= 1 and np.min(np.abs(inserted - T0_S - lost)) < 0.15
    assert m.signal_quality is not None and m.signal_quality < 1.0
    assert m.hr_bpm is not None and abs(m.hr_bpm - 70.0) < 5.0  # no long interval left in


def test_red_only_blocks_are_measured_like_ir() -> None:
    """sensor.mode = "red": the driver fills ``red`` and leaves ``ir`` empty."""
    from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson

    results = []
    for channel in ("ir", "red"):
        person = SimulatedPerson(PersonParams(stress=0.0, motion_artifacts_per_hour=0.0), seed=5)
        synth = PpgSynth(person, 100.0, seed=6)
        pipe = StreamingPipeline()
        beats = 0
        for _ in range(90 * 4):
            t0 = synth.t_next_s
            ir, _red, contact = synth.read(25)
            empty = np.zeros(0)
            block = (
                PpgBlock(t0, 100.0, ir, empty, contact=contact)
                if channel == "ir"
                else PpgBlock(t0, 100.0, empty, ir, contact=contact)
            )
            assert block.n == 25
            beats += pipe.feed_ppg(block).size
        m = pipe.metrics(synth.t_next_s, 0.0, "ppg")
        results.append((beats, m.hr_bpm))
    assert results[0] == results[1]
    assert results[0][1] is not None


def test_read_only_blocks_are_measured_like_writable_ones() -> None:
    # Samples from np.frombuffer (I2C bytes) or pandas arrive read-only; the first block
    # of a stream takes the slow path, which must accept them too.
    fs = 100.0
    x, _ = raw_ppg(fs, 30.0, seed=14)
    frozen = x.copy()
    frozen.flags.writeable = False
    beats = []
    for signal in (x, frozen):
        pipe = StreamingPipeline(fs_hz=fs)
        beats.append(feed_all(pipe, ppg_blocks(signal, fs, T0_S, seed=3)))
    assert beats[0].size > 20
    np.testing.assert_array_equal(beats[0], beats[1])


def test_long_kernels_release_the_gil() -> None:
    # The audio callback thread must never wait for the GIL behind a DSP kernel: every
    # kernel that loops over a signal, a beat series or a window is compiled nogil.
    from heartsong.dsp import (
        artifacts,
        artifacts_stream,
        batch,
        beats,
        coherence,
        filters,
        hrv_freq,
        peaks,
        ppg_stream,
        quality,
        resp,
        window,
    )

    kernels = [
        artifacts._classify_kernel,
        artifacts._correct_once_kernel,
        artifacts_stream._add_raw_kernel,
        artifacts_stream._update_kernel,
        artifacts_stream._select_kernel,
        batch._gain_control_kernel,
        batch._local_median_kernel,
        beats._clean_ibi_kernel,
        coherence._scores_kernel,
        filters._sos_filter_kernel,
        filters._filtfilt_kernel,
        hrv_freq._psd_kernel,
        peaks._elgendi_kernel,
        peaks._max_upslope_kernel,
        ppg_stream._front_end_kernel,
        ppg_stream._pulses_kernel,
        quality._align_kernel,
        quality._beat_quality_kernel,
        resp._pulse_features_kernel,
        resp._windows_kernel,
        window._window_kernel,
        window._windows_kernel,
    ]
    assert [k.py_func.__name__ for k in kernels if not k.targetoptions.get("nogil")] == []


def test_a_pipeline_nobody_reads_for_an_hour_keeps_working() -> None:
    # The backup source's pipeline is fed all night while the other source is used, and
    # asked for no window: it must forget old beats itself, not fill up and fail.
    rng = np.random.default_rng(7)
    rr = rng.normal(750.0, 40.0, 5200)  # about 65 min at 80 bpm
    times = np.cumsum(rr) / 1000.0
    idle = StreamingPipeline()
    read = StreamingPipeline()
    for i in range(0, rr.size, 4):
        block = RrBlock(float(times[min(i + 3, rr.size - 1)]), rr[i:i + 4], times[i:i + 4])
        idle.feed_rr(block)
        read.feed_rr(block)
        if i % 20 == 0:
            read.metrics(float(times[i]), 0.0, "ble")
    end = float(times[-1])
    late, regular = idle.metrics(end, 0.0, "ble"), read.metrics(end, 0.0, "ble")
    assert late.hr_bpm is not None and late.rmssd_ms is not None
    assert late.hr_bpm == pytest.approx(regular.hr_bpm, rel=1e-9)
    assert late.rmssd_ms == pytest.approx(regular.rmssd_ms, rel=1e-9)


def test_pulse_band_noise_gives_no_numbers_in_batch_or_streaming(shared_data: Path) -> None:
    """A moving hand: 90 s of noise in the pulse band inside a real recording. Beats are
    detected in it at random intervals; its windows must say why they have no HRV rather
    than report one (they read RMSSD 120-130 ms against about 33 ms before the range rule)."""
    from scipy.signal import butter, sosfilt

    path = shared_data / "ppg_reference" / "neurokit_resting_5min" / "bio_resting_5min_100hz.csv"
    x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1)[:24000]
    fs = 100.0
    clean = analyze_recording(x, fs)
    noise = sosfilt(butter(2, [0.7, 3.0], "bandpass", fs=fs, output="sos"),
                    np.random.default_rng(1).normal(size=9000))
    y = x.copy()
    y[6000:15000] = noise * (x.std() / noise.std())
    batch = analyze_recording(y, fs)
    inside = [w for w in batch.windows if w["t_start_s"] >= 60.0 and w["t_end_s"] <= 150.0]
    assert inside
    for w in inside:
        assert w["rmssd_ms"] is None and w["sdnn_ms"] is None and w["hr_bpm"] is None
        assert "clean beats" in w["reasons"]["rmssd_ms"]  # type: ignore[index]
    rmssd, ref = batch.hrv["rmssd_ms"], clean.hrv["rmssd_ms"]
    assert rmssd is not None and ref is not None and abs(rmssd - ref) <= 0.2 * ref
    pipe = StreamingPipeline(fs_hz=fs, invert_ppg=batch.artifacts["polarity"] == "inverted")
    blocks = [PpgBlock(T0_S + i / fs, fs, y[i : i + 25], np.zeros(0)) for i in range(0, y.size, 25)]
    streamed = stream_windows(pipe, blocks, T0_S)
    for end in (130, 140):
        m = streamed[end]
        assert m.rmssd_ms is None and m.hr_bpm is None and "clean beats" in m.reasons["rmssd_ms"]
