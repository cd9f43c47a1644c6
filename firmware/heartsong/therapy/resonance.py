"""The personal resonance breathing rate, learnt over sessions, and where it is kept.

Breathing at the cardiovascular resonance frequency makes the heart-rate oscillation
(respiratory sinus arrhythmia, RSA) largest; it lies between about 4.5 and 7 breaths/min
and differs between people (Vaschillo et al. 2002, 2006). Lehrer, Vaschillo & Vaschillo
(2000) find it by pacing the breathing for a while at each of 6.5, 6, 5.5, 5 and 4.5
breaths/min and choosing the rate with the largest oscillation (LF peak, peak-to-trough
heart rate); Shaffer & Meehan (2020) review the variants.

Here every metrics update during which the pacer has held a rate in the band, and the
measured breathing has followed it for a whole metrics window, is a sample of the
oscillation at that rate. The amplitude is the peak-to-trough heart-rate swing of a
sinusoid with the window's SDNN, ``2 sqrt(2) SDNN / NN`` of the heart rate: at 4.5-7
breaths/min the breathing sits in the LF band and dominates the variance of a one-minute
window, so this is the LF-power measure in heart-rate units (:func:`rsa_amplitude_bpm`).

Samples are averaged per *visit* (one stay at one rate). Visits from many sessions are
combined by weighted least squares on log amplitudes: a session offset (how variable the
heart was that night), for a session that visited some rate twice a linear drift in time
(it calms while it breathes slowly, so later visits would otherwise look better), and
one effect per rate, which is what is compared. The rate with the largest effect,
refined by a parabola through it and its neighbours, is the personal resonance rate;
until four rates, among them that peak and its neighbours, are measured it is
``default_bpm`` (6/min).

The sessions are kept (the last :data:`MAX_SESSIONS`) as JSON under the key
``"resonance"`` of the user's baseline file in the state directory; other keys of that
file are left as they are.

References
----------
Lehrer PM, Vaschillo E, Vaschillo B (2000) Resonant frequency biofeedback training to
increase cardiac variability: rationale and manual for training. Appl Psychophysiol
Biofeedback 25(3):177-191.
Vaschillo E, Lehrer P, Rishe N, Konstantinov M (2002) Heart rate variability biofeedback
as a method for assessing baroreflex function. Appl Psychophysiol Biofeedback 27(1):1-27.
Vaschillo EG, Vaschillo B, Lehrer PM (2006) Characteristics of resonance in heart rate
variability stimulated by biofeedback. Appl Psychophysiol Biofeedback 31(2):129-142.
Shaffer F, Meehan ZM (2020) A practical guide to resonance frequency assessment for heart
rate variability biofeedback. Front Neurosci 14:570400.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heartsong.errors import InputDataError
from heartsong.private_file import write_private

__all__ = [
    "BASELINE_FILE",
    "MAX_SESSIONS",
    "ResonanceBand",
    "ResonanceEstimate",
    "ResonanceModel",
    "ResonanceStore",
    "SessionRecord",
    "Visit",
    "add_sample",
    "estimate_resonance",
    "rsa_amplitude_bpm",
]

logger = logging.getLogger(__name__)

#: The user's baseline file in the state directory.
BASELINE_FILE = "baseline.json"
#: Sessions kept in the file (older ones are dropped).
MAX_SESSIONS = 30
#: Format version of the ``"resonance"`` entry.
_VERSION = 1
#: A session's drift is fitted only when it visited a rate twice this far apart, minutes.
_DRIFT_MIN_SPAN_MIN = 3.0
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class ResonanceBand:
    """The rates searched, breaths/min: ``min_bpm`` to ``max_bpm`` in steps of ``step_bpm``.

    ``default_bpm`` is the rate used until the personal one is known.
    """

    min_bpm: float = 4.5
    max_bpm: float = 7.0
    default_bpm: float = 6.0
    step_bpm: float = 0.5

    def __post_init__(self) -> None:
        values = (self.min_bpm, self.max_bpm, self.default_bpm, self.step_bpm)
        if not all(math.isfinite(v) for v in values):
            raise InputDataError("resonance band", "finite rates in breaths/min", values)
        if not 3.0 <= self.min_bpm < self.max_bpm <= 10.0:
            raise InputDataError(
                "therapy.resonance_min_bpm/resonance_max_bpm",
                "3 <= min < max <= 10 breaths/min",
                (self.min_bpm, self.max_bpm),
            )
        if not self.min_bpm <= self.default_bpm <= self.max_bpm:
            raise InputDataError(
                "therapy.breath_rate_bpm",
                f"a default resonance rate within {self.min_bpm:g}-{self.max_bpm:g} breaths/min",
                self.default_bpm,
            )
        if not 0.1 <= self.step_bpm <= self.max_bpm - self.min_bpm:
            raise InputDataError("resonance step_bpm", "0.1 to the band width", self.step_bpm)

    @property
    def bins(self) -> tuple[float, ...]:
        """The rates compared, from ``min_bpm`` up to ``max_bpm`` (breaths/min)."""
        n = math.floor((self.max_bpm - self.min_bpm) / self.step_bpm + 1e-6) + 1
        return tuple(round(self.min_bpm + i * self.step_bpm, 3) for i in range(n))

    def bin_of(self, rate_bpm: float) -> float | None:
        """The bin ``rate_bpm`` falls in (within a quarter step), or None outside the band."""
        for b in self.bins:
            if abs(rate_bpm - b) <= 0.25 * self.step_bpm:
                return b
        return None


@dataclass(frozen=True, slots=True)
class Visit:
    """One stay of the pacer at one rate: the mean of its samples.

    Attributes
    ----------
    rate_bpm:
        The paced rate (a band bin), breaths/min.
    t_min:
        Mean time of the samples, minutes since the session started.
    log_amp:
        Mean natural log of the heart-rate oscillation, ln(bpm).
    weight_s:
        Seconds of samples.
    """

    rate_bpm: float
    t_min: float
    log_amp: float
    weight_s: float


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The visits of one session, and when it started (Unix seconds)."""

    wall_s: float
    visits: tuple[Visit, ...] = ()


