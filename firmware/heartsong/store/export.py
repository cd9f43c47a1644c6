"""Export sessions as CSV or JSON, units in every column name, RR series for HRV tools.

CSV (``--format csv --out NAME.csv``) writes three kinds of file:

* ``NAME.csv``: one row per metrics update: ``session_id``, ``time_iso`` (local time with
  offset), ``wall_s`` (Unix s), ``t_s`` (device monotonic s), the metric names of
  :data:`heartsong.events.METRIC_NAMES`, ``n_beats``, ``pacer_bpm``, ``soundscape``;
* ``NAME_events.csv``: ``session_id, time_iso, wall_s, kind, message, data_json``;
* ``NAME_rr_<session>.csv`` per session with beats: ``beat_time_s`` (device monotonic s),
  ``rr_ms`` and ``gap_before`` (1 for the first interval after a gap). The ``rr_ms``
  column is what NeuroKit2 (``nk.hrv(peaks)`` from the cumulative sum), Kubios ("custom
  ASCII", RR column in ms) and ``heartsong analyze --rr`` read.

JSON (``--format json``) writes one document: ``schema_version``, ``units``, and the
sessions, each with its metrics, events and RR series.

What the soundscape learner keeps (:mod:`heartsong.therapy.preference`) is the person's
data too: given ``preferences``, the JSON document holds it under
``"soundscape_preferences"`` and CSV writes ``NAME_soundscape_responses.csv`` (one row
per measured episode: ``soundscape``, ``context``, ``time_iso``, ``start_wall_s``,
``session_s``, ``length_s``, ``d_hr_bpm``, ``d_rmssd_log``, ``d_p_stress``, ``n_clean``
and the start levels ``ref_hr_bpm``, ``ref_rmssd_log``, ``ref_p_stress``).

Export files are created owner-only (0600): they hold health data.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import IO, Final

from heartsong.errors import InputDataError
from heartsong.events import METRIC_NAMES
from heartsong.private_file import open_private_output
from heartsong.store.db import SessionRow, Store
from heartsong.store.schema import SCHEMA_VERSION
from heartsong.therapy.preference import PreferenceModel, model_to_json
from heartsong.therapy.response import Response

__all__ = [
    "FORMATS",
    "METRIC_CSV_COLUMNS",
    "RESPONSE_CSV_COLUMNS",
    "UNITS",
    "export_sessions",
    "rr_series",
]

log = logging.getLogger(__name__)

FORMATS: Final = ("csv", "json")
#: The columns of the metrics CSV, in order.
METRIC_CSV_COLUMNS: Final = (
    "session_id", "time_iso", "wall_s", "t_s", *METRIC_NAMES, "n_beats", "pacer_bpm",
    "soundscape",
)
#: The fields of a :class:`~heartsong.therapy.response.Response` after its soundscape.
_RESPONSE_FIELDS: Final = tuple(f.name for f in fields(Response) if f.name != "soundscape")
#: The columns of the soundscape-responses CSV, in order.
RESPONSE_CSV_COLUMNS: Final = ("soundscape", "context", "time_iso", *_RESPONSE_FIELDS)
#: The unit of each exported quantity (names already end in it; this spells it out).
UNITS: Final = {
    "wall_s": "s (Unix time)", "t_s": "s (device monotonic)", "hr_bpm": "beats/min",
    "rmssd_ms": "ms", "sdnn_ms": "ms", "pnn50_pct": "%", "lf_hf": "ratio",
    "resp_rate_bpm": "breaths/min", "coherence": "0..1", "p_stress": "probability 0..1",
    "signal_quality": "0..1", "pacer_bpm": "breaths/min", "beat_time_s": "s (device monotonic)",
    "rr_ms": "ms",
}


def _iso(wall_s: float) -> str:
    return dt.datetime.fromtimestamp(wall_s).astimezone().isoformat(timespec="milliseconds")


def output_error(path: Path, exc: OSError) -> InputDataError:
    """The ``--out`` error of an export or report file that cannot be written."""
    return InputDataError("--out", "a writable file that is not a database or a link",
                          f"{path}: {exc.strerror}")


@contextmanager
def _private(path: Path) -> Iterator[IO[str]]:
    try:
        fd = open_private_output(path)
    except OSError as exc:
        raise output_error(path, exc) from exc
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        yield f


def rr_series(store: Store, session_id: int) -> list[tuple[float, float, int]]:
    """The session's RR intervals: ``(beat_time_s, rr_ms, gap_before)``; beats without an
    interval (the first, and after a gap) are left out and flag the next one."""
    out: list[tuple[float, float, int]] = []
    gap = 1
    for t, rr, _source in store.beats(session_id):
        if rr is None:
            gap = 1
            continue
        out.append((t, rr, gap))
        gap = 0
    return out


def _chosen(store: Store, session_id: int | None, since_wall_s: float | None) -> list[SessionRow]:
    rows = store.sessions(session_id=session_id, since_wall_s=since_wall_s)
    if session_id is not None and not rows:
        raise InputDataError("--session", "the id of a stored session", session_id)
    return rows


def export_sessions(
    store: Store,
    out: Path,
    fmt: str,
    *,
    session_id: int | None = None,
    since_wall_s: float | None = None,
    preferences: PreferenceModel | None = None,
) -> list[Path]:
    """Write the chosen sessions (all when neither filter is given); return the files.

    ``preferences`` (the soundscape learner's model) is exported with them, whole.

    Raises
    ------
    InputDataError
        For an unknown format or session id, or an output that cannot be written.
    """
    if fmt not in FORMATS:
        raise InputDataError("--format", f"one of {', '.join(FORMATS)}", fmt)
    sessions = _chosen(store, session_id, since_wall_s)
    try:
        files = (_csv(store, out, sessions, preferences) if fmt == "csv"
                 else _json(store, out, sessions, preferences))
    except OSError as exc:
        raise InputDataError("--out", "a writable file path", f"{out}: {exc.strerror}") from exc
    log.info("exported %d session(s) to %s", len(sessions), ", ".join(map(str, files)))
    return files


def _csv(store: Store, out: Path, sessions: list[SessionRow],
         preferences: PreferenceModel | None) -> list[Path]:
    files = [out]
    with _private(out) as f:
        w = csv.writer(f)
        w.writerow(METRIC_CSV_COLUMNS)
        for s in sessions:
            for m in store.metrics(s.id):
                w.writerow([
                    s.id, _iso(float(m["wall_s"])),  # type: ignore[arg-type]
                    *("" if m[c] is None else m[c] for c in METRIC_CSV_COLUMNS[2:]),
                ])
    ev_path = out.with_name(f"{out.stem}_events.csv")
    files.append(ev_path)
    with _private(ev_path) as f:
        w = csv.writer(f)
        w.writerow(("session_id", "time_iso", "wall_s", "kind", "message", "data_json"))
        for s in sessions:
            for e in store.events(s.id):
                w.writerow((s.id, _iso(float(e["wall_s"])), e["wall_s"],  # type: ignore[arg-type]
                            e["kind"], e["message"], json.dumps(e["data"], sort_keys=True)))
    for s in sessions:
        rr = rr_series(store, s.id)
        if not rr:
            continue
        rr_path = out.with_name(f"{out.stem}_rr_{s.id}.csv")
        files.append(rr_path)
        with _private(rr_path) as f:
            w = csv.writer(f)
            w.writerow(("beat_time_s", "rr_ms", "gap_before"))
            w.writerows((f"{t:.4f}", f"{v:.2f}", g) for t, v, g in rr)
    if preferences is not None:
        pref_path = out.with_name(f"{out.stem}_soundscape_responses.csv")
        files.append(pref_path)
        with _private(pref_path) as f:
            w = csv.writer(f)
            w.writerow(RESPONSE_CSV_COLUMNS)
            for r, ctx in preferences.responses:
                values = (getattr(r, name) for name in _RESPONSE_FIELDS)
                w.writerow((r.soundscape, ctx, _iso(r.start_wall_s),
                            *("" if v is None else v for v in values)))
    return files


def _json(store: Store, out: Path, sessions: list[SessionRow],
          preferences: PreferenceModel | None) -> list[Path]:
    """One JSON document, written a session at a time: 90 nights built in memory first
    took ~850 MB (a Pi Zero 2 W has 512 MB); now the memory is one night's."""
    head = {"format": "heartsong-sessions", "schema_version": SCHEMA_VERSION, "units": UNITS}
    with _private(out) as f:
        f.write("{\n")
        for key, value in head.items():
            f.write(f" {json.dumps(key)}: {json.dumps(value)},\n")
        f.write(' "sessions": [')
        for k, s in enumerate(sessions):
            rr = rr_series(store, s.id)
            item = {
                "id": s.id,
                "start_iso": _iso(s.start_wall_s),
                "start_wall_s": s.start_wall_s,
                "end_wall_s": s.end_wall_s,
                "mode": s.mode,
                "soundscapes": s.soundscapes,
                "outcome": s.outcome,
                "summary": s.summary,
                "metrics": store.metrics(s.id),
                "events": store.events(s.id),
                "rr": {
                    "beat_time_s": [round(t, 4) for t, _, _ in rr],
                    "rr_ms": [round(v, 2) for _, v, _ in rr],
                    "gap_before": [g for _, _, g in rr],
                },
            }
            f.write(("," if k else "") + "\n  " + json.dumps(item))
        f.write("\n ]")
        if preferences is not None:
            f.write(',\n "soundscape_preferences": ' + json.dumps(model_to_json(preferences)))
        f.write("\n}\n")
    return [out]
