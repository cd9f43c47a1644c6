"""Sleep onset from the heart signals, and waking up again.

At sleep onset the heart rate falls and vagal variability (RMSSD, HF power) rises
(Burgess et al. 1999; Trinder et al. 2001), breathing becomes regular (Douglas et al.
1982), and body movements all but stop, which is what actigraphy scores (Cole et al.
1992). A person who still breathes with the pacer is awake: sleepers do not follow a
pacer. The detector combines these, each against the person's own recent past:

* **still**: no movement for ``still_s`` seconds. Movement shows as artefacts: a metrics
  window whose signal quality is below ``still_quality`` (or without a heart rate) counts
  as moving;
* **not pacing**: no pacer plays, or the measured breathing is more than
  ``follow_tolerance_bpm`` away from every rate the pacer had in the last ``pacer_lag_s``
  (the measured rate lags a change of pace);
* and at least ``min_signs`` of three signs when the breathing followed a pacer within
  the last ``release_window_s`` (letting go of it is evidence), else
  ``min_signs_unpaced``, over the last ``recent_s`` seconds against the ``reference_s``
  seconds before them:

  - **heart rate falling**: median heart rate ``hr_drop_bpm`` or more below the reference;
  - **RMSSD rising**: median RMSSD at least ``rmssd_rise`` times the reference;
  - **slow regular breathing**: the breathing rate varies by at most
    ``regular_sd_bpm`` (standard deviation of the updates), is ``slower_bpm`` below the
    bedtime rate (the median of the first ``awake_reference_n`` measured rates after the
    first ``warmup_s`` of the session, whose part-filled windows are easily misread,
    taken before a pacer can have slowed the breathing much) and, after following a
    pacer, has left it (a sleeper breathes at its own rate).

When all of this holds for ``confirm_s`` seconds, sleep onset is declared. In sleep, two
movement episodes (separated by more than ``episode_gap_s`` of stillness, one metrics
window, since one movement spoils a whole window) within ``wake_window_s``, or a heart
rate ``wake_hr_rise_bpm`` above the sleeping median, mean the person woke up.

The thresholds are this project's, chosen on simulated nights (``tools/simulate_sessions.py``
with another seed than the report's); they are not validated against polysomnography.
Every function here is pure.

References
----------
Burgess HJ, Kleiman J, Trinder J (1999) Cardiac activity during sleep onset.
Psychophysiology 36(3):298-306.
Trinder J et al. (2001) Autonomic activity during human sleep as a function of time and
sleep stage. J Sleep Res 10(4):253-264.
Douglas NJ et al. (1982) Respiration during sleep in normal man. Thorax 37(11):840-844.
Cole RJ, Kripke DF, Gruen W, Mullaney DJ, Gillin JC (1992) Automatic sleep/wake
identification from wrist activity. Sleep 15(5):461-469.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

from heartsong.errors import check_number
from heartsong.events import Metrics
from heartsong.therapy.explain import format_duration

__all__ = [
    "SleepConfig",
    "SleepObservation",
    "SleepState",
    "SleepUpdate",
    "observe",
    "sleep_step",
]


def _check(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    check_number(f"sleep.{name}", value, low, high, unit)


@dataclass(frozen=True, slots=True)
class SleepConfig:
    """Thresholds of the detector (rates per minute, times in seconds)."""

    still_quality: float = 0.95
    still_s: float = 60.0
    follow_tolerance_bpm: float = 1.0
    recent_s: float = 60.0
    reference_s: float = 600.0
    hr_drop_bpm: float = 2.5
    rmssd_rise: float = 1.3
    regular_sd_bpm: float = 0.8
    slower_bpm: float = 1.0
    awake_reference_n: int = 12
    warmup_s: float = 75.0
    min_signs: int = 2
    min_signs_unpaced: int = 3
    confirm_s: float = 15.0
    wake_window_s: float = 180.0
    wake_hr_rise_bpm: float = 6.0
    episode_gap_s: float = 60.0
    release_window_s: float = 600.0
    pacer_lag_s: float = 90.0

    def __post_init__(self) -> None:
        _check("still_quality", self.still_quality, 0.0, 1.0)
        _check("still_s", self.still_s, 0.0, 3600.0, "s")
        _check("follow_tolerance_bpm", self.follow_tolerance_bpm, 0.1, 10.0, "breaths/min")
        _check("recent_s", self.recent_s, 10.0, 1800.0, "s")
        _check("reference_s", self.reference_s, 30.0, 7200.0, "s")
        _check("hr_drop_bpm", self.hr_drop_bpm, 0.0, 30.0, "beats/min")
        _check("rmssd_rise", self.rmssd_rise, 1.0, 5.0)
        _check("regular_sd_bpm", self.regular_sd_bpm, 0.0, 10.0, "breaths/min")
        _check("slower_bpm", self.slower_bpm, 0.0, 10.0, "breaths/min")
        _check("awake_reference_n", self.awake_reference_n, 1, 720)
        _check("warmup_s", self.warmup_s, 0.0, 3600.0, "s")
        _check("min_signs", self.min_signs, 1, 3)
        _check("min_signs_unpaced", self.min_signs_unpaced, 1, 3)
        _check("confirm_s", self.confirm_s, 0.0, 3600.0, "s")
        _check("wake_window_s", self.wake_window_s, 10.0, 3600.0, "s")
        _check("wake_hr_rise_bpm", self.wake_hr_rise_bpm, 1.0, 60.0, "beats/min")
        _check("episode_gap_s", self.episode_gap_s, 0.0, 3600.0, "s")
        _check("release_window_s", self.release_window_s, 10.0, 7200.0, "s")
        _check("pacer_lag_s", self.pacer_lag_s, 0.0, 600.0, "s")


@dataclass(frozen=True, slots=True)
class SleepObservation:
    """What one metrics update tells the detector (None: not measured)."""

    t_s: float
    hr_bpm: float | None
    rmssd_ms: float | None
    resp_bpm: float | None
    moving: bool


def observe(metrics: Metrics, cfg: SleepConfig) -> SleepObservation:
    """Reduce one metrics update to the detector's inputs (movement from signal quality)."""
    q = metrics.signal_quality
    moving = metrics.hr_bpm is None or q is None or q < cfg.still_quality
    return SleepObservation(
        metrics.t_s, metrics.hr_bpm, metrics.rmssd_ms, metrics.resp_rate_bpm, moving
    )


