"""The streaming PPG front end: kernels vs NumPy, pulse features, template quality and the
plausibility rules, the fiducial point, the sample clock, and chunking invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.dsp import filters, peaks, ppg_stream
from heartsong.dsp.filters import _sos_filter_kernel, sos_filter_stream, sos_filter_zi
from heartsong.dsp.peaks import ElgendiPeakStream
from heartsong.dsp.ppg_stream import (
    AMPLITUDE_PULSES,
    IBI_MEDIAN_LEN,
    N_PULSE_POINTS,
    TEMPLATE_PULSES,
    PpgFrontEnd,
    SampleClock,
    _append_kernel,
    _centre_and_scale,
    _column_medians,
    _pulses_kernel,
    _ring_value,
    _update_template,
    _window_median,
    _window_push,
    ppg_bandpass_sos,
)
from heartsong.dsp.resp import ppg_pulse_features
from heartsong.dsp.window import _sources_digest
from heartsong.errors import InputDataError

FS = 50.0


def pulse_train(
    duration_s: float, seed: int = 0, hr_bpm: float = 70.0, shape: str = "gauss"
) -> tuple[np.ndarray, np.ndarray]:
    """An upright PPG (a fast upstroke, a slower decay) and its beat onsets in seconds."""
    rng = np.random.default_rng(seed)
    n_beats = int(duration_s * hr_bpm / 60.0) + 2
    rr_s = 60.0 / hr_bpm * (1.0 + 0.03 * rng.standard_normal(n_beats))
    beats = 0.5 + np.cumsum(rr_s)
    beats = beats[beats < duration_s - 0.5]
    t = np.arange(int(duration_s * FS)) / FS
    x = np.zeros_like(t)
    for b in beats:
        x += one_pulse(t - b, shape)
    return 1000.0 + 200.0 * x + 2.0 * rng.standard_normal(t.size), beats


def one_pulse(dt: np.ndarray, shape: str) -> np.ndarray:
    """A pulse starting at ``dt = 0`` (s): the usual shape, or an odd, double-humped one."""
    up = np.clip(dt / 0.12, 0.0, None)
    usual = up**2 * np.exp(2.0 - 2.0 * up) * (dt > 0)
    if shape == "gauss":
        return usual
    return 0.7 * (
        np.exp(-0.5 * ((dt - 0.05) / 0.03) ** 2) + np.exp(-0.5 * ((dt - 0.45) / 0.03) ** 2)
    )


def run(x: np.ndarray, chunk: int, *, fiducial: str = "peak", sign: float = 1.0) -> np.ndarray:
    """Feed ``x`` to a front end ``chunk`` samples at a time; kept pulses as (4, n)."""
    fe = PpgFrontEnd(FS, sign, 5.0, fiducial)
    fe.clock.note(0, 0.0, FS)
    out = []
    for i in range(0, x.size, chunk):
        assert fe.append(x[i : i + chunk])
        out.append(fe.process().copy())
    out.append(fe.process(final=True).copy())
    return np.concatenate(out, axis=1)


# -- kernels against plain NumPy --------------------------------------------------------


def test_small_kernels_match_numpy() -> None:
    rng = np.random.default_rng(0)
    ring = rng.standard_normal(16)
    positions = np.array([3.25, 14.5, 15.75, 17.0])  # past the end wraps round the ring
    unwrapped = np.concatenate([ring, ring])
    expected = np.interp(positions, np.arange(32), unwrapped)
    got = [_ring_value(ring, p, 15) for p in positions]
    np.testing.assert_allclose(got, expected, atol=1e-15)
    v = rng.standard_normal(N_PULSE_POINTS)
    ref = (v - v.mean()) / np.linalg.norm(v - v.mean())
    assert _centre_and_scale(v) and np.allclose(v, ref, atol=1e-15)
    assert not _centre_and_scale(np.full(8, 3.0))  # a flat pulse has no shape
    pulses = rng.standard_normal((TEMPLATE_PULSES + 1, N_PULSE_POINTS))
    template = np.empty(N_PULSE_POINTS)
    assert _update_template(pulses, 7, template)
    med = np.median(pulses[:7], axis=0)
    np.testing.assert_allclose(template, (med - med.mean()) / np.linalg.norm(med - med.mean()))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 6, 7, 14, TEMPLATE_PULSES])
def test_column_medians_are_the_sorted_medians_bit_for_bit(n: int) -> None:
    # Picked by rank, each median must be exactly what a stable sort of the column gives
    # (the template used an insertion sort before), ties and zeros of either sign too.
    rng = np.random.default_rng(n)
    for rows in (
        rng.standard_normal((TEMPLATE_PULSES + 1, N_PULSE_POINTS)),
        np.round(rng.standard_normal((TEMPLATE_PULSES + 1, N_PULSE_POINTS))),
        rng.choice([0.0, -0.0, 1.0, -1.0], (TEMPLATE_PULSES + 1, N_PULSE_POINTS)),
    ):
        got = np.empty(N_PULSE_POINTS)
        _column_medians(rows, n, got)
        if n == 0:
            assert np.isnan(got).all()
            continue
        cols = np.sort(rows[:n], axis=0, kind="stable")
        h = n // 2
        ref = cols[h] if n % 2 else 0.5 * (cols[h - 1] + cols[h])
        np.testing.assert_array_equal(got.view(np.int64), ref.view(np.int64))
        np.testing.assert_allclose(got, np.median(rows[:n], axis=0), atol=1e-15)


def test_running_median_windows_match_numpy() -> None:
    rng = np.random.default_rng(1)
    medians = np.zeros((4, AMPLITUDE_PULSES))
    istate = np.zeros(11, dtype=np.int64)
    values = rng.uniform(0.5, 1.5, 100)
    for i, v in enumerate(values):
        _window_push(medians, 0, istate, 1, 2, IBI_MEDIAN_LEN, v)
        recent = values[max(0, i + 1 - IBI_MEDIAN_LEN) : i + 1]
        assert _window_median(medians, 0, int(istate[1])) == pytest.approx(np.median(recent))


def test_append_kernel_checks_and_refuses_what_does_not_fit() -> None:
    buf = np.zeros(8)
    assert _append_kernel(np.array([1.0, 2.0]), -1.0, buf, 3) == 5
    np.testing.assert_array_equal(buf[3:5], [-1.0, -2.0])
    assert _append_kernel(np.array([1.0, math.nan]), 1.0, buf, 0) == -1
    assert _append_kernel(np.ones(6), 1.0, buf, 5) == -2
    np.testing.assert_array_equal(buf[:3], 0.0)  # nothing stored on refusal


# -- what the front end measures --------------------------------------------------------


@pytest.mark.parametrize(("fiducial", "chunk"), [("peak", 250), ("upslope", 97)])
def test_front_end_kernel_equals_its_three_kernels_called_apart(fiducial: str, chunk: int) -> None:
    # The fused call must be exactly band-pass, then detector, then pulse measurements,
    # with the unmeasured detections carried to the next chunk (as three calls did).
    x, _ = pulse_train(60.0, seed=4)
    x[1500:1540] += 400.0  # an artefact: dropped detections and a template under strain
    fe = PpgFrontEnd(FS, 1.0, 5.0, fiducial)
    fe.clock.note(0, 0.0, FS)
    ref = PpgFrontEnd(FS, 1.0, 5.0, fiducial)  # only its state arrays are used
    det = ElgendiPeakStream(FS)
    zi = sos_filter_zi(ref.sos) * x[0]
    waiting = np.zeros(0)
    first = 0
    for i in range(0, x.size, chunk):
        block = x[i : i + chunk]
        assert fe.append(block)
        got = fe.process().copy()
        filtered = _sos_filter_kernel(ref.sos, block, zi)
        found = det.process(filtered)
        out = np.empty((4, waiting.size + found.size + 1))
        done, kept = _pulses_kernel(
            waiting,
            found,
            block,
            filtered,
            ref.rings,
            ref.istate,
            ref.fstate,
            ref.medians,
            ref.pulses,
            fe.clock.table,
            fe.clock.n,
            first,
            fiducial == "upslope",
            False,
            out,
        )
        first += block.size
        both = np.concatenate((waiting, found))
        waiting = both[done:]
        np.testing.assert_array_equal(got, out[:, :kept])
        np.testing.assert_array_equal(fe.waiting, waiting)
        assert fe.n_waiting == waiting.size
    np.testing.assert_array_equal(fe.zi, zi)
    np.testing.assert_array_equal(fe.rings, ref.rings)
    np.testing.assert_array_equal(fe.pulses, ref.pulses)


def test_the_front_end_kernel_is_compiled_against_the_current_sources() -> None:
    # It inlines kernels of filters.py and peaks.py, whose changes numba's cache of
    # ppg_stream.py would not see: the digest of those files is frozen into the cache.
    assert ppg_stream._compiled_sources_digest_kernel() == ppg_stream._SOURCES_DIGEST
    assert ppg_stream._SOURCES_DIGEST == _sources_digest((filters, peaks)) != 0


def test_front_end_refuses_a_band_passed_chunk_that_is_not_finite() -> None:
    fe = PpgFrontEnd(FS, 1.0, 5.0)
    fe.clock.note(0, 0.0, FS)
    # Finite samples, but a step this large overflows the band-pass.
    assert fe.append(np.r_[np.zeros(50), np.full(50, 1.7e308)])
    with pytest.raises(InputDataError, match="filtered"):
        fe.process()
    assert fe.processed == 0 and fe.n_waiting == 0


def test_pulse_features_follow_the_rules_of_ppg_pulse_features() -> None:
    x, _ = pulse_train(60.0, seed=2)
    out = run(x, 25)
    sos = ppg_bandpass_sos(FS)
    filtered = sos_filter_stream(sos, x, sos_filter_zi(sos) * x[0])
    positions = out[0] * FS
    amplitude, baseline = ppg_pulse_features(x, filtered, FS, positions)
    later = out[0] > 3.0  # past the first pulses, whose troughs predate the stream
    np.testing.assert_allclose(out[1, later], amplitude[later], rtol=1e-12)
    np.testing.assert_allclose(out[2, later], baseline[later], rtol=1e-12)


def test_regular_pulses_match_their_template() -> None:
    x, beats = pulse_train(60.0, seed=3)
    out = run(x, 25)
    assert out.shape[1] >= beats.size - 2  # every pulse kept (the last may be cut off)
    q = out[3]
    assert np.isnan(q[:6]).any() and np.all(q[6:] > 0.98)


@pytest.mark.parametrize("kind", ["shape", "size"])
def test_a_detection_unlike_its_neighbours_is_dropped(kind: str) -> None:
    x, beats = pulse_train(60.0, seed=4)
    t = np.arange(x.size) / FS
    odd = beats[40]
    x = x - 200.0 * one_pulse(t - odd, "gauss")  # take the real pulse out
    if kind == "shape":
        x = x + 200.0 * one_pulse(t - odd, "odd")
    else:
        x = x + 1200.0 * one_pulse(t - odd, "gauss")  # a movement, six times the pulse
    times = run(x, 25)[0]
    assert np.min(np.abs(times - odd - 0.2)) > 0.15  # nothing kept at the odd pulse
    for neighbour in (beats[38], beats[39], beats[41], beats[42]):
        assert np.min(np.abs(times - neighbour - 0.2)) < 0.1


def test_a_lasting_change_of_shape_rebuilds_the_template() -> None:
    normal, _ = pulse_train(40.0, seed=5)
    changed, _ = pulse_train(40.0, seed=6, shape="odd")
    x = np.concatenate([normal, changed + (normal[-1] - changed[0])])
    out = run(x, 25)
    late = out[0] > 65.0
    assert late.sum() > 10 and np.all(out[3, late] > 0.9)  # the new shape is the norm now


def test_chunking_does_not_change_the_pulses() -> None:
    x, _ = pulse_train(60.0, seed=7)
    ref = run(x, 25, fiducial="upslope")
    for chunk in (7, 250, 3000):
        np.testing.assert_array_equal(run(x, chunk, fiducial="upslope"), ref)


def test_the_upslope_fiducial_precedes_the_peak_at_a_steady_delay() -> None:
    x, _ = pulse_train(60.0, seed=8)
    peak = run(x, 25)[0]
    up = run(x, 25, fiducial="upslope")[0]
    assert peak.size == up.size
    lead = (peak - up)[5:]
    # the steepest point of this pulse is 0.06 s after onset, its peak 0.12 s after onset
    assert np.median(lead) == pytest.approx(0.06, abs=0.015) and np.std(lead) < 0.01
    with pytest.raises(InputDataError, match="fiducial"):
        PpgFrontEnd(FS, 1.0, 5.0, "foot")


def test_inverted_counts_give_the_same_beats() -> None:
    x, _ = pulse_train(40.0, seed=9)
    np.testing.assert_allclose(run(-x, 25, sign=-1.0)[0], run(x, 25)[0], atol=1e-12)


# -- the sample clock -------------------------------------------------------------------


def test_sample_clock_records_only_blocks_that_do_not_continue_it() -> None:
    clock = SampleClock()
    clock.note(0, 10.0, 100.0)
    for k in range(1, 40):  # exact continuations: no new entry
        clock.note(25 * k, 10.0 + 0.25 * k, 100.0)
    clock.note(1000, 20.0 + 5e-7, 100.0)  # within 1 us: still the same entry
    assert clock.n == 1
    clock.note(1025, 20.2505, 100.02)  # a drift-corrected rate and a small offset
    assert clock.n == 2
    assert clock.time_of(500.0) == pytest.approx(15.0)
    assert clock.time_of(1125.0) == pytest.approx(20.2505 + 100.0 / 100.02)
    assert clock.time_of(-100.0) == pytest.approx(9.0)  # before every entry: extrapolated
