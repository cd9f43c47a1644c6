"""Incremental Lipponen & Tarvainen (2019) correction: kernels vs NumPy, equality with the
batch correction, invariance to how the beats arrive, gaps, holes and bounded memory."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.dsp.artifacts import (
    ARTIFACT_NAMES,
    correct_beats_lipponen2019,
    rr_artifacts_lipponen2019,
)
from heartsong.dsp.artifacts_stream import (
    StreamingBeatCorrector,
    _median_of,
    _quartile_deviation,
    _reflect,
    _reject_kernel,
    _sorted_insert,
    _sorted_remove,
    _window_quality_kernel,
)
from heartsong.dsp.quality import window_quality

T0 = 50.0
MISSED, EXTRA, ECTOPIC = (ARTIFACT_NAMES.index(k) for k in ("missed", "extra", "ectopic"))


def clean_beats(n: int, seed: int) -> np.ndarray:
    """Beat times (s) with breathing-like variation and 10 ms of noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    rr = 850.0 + 40.0 * np.sin(2 * np.pi * k / 4.5) + 10.0 * rng.standard_normal(n)
    return T0 + np.concatenate([[0.0], np.cumsum(rr)]) / 1000.0


def with_artefacts(t: np.ndarray) -> np.ndarray:
    """Two each of a missed beat, an extra beat and an early (ectopic) beat, far apart."""
    beats = list(t)
    kinds = [(40, "missed"), (80, "extra"), (120, "ectopic"), (160, "missed"), (200, "extra")]
    for idx, kind in sorted([*kinds, (240, "ectopic")], reverse=True):
        if kind == "missed":
            del beats[idx]
        elif kind == "extra":
            beats.insert(idx, beats[idx - 1] + 0.35 * (beats[idx] - beats[idx - 1]))
        else:
            beats[idx] -= 0.3 * (beats[idx] - beats[idx - 1])
    return np.array(beats)


def stream(t: np.ndarray, per_update: int, span_s: float = 1e4) -> StreamingBeatCorrector:
    """Feed detected beats ``per_update`` at a time, updating after each batch."""
    fixed = StreamingBeatCorrector(span_s, 5000)
    nan = np.full(t.size, np.nan)
    for i in range(0, t.size, per_update):
        part = slice(i, i + per_update)
        fixed.add_detected(t[part].copy(), nan[part].copy(), nan[part].copy(), nan[part].copy())
        fixed.update()
    return fixed


# -- kernels against plain NumPy --------------------------------------------------------


def test_small_kernels_match_numpy() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 11, 91):
        v = rng.standard_normal(n)
        assert _median_of(v.copy(), n) == pytest.approx(np.median(v), abs=1e-15)
        q75, q25 = np.quantile(np.abs(v), [0.75, 0.25])
        assert _quartile_deviation(np.abs(v)) == pytest.approx(0.5 * (q75 - q25), abs=1e-15)
    assert math.isnan(_median_of(np.zeros(3), 0)) and _quartile_deviation(np.zeros(0)) == 0.0
    padded = np.pad(np.arange(5), 3, mode="reflect")  # index i - 3 of 0..4, reflected
    assert [_reflect(i, 0, 4) for i in range(-3, 8)] == padded.tolist()
    buf = np.empty(30)
    m = 0
    values = rng.standard_normal(20)
    for v in values:
        m = _sorted_insert(buf, m, v)
    for v in values[::3]:
        m = _sorted_remove(buf, m, v)
    np.testing.assert_array_equal(buf[:m], np.sort(np.delete(values, np.arange(0, 20, 3))))


@pytest.mark.parametrize("per_add", [7, 400])
def test_adding_rows_equals_adding_columns(per_add: int) -> None:
    # add_detected_rows (one kernel call over a (4, n) block) stores exactly what
    # add_detected does, including when the table has to make room first (400 at once
    # is more than the corrector keeps: the general path runs).
    rng = np.random.default_rng(5)
    t = with_artefacts(clean_beats(1200, seed=2))
    rows = np.vstack(
        [
            t,
            rng.uniform(50, 150, t.size),
            rng.normal(1e4, 50, t.size),
            rng.uniform(0.2, 1.0, t.size),
        ]
    )
    a = StreamingBeatCorrector(120.0, 300)
    b = StreamingBeatCorrector(120.0, 300)
    for i in range(0, t.size, per_add):
        part = np.ascontiguousarray(rows[:, i : i + per_add])
        n = part.shape[1]
        buf = np.full((4, n + 3), np.nan)  # the front end's buffer has spare columns
        buf[:, :n] = part
        got_a = a.add_detected(part[0].copy(), part[1].copy(), part[2].copy(), part[3].copy())
        got_b = b.add_detected_rows(buf, n)
        np.testing.assert_array_equal(got_a, got_b)
        if i % (3 * per_add) == 0:
            end = float(part[0, -1])
            assert a.select(end, end - 60, end - 60, end, 0.5, pulses=True) == b.select(
                end, end - 60, end - 60, end, 0.5, pulses=True
            )
    a.update()
    b.update()
    wa, wb = a.window(0.0, math.inf), b.window(0.0, math.inf)
    for name in ("t_s", "nn_ms", "valid_diff", "flags", "quality", "amplitude", "baseline"):
        np.testing.assert_array_equal(getattr(wa, name), getattr(wb, name))
    assert a.artifact_counts == b.artifact_counts and a.n_detected == b.n_detected