@dataclass(frozen=True, slots=True)
class ResonanceModel:
    """Past sessions' visits, oldest first."""

    sessions: tuple[SessionRecord, ...] = ()

    def with_session(self, record: SessionRecord) -> ResonanceModel:
        """This model with ``record`` added, or replacing the record of the same start."""
        kept = tuple(s for s in self.sessions if s.wall_s != record.wall_s)
        return ResonanceModel((*kept, record)[-MAX_SESSIONS:])


@dataclass(frozen=True, slots=True)
class ResonanceEstimate:
    """The personal resonance rate and what stands behind it.

    Attributes
    ----------
    rate_bpm:
        The rate to pace at, breaths/min (``default_bpm`` while not known).
    known:
        True when at least four rates are measured, including the one with the largest
        oscillation and both its in-band neighbours.
    effects_pct:
        Per measured bin (breaths/min): its oscillation relative to the bins' mean, in %.
    weight_s:
        Per bin: seconds of samples behind it.
    n_sessions:
        Sessions that contributed visits.
    """

    rate_bpm: float
    known: bool
    effects_pct: dict[float, float] = field(default_factory=dict)
    weight_s: dict[float, float] = field(default_factory=dict)
    n_sessions: int = 0


def rsa_amplitude_bpm(hr_bpm: float, sdnn_ms: float) -> float:
    """Peak-to-trough heart-rate oscillation (bpm) of a sinusoid with this SDNN.

    A sinusoidal NN series of amplitude ``a`` has SD ``a / sqrt(2)``, so its peak-to-trough
    swing is ``2 sqrt(2) SDNN``; relative to the mean interval ``60000 / hr_bpm`` ms that
    is the relative heart-rate swing.
    """
    if not (math.isfinite(hr_bpm) and hr_bpm > 0.0):
        raise InputDataError("hr_bpm", "a positive heart rate in beats/min", hr_bpm)
    if not (math.isfinite(sdnn_ms) and sdnn_ms > 0.0):
        raise InputDataError("sdnn_ms", "a positive SDNN in ms", sdnn_ms)
    nn_ms = 60000.0 / hr_bpm
    return 2.0 * math.sqrt(2.0) * sdnn_ms / nn_ms * hr_bpm


