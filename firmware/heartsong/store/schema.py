"""The session database's schema as an ordered list of migrations (``PRAGMA user_version``).

Migration ``k`` (1-based) takes a database at version ``k - 1`` to version ``k``; a new
database runs them all, an old one only those it lacks, each in one transaction with the
version bump, so a power cut mid-migration leaves the previous version intact. Never edit
a released migration: append a new one.

Column names carry their units (``_s``, ``_ms``, ``_bpm``, ``_pct``); the metric columns
are the canonical names of :data:`heartsong.events.METRIC_NAMES`. Times are Unix seconds
(``wall_s``) or the device's monotonic seconds (``t_s``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1: Final = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    start_wall_s REAL NOT NULL,
    end_wall_s REAL,
    mode TEXT NOT NULL
);
CREATE TABLE metrics (
    seq INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    wall_s REAL NOT NULL,
    hr_bpm REAL,
    rmssd_ms REAL,
    sdnn_ms REAL,
    pnn50_pct REAL,
    lf_hf REAL,
    resp_rate_bpm REAL,
    coherence REAL,
    p_stress REAL,
    stress_state TEXT NOT NULL,
    signal_quality REAL,
    source TEXT NOT NULL
);
CREATE INDEX metrics_session ON metrics(session_id, seq);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    wall_s REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_session ON events(session_id, seq);
"""

# Version 2: what the sessions were for (soundscapes, outcome), what the therapy did
# (pacer, soundscape per update), the beats themselves, and the nightly baseline.
_V2: Final = """
ALTER TABLE sessions ADD COLUMN soundscapes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN outcome TEXT;
ALTER TABLE sessions ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';
ALTER TABLE metrics ADD COLUMN n_beats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metrics ADD COLUMN pacer_bpm REAL;
ALTER TABLE metrics ADD COLUMN soundscape TEXT;
ALTER TABLE metrics ADD COLUMN reasons TEXT NOT NULL DEFAULT '{}';
CREATE INDEX metrics_wall ON metrics(wall_s);
CREATE INDEX sessions_start ON sessions(start_wall_s);
CREATE TABLE beats (
    seq INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    t_s REAL NOT NULL,
    rr_ms REAL,
    source TEXT NOT NULL
);
CREATE INDEX beats_session ON beats(session_id, seq);
CREATE TABLE baseline (
    session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    night TEXT NOT NULL,
    wall_s REAL NOT NULL,
    resting_hr_bpm REAL,
    rmssd_ms REAL,
    resonance_bpm REAL,
    time_to_calm_s REAL
);
CREATE INDEX baseline_night ON baseline(night);
"""

#: The migrations in order; the schema version is their count.
MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2)
#: The schema version this code writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)
