"""Commands from the smart home: typed values, their payload schema, and the handler protocol.

A command arrives as text on ``<prefix>/<device_id>/set/<key>``, where ``key`` is the
state-document key it changes (so the topic that sets a value and the JSON field that
reports it share one name):

=================  ==========================  ==========================================
key                payload                     command
=================  ==========================  ==========================================
``mode``           ``wind_down|calm|sleep``    :class:`SetMode`
``soundscape``     a preset name               :class:`SetSoundscape`
``volume_db``      number, dBFS                :class:`SetVolume` (within the ceiling)
``sleep_timer_min`` number, minutes, 0 = off   :class:`SetSleepTimer`
``playing``        ``ON|OFF``                  :class:`SetPlaying` (the therapy sound)
``session``        ``START|STOP``              :class:`SessionControl`
=================  ==========================  ==========================================

:func:`parse_command` checks one payload against this schema and raises
:class:`~heartsong.errors.InputDataError` naming the key and what was expected; it never
raises anything else, whatever the bytes.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, get_args

from heartsong.errors import InputDataError
from heartsong.events import Mode

__all__ = [
    "COMMAND_KEYS",
    "MAX_PAYLOAD_BYTES",
    "MODES",
    "Command",
    "CommandHandler",
    "CommandLimits",
    "SessionControl",
    "SetMode",
    "SetPlaying",
    "SetSleepTimer",
    "SetSoundscape",
    "SetVolume",
    "call_on_loop",
    "parse_command",
    "preset_names",
]

#: Longest command payload accepted, in bytes (the longest valid one is a preset name).
MAX_PAYLOAD_BYTES: Final = 64
#: The therapy modes, in the order Home Assistant lists them.
MODES: Final[tuple[Mode, ...]] = get_args(Mode)

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?")


@dataclass(frozen=True, slots=True)
class SetMode:
    """Switch the therapy mode."""

    mode: Mode


@dataclass(frozen=True, slots=True)
class SetSoundscape:
    """Play another soundscape preset (crossfaded by the engine)."""

    name: str


@dataclass(frozen=True, slots=True)
class SetVolume:
    """Set the playback volume, in dB relative to full scale."""

    volume_db: float


@dataclass(frozen=True, slots=True)
class SetSleepTimer:
    """Stop playing this many minutes from now; 0 switches the timer off."""

    minutes: float


@dataclass(frozen=True, slots=True)
class SetPlaying:
    """Turn the therapy sound on (fade in) or off (fade out)."""

    playing: bool


@dataclass(frozen=True, slots=True)
class SessionControl:
    """Start a new session (sound on, session clock from zero) or stop the current one."""

    action: Literal["start", "stop"]


Command = SetMode | SetSoundscape | SetVolume | SetSleepTimer | SetPlaying | SessionControl

#: The keys after ``set/`` that name a command, in the order of the table above.
COMMAND_KEYS: Final = ("mode", "soundscape", "volume_db", "sleep_timer_min", "playing", "session")


class CommandHandler(Protocol):
    """What the appliance gives the MQTT link to receive validated commands.

    Called on paho's network thread: an implementation must only hand the command over
    (for example with ``loop.call_soon_threadsafe``) and return at once; it must not block.
    """

    def __call__(self, command: Command, /) -> None:
        """Take one validated command."""


def call_on_loop(
    loop: asyncio.AbstractEventLoop, handler: Callable[[Command], None]
) -> CommandHandler:
    """Wrap the appliance's handler so commands run on its asyncio loop, not paho's thread.

    The returned handler only schedules ``handler(command)`` with
    ``loop.call_soon_threadsafe`` and returns at once.
    """

    def hand_over(command: Command, /) -> None:
        loop.call_soon_threadsafe(handler, command)

    return hand_over


def preset_names() -> tuple[str, ...]:
    """The soundscape presets' names (:data:`heartsong.audio.soundscapes.PRESETS`)."""
    from heartsong.audio.soundscapes import PRESETS  # the audio package loads on use

    return tuple(PRESETS)


