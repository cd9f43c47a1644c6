"""The MQTT topic names of one device, in one place.

Layout (DESIGN.md): device topics under ``<prefix>/<device_id>/`` and Home Assistant
discovery under ``<discovery_prefix>/<component>/<device_id>/<key>/config``::

    heartsong/bedroom/availability     retained "online" / "offline" (birth and last will)
    heartsong/bedroom/state            one JSON document per update (QoS 1)
    heartsong/bedroom/error            JSON reason for each rejected command
    heartsong/bedroom/set/<key>        commands, e.g. set/mode with payload "calm"
    homeassistant/status               Home Assistant's own birth message ("online")
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topics"]


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one device.

    Parameters
    ----------
    prefix:
        ``mqtt.topic_prefix`` (``heartsong``).
    device_id:
        ``device.id``; one topic level, no ``/``, ``+`` or ``#``.
    discovery_prefix:
        ``mqtt.discovery_prefix`` (``homeassistant``).
    """

    prefix: str
    device_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        """``<prefix>/<device_id>``, the root of every device topic."""
        return f"{self.prefix}/{self.device_id}"

    @property
    def availability(self) -> str:
        """Retained ``online``/``offline`` (birth message and last will)."""
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        """The JSON state document."""
        return f"{self.base}/state"

    @property
    def state_late(self) -> str:
        """State documents delivered late (measured while the broker was away), in order;
        not read by Home Assistant."""
        return f"{self.base}/state/late"

    @property
    def session(self) -> str:
        """The retained JSON summary of the last finished session."""
        return f"{self.base}/session"

    @property
    def error(self) -> str:
        """JSON reasons for rejected commands."""
        return f"{self.base}/error"

    @property
    def command_root(self) -> str:
        """``<base>/set``; a command for ``key`` arrives on ``<base>/set/<key>``."""
        return f"{self.base}/set"

    @property
    def command_filter(self) -> str:
        """The subscription that receives every command (and every malformed one)."""
        return f"{self.command_root}/#"

    def command(self, key: str) -> str:
        """The topic that sets ``key`` (a state-document key such as ``mode``)."""
        return f"{self.command_root}/{key}"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth/last-will topic; ``online`` asks for re-announcement."""
        return f"{self.discovery_prefix}/status"

    def discovery(self, component: str, key: str) -> str:
        """The retained discovery config topic of one entity."""
        return f"{self.discovery_prefix}/{component}/{self.device_id}/{key}/config"
