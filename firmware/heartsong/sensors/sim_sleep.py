"""A simulated person going to sleep: arousal, pacer following, sleep onset, movement.

:class:`SimulatedSleeper` wraps a :class:`~heartsong.sensors.sim_person.SimulatedPerson`
(whose beats, breathing and "slow breathing calms" dynamics it keeps) and drives it
through its public setters, once per :data:`TICK_S`, with what the wrapped model lacks:

**Arousal.** The person's ``stress`` is read as arousal. Awake, it never falls below
``wake_floor``: being awake is itself an arousal level, so the heart rate drops and RMSSD
rises at sleep onset (Burgess et al. 1999; Trinder et al. 2001). Lying in bed calms
slowly (first order towards the floor, ``natural_calm_tau_s``), with or without sound;
intrusive thoughts ("worries", Poisson, ``worries_per_hour``) add ``worry_size``.

**Following a pacer.** A person follows a breathing pacer only within reach of the
rate they find comfortable: pacers more than ``capture_bpm`` below it are not taken up
(or are let go), and taken up again at 80 % of that distance. While the person follows,
the comfortable rate adapts towards the paced breathing with ``comfort_tau_s``; when not
following, it relaxes back to the spontaneous rate; it never exceeds the spontaneous
rate. This encodes why resonance-breathing protocols lower the pace gradually from the
person's own rate (Lehrer et al. 2000) and why a fixed schedule can leave people behind;
the ranges are the simulation's assumptions, not measured values. Awake breathing also
wanders (``breath_irregularity``, an Ornstein-Uhlenbeck factor on the breathing target;
half of it while following a pacer).

**Sleep onset.** Sleep comes after ``sleep_latency_s`` of accumulated time at arousal
``calm_stress`` or below (time above it counts back down; a worry resets it): arousal
that is too high keeps people awake (the hyperarousal model of insomnia; Riemann et al.
2010). Asleep, arousal ramps to 0 over ``sleep_ramp_s``, the pacer is no longer followed,
breathing settles, regular, ``sleep_breath_slowing_bpm`` below the calm spontaneous rate
(Douglas et al. 1982), and movement drops from ``moves_per_hour_awake`` to
``moves_per_hour_asleep`` (Cole et al. 1992). The person does not wake again.

**Movement** bursts of 3 to 10 s make a chest strap miss beats and see extra ones;
:class:`MovementArtifacts` applies that to the strap's RR notifications.

Everything is seeded: the same seed, parameters and pacer calls give the same night.

References
----------
Burgess HJ, Kleiman J, Trinder J (1999) Cardiac activity during sleep onset.
Psychophysiology 36(3):298-306.
Trinder J et al. (2001) Autonomic activity during human sleep as a function of time and
sleep stage. J Sleep Res 10(4):253-264.
Lehrer PM, Vaschillo E, Vaschillo B (2000) Resonant frequency biofeedback training to
increase cardiac variability. Appl Psychophysiol Biofeedback 25(3):177-191.
Riemann D et al. (2010) The hyperarousal model of insomnia: a review of the concept and
its evidence. Sleep Med Rev 14(1):19-31.
Douglas NJ et al. (1982) Respiration during sleep in normal man. Thorax 37(11):840-844.
Cole RJ, Kripke DF, Gruen W, Mullaney DJ, Gillin JC (1992) Automatic sleep/wake
identification from wrist activity. Sleep 15(5):461-469.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Final

import numpy as np

from heartsong.errors import check_number
from heartsong.events import FloatArray
from heartsong.sensors.sim_person import PersonParams, SimulatedPerson

__all__ = ["TICK_S", "MovementArtifacts", "SimulatedSleeper", "SleeperParams"]

#: Behaviour is updated once per tick, seconds.
TICK_S: Final = 1.0
_PACER_LIMITS: Final = (3.0, 30.0)  # what SimulatedPerson.set_pacer accepts, breaths/min
_MOVE_S: Final = (3.0, 10.0)  # duration of a movement burst, seconds
_REACQUIRE: Final = 0.8  # a lost pacer is taken up again at this share of capture_bpm

_RANGES: Final[dict[str, tuple[float, float, str]]] = {
    "wake_floor": (0.0, 0.5, ""),
    "calm_stress": (0.0, 1.0, ""),
    "natural_calm_tau_s": (60.0, 1e6, "s"),
    "sleep_latency_s": (0.0, 7200.0, "s"),
    "sleep_ramp_s": (1.0, 1800.0, "s"),
    "sleep_breath_slowing_bpm": (0.0, 5.0, "breaths/min"),
    "capture_bpm": (0.0, 30.0, "breaths/min"),
    "comfort_tau_s": (1.0, 3600.0, "s"),
    "breath_irregularity": (0.0, 0.3, ""),
    "irregularity_tau_s": (1.0, 600.0, "s"),
    "moves_per_hour_awake": (0.0, 600.0, "1/h"),
    "moves_per_hour_asleep": (0.0, 600.0, "1/h"),
    "worries_per_hour": (0.0, 60.0, "1/h"),
    "worry_size": (0.0, 1.0, ""),
    "miss_probability": (0.0, 0.9, ""),
    "extra_probability": (0.0, 0.9, ""),
}


@dataclass(frozen=True, slots=True)
class SleeperParams:
    """How a simulated person falls asleep (see the module docstring; validated).

    Attributes
    ----------
    wake_floor:
        Lowest arousal while awake (0..1).
    calm_stress:
        Arousal at or below which sleep can come (0..1).
    natural_calm_tau_s:
        Time constant of calming by lying in bed, seconds.
    sleep_latency_s:
        Calm time needed to fall asleep, seconds.
    sleep_ramp_s:
        Time for arousal to fall to 0 after sleep onset, seconds.
    sleep_breath_slowing_bpm:
        Asleep breathing is this much below the calm spontaneous rate, breaths/min.
    capture_bpm:
        A pacer at most this far below the comfortable rate is followed, breaths/min.
    comfort_tau_s:
        Time constant of the comfortable rate adapting, seconds.
    breath_irregularity, irregularity_tau_s:
        Relative standard deviation and time constant of the awake breathing wander.
    moves_per_hour_awake, moves_per_hour_asleep:
        Mean rate of movement bursts, per hour.
    worries_per_hour, worry_size:
        Rate of arousal jumps while awake (per hour) and their size (0..1).
    miss_probability, extra_probability:
        Chance that a beat during a movement is missed, or that an extra one is seen.
    """

    wake_floor: float = 0.2
    calm_stress: float = 0.35
    natural_calm_tau_s: float = 1800.0
    sleep_latency_s: float = 360.0
    sleep_ramp_s: float = 180.0
    sleep_breath_slowing_bpm: float = 1.0
    capture_bpm: float = 4.0
    comfort_tau_s: float = 120.0
    breath_irregularity: float = 0.05
    irregularity_tau_s: float = 20.0
    moves_per_hour_awake: float = 30.0
    moves_per_hour_asleep: float = 2.0
    worries_per_hour: float = 1.0
    worry_size: float = 0.15
    miss_probability: float = 0.3
    extra_probability: float = 0.15

    def __post_init__(self) -> None:
        for f in fields(self):
            low, high, unit = _RANGES[f.name]
            check_number(f"SleeperParams.{f.name}", getattr(self, f.name), low, high, unit)


class SimulatedSleeper:
    """A :class:`SimulatedPerson` in bed who may follow a pacer, calm down and fall asleep.

    Parameters
    ----------
    params:
        The person's physiology; ``follows_pacer`` and ``calm_floor`` are set here (the
        sleeper decides whether the pacer is followed; calming stops at ``wake_floor``),
        and the initial ``stress`` is raised to ``wake_floor`` if below it.
    sleeper:
        How this person falls asleep and follows pacers.
    seed:
        Seed (integer >= 0) of the person and of the behaviour.
    """

    def __init__(self, params: PersonParams, sleeper: SleeperParams, seed: int) -> None:
        if not isinstance(sleeper, SleeperParams):
            raise ValueError(f"sleeper must be a SleeperParams, got {type(sleeper).__name__}")
        inner = dataclasses.replace(
            params,
            follows_pacer=True,
            calm_floor=sleeper.wake_floor,
            stress=max(params.stress, sleeper.wake_floor),
        )
        self.person = SimulatedPerson(inner, seed)
        self.sleeper = sleeper
        self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x51EE9]))
        self._t = 0.0
        self._pacer: float | None = None
        self._following = False
        self._comfort = self._spontaneous(self.person.stress)
        self._wander = 0.0
        self._credit = 0.0
        self._onset_s: float | None = None
        self._onset_stress = 0.0
        self._move_until = -math.inf
        self._moves: list[tuple[float, float]] = []
        self._calm_s: float | None = None

    # -- state -------------------------------------------------------------------------
    @property
    def t_s(self) -> float:
        """Simulation time reached, seconds."""
        return self._t

    @property
    def stress(self) -> float:
        """Current arousal, 0..1."""
        return self.person.stress

    @property
    def asleep(self) -> bool:
        """Whether the person is asleep."""
        return self._onset_s is not None

    @property
    def sleep_onset_s(self) -> float | None:
        """When the person fell asleep, seconds (None: awake)."""
        return self._onset_s

    @property
    def calm_s(self) -> float | None:
        """When arousal first reached ``calm_stress``, seconds (None: not yet)."""
        return self._calm_s

    @property
    def following(self) -> bool:
        """Whether the person breathes with the pacer now."""
        return self._following

    @property
    def comfort_bpm(self) -> float:
        """The breathing rate the person finds comfortable now, breaths/min."""
        return self._comfort

    @property
    def breath_rate_bpm(self) -> float:
        """The actual breathing rate, breaths/min."""
        return self.person.breath_rate_bpm

    @property
    def movements(self) -> list[tuple[float, float]]:
        """(start, end) of every movement burst so far, seconds."""
        return list(self._moves)

    def hear(self, pacer_bpm: float | None) -> None:
        """The device's breath pacer as the person hears it now (None: none)."""
        if pacer_bpm is not None:
            check_number("pacer_bpm", pacer_bpm, *_PACER_LIMITS, "breaths/min")
        self._pacer = pacer_bpm

    def moving(self, t0_s: float, t1_s: float) -> bool:
        """Whether any movement burst overlaps ``[t0_s, t1_s]``."""
        return any(a <= t1_s and b >= t0_s for a, b in reversed(self._moves[-50:]))

    # -- simulation ----------------------------------------------------------------------
    def _spontaneous(self, stress: float) -> float:
        p = self.person.params
        return p.breath_rate_bpm + p.stress_breath_gain_bpm * stress

    def advance(self, t_s: float) -> None:
        """Simulate up to ``t_s`` seconds in steps of :data:`TICK_S`."""
        t_s = check_number("t_s", t_s, 0.0, math.inf, "s")
        while self._t + TICK_S <= t_s + 1e-9:
            self._tick(TICK_S)
            self._t += TICK_S
            self.person.advance(self._t)

    def _tick(self, dt: float) -> None:
        sp = self.sleeper
        rng = self._rng
        u = rng.random(4)  # a fixed number of draws per tick keeps the streams aligned
        stress = self.person.stress
        if self._onset_s is None:
            if u[0] < sp.worries_per_hour / 3600.0 * dt:
                stress = min(1.0, stress + sp.worry_size)
                self._credit = 0.0
            stress = sp.wake_floor + (stress - sp.wake_floor) * math.exp(
                -dt / sp.natural_calm_tau_s
            )
            if stress <= sp.calm_stress:
                self._credit += dt
                if self._calm_s is None:
                    self._calm_s = self._t
            else:
                self._credit = max(0.0, self._credit - dt)
            if self._credit >= sp.sleep_latency_s:
                self._onset_s = self._t
                self._onset_stress = stress
        else:
            stress = max(0.0, stress - self._onset_stress * dt / sp.sleep_ramp_s)
        self.person.set_stress(max(0.0, min(1.0, stress)))

        a = math.exp(-dt / sp.irregularity_tau_s)
        self._wander = a * self._wander + math.sqrt(1.0 - a * a) * sp.breath_irregularity * (
            math.sqrt(-2.0 * math.log(max(u[1], 1e-12))) * math.cos(2.0 * math.pi * u[2])
        )
        spont = self._spontaneous(stress)
        if self._onset_s is not None:
            self._following = False
            p = self.person.params
            target = p.breath_rate_bpm - sp.sleep_breath_slowing_bpm
        else:
            pacer = self._pacer
            reach = sp.capture_bpm * (1.0 if self._following else _REACQUIRE)
            self._following = pacer is not None and pacer >= self._comfort - reach
            breathing = self.person.breath_rate_bpm
            goal = breathing if self._following else spont
            c = 1.0 - math.exp(-dt / sp.comfort_tau_s)
            self._comfort = min(spont, self._comfort + (goal - self._comfort) * c)
            if self._following and pacer is not None:
                target = pacer * (1.0 + 0.5 * self._wander)
            else:
                target = spont * (1.0 + self._wander)
        self.person.set_pacer(min(_PACER_LIMITS[1], max(_PACER_LIMITS[0], target)))

        asleep = self._onset_s is not None
        per_hour = sp.moves_per_hour_asleep if asleep else sp.moves_per_hour_awake
        if self._t >= self._move_until and u[3] < per_hour / 3600.0 * dt:
            length = _MOVE_S[0] + (_MOVE_S[1] - _MOVE_S[0]) * rng.random()
            self._move_until = self._t + length
            self._moves.append((self._t, self._move_until))

    def __repr__(self) -> str:
        state = "asleep" if self.asleep else ("following" if self._following else "awake")
        return (
            f"SimulatedSleeper(t_s={self._t:.0f}, {state}, stress={self.stress:.2f}, "
            f"breath={self.breath_rate_bpm:.1f}, comfort={self._comfort:.1f})"
        )


