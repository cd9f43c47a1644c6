"""The therapy in closed loop against two open-loop baselines, on simulated nights.

Each session is one simulated person going to bed
(:class:`heartsong.sensors.sim_sleep.SimulatedSleeper` around
:class:`heartsong.sensors.sim_person.SimulatedPerson`), read by a simulated chest strap
whose intervals movement corrupts, through the device's own streaming DSP
(:class:`heartsong.dsp.pipeline.StreamingPipeline`), a stand-in stress estimate, and one
of three policies, in simulated time (no asyncio, no audio):

* ``closed``: :class:`heartsong.therapy.controller.TherapyController`, the device's
  policy, with each person's resonance sessions kept from night to night;
* ``dodow``: a Dodow-style fixed schedule, pacer 11 -> 6 breaths/min over 8 min, then
  held at 6 until a 30-min sleep timer;
* ``playlist``: a fixed playlist without pacer, stopped by a 30-min sleep timer.

Every arm sees the same people and the same nights (seeds). Reported per arm: time to
calm (the person's simulated arousal first at or below its ``calm_stress``; censored
at the session's end), share of the awake time spent breathing within 1 breath/min of
the person's own resonance rate, and the delay from the simulated sleep onset to its
detection by the device's detector (in the baselines it only observes). A sensitivity
run repeats everything with "ideal followers" who follow any pacer.

The stress stand-in is the person's true arousal rescaled to 0..1 plus Gaussian noise
(SD 0.1), unknown when the signal quality is below 0.5: the trained model is not part
of this test. Sound itself has no effect on the simulated person; only breathing does.

``python tools/simulate_sessions.py [--people 20] [--nights 3] [--minutes 60]
[--seed 0] [--jobs 2] [--no-sensitivity] [--out docs]`` writes
``docs/THERAPY_SIMULATION.md`` and ``docs/therapy_simulation.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.dsp.pipeline import warm_up as dsp_warm_up
from heartsong.events import Metrics, RrBlock, StressState
from heartsong.sensors.sim_person import PersonParams, rsa_gain
from heartsong.sensors.sim_sleep import MovementArtifacts, SimulatedSleeper, SleeperParams
from heartsong.sensors.sim_strap import SimulatedStrap
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.controller import TherapyController
from heartsong.therapy.policy import PolicySettings
from heartsong.therapy.resonance import BASELINE_FILE, ResonanceStore
from heartsong.therapy.sleep_onset import SleepConfig, SleepState, observe, sleep_step

ARMS = ("closed", "dodow", "playlist")
UPDATE_S = 5.0
DETECT_WITHIN_S = 300.0
RESONANCE_BAND_BPM = 1.0
DODOW = (11.0, 6.0, 480.0)  # start and end rate (breaths/min), ramp duration (s)
TIMER_S = 1800.0
PLAYLIST = ("rain", "ocean", "forest_night")
PLAYLIST_TRACK_S = 600.0
STRESS_NOISE_SD = 0.1
IDEAL_CAPTURE_BPM = 30.0
IDEAL_COMFORT_TAU_S = 5.0


@dataclass(frozen=True, slots=True)
class Person:
    """One simulated person: physiology and how they fall asleep and follow pacers."""

    index: int
    params: PersonParams
    sleeper: SleeperParams

    @property
    def resonance_bpm(self) -> float:
        """The breathing rate with the largest simulated RSA in 4-8 /min, breaths/min.

        The model's RSA gain is a resonance bump times a low-pass
        (:func:`heartsong.sensors.sim_person.rsa_gain`), so its peak lies a little below
        ``resonance_hz``.
        """
        grid = np.arange(4.0, 8.0001, 0.01)
        p = self.params
        gains = [rsa_gain(r / 60.0, p.resonance_hz, p.resonance_gain) for r in grid]
        return float(grid[int(np.argmax(gains))])


@dataclass(slots=True)
class SessionResult:
    """What one session of one arm produced (times in seconds from the session start)."""

    arm: str
    person: int
    night: int
    calm_s: float | None
    onset_s: float | None
    detected_s: float | None
    resonance_share: float
    resonance_estimate_bpm: float | None = None
    trace: dict[str, list[float]] = field(default_factory=dict)

    @property
    def detection_delay_s(self) -> float | None:
        """Detection minus onset (None when either is missing)."""
        if self.onset_s is None or self.detected_s is None:
            return None
        return self.detected_s - self.onset_s


def draw_person(index: int, seed: int, ideal: bool = False) -> Person:
    """A person drawn from the population (uniform ranges, seeded by ``seed`` and ``index``)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    params = PersonParams(
        hr_bpm=u(55.0, 75.0),
        rmssd_ms=u(25.0, 60.0),
        breath_rate_bpm=u(11.0, 16.0),
        pacer_follow_tau_s=u(25.0, 60.0),
        resonance_hz=u(4.8, 6.8) / 60.0,
        calm_below_bpm=u(7.5, 8.5),
        calm_tau_s=u(180.0, 360.0),
        breath_rate_jitter=0.02,
    )
    capture, comfort_tau = u(2.5, 6.0), u(60.0, 240.0)  # drawn always: same people
    if ideal:
        capture, comfort_tau = IDEAL_CAPTURE_BPM, IDEAL_COMFORT_TAU_S
    sleeper = SleeperParams(
        wake_floor=u(0.15, 0.25),
        natural_calm_tau_s=60.0 * u(20.0, 45.0),
        sleep_latency_s=60.0 * u(3.0, 10.0),
        sleep_breath_slowing_bpm=u(0.5, 2.0),
        capture_bpm=capture,
        comfort_tau_s=comfort_tau,
        breath_irregularity=u(0.05, 0.12),
        moves_per_hour_awake=u(15.0, 45.0),
        worries_per_hour=u(0.0, 3.0),
    )
    return Person(index, params, sleeper)


