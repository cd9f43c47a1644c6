"""The closed loop: one object the appliance calls per metrics update.

:class:`TherapyController` holds the state of the pure state machines (pacer, stress
response, sleep-onset detector, resonance assessment) and composes them through
:func:`heartsong.therapy.policy.decide`::

    therapy = TherapyController(settings, tuning, store=ResonanceStore(path))
    apply(therapy.start(now_s, wall_s))                      # session start
    apply(therapy.step(metrics, estimate, now_s, wall_s))    # every metrics update
    apply(therapy.update_settings(settings, now_s, wall_s))  # the user changed something
    therapy.close()                                          # shutdown: keeps what it learnt

Each call returns a :class:`~heartsong.therapy.policy.Decision` whose ``adaptations`` say
what moved and why. The session's mode is the user's (``wind_down`` or ``calm``) until
sleep onset, then ``sleep`` (and back when the person wakes).

**Resonance assessment.** Until the personal resonance rate is known (see
:mod:`heartsong.therapy.resonance`), the pacer heads for the default rate (6/min); once it
has been followed there for ``resonance_dwell_s`` it walks down the band to its lowest
rate and back up to its highest, staying ``resonance_dwell_s`` at each rate (Lehrer et
al. 2000's protocol, walked in both directions so that calming during the walk is not
mistaken for resonance), then settles at the best rate measured so far, or 6/min. Once
the rate is known, the pacer heads straight for it.

**Soundscape learning.** With a :class:`~heartsong.therapy.learner.SoundscapeLearner`
(``learner=``), a ``calm`` or ``wind_down`` session starts with the soundscape the learner
chooses instead of the user's (the choice starts the switch interval, so the stress
response's masking switch waits ``switch_interval_s``, long enough to measure the
answer); its explanation is a note of the session start and :attr:`soundscape_reason`.
Every stay of a candidate soundscape (an *episode*) is measured and learnt from when it
ends: another soundscape, sleep onset, the session's end or the response window. A
soundscape the user picks during the session wins until the next session.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Literal

from heartsong.audio.soundscapes import get_preset
from heartsong.errors import InputDataError
from heartsong.events import Metrics, Mode, SoundTargets
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.explain import Adaptation, format_duration
from heartsong.therapy.learner import SoundscapeLearner
from heartsong.therapy.pacer import PacerConfig, PacerState, breath_level, pacer_step
from heartsong.therapy.policy import (
    Decision,
    Guidance,
    PolicyInput,
    PolicySettings,
    calm_base,
    decide,
    timer_done,
)
from heartsong.therapy.resonance import (
    ResonanceBand,
    ResonanceEstimate,
    ResonanceModel,
    ResonanceStore,
    SessionRecord,
    add_sample,
    estimate_resonance,
    rsa_amplitude_bpm,
)
from heartsong.therapy.settings import TherapyTuning
from heartsong.therapy.sleep_onset import SleepConfig, SleepState, observe, sleep_step
from heartsong.therapy.stress_response import (
    StressResponseConfig,
    StressResponseState,
    stress_response_step,
    user_soundscape,
)

__all__ = [
    "RESP_WARMUP_S",
    "SAMPLE_AFTER_S",
    "SAVE_EVERY_S",
    "AssessmentPhase",
    "TherapyController",
]

logger = logging.getLogger(__name__)

#: A rate is sampled for the resonance estimate once the pacer has held it this long, s
#: (the breathing settles, then a one-minute metrics window lies mostly at the new rate).
SAMPLE_AFTER_S = 90.0
#: Breathing rates of the first seconds of a session are not used by the pacer: the
#: metrics window is still filling, and a part-filled window is easily misread (the
#: ~0.1 Hz Mayer wave passes for 6 breaths/min), s.
RESP_WARMUP_S = 75.0
#: The measured breathing must be this close to the pacer for a sample, breaths/min.
SAMPLE_TOLERANCE_BPM = 0.5
#: What was learnt is saved at least this often, s (and at sleep onset and shutdown).
SAVE_EVERY_S = 600.0
#: Volume steps of the sleep fade, dB.
FADE_STEP_DB = 2.0
#: Brightness and intensity of the low masking sound in sleep mode (0..1).
SLEEP_BRIGHTNESS_DROP = 0.2
SLEEP_INTENSITY = 0.3
#: Fade depth when the sleep sound is "off": below this the sound stops, dB.
SILENCE_DB = 40.0
#: After waking in the night the sound rises from where the sleep fade had taken it by
#: this much per minute, dB ...
WAKE_RISE_DB_PER_MIN = 2.0
#: ... to at most this far below the user's volume: a night is quieter than the evening.
WAKE_CEILING_DB = -12.0

AssessmentPhase = Literal["approach", "down", "up", "settled"]


def _fade_steps(offset_db: float) -> float:
    """``offset_db`` rounded down to whole FADE_STEP_DB steps, dB."""
    return FADE_STEP_DB * math.floor(offset_db / FADE_STEP_DB + 1e-9)


class TherapyController:
    """The closed-loop therapy of one device (see the module docstring).

    Parameters
    ----------
    settings:
        The user's settings.
    tuning:
        The closed loop's settings (config ``[therapy]``).
    store:
        Where the resonance sessions are kept, or None for nowhere.
    pacer_cfg, sleep_cfg:
        Pacer and sleep-detector rules (defaults derived from ``tuning``).
    learner:
        Chooses the soundscape of ``calm``/``wind_down`` sessions and learns from the
        heart's answer (None: the user's soundscape; see the module docstring).
    stress_levels:
        ``(enter, leave)``: the smoothed ``p_stress`` at which the stress response enters
        and leaves its stressed state. They belong to the stress model's calibration
        (its ``stressed_enter``/``stressed_exit`` thresholds: a model whose decision
        threshold is 0.33 rarely says 0.65); None keeps the stress response's defaults.
    upstream_tau_s:
        Time constant (s) with which the ``p_stress`` given to :meth:`step` is already
        smoothed (the stress model's own smoother). The stress response's filter makes up
        the rest of ``tuning.stress_tau_s`` (at least 1 s), so the sound follows stress
        with about the configured delay, not that delay plus the model's (two first-order
        filters in a row delay by the sum of their time constants).
    """

    def __init__(
        self,
        settings: PolicySettings,
        tuning: TherapyTuning | None = None,
        *,
        store: ResonanceStore | None = None,
        pacer_cfg: PacerConfig | None = None,
        sleep_cfg: SleepConfig | None = None,
        learner: SoundscapeLearner | None = None,
        stress_levels: tuple[float, float] | None = None,
        upstream_tau_s: float = 0.0,
    ) -> None:
        self.tuning = tuning or TherapyTuning()
        t = self.tuning
        get_preset(settings.soundscape)  # an unknown preset fails here, with the list
        if t.masking_soundscape:
            try:
                get_preset(t.masking_soundscape)
            except InputDataError as exc:
                raise InputDataError(
                    "therapy.masking_soundscape", exc.expected, t.masking_soundscape
                ) from None
        self.band = ResonanceBand(
            t.resonance_min_bpm,
            t.resonance_max_bpm,
            min(t.resonance_max_bpm, max(t.resonance_min_bpm, settings.breath_rate_bpm)),
            t.pacer_step_bpm,
        )
        self.pacer_cfg = pacer_cfg or PacerConfig(
            step_bpm=t.pacer_step_bpm,
            tolerance_bpm=min(0.45, 0.9 * t.pacer_step_bpm),
            hold_s=t.pacer_hold_s,
        )
        self.sleep_cfg = sleep_cfg or SleepConfig()
        levels: dict[str, float] = {}
        if stress_levels is not None:
            levels = {"enter_stressed": stress_levels[0], "leave_stressed": stress_levels[1]}
        self.stress_cfg = StressResponseConfig(
            tau_s=max(1.0, t.stress_tau_s - max(upstream_tau_s, 0.0)),
            switch_interval_s=t.switch_interval_s,
            masking_soundscape=t.masking_soundscape or None,
            quality_min=t.quality_min,
            **levels,
        )
        self.store = store
        self.learner = learner
        if learner is not None:
            for name in learner.candidates:
                try:
                    get_preset(name)
                except InputDataError as exc:
                    raise InputDataError("therapy.learn_candidates", exc.expected, name) from None
        self.settings = settings
        self.model: ResonanceModel = store.load() if store is not None else ResonanceModel()
        self._reset(0.0, 0.0)

    def _reset(self, now_s: float, wall_s: float) -> None:
        self.t_start_s = now_s
        self.session = SessionRecord(wall_s)
        self.pacer = PacerState()
        self.stress = StressResponseState()
        self.sleep = SleepState()
        self.estimate: ResonanceEstimate = estimate_resonance(self.model, self.band)
        self.phase: AssessmentPhase = "settled" if self.estimate.known else "approach"
        self.sleep_onset_s: float | None = None
        self.targets: SoundTargets | None = None
        self.tempo_bpm: float | None = None
        self.last_reason = ""
        self._last_step_s: float | None = None
        self._last_save_s = now_s
        self._fade_offset_db = 0.0
        #: When the person last woke after a detected sleep onset, and the fade offset
        #: (dB) the sound had reached then (None: no night wake this session).
        self._woke_s: float | None = None
        self._woke_offset_db = 0.0
        self.chosen: str | None = None
        #: The user picked this session's soundscape (a command), not the learner.
        self.user_chose = False
        self._episode_sound: str | None = None

    # -- what the status line and the LEDs read -----------------------------------------
    @property
    def mode(self) -> Mode:
        """The session's mode now: the user's, or ``sleep`` after sleep onset."""
        return "sleep" if self.sleep_onset_s is not None else self.settings.mode

    @property
    def soundscape_reason(self) -> str:
        """Why the session's soundscape was chosen ("" without a learner or before a choice)."""
        if self.user_chose:
            return f"playing {self.settings.soundscape}: your choice"
        return self.learner.last_explanation if self.learner is not None else ""

    def _base_soundscape(self) -> str:
        """The session's calm-state soundscape: the learner's choice, else the user's."""
        return self.chosen or self.settings.soundscape

    @property
    def pacer_bpm(self) -> float | None:
        """The pacer rate playing, breaths/min (None: off)."""
        return self.pacer.rate_bpm

    def breath_level(self, now_s: float) -> float:
        """The pacer's breath envelope (0..1, 1 = top of the inhale) at ``now_s``, for LEDs."""
        rate = self.pacer.rate_bpm
        if rate is None or self.pacer.t_s is None:
            return 0.0
        phase = self.pacer.phase + rate * max(0.0, now_s - self.pacer.t_s) / 60.0
        return breath_level(phase, self.pacer_cfg.inhale_fraction)

    # -- the appliance's calls ------------------------------------------------------------
    def start(
        self, now_s: float, wall_s: float, settings: PolicySettings | None = None
    ) -> Decision:
        """Begin a session at monotonic ``now_s`` / Unix ``wall_s``; the first targets.

        A session in progress is saved first; ``settings`` (if given) replace the user's
        settings for the new session.
        """
        if self.session.visits:
            self._save()
        notes: list[Adaptation] = []
        if self.learner is not None:
            ended = self.learner.episode_end()
            if ended:
                notes.append(Adaptation.note(ended))
        if settings is not None:
            get_preset(settings.soundscape)
            self.settings = settings
        self._reset(now_s, wall_s)
        s = self.settings
        learning = (
            self.learner is not None and self.tuning.closed_loop
            and s.mode in ("calm", "wind_down")
        )
        if learning:
            assert self.learner is not None
            self.chosen, why = self.learner.choose(s.mode, wall_s)
            notes.append(Adaptation.note(why))
        name = self._base_soundscape()
        base = calm_base(name, name, s.mode, wall_s, 0.0)
        self.stress = StressResponseState(
            soundscape=name,
            brightness=base.brightness,
            intensity=base.intensity,
            tempo_bpm=base.tempo_bpm,
            last_switch_s=now_s if learning else None,
        )
        if learning:
            self._track_episode(now_s, wall_s, notes)
        return self._decide(now_s, wall_s, None, notes, {})

    def update_settings(
        self,
        settings: PolicySettings,
        now_s: float,
        wall_s: float,
        chose_soundscape: bool = False,
        chose_mode: bool = False,
    ) -> Decision:
        """The user changed a setting: the targets now, with the reasons.

        ``chose_soundscape``: the user picked ``settings.soundscape`` even if it is the
        setting already (the learner may be playing another one); ``chose_mode`` likewise
        for ``settings.mode`` (after a detected sleep onset the mode in force is ``sleep``).
        """
        notes: list[Adaptation] = []
        if chose_soundscape or settings.soundscape != self.settings.soundscape:
            self.chosen = None  # the user's choice wins for this session
            self.user_chose = True
            self.stress = user_soundscape(self.stress, settings.soundscape, now_s)
        if chose_mode or settings.mode != self.settings.mode:
            if self.sleep_onset_s is not None and settings.mode != "sleep":
                # The user wants the evening back: their choice, at their volume.
                self.sleep_onset_s = None
                self._fade_offset_db = 0.0
                self.sleep = dataclasses.replace(self.sleep, asleep=False, onset_s=None)
                notes.append(Adaptation("mode", "sleep", settings.mode, "user choice"))
            # Choosing "sleep" while asleep changes nothing audible: the fade goes on.
            if settings.mode != "sleep":
                self._woke_s = None
        self.settings = settings
        return self._decide(now_s, wall_s, None, notes, {})

    def step(
        self, metrics: Metrics, stress: StressEstimate | None, now_s: float, wall_s: float
    ) -> Decision:
        """One metrics update: detectors and pacer advance, then the targets are decided.

        Parameters
        ----------
        metrics:
            The heart metrics of the window ending now.
        stress:
            The stress stage's estimate (None: no estimate).
        now_s, wall_s:
            Monotonic and Unix time of the update, seconds.
        """
        t = self.tuning
        notes: list[Adaptation] = []
        causes: dict[str, str] = {}
        dt = 0.0 if self._last_step_s is None else max(0.0, now_s - self._last_step_s)
        self._last_step_s = now_s
        if not t.closed_loop:
            return self._decide(now_s, wall_s, metrics, notes, causes)

        quality_ok = metrics.signal_quality is not None and metrics.signal_quality >= t.quality_min
        if t.sleep_detection:
            self._sleep_step(metrics, now_s, notes, causes)

        warm = now_s - self.t_start_s >= RESP_WARMUP_S
        measured = metrics.resp_rate_bpm if quality_ok and warm else None
        self._pacer_step(now_s, measured, causes)
        if quality_ok:
            self._sample(metrics, now_s, dt, notes)

        if self.learner is not None:
            learnt = self.learner.observe(metrics, now_s)
            if learnt:
                notes.append(Adaptation.note(learnt))
        if self.mode != "sleep":
            base = calm_base(
                self._base_soundscape(),
                self.stress.soundscape or self._base_soundscape(),
                self.mode,
                wall_s,
                now_s - self.t_start_s,
            )
            su = stress_response_step(
                self.stress,
                now_s=now_s,
                p_stress=None if stress is None else stress.p_stress,
                quality=metrics.signal_quality,
                base=base,
                cfg=self.stress_cfg,
                why_unknown="" if stress is None else stress.reason,
            )
            self.stress = su.state
            causes.update(su.causes)
            notes.extend(su.notes)
        else:
            # Asleep, the stress response rests: its clock must not count the sleep as
            # time spent stressed (a wake would otherwise switch to masking at once).
            self.stress = dataclasses.replace(self.stress, t_s=now_s, stressed_s=0.0)
        if self.learner is not None:
            self._track_episode(now_s, wall_s, notes)
        if now_s - self._last_save_s >= SAVE_EVERY_S:
            self._save()
        return self._decide(now_s, wall_s, metrics, notes, causes)

    def close(self) -> None:
        """Keep what this session taught (resonance rate, soundscapes; safe to call twice)."""
        self._save()
        if self.learner is not None:
            self.learner.episode_end()
            self.learner.save()

    def _track_episode(self, now_s: float, wall_s: float, notes: list[Adaptation]) -> None:
        """End the learner's episode when the sound changed or sleep began; start the next."""
        assert self.learner is not None
        playing = None if self.mode == "sleep" else (self.stress.soundscape or None)
        if playing == self._episode_sound:
            return
        ended = self.learner.episode_end()
        if ended:
            notes.append(Adaptation.note(ended))
        self._episode_sound = playing
        if playing is not None:
            self.learner.episode_start(
                playing, now_s, wall_s, now_s - self.t_start_s, self.mode
            )

    # -- parts ------------------------------------------------------------------------------
    def _sleep_step(
        self, metrics: Metrics, now_s: float, notes: list[Adaptation], causes: dict[str, str]
    ) -> None:
        before = self.mode
        obs = observe(metrics, self.sleep_cfg)
        su = sleep_step(self.sleep, obs, self.pacer.rate_bpm, self.sleep_cfg)
        self.sleep = su.state
        if su.onset is not None:
            self.sleep_onset_s = now_s  # the fade goes on from where the sound is
            notes.append(Adaptation("mode", before, "sleep", f"sleep onset: {su.onset}"))
            causes["volume_db"] = "asleep: quiet masking sound"
            self._save()
        elif su.woke is not None:
            # Awake in the night: no jump back to the evening's volume and no pacer to
            # follow (it would hold the person awake, and a breathing rate that follows
            # it counts against the next sleep onset); the sound rises slowly from where
            # the fade had taken it, to WAKE_CEILING_DB below the user's volume.
            self.sleep_onset_s = None
            self._woke_s = now_s
            # From the level that was playing (the sleep mode's own quieter volume and
            # the fade), relative to the user's volume; silence counts as SILENCE_DB down.
            t = self.targets
            heard = t.volume_db if t is not None and t.playing else None
            self._woke_offset_db = min(0.0, -SILENCE_DB if heard is None
                                       else heard - self.settings.volume_db)
            notes.append(
                Adaptation("mode", "sleep", self.settings.mode, f"awake again: {su.woke}")
            )
            causes["volume_db"] = "awake again in the night: rising slowly, quieter than before"
            causes["playing"] = "awake again in the night"
            causes["brightness"] = causes["intensity"] = "awake again"

    def _pacer_target(self) -> tuple[float, float | None]:
        """Where the pacer heads now, and the dwell per rate (None: the normal hold)."""
        band = self.band
        if self.phase == "down":
            return band.min_bpm, self.tuning.resonance_dwell_s
        if self.phase == "up":
            return band.max_bpm, self.tuning.resonance_dwell_s
        if self.phase == "approach":
            return band.default_bpm, None
        return self.estimate.rate_bpm, None

    def _pacer_step(self, now_s: float, measured: float | None, causes: dict[str, str]) -> None:
        s = self.settings
        timer_over = timer_done(s, now_s - self.t_start_s)
        # No pacer nobody hears (the sleep timer ran out), and none after a night wake.
        active = self.mode != "sleep" and s.playing and not timer_over and self._woke_s is None
        target, dwell = self._pacer_target()
        old = self.pacer
        in_band = old.rate_bpm is not None and self.band.bin_of(old.rate_bpm) is not None
        pu = pacer_step(
            old,
            now_s=now_s,
            active=active,
            measured_bpm=measured,
            target_bpm=target,
            cfg=self.pacer_cfg,
            dwell_s=dwell if in_band else None,
        )
        self.pacer = pu.state
        if pu.cause is not None:
            causes["breath_rate_bpm"] = pu.cause
        if not active and old.rate_bpm is not None:
            causes["breath_rate_bpm"] = (
                "asleep" if self.mode == "sleep" else "sleep timer ran out" if timer_over
                else "awake in the night: no pacer" if self._woke_s is not None else "sound off"
            )
        self._advance_assessment(old.rate_bpm, in_band, causes)

    def _advance_assessment(
        self, old_bpm: float | None, was_in_band: bool, causes: dict[str, str]
    ) -> None:
        """Move the resonance assessment on: approach, down the band, up again, settled.

        ``approach`` turns to ``down`` after the dwell at the default rate; ``down`` turns
        to ``up`` after the dwell at the band's lowest rate, or when the pacer had to step
        back up inside the band (lower rates could not be followed); ``up`` ends after the
        dwell at the band's highest rate.
        """
        p = self.pacer
        rate = p.rate_bpm
        if rate is None or self.phase == "settled":
            return
        band = self.band
        dwell = self.tuning.resonance_dwell_s
        moved_up = old_bpm is not None and rate > old_bpm
        if (
            self.phase == "approach"
            and abs(rate - band.default_bpm) < 1e-6
            and p.at_rate_s >= dwell
            and p.followed_s >= self.pacer_cfg.hold_s
        ):
            self.phase = "down"
        elif self.phase == "down" and (
            (moved_up and was_in_band)
            or (rate <= band.min_bpm + 1e-6 and p.at_rate_s >= dwell)
        ):
            self.phase = "up"
        elif self.phase == "up" and rate >= band.max_bpm - 1e-6 and p.at_rate_s >= dwell:
            self.phase = "settled"
            self._refresh_estimate([])
        if self.phase == "up" and moved_up:
            causes["breath_rate_bpm"] = (
                f"resonance assessment, {format_duration(dwell)} at each rate"
            )

    def _sample(self, metrics: Metrics, now_s: float, dt: float, notes: list[Adaptation]) -> None:
        """Record the heart-rate oscillation at the paced rate (see SAMPLE_AFTER_S)."""
        p = self.pacer
        if p.stage != "pacing" or p.rate_bpm is None or dt <= 0.0:
            return
        # A settled rate interpolated between bins (5.8) is in none and adds no samples:
        # counting them for the nearest bin, or split between the two, made the simulated
        # estimate worse (median error after night 3: 0.40 -> 0.48 or 0.45 breaths/min).
        b = self.band.bin_of(p.rate_bpm)
        hr, sdnn, resp = metrics.hr_bpm, metrics.sdnn_ms, metrics.resp_rate_bpm
        if b is None or hr is None or sdnn is None or resp is None or sdnn <= 0.0:
            return
        if p.at_rate_s < SAMPLE_AFTER_S or abs(resp - p.rate_bpm) > SAMPLE_TOLERANCE_BPM:
            return
        t_min = (now_s - self.t_start_s) / 60.0
        self.session = add_sample(self.session, b, t_min, rsa_amplitude_bpm(hr, sdnn), dt)
        if self.phase == "settled":
            self._refresh_estimate(notes)

    def _refresh_estimate(self, notes: list[Adaptation]) -> None:
        est = estimate_resonance(self.model, self.band, self.session)
        old = self.estimate
        if est.rate_bpm != old.rate_bpm or est.known != old.known:
            best = max(est.effects_pct.items(), key=lambda kv: kv[1], default=None)
            why = (
                f"largest heart-rate oscillation at {best[0]:.1f} /min "
                f"({best[1]:+.0f}% vs the mean of {len(est.effects_pct)} rates, "
                f"{est.n_sessions} sessions)"
                if best is not None and est.known
                else "not enough measured rates yet"
            )
            notes.append(Adaptation("resonance_bpm", old.rate_bpm, est.rate_bpm, why))
        self.estimate = est

    def _save(self) -> None:
        if self.session.visits:
            self.model = self.model.with_session(self.session)
        self._last_save_s = self._last_step_s if self._last_step_s is not None else self.t_start_s
        if self.store is not None:
            self.store.save(self.model, estimate_resonance(self.model, self.band))

    def _sleep_guidance(self, now_s: float, causes: dict[str, str]) -> tuple[float, bool]:
        """Volume offset (dB) and playing of the fade after sleep onset (and of the slow
        rise after a night wake)."""
        if self.sleep_onset_s is None:
            if self._woke_s is None:
                return 0.0, True
            rise = WAKE_RISE_DB_PER_MIN * (now_s - self._woke_s) / 60.0
            offset = _fade_steps(min(WAKE_CEILING_DB, self._woke_offset_db + rise))
            if offset != self._fade_offset_db:
                causes.setdefault("volume_db", "awake in the night: rising slowly")
                self._fade_offset_db = offset
            return offset, True
        t = self.tuning
        fade_s = 60.0 * t.sleep_fade_min
        depth = SILENCE_DB if t.sleep_sound == "off" else t.sleep_fade_db
        done = min(1.0, (now_s - self.sleep_onset_s) / fade_s)
        # never above where it was: a fade after a night wake starts lower than 0 dB
        offset = min(self._fade_offset_db, -_fade_steps(depth * done))
        if offset != self._fade_offset_db:
            causes["volume_db"] = f"sleep fade {100 * done:.0f}% of {t.sleep_fade_min:g} min"
            self._fade_offset_db = offset
        playing = not (t.sleep_sound == "off" and done >= 1.0)
        if not playing:
            causes["playing"] = f"faded to silence {t.sleep_fade_min:g} min after sleep onset"
        return offset, playing

    def _decide(
        self,
        now_s: float,
        wall_s: float,
        metrics: Metrics | None,
        notes: list[Adaptation],
        causes: dict[str, str],
    ) -> Decision:
        elapsed = now_s - self.t_start_s
        if not self.tuning.closed_loop:
            inp = PolicyInput(self.settings, elapsed, metrics, None, wall_s)
            d = decide(inp, self.targets)
        else:
            mode = self.mode
            offset, playing = self._sleep_guidance(now_s, causes)
            if mode == "sleep":
                base = calm_base(
                    self._base_soundscape(), self.stress.soundscape or self._base_soundscape(),
                    mode, wall_s, elapsed,
                )
                dark = max(base.brightness_min, base.brightness - SLEEP_BRIGHTNESS_DROP)
                brightness: float | None = round(round(dark / 0.05) * 0.05, 3)
                intensity: float | None = SLEEP_INTENSITY
                causes.setdefault("brightness", "asleep: low masking sound")
                causes.setdefault("intensity", "asleep: low masking sound")
            else:
                brightness, intensity = self.stress.brightness, self.stress.intensity
            guidance = Guidance(
                mode=mode,
                pacer_bpm=self.pacer.rate_bpm,
                soundscape=self.stress.soundscape or None,
                brightness=brightness,
                intensity=intensity,
                tempo_bpm=self.stress.tempo_bpm,
                volume_offset_db=offset,
                playing=playing,
                causes=causes,
            )
            inp = PolicyInput(self.settings, elapsed, metrics, guidance, wall_s)
            d = decide(inp, self.targets, previous_tempo_bpm=self.tempo_bpm)
        if notes:
            d = dataclasses.replace(
                d,
                reasons=tuple(n.message for n in notes) + d.reasons,
                adaptations=tuple(notes) + d.adaptations,
            )
        self.targets = d.targets
        self.tempo_bpm = d.tempo_bpm
        if d.reasons:
            self.last_reason = d.reasons[-1]
            for reason in d.reasons:
                logger.debug("therapy: %s", reason)
        return d
