"""Which values may leave the device: the ``mqtt.publish`` setting and the state filter.

Local-first privacy (DESIGN.md): the state document is filtered against an allow-list
before it is published or queued, so an excluded value never reaches the broker, the
on-disk outbox or Home Assistant, and its entity is not announced (an earlier
announcement is withdrawn). A key that this module does not know is never published:
a field added to the state document later stays on the device until it is listed here.

The setting is a comma-separated list of key names and group names, for example
``publish = "stress_state, device"`` (stress state and the sound controls, no heart
rate). Groups:

``all``
    everything below (the default);
``metrics``
    the heart metrics of :data:`heartsong.events.METRIC_NAMES` and ``n_beats``;
``device``
    the controls and diagnostics: mode, soundscape, playing, volume_db, sleep_timer_min,
    pacer_bpm, audio_underruns.

``last_adaptation`` (the therapy's latest change and its reason) and ``soundscape_reason``
(why this soundscape: "it lowered your heart rate by 4 bpm on average over 9 nights")
quote heart metrics, so they are published with ``all`` or when listed by name.

``wall_s`` (when the document was made) is always published; ``reasons`` (why a metric
is unknown) is published for the published metrics only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

from heartsong.errors import InputDataError
from heartsong.events import METRIC_NAMES

__all__ = [
    "ALWAYS",
    "DEVICE_KEYS",
    "EXPLANATION_KEYS",
    "GROUPS",
    "PUBLISHABLE",
    "PrivacyFilter",
    "resolve_publish",
]

log = logging.getLogger(__name__)

#: The device-side keys of the state document (controls and diagnostics).
DEVICE_KEYS: Final = (
    "mode",
    "soundscape",
    "playing",
    "volume_db",
    "sleep_timer_min",
    "pacer_bpm",
    "audio_underruns",
)
#: Why the therapy last changed the sound: a sentence that can quote heart metrics
#: ("brightness 0.50 -> 0.40: p_stress 0.42 -> 0.71"), so it is in no group but ``all``.
EXPLANATION_KEYS: Final = ("last_adaptation", "soundscape_reason")
#: Every key that can be chosen, in state-document order.
PUBLISHABLE: Final = (*METRIC_NAMES, "n_beats", *DEVICE_KEYS, *EXPLANATION_KEYS)
#: Named groups of keys.
GROUPS: Final[Mapping[str, tuple[str, ...]]] = {
    "all": PUBLISHABLE,
    "metrics": (*METRIC_NAMES, "n_beats"),
    "device": DEVICE_KEYS,
}
#: Published whatever the setting (not personal: when the document was made).
ALWAYS: Final = ("wall_s",)


def resolve_publish(names: Iterable[str] | str) -> frozenset[str]:
    """The set of state keys a ``mqtt.publish`` setting allows.

    Parameters
    ----------
    names:
        Key and group names; a string is read as a comma-separated list.

    Raises
    ------
    InputDataError
        ``field="mqtt.publish"`` for a name that is neither a key nor a group.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    allowed: set[str] = set()
    for raw in items:
        name = str(raw).strip()
        if name in GROUPS:
            allowed.update(GROUPS[name])
        elif name in PUBLISHABLE:
            allowed.add(name)
        elif name:
            raise InputDataError(
                "mqtt.publish",
                f"key names from {', '.join(PUBLISHABLE)} or groups {', '.join(GROUPS)}",
                name,
            )
    return frozenset(allowed)


class PrivacyFilter:
    """Cuts state documents down to what ``mqtt.publish`` allows.

    Parameters
    ----------
    publish:
        The setting: key and group names (see the module docstring).
    """

    def __init__(self, publish: Iterable[str] | str = ("all",)) -> None:
        self.allowed = resolve_publish(publish)
        self._unknown_seen: set[str] = set()

    def publishes(self, key: str) -> bool:
        """True when the state key ``key`` may leave the device."""
        return key in ALWAYS or key in self.allowed

    def __call__(self, doc: Mapping[str, object]) -> dict[str, object]:
        """The part of ``doc`` that may leave the device, in the document's order."""
        out: dict[str, object] = {}
        for key, value in doc.items():
            if self.publishes(key):
                out[key] = value
            elif key == "reasons" and isinstance(value, Mapping):
                kept = {k: v for k, v in value.items() if k in self.allowed}
                if kept:
                    out[key] = kept
            elif key not in PUBLISHABLE and key != "reasons" and key not in self._unknown_seen:
                self._unknown_seen.add(key)
                log.info("state key %r is unknown to heartsong.mqtt.privacy: not published", key)
        return out

    def __repr__(self) -> str:
        return f"PrivacyFilter({sorted(self.allowed)})"
