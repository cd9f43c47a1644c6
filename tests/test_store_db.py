"""The session database: migrations from the first schema, retention, deletion, privacy."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from heartsong.errors import InputDataError
from heartsong.events import Event, Metrics
from heartsong.store.db import Store, db_path
from heartsong.store.recorder import SessionRecorder, summary_for_mqtt
from heartsong.store.retention import DAY_S, apply_retention, parse_date
from heartsong.store.schema import MIGRATIONS, SCHEMA_VERSION
from heartsong.store.writer import StoreWriter
from heartsong.store_cmd import add_parser, run
from mqtt_tls import wait_for


def _record(path: Path, start_wall_s: float, n: int = 40, *, flush_s: float = 0.05) -> int:
    """One session of ``n`` 5-s updates starting at ``start_wall_s``; returns its id."""
    rec = SessionRecorder(StoreWriter(path, flush_s=flush_s, retention_days=0))
    sid = rec.start_session(start_wall_s, "calm", "rain")
    for k in range(n):
        wall = start_wall_s + 5.0 * k
        rec.on_metrics(Metrics(t_s=5.0 * k, wall_s=wall, hr_bpm=70.0 - 0.2 * k,
                               rmssd_ms=30.0 + 0.5 * k, coherence=0.4, source="ble",
                               stress_state="calm" if k >= 10 else "neutral"),
                       pacer_bpm=6.0, soundscape="rain" if k < n // 2 else "waves")
        rec.on_beats([5.0 * k + 0.9 * i for i in range(5)], "ble")
    rec.on_event(Event(10.0, start_wall_s + 10.0, "adaptation", "pacer slowed to 6/min"))
    rec.close(start_wall_s + 5.0 * n)
    return sid


def test_new_database_is_private_and_current(tmp_path: Path) -> None:
    path = db_path(tmp_path / "state")
    store = Store(path)
    assert store.version == SCHEMA_VERSION == len(MIGRATIONS)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_migration_from_the_first_schema_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = Store(path, migrate=False)
    old.migrate(1)
    assert old.version == 1
    old.db.execute("INSERT INTO sessions (id, start_wall_s, end_wall_s, mode) "
                   "VALUES (1, 1000.0, 1600.0, 'sleep')")
    old.db.execute(
        "INSERT INTO metrics (session_id, t_s, wall_s, hr_bpm, rmssd_ms, stress_state, source) "
        "VALUES (1, 5.0, 1005.0, 61.5, 44.0, 'calm', 'ble')")
    old.db.execute("INSERT INTO events (session_id, t_s, wall_s, kind, message) "
                   "VALUES (1, 6.0, 1006.0, 'adaptation', 'quieter')")
    old.close()

    store = Store(path)  # migrates on open
    assert store.version == SCHEMA_VERSION
    (s,) = store.sessions()
    assert (s.id, s.mode, s.soundscapes, s.outcome) == (1, "sleep", [], None)
    (m,) = store.metrics(1)
    assert m["hr_bpm"] == 61.5 and m["rmssd_ms"] == 44.0 and m["pacer_bpm"] is None
    assert m["n_beats"] == 0 and m["reasons"] == {}
    assert store.events(1)[0]["data"] == {}
    # The new tables work on the migrated file.
    store.write_batch([("beat", (1, 5.5, 980.0, "ble")),
                       ("baseline", (1, "1970-01-01", 1000.0, 60.0, 44.0, 6.0, 120.0))])
    assert store.beats(1) == [(5.5, 980.0, "ble")]
    assert store.baseline()[0].time_to_calm_s == 120.0
    assert store.integrity() == "ok"
    assert store.migrate() == 0  # nothing left to do
    store.close()


def test_a_newer_schema_or_a_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(InputDataError, match="store"):
        Store(path)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(InputDataError, match="store"):
        Store(junk)


def test_recorder_stores_session_summary_and_baseline(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    sid = _record(path, 1_700_000_000.0)
    store = Store(path)
    (s,) = store.sessions()
    assert s.id == sid and s.outcome == "completed" and s.soundscapes == ["rain", "waves"]
    assert s.duration_s == pytest.approx(200.0)
    rows = store.metrics(sid)
    assert [r["hr_bpm"] for r in rows] == pytest.approx([70.0 - 0.2 * k for k in range(40)])
    assert len(store.beats(sid)) == 200
    rr = [b[1] for b in store.beats(sid)]
    assert rr[0] is None and rr[1] == pytest.approx(900.0)
    (b,) = store.baseline()
    # Resting HR is the lowest 5-min mean (the last 61 s x 5 updates are the lowest).
    assert b.resting_hr_bpm is not None and b.resting_hr_bpm < float(rows[0]["hr_bpm"])  # type: ignore[arg-type]
    assert b.time_to_calm_s == pytest.approx(50.0)
    assert b.resonance_bpm == 6.0
    assert s.summary["adaptations"] == 1
    store.close()


def test_summary_for_mqtt_follows_the_privacy_setting(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    rec = SessionRecorder(StoreWriter(path, flush_s=0.05, retention_days=0))
    rec.start_session(1000.0, "calm")
    rec.on_metrics(Metrics(t_s=0.0, wall_s=1000.0, hr_bpm=60.0, rmssd_ms=40.0))
    summary = rec.end_session(1100.0)
    rec.close()
    assert summary is not None
    everything = summary_for_mqtt(summary, lambda key: True)
    only_stress = summary_for_mqtt(summary, lambda key: key == "stress_state")
    assert everything["resting_hr_bpm"] == 60.0 and everything["rmssd_ms"] == 40.0
    assert "resting_hr_bpm" not in only_stress and "rmssd_ms" not in only_stress
    assert "time_to_calm_s" in only_stress
    # when the person went to bed and for how long is the device's state, not stress's
    assert not {"night", "start_wall_s", "duration_s", "outcome"} & set(only_stress)
    assert set(everything) == set(summary.as_dict())  # every field is in the table
    json.dumps(everything)


def test_session_soundscapes_are_the_ones_that_played_in_order(tmp_path: Path) -> None:
    rec = SessionRecorder(StoreWriter(db_path(tmp_path), flush_s=0.05, retention_days=0))
    rec.on_soundscape("ocean")  # no session open: nothing to keep
    rec.start_session(1000.0, "calm")
    for name in ("rain", "rain", "ocean", "rain"):
        rec.on_soundscape(name)
    summary = rec.end_session(1100.0)
    rec.close()
    assert summary is not None and summary.soundscapes == ("rain", "ocean")


def test_a_session_cut_short_is_closed_as_interrupted(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    writer = StoreWriter(path, flush_s=0.05, retention_days=0)
    rec = SessionRecorder(writer)
    rec.start_session(1000.0, "sleep")
    rec.on_metrics(Metrics(t_s=0.0, wall_s=1030.0, hr_bpm=60.0))
    writer.close()  # the data is committed, but the session never ended (a crash)
    StoreWriter(path, retention_days=0).close()  # the next start-up closes it
    store = Store(path)
    (s,) = store.sessions()
    assert s.outcome == "interrupted" and s.end_wall_s == 1030.0
    store.close()


def test_retention_deletes_old_sessions_with_all_their_rows(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    now = 1_700_000_000.0
    old = _record(path, now - 100 * DAY_S)
    kept = _record(path, now - 10 * DAY_S)
    store = Store(path)
    assert apply_retention(store, 90.0, now) == 1
    assert [s.id for s in store.sessions()] == [kept]
    for table in ("metrics", "beats", "events", "baseline"):
        left = store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?",
                                (old,)).fetchone()[0]
        assert left == 0, table
    assert store.metrics(kept) and store.baseline()
    assert apply_retention(store, 0.0, now + 1000 * DAY_S) == 0  # 0 keeps everything
    store.close()


def test_writer_applies_retention_at_start(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    now = 1_700_000_000.0
    _record(path, now - 200 * DAY_S)
    recent = _record(path, now - DAY_S)
    StoreWriter(path, flush_s=0.05, retention_days=90, wall=lambda: now).close()
    store = Store(path)
    assert [s.id for s in store.sessions()] == [recent]
    store.close()


def _cli(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return run(p.parse_args(argv))


def test_data_delete_before_and_all_leave_no_trace(tmp_path: Path) -> None:
    path = db_path(tmp_path)
    t_old = parse_date("2024-01-10") + 22 * 3600
    t_new = parse_date("2024-02-10") + 22 * 3600
    _record(path, t_old)
    _record(path, t_new)
    assert _cli(["data", "delete", "--before", "2024-02-01", "--db", str(path)]) == 0
    store = Store(path)
    assert [s.start_wall_s for s in store.sessions()] == [t_new]
    store.close()
    learnt = [tmp_path / n for n in ("stress_baseline.json", "baseline.json",
                                     "ble_last_strap.json", "mqtt-outbox.sqlite3",
                                     "mqtt-outbox.sqlite3-wal")]
    for f in learnt:
        f.write_text('{"resting hr": 61}')
    assert _cli(["data", "delete", "--all", "--db", str(path)]) == 0
    assert not any(f.exists() for f in learnt)  # what was learnt about the person goes too
    store = Store(path)
    assert set(store.counts().values()) == {0}
    assert store.integrity() == "ok"
    store.close()
    # Deleted rows are overwritten and vacuumed: the file no longer holds them.
    raw = path.read_bytes() + (path.with_name(path.name + "-wal").read_bytes()
                               if path.with_name(path.name + "-wal").exists() else b"")
    assert b"pacer slowed to 6/min" not in raw


def test_data_delete_rejects_a_bad_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    path = db_path(tmp_path)
    _record(path, 1_700_000_000.0)
    assert _cli(["data", "delete", "--before", "last tuesday", "--db", str(path)]) == 2
    assert "--before" in capsys.readouterr().err
    assert _cli(["data", "delete", "--all", "--db", str(tmp_path / "nope.sqlite3")]) == 2


def test_export_and_report_outputs_are_owner_only_and_never_a_database(
    tmp_path: Path,
) -> None:
    """--out naming the session store destroyed every night in it; an existing file kept
    its mode (0644: health data readable by all); a symbolic link was followed."""
    path = db_path(tmp_path / "state")
    _record(path, parse_date("2024-01-10") + 22 * 3600)
    size = path.stat().st_size
    for argv in (["export", "--format", "json", "--out", str(path)],
                 ["export", "--format", "csv", "--out", str(path)],
                 ["report", "--last", "--out", str(path.with_suffix(".png"))]):
        if argv[0] == "report":
            path.with_suffix(".png").write_bytes(path.read_bytes()[:100])  # a db header
        assert _cli([*argv, "--db", str(path)]) == 2
    assert path.stat().st_size == size
    store = Store(path)
    assert len(store.sessions()) == 1  # still a database with its night
    store.close()
    loose = tmp_path / "loose.json"
    loose.write_text("old")
    loose.chmod(0o644)
    assert _cli(["export", "--format", "json", "--out", str(loose), "--db", str(path)]) == 0
    assert loose.stat().st_mode & 0o777 == 0o600 and "sessions" in loose.read_text()
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    assert _cli(["export", "--format", "json", "--out", str(link), "--db", str(path)]) == 2
    assert victim.read_text() == "someone else's"


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "--session", "99999999999999999999", "--format", "json", "--out", "x.json"],
        ["report", "--nights", "99999999999999999999", "--out", "x.png"],
        ["export", "--since", "0001-01-01", "--format", "json", "--out", "x.json"],
        ["data", "delete", "--before", "0001-01-01"],
    ],
)
def test_numbers_and_dates_past_the_store_exit_2(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """They went into SQLite or datetime unchecked: OverflowError, IntegrityError and
    'year 0 is out of range' tracebacks (exit 1)."""
    path = db_path(tmp_path)
    _record(path, parse_date("2024-01-10") + 22 * 3600)
    out = [a if not a.startswith("x.") else str(tmp_path / a) for a in argv]
    try:
        code = _cli([*out, "--db", str(path)])
    except SystemExit as exc:  # argparse's own refusal
        code = int(exc.code or 0)
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_data_delete_waits_for_a_stopped_device(tmp_path: Path) -> None:
    """Deleting while the device recorded removed tonight's open session: every later row
    failed its foreign key and logged an error, and the learnt files came back."""
    import time

    path = db_path(tmp_path)
    rec = SessionRecorder(StoreWriter(path, flush_s=0.05, retention_days=0))
    now = time.time()
    rec.start_session(now - 60.0, "calm")
    rec.on_metrics(Metrics(t_s=0.0, wall_s=now - 5.0, hr_bpm=60.0))
    assert wait_for(lambda: rec.writer.pending == 0, timeout_s=5.0)
    time.sleep(0.2)  # the writer commits every 0.05 s
    for argv in (["data", "delete", "--all"], ["data", "delete", "--before", "2100-01-01"]):
        assert _cli([*argv, "--db", str(path)]) == 2
    store = Store(path)
    assert len(store.sessions()) == 1
    store.close()
    rec.close(now)
    assert _cli(["data", "delete", "--all", "--db", str(path)]) == 0  # once it stopped


def test_commands_refuse_a_db_that_is_not_theirs_without_touching_it(tmp_path: Path) -> None:
    """Store() tightened any --db file to 0600 (/etc/passwd included) and migrated a
    foreign SQLite file or an empty one into a session database."""
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    text.chmod(0o644)
    foreign = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE contacts (name TEXT)")
    con.commit()
    con.close()
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    for path in (text, foreign, empty):
        before = (path.read_bytes(), path.stat().st_mode)
        code = _cli(["export", "--format", "json", "--out", str(tmp_path / "o.json"),
                     "--db", str(path)])
        assert code == 2 and (path.read_bytes(), path.stat().st_mode) == before, path
