"""A simulated week of nights into a session store, then the reports that show its trend.

Each night one simulated person (:class:`heartsong.sensors.sim_person.SimulatedPerson`)
goes to bed a little more rested than the night before: resting heart rate falls, RMSSD
rises and the stress at bedtime drops, by the amounts given. A simulated chest strap
(:class:`heartsong.sensors.sim_strap.SimulatedStrap`) feeds the device's streaming DSP
(:class:`heartsong.dsp.pipeline.StreamingPipeline`); a breath pacer at 6 breaths/min
starts after two minutes (the person follows it and calms, see the person model). The
stress stage is a stand-in (the person's true stress plus Gaussian noise, SD 0.05):
the trained model is not part of this tool. Every update, beat and pacer change goes
through the device's own :class:`heartsong.store.recorder.SessionRecorder`.

``python tools/simulate_week.py [--nights 7] [--minutes 30] [--seed 0] [--out DIR]``
writes ``DIR/sessions.sqlite3``, ``DIR/week.png``, ``DIR/week.html`` and
``DIR/last_night.png``, and prints the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from pathlib import Path

import numpy as np

from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.events import Event, RrBlock, StressState
from heartsong.sensors.sim_person import PersonParams, SimulatedPerson
from heartsong.sensors.sim_strap import SimulatedStrap
from heartsong.store.db import Store, db_path
from heartsong.store.recorder import SessionRecorder
from heartsong.store.report import render_report
from heartsong.store.writer import StoreWriter

UPDATE_S = 5.0
PACER_START_S = 120.0
PACER_BPM = 6.0
STRESS_NOISE_SD = 0.05


def night_params(night: int, nights: int, args: argparse.Namespace) -> PersonParams:
    """The person on ``night`` (0-based): linear from the first night's values to the
    last's (resting HR in bpm, RMSSD in ms, bedtime stress 0..1)."""
    f = night / max(1, nights - 1)
    return PersonParams(
        hr_bpm=args.hr_start + f * (args.hr_end - args.hr_start),
        rmssd_ms=args.rmssd_start + f * (args.rmssd_end - args.rmssd_start),
        stress=args.stress_start + f * (args.stress_end - args.stress_start),
        motion_artifacts_per_hour=0.0,
    )


def simulate_night(rec: SessionRecorder, params: PersonParams, start_wall_s: float,
                   minutes: float, seed: int) -> None:
    """One session: strap -> streaming DSP -> stand-in stress -> recorder."""
    rng = np.random.default_rng(seed)
    person = SimulatedPerson(params, seed=seed)
    strap = SimulatedStrap(person)
    pipe = StreamingPipeline(window_s=60.0, update_s=UPDATE_S)
    rec.start_session(start_wall_s, "wind_down", "rain")
    pacer: float | None = None
    t = 0.0
    while t < minutes * 60.0:
        t += UPDATE_S
        if pacer is None and t >= PACER_START_S:
            pacer = PACER_BPM
            person.set_pacer(pacer)
            rec.on_event(Event(t, start_wall_s + t, "adaptation",
                               f"breath pacer on at {pacer:g}/min: heart rate settled",
                               {"pacer_bpm": pacer}))
        for arrival, rr, beats in strap.notifications_until(t):
            accepted = pipe.feed_rr(RrBlock(arrival, rr, beats))
            rec.on_beats(accepted, "ble", rr_ms=rr if rr.size == accepted.size else None)
        m = pipe.metrics(t, start_wall_s + t, "ble")
        p = float(np.clip(person.stress + rng.normal(0.0, STRESS_NOISE_SD), 0.0, 1.0))
        state: StressState = "calm" if p < 0.35 else "stressed" if p > 0.65 else "neutral"
        m = dataclasses.replace(m, p_stress=p, stress_state=state)
        scape = "rain" if t < minutes * 30.0 else "deep_ocean"
        if scape == "deep_ocean" and t - UPDATE_S < minutes * 30.0:
            rec.on_event(Event(t, start_wall_s + t, "adaptation",
                               "soundscape rain -> deep_ocean: sleep timer half-way"))
        rec.on_metrics(m, pacer_bpm=pacer, soundscape=scape)
    rec.end_session(start_wall_s + t)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nights", type=int, default=7)
    p.add_argument("--minutes", type=float, default=30.0, help="session length, min")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hr-start", type=float, default=66.0, help="bpm, first night")
    p.add_argument("--hr-end", type=float, default=58.0, help="bpm, last night")
    p.add_argument("--rmssd-start", type=float, default=32.0, help="ms, first night")
    p.add_argument("--rmssd-end", type=float, default=50.0, help="ms, last night")
    p.add_argument("--stress-start", type=float, default=0.7, help="0..1, first night")
    p.add_argument("--stress-end", type=float, default=0.4, help="0..1, last night")
    p.add_argument("--out", type=Path, default=Path("week-report"))
    args = p.parse_args(argv)
    if args.nights < 1 or args.minutes < 5:
        p.error("--nights must be >= 1 and --minutes >= 5")
    args.out.mkdir(parents=True, exist_ok=True)
    path = db_path(args.out)
    if path.exists():
        p.error(f"{path} exists; choose an empty --out directory")
    first = (dt.datetime.now().astimezone().replace(hour=22, minute=30, second=0, microsecond=0)
             - dt.timedelta(days=args.nights))
    rec = SessionRecorder(StoreWriter(path, retention_days=0), update_s=UPDATE_S)
    for night in range(args.nights):
        start = (first + dt.timedelta(days=night)).timestamp()
        simulate_night(rec, night_params(night, args.nights, args), start, args.minutes,
                       args.seed + night)
        assert rec.last_summary is not None
        sys.stdout.write(rec.last_summary.text() + "\n")
    rec.close()
    store = Store(path)
    try:
        lines = render_report(store, args.out / "week.png", nights=args.nights)
        render_report(store, args.out / "week.html", nights=args.nights)
        render_report(store, args.out / "last_night.png", last=True)
    finally:
        store.close()
    sys.stdout.write("\n".join(lines) + f"\nreports in {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