@dataclass(frozen=True, slots=True)
class CommandLimits:
    """The allowed values of the numeric and named commands.

    Attributes
    ----------
    soundscapes:
        Preset names a ``soundscape`` command may choose.
    volume_min_db, volume_max_db:
        Allowed volume in dBFS; ``volume_max_db`` is ``audio.max_volume_db``, the ceiling
        no command can exceed.
    sleep_timer_max_min:
        Longest sleep timer in minutes.
    """

    soundscapes: tuple[str, ...] = field(default_factory=preset_names)
    volume_min_db: float = -60.0
    volume_max_db: float = -6.0
    sleep_timer_max_min: float = 720.0

    def __post_init__(self) -> None:
        if not self.soundscapes:
            raise InputDataError("soundscapes", "at least one preset name", self.soundscapes)
        if not self.volume_min_db <= self.volume_max_db:
            raise InputDataError(
                "volume_max_db", f"at least volume_min_db = {self.volume_min_db:g} dB",
                self.volume_max_db,
            )
        if not self.sleep_timer_max_min > 0:
            raise InputDataError("sleep_timer_max_min", "a positive number of minutes",
                                 self.sleep_timer_max_min)


def _one_of(options: Sequence[str]) -> str:
    return "one of " + ", ".join(repr(o) for o in options)


def _text(key: str, payload: bytes) -> str:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InputDataError(
            key, f"a payload of at most {MAX_PAYLOAD_BYTES} bytes", f"{len(payload)} bytes"
        )
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InputDataError(key, "UTF-8 text", payload[:MAX_PAYLOAD_BYTES]) from None


def _choice(key: str, text: str, options: Sequence[str], *, any_case: bool = False) -> str:
    candidate = text.upper() if any_case else text
    if candidate not in options:
        raise InputDataError(key, _one_of(options), text)
    return candidate


def _number(key: str, text: str, lo: float, hi: float, unit: str) -> float:
    expected = f"a number from {lo:g} to {hi:g} ({unit})"
    if _NUMBER.fullmatch(text) is None:
        raise InputDataError(key, expected, text)
    value = float(text)
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InputDataError(key, expected, text)
    return value


def parse_command(key: str, payload: bytes, limits: CommandLimits) -> Command:
    """Check one command payload against its schema and return the typed command.

    Parameters
    ----------
    key:
        The topic level after ``set/`` (one of :data:`COMMAND_KEYS`).
    payload:
        The raw message payload. Surrounding white space is ignored; ``ON``/``OFF`` and
        ``START``/``STOP`` are accepted in any letter case.
    limits:
        Allowed soundscapes and numeric ranges.

    Raises
    ------
    InputDataError
        ``field`` is the key (or ``"topic"`` for an unknown key) and ``expected`` says
        what would have been accepted. No other exception escapes.
    """
    if key not in COMMAND_KEYS:
        raise InputDataError("topic", f"set/<key> with key {_one_of(COMMAND_KEYS)}", key)
    text = _text(key, payload)
    if key == "mode":
        chosen = _choice(key, text, MODES)
        return SetMode(next(m for m in MODES if m == chosen))
    if key == "soundscape":
        return SetSoundscape(_choice(key, text, limits.soundscapes))
    if key == "volume_db":
        return SetVolume(
            _number(key, text, limits.volume_min_db, limits.volume_max_db, "dB")
        )
    if key == "sleep_timer_min":
        return SetSleepTimer(_number(key, text, 0.0, limits.sleep_timer_max_min, "min"))
    if key == "playing":
        return SetPlaying(_choice(key, text, ("ON", "OFF"), any_case=True) == "ON")
    action = _choice(key, text, ("START", "STOP"), any_case=True)
    return SessionControl("start" if action == "START" else "stop")