def add_sample(
    record: SessionRecord, rate_bpm: float, t_min: float, amplitude_bpm: float, dt_s: float
) -> SessionRecord:
    """``record`` with one sample added (pure).

    Joins the last visit when it is at the same rate, else opens a new visit.

    Parameters
    ----------
    record:
        The session so far.
    rate_bpm:
        The bin paced, breaths/min.
    t_min:
        Sample time, minutes since the session started.
    amplitude_bpm:
        Heart-rate oscillation, bpm (> 0).
    dt_s:
        Seconds the sample stands for (the metrics interval).
    """
    if not (math.isfinite(amplitude_bpm) and amplitude_bpm > 0.0):
        raise InputDataError("amplitude_bpm", "a positive oscillation in bpm", amplitude_bpm)
    y = math.log(amplitude_bpm)
    visits = list(record.visits)
    if visits and abs(visits[-1].rate_bpm - rate_bpm) < _EPS:
        v = visits[-1]
        w = v.weight_s + dt_s
        visits[-1] = Visit(
            rate_bpm,
            (v.t_min * v.weight_s + t_min * dt_s) / w,
            (v.log_amp * v.weight_s + y * dt_s) / w,
            w,
        )
    else:
        visits.append(Visit(rate_bpm, t_min, y, dt_s))
    return SessionRecord(record.wall_s, tuple(visits))


def _has_drift(record: SessionRecord) -> bool:
    """Whether a session visited some rate twice far enough apart to fit its drift."""
    times: dict[float, list[float]] = {}
    for v in record.visits:
        times.setdefault(v.rate_bpm, []).append(v.t_min)
    return any(max(t) - min(t) >= _DRIFT_MIN_SPAN_MIN for t in times.values() if len(t) > 1)


def _fit_effects(
    sessions: list[SessionRecord], bins: tuple[float, ...]
) -> tuple[dict[float, float], dict[float, float]]:
    """Per-bin effects on ln amplitude (centred) and seconds behind each, by weighted LSQ."""
    rows = [(k, v) for k, s in enumerate(sessions) for v in s.visits if v.rate_bpm in bins]
    weight = {b: 0.0 for b in bins}
    for _, v in rows:
        weight[v.rate_bpm] += v.weight_s
    measured = [b for b in bins if weight[b] > 0.0]
    if not rows or not measured:
        return {}, weight
    col = {b: i for i, b in enumerate(measured)}
    drift = [_has_drift(s) for s in sessions]
    mean_t = [
        sum(v.t_min * v.weight_s for v in s.visits) / max(_EPS, sum(v.weight_s for v in s.visits))
        for s in sessions
    ]
    n_cols = len(measured) + len(sessions) + sum(drift)
    drift_col: dict[int, int] = {}
    for k, d in enumerate(drift):
        if d:
            drift_col[k] = len(measured) + len(sessions) + len(drift_col)
    a = np.zeros((len(rows), n_cols))
    y = np.zeros(len(rows))
    sw = np.zeros(len(rows))
    for i, (k, v) in enumerate(rows):
        a[i, col[v.rate_bpm]] = 1.0
        a[i, len(measured) + k] = 1.0
        if k in drift_col:
            a[i, drift_col[k]] = v.t_min - mean_t[k]
        y[i] = v.log_amp
        sw[i] = math.sqrt(v.weight_s)
    # The bin effects are defined up to a constant shared with the session offsets: the
    # minimum-norm solution fixes it, and only differences between bins are used.
    coef = np.linalg.lstsq(a * sw[:, None], y * sw, rcond=None)[0]
    effects = coef[: len(measured)]
    centre = float(np.average(effects, weights=[weight[b] for b in measured]))
    return {b: float(effects[col[b]]) - centre for b in measured}, weight


def estimate_resonance(
    model: ResonanceModel,
    band: ResonanceBand,
    current: SessionRecord | None = None,
    *,
    min_weight_s: float = 30.0,
) -> ResonanceEstimate:
    """The personal resonance rate from past sessions and the current one.

    Parameters
    ----------
    model:
        Past sessions.
    band:
        The rates compared.
    current:
        The session in progress (its visits count too), or None.
    min_weight_s:
        Seconds of samples a bin needs to count as measured.
    """
    sessions = list(model.sessions)
    if current is not None and current.visits:
        sessions = [s for s in sessions if s.wall_s != current.wall_s] + [current]
    sessions = [s for s in sessions if s.visits]
    effects, weight = _fit_effects(sessions, band.bins)
    measured = {b: e for b, e in effects.items() if weight[b] >= min_weight_s}
    pct = {b: round(100.0 * (math.exp(e) - 1.0), 1) for b, e in measured.items()}
    if not measured:
        return ResonanceEstimate(band.default_bpm, False, pct, weight, len(sessions))
    best = max(measured, key=lambda b: measured[b])
    i = band.bins.index(best)
    lower = band.bins[i - 1] if i > 0 else None
    upper = band.bins[i + 1] if i + 1 < len(band.bins) else None
    neighbours = [b for b in (lower, upper) if b is not None]
    known = len(measured) >= 4 and all(b in measured for b in neighbours)
    if not known:
        return ResonanceEstimate(band.default_bpm, False, pct, weight, len(sessions))
    rate = best
    if lower is not None and upper is not None:
        e_lo, e_0, e_hi = measured[lower], measured[best], measured[upper]
        curvature = e_lo - 2.0 * e_0 + e_hi
        if curvature < -_EPS:
            shift = 0.5 * band.step_bpm * (e_lo - e_hi) / curvature
            rate = best + max(-0.5 * band.step_bpm, min(0.5 * band.step_bpm, shift))
    return ResonanceEstimate(round(rate, 1), True, pct, weight, len(sessions))


