"""The therapy policy as a pure function: (inputs) -> (sound targets, reasons).

This first policy follows the user's settings: the configured soundscape and volume,
a breath pacer at the configured rate in ``wind_down`` and ``calm`` modes, no pacer in
``sleep`` mode (low masking sound), and the sleep timer's slow fade. The closed loop that
reacts to stress and breathing builds on the same signature. Every change of target comes
with a sentence that says why, so the device's behaviour is explainable.
"""

from __future__ import annotations

from dataclasses import dataclass

from heartsong.events import Metrics, Mode, SoundTargets

#: Sleep mode plays this much below the configured volume, in dB (masking, not music).
SLEEP_ATTENUATION_DB = 8.0


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """What the user chose (config, buttons, MQTT)."""

    mode: Mode
    soundscape: str
    volume_db: float
    breath_rate_bpm: float
    sleep_timer_s: float  # 0 = off
    playing: bool = True


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """Everything the policy may look at for one decision."""

    settings: PolicySettings
    session_elapsed_s: float
    metrics: Metrics | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The targets for the audio engine and why they differ from the previous ones."""

    targets: SoundTargets
    reasons: tuple[str, ...]


def decide(inp: PolicyInput, previous: SoundTargets | None) -> Decision:
    """Compute sound targets from the settings and the session's progress.

    Parameters
    ----------
    inp:
        Settings, session time in seconds and the latest metrics.
    previous:
        The targets in force, or None at session start; used only to explain changes.
    """
    s = inp.settings
    playing = s.playing
    reasons: list[str] = []
    volume_db = s.volume_db
    pacer: float | None = s.breath_rate_bpm
    if s.mode == "sleep":
        volume_db -= SLEEP_ATTENUATION_DB
        pacer = None
    if s.sleep_timer_s > 0 and inp.session_elapsed_s >= s.sleep_timer_s:
        playing = False
    targets = SoundTargets(
        soundscape=s.soundscape,
        playing=playing,
        volume_db=volume_db,
        breath_rate_bpm=pacer,
    )
    if previous is None:
        pace = "no pacer" if pacer is None else f"pacer {pacer:.1f}/min"
        reasons.append(
            f"session start: {s.mode} mode, {s.soundscape} at {volume_db:.0f} dB, {pace}"
        )
    else:
        if previous.playing and not playing:
            if s.sleep_timer_s > 0 and inp.session_elapsed_s >= s.sleep_timer_s:
                reasons.append(f"sleep timer: {s.sleep_timer_s / 60:.0f} min elapsed, fading out")
            else:
                reasons.append("sound paused by the user")
        elif playing and not previous.playing:
            reasons.append("sound resumed")
        if previous.soundscape != targets.soundscape:
            reasons.append(f"soundscape {previous.soundscape} -> {targets.soundscape}: user choice")
        if previous.volume_db != targets.volume_db:
            reasons.append(f"volume {previous.volume_db:.0f} -> {targets.volume_db:.0f} dB")
        if previous.breath_rate_bpm != targets.breath_rate_bpm:
            reasons.append(f"pacer {previous.breath_rate_bpm} -> {targets.breath_rate_bpm} /min")
    return Decision(targets, tuple(reasons))
