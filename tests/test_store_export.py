"""Export: units in the column names, and an RR series that re-analyses to the stored metrics."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from heartsong import analyze_cmd
from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.events import METRIC_NAMES, Event, RrBlock
from heartsong.sensors.sim_person import PersonParams, SimulatedPerson
from heartsong.sensors.sim_strap import SimulatedStrap
from heartsong.store.db import Store, db_path
from heartsong.store.export import METRIC_CSV_COLUMNS, export_sessions
from heartsong.store.recorder import SessionRecorder
from heartsong.store.writer import StoreWriter
from heartsong.store_cmd import add_parser, run

WINDOW_S = 60.0
STEP_S = 10.0
MINUTES = 8
WALL0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """A simulated strap session through the device's streaming DSP into the store.

    Metrics are taken at the batch analysis's window ends (first beat + 60 s + k * 10 s),
    so the stored values and the re-analysis describe the same windows.
    """
    path = db_path(tmp_path_factory.mktemp("state"))
    person = SimulatedPerson(PersonParams(hr_bpm=62.0, rmssd_ms=45.0,
                                          motion_artifacts_per_hour=0.0), seed=7)
    strap = SimulatedStrap(person)
    pipe = StreamingPipeline(window_s=WINDOW_S, update_s=STEP_S)
    rec = SessionRecorder(StoreWriter(path, flush_s=0.05, retention_days=0))
    rec.start_session(WALL0, "calm", "rain")
    first_beat: float | None = None
    due: list[float] = []
    t = 0.0
    while t < MINUTES * 60.0:
        t += 1.0
        for arrival, rr, beats in strap.notifications_until(t):
            accepted = pipe.feed_rr(RrBlock(arrival, rr, beats))
            rec.on_beats(accepted, "ble", rr_ms=rr if rr.size == accepted.size else None)
            if first_beat is None and beats.size:
                first_beat = float(beats[0] - rr[0] / 1000.0)
                due = [first_beat + WINDOW_S + STEP_S * k for k in range(60)]
        while due and due[0] <= t - 1.0:  # every beat up to the window end has arrived
            t_end = due.pop(0)
            rec.on_metrics(pipe.metrics(t_end, WALL0 + t_end, "ble"), pacer_bpm=6.0,
                           soundscape="rain")
    rec.on_event(Event(30.0, WALL0 + 30.0, "adaptation", "pacer 6/min: breathing follows",
                       {"pacer_bpm": 6.0}))
    rec.close(WALL0 + t)
    assert first_beat is not None
    return path, [first_beat]


def test_csv_export_has_units_in_every_column(recorded: tuple[Path, list[float]],
                                              tmp_path: Path) -> None:
    path, _ = recorded
    store = Store(path)
    files = export_sessions(store, tmp_path / "night.csv", "csv")
    store.close()
    names = [f.name for f in files]
    assert names == ["night.csv", "night_events.csv", "night_rr_1.csv"]
    with open(files[0], newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == METRIC_CSV_COLUMNS
    assert set(METRIC_NAMES) <= set(rows[0])
    assert len(rows) > 30 and all(r["session_id"] == "1" for r in rows)
    with open(files[1], newline="") as f:
        (ev,) = list(csv.DictReader(f))
    assert ev["kind"] == "adaptation" and json.loads(ev["data_json"]) == {"pacer_bpm": 6.0}
    with open(files[2], newline="") as f:
        rr = list(csv.DictReader(f))
    assert tuple(rr[0]) == ("beat_time_s", "rr_ms", "gap_before")
    for f in files:
        assert f.stat().st_mode & 0o777 == 0o600


def test_exported_rr_reanalysed_gives_the_stored_metrics(
    recorded: tuple[Path, list[float]], tmp_path: Path
) -> None:
    path, (first_beat,) = recorded
    out = tmp_path / "x.csv"
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_parser(sub)
    analyze_cmd.add_parser(sub)
    assert run(p.parse_args(["export", "--session", "1", "--format", "csv", "--out", str(out),
                             "--db", str(path)])) == 0
    rr_file = tmp_path / "x_rr_1.csv"
    with open(rr_file, newline="") as f:
        rr_rows = list(csv.DictReader(f))
    # The batch analysis starts its clock at the beat before the first interval.
    origin = float(rr_rows[0]["beat_time_s"]) - float(rr_rows[0]["rr_ms"]) / 1000.0
    assert origin == pytest.approx(first_beat, abs=1e-3)
    result_json = tmp_path / "a.json"
    args = p.parse_args(["analyze", str(rr_file), "--rr", "--json", str(result_json),
                         "--window", str(WINDOW_S), "--step", str(STEP_S)])
    assert analyze_cmd.run(args) == 0
    windows = json.loads(result_json.read_text())["windows"]
    store = Store(path)
    stored = {round(float(m["t_s"]) - origin, 1): m for m in store.metrics(1)}  # type: ignore[arg-type]
    store.close()
    compared = 0
    for w in windows:
        m = stored.get(round(w["t_end_s"], 1))
        if m is None or w["hr_bpm"] is None or m["hr_bpm"] is None:
            continue
        compared += 1
        assert m["hr_bpm"] == pytest.approx(w["hr_bpm"], rel=0.01)
        assert m["rmssd_ms"] == pytest.approx(w["rmssd_ms"], rel=0.05)
        assert m["sdnn_ms"] == pytest.approx(w["sdnn_ms"], rel=0.05)
    assert compared >= 30


def test_json_export_holds_sessions_metrics_and_rr(recorded: tuple[Path, list[float]],
                                                   tmp_path: Path) -> None:
    path, _ = recorded
    store = Store(path)
    (out,) = export_sessions(store, tmp_path / "all.json", "json", since_wall_s=WALL0 - 1)
    with pytest.raises(Exception, match="--session"):
        export_sessions(store, tmp_path / "none.json", "json", session_id=99)
    store.close()
    doc = json.loads(out.read_text())
    (s,) = doc["sessions"]
    assert doc["units"]["rmssd_ms"] == "ms" and s["mode"] == "calm"
    rr = np.asarray(s["rr"]["rr_ms"])
    assert rr.size > 400 and 700.0 < float(np.median(rr)) < 1200.0
    assert len(s["metrics"]) > 30 and s["summary"]["session_id"] == 1