def _visit_to_json(v: Visit) -> list[float]:
    return [v.rate_bpm, round(v.t_min, 3), round(v.log_amp, 5), round(v.weight_s, 1)]


def _model_from_json(doc: object) -> ResonanceModel:
    """Parse the ``"resonance"`` entry; raises InputDataError naming what is wrong."""
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise InputDataError("resonance", f"an object with version {_VERSION}", doc)
    sessions = doc.get("sessions")
    if not isinstance(sessions, list):
        raise InputDataError("resonance.sessions", "a list of sessions", sessions)
    out: list[SessionRecord] = []
    for i, s in enumerate(sessions):
        if not isinstance(s, dict):
            raise InputDataError(f"resonance.sessions[{i}]", "an object", s)
        wall = s.get("wall_s")
        visits = s.get("visits")
        if not isinstance(wall, int | float) or not isinstance(visits, list):
            raise InputDataError(
                f"resonance.sessions[{i}]", "wall_s (number) and visits (list)", s
            )
        parsed: list[Visit] = []
        for j, v in enumerate(visits):
            if not (
                isinstance(v, list)
                and len(v) == 4
                and all(isinstance(x, int | float) and math.isfinite(x) for x in v)
                and v[3] > 0
            ):
                raise InputDataError(
                    f"resonance.sessions[{i}].visits[{j}]",
                    "[rate_bpm, t_min, log_amp, weight_s>0]",
                    v,
                )
            parsed.append(Visit(float(v[0]), float(v[1]), float(v[2]), float(v[3])))
        out.append(SessionRecord(float(wall), tuple(parsed)))
    return ResonanceModel(tuple(out[-MAX_SESSIONS:]))


def _model_to_json(model: ResonanceModel, estimate: ResonanceEstimate | None) -> dict[str, object]:
    doc: dict[str, object] = {
        "version": _VERSION,
        "sessions": [
            {"wall_s": s.wall_s, "visits": [_visit_to_json(v) for v in s.visits]}
            for s in model.sessions
        ],
    }
    if estimate is not None:
        doc["rate_bpm"] = estimate.rate_bpm
        doc["known"] = estimate.known
    return doc


class ResonanceStore:
    """The resonance entry of the user's baseline JSON file.

    Parameters
    ----------
    path:
        The baseline file (``<device.state_dir>/baseline.json``), or None to keep nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"ResonanceStore({self.path!s})"

    def _read_all(self) -> dict[str, object]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("baseline file %s unreadable (%s): starting afresh", self.path, exc)
            return {}
        if not isinstance(doc, dict):
            logger.warning("baseline file %s is not a JSON object: starting afresh", self.path)
            return {}
        return doc

    def load(self) -> ResonanceModel:
        """The stored sessions (empty when there is no file or no valid entry)."""
        doc = self._read_all().get("resonance")
        if doc is None:
            return ResonanceModel()
        try:
            return _model_from_json(doc)
        except InputDataError as exc:
            logger.warning("resonance entry of %s ignored: %s", self.path, exc)
            return ResonanceModel()

    def save(self, model: ResonanceModel, estimate: ResonanceEstimate | None = None) -> None:
        """Write the sessions (and the current estimate, for people reading the file).

        The file is replaced atomically; its other keys are kept. An I/O error is logged,
        not raised: losing one night's learning must not stop the sound.
        """
        if self.path is None:
            return
        doc = self._read_all()
        doc["resonance"] = _model_to_json(model, estimate)
        try:
            write_private(self.path, json.dumps(doc, indent=1, sort_keys=True))
        except OSError as exc:
            logger.warning("could not save the resonance rate to %s: %s", self.path, exc)
