"""A synthetic two-channel (IR, red) finger PPG driven by a :class:`SimulatedPerson`'s beats.

Each beat launches a pulse that reaches the finger ``ptt_s`` after it (pulse transit time).
The pulse is the sum of a systolic and a smaller, later diastolic Gaussian (Tang et al.
2020), whose timing scales with the square root of the preceding beat interval. As on a
real reflective sensor, blood absorbs light, so the counts *fall* with each pulse: a
sample is ``DC * (1 - PI * pulse)`` with the perfusion index ``PI`` = AC/DC. The red
channel's PI is the IR one times the ratio of ratios ``R`` from the linear calibration
``SpO2 = 110 - 25 R`` (Webster 1997).

Respiration modulates the pulse amplitude and wanders the baseline (Charlton et al. 2018);
the beat timing already carries respiratory sinus arrhythmia. Sensor noise is white plus
1/f-like (three Ornstein-Uhlenbeck processes with time constants a decade apart; Kasdin
1995). Motion artifacts arrive as a Poisson process (``motion_artifacts_per_hour`` of the
person): 1-5 s bursts of large, low-frequency (0.2-2 Hz) changes of the light path, under a
Hann envelope. During a scheduled finger removal the output ramps (0.2 s) to the ambient
level with no pulse, and the contact flag is False.

Every random number is drawn in a partition-independent way (per sample through
:class:`BlockNoise`, per beat, per artifact) and every sample is computed from its absolute
index, so ``read(100)`` three times equals ``read(300)``.

References
----------
Tang Q, Chen Z, Allen J, et al. (2020) Synthetic photoplethysmogram generation using two
Gaussian functions. Sci Rep 10:13883.
Charlton PH et al. (2018) Breathing rate estimation from the electrocardiogram and
photoplethysmogram: a review. IEEE Rev Biomed Eng 11:2-20.
Webster JG (ed.) (1997) Design of Pulse Oximeters. IOP Publishing.
Kasdin NJ (1995) Discrete simulation of colored noise and stochastic processes and 1/f^a
power law noise generation. Proc IEEE 83(5):802-827.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numba import njit

from heartsong.errors import check_number
from heartsong.events import FloatArray
from heartsong.sensors.sim_person import BlockNoise, SimulatedPerson

logger = logging.getLogger(__name__)

#: Full scale of the MAX30102's 18-bit ADC, in counts.
ADC_MAX: Final = 262_143.0

_SYS_DELAY_S: Final = 0.13  # systolic peak after pulse arrival, at a 1 s beat interval
_SYS_WIDTH_S: Final = 0.05
_DIA_DELAY_S: Final = 0.36
_DIA_WIDTH_S: Final = 0.09
_DIA_RATIO: Final = 0.45  # diastolic wave height relative to systolic
_SHAPE_RR_RANGE: Final = (0.3, 1.5)  # beat intervals (s) beyond which the shape stops scaling
_TAIL_SIGMAS: Final = 5.0  # Gaussians are evaluated within +-5 standard deviations
_BEAT_KEEP_S: Final = 2.0  # beats whose pulse arrived this long before a block are dropped
_AMP_JITTER: Final = 0.04  # relative per-beat pulse-amplitude jitter (sd)
_PTT_JITTER_S: Final = 0.004  # per-beat pulse-transit-time jitter (sd)
_AM_DEPTH: Final = 0.12  # respiratory amplitude modulation of the pulse
_BW_DEPTH: Final = 0.004  # respiratory baseline wander, relative to DC
_PINK_TAUS_S: Final = (0.05, 0.5, 5.0)
_RED_MOTION_RATIO: Final = 0.85
_AMBIENT_NOISE_REL: Final = 0.02
_AMBIENT_RED_RATIO: Final = 0.7  # red counts with no finger, relative to IR
_REMOVAL_RAMP_S: Final = 0.2
_ARTIFACT_DURATION_S: Final = (1.0, 5.0)
_ARTIFACT_SCALE_PI: Final = (2.0, 8.0)  # artifact size in units of the perfusion index
_ARTIFACT_FREQ_HZ: Final = (0.2, 2.0)
_ARTIFACT_COMPONENTS: Final = 3
_NOISE_COLUMNS: Final = 2 + 2 * len(_PINK_TAUS_S)  # white IR, white red, OU drivers


@njit(cache=True, nogil=True)
def _pulse_kernel(
    i0: int,
    fs_hz: float,
    onset_s: FloatArray,
    rr_s: FloatArray,
    amp: FloatArray,
    out: FloatArray,
) -> None:
    """Add the two-Gaussian pulses (Tang et al. 2020) of each beat to ``out`` in place.

    Sample ``j`` of ``out`` is at ``(i0 + j) / fs_hz`` seconds. Beat ``b``'s pulse arrives at
    ``onset_s[b]`` (s) with height ``amp[b]``; its timing scales with sqrt(``rr_s[b]`` / 1 s).
    """
    n = out.shape[0]
    for b in range(onset_s.shape[0]):
        rr = min(_SHAPE_RR_RANGE[1], max(_SHAPE_RR_RANGE[0], rr_s[b]))
        scale = math.sqrt(rr)
        c1 = onset_s[b] + _SYS_DELAY_S * scale
        w1 = _SYS_WIDTH_S * scale
        c2 = onset_s[b] + _DIA_DELAY_S * scale
        w2 = _DIA_WIDTH_S * scale
        j0 = max(0, math.ceil((c1 - _TAIL_SIGMAS * w1) * fs_hz) - i0)
        j1 = min(n, math.floor((c2 + _TAIL_SIGMAS * w2) * fs_hz) - i0 + 1)
        for j in range(j0, j1):
            t = (i0 + j) / fs_hz
            z1 = (t - c1) / w1
            z2 = (t - c2) / w2
            out[j] += amp[b] * (math.exp(-0.5 * z1 * z1) + _DIA_RATIO * math.exp(-0.5 * z2 * z2))


@njit(cache=True, nogil=True)
def _ar1_kernel(
    drive: FloatArray, a: FloatArray, b: FloatArray, state: FloatArray, out: FloatArray
) -> None:
    """Run first-order recursions ``x[i, k] = a[k] x[i-1, k] + b[k] drive[i, k]`` column-wise.

    ``state`` holds ``x[-1, :]`` on entry and the last row on return (updated in place).
    """
    for k in range(drive.shape[1]):
        x = state[k]
        for i in range(drive.shape[0]):
            x = a[k] * x + b[k] * drive[i, k]
            out[i, k] = x
        state[k] = x


@dataclass(frozen=True, slots=True)
class _Artifact:
    """One motion-artifact burst: a Hann-windowed sum of slow sinusoids plus an offset."""

    start_s: float
    duration_s: float
    scale: float  # relative change of the light path at full envelope
    offset: float
    freqs_hz: tuple[float, ...]
    phases: tuple[float, ...]
    weights: tuple[float, ...]

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def signal(self, t_s: FloatArray) -> FloatArray:
        """Relative light-path change at times ``t_s`` (s); zero outside the burst."""
        u = np.clip((t_s - self.start_s) / self.duration_s, 0.0, 1.0)
        shape = np.full(t_s.shape, self.offset)
        for f, ph, w in zip(self.freqs_hz, self.phases, self.weights, strict=True):
            shape += w * np.sin(2.0 * np.pi * f * (t_s - self.start_s) + ph)
        out: FloatArray = (
            self.scale * np.sin(np.pi * u) ** 2 * shape / math.sqrt(_ARTIFACT_COMPONENTS + 1)
        )
        return out


class PpgSynth:
    """PPG at ``fs_hz`` derived from a SimulatedPerson's beats (pulse arrives PTT after the beat).

    Parameters
    ----------
    person:
        The person whose beats and breathing drive the waveform, read through a cursor from
        t = 0 (attach before the person's early history is dropped).
    fs_hz:
        Sampling rate in Hz (the MAX30102 offers 50-3200 Hz).
    seed:
        Seed (integer >= 0) of the sensor noise, pulse jitter and motion artifacts.
    ir_dc, red_dc:
        Baseline counts of the IR and red channels with a finger on the sensor.
    perfusion_index:
        IR pulse amplitude relative to its DC (AC/DC).
    noise_rel:
        Standard deviation of white and of each 1/f component, relative to DC.
    spo2_pct:
        Oxygen saturation that sets the red/IR ratio of ratios, in percent.
    ptt_s:
        Mean pulse transit time from beat to pulse arrival at the finger, in seconds.
    ambient_counts:
        IR counts with no finger (ambient light); red reads 70 % of it.
    """

    def __init__(
        self,
        person: SimulatedPerson,
        fs_hz: float,
        seed: int,
        *,
        ir_dc: float = 120_000.0,
        red_dc: float = 95_000.0,
        perfusion_index: float = 0.015,
        noise_rel: float = 2e-4,
        spo2_pct: float = 97.0,
        ptt_s: float = 0.25,
        ambient_counts: float = 1500.0,
    ) -> None:
        if not isinstance(person, SimulatedPerson):
            raise ValueError(f"person must be a SimulatedPerson, got {type(person).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self._fs = check_number("fs_hz", fs_hz, 10.0, 3200.0, "Hz")
        self._ir_dc = check_number("ir_dc", ir_dc, 1000.0, ADC_MAX, "counts")
        self._red_dc = check_number("red_dc", red_dc, 1000.0, ADC_MAX, "counts")
        self._pi = check_number("perfusion_index", perfusion_index, 1e-4, 0.2)
        self._noise_rel = check_number("noise_rel", noise_rel, 0.0, 0.05)
        spo2 = check_number("spo2_pct", spo2_pct, 70.0, 100.0, "%")
        self._ptt = check_number("ptt_s", ptt_s, 0.2, 0.5, "s")
        self._ambient = check_number("ambient_counts", ambient_counts, 0.0, ADC_MAX, "counts")
        self._red_ratio = (110.0 - spo2) / 25.0  # ratio of ratios R, Webster 1997

        self._person = person
        self._cursor = person.cursor(0.0)
        noise_ss, beat_ss, art_ss = np.random.SeedSequence(int(seed)).spawn(3)
        self._noise = BlockNoise(np.random.default_rng(noise_ss), _NOISE_COLUMNS)
        self._beat_jitter = BlockNoise(np.random.default_rng(beat_ss), 2, block=256)
        self._art_rng = np.random.default_rng(art_ss)

        a = np.exp(-1.0 / (self._fs * np.asarray(_PINK_TAUS_S)))
        self._ou_a = np.concatenate([a, a])
        self._ou_b = np.sqrt(1.0 - self._ou_a**2) * self._noise_rel
        self._ou_state = np.zeros(2 * len(_PINK_TAUS_S))

        self._i = 0  # absolute index of the next sample
        self._onset: FloatArray = np.empty(0)
        self._rr: FloatArray = np.empty(0)
        self._amp: FloatArray = np.empty(0)
        self._last_beat_s = math.nan
        self._removals: list[tuple[float, float]] = []
        self._artifacts: list[_Artifact] = []
        self._art_active = 0  # index of the first artifact that may still be running
        rate_per_s = person.params.motion_artifacts_per_hour / 3600.0
        self._art_rate = rate_per_s
        self._art_next_s = math.inf
        if rate_per_s > 0:
            self._art_next_s = float(self._art_rng.exponential(1.0 / rate_per_s))

    @property
    def fs_hz(self) -> float:
        """Sampling rate in Hz."""
        return self._fs

    @property
    def t_next_s(self) -> float:
        """Time of the next sample to be read, in seconds."""
        return self._i / self._fs

    def remove_finger(self, t_start_s: float, t_end_s: float) -> None:
        """Schedule no finger contact in [``t_start_s``, ``t_end_s``) (s).

        Samples already read are not changed.
        """
        start = check_number("t_start_s", t_start_s, 0.0, math.inf, "s")
        end = check_number("t_end_s", t_end_s, 0.0, math.inf, "s")
        if end <= start:
            raise ValueError(f"t_end_s must be > t_start_s = {start!r}, got {end!r}")
        self._removals.append((start, end))

    def contact_at(self, t_s: float) -> bool:
        """True when the finger is on the sensor at ``t_s`` (s)."""
        return not any(a <= t_s < b for a, b in self._removals)

    def motion_intervals(self) -> list[tuple[float, float]]:
        """(start, end) in seconds of every motion artifact generated so far (ground truth)."""
        return [(a.start_s, a.end_s) for a in self._artifacts]

    def read(self, n: int) -> tuple[FloatArray, FloatArray, bool]:
        """The next ``n`` samples (ir, red) in ADC counts (0..262143) and the block's contact.

        Contact is False if any sample of the block lacks finger contact.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        if n == 0:
            return np.empty(0), np.empty(0), self.contact_at(self.t_next_s)
        t = (self._i + np.arange(n)) / self._fs
        self._take_beats(self._cursor.read_until(float(t[-1])), float(t[0]))

        pulse = np.zeros(n)
        _pulse_kernel(self._i, self._fs, self._onset, self._rr, self._amp, pulse)
        resp = self._person.respiration(t)
        z = self._noise.take(n)
        pink = np.empty((n, 2 * len(_PINK_TAUS_S)))
        _ar1_kernel(np.ascontiguousarray(z[:, 2:]), self._ou_a, self._ou_b, self._ou_state, pink)
        k = len(_PINK_TAUS_S)
        motion = self._motion(t)
        ac = self._pi * (1.0 + _AM_DEPTH * resp) * pulse
        base = 1.0 + _BW_DEPTH * resp
        ir = self._ir_dc * (
            base + pink[:, :k].sum(axis=1) + motion - ac + self._noise_rel * z[:, 0]
        )
        red = self._red_dc * (
            base
            + pink[:, k:].sum(axis=1)
            + _RED_MOTION_RATIO * motion
            - self._red_ratio * ac
            + self._noise_rel * z[:, 1]
        )
        weight, contact = self._contact_weight(t)
        if not contact:
            ir_off = self._ambient * (1.0 + _AMBIENT_NOISE_REL * z[:, 0])
            red_off = _AMBIENT_RED_RATIO * self._ambient * (1.0 + _AMBIENT_NOISE_REL * z[:, 1])
            ir = weight * ir + (1.0 - weight) * ir_off
            red = weight * red + (1.0 - weight) * red_off
        self._i += n
        ir_counts: FloatArray = np.clip(np.round(ir), 0.0, ADC_MAX)
        red_counts: FloatArray = np.clip(np.round(red), 0.0, ADC_MAX)
        return ir_counts, red_counts, contact

    def _take_beats(self, beats: FloatArray, t0_s: float) -> None:
        """Append new beats (s) to the pulse buffer and drop pulses that ended before t0_s."""
        if beats.shape[0]:
            prev = np.concatenate([[self._last_beat_s], beats[:-1]])
            rr = beats - prev
            if math.isnan(rr[0]):
                rr[0] = 60.0 / self._person.params.hr_bpm
            jit = np.clip(self._beat_jitter.take(beats.shape[0]), -3.0, 3.0)
            onset = beats + self._ptt + _PTT_JITTER_S * jit[:, 1]
            self._onset = np.concatenate([self._onset, onset])
            self._rr = np.concatenate([self._rr, rr])
            self._amp = np.concatenate([self._amp, 1.0 + _AMP_JITTER * jit[:, 0]])
            self._last_beat_s = float(beats[-1])
        keep = int(np.searchsorted(self._onset, t0_s - _BEAT_KEEP_S))
        if keep:
            self._onset, self._rr, self._amp = self._onset[keep:], self._rr[keep:], self._amp[keep:]

    def _motion(self, t: FloatArray) -> FloatArray:
        """Sum of the motion artifacts (relative light-path change) at times ``t`` (s)."""
        t_end = float(t[-1])
        while self._art_next_s <= t_end:
            self._artifacts.append(self._new_artifact(self._art_next_s))
            self._art_next_s += self._art_rng.exponential(1.0 / self._art_rate)
        while (
            self._art_active < len(self._artifacts)
            and self._artifacts[self._art_active].end_s < t[0]
        ):
            self._art_active += 1
        out = np.zeros(t.shape)
        for art in self._artifacts[self._art_active :]:
            if art.start_s <= t_end and art.end_s >= t[0]:
                out += art.signal(t)
        return out

    def _new_artifact(self, start_s: float) -> _Artifact:
        """Draw one motion artifact starting at ``start_s`` (a fixed number of draws)."""
        rng = self._art_rng
        n = _ARTIFACT_COMPONENTS
        return _Artifact(
            start_s=start_s,
            duration_s=float(rng.uniform(*_ARTIFACT_DURATION_S)),
            scale=float(rng.uniform(*_ARTIFACT_SCALE_PI)) * self._pi,
            offset=float(rng.standard_normal()),
            freqs_hz=tuple(float(f) for f in rng.uniform(*_ARTIFACT_FREQ_HZ, size=n)),
            phases=tuple(float(p) for p in rng.uniform(0.0, 2.0 * np.pi, size=n)),
            weights=tuple(float(w) for w in rng.standard_normal(n)),
        )

    def _contact_weight(self, t: FloatArray) -> tuple[FloatArray, bool]:
        """Finger weight per sample (1 on, 0 off, 0.2 s ramps inside a removal) and contact."""
        weight = np.ones(t.shape)
        contact = True
        for a, b in self._removals:
            inside = (t >= a) & (t < b)
            if inside.any():
                contact = False
                edge = np.minimum(t[inside] - a, b - t[inside]) / _REMOVAL_RAMP_S
                weight[inside] = np.minimum(weight[inside], 1.0 - np.clip(edge, 0.0, 1.0))
        return weight, contact

    def __repr__(self) -> str:
        return (
            f"PpgSynth(fs_hz={self._fs:g}, t_next_s={self.t_next_s:.3f}, "
            f"removals={len(self._removals)}, artifacts={len(self._artifacts)})"
        )
