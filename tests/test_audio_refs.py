"""Plain-Python references shared by the audio tests (this module holds no tests).

Each reference is written from the kernel's docstring, one sample at a time, so a kernel
test compares numba's output with an independent, obviously-correct loop.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1

# Kellet's refined pink filter as a table of parallel one-poles: (pole, input gain).
KELLET_POLES = (
    (0.99886, 0.0555179),
    (0.99332, 0.0750759),
    (0.96900, 0.1538520),
    (0.86650, 0.3104856),
    (0.55000, 0.5329522),
    (-0.7616, -0.0168980),
)
KELLET_DIRECT = 0.5362
KELLET_DELAYED = 0.115926
PINK_RAW_RMS = 1.7612
SOURCE_RMS = 0.25


class RefRng:
    """xorshift64* in Python integers (Vigna 2016)."""

    def __init__(self, state: int) -> None:
        self.x = int(state)

    def next(self) -> float:
        """A uniform draw on [-1, 1)."""
        x = self.x
        x ^= x >> 12
        x ^= (x << 25) & MASK64
        x ^= x >> 27
        self.x = x
        r = (x * 0x2545F4914F6CDD1D) & MASK64
        return (r >> 11) * 2.0**-52 - 1.0

    def u01(self) -> float:
        """A uniform draw on [0, 1)."""
        return 0.5 * (self.next() + 1.0)

    def block(self, frames: int) -> np.ndarray:
        """Draws for ``frames`` stereo frames, left then right, as (frames, 2)."""
        return np.array([self.next() for _ in range(2 * frames)]).reshape(frames, 2)


class RefPink:
    """Kellet's refined pink filter for one channel, one sample at a time."""

    def __init__(self, state: np.ndarray | None = None) -> None:
        self.b = np.zeros(7) if state is None else np.array(state, dtype=float)

    def step(self, w: float) -> float:
        """Filter one white sample; output scaled to ``SOURCE_RMS``."""
        b = self.b
        for k, (pole, gain) in enumerate(KELLET_POLES):
            b[k] = pole * b[k] + gain * w
        y = b[:6].sum() + b[6] + KELLET_DIRECT * w
        b[6] = KELLET_DELAYED * w
        return float(y) * SOURCE_RMS / PINK_RAW_RMS


class RefSvf:
    """Zavalishin's trapezoidal state-variable band-pass (Simper's equations)."""

    def __init__(self) -> None:
        self.ic1 = 0.0
        self.ic2 = 0.0

    def bandpass(self, x: float, fc: float, q: float, fs: float) -> float:
        """One sample of the band-pass output v1 at centre ``fc`` Hz and quality ``q``."""
        g = math.tan(math.pi * min(max(fc, 1.0), 0.45 * fs) / fs)
        k = 1.0 / q
        a1 = 1.0 / (1.0 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
        v3 = x - self.ic2
        v1 = a1 * self.ic1 + a2 * v3
        v2 = self.ic2 + a2 * self.ic1 + a3 * v3
        self.ic1 = 2 * v1 - self.ic1
        self.ic2 = 2 * v2 - self.ic2
        return v1


def ramp(g0: float, g1: float, n: int) -> np.ndarray:
    """The kernels' per-sample ramp: ``g0 + (g1 - g0) (i + 1) / n``."""
    return g0 + (g1 - g0) * (np.arange(n) + 1) / n


def chunks(n: int, size: int = 32) -> list[tuple[int, int]]:
    """The kernels' control chunks of a block of ``n`` frames: (start, stop) pairs."""
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def spectral_peak_hz(x: np.ndarray, fs: float, lo: float, hi: float) -> float:
    """Frequency of the largest Hann-windowed FFT peak in [lo, hi] Hz, refined by fitting a
    parabola to the log magnitudes of the peak bin and its neighbours."""
    w = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * w))
    f = np.fft.rfftfreq(len(x), 1.0 / fs)
    band = np.flatnonzero((f >= lo) & (f <= hi))
    k = band[np.argmax(mag[band])]
    a, b, c = np.log(mag[k - 1 : k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + offset) * fs / len(x))
