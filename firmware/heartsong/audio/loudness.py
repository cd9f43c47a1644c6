"""Integrated loudness after ITU-R BS.1770-4: K-weighting, mean square, gating, LUFS.

Used to loudness-match the soundscape presets (``heartsong.audio.calibration``) so that
switching between them does not jump in level. Runs offline (never in the callback).

Method (ITU-R BS.1770-4, 2015, "Algorithms to measure audio programme loudness and
true-peak audio level", Annex 1):

1. K-weighting: each channel through two biquads, a high shelf of about +4 dB above
   1.5 kHz (the head's acoustic effect) and the "RLB" high-pass near 38 Hz. The standard
   gives their coefficients at 48 kHz (Tables 1 and 2); at another rate the analogue
   prototype is recovered from them by the inverse bilinear transform and discretised again
   at that rate (Oppenheim & Schafer, *Discrete-Time Signal Processing*, 3rd ed., 7.1.2).
2. Mean square ``z`` of each channel over 400 ms blocks overlapping by 75 % (100 ms step).
3. Block loudness ``l = -0.691 + 10 log10(sum_i G_i z_i)`` with channel weights ``G = 1``
   for left and right.
4. Gating: drop blocks below -70 LUFS (absolute gate), then those more than 10 LU below
   the loudness of the remaining ones (relative gate); the integrated loudness is the
   loudness of the mean square of the blocks left.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.errors import InputDataError

__all__ = [
    "ABSOLUTE_GATE_LUFS",
    "BLOCK_S",
    "RELATIVE_GATE_LU",
    "STEP_S",
    "block_loudness",
    "integrated_loudness",
    "k_weighting",
    "k_weighting_coefficients",
]

F64Array = npt.NDArray[np.float64]

#: Gating block length and step in seconds (400 ms, 75 % overlap).
BLOCK_S: Final = 0.4
STEP_S: Final = 0.1
#: Absolute gate in LUFS and relative gate in LU below the ungated loudness.
ABSOLUTE_GATE_LUFS: Final = -70.0
RELATIVE_GATE_LU: Final = -10.0
#: The constant of the loudness formula, in dB.
_OFFSET_DB: Final = -0.691

# ITU-R BS.1770-4 Table 1 (pre-filter, high shelf) and Table 2 (RLB high-pass) at 48 kHz.
_FS_REF: Final = 48000.0
_SHELF_B: Final = (1.53512485958697, -2.69169618940638, 1.19839281085285)
_SHELF_A: Final = (1.0, -1.69065929318241, 0.73248077421585)
_RLB_B: Final = (1.0, -2.0, 1.0)
_RLB_A: Final = (1.0, -1.99004745483398, 0.99007225036621)

Biquad = tuple[tuple[float, float, float], tuple[float, float, float]]


def _rebilinear(b: tuple[float, ...], a: tuple[float, ...], fs_hz: float) -> Biquad:
    """Move a 48 kHz biquad to ``fs_hz``: inverse bilinear to s, then bilinear at the new rate.

    With ``z^-1 = (k - s)/(k + s)``, ``k = 2 fs``, a numerator ``c0 + c1 z^-1 + c2 z^-2``
    becomes ``(c0 - c1 + c2) s**2 + 2k (c0 - c2) s + k**2 (c0 + c1 + c2)`` over
    ``(k + s)**2``; the forward transform with ``s = k' (1 - z^-1)/(1 + z^-1)`` maps
    ``B2 s**2 + B1 s + B0`` to ``(B2 k'^2 + B1 k' + B0) + 2 (B0 - B2 k'^2) z^-1 +
    (B2 k'^2 - B1 k' + B0) z^-2``.
    """
    k = 2.0 * _FS_REF
    kn = 2.0 * fs_hz

    def to_s(c: tuple[float, ...]) -> tuple[float, float, float]:
        return (k * k * (c[0] + c[1] + c[2]), 2.0 * k * (c[0] - c[2]), c[0] - c[1] + c[2])

    def to_z(s0: float, s1: float, s2: float) -> tuple[float, float, float]:
        return (
            s2 * kn * kn + s1 * kn + s0,
            2.0 * (s0 - s2 * kn * kn),
            s2 * kn * kn - s1 * kn + s0,
        )

    nb = to_z(*to_s(b))
    na = to_z(*to_s(a))
    return (
        (nb[0] / na[0], nb[1] / na[0], nb[2] / na[0]),
        (1.0, na[1] / na[0], na[2] / na[0]),
    )


def k_weighting_coefficients(fs_hz: float) -> tuple[Biquad, Biquad]:
    """The two K-weighting biquads ``((b, a) shelf, (b, a) high-pass)`` at ``fs_hz``.

    At 48 kHz these are exactly the coefficients of BS.1770-4 Tables 1 and 2.

    Raises
    ------
    InputDataError
        ``fs_hz`` not a rate from 8 to 384 kHz.
    """
    if not (math.isfinite(fs_hz) and 8000.0 <= fs_hz <= 384000.0):
        raise InputDataError("fs_hz", "a sampling rate from 8000 to 384000 Hz", fs_hz)
    if fs_hz == _FS_REF:
        return (_SHELF_B, _SHELF_A), (_RLB_B, _RLB_A)
    return _rebilinear(_SHELF_B, _SHELF_A, fs_hz), _rebilinear(_RLB_B, _RLB_A, fs_hz)


@njit(cache=True)
def _biquad(x: F64Array, b: F64Array, a: F64Array, out: F64Array) -> None:
    """Filter ``x`` (n,) into ``out`` (n,) with one biquad, direct form II transposed,
    from rest; ``b`` and ``a`` (3,) with ``a[0] = 1``."""
    s1 = 0.0
    s2 = 0.0
    for i in range(x.shape[0]):
        xi = x[i]
        y = b[0] * xi + s1
        s1 = b[1] * xi - a[1] * y + s2
        s2 = b[2] * xi - a[2] * y
        out[i] = y


def k_weighting(x: npt.ArrayLike, fs_hz: float) -> F64Array:
    """K-weight every channel of ``x`` (frames,) or (frames, channels); float64 result.

    Raises
    ------
    InputDataError
        ``x`` empty, not 1-D or 2-D, or not finite; ``fs_hz`` out of range.
    """
    arr = _as_frames(x)
    (sb, sa), (hb, ha) = k_weighting_coefficients(fs_hz)
    out = np.empty_like(arr)
    tmp = np.empty(arr.shape[0], dtype=np.float64)
    col = np.empty(arr.shape[0], dtype=np.float64)
    for c in range(arr.shape[1]):
        col[:] = arr[:, c]
        _biquad(col, np.asarray(sb), np.asarray(sa), tmp)
        _biquad(tmp, np.asarray(hb), np.asarray(ha), col)
        out[:, c] = col
    return out


def _as_frames(x: npt.ArrayLike) -> F64Array:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputDataError("audio", "samples shaped (frames,) or (frames, channels)", arr.shape)
    if not np.all(np.isfinite(arr)):
        raise InputDataError("audio", "finite samples")
    return np.ascontiguousarray(arr)


def block_loudness(x: npt.ArrayLike, fs_hz: float) -> F64Array:
    """Loudness of each 400 ms gating block (step 100 ms) in LUFS, ungated.

    Parameters
    ----------
    x:
        Samples in linear full scale, (frames,) or (frames, channels); every channel has
        weight 1 (BS.1770's weights for left, right and centre).
    fs_hz:
        Sampling rate in Hz.

    Returns
    -------
    numpy.ndarray
        One loudness per block in LUFS (``-inf`` for digital silence); empty when ``x``
        is shorter than one block.
    """
    kw = k_weighting(x, fs_hz)
    block = round(BLOCK_S * fs_hz)
    step = round(STEP_S * fs_hz)
    if kw.shape[0] < block:
        return np.zeros(0, dtype=np.float64)
    n_blocks = 1 + (kw.shape[0] - block) // step
    # Mean square per block from a running sum of squares (sum over channels, G = 1).
    energy = np.concatenate(([0.0], np.cumsum(np.sum(kw * kw, axis=1))))
    starts = np.arange(n_blocks) * step
    z = (energy[starts + block] - energy[starts]) / block
    with np.errstate(divide="ignore"):
        return np.asarray(_OFFSET_DB + 10.0 * np.log10(z))


def integrated_loudness(x: npt.ArrayLike, fs_hz: float) -> float:
    """Gated integrated loudness of ``x`` in LUFS (ITU-R BS.1770-4).

    Parameters
    ----------
    x:
        Samples in linear full scale, (frames,) or (frames, channels), at least 400 ms.
    fs_hz:
        Sampling rate in Hz.

    Returns
    -------
    float
        The integrated loudness in LUFS, or ``-inf`` when every block is below the absolute
        gate (silence).

    Raises
    ------
    InputDataError
        Fewer samples than one 400 ms block, or non-finite samples.
    """
    levels = block_loudness(x, fs_hz)
    if levels.size == 0:
        raise InputDataError("audio", f"at least {BLOCK_S * 1000:.0f} ms of samples")
    z = 10.0 ** ((levels - _OFFSET_DB) / 10.0)
    above = levels > ABSOLUTE_GATE_LUFS
    if not np.any(above):
        return float("-inf")
    relative = _OFFSET_DB + 10.0 * math.log10(float(np.mean(z[above]))) + RELATIVE_GATE_LU
    kept = above & (levels > relative)
    return _OFFSET_DB + 10.0 * math.log10(float(np.mean(z[kept])))
