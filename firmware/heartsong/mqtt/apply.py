"""What a command does to the appliance: the user's policy settings before -> after.

A pure function, so the appliance's side of a command is one call on its own loop::

    applied = apply_command(self.settings, command, session_elapsed_s=...,
                            configured_sleep_timer_s=...)
    self.settings = applied.settings          # the policy reads these at the next decision
    if applied.restart_session: ...           # session clock back to zero

Every change comes with a sentence that says what changed and why (the appliance logs it
as a ``command`` event), like the therapy policy's adaptation reasons.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import assert_never

from heartsong.mqtt.commands import (
    Command,
    SessionControl,
    SetMode,
    SetPlaying,
    SetSleepTimer,
    SetSoundscape,
    SetVolume,
)
from heartsong.therapy.policy import PolicySettings, timer_done

__all__ = ["Applied", "apply_command", "sleep_timer_remaining_min"]


@dataclass(frozen=True, slots=True)
class Applied:
    """The settings after a command, why they changed, and whether a new session starts.

    Attributes
    ----------
    settings:
        The new settings (equal to the old ones when the command changed nothing).
    reason:
        One sentence for the event log and the status line.
    restart_session:
        True for "start session": the session clock (``session_elapsed_s``) restarts at 0.
    chose_soundscape:
        True when the user picked a soundscape that is not the one playing: the choice
        wins over the learner's for the rest of the session, even when it equals the
        configured default.
    chose_mode:
        True when the user picked a mode other than the one in force (``sleep`` after a
        detected onset may differ from the setting): it applies even when it equals the
        setting.
    """

    settings: PolicySettings
    reason: str
    restart_session: bool = False
    chose_soundscape: bool = False
    chose_mode: bool = False


def sleep_timer_remaining_min(settings: PolicySettings, session_elapsed_s: float) -> float:
    """Minutes until the sleep timer stops the sound; 0 when it is off or has run out.

    This is the ``sleep_timer_min`` value of the state document, so the Home Assistant
    number reads back what a ``set/sleep_timer_min`` command set (minus the time since).
    """
    if settings.sleep_timer_s <= 0:
        return 0.0
    return round(max(settings.sleep_timer_s - session_elapsed_s, 0.0) / 60.0, 1)


def apply_command(
    settings: PolicySettings,
    command: Command,
    *,
    session_elapsed_s: float,
    configured_sleep_timer_s: float = 0.0,
    playing_soundscape: str | None = None,
    mode_now: str | None = None,
) -> Applied:
    """Apply one validated command to the user's settings.

    Parameters
    ----------
    settings:
        The settings in force.
    command:
        A command from :func:`heartsong.mqtt.commands.parse_command` (already checked
        against the ceiling and the preset list).
    session_elapsed_s:
        Time since the session started, in seconds (the policy's sleep timer counts
        from the session start).
    configured_sleep_timer_s:
        ``therapy.sleep_timer_min`` in seconds (0 = off): a new session starts with it.
    playing_soundscape:
        The soundscape in force now (the learner's choice may differ from
        ``settings.soundscape``); None: ``settings.soundscape``.
    mode_now:
        The mode in force now (``sleep`` after a detected sleep onset); None:
        ``settings.mode``.

    Returns
    -------
    Applied
        The new settings and the reason. Semantics: a sleep timer of N minutes stops the
        sound N minutes from now (0 = off); turning the sound on after the timer ran out
        clears the timer; "start" begins a new session with the sound on and the
        configured timer; "stop" fades the sound out and keeps the other settings.
    """
    s = settings
    replace = dataclasses.replace
    if isinstance(command, SetMode):
        now = mode_now or s.mode
        if command.mode == now:
            return Applied(replace(s, mode=command.mode), f"mode is already {now}")
        return Applied(replace(s, mode=command.mode), f"mode {now} -> {command.mode}: command",
                       chose_mode=True)
    if isinstance(command, SetSoundscape):
        playing = playing_soundscape or s.soundscape
        if command.name == playing:
            return Applied(replace(s, soundscape=command.name),
                           f"soundscape is already {playing}")
        return Applied(
            replace(s, soundscape=command.name),
            f"soundscape {playing} -> {command.name}: command",
            chose_soundscape=True,
        )
    if isinstance(command, SetVolume):
        if command.volume_db == s.volume_db:
            return Applied(s, f"volume is already {s.volume_db:g} dB")
        return Applied(
            replace(s, volume_db=command.volume_db),
            f"volume {s.volume_db:g} -> {command.volume_db:g} dB: command",
        )
    if isinstance(command, SetSleepTimer):
        if command.minutes == 0:
            return Applied(replace(s, sleep_timer_s=0.0), "sleep timer off: command")
        return Applied(
            replace(s, sleep_timer_s=session_elapsed_s + command.minutes * 60.0),
            f"sleep timer: sound stops in {command.minutes:g} min: command",
        )
    if isinstance(command, SetPlaying):
        if not command.playing:
            return Applied(replace(s, playing=False), "sound off: command, fading out")
        if timer_done(s, session_elapsed_s):
            return Applied(
                replace(s, playing=True, sleep_timer_s=0.0),
                "sound on: command; the sleep timer had run out and is now off",
            )
        return Applied(replace(s, playing=True), "sound on: command")
    if isinstance(command, SessionControl):
        if command.action == "start":
            return Applied(
                replace(s, playing=True, sleep_timer_s=configured_sleep_timer_s),
                f"session started by command: {s.mode} mode, {s.soundscape}",
                restart_session=True,
            )
        return Applied(replace(s, playing=False), "session stopped by command, fading out")
    assert_never(command)