class MovementArtifacts:
    """Corrupts a chest strap's RR intervals during a sleeper's movement bursts.

    A beat inside a burst is missed with ``miss_probability`` (its interval joins the
    next one) or gets an extra, spurious beat before it with ``extra_probability`` (its
    interval is split at a random point), the two errors of R-peak detection under motion
    that artefact correction must handle (Lipponen & Tarvainen 2019).

    Parameters
    ----------
    sleeper:
        Whose movements corrupt the intervals.
    seed:
        Seed of the corruption.
    """

    def __init__(self, sleeper: SimulatedSleeper, seed: int) -> None:
        self._sleeper = sleeper
        self._rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA47]))
        self._carry_ms = 0.0

    def apply(self, rr_ms: FloatArray, beat_times_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The intervals (ms) and beat times (s) of one notification as the strap reports them."""
        sp = self._sleeper.sleeper
        out_rr: list[float] = []
        out_t: list[float] = []
        for own, t in zip(rr_ms.tolist(), beat_times_s.tolist(), strict=True):
            rr = own + self._carry_ms
            self._carry_ms = 0.0
            u = self._rng.random(2)
            if self._sleeper.moving(t - own / 1000.0, t):
                if u[0] < sp.miss_probability:
                    self._carry_ms = rr
                    continue
                if u[0] < sp.miss_probability + sp.extra_probability:
                    first = rr * (0.3 + 0.4 * u[1])
                    out_rr.append(first)
                    out_t.append(t - (rr - first) / 1000.0)
                    rr -= first
            out_rr.append(rr)
            out_t.append(t)
        return np.asarray(out_rr, dtype=np.float64), np.asarray(out_t, dtype=np.float64)
