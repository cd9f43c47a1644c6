"""Lipponen & Tarvainen (2019) artefact detection and correction: kernels vs NumPy, cases."""

from __future__ import annotations

import numpy as np
import pytest

from heartsong.dsp.artifacts import (
    ARTIFACT_NAMES,
    _classify_kernel,
    _correct_once_kernel,
    _rolling_median_kernel,
    _rolling_qd_kernel,
    correct_beats_lipponen2019,
    rr_artifacts_lipponen2019,
)
from heartsong.errors import InputDataError

ALPHA, C1, C2 = 5.2, 0.13, 0.17


def rr_series(n: int = 300, seed: int = 0) -> np.ndarray:
    """RR intervals in ms with breathing-like variation and noise."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    return 800.0 + 40.0 * np.sin(2 * np.pi * k / 4.5) + 10.0 * rng.standard_normal(n)


def beat_times(rr_ms: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(rr_ms)]) / 1000.0


# -- plain NumPy references of the kernels ---------------------------------------------


def centred(i: int, n: int, width: int) -> slice:
    return slice(max(0, i - (width - 1) // 2), min(n, i + width // 2 + 1))


def qd_reference(x: np.ndarray, width: int) -> np.ndarray:
    return np.array(
        [
            0.5 * np.subtract(*np.quantile(np.abs(x[centred(i, x.size, width)]), [0.75, 0.25]))
            for i in range(x.size)
        ]
    )


def median_reference(x: np.ndarray, width: int) -> np.ndarray:
    return np.array([np.median(x[centred(i, x.size, width)]) for i in range(x.size)])


def classify_reference(rr: np.ndarray) -> np.ndarray:
    """The classification rules of the module docstring, written out plainly."""
    n = rr.size
    med = median_reference(rr, 11)
    drr = np.concatenate([[rr[0] - med[0]], np.diff(rr)])
    th1 = ALPHA * qd_reference(drr, 91)
    mrr = rr - med
    mrr = np.where(mrr < 0, 2 * mrr, mrr)
    th2 = ALPHA * qd_reference(mrr, 91)
    drr = np.where(th1 > 0, drr / np.where(th1 > 0, th1, 1), 0.0)
    mrr = np.where(th2 > 0, mrr / np.where(th2 > 0, th2, 1), 0.0)
    padded = np.pad(drr, 2, mode="reflect")
    prev, nxt, nxt2 = padded[1:-3], padded[3:-1], padded[4:]
    s12 = np.where(drr > 0, np.maximum(prev, nxt), np.where(drr < 0, np.minimum(prev, nxt), 0))
    s22 = np.where(drr >= 0, np.minimum(nxt, nxt2), np.maximum(nxt, nxt2))
    ectopic = ((drr > 1) & (s12 < -C1 * drr - C2)) | ((drr < -1) & (s12 > -C1 * drr + C2))
    labels = np.zeros(n, dtype=np.int8)
    j = 0
    while j < n:
        if ectopic[j]:
            labels[j] = 1
            j += 2
            continue
        if abs(drr[j]) <= 1 or (j + 1 < n and ectopic[j + 1]):
            j += 1
            continue
        last = j + 1 if j + 2 < n and abs(drr[j + 1]) < abs(drr[j + 2]) else j
        k = j
        while k <= last:
            long_ = drr[k] > 1 and s22[k] < -1
            short = drr[k] < -1 and s22[k] > 1
            if not (long_ or short or abs(mrr[k]) > 3):
                k += 1
                continue
            parts = round(rr[k] / med[k])
            if short and k + 1 < n and abs(rr[k] + rr[k + 1] - med[k]) < th2[k]:
                labels[k] = 3
                k += 2
                continue
            labels[k] = 2 if long_ and parts >= 2 and abs(rr[k] / parts - med[k]) < th2[k] else 4
            k += 1
        j = max(j + 1, k)
    return labels


@pytest.mark.parametrize("width", [3, 11, 91, 92])
@pytest.mark.parametrize("ties", [False, True])
def test_rolling_kernels_match_numpy(width: int, ties: bool) -> None:
    x = np.random.default_rng(width).normal(size=200)
    if ties:  # RR intervals from a 1-ms clock repeat often
        x = np.round(x * 3.0)
    np.testing.assert_allclose(_rolling_qd_kernel(x, width), qd_reference(x, width), atol=1e-12)
    np.testing.assert_allclose(
        _rolling_median_kernel(x, width), median_reference(x, width), atol=1e-12
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classify_kernel_matches_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rr = rr_series(400, seed)
    # Sprinkle every kind of artefact.
    for pos in rng.choice(np.arange(20, 380), size=12, replace=False):
        kind = rng.integers(4)
        if kind == 0:
            rr[pos] *= 2.0
        elif kind == 1:
            rr[pos], rr[pos + 1] = rr[pos] * 0.6, rr[pos + 1] * 1.4
        elif kind == 2:
            rr[pos] *= 0.45
        else:
            rr[pos] *= 1.3
    got = _classify_kernel(rr, ALPHA, C1, C2, 91, 11)
    np.testing.assert_array_equal(got, classify_reference(rr))
    assert np.count_nonzero(got) >= 8


def test_clean_series_has_no_artifacts() -> None:
    rr = rr_series()
    assert np.count_nonzero(rr_artifacts_lipponen2019(rr)) == 0
    result = correct_beats_lipponen2019(beat_times(rr))
    assert result.artifact_pct == 0.0
    np.testing.assert_allclose(result.beat_t_s, beat_times(rr))
    np.testing.assert_allclose(result.nn_ms[1:], rr)
    assert np.isnan(result.nn_ms[0]) and result.flags[0] == -1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missed", "missed"),
        ("missed2", "missed"),
        ("extra", "extra"),
        ("early", "ectopic"),
        ("late", "ectopic"),
    ],
)
def test_each_artifact_is_classified_and_repaired(name: str, expected: str) -> None:
    rr = rr_series()
    true_t = beat_times(rr)
    t = true_t.copy()
    if name == "missed":
        t = np.delete(t, 100)
    elif name == "missed2":
        t = np.delete(t, [100, 101])
    elif name == "extra":
        t = np.sort(np.append(t, t[100] + 0.3))
    elif name == "early":
        t[100] -= 0.25
    else:
        t[100] += 0.2
    result = correct_beats_lipponen2019(t)
    assert result.counts[expected] == 1
    assert sum(result.counts.values()) == 1
    assert result.beat_t_s.size == true_t.size  # beats inserted / removed as needed
    # The repaired beats are within the breathing variation of the truth (+-40 ms).
    assert np.max(np.abs(result.beat_t_s - true_t)) < 0.045
    assert np.count_nonzero(result.flags > 0) in (1, 2, 3)
    assert result.artifact_pct == pytest.approx(100.0 / (t.size - 1))
    # The corrected intervals differ from the local median by less than 10 %.
    changed = result.flags > 0
    assert np.all(np.abs(result.nn_ms[changed] - 800.0) < 80.0)


def test_long_hole_becomes_a_gap_not_invented_beats() -> None:
    rr = rr_series()
    t = np.delete(beat_times(rr), np.arange(100, 106))  # six beats lost
    result = correct_beats_lipponen2019(t)
    assert result.beat_t_s.size == t.size  # nothing invented
    assert np.unique(result.segment).size == 2
    starts = np.flatnonzero(np.diff(result.segment)) + 1
    assert np.isnan(result.nn_ms[starts]).all()
    assert np.nanmax(result.nn_ms) < 1000.0  # no interval spans the hole


def test_segments_are_corrected_apart_and_never_joined() -> None:
    rr = rr_series(200)
    t = beat_times(rr)
    seg = (t > t[100]).astype(np.int64)
    t[150] -= 0.25  # an early beat in the second segment
    result = correct_beats_lipponen2019(t, seg)
    assert result.counts["ectopic"] == 1
    assert np.unique(result.segment).size == 2
    first_of_second = int(np.flatnonzero(result.segment == 1)[0])
    assert np.isnan(result.nn_ms[first_of_second])
    _, nn, valid, flags = result.nn_series()
    assert nn.size == t.size - 2  # one interval lost at the segment boundary
    assert not valid[first_of_second - 2]  # no difference across the boundary
    assert set(np.unique(flags)) <= set(range(len(ARTIFACT_NAMES)))


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InputDataError, match="beat_t_s"):
        correct_beats_lipponen2019(np.array([0.0, 1.0, 0.5]))
    with pytest.raises(InputDataError, match="segment"):
        correct_beats_lipponen2019(np.array([0.0, 1.0]), np.array([0]))
    with pytest.raises(InputDataError, match="rr_ms"):
        rr_artifacts_lipponen2019(np.array([800.0, -1.0]))
    empty = correct_beats_lipponen2019(np.zeros(0))
    assert empty.beat_t_s.size == 0 and empty.artifact_pct == 0.0


def correct_once_reference(
    t: np.ndarray, flags: np.ndarray, labels: np.ndarray, med: np.ndarray, max_ms: float
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Plain Python/NumPy: one round of moves, removals and insertions (module docs)."""
    rr = np.diff(t) * 1000.0
    moved, flags = t.copy(), flags.copy()
    for j, lab in enumerate(labels.tolist()):
        if lab == 1:
            k = j
        elif lab == 4:
            before = abs(rr[j - 1] - med[j - 1]) if j > 0 else -1.0
            after = abs(rr[j + 1] - med[j + 1]) if j + 1 < rr.size else -1.0
            k = j + 1 if after >= before else j
        else:
            continue
        if 0 < k < t.size - 1:
            moved[k] = 0.5 * (t[k - 1] + t[k + 1])
            flags[k] = flags[k + 1] = lab
    out_t, out_f, splits = [moved[0]], [int(flags[0])], []
    j = 0
    while j < rr.size:
        lab, start, end = int(labels[j]), moved[j], moved[j + 1]
        if lab == 3 and j + 1 < rr.size:
            out_t.append(moved[j + 2])
            out_f.append(3)
            j += 2
            continue
        if lab == 2:
            span = (end - start) * 1000.0
            parts = max(2, round(span / med[j]))
            if parts <= 3 and span / parts <= max_ms:
                out_t += [start + (end - start) / parts * p for p in range(1, parts)]
                out_f += [2] * (parts - 1)
            else:
                splits.append(len(out_t))
            out_t.append(end)
            out_f.append(2)
            j += 1
            continue
        out_t.append(end)
        out_f.append(int(flags[j + 1]))
        j += 1
    return np.array(out_t), np.array(out_f, dtype=np.int8), splits


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_correct_once_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rr = rr_series(120, seed)
    labels = np.zeros(rr.size, dtype=np.int8)
    for pos in rng.choice(np.arange(2, 115, 3), size=20, replace=False):
        labels[pos] = rng.integers(1, 5)
    rr[labels == 2] *= rng.choice([2.0, 3.0, 5.0], size=int(np.count_nonzero(labels == 2)))
    t = beat_times(rr)
    flags = rng.integers(0, 2, size=t.size).astype(np.int8)
    med = np.full(rr.size, 800.0)
    got_t, got_f, split = _correct_once_kernel(t, flags, labels, med, 2000.0, 2)
    ref_t, ref_f, splits = correct_once_reference(t, flags, labels, med, 2000.0)
    np.testing.assert_array_equal(got_t, ref_t)
    np.testing.assert_array_equal(got_f, ref_f)
    assert np.flatnonzero(split).tolist() == splits
    assert np.all(np.diff(got_t) > 0.0)
