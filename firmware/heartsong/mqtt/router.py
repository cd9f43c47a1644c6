"""The command path on paho's thread: topic -> rate limit -> payload schema -> command.

:meth:`CommandRouter.route` turns one received message into either a typed
:class:`~heartsong.mqtt.commands.Command` or a :class:`Rejection` that says which field
was wrong and what was expected; it never raises, so a malformed or hostile message can
neither crash nor stall the network thread. The link publishes rejections as JSON on
``<prefix>/<device_id>/error``, for example::

    {"topic": "heartsong/bedroom/set/volume_db", "field": "volume_db",
     "expected": "a number from -60 to -6 (dB)", "got": "12",
     "error": "volume_db: a number from -60 to -6 (dB) (got '12')"}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from heartsong.errors import InputDataError
from heartsong.mqtt.commands import Command, CommandLimits, parse_command
from heartsong.mqtt.ratelimit import TokenBucket
from heartsong.mqtt.topics import Topics

__all__ = ["CommandRouter", "Rejection"]

log = logging.getLogger(__name__)

#: Longest excerpt of a bad value echoed in an error document, in characters.
ECHO_CHARS = 64


def _shown(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="backslashreplace")
    else:
        text = str(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "..."


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a command was refused.

    Attributes
    ----------
    topic:
        The topic it arrived on.
    field:
        What was wrong: the command key (``"volume_db"``), ``"topic"``, ``"retain"`` or
        ``"rate"``.
    expected:
        What would have been accepted, in words.
    got:
        An excerpt of the offending value (None when there is nothing to show).
    """

    topic: str
    field: str
    expected: str
    got: str | None = None

    @property
    def message(self) -> str:
        """One line for a person: ``field: expected (got 'value')``."""
        shown = "" if self.got is None else f" (got {self.got!r})"
        return f"{self.field}: {self.expected}{shown}"

    def as_json(self) -> bytes:
        """The error document published on ``<prefix>/<device_id>/error``."""
        doc = {
            "topic": self.topic,
            "field": self.field,
            "expected": self.expected,
            "got": self.got,
            "error": self.message,
        }
        return json.dumps(doc, ensure_ascii=True).encode("ascii")


class CommandRouter:
    """Validate commands for one device.

    Parameters
    ----------
    topics:
        The device's topic names (commands arrive under ``topics.command_root``).
    limits:
        Allowed values (soundscapes, volume range and ceiling, longest sleep timer).
    bucket:
        Rate limit; every message under ``set/`` takes a token, valid or not, so a
        flood costs a bounded amount of work.
    """

    def __init__(self, topics: Topics, limits: CommandLimits, bucket: TokenBucket) -> None:
        self.topics = topics
        self.limits = limits
        self.bucket = bucket
        self.accepted = 0
        self.rejected = 0

    def route(self, topic: str, payload: bytes, *, retain: bool = False) -> Command | Rejection:
        """Check one message; return the command, or why it was refused. Never raises."""
        try:
            result = self._route(topic, payload, retain)
        except Exception as exc:  # a bug here must not take the network thread down
            log.exception("command on %s could not be checked", _shown(topic))
            result = Rejection(_shown(topic) or "", "payload", "a well-formed command",
                               _shown(type(exc).__name__))
        if isinstance(result, Rejection):
            self.rejected += 1
        else:
            self.accepted += 1
        return result

    def _route(self, topic: str, payload: bytes, retain: bool) -> Command | Rejection:
        if not self.bucket.take():
            return Rejection(
                topic, "rate",
                f"at most {self.bucket.rate_per_s:g} commands per second "
                f"(bursts of {self.bucket.burst})",
            )
        root = self.topics.command_root + "/"
        key = topic[len(root):] if topic.startswith(root) else ""
        if not key or "/" in key:
            return Rejection(topic, "topic", f"{root}<key>, one level below set/", _shown(topic))
        if retain:
            return Rejection(topic, "retain", "a command that is not retained (retain = false)")
        try:
            return parse_command(key, bytes(payload), self.limits)
        except InputDataError as exc:
            return Rejection(topic, exc.field, exc.expected, _shown(exc.value))