def night_stress(person: Person, night: int, seed: int) -> float:
    """Arousal at bedtime on ``night`` (0..1)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, person.index, night, 2]))
    return float(rng.uniform(0.5, 0.85))


def bedtime_wall(night: int) -> float:
    """Unix time of 22:30 local time on the ``night``-th night of a fixed week."""
    start = dt.datetime(2024, 3, 4, 22, 30).astimezone()
    return (start + dt.timedelta(days=night)).timestamp()


class Arm(Protocol):
    """A policy under test: the pacer it plays and whether sound plays, per update."""

    def step(self, metrics: Metrics, est: StressEstimate, t_s: float, wall_s: float) -> None:
        """Take one metrics update."""
        ...

    @property
    def pacer_bpm(self) -> float | None:
        """The pacer rate playing (None: none)."""
        ...

    @property
    def detected_s(self) -> float | None:
        """When sleep onset was first detected (None: not)."""
        ...


class ClosedArm:
    """The device's controller, as the appliance drives it."""

    def __init__(self, store: ResonanceStore, wall_s: float) -> None:
        settings = PolicySettings("wind_down", "ocean", -20.0, 6.0, 0.0)
        self.ctl = TherapyController(settings, store=store)
        self.targets = self.ctl.start(0.0, wall_s).targets
        self._detected: float | None = None

    def step(self, metrics: Metrics, est: StressEstimate, t_s: float, wall_s: float) -> None:
        self.targets = self.ctl.step(metrics, est, t_s, wall_s).targets
        if self._detected is None and self.ctl.sleep_onset_s is not None:
            self._detected = self.ctl.sleep_onset_s

    @property
    def pacer_bpm(self) -> float | None:
        return self.targets.breath_rate_bpm if self.targets.playing else None

    @property
    def detected_s(self) -> float | None:
        return self._detected