def reject_reference(nn: np.ndarray, seg: np.ndarray, half: int = 10) -> np.ndarray:
    """The batch's last safety net, written out: range, then neighbours spanning at most
    2.2 (longest / shortest), then 30 % from the local median."""
    ok = (nn >= 300.0) & (nn <= 2000.0)
    plausible = np.where(ok, nn, np.nan)
    out = np.full(nn.size, np.nan)
    for i in range(nn.size):
        lo, hi = max(0, i - half), min(nn.size, i + half + 1)
        near = plausible[lo:hi][(seg[lo:hi] == seg[i]) & ~np.isnan(plausible[lo:hi])]
        if ok[i] and near.size >= 5 and near.max() <= 2.2 * near.min():
            med = np.median(near)
            if abs(nn[i] - med) <= 0.3 * med:
                out[i] = nn[i]
    return out


def test_reject_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    n = 120
    nn = 800.0 + 50.0 * rng.standard_normal(n)
    nn[rng.choice(n, 12, replace=False)] = rng.choice([250.0, 1500.0, 2500.0, np.nan], 12)
    nn[60:75] = rng.uniform(350.0, 1200.0, 15)  # beats found in noise: a range over 2.2
    seg = np.repeat([0, 1, 2, 3], [50, 3, 40, 27]).astype(np.int64)
    kf = np.zeros((6, n))
    kf[1] = nn
    _reject_kernel(kf, seg, 0, 0, n, 300.0, 2000.0, 0.3, 2.2, 10, 5)
    want = reject_reference(nn, seg)
    np.testing.assert_array_equal(np.isnan(kf[2]), np.isnan(want))
    np.testing.assert_allclose(kf[2], want)
    assert np.isnan(want[60:75]).all()  # the rule fires: every noise interval rejected


def test_window_quality_kernel_matches_the_batch_rule() -> None:
    rng = np.random.default_rng(2)
    q = rng.uniform(0.3, 1.0, 60)
    q[[3, 9]] = np.nan
    flags = np.zeros(60, dtype=np.int8)
    flags[[0, 30]] = -1
    flags[[10, 11, 40]] = [1, 1, 2]
    share = 3 / 58
    expected = window_quality(q, artifact_share=share, threshold=0.8)
    assert _window_quality_kernel(q, flags, 0.8, True) == pytest.approx(expected, rel=1e-12)
    assert _window_quality_kernel(q, flags, 0.8, False) == pytest.approx(1.0 - share)
    assert _window_quality_kernel(q[:0], flags[:0], 0.8, True) == 0.0


