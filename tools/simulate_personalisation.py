"""Does the soundscape learner find each person's best sound? Simulated nights, three arms.

Each simulated person responds best to a different soundscape. Every night they go to
bed aroused (arousal drawn from 0.5-0.85) and calm down: by themselves (first order
towards their awake floor, time constant ``natural_tau_min``) and, on top, by the
soundscape playing (extra calming rate ``effect / SOUND_TAU_MIN``; ``effect`` is 1 for the
person's best soundscape and drawn from 0-``OTHER_EFFECT_MAX`` for the others, the masking
preset included). Worries (Poisson) raise arousal again. The device sees what a chest
strap and the stress stage would report: heart rate ``hr0 + HR_GAIN_BPM * arousal`` and
RMSSD ``rmssd0 * exp(-RMSSD_GAIN_LOG * arousal)`` with slow physiological noise
(Ornstein-Uhlenbeck), ``p_stress`` as the arousal above the floor plus noise, and signal
quality that drops during movement bursts and on "loose strap" nights (then most of the
night is unusable and nothing may be learnt). This is a metrics-level model, not the
beat-level chain of ``tools/simulate_sessions.py``: the question here is the learner's,
and 30 nights x 3 arms x many people must run in seconds.

The arms, on the same people and nights (same seeds):

* ``learner``: :class:`heartsong.therapy.controller.TherapyController` with a
  :class:`heartsong.therapy.learner.SoundscapeLearner` over ``CANDIDATES``, its
  preferences file kept from night to night (and re-read, as after a reboot);
* ``fixed``: the same controller on the population's favourite soundscape (the one with
  the largest mean effect over the people simulated), never changing;
* ``best``: the same controller on each person's own best soundscape (the oracle).

All arms run the controller with its masking switch off (``TUNING``), so they differ only
in the soundscape played; the same person on the same night meets the same bedtime
arousal, noise, movements and worries in every arm.

Reported: the share of sessions after night ``AFTER_NIGHT`` in which the learner chose the
person's best soundscape (target >= 80 %), the cumulative calm (sum over nights of the
mean arousal drop below the bedtime level over the session) against the fixed baseline,
and the regret against always playing the best one, with a plot.

``python tools/simulate_personalisation.py [--people 15] [--nights 30] [--minutes 30]
[--seed 0] [--out docs]`` writes ``docs/PERSONALISATION.md`` and
``docs/personalisation.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heartsong.events import Metrics, StressState
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.controller import TherapyController
from heartsong.therapy.learner import SoundscapeLearner
from heartsong.therapy.policy import PolicySettings
from heartsong.therapy.preference import PREFERENCES_FILE, PreferenceStore
from heartsong.therapy.settings import TherapyTuning

CANDIDATES = ("rain", "ocean", "forest_night", "mountain_stream", "warm_drone")
MASKING = "brown_noise"
ARMS = ("learner", "fixed", "best")
UPDATE_S = 5.0
AFTER_NIGHT = 10
SOUND_TAU_MIN = 12.0
OTHER_EFFECT_MAX = 0.6
HR_GAIN_BPM = 18.0
RMSSD_GAIN_LOG = 1.0
NOISE_TAU_S = 60.0
HR_NOISE_BPM = 1.5
RMSSD_NOISE_LOG = 0.12
P_NOISE = 0.1
MOVES_PER_HOUR = 20.0
LOOSE_STRAP_NIGHTS = 0.1
WORRIES_PER_HOUR = 1.0
WORRY_SIZE = 0.15
#: The masking switch is off in every arm, so that the arms differ only in the soundscape
#: chosen (the learner's choice would otherwise also delay the switch, see the controller).
TUNING = TherapyTuning(masking_soundscape="")


@dataclass(frozen=True, slots=True)
class Listener:
    """One simulated person and how each soundscape calms them (effects 0..1)."""

    index: int
    hr0_bpm: float
    rmssd0_ms: float
    floor: float
    natural_tau_min: float
    effects: dict[str, float]

    @property
    def best(self) -> str:
        """The candidate soundscape that calms this person most."""
        return max(CANDIDATES, key=lambda s: self.effects[s])


def draw_listener(index: int, seed: int) -> Listener:
    """Person ``index``: best soundscape ``CANDIDATES[index % 5]``, the rest drawn lower."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 11]))
    best = CANDIDATES[index % len(CANDIDATES)]
    effects = {s: float(rng.uniform(0.0, OTHER_EFFECT_MAX)) for s in (*CANDIDATES, MASKING)}
    effects[best] = 1.0
    return Listener(
        index,
        float(rng.uniform(55.0, 72.0)),
        float(rng.uniform(25.0, 60.0)),
        float(rng.uniform(0.15, 0.25)),
        float(rng.uniform(20.0, 40.0)),
        effects,
    )


