"""Butterworth band-pass design and biquad-cascade filtering, streaming and zero-phase.

The band-pass is designed without SciPy (a run-time dependency we do not ship): the
analogue Butterworth low-pass prototype (Butterworth 1930, "On the theory of filter
amplifiers", Wireless Engineer 7:536) is turned into a band-pass, mapped to the z-plane
with the pre-warped bilinear transform, and factored into second-order sections (SOS,
rows ``[b0, b1, b2, 1, a1, a2]``, the same layout as ``scipy.signal``) (Oppenheim &
Schafer, *Discrete-Time Signal Processing*, 3rd ed., 2010, sections 7.2 and 6.5).

Sections run in transposed direct form II, whose two state values per section are the
``zi`` array: ``sos_filter_stream`` continues a signal across blocks exactly as if it had
been filtered in one piece. ``sos_filtfilt`` is the forward-backward (zero-phase) filter
for whole recordings (Gustafsson 1996, IEEE Trans. Signal Process. 44(4):988, with the odd
extension at both ends that ``scipy.signal.sosfiltfilt`` also uses).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = [
    "PPG_BAND_HZ",
    "PPG_FILTER_ORDER",
    "butter_bandpass_sos",
    "sos_filter_stream",
    "sos_filter_zi",
    "sos_filtfilt",
    "sos_group_delay_s",
]

logger = logging.getLogger(__name__)

#: Default PPG pass band in Hz (Elgendi et al. 2013, PLOS ONE 8(10):e76585).
PPG_BAND_HZ: tuple[float, float] = (0.5, 8.0)
#: Default prototype order: a 4th-order band-pass in 2 second-order sections.
PPG_FILTER_ORDER = 2


def butter_bandpass_sos(
    low_hz: float, high_hz: float, fs_hz: float, order: int = PPG_FILTER_ORDER
) -> FloatArray:
    """Design a digital Butterworth band-pass as second-order sections.

    Parameters
    ----------
    low_hz, high_hz:
        Lower and upper -3 dB edges in Hz, ``0 < low_hz < high_hz < fs_hz / 2``.
    fs_hz:
        Sampling rate in Hz.
    order:
        Order of the low-pass prototype (as in ``scipy.signal.butter``); the band-pass has
        order ``2 * order`` and ``order`` sections.

    Returns
    -------
    FloatArray
        Shape ``(order, 6)``, rows ``[b0, b1, b2, 1, a1, a2]``; every section has unit gain
        at the centre of the band, so the cascade has unit gain there too.

    Notes
    -----
    Butterworth prototype poles ``p_k = exp(i*pi*(2k + N + 1) / (2N))``; the low-pass to
    band-pass substitution ``s -> (s^2 + w0^2) / (B s)`` maps each to the two roots of
    ``s^2 - p B s + w0^2 = 0``; edges are pre-warped (``w = 2 fs tan(pi f / fs)``) so that
    the bilinear transform ``z = (1 + s/2fs) / (1 - s/2fs)`` puts them exactly at
    ``low_hz`` and ``high_hz``. The ``order`` zeros at ``s = 0`` map to ``z = 1`` and the
    ``order`` zeros at infinity to ``z = -1``: every section has numerator ``1 - z^-2``.
    """
    if not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
    if not (isinstance(order, int) and 1 <= order <= 8):
        raise InputDataError("order", "an integer prototype order from 1 to 8", order)
    nyquist_hz = fs_hz / 2.0
    if not (math.isfinite(low_hz) and 0.0 < low_hz < nyquist_hz):
        raise InputDataError("low_hz", f"a frequency in (0, {nyquist_hz:g}) Hz", low_hz)
    if not (math.isfinite(high_hz) and low_hz < high_hz < nyquist_hz):
        raise InputDataError("high_hz", f"a frequency in ({low_hz:g}, {nyquist_hz:g}) Hz", high_hz)

    two_fs = 2.0 * fs_hz
    w_low = two_fs * math.tan(math.pi * low_hz / fs_hz)
    w_high = two_fs * math.tan(math.pi * high_hz / fs_hz)
    bandwidth = w_high - w_low
    w0_sq = w_low * w_high

    k = np.arange(order)
    proto = np.exp(1j * np.pi * (2 * k + order + 1) / (2 * order))
    half = proto * bandwidth / 2.0
    root = np.sqrt(half * half - w0_sq)
    analog = np.concatenate([half + root, half - root])
    digital = (1.0 + analog / two_fs) / (1.0 - analog / two_fs)

    pairs = _pair_conjugates(digital)
    # Poles nearest the unit circle last, as scipy.signal.zpk2sos does: the sharpest
    # resonance sees a signal already band-limited by the earlier sections.
    pairs.sort(key=lambda pair: max(abs(pair[0]), abs(pair[1])))

    w_centre = 2.0 * math.atan(math.sqrt(w0_sq) / two_fs)  # rad/sample
    z_c = complex(math.cos(w_centre), math.sin(w_centre))
    sos = np.zeros((order, 6))
    for row, (p1, p2) in enumerate(pairs):
        a1 = -(p1 + p2).real
        a2 = (p1 * p2).real
        num = 1.0 - z_c**-2
        den = 1.0 + a1 * z_c**-1 + a2 * z_c**-2
        gain = abs(den) / abs(num)
        sos[row] = (gain, 0.0, -gain, 1.0, a1, a2)
    logger.debug(
        "Butterworth band-pass %g-%g Hz at %g Hz, order %d: %s",
        low_hz,
        high_hz,
        fs_hz,
        order,
        sos.tolist(),
    )
    return sos


def _pair_conjugates(poles: np.ndarray) -> list[tuple[complex, complex]]:
    """Group poles (complex, conjugate-symmetric set) into pairs with real products/sums."""
    tol = 1e-9
    upper = [complex(p) for p in poles if p.imag > tol]
    real = sorted(float(p.real) for p in poles if abs(p.imag) <= tol)
    pairs = [(p, p.conjugate()) for p in upper]
    pairs += [(complex(real[i]), complex(real[i + 1])) for i in range(0, len(real), 2)]
    return pairs


def _as_sos(sos: FloatArray) -> FloatArray:
    """Validate second-order sections; return them as C-contiguous float64."""
    sos = np.ascontiguousarray(sos, dtype=np.float64)
    if sos.ndim != 2 or sos.shape[1] != 6 or sos.shape[0] < 1:
        raise InputDataError("sos", "an array of shape (n_sections, 6)", sos.shape)
    if not np.allclose(sos[:, 3], 1.0):
        raise InputDataError("sos", "normalised sections (a0 == 1 in column 3)", sos[:, 3])
    return sos


def _as_signal(x: FloatArray, field: str) -> FloatArray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise InputDataError(field, "a 1-D array of samples", arr.shape)
    if not np.all(np.isfinite(arr)):
        raise InputDataError(field, "finite samples (no NaN or inf)")
    return arr


@njit(cache=True, nogil=True)
def _cascade(sos: FloatArray, src: FloatArray, dst: FloatArray, zi: FloatArray, back: bool) -> None:
    """Run a biquad cascade (transposed direct form II) over ``src`` into ``dst`` (which
    may be ``src``), from the last sample to the first if ``back``, updating ``zi``.

    Two sections (the PPG band-pass) keep coefficients and state in locals, off memory:
    the same arithmetic in the same order, without a store and a reload per sample on
    the recursion's dependency chain.
    """
    n_sec = sos.shape[0]
    total = src.shape[0]
    if n_sec == 2:
        b00, b01, b02, a01, a02 = sos[0, 0], sos[0, 1], sos[0, 2], sos[0, 4], sos[0, 5]
        b10, b11, b12, a11, a12 = sos[1, 0], sos[1, 1], sos[1, 2], sos[1, 4], sos[1, 5]
        z00, z01, z10, z11 = zi[0, 0], zi[0, 1], zi[1, 0], zi[1, 1]
        for j in range(total):
            k = total - 1 - j if back else j
            v = src[k]
            out = b00 * v + z00
            z00 = b01 * v - a01 * out + z01
            z01 = b02 * v - a02 * out
            v = out
            out = b10 * v + z10
            z10 = b11 * v - a11 * out + z11
            z11 = b12 * v - a12 * out
            dst[k] = out
        zi[0, 0], zi[0, 1], zi[1, 0], zi[1, 1] = z00, z01, z10, z11
        return
    for j in range(total):
        k = total - 1 - j if back else j
        v = src[k]
        for s in range(n_sec):
            out = sos[s, 0] * v + zi[s, 0]
            zi[s, 0] = sos[s, 1] * v - sos[s, 4] * out + zi[s, 1]
            zi[s, 1] = sos[s, 2] * v - sos[s, 5] * out
            v = out
        dst[k] = v


@njit(cache=True, nogil=True)
def _sos_filter_kernel(sos: FloatArray, x: FloatArray, zi: FloatArray) -> FloatArray:
    """Run a biquad cascade (transposed direct form II) over ``x``, updating ``zi``."""
    y = np.empty_like(x)
    _cascade(sos, x, y, zi, False)
    return y


def sos_filter_stream(sos: FloatArray, x: FloatArray, zi: FloatArray) -> FloatArray:
    """Filter one block of a stream through a biquad cascade, carrying the state.

    Parameters
    ----------
    sos:
        Second-order sections, shape ``(n_sections, 6)`` (see :func:`butter_bandpass_sos`).
    x:
        The block's samples (any unit; the output has the same unit).
    zi:
        Filter state, shape ``(n_sections, 2)``, float64, C-contiguous; **updated in place**
        so the next block continues seamlessly. Start from zeros or from
        ``sos_filter_zi(sos) * x[0]`` to avoid a start-up transient.

    Returns
    -------
    FloatArray
        The filtered block, same length as ``x``.
    """
    sos = _as_sos(sos)
    xs = _as_signal(x, "x")
    if zi.shape != (sos.shape[0], 2) or zi.dtype != np.float64 or not zi.flags.c_contiguous:
        raise InputDataError(
            "zi", f"a C-contiguous float64 array of shape ({sos.shape[0]}, 2)", zi.shape
        )
    y: FloatArray = _sos_filter_kernel(sos, xs, zi)
    return y


def sos_filter_zi(sos: FloatArray) -> FloatArray:
    """Return the state of a biquad cascade in steady state for a unit step input.

    Scale it by the first sample (``sos_filter_zi(sos) * x[0]``) to start a stream without
    the transient a large DC level (raw ADC counts) would cause.

    Parameters
    ----------
    sos:
        Second-order sections, shape ``(n_sections, 6)``.

    Returns
    -------
    FloatArray
        Shape ``(n_sections, 2)``. For a transposed direct form II section with DC gain
        ``g = sum(b) / sum(a)`` fed a constant ``u``: ``z1 = (b1 + b2 - (a1 + a2) g) u``
        and ``z2 = (b2 - a2 g) u``; each section's input is the previous one's output.
    """
    sos = _as_sos(sos)
    zi = np.zeros((sos.shape[0], 2))
    level = 1.0
    for s in range(sos.shape[0]):
        b0, b1, b2, _, a1, a2 = sos[s]
        gain = (b0 + b1 + b2) / (1.0 + a1 + a2)
        zi[s, 0] = (b1 + b2 - (a1 + a2) * gain) * level
        zi[s, 1] = (b2 - a2 * gain) * level
        level *= gain
    return zi


def sos_filtfilt(sos: FloatArray, x: FloatArray, padlen: int | None = None) -> FloatArray:
    """Filter a whole recording forwards and backwards (zero phase, squared magnitude).

    Parameters
    ----------
    sos:
        Second-order sections, shape ``(n_sections, 6)``.
    x:
        The whole signal (any unit).
    padlen:
        Samples of odd extension added at each end to tame the edges; default
        ``3 * (2 * n_sections + 1)`` as in ``scipy.signal.sosfiltfilt``. Must be smaller
        than ``len(x)``.

    Returns
    -------
    FloatArray
        The filtered signal, same length, with no phase delay (Gustafsson 1996).
    """
    sos = _as_sos(sos)
    xs = _as_signal(x, "x")
    if padlen is None:
        padlen = 3 * (2 * sos.shape[0] + 1)
    if padlen < 0 or padlen >= xs.shape[0]:
        raise InputDataError("x", f"more samples than the edge padding ({padlen})", xs.shape[0])
    y: FloatArray = _filtfilt_kernel(sos, xs, padlen, sos_filter_zi(sos))
    return y


@njit(cache=True, nogil=True)
def _filtfilt_kernel(
    sos: FloatArray, x: FloatArray, padlen: int, zi_unit: FloatArray
) -> FloatArray:
    """Forward-backward biquad cascade over ``x`` with ``padlen`` samples of odd extension.

    The extension is ``2 x[0] - x[padlen:0:-1]`` before and ``2 x[-1] - x[-2:-padlen-2:-1]``
    after; each pass starts from ``zi_unit`` scaled by its first input sample. Both passes
    run in place over one buffer (the backward pass simply walks it from the end), where
    NumPy slicing would copy the signal four more times; the arithmetic is that of
    :func:`_sos_filter_kernel`, sample for sample.
    """
    n = x.shape[0]
    total = n + 2 * padlen
    buf = np.empty(total)
    for k in range(padlen):
        buf[k] = 2.0 * x[0] - x[padlen - k]
        buf[padlen + n + k] = 2.0 * x[n - 1] - x[n - 2 - k]
    for i in range(n):
        buf[padlen + i] = x[i]
    _cascade(sos, buf, buf, zi_unit * buf[0], False)
    _cascade(sos, buf, buf, zi_unit * buf[total - 1], True)
    return buf[padlen : padlen + n].copy()


def sos_group_delay_s(sos: FloatArray, f_hz: float, fs_hz: float) -> float:
    """Return the group delay of a biquad cascade at one frequency, in seconds.

    Parameters
    ----------
    sos:
        Second-order sections, shape ``(n_sections, 6)``.
    f_hz:
        Frequency in Hz, ``0 < f_hz < fs_hz / 2``.
    fs_hz:
        Sampling rate in Hz.

    Notes
    -----
    The group delay ``-d(phase)/d(omega)`` of a section ``B(z)/A(z)`` is
    ``Re(z d/dz ... )`` evaluated as ``Re(sum n c_n z^-n / sum c_n z^-n)`` for the
    numerator minus the same for the denominator (Oppenheim & Schafer 2010, sec. 5.1.2).
    """
    sos = _as_sos(sos)
    if not (0.0 < f_hz < fs_hz / 2.0):
        raise InputDataError("f_hz", f"a frequency in (0, {fs_hz / 2.0:g}) Hz", f_hz)
    w = 2.0 * math.pi * f_hz / fs_hz
    zinv = np.exp(-1j * w * np.arange(3))
    taps = np.arange(3)
    delay = 0.0
    for row in sos:
        b = row[:3]
        a = row[3:]
        delay += float(np.real(np.sum(taps * b * zinv) / np.sum(b * zinv)))
        delay -= float(np.real(np.sum(taps * a * zinv) / np.sum(a * zinv)))
    return delay / fs_hz
