"""Time-domain heart-rate variability from NN intervals.

Task Force of the European Society of Cardiology and the North American Society of Pacing
and Electrophysiology (1996). "Heart rate variability: standards of measurement,
physiological interpretation and clinical use". Circulation 93(5):1043-1065.

* mean NN (ms) and mean heart rate ``60000 / mean NN`` (bpm, beats per minute of the
  window, i.e. the reciprocal of the mean interval rather than the mean of instantaneous
  rates);
* SDNN (ms): sample standard deviation of the NN intervals (``ddof = 1``);
* RMSSD (ms): root mean square of successive differences;
* pNN50 (%): share of successive differences larger than 50 ms in absolute value.

Successive differences are only taken between intervals that really follow each other:
a ``valid_diff`` mask (``valid_diff[i]`` allows ``nn[i + 1] - nn[i]``) or a segment id per
interval (differences only inside a segment) leaves out the pairs separated by a gap or a
rejected beat. The Task Force divides NN50 by the number of intervals; with gaps the only
consistent denominator is the number of differences actually taken, which is used here
(the two differ by one part in N without gaps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = [
    "HrvTime",
    "hrv_mean_hr",
    "hrv_mean_nn",
    "hrv_pnn50",
    "hrv_rmssd",
    "hrv_sdnn",
    "hrv_time",
    "valid_diff_from_segments",
]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

#: Threshold of pNN50, in ms.
PNN_THRESHOLD_MS = 50.0


@njit(cache=True, nogil=True)
def _mean_kernel(nn: FloatArray) -> float:
    """Arithmetic mean; NaN when empty."""
    n = nn.shape[0]
    if n == 0:
        return math.nan
    acc = 0.0
    for i in range(n):
        acc += nn[i]
    mean: float = acc / n
    return mean


@njit(cache=True, nogil=True)
def _sdnn_kernel(nn: FloatArray) -> float:
    """Sample standard deviation (ddof=1), two-pass; NaN with fewer than 2 values."""
    n = nn.shape[0]
    if n < 2:
        return math.nan
    mean = _mean_kernel(nn)
    acc = 0.0
    for i in range(n):
        d = nn[i] - mean
        acc += d * d
    return math.sqrt(acc / (n - 1))


@njit(cache=True, nogil=True)
def _rmssd_kernel(nn: FloatArray, valid_diff: BoolArray) -> float:
    """Root mean square of the allowed successive differences; NaN when there are none."""
    acc = 0.0
    count = 0
    for i in range(nn.shape[0] - 1):
        if valid_diff[i]:
            d = nn[i + 1] - nn[i]
            acc += d * d
            count += 1
    if count == 0:
        return math.nan
    return math.sqrt(acc / count)


@njit(cache=True, nogil=True)
def _pnn_kernel(nn: FloatArray, valid_diff: BoolArray, threshold: float) -> float:
    """Percentage of allowed successive differences above ``threshold``; NaN when none."""
    above = 0
    count = 0
    for i in range(nn.shape[0] - 1):
        if valid_diff[i]:
            count += 1
            if abs(nn[i + 1] - nn[i]) > threshold:
                above += 1
    if count == 0:
        return math.nan
    return 100.0 * above / count


@dataclass(frozen=True, slots=True)
class HrvTime:
    """Time-domain HRV of one set of NN intervals; NaN where not defined.

    Attributes
    ----------
    mean_nn_ms, mean_hr_bpm, sdnn_ms, rmssd_ms, pnn50_pct:
        As in the module docstring (ms, beats per minute, ms, ms, percent).
    n_intervals:
        Number of NN intervals used.
    n_diffs:
        Number of successive differences used by RMSSD and pNN50.
    """

    mean_nn_ms: float
    mean_hr_bpm: float
    sdnn_ms: float
    rmssd_ms: float
    pnn50_pct: float
    n_intervals: int
    n_diffs: int


def _check_nn(nn_ms: FloatArray) -> FloatArray:
    nn = np.ascontiguousarray(nn_ms, dtype=np.float64)
    if nn.ndim != 1:
        raise InputDataError("nn_ms", "a 1-D array of NN intervals in ms", nn.shape)
    if nn.size and not (np.all(np.isfinite(nn)) and np.all(nn > 0.0)):
        raise InputDataError("nn_ms", "finite, positive NN intervals in ms")
    return nn


def valid_diff_from_segments(segment_id: npt.ArrayLike) -> BoolArray:
    """Return the successive-difference mask for intervals labelled by segment.

    Parameters
    ----------
    segment_id:
        One integer per interval; intervals of one unbroken run share an id.

    Returns
    -------
    BoolArray
        Length ``n - 1`` (0 when ``n == 0``); True where interval ``i + 1`` follows
        interval ``i`` in the same segment.
    """
    seg = np.asarray(segment_id)
    if seg.ndim != 1:
        raise InputDataError("segment_id", "a 1-D array, one id per interval", seg.shape)
    if seg.size < 2:
        return np.zeros(0, dtype=np.bool_)
    mask: BoolArray = seg[1:] == seg[:-1]
    return mask


def _diff_mask(
    n: int, valid_diff: npt.ArrayLike | None, segment_id: npt.ArrayLike | None
) -> BoolArray:
    n_diff = max(n - 1, 0)
    if valid_diff is not None and segment_id is not None:
        raise InputDataError("valid_diff", "not given together with segment_id")
    if segment_id is not None:
        if np.shape(segment_id) != (n,):
            raise InputDataError(
                "segment_id", f"one id per interval, shape ({n},)", np.shape(segment_id)
            )
        return valid_diff_from_segments(segment_id)
    if valid_diff is None:
        return np.ones(n_diff, dtype=np.bool_)
    mask = np.ascontiguousarray(valid_diff)
    if mask.dtype != np.bool_ or mask.shape != (n_diff,):
        raise InputDataError(
            "valid_diff",
            f"a boolean array of shape ({n_diff},), one per successive pair",
            (mask.dtype, mask.shape),
        )
    return mask


def hrv_mean_nn(nn_ms: FloatArray) -> float:
    """Return the mean NN interval in ms (NaN when empty)."""
    return float(_mean_kernel(_check_nn(nn_ms)))


def hrv_mean_hr(nn_ms: FloatArray) -> float:
    """Return the mean heart rate ``60000 / mean NN`` in beats per minute (NaN when empty)."""
    return 60000.0 / hrv_mean_nn(nn_ms)


def hrv_sdnn(nn_ms: FloatArray) -> float:
    """Return SDNN, the sample standard deviation (ddof=1) of NN intervals, in ms.

    Gaps do not matter to SDNN (it takes no differences). NaN with fewer than 2 intervals.
    """
    return float(_sdnn_kernel(_check_nn(nn_ms)))


def hrv_rmssd(
    nn_ms: FloatArray,
    valid_diff: npt.ArrayLike | None = None,
    segment_id: npt.ArrayLike | None = None,
) -> float:
    """Return RMSSD, the root mean square of successive NN differences, in ms.

    Parameters
    ----------
    nn_ms:
        NN intervals in ms, in time order.
    valid_diff:
        Optional boolean mask of length ``n - 1``: ``valid_diff[i]`` allows the difference
        ``nn[i + 1] - nn[i]`` (False across a gap).
    segment_id:
        Alternative to ``valid_diff``: one id per interval; only intervals of the same
        segment are differenced.

    Returns
    -------
    float
        RMSSD in ms (Task Force 1996); NaN when no difference is allowed.
    """
    nn = _check_nn(nn_ms)
    return float(_rmssd_kernel(nn, _diff_mask(nn.shape[0], valid_diff, segment_id)))


def hrv_pnn50(
    nn_ms: FloatArray,
    valid_diff: npt.ArrayLike | None = None,
    segment_id: npt.ArrayLike | None = None,
) -> float:
    """Return pNN50, the percentage of successive differences over 50 ms, in %.

    Parameters are as for :func:`hrv_rmssd`. The denominator is the number of allowed
    differences (see the module docstring). NaN when no difference is allowed.
    """
    nn = _check_nn(nn_ms)
    mask = _diff_mask(nn.shape[0], valid_diff, segment_id)
    return float(_pnn_kernel(nn, mask, PNN_THRESHOLD_MS))


def hrv_time(
    nn_ms: FloatArray,
    valid_diff: npt.ArrayLike | None = None,
    segment_id: npt.ArrayLike | None = None,
) -> HrvTime:
    """Compute all time-domain HRV measures of a set of NN intervals at once.

    Parameters are as for :func:`hrv_rmssd`; see :class:`HrvTime` for the result.
    """
    nn = _check_nn(nn_ms)
    mask = _diff_mask(nn.shape[0], valid_diff, segment_id)
    mean_nn = float(_mean_kernel(nn))
    return HrvTime(
        mean_nn_ms=mean_nn,
        mean_hr_bpm=60000.0 / mean_nn,
        sdnn_ms=float(_sdnn_kernel(nn)),
        rmssd_ms=float(_rmssd_kernel(nn, mask)),
        pnn50_pct=float(_pnn_kernel(nn, mask, PNN_THRESHOLD_MS)),
        n_intervals=int(nn.shape[0]),
        n_diffs=int(np.count_nonzero(mask)),
    )
