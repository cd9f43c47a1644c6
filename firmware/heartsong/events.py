"""The few value types that flow between the parts of the appliance.

Every quantity carries its unit in its name (``_s``, ``_ms``, ``_bpm``, ``_hz``, ``_db``),
and metric names are the same everywhere (MQTT, SQLite, CSV export, logs): see
``METRIC_NAMES``. Arrays inside events are owned by the receiver once sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

SourceName = Literal["ppg", "ble", "none"]
StressState = Literal["calm", "neutral", "stressed", "unknown"]
Mode = Literal["wind_down", "calm", "sleep"]

#: The metric names (and so units) used in every interface, in publication order.
METRIC_NAMES: Final = (
    "hr_bpm",
    "rmssd_ms",
    "sdnn_ms",
    "pnn50_pct",
    "lf_hf",
    "resp_rate_bpm",
    "coherence",
    "p_stress",
    "stress_state",
    "signal_quality",
    "source",
)


@dataclass(frozen=True, slots=True)
class PpgBlock:
    """Consecutive PPG samples from one optical sensor.

    Attributes
    ----------
    t0_s:
        Monotonic time of the first sample, in seconds (sensor sample clock, drift-corrected).
    fs_hz:
        Sampling rate in Hz; sample ``i`` is at ``t0_s + i / fs_hz``.
    ir, red:
        Raw ADC counts (float64) of the infrared and red channels; one of them is empty
        when the sensor samples a single LED (``sensor.mode = "red"`` or ``"ir"``).
    gap_samples:
        Samples lost *before* this block (FIFO overflow, I/O error): the DSP must not join
        the timeline across a gap.
    contact:
        False when the sensor detects no finger (the samples are then not a pulse).
    """

    t0_s: float
    fs_hz: float
    ir: FloatArray
    red: FloatArray
    gap_samples: int = 0
    contact: bool = True

    @property
    def pulse(self) -> FloatArray:
        """The channel the DSP reads: infrared when it was sampled (it penetrates deepest,
        the usual choice for pulse timing), else red (red-only heart-rate mode)."""
        return self.ir if self.ir.shape[0] or not self.red.shape[0] else self.red

    @property
    def n(self) -> int:
        """Number of samples in the block."""
        return int(self.pulse.shape[0])

    @property
    def t_end_s(self) -> float:
        """Monotonic time just after the last sample, in seconds."""
        return self.t0_s + self.n / self.fs_hz


@dataclass(frozen=True, slots=True)
class RrBlock:
    """Beat-to-beat intervals from a wearable (chest strap, watch) or a simulated one.

    Attributes
    ----------
    t_s:
        Monotonic arrival time of the notification, in seconds.
    rr_ms:
        RR intervals carried by this notification, in milliseconds, oldest first.
    beat_times_s:
        Monotonic time of the beat that *ends* each interval, in seconds (same length).
    hr_bpm:
        Heart rate the wearable itself reported, in beats per minute (None if absent).
    gap_before:
        True when beats were lost before this block (lost notifications, no contact).
    contact:
        The sensor-contact status the wearable reported (True when not supported).
    """

    t_s: float
    rr_ms: FloatArray
    beat_times_s: FloatArray
    hr_bpm: float | None = None
    gap_before: bool = False
    contact: bool = True


@dataclass(frozen=True, slots=True)
class Metrics:
    """One update of the heart metrics over the sliding window ending at ``t_s``.

    A value is ``None`` when it could not be measured honestly; ``reasons`` then says why
    (keyed by metric name). Units are in the names; ``signal_quality`` and ``coherence``
    are in [0, 1], ``p_stress`` is a probability.
    """

    t_s: float
    wall_s: float
    hr_bpm: float | None = None
    rmssd_ms: float | None = None
    sdnn_ms: float | None = None
    pnn50_pct: float | None = None
    lf_hf: float | None = None
    resp_rate_bpm: float | None = None
    coherence: float | None = None
    p_stress: float | None = None
    stress_state: StressState = "unknown"
    signal_quality: float | None = None
    source: SourceName = "none"
    n_beats: int = 0
    reasons: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The metrics under their canonical names, plus ``t_s``/``wall_s``; floats rounded."""
        out: dict[str, object] = {"wall_s": round(self.wall_s, 3)}
        for name in METRIC_NAMES:
            value = getattr(self, name)
            if isinstance(value, float):
                value = None if not math.isfinite(value) else round(value, 4)
            out[name] = value
        out["n_beats"] = self.n_beats
        if self.reasons:
            out["reasons"] = dict(self.reasons)
        return out


@dataclass(frozen=True, slots=True)
class SoundTargets:
    """What the therapy policy asks the audio engine to play.

    Attributes
    ----------
    soundscape:
        Preset name.
    playing:
        False to fade out and stay silent.
    volume_db:
        Master volume in dB full scale (the engine also applies its safety ceiling).
    intensity, brightness:
        Normalised 0..1 layer parameters.
    breath_rate_bpm:
        Breath pacer rate in breaths per minute, or None for no pacing.
    """

    soundscape: str
    playing: bool = True
    volume_db: float = -20.0
    intensity: float = 0.5
    brightness: float = 0.5
    breath_rate_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, with its reason, for the log, the store and MQTT.

    ``kind`` is a short machine name (``"adaptation"``, ``"fault"``, ``"command"``,
    ``"source"``, ``"session"``), ``message`` a sentence for a person.
    """

    t_s: float
    wall_s: float
    kind: str
    message: str
    data: dict[str, object] = field(default_factory=dict)