@dataclass(frozen=True, slots=True)
class SleepState:
    """The detector's memory.

    Attributes
    ----------
    history:
        Recent observations, oldest first (bounded to ``reference_s + recent_s``).
    start_s:
        Time of the first observation of the session.
    awake_resp_bpm:
        Bedtime breathing rate: median of the first ``awake_reference_n`` measured rates
        (None until known).
    last_move_s:
        Time of the last observation that showed movement (None: none yet); a movement
        after ``recent_s`` of stillness starts a new episode.
    asleep:
        Whether sleep onset was declared (and no waking since).
    candidate_s:
        Since when all conditions hold (None: they do not).
    onset_s:
        When sleep onset was declared (None while awake).
    sleep_hr_bpm:
        Median heart rate of the sleep so far (for waking).
    moves:
        Times of the movements that started since sleep onset.
    last_follow_s:
        When the breathing last followed a pacer (None: never).
    pacers:
        (time, rate) of the pacer over the last ``pacer_lag_s``: the measured breathing
        lags a change of pace, so any of them counts as followed.
    night_hr_bpm:
        After waking from a detected sleep: the median heart rate of that sleep. Falling
        asleep again is then judged against tonight's own sleep (the heart rate back at
        its sleeping level is a sign, and two signs suffice), not against the evening:
        after a first sleep there is no bedtime drop left to see.
    """

    history: tuple[SleepObservation, ...] = ()
    start_s: float | None = None
    awake_resp_bpm: float | None = None
    last_move_s: float | None = None
    asleep: bool = False
    candidate_s: float | None = None
    onset_s: float | None = None
    sleep_hr_bpm: float | None = None
    moves: tuple[float, ...] = ()
    last_follow_s: float | None = None
    pacers: tuple[tuple[float, float], ...] = ()
    night_hr_bpm: float | None = None