def bedtime_wall(night: int) -> float:
    """Unix time of 22:30 local time on the ``night``-th night."""
    start = dt.datetime(2024, 3, 4, 22, 30).astimezone()
    return (start + dt.timedelta(days=night)).timestamp()


@dataclass(slots=True)
class Night:
    """One session of one arm: what played, and the arousal drop it achieved."""

    arm: str
    person: int
    night: int
    chosen: str
    calm: float
    learnt: int = 0
    explanation: str = ""


def run_night(
    person: Listener, night: int, arm: str, *, minutes: float, seed: int, fixed: str,
    state_dir: Path | None,
) -> Night:
    """Simulate one session of ``arm`` (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, person.index, night, 12]))
    arousal0 = float(rng.uniform(0.5, 0.85))
    loose = bool(rng.random() < LOOSE_STRAP_NIGHTS)
    n = round(60.0 * minutes / UPDATE_S)
    noise = rng.standard_normal((n, 4))
    moves = rng.random(n) < MOVES_PER_HOUR / 3600.0 * UPDATE_S * 2.0
    loose_bad = rng.random(n) < 0.7
    worries = rng.random(n) < WORRIES_PER_HOUR / 3600.0 * UPDATE_S
    wall0 = bedtime_wall(night)
    sound = {"learner": CANDIDATES[0], "fixed": fixed, "best": person.best}[arm]
    learner = None
    if arm == "learner":
        assert state_dir is not None
        store = PreferenceStore(state_dir / PREFERENCES_FILE)  # re-read: as after a reboot
        learner = SoundscapeLearner(CANDIDATES, store=store, seed=seed * 1000 + night)
    ctl = TherapyController(
        PolicySettings("wind_down", sound, -20.0, 6.0, 0.0), TUNING, learner=learner
    )
    targets = ctl.start(0.0, wall0).targets
    chosen = targets.soundscape
    a = arousal0
    hr_n = rm_n = 0.0
    k_noise = math.exp(-UPDATE_S / NOISE_TAU_S)
    drop = 0.0
    for k in range(n):
        t = (k + 1) * UPDATE_S
        playing = targets.soundscape if targets.playing else ""
        rate = 1.0 / (60.0 * person.natural_tau_min)
        rate += person.effects.get(playing, 0.0) / (60.0 * SOUND_TAU_MIN)
        a = person.floor + (a - person.floor) * math.exp(-rate * UPDATE_S)
        if worries[k]:
            a = min(1.0, a + WORRY_SIZE)
        drop += (arousal0 - a) / n
        hr_n = k_noise * hr_n + math.sqrt(1 - k_noise**2) * HR_NOISE_BPM * noise[k, 0]
        rm_n = k_noise * rm_n + math.sqrt(1 - k_noise**2) * RMSSD_NOISE_LOG * noise[k, 1]
        quality = 0.2 if moves[k] or (loose and loose_bad[k]) else 0.9
        p = min(1.0, max(0.0, (a - person.floor) / (1.0 - person.floor) + P_NOISE * noise[k, 2]))
        state: StressState = "calm" if p < 0.35 else "stressed" if p > 0.65 else "neutral"
        est = StressEstimate(p, state) if quality >= 0.5 else None
        m = Metrics(
            t_s=t, wall_s=wall0 + t,
            hr_bpm=person.hr0_bpm + HR_GAIN_BPM * a + hr_n,
            rmssd_ms=person.rmssd0_ms * math.exp(-RMSSD_GAIN_LOG * a + rm_n),
            sdnn_ms=1.3 * person.rmssd0_ms * math.exp(-RMSSD_GAIN_LOG * a + rm_n),
            signal_quality=quality, source="ble", n_beats=int(UPDATE_S),
            p_stress=None if est is None else p, stress_state=state if est else "unknown",
        )
        targets = ctl.step(m, est, t, wall0 + t).targets
    ctl.close()
    learnt = len(learner.model.responses) if learner is not None else 0
    why = ctl.soundscape_reason
    return Night(arm, person.index, night, chosen, drop, learnt, why)


def run_person(person: Listener, nights: int, minutes: float, seed: int, fixed: str,
               arms: tuple[str, ...] = ARMS) -> list[Night]:
    """Every night of every arm for one person (the learner keeps its file across nights)."""
    out: list[Night] = []
    with tempfile.TemporaryDirectory() as tmp:
        for night in range(nights):
            for arm in arms:
                out.append(run_night(person, night, arm, minutes=minutes, seed=seed,
                                     fixed=fixed, state_dir=Path(tmp)))
    return out


def population_favourite(people: list[Listener]) -> str:
    """The candidate with the largest mean effect over ``people``."""
    return max(CANDIDATES, key=lambda s: statistics.fmean(p.effects[s] for p in people))


@dataclass(frozen=True, slots=True)
class Summary:
    """The figures the issue asks for."""

    people: int
    nights: int
    best_share_after: float
    best_share_by_person: dict[int, float]
    calm_total: dict[str, float]
    regret_final: dict[str, float]
    no_update_nights: int
    best_share_by_night: list[float]
    example: str


def run(people: int, nights: int, minutes: float, seed: int, arms: tuple[str, ...] = ARMS) -> (
    tuple[list[Listener], str, list[Night]]
):
    """All people, all nights, the given arms."""
    folks = [draw_listener(i, seed) for i in range(people)]
    fixed = population_favourite(folks)
    results = [r for p in folks for r in run_person(p, nights, minutes, seed, fixed, arms)]
    return folks, fixed, results


def summarise(folks: list[Listener], results: list[Night], nights: int) -> Summary:
    """Share of best choices after ``AFTER_NIGHT``, cumulative calm, regret."""
    best = {p.index: p.best for p in folks}
    learn = [r for r in results if r.arm == "learner"]
    late = [r for r in learn if r.night >= AFTER_NIGHT]
    share = sum(r.chosen == best[r.person] for r in late) / max(1, len(late))
    by_person = {
        p.index: sum(r.chosen == p.best for r in late if r.person == p.index)
        / max(1, sum(1 for r in late if r.person == p.index))
        for p in folks
    }
    total = {arm: math.fsum(r.calm for r in results if r.arm == arm) for arm in ARMS}
    regret = {arm: total["best"] - total[arm] for arm in ("learner", "fixed")}
    # (with the "best" arm left out, total["best"] is 0 and the regrets are not meaningful)
    learnt_by = {(r.person, r.night): r.learnt for r in learn}
    no_update = sum(
        1 for (p, n), v in learnt_by.items() if v == learnt_by.get((p, n - 1), 0) and n > 0
    )
    curve = best_share_curve(folks, results, nights)
    last = [r for r in learn if r.night == nights - 1]
    example = last[0].explanation if last else ""
    return Summary(len(folks), nights, share, by_person, total, regret, no_update, curve,
                   example)


def regret_curves(results: list[Night], nights: int) -> dict[str, list[float]]:
    """Cumulative regret per night (summed over people) of learner and fixed vs best."""
    per = {arm: [0.0] * nights for arm in ARMS}
    for r in results:
        per[r.arm][r.night] += r.calm
    out = {}
    for arm in ("learner", "fixed"):
        acc, curve = 0.0, []
        for n in range(nights):
            acc += per["best"][n] - per[arm][n]
            curve.append(acc)
        out[arm] = curve
    return out


def best_share_curve(folks: list[Listener], results: list[Night], nights: int) -> list[float]:
    """Per night, the share of people for whom the learner chose their best soundscape."""
    best = {p.index: p.best for p in folks}
    return [
        statistics.fmean(r.chosen == best[r.person] for r in results
                         if r.arm == "learner" and r.night == n)
        for n in range(nights)
    ]


def plot(share: list[float], results: list[Night], nights: int, path: Path) -> None:
    """Share of best choices per night (``Summary.best_share_by_night``) and cumulative
    regret, as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    x = list(range(1, nights + 1))
    ax1.plot(x, [100 * s for s in share], marker="o", ms=3)
    ax1.axvline(AFTER_NIGHT + 0.5, color="grey", ls=":")
    ax1.axhline(80, color="grey", ls="--", lw=0.8)
    ax1.set(xlabel="night", ylabel="% of people given their best soundscape",
            title="learner picks the person's best", ylim=(0, 105))
    for arm, curve in regret_curves(results, nights).items():
        ax2.plot(x, curve, label=arm)
    ax2.set(xlabel="night", ylabel="cumulative regret (arousal-drop units, all people)",
            title="regret vs always playing the best")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _mean(xs: list[float]) -> float:
    return statistics.fmean(xs) if xs else math.nan


