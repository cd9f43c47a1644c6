"""A session's summary and the night's personal baseline, from its metric updates.

* Resting heart rate: the lowest 5-min rolling mean of ``hr_bpm`` (the "lowest heart
  rate" convention of sleep wearables; 5 min is the Task Force's short-term recording
  length: Task Force of the ESC and NASPE 1996, Circulation 93:1043).
* Night RMSSD: the median of the window RMSSDs, ms (robust to the artefact-heavy minutes
  of turning over; Shaffer & Ginsberg 2017, Front. Public Health 5:258).
* Resonance breathing rate: the pacer rate (breaths/min, rounded to 0.5) with the highest
  mean ``coherence`` while that pacer ran, at least 1 min at that rate (the stepped-rate
  assessment of Lehrer, Vaschillo & Vaschillo 2000, Appl. Psychophysiol. Biofeedback
  25:177, run over the night's pacer schedule); a rate the therapy estimated itself is
  used instead when given.
* Time to calm: seconds from the session's start to the first ``stress_state == "calm"``
  that holds for ``CALM_HOLD_S``; None if never, or if the stress stage gave no states.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CALM_HOLD_S",
    "RESTING_WINDOW_S",
    "NightSummary",
    "resonance_rate_bpm",
    "resting_hr_bpm",
    "summarize",
    "time_to_calm_s",
]

#: The rolling window of the resting heart rate, s.
RESTING_WINDOW_S: Final = 300.0
#: How long "calm" must hold before the session counts as calm, s.
CALM_HOLD_S: Final = 60.0
#: Least time at one pacer rate for it to count in the resonance estimate, s.
RESONANCE_MIN_S: Final = 60.0


@dataclass(frozen=True, slots=True)
class NightSummary:
    """What one session amounted to (units in the names; None = not measured)."""

    session_id: int
    night: str
    start_wall_s: float
    duration_s: float
    mean_hr_bpm: float | None
    resting_hr_bpm: float | None
    rmssd_ms: float | None
    resonance_bpm: float | None
    time_to_calm_s: float | None
    soundscapes: tuple[str, ...]
    adaptations: int
    outcome: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready (floats rounded to 0.1)."""
        out: dict[str, object] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, float):
                value = round(value, 1) if math.isfinite(value) else None
            if isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    def text(self) -> str:
        """A short summary for a person, one or two sentences."""
        parts = [f"Session {self.session_id} on {self.night}: {self.duration_s / 60.0:.0f} min"]
        if self.resting_hr_bpm is not None:
            parts.append(f"resting heart rate {self.resting_hr_bpm:.0f} bpm")
        if self.rmssd_ms is not None:
            parts.append(f"RMSSD {self.rmssd_ms:.0f} ms")
        if self.time_to_calm_s is not None:
            parts.append(f"calm after {self.time_to_calm_s / 60.0:.1f} min")
        elif self.outcome != "interrupted":
            parts.append("no sustained calm measured")
        if self.resonance_bpm is not None:
            parts.append(f"best pacer {self.resonance_bpm:.1f} breaths/min")
        tail = f" ({self.outcome})" if self.outcome != "completed" else ""
        sounds = ", ".join(self.soundscapes) or "none"
        return (", ".join(parts) + f"{tail}. Soundscapes: {sounds}; "
                f"{self.adaptations} adaptation(s).")


def _values(rows: Sequence[dict[str, object]], key: str) -> list[tuple[float, float]]:
    out = []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append((float(r["wall_s"]), float(v)))  # type: ignore[arg-type]
    return out


def resting_hr_bpm(rows: Sequence[dict[str, object]]) -> float | None:
    """Lowest 5-min rolling mean of ``hr_bpm`` (bpm); the mean of all if shorter."""
    series = _values(rows, "hr_bpm")
    if not series:
        return None
    best = math.inf
    lo = 0
    total = 0.0
    for hi, (t, v) in enumerate(series):
        total += v
        while t - series[lo][0] > RESTING_WINDOW_S:
            total -= series[lo][1]
            lo += 1
        if t - series[0][0] >= RESTING_WINDOW_S:
            best = min(best, total / (hi - lo + 1))
    return best if math.isfinite(best) else statistics.fmean(v for _, v in series)


def resonance_rate_bpm(rows: Sequence[dict[str, object]], update_s: float) -> float | None:
    """Pacer rate (breaths/min) with the highest mean coherence, >= 1 min at that rate."""
    by_rate: dict[float, list[float]] = {}
    for r in rows:
        pacer, coh = r.get("pacer_bpm"), r.get("coherence")
        if isinstance(pacer, (int, float)) and isinstance(coh, (int, float)) and math.isfinite(
            coh
        ):
            by_rate.setdefault(round(float(pacer) * 2.0) / 2.0, []).append(float(coh))
    eligible = {k: statistics.fmean(v) for k, v in by_rate.items()
                if len(v) * update_s >= RESONANCE_MIN_S}
    if not eligible:
        return None
    return max(eligible, key=lambda k: eligible[k])


def time_to_calm_s(rows: Sequence[dict[str, object]], start_wall_s: float) -> float | None:
    """Seconds from ``start_wall_s`` to the start of the first calm lasting CALM_HOLD_S."""
    run_start: float | None = None
    for r in rows:
        t = float(r["wall_s"])  # type: ignore[arg-type]
        if r.get("stress_state") == "calm":
            if run_start is None:
                run_start = t
            if t - run_start >= CALM_HOLD_S:
                return max(0.0, run_start - start_wall_s)
        else:
            run_start = None
    return None


def _median(rows: Sequence[dict[str, object]], key: str) -> float | None:
    vals = [v for _, v in _values(rows, key)]
    return statistics.median(vals) if vals else None


def summarize(
    session_id: int,
    start_wall_s: float,
    end_wall_s: float,
    rows: Sequence[dict[str, object]],
    *,
    soundscapes: Sequence[str] = (),
    adaptations: int = 0,
    outcome: str = "completed",
    update_s: float = 5.0,
    resonance_bpm: float | None = None,
) -> NightSummary:
    """Summarise one session from its metric rows (dicts with ``wall_s`` and the metric
    names, ``pacer_bpm``; see :meth:`heartsong.store.db.Store.metrics`)."""
    night = dt.datetime.fromtimestamp(start_wall_s).astimezone().date().isoformat()
    hr = [v for _, v in _values(rows, "hr_bpm")]
    return NightSummary(
        session_id=session_id,
        night=night,
        start_wall_s=start_wall_s,
        duration_s=max(0.0, end_wall_s - start_wall_s),
        mean_hr_bpm=statistics.fmean(hr) if hr else None,
        resting_hr_bpm=resting_hr_bpm(rows),
        rmssd_ms=_median(rows, "rmssd_ms"),
        resonance_bpm=resonance_bpm if resonance_bpm is not None
        else resonance_rate_bpm(rows, update_s),
        time_to_calm_s=time_to_calm_s(rows, start_wall_s),
        soundscapes=tuple(soundscapes),
        adaptations=adaptations,
        outcome=outcome,
    )