# -- the correction against the batch --------------------------------------------------


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("per_update", [1, 6])
def test_stream_equals_batch_correction(seed: int, per_update: int) -> None:
    t = with_artefacts(clean_beats(300, seed))
    batch = correct_beats_lipponen2019(t)
    w = stream(t, per_update).window(0.0, 1e9)
    np.testing.assert_allclose(w.t_s, batch.beat_t_s, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(w.flags, batch.flags)
    np.testing.assert_allclose(w.nn_ms[1:], batch.nn_ms[1:], rtol=1e-9)
    assert batch.counts == {"ectopic": 2, "missed": 2, "extra": 2, "long_short": 0}


@pytest.mark.parametrize("seed", range(6))
def test_stream_labels_agree_with_the_batch_classification(seed: int) -> None:
    # The batch repeats detection after correcting; the stream classifies once, like the
    # batch's classifier run on the input beats. Its thresholds come from the 91 newest
    # intervals rather than 91 centred ones, so a borderline long/short call may differ.
    t = with_artefacts(clean_beats(300, seed))
    expected = rr_artifacts_lipponen2019(np.diff(t) * 1000.0)
    injected = np.flatnonzero(np.isin(expected, [ECTOPIC, MISSED, EXTRA]))
    assert injected.size >= 6
    for per_update in (1, 6):
        labels = stream(t, per_update).interval_labels(0.0, 1e9)[1:]
        np.testing.assert_array_equal(labels[injected], expected[injected])
        assert np.mean(labels == expected) >= 0.98


def test_how_the_beats_arrive_does_not_change_the_result() -> None:
    t = with_artefacts(clean_beats(300, 3))
    ref = stream(t, 1).window(0.0, 1e9)
    for per_update in (2, 5, 7):
        w = stream(t, per_update).window(0.0, 1e9)
        np.testing.assert_array_equal(w.t_s, ref.t_s)
        np.testing.assert_array_equal(w.flags, ref.flags)


def test_each_artefact_is_corrected_where_it_happened() -> None:
    t = clean_beats(200, 4)
    missed = np.delete(t, 100)
    w = stream(missed, 6).window(0.0, 1e9)
    assert w.n_beats == t.size and w.flags[100] == MISSED and w.flags[101] == MISSED
    assert w.t_s[100] == pytest.approx(0.5 * (t[99] + t[101]), abs=1e-12)

    extra = np.insert(t, 100, t[99] + 0.3 * (t[100] - t[99]))
    w = stream(extra, 6).window(0.0, 1e9)
    np.testing.assert_array_equal(w.t_s, t)  # the extra beat is gone, the others stay
    assert w.flags[100] == EXTRA

    early = t.copy()
    early[100] -= 0.3 * (t[100] - t[99])
    w = stream(early, 6).window(0.0, 1e9)
    assert w.t_s[100] == pytest.approx(0.5 * (t[99] + t[101]), abs=1e-12)
    assert w.flags[100] == ECTOPIC and w.flags[101] == ECTOPIC
    assert not w.valid_diff[100:103].any()  # RMSSD skips the interpolated intervals
    assert w.valid_diff[103]


def test_a_long_hole_splits_the_series_instead_of_inventing_beats() -> None:
    t = clean_beats(120, 5)
    holed = np.concatenate([t[:60], t[70:]])  # 10 lost beats: 8.5 s without a pulse
    w = stream(holed, 6).window(0.0, 1e9)
    assert w.n_beats == holed.size  # nothing filled in
    assert w.segment[60] == w.segment[59] + 1 and math.isnan(w.nn_ms[60])
    assert np.nanmax(w.nn_ms) < 1000.0


def test_marked_gaps_and_measured_intervals() -> None:
    fixed = StreamingBeatCorrector(600.0, 2000)
    rr = np.full(40, 900.0)
    first = T0 + np.cumsum(rr) / 1000.0
    fixed.add_measured(first, rr)
    fixed.mark_gap()
    second = first[-1] + 20.0 + np.cumsum(rr) / 1000.0
    accepted = fixed.add_measured(second, rr)
    np.testing.assert_array_equal(accepted, second)
    fixed.update()
    w = fixed.window(0.0, 1e9)
    start = int(np.searchsorted(w.t_s, second[0]))
    assert w.segment[start] != w.segment[start - 1]
    assert w.nn_ms[start] == 900.0  # a strap measured this interval before the gap ended
    assert not w.valid_diff[start]  # but no difference is taken across the gap
    # a beat not after the newest is dropped
    assert fixed.add_measured(np.array([second[-1]]), np.array([900.0])).size == 0


def test_an_interval_still_implausible_is_rejected() -> None:
    rr = np.full(60, 800.0)
    rr[30] = 250.0  # too short to be a heart beat, and no correction makes it one
    fixed = StreamingBeatCorrector(600.0, 2000)
    fixed.add_measured(T0 + np.cumsum(rr) / 1000.0, rr)
    fixed.update()
    w = fixed.window(0.0, 1e9)
    assert np.isnan(w.nn_ms).sum() >= 1 and np.nanmin(w.nn_ms) >= 300.0


def test_memory_stays_bounded_over_hours() -> None:
    fixed = StreamingBeatCorrector(300.0, 400)
    t = clean_beats(3 * 4200, 6)  # three hours at 70 bpm
    nan = np.full(t.size, np.nan)
    raw_rows = fixed._raw.shape[1]
    for i in range(0, t.size, 6):
        fixed.add_detected(t[i : i + 6], nan[i : i + 6], nan[i : i + 6], nan[i : i + 6])
        _, lo, hi, _ = fixed.select(
            float(t[min(i + 5, t.size - 1)]), 0.0, 0.0, 1e9, 0.8, pulses=False
        )
        assert hi - lo <= 400 and fixed.n_detected <= 400
    assert fixed._raw.shape[1] == raw_rows  # never reallocated
    w = fixed.window(t[-1] - 60.0, t[-1])
    np.testing.assert_allclose(w.t_s, t[t >= t[-1] - 60.0], atol=1e-12)