def report(s: Summary, fixed: str, folks: list[Listener], seconds: float, cmd: str) -> str:
    """The Markdown report."""
    lines = [
        "# Personalisation in simulation: does the learner find each person's best sound?",
        "",
        f"Generated by `{cmd}` in {seconds:.0f} s. Model and arms: see the docstring of",
        "`tools/simulate_personalisation.py`; learner: `firmware/heartsong/therapy/`",
        "(`response.py`, `preference.py`, `learner.py`).",
        "",
        f"- {s.people} simulated people, {s.nights} nights each, best soundscape "
        f"{', '.join(sorted({p.best for p in folks}))} (each a different one per 5 people).",
        f"- Fixed baseline: the population favourite, **{fixed}**.",
        "",
        "| figure | value | target |",
        "|---|---|---|",
        f"| sessions choosing the person's best after night {AFTER_NIGHT} | "
        f"**{100 * s.best_share_after:.1f} %** | >= 80 % |",
        f"| cumulative calm, learner | {s.calm_total['learner']:.2f} | > fixed |",
        f"| cumulative calm, fixed ({fixed}) | {s.calm_total['fixed']:.2f} | |",
        f"| cumulative calm, always best (oracle) | {s.calm_total['best']:.2f} | |",
        f"| regret vs always best, learner | {s.regret_final['learner']:.2f} | |",
        f"| regret vs always best, fixed | {s.regret_final['fixed']:.2f} | |",
        f"| learner nights that learnt nothing (too little clean data, ...) | "
        f"{s.no_update_nights} | |",
        "",
        "Calm of a session: the mean drop of the simulated arousal below its bedtime level",
        "over the session (0..1 units); cumulative: summed over all people and nights.",
        "",
        "Share of people given their best soundscape by night: nights "
        f"{AFTER_NIGHT + 1}-15 {100 * _mean(s.best_share_by_night[AFTER_NIGHT:15]):.0f} %, "
        f"nights 16-{s.nights} {100 * _mean(s.best_share_by_night[15:]):.0f} % (the last "
        "trials and most of the exploration fall just after night 10).",
        "",
        f"What the device said on the last night (person 0): \"{s.example}\"",
        "",
        "Share after night "
        f"{AFTER_NIGHT} per person: "
        + ", ".join(f"{i}: {100 * v:.0f} %" for i, v in s.best_share_by_person.items()),
        "",
        "![learner vs fixed](personalisation.png)",
        "",
        "## Caveats",
        "",
        "- The effects are assumptions: one soundscape clearly best per person (effect 1",
        f"  vs 0-{OTHER_EFFECT_MAX} for the others). A person for whom two sounds are",
        "  nearly equal will see the learner alternate between them; that costs little calm.",
        "- Metrics-level model (no beats, no DSP): the response measure sees the heart rate,",
        "  RMSSD and p_stress a working chain would report, with slow noise and dropouts.",
        "- The first nights are trials: each candidate is measured twice before sampling",
        "  (a night without enough clean signal is tried again), so with 5 candidates the",
        "  learner is still trying on some of nights 10-12.",
        "- The masking switch of the stress response is off in all arms (see `TUNING`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the simulation and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=15)
    ap.add_argument("--nights", type=int, default=30)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    folks, fixed, results = run(args.people, args.nights, args.minutes, args.seed)
    s = summarise(folks, results, args.nights)
    secs = time.monotonic() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    plot(s.best_share_by_night, results, args.nights, args.out / "personalisation.png")
    cmd = "python tools/simulate_personalisation.py " + " ".join(
        f"--{k} {v}" for k, v in (("people", args.people), ("nights", args.nights),
                                  ("minutes", args.minutes), ("seed", args.seed))
    )
    (args.out / "PERSONALISATION.md").write_text(report(s, fixed, folks, secs, cmd))
    sys.stdout.write(
        f"best after night {AFTER_NIGHT}: {100 * s.best_share_after:.1f} %; calm learner "
        f"{s.calm_total['learner']:.2f} fixed {s.calm_total['fixed']:.2f} best "
        f"{s.calm_total['best']:.2f}; {secs:.0f} s\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
