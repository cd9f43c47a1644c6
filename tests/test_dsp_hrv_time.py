"""Time-domain HRV kernels against plain NumPy formulas, with gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from heartsong.dsp.hrv_time import (
    hrv_mean_hr,
    hrv_mean_nn,
    hrv_pnn50,
    hrv_rmssd,
    hrv_sdnn,
    hrv_time,
    valid_diff_from_segments,
)
from heartsong.errors import InputDataError


def _nn(seed: int, n: int = 300, mean_ms: float = 850.0, sd_ms: float = 40.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return mean_ms + sd_ms * rng.standard_normal(n)


@pytest.mark.parametrize("seed", range(4))
def test_kernels_match_numpy_formulas(seed: int) -> None:
    nn = _nn(seed)
    diff = np.diff(nn)
    assert hrv_mean_nn(nn) == pytest.approx(np.mean(nn), rel=1e-12)
    assert hrv_mean_hr(nn) == pytest.approx(60000.0 / np.mean(nn), rel=1e-12)
    assert hrv_sdnn(nn) == pytest.approx(np.std(nn, ddof=1), rel=1e-12)
    assert hrv_rmssd(nn) == pytest.approx(np.sqrt(np.mean(diff**2)), rel=1e-12)
    assert hrv_pnn50(nn) == pytest.approx(100.0 * np.mean(np.abs(diff) > 50.0), rel=1e-12)


nn_arrays = arrays(
    np.float64,
    st.integers(2, 60),
    elements=st.floats(300.0, 2000.0, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(nn=nn_arrays, data=st.data())
def test_masked_differences_match_numpy(nn: np.ndarray, data: st.DataObject) -> None:
    mask = np.array(
        data.draw(st.lists(st.booleans(), min_size=nn.size - 1, max_size=nn.size - 1)),
        dtype=np.bool_,
    )
    diffs = np.diff(nn)[mask]
    rmssd = hrv_rmssd(nn, valid_diff=mask)
    pnn50 = hrv_pnn50(nn, valid_diff=mask)
    if diffs.size == 0:
        assert math.isnan(rmssd) and math.isnan(pnn50)
    else:
        assert rmssd == pytest.approx(np.sqrt(np.mean(diffs**2)), rel=1e-9, abs=1e-9)
        assert pnn50 == pytest.approx(100.0 * np.mean(np.abs(diffs) > 50.0), rel=1e-12)


def test_differences_are_not_taken_across_a_gap() -> None:
    before = _nn(1, 100, mean_ms=800.0, sd_ms=10.0)
    after = _nn(2, 100, mean_ms=1100.0, sd_ms=10.0)  # a 300 ms jump across the gap
    nn = np.concatenate([before, after])
    segment = np.repeat([0, 1], 100)
    joined = np.concatenate([np.diff(before), np.diff(after)])
    expected = np.sqrt(np.mean(joined**2))
    assert hrv_rmssd(nn, segment_id=segment) == pytest.approx(expected, rel=1e-12)
    mask = valid_diff_from_segments(segment)
    assert mask.shape == (199,) and not mask[99] and mask.sum() == 198
    assert hrv_rmssd(nn, valid_diff=mask) == pytest.approx(expected, rel=1e-12)
    # Bridging the gap would count the jump as one huge successive difference.
    assert hrv_rmssd(nn) > expected * 1.2
    assert hrv_pnn50(nn, segment_id=segment) < hrv_pnn50(nn)
    # SDNN takes no differences: the gap does not change it.
    assert hrv_time(nn, segment_id=segment).sdnn_ms == pytest.approx(np.std(nn, ddof=1))


def test_pnn50_counts_only_differences_above_50_ms() -> None:
    nn = np.array([800.0, 850.0, 900.1, 900.0, 849.9])  # diffs 50, 50.1, -0.1, -50.1
    assert hrv_pnn50(nn) == pytest.approx(50.0)


def test_hrv_time_agrees_with_single_functions() -> None:
    nn = _nn(5)
    segment = np.repeat([0, 1, 2], 100)
    result = hrv_time(nn, segment_id=segment)
    assert result.mean_nn_ms == pytest.approx(hrv_mean_nn(nn))
    assert result.mean_hr_bpm == pytest.approx(hrv_mean_hr(nn))
    assert result.sdnn_ms == pytest.approx(hrv_sdnn(nn))
    assert result.rmssd_ms == pytest.approx(hrv_rmssd(nn, segment_id=segment))
    assert result.pnn50_pct == pytest.approx(hrv_pnn50(nn, segment_id=segment))
    assert (result.n_intervals, result.n_diffs) == (300, 297)


def test_faster_heart_shorter_mean_nn_and_smoother_series_lower_rmssd() -> None:
    slow, fast = _nn(6, mean_ms=1000.0), _nn(6, mean_ms=600.0)
    assert hrv_mean_nn(fast) < hrv_mean_nn(slow)
    assert hrv_mean_hr(fast) > hrv_mean_hr(slow)
    nn = _nn(7)
    smooth = np.convolve(nn, np.ones(5) / 5, mode="valid")
    assert hrv_rmssd(smooth) < hrv_rmssd(nn)


def test_too_little_data_gives_nan() -> None:
    assert math.isnan(hrv_mean_nn(np.zeros(0)))
    assert math.isnan(hrv_sdnn(np.array([800.0])))
    assert math.isnan(hrv_rmssd(np.array([800.0])))
    assert math.isnan(hrv_rmssd(np.array([800.0, 810.0]), segment_id=[0, 1]))
    result = hrv_time(np.array([800.0]))
    assert result.mean_hr_bpm == pytest.approx(75.0) and result.n_diffs == 0


def test_bad_input_raises_naming_the_field() -> None:
    with pytest.raises(InputDataError, match="nn_ms"):
        hrv_rmssd(np.array([800.0, -1.0]))
    with pytest.raises(InputDataError, match="nn_ms"):
        hrv_sdnn(np.array([800.0, np.nan]))
    with pytest.raises(InputDataError, match="valid_diff"):
        hrv_rmssd(np.array([800.0, 810.0, 820.0]), valid_diff=np.array([True]))
    with pytest.raises(InputDataError, match="segment_id"):
        hrv_pnn50(np.array([800.0, 810.0]), segment_id=[0])
    with pytest.raises(InputDataError, match="valid_diff"):
        hrv_time(np.array([800.0, 810.0]), valid_diff=np.array([True]), segment_id=[0, 0])