class OpenLoopArm:
    """A fixed schedule (Dodow-style pacer or a playlist), with the detector observing."""

    def __init__(self, pacer: bool) -> None:
        self.pacer = pacer
        self._rate: float | None = None
        self.sleep = SleepState()
        self.cfg = SleepConfig()
        self._detected: float | None = None
        self.track = PLAYLIST[0]

    def step(self, metrics: Metrics, est: StressEstimate, t_s: float, wall_s: float) -> None:
        if t_s >= TIMER_S:
            self._rate = None
        elif self.pacer:
            r0, r1, ramp = DODOW
            self._rate = r0 + (r1 - r0) * min(1.0, t_s / ramp)
        else:
            self.track = PLAYLIST[int(t_s // PLAYLIST_TRACK_S) % len(PLAYLIST)]
        su = sleep_step(self.sleep, observe(metrics, self.cfg), self._rate, self.cfg)
        self.sleep = su.state
        if self._detected is None and su.onset is not None:
            self._detected = t_s

    @property
    def pacer_bpm(self) -> float | None:
        return self._rate

    @property
    def detected_s(self) -> float | None:
        return self._detected


def stand_in_stress(
    sleeper: SimulatedSleeper, metrics: Metrics, rng: np.random.Generator
) -> StressEstimate:
    """True arousal rescaled to 0..1 plus noise; unknown on a poor signal."""
    z = float(rng.standard_normal())
    if metrics.signal_quality is None or metrics.signal_quality < 0.5:
        return StressEstimate(None, "unknown", "signal too poor")
    floor = sleeper.sleeper.wake_floor
    p = min(1.0, max(0.0, (sleeper.stress - floor) / (1.0 - floor) + STRESS_NOISE_SD * z))
    state: StressState = "calm" if p < 0.35 else "stressed" if p > 0.65 else "neutral"
    return StressEstimate(p, state)


def run_session(
    person: Person,
    night: int,
    arm_name: str,
    *,
    minutes: float,
    seed: int,
    store: ResonanceStore | None,
    keep_trace: bool = False,
) -> SessionResult:
    """Simulate one session of one arm in steps of the metrics interval."""
    night_seed = int(np.random.SeedSequence([seed, person.index, night, 3]).generate_state(1)[0])
    params = dataclasses.replace(person.params, stress=night_stress(person, night, seed))
    sleeper = SimulatedSleeper(params, person.sleeper, night_seed % (2**31))
    strap = SimulatedStrap(sleeper.person)
    artifacts = MovementArtifacts(sleeper, night_seed % (2**31) + 1)
    pipe = StreamingPipeline(window_s=60.0, update_s=UPDATE_S)
    rng = np.random.default_rng(np.random.SeedSequence([seed, person.index, night, 4]))
    wall0 = bedtime_wall(night)
    arm: Arm
    if arm_name == "closed":
        assert store is not None
        arm = ClosedArm(store, wall0)
    else:
        arm = OpenLoopArm(pacer=arm_name == "dodow")
    sleeper.hear(arm.pacer_bpm)
    trace: dict[str, list[float]] = {"t": [], "pacer": [], "breath": [], "stress": []}
    res_dt = 0.0
    awake_dt = 0.0
    n = round(60.0 * minutes / UPDATE_S)
    for k in range(1, n + 1):
        t = k * UPDATE_S
        sleeper.advance(t)
        if not sleeper.asleep:
            awake_dt += UPDATE_S
            if abs(sleeper.breath_rate_bpm - person.resonance_bpm) <= RESONANCE_BAND_BPM:
                res_dt += UPDATE_S
        for arrival, rr, beats in strap.notifications_until(t):
            rr, beats = artifacts.apply(rr, beats)
            if rr.size:
                pipe.feed_rr(RrBlock(arrival, rr, beats))
        metrics = pipe.metrics(t, wall0 + t, "ble")
        est = stand_in_stress(sleeper, metrics, rng)
        metrics = dataclasses.replace(metrics, p_stress=est.p_stress, stress_state=est.state)
        arm.step(metrics, est, t, wall0 + t)
        sleeper.hear(arm.pacer_bpm)
        if keep_trace:
            trace["t"].append(t / 60.0)
            trace["pacer"].append(math.nan if arm.pacer_bpm is None else arm.pacer_bpm)
            trace["breath"].append(sleeper.breath_rate_bpm)
            trace["stress"].append(sleeper.stress)
    estimate: float | None = None
    if isinstance(arm, ClosedArm):
        arm.ctl.close()
        estimate = arm.ctl.estimate.rate_bpm if arm.ctl.estimate.known else None
    return SessionResult(
        arm_name,
        person.index,
        night,
        sleeper.calm_s,
        sleeper.sleep_onset_s,
        arm.detected_s,
        res_dt / awake_dt if awake_dt > 0 else 0.0,
        estimate,
        trace if keep_trace else {},
    )


def run_person(job: tuple[int, int, float, int, bool, int]) -> list[SessionResult]:
    """Every night of every arm for one person (the closed loop learns across nights)."""
    index, nights, minutes, seed, ideal, trace_person = job
    dsp_warm_up()
    person = draw_person(index, seed, ideal)
    out: list[SessionResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = ResonanceStore(Path(tmp) / BASELINE_FILE)
        for night in range(nights):
            for arm in ARMS:
                out.append(
                    run_session(
                        person, night, arm, minutes=minutes, seed=seed,
                        store=store if arm == "closed" else None,
                        keep_trace=index == trace_person and night == 0,
                    )
                )
    return out


def run_all(
    people: int, nights: int, minutes: float, seed: int, jobs: int, ideal: bool
) -> tuple[list[Person], list[SessionResult]]:
    """All sessions, people in parallel over ``jobs`` processes."""
    plan = [(i, nights, minutes, seed, ideal, 0) for i in range(people)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            chunks = list(pool.map(run_person, plan))
    else:
        chunks = [run_person(p) for p in plan]
    return [draw_person(i, seed, ideal) for i in range(people)], [r for c in chunks for r in c]


# -- report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """The figures of one arm over all its sessions (minutes unless stated)."""

    arm: str
    sessions: int
    calm_median_min: float
    calm_mean_min: float
    calmed: int
    resonance_share_median: float
    onsets: int
    detected_within: int
    delay_median_min: float | None
    false_detections: int


def _censored(results: list[SessionResult], minutes: float) -> list[float]:
    return [(r.calm_s if r.calm_s is not None else 60.0 * minutes) / 60.0 for r in results]


def summarise(results: list[SessionResult], arm: str, minutes: float) -> ArmSummary:
    """Median/mean time to calm (censored at the session length), shares, detection."""
    rs = [r for r in results if r.arm == arm]
    calm = _censored(rs, minutes)
    onsets = [r for r in rs if r.onset_s is not None]
    within = [
        r for r in onsets
        if r.detection_delay_s is not None and 0.0 <= r.detection_delay_s <= DETECT_WITHIN_S
    ]
    delays = [r.detection_delay_s / 60.0 for r in onsets if r.detection_delay_s is not None]
    false = [
        r for r in rs
        if r.detected_s is not None and (r.onset_s is None or r.detected_s < r.onset_s)
    ]
    return ArmSummary(
        arm,
        len(rs),
        statistics.median(calm),
        statistics.fmean(calm),
        sum(1 for r in rs if r.calm_s is not None),
        statistics.median([r.resonance_share for r in rs]),
        len(onsets),
        len(within),
        statistics.median(delays) if delays else None,
        len(false),
    )


def paired_wins(results: list[SessionResult], other: str, minutes: float) -> tuple[int, int, int]:
    """Sessions where the closed loop calmed sooner / later / tied (within 5 s) vs ``other``,
    time to calm censored at ``minutes``."""
    by_key = {(r.arm, r.person, r.night): r for r in results}
    sooner = later = tied = 0
    for r in results:
        if r.arm != "closed":
            continue
        o = by_key[(other, r.person, r.night)]
        a = min(_censored([r], minutes)[0], minutes)
        b = min(_censored([o], minutes)[0], minutes)
        if abs(a - b) <= 5.0 / 60.0:
            tied += 1
        elif a < b:
            sooner += 1
        else:
            later += 1
    return sooner, later, tied


def _table(summaries: list[ArmSummary]) -> list[str]:
    lines = [
        "| arm | sessions | time to calm, median (min) | mean (min) | calmed within the "
        "session | resonance breathing, median share of awake time | sleep onsets | "
        "detected within 5 min | median detection delay (min) | false detections |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        pct = 100.0 * s.detected_within / s.onsets if s.onsets else 0.0
        delay = "-" if s.delay_median_min is None else f"{s.delay_median_min:.1f}"
        lines.append(
            f"| {s.arm} | {s.sessions} | {s.calm_median_min:.1f} | {s.calm_mean_min:.1f} | "
            f"{s.calmed}/{s.sessions} | {100.0 * s.resonance_share_median:.0f}% | "
            f"{s.onsets} | {s.detected_within}/{s.onsets} ({pct:.0f}%) | {delay} | "
            f"{s.false_detections} |"
        )
    return lines


def _resonance_lines(people: list[Person], results: list[SessionResult], nights: int) -> list[str]:
    lines = [
        "| after night | people with a known rate | median abs. error (breaths/min) |",
        "|---|---|---|",
    ]
    truth = {p.index: p.resonance_bpm for p in people}
    for night in range(nights):
        known = [
            r for r in results
            if r.arm == "closed" and r.night == night and r.resonance_estimate_bpm is not None
        ]
        errors = [abs(r.resonance_estimate_bpm - truth[r.person]) for r in known]  # type: ignore[operator]
        med = f"{statistics.median(errors):.2f}" if errors else "-"
        lines.append(f"| {night + 1} | {len(known)}/{len(people)} | {med} |")
    return lines


def write_report(
    out: Path,
    args: argparse.Namespace,
    people: list[Person],
    results: list[SessionResult],
    ideal: list[SessionResult] | None,
    seconds: float,
) -> str:
    """Write the markdown report and the plot; return the markdown."""
    summaries = [summarise(results, a, args.minutes) for a in ARMS]
    closed = summaries[0]
    lines = [
        "# Therapy simulation: closed loop vs open-loop baselines",
        "",
        "Generated by `python tools/simulate_sessions.py "
        f"--people {args.people} --nights {args.nights} --minutes {args.minutes:g} "
        f"--seed {args.seed}` ({len(results) // len(ARMS)} sessions per arm, "
        f"{seconds:.0f} s). Do not edit: rerun the tool.",
        "",
        "![sessions](therapy_simulation.png)",
        "",
        "## Results",
        "",
        *_table(summaries),
        "",
    ]
    for other in ARMS[1:]:
        sooner, later, tied = paired_wins(results, other, args.minutes)
        lines.append(
            f"- Paired with `{other}` (same person, same night): the closed loop calmed "
            f"sooner in {sooner}, later in {later}, tied in {tied} sessions."
        )
    # Like for like: the baselines stop at TIMER_S and calming here comes from breathing
    # alone, so after it only the closed loop (no timer, the device's default) still paces.
    cap = TIMER_S / 60.0
    within = {a: sum(1 for r in results if r.arm == a and r.calm_s is not None
                     and r.calm_s <= TIMER_S) for a in ARMS}
    lines.append(
        f"- Within the first {cap:.0f} min, while every arm still plays (the baselines stop "
        f"there; the closed loop runs on, the device's default): calmed "
        + ", ".join(f"`{a}` {within[a]}/{closed.sessions}" for a in ARMS) + "."
    )
    for other in ARMS[1:]:
        sooner, later, tied = paired_wins(results, other, cap)
        lines.append(
            f"- Paired with `{other}` over those {cap:.0f} min: the closed loop calmed sooner "
            f"in {sooner}, later in {later}, tied in {tied} sessions."
        )
    beats = all(closed.calm_median_min < s.calm_median_min for s in summaries[1:])
    share = closed.detected_within / closed.onsets if closed.onsets else 0.0
    lines += [
        "- Closed loop beats both baselines on median time to calm: "
        f"**{'yes' if beats else 'NO'}**.",
        f"- Closed loop detects sleep onset within 5 min in {100 * share:.0f}% of the "
        f"sessions with an onset (target >= 90%): **{'yes' if share >= 0.9 else 'NO'}**.",
        "",
        "The `dodow` and `playlist` rows' detection columns are the same detector only "
        "observing (those devices have no detector; they stop on a timer).",
        "",
        "## Resonance rate learnt over nights (closed loop)",
        "",
        *_resonance_lines(people, results, args.nights),
        "",
    ]
    if ideal is not None:
        lines += [
            "## Sensitivity: ideal followers",
            "",
            f"The same people and nights, but everyone follows any pacer at once (capture "
            f"range {IDEAL_CAPTURE_BPM:g} breaths/min, comfortable rate adapting in "
            f"{IDEAL_COMFORT_TAU_S:g} s). This is where a fast fixed schedule does best.",
            "",
            *_table([summarise(ideal, a, args.minutes) for a in ARMS]),
            "",
        ]
    lines += [
        "## Definitions and assumptions",
        "",
        "- **Time to calm**: first time the simulated arousal is at or below the person's "
        "`calm_stress` (0.35), in minutes; a session that never calms counts as its full "
        "length.",
        "- **Resonance breathing**: actual breathing within "
        f"{RESONANCE_BAND_BPM:g} breath/min of the person's own resonance rate (the rate "
        "with the largest simulated RSA; `resonance_hz` is drawn in 4.8-6.8 /min and the "
        "peak lies about 0.2 /min below it), as a share of the time awake.",
        "- **Detection delay**: from the simulated sleep onset to the detector's decision; a "
        "detection before the onset is a false detection.",
        "- People (uniform draws): resting HR 55-75 bpm, RMSSD 25-60 ms, calm spontaneous "
        "breathing 11-16 /min (+4 /min at full arousal), pacer follow time constant 25-60 s, "
        "calming below 7.5-8.5 /min with time constant 3-6 min, pacer capture range "
        "2.5-6 breaths/min below the comfortable rate, comfortable rate adapting in "
        "1-4 min, natural calming in bed 20-45 min, sleep latency once calm 3-10 min, "
        "15-45 movements/h awake and 2/h asleep, 0-3 worries/h, awake breathing wander "
        "5-12% (2% jitter asleep); bedtime arousal 0.5-0.85.",
        "- The capture range and comfortable-rate adaptation are this simulation's "
        "assumptions (see `heartsong/sensors/sim_sleep.py`); the sensitivity section shows "
        "how the comparison changes without them. Sound has no modelled effect on the "
        "person; only breathing (through `SimulatedPerson`'s calming) and time in bed do.",
        "- The stress estimate is a stand-in: true arousal rescaled to 0..1 plus noise (SD "
        f"{STRESS_NOISE_SD:g}); it drives only the sound's brightness, masking and tempo.",
        "- Baselines: `dodow` paces 11 -> 6 /min over 8 min, then holds 6 /min until a "
        "30-min timer (Dodow itself stops after 8 min: holding is the kinder baseline); "
        "`playlist` plays three soundscapes for 10 min each, no pacer.",
        "",
    ]
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "THERAPY_SIMULATION.md").write_text(text, encoding="utf-8")
    plot(out / "therapy_simulation.png", people, results, args.minutes)
    return text


def plot(path: Path, people: list[Person], results: list[SessionResult], minutes: float) -> None:
    """Four panels: time to calm, resonance share, detection delay, one example night."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"closed": "tab:blue", "dodow": "tab:orange", "playlist": "tab:green"}
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0, 0]
    for arm in ARMS:
        calm = np.sort(_censored([r for r in results if r.arm == arm], minutes))
        calmed = np.arange(1, calm.size + 1) / calm.size
        ax.step(calm, calmed, where="post", label=arm, color=colours[arm])
    ax.set(xlabel="time to calm (min)", ylabel="share of sessions calm", xlim=(0, minutes),
           title="Time to calm (ECDF; uncalmed at the session end)")
    ax.legend()
    ax = axes[0, 1]
    shares = [[100.0 * r.resonance_share for r in results if r.arm == a] for a in ARMS]
    ax.boxplot(shares, tick_labels=list(ARMS))
    ax.set(ylabel="% of awake time", title="Breathing within 1 /min of own resonance rate")
    ax = axes[1, 0]
    any_delay = False
    for arm in ARMS:
        delays = [
            r.detection_delay_s / 60.0 for r in results
            if r.arm == arm and r.detection_delay_s is not None
        ]
        if delays:
            any_delay = True
            ax.hist(delays, bins=np.arange(-10, 20.5, 0.5), alpha=0.5, label=arm,
                    color=colours[arm])
    ax.axvline(5.0, color="k", ls="--", lw=1)
    ax.set(xlabel="detection minus onset (min)", ylabel="sessions",
           title="Sleep-onset detection delay (baselines: detector observing)")
    if any_delay:
        ax.legend()
    ax = axes[1, 1]
    example = [r for r in results if r.trace]
    for r in example:
        t = r.trace["t"]
        ax.plot(t, r.trace["breath"], color=colours[r.arm], lw=0.8, label=f"{r.arm} breathing")
        ax.plot(t, r.trace["pacer"], color=colours[r.arm], lw=1.6, ls="--")
        if r.onset_s is not None:
            ax.axvline(r.onset_s / 60.0, color=colours[r.arm], lw=0.8, ls=":")
    if example:
        res = people[example[0].person].resonance_bpm
        ax.axhspan(res - RESONANCE_BAND_BPM, res + RESONANCE_BAND_BPM, color="0.9")
    ax.set(xlabel="time (min)", ylabel="breaths/min", ylim=(3, 22),
           title="Person 0, night 1: breathing (solid), pacer (dashed), onset (dotted)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the sessions, print the report and write it to ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=20, help="simulated people (default 20)")
    p.add_argument("--nights", type=int, default=3, help="nights per person (default 3)")
    p.add_argument("--minutes", type=float, default=60.0, help="session length (default 60)")
    p.add_argument("--seed", type=int, default=0, help="population seed (default 0)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--no-sensitivity", action="store_true", help="skip the ideal followers")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = p.parse_args(argv)
    if args.people < 1 or args.nights < 1 or args.minutes < 10:
        p.error("--people and --nights must be >= 1 and --minutes >= 10")
    t0 = time.perf_counter()
    people, results = run_all(args.people, args.nights, args.minutes, args.seed, args.jobs, False)
    ideal = None
    if not args.no_sensitivity:
        ideal = run_all(args.people, args.nights, args.minutes, args.seed, args.jobs, True)[1]
    text = write_report(args.out, args, people, results, ideal, time.perf_counter() - t0)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
