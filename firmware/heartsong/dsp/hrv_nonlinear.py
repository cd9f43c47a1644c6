"""Poincare-plot heart-rate variability: SD1 and SD2.

The Poincare plot puts every NN interval against the next one, ``(NN_i, NN_i+1)``.
Brennan, Palaniswami & Kamen (2001) showed that its two standard descriptors are
linear statistics of the series:

* SD1 (ms): the spread perpendicular to the line of identity, the sample standard
  deviation of ``(NN_i+1 - NN_i) / sqrt(2)``; it equals ``SDSD / sqrt(2)``, a short-term
  (beat-to-beat) measure close to ``RMSSD / sqrt(2)``;
* SD2 (ms): the spread along the line of identity, the sample standard deviation of
  ``(NN_i+1 + NN_i) / sqrt(2)``; ``SD2^2 = 2 SDNN^2 - SD1^2`` without gaps, a longer-term
  measure.

Only pairs of intervals that really follow each other enter (a ``valid_diff`` mask, as in
:mod:`heartsong.dsp.hrv_time`), so a gap or a rejected beat never creates a point. Both
use ``ddof = 1`` over the pairs, as NeuroKit2's ``hrv_nonlinear`` does, so the values agree
with it on series without gaps.

Reference: Brennan M, Palaniswami M, Kamen P (2001) Do existing measures of Poincare plot
geometry reflect nonlinear features of heart rate variability? IEEE Trans Biomed Eng
48(11):1342-1347.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = ["HrvPoincare", "hrv_poincare"]

BoolArray = npt.NDArray[np.bool_]

_SQRT_HALF = math.sqrt(0.5)


@dataclass(frozen=True, slots=True)
class HrvPoincare:
    """SD1 and SD2 of one NN series, in ms; NaN with fewer than 2 valid pairs.

    Attributes
    ----------
    sd1_ms, sd2_ms:
        See the module docstring (ms).
    n_pairs:
        Number of successive pairs used.
    """

    sd1_ms: float
    sd2_ms: float
    n_pairs: int


@njit(cache=True, nogil=True)
def _poincare_kernel(nn: FloatArray, valid_diff: BoolArray) -> tuple[float, float, int]:
    """Sample standard deviations of the rotated pairs ``(b - a, b + a) / sqrt(2)``.

    Two passes (mean, then squared deviations) over the pairs allowed by ``valid_diff``
    (``valid_diff[i]`` allows the pair ``nn[i], nn[i + 1]``).
    """
    n_pairs = 0
    sum_d = 0.0
    sum_s = 0.0
    for i in range(nn.shape[0] - 1):
        if valid_diff[i]:
            sum_d += nn[i + 1] - nn[i]
            sum_s += nn[i + 1] + nn[i]
            n_pairs += 1
    if n_pairs < 2:
        return math.nan, math.nan, n_pairs
    mean_d = sum_d / n_pairs
    mean_s = sum_s / n_pairs
    acc_d = 0.0
    acc_s = 0.0
    for i in range(nn.shape[0] - 1):
        if valid_diff[i]:
            dd = nn[i + 1] - nn[i] - mean_d
            ds = nn[i + 1] + nn[i] - mean_s
            acc_d += dd * dd
            acc_s += ds * ds
    sd1 = _SQRT_HALF * math.sqrt(acc_d / (n_pairs - 1))
    sd2 = _SQRT_HALF * math.sqrt(acc_s / (n_pairs - 1))
    return sd1, sd2, n_pairs


def hrv_poincare(nn_ms: npt.ArrayLike, valid_diff: npt.ArrayLike | None = None) -> HrvPoincare:
    """Compute SD1 and SD2 of the Poincare plot (Brennan et al. 2001).

    Parameters
    ----------
    nn_ms:
        NN intervals in ms, in time order, finite and positive.
    valid_diff:
        Optional boolean mask of length ``n - 1``: ``valid_diff[i]`` allows the pair
        ``(nn[i], nn[i + 1])`` (False across a gap or a rejected beat). Default: all pairs.

    Returns
    -------
    HrvPoincare
        SD1 and SD2 in ms (NaN with fewer than 2 pairs) and the number of pairs used.
    """
    nn = np.ascontiguousarray(nn_ms, dtype=np.float64)
    if nn.ndim != 1:
        raise InputDataError("nn_ms", "a 1-D array of NN intervals in ms", nn.shape)
    if nn.size and not (np.all(np.isfinite(nn)) and np.all(nn > 0.0)):
        raise InputDataError("nn_ms", "finite, positive NN intervals in ms")
    n_diff = max(nn.shape[0] - 1, 0)
    if valid_diff is None:
        mask = np.ones(n_diff, dtype=np.bool_)
    else:
        mask = np.ascontiguousarray(valid_diff)
        if mask.dtype != np.bool_ or mask.shape != (n_diff,):
            raise InputDataError(
                "valid_diff",
                f"a boolean array of shape ({n_diff},), one per successive pair",
                (mask.dtype, mask.shape),
            )
    sd1, sd2, n_pairs = _poincare_kernel(nn, mask)
    return HrvPoincare(sd1_ms=float(sd1), sd2_ms=float(sd2), n_pairs=int(n_pairs))