@dataclass(frozen=True, slots=True)
class SleepUpdate:
    """The new state; the reason when sleep onset or waking was declared at this step."""

    state: SleepState
    onset: str | None = None
    woke: str | None = None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _signs(
    recent: list[SleepObservation],
    reference: list[SleepObservation],
    awake_resp: float | None,
    paced: tuple[float, float] | None,
    cfg: SleepConfig,
    night_hr: float | None = None,
) -> list[str]:
    """The signs of sleep present, each as words with its numbers.

    ``paced`` is the range of the recent pacer rates when a followed pacer plays;
    ``night_hr`` the heart rate of tonight's earlier sleep (see SleepState.night_hr_bpm).
    """
    signs: list[str] = []
    hr_now = _median([o.hr_bpm for o in recent if o.hr_bpm is not None])
    hr_ref = _median([o.hr_bpm for o in reference if o.hr_bpm is not None])
    if hr_now is not None and hr_ref is not None and hr_ref - hr_now >= cfg.hr_drop_bpm:
        signs.append(f"HR {hr_ref:.0f} -> {hr_now:.0f} bpm")
    rm_now = _median([o.rmssd_ms for o in recent if o.rmssd_ms is not None])
    rm_ref = _median([o.rmssd_ms for o in reference if o.rmssd_ms is not None])
    if rm_now is not None and rm_ref is not None and rm_now >= cfg.rmssd_rise * rm_ref:
        signs.append(f"RMSSD {rm_ref:.0f} -> {rm_now:.0f} ms")
    resp = [o.resp_bpm for o in recent if o.resp_bpm is not None]
    if len(resp) >= max(3, len(recent) // 2):
        mean = statistics.fmean(resp)
        sd = statistics.pstdev(resp)
        slower = awake_resp is not None and mean <= awake_resp - cfg.slower_bpm
        how = "slower than at bedtime"
        if paced is not None:
            lo, hi = paced
            tol = cfg.follow_tolerance_bpm
            slower = slower and not lo - tol <= mean <= hi + tol
            how += f", off the pacer ({hi:.1f})"
        if sd <= cfg.regular_sd_bpm and slower:
            signs.append(f"breathing {mean:.1f} /min, regular (SD {sd:.1f}), {how}")
    if hr_now is not None and night_hr is not None and hr_now <= night_hr + 0.5 * (
        cfg.wake_hr_rise_bpm
    ):
        signs.append(f"HR {hr_now:.0f} bpm, back to tonight's sleeping {night_hr:.0f}")
    return signs


def sleep_step(
    state: SleepState, obs: SleepObservation, pacer_bpm: float | None, cfg: SleepConfig
) -> SleepUpdate:
    """Add one observation; declare sleep onset or waking when the evidence says so.

    Parameters
    ----------
    state:
        The state after the previous observation.
    obs:
        This update's observation (:func:`observe`).
    pacer_bpm:
        The pacer rate playing, breaths/min, or None.
    cfg:
        Thresholds.
    """
    t = obs.t_s
    span = cfg.reference_s + cfg.recent_s
    history = (*(o for o in state.history if o.t_s > t - span), obs)
    start = state.start_s if state.start_s is not None else t
    s = dataclasses.replace(state, history=history, start_s=start)
    if s.awake_resp_bpm is None:
        settled = start + cfg.warmup_s
        early = [o.resp_bpm for o in history if o.resp_bpm is not None and o.t_s >= settled]
        if len(early) >= cfg.awake_reference_n:
            s = dataclasses.replace(s, awake_resp_bpm=_median(early[: cfg.awake_reference_n]))
    new_episode = obs.moving and (
        state.last_move_s is None or t - state.last_move_s > cfg.episode_gap_s
    )
    if obs.moving:
        s = dataclasses.replace(s, last_move_s=t)

    if s.asleep:
        moves = tuple(m for m in s.moves if m > t - cfg.wake_window_s)
        if new_episode:
            moves += (t,)
        onset = s.onset_s if s.onset_s is not None else t
        hrs = [o.hr_bpm for o in history if o.hr_bpm is not None and o.t_s >= onset]
        sleep_hr = _median(hrs) if hrs else s.sleep_hr_bpm
        s = dataclasses.replace(s, moves=moves, sleep_hr_bpm=sleep_hr)
        recent_hr = _median(
            [o.hr_bpm for o in history if o.hr_bpm is not None and o.t_s > t - cfg.recent_s]
        )
        why: str | None = None
        if len(moves) >= 2:
            why = f"moved {len(moves)} times in {format_duration(cfg.wake_window_s)}"
        elif (
            sleep_hr is not None
            and recent_hr is not None
            and recent_hr - sleep_hr >= cfg.wake_hr_rise_bpm
        ):
            why = f"HR {sleep_hr:.0f} -> {recent_hr:.0f} bpm"
        if why is not None:
            awake = dataclasses.replace(
                s, asleep=False, candidate_s=None, onset_s=None, sleep_hr_bpm=None, moves=(),
                night_hr_bpm=sleep_hr,
            )
            return SleepUpdate(awake, woke=why)
        return SleepUpdate(s)

    still_for = t - (s.last_move_s if s.last_move_s is not None else start)
    pacers = tuple(p for p in s.pacers if p[0] > t - cfg.pacer_lag_s)
    if pacer_bpm is not None:
        pacers = (*pacers, (t, pacer_bpm))
    s = dataclasses.replace(s, pacers=pacers)
    span_lo = min((r for _, r in pacers), default=math.nan)
    span_hi = max((r for _, r in pacers), default=math.nan)
    following = (
        pacer_bpm is not None
        and obs.resp_bpm is not None
        and span_lo - cfg.follow_tolerance_bpm
        <= obs.resp_bpm
        <= span_hi + cfg.follow_tolerance_bpm
    )
    if following:
        s = dataclasses.replace(s, last_follow_s=t)
    # A pacer counts only if it was followed lately: letting go of it is then evidence.
    released = (
        pacer_bpm is not None
        and s.last_follow_s is not None
        and t - s.last_follow_s <= cfg.release_window_s
    )
    paced = (span_lo, span_hi) if released else None
    recent = [o for o in history if o.t_s > t - cfg.recent_s]
    reference = [o for o in history if o.t_s <= t - cfg.recent_s]
    enough_past = t - start >= cfg.recent_s + 0.5 * cfg.reference_s
    signs = (_signs(recent, reference, s.awake_resp_bpm, paced, cfg, s.night_hr_bpm)
             if enough_past else [])
    needed = cfg.min_signs if paced is not None else cfg.min_signs_unpaced
    if s.night_hr_bpm is not None:
        needed = min(needed, 2)
    holds = still_for >= cfg.still_s and not following and len(signs) >= needed
    if not holds:
        return SleepUpdate(dataclasses.replace(s, candidate_s=None))
    candidate = s.candidate_s if s.candidate_s is not None else t
    if t - candidate < cfg.confirm_s:
        return SleepUpdate(dataclasses.replace(s, candidate_s=candidate))
    reason = f"still for {format_duration(still_for)}, " + ", ".join(signs)
    asleep = dataclasses.replace(
        s, asleep=True, candidate_s=None, onset_s=t, sleep_hr_bpm=None, moves=()
    )
    return SleepUpdate(asleep, onset=reason)
