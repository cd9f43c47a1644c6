"""The appliance's side of the session store: turns metrics, events and beats into rows.

Every method runs on the appliance's loop and only queues tuples for the
:class:`~heartsong.store.writer.StoreWriter` thread (no disk I/O, no blocking). At the
end of a session the recorder summarises it (:mod:`heartsong.store.nightly`) from what it
kept in memory, stores the summary and the night's baseline, and returns the summary so
the appliance can publish it over MQTT (:func:`summary_for_mqtt` keeps only what
``mqtt.publish`` allows).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from heartsong.events import METRIC_NAMES, Event, Metrics
from heartsong.store.nightly import NightSummary, summarize
from heartsong.store.writer import StoreWriter

__all__ = ["MAX_RR_MS", "SUMMARY_KEYS", "SessionRecorder", "summary_for_mqtt"]

log = logging.getLogger(__name__)

#: An interval longer than this (ms) is a gap in the beats, not an RR interval (30 bpm).
MAX_RR_MS: Final = 2000.0
#: The metrics the session summary is computed from (kept in memory per update).
SUMMARY_KEYS: Final = ("hr_bpm", "rmssd_ms", "coherence", "stress_state")
_ROW_KEYS: Final = (*SUMMARY_KEYS, "wall_s", "pacer_bpm")
#: Which metric each summary value is derived from (for the MQTT privacy filter).
_SUMMARY_NEEDS: Final = {
    # When the session ran and how it ended: published with the device's state (mode).
    "session_id": "mode",
    "night": "mode",
    "start_wall_s": "mode",
    "duration_s": "mode",
    "outcome": "mode",
    "mean_hr_bpm": "hr_bpm",
    "resting_hr_bpm": "hr_bpm",
    "rmssd_ms": "rmssd_ms",
    "resonance_bpm": "coherence",
    "time_to_calm_s": "stress_state",
    "soundscapes": "soundscape",
    "adaptations": "soundscape",
}


def summary_for_mqtt(
    summary: NightSummary, publishes: Callable[[str], bool]
) -> dict[str, object]:
    """The session summary as a JSON-ready dict, cut to what the privacy setting allows.

    Parameters
    ----------
    summary:
        From :meth:`SessionRecorder.end_session`.
    publishes:
        ``MqttLink.privacy.publishes``: whether a state key may leave the device; each
        summary value is published only if the state key it derives from is; a field the
    table does not know is never published (as in the state filter).
    """
    doc = summary.as_dict()
    return {k: v for k, v in doc.items() if k in _SUMMARY_NEEDS and publishes(
        _SUMMARY_NEEDS[k])}


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class SessionRecorder:
    """Records sessions into the store through its writer.

    Parameters
    ----------
    writer:
        The store's writer thread.
    record_beats:
        Store every beat time and RR interval (``store.record_beats``); False keeps
        metrics and events only.
    update_s:
        The metrics update interval in seconds (``dsp.update_s``), for the summary.
    """

    def __init__(
        self, writer: StoreWriter, *, record_beats: bool = True, update_s: float = 5.0
    ) -> None:
        self.writer = writer
        self.record_beats = bool(record_beats)
        self.update_s = float(update_s)
        self.session_id: int | None = None
        self.last_summary: NightSummary | None = None
        self._start_wall_s = 0.0
        self._rows: list[tuple[object, ...]] = []  # values in _ROW_KEYS order
        self._soundscapes: list[str] = []
        self._adaptations = 0
        self._last_beat: dict[str, float] = {}

    # -- sessions ---------------------------------------------------------------------
    def start_session(self, wall_s: float, mode: str, soundscape: str | None = None) -> int:
        """Begin a session at Unix time ``wall_s`` (s) in therapy ``mode``; returns its id.
        An open session is ended first (outcome ``"restarted"``)."""
        if self.session_id is not None:
            self.end_session(wall_s, outcome="restarted")
        sid = self.writer.new_session_id()
        self.session_id = sid
        self._start_wall_s = float(wall_s)
        self._rows = []
        self._soundscapes = [soundscape] if soundscape else []
        self._adaptations = 0
        self._last_beat = {}
        self.writer.put("session_start", (sid, float(wall_s), mode,
                                          json.dumps(self._soundscapes)))
        log.info("session %d started", sid, extra={"fields": {"session_id": sid, "mode": mode}})
        return sid

    def end_session(
        self, wall_s: float, outcome: str = "completed", *, resonance_bpm: float | None = None
    ) -> NightSummary | None:
        """End the open session at Unix time ``wall_s`` (s); store its summary and the
        night's baseline and return the summary (None when no session is open).

        ``resonance_bpm`` is the therapy's own resonance estimate (breaths/min), if any.
        """
        sid = self.session_id
        if sid is None:
            return None
        summary = summarize(
            sid, self._start_wall_s, float(wall_s),
            [dict(zip(_ROW_KEYS, r, strict=True)) for r in self._rows],
            soundscapes=self._soundscapes, adaptations=self._adaptations, outcome=outcome,
            update_s=self.update_s, resonance_bpm=resonance_bpm,
        )
        self.writer.put("session_end", (float(wall_s), outcome,
                                        json.dumps(summary.as_dict()), sid))
        self.writer.put("baseline", (
            sid, summary.night, summary.start_wall_s, summary.resting_hr_bpm, summary.rmssd_ms,
            summary.resonance_bpm, summary.time_to_calm_s,
        ))
        self.session_id = None
        self._rows = []
        self.last_summary = summary
        log.info(summary.text(), extra={"fields": {"session_id": sid, "outcome": outcome}})
        return summary

    def _ensure_session(self, wall_s: float) -> int:
        if self.session_id is None:
            return self.start_session(wall_s, "unknown")
        return self.session_id

    # -- data -------------------------------------------------------------------------
    def on_metrics(
        self, m: Metrics, *, pacer_bpm: float | None = None, soundscape: str | None = None
    ) -> None:
        """Record one metrics update, with the pacer rate (breaths/min) and soundscape in
        force."""
        sid = self._ensure_session(m.wall_s)
        values = [getattr(m, name) for name in METRIC_NAMES]
        self.writer.put("metrics", (
            sid, m.t_s, m.wall_s, *values, m.n_beats, _num(pacer_bpm), soundscape,
            json.dumps(m.reasons, sort_keys=True),
        ))
        # Only what the night's summary reads, as a tuple (the store has every value): a
        # night is ~6,000 updates, and the appliance's memory must not grow with it.
        self._rows.append((*(getattr(m, name) for name in SUMMARY_KEYS), m.wall_s, pacer_bpm))
        if soundscape:
            self.on_soundscape(soundscape)

    def on_soundscape(self, name: str) -> None:
        """Soundscape ``name`` is in force in the open session: kept once, in the order
        they first played (nothing outside a session)."""
        if self.session_id is None or name in self._soundscapes:
            return
        self._soundscapes.append(name)
        self.writer.put("session_soundscapes", (json.dumps(self._soundscapes), self.session_id))

    def on_event(self, e: Event) -> None:
        """Record one event (kept outside any session when none is open)."""
        if e.kind == "adaptation" and self.session_id is not None:
            self._adaptations += 1
        self.writer.put("event", (self.session_id, e.t_s, e.wall_s, e.kind, e.message,
                                  json.dumps(e.data, sort_keys=True, default=str)))

    def on_beats(
        self,
        beat_times_s: npt.ArrayLike | Sequence[float],
        source: str,
        *,
        rr_ms: npt.ArrayLike | None = None,
        gap_before: bool = False,
    ) -> None:
        """Record accepted beats (monotonic s) from ``source``; the RR interval of each is
        ``rr_ms`` if given, else the time since the previous beat of that source, None
        after a gap (``gap_before``, or longer than :data:`MAX_RR_MS`)."""
        if not self.record_beats or self.session_id is None:
            return
        times = np.asarray(beat_times_s, dtype=np.float64).ravel()
        if times.size == 0:
            return
        given = None if rr_ms is None else np.asarray(rr_ms, dtype=np.float64).ravel()
        prev = None if gap_before else self._last_beat.get(source)
        sid = self.session_id
        for k, t in enumerate(times.tolist()):
            rr: float | None
            if given is not None and given.size == times.size:
                rr = float(given[k]) if not (k == 0 and gap_before) else None
            else:
                rr = None if prev is None else (t - prev) * 1000.0
            if rr is not None and not 0.0 < rr <= MAX_RR_MS:
                rr = None
            self.writer.put("beat", (sid, t, rr, source))
            prev = t
        self._last_beat[source] = prev if prev is not None else float(times[-1])

    def close(self, wall_s: float | None = None, outcome: str = "completed") -> None:
        """End the open session (at ``wall_s``, else at its last update) and close the
        writer, committing everything queued."""
        if self.session_id is not None:
            last = self._rows[-1][_ROW_KEYS.index("wall_s")] if self._rows \
                else self._start_wall_s
            self.end_session(float(wall_s if wall_s is not None else last),  # type: ignore[arg-type]
                             outcome)
        self.writer.close()

    def __repr__(self) -> str:
        return f"SessionRecorder(session={self.session_id}, writer={self.writer!r})"
