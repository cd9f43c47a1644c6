"""Home Assistant MQTT discovery: one device and its entities, as retained config messages.

Home Assistant creates entities from retained JSON documents on
``<discovery_prefix>/<component>/<node_id>/<object_id>/config`` (the MQTT discovery
protocol of Home Assistant's ``mqtt`` integration, as ESPHome and Zigbee2MQTT use it).
Every entity of this device reads the one state document with a ``value_template``,
shares the device's ``availability`` topic, and carries a ``unique_id`` so it can be
renamed and placed in an area. Health values carry ``expire_after``: without fresh
state they become *unavailable* in Home Assistant rather than showing an old heart rate.

The entity table :data:`ENTITIES` is data; :func:`discovery_messages` turns it into the
messages for one device, announcing only entities whose value may be published (the
privacy setting) and withdrawing the others with an empty retained message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from heartsong import __version__
from heartsong.mqtt.commands import MODES, CommandLimits
from heartsong.mqtt.topics import Topics

__all__ = [
    "ENTITIES",
    "DeviceInfo",
    "Entity",
    "discovery_messages",
    "expire_after_s",
]

Component = Literal["sensor", "select", "number", "switch", "button"]

#: Health values expire after this many publish intervals without a state message.
EXPIRE_INTERVALS: Final = 3
#: ... but never sooner than this, in seconds.
EXPIRE_MIN_S: Final = 30


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity of the device.

    Attributes
    ----------
    component:
        Home Assistant platform (``sensor``, ``select``, ...).
    key:
        Object id, part of the ``unique_id``; for entities with state, the state key.
    name:
        Entity name (Home Assistant shows it after the device name).
    state_key:
        The state-document key the entity reads, or None (buttons).
    command_key:
        The ``set/<key>`` the entity writes, or None (sensors).
    health:
        A health value: gets ``expire_after``.
    config:
        Further discovery fields (device_class, unit_of_measurement, ...). The value
        template defaults to ``{{ value_json.<state_key> }}``.
    """

    component: Component
    key: str
    name: str
    state_key: str | None = None
    command_key: str | None = None
    health: bool = False
    config: Mapping[str, object] = field(default_factory=dict)


def _percent(key: str) -> str:
    return (
        f"{{{{ (value_json.{key} * 100) | round(1) "
        f"if value_json.{key} is not none else None }}}}"
    )


_MEASURE: Final = {"state_class": "measurement"}
_DIAGNOSTIC: Final = {"entity_category": "diagnostic"}

#: The device's entities. Sensors read the metric of the same name (events.METRIC_NAMES).
ENTITIES: Final[tuple[Entity, ...]] = (
    Entity("sensor", "hr_bpm", "Heart rate", "hr_bpm", health=True, config={
        **_MEASURE, "unit_of_measurement": "bpm", "icon": "mdi:heart-pulse",
        "suggested_display_precision": 0}),
    Entity("sensor", "rmssd_ms", "HRV RMSSD", "rmssd_ms", health=True, config={
        **_MEASURE, "device_class": "duration", "unit_of_measurement": "ms",
        "icon": "mdi:heart-flash", "suggested_display_precision": 0}),
    Entity("sensor", "sdnn_ms", "HRV SDNN", "sdnn_ms", health=True, config={
        **_MEASURE, "device_class": "duration", "unit_of_measurement": "ms",
        "icon": "mdi:heart-flash", "suggested_display_precision": 0}),
    Entity("sensor", "pnn50_pct", "pNN50", "pnn50_pct", health=True, config={
        **_MEASURE, "unit_of_measurement": "%", "suggested_display_precision": 0}),
    Entity("sensor", "lf_hf", "LF/HF ratio", "lf_hf", health=True, config={
        **_MEASURE, "icon": "mdi:scale-balance", "suggested_display_precision": 2}),
    Entity("sensor", "resp_rate_bpm", "Respiratory rate", "resp_rate_bpm", health=True, config={
        **_MEASURE, "unit_of_measurement": "breaths/min", "icon": "mdi:lungs",
        "suggested_display_precision": 1}),
    Entity("sensor", "coherence", "Coherence", "coherence", health=True, config={
        **_MEASURE, "icon": "mdi:sine-wave", "suggested_display_precision": 2}),
    Entity("sensor", "p_stress", "Stress probability", "p_stress", health=True, config={
        **_MEASURE, "unit_of_measurement": "%", "icon": "mdi:head-alert",
        "suggested_display_precision": 0, "value_template": _percent("p_stress")}),
    Entity("sensor", "stress_state", "Stress state", "stress_state", health=True, config={
        # "unknown" is an option: its state string is Home Assistant's own "unknown", on
        # every version (a template rendering None gave the string "None", which some
        # versions reject as not among the options of an enum sensor).
        "device_class": "enum", "options": ["calm", "neutral", "stressed", "unknown"],
        "icon": "mdi:head-heart"}),
    Entity("sensor", "signal_quality", "Signal quality", "signal_quality", health=True, config={
        **_MEASURE, **_DIAGNOSTIC, "unit_of_measurement": "%", "icon": "mdi:signal",
        "suggested_display_precision": 0, "value_template": _percent("signal_quality")}),
    Entity("sensor", "source", "Active source", "source", config={
        **_DIAGNOSTIC, "device_class": "enum", "options": ["ppg", "ble", "none"],
        "icon": "mdi:access-point"}),
    Entity("sensor", "audio_underruns", "Audio underruns", "audio_underruns", config={
        **_DIAGNOSTIC, "state_class": "total_increasing", "icon": "mdi:speaker-off"}),
    Entity("sensor", "pacer_bpm", "Breath pacer", "pacer_bpm", config={
        **_MEASURE, "unit_of_measurement": "breaths/min", "icon": "mdi:metronome",
        "suggested_display_precision": 1}),
    Entity("sensor", "last_adaptation", "Last adaptation", "last_adaptation", config={
        "icon": "mdi:comment-text-outline",
        # A sensor state is at most 255 characters in Home Assistant.
        "value_template": "{{ (value_json.last_adaptation or '')[:255] }}"}),
    Entity("sensor", "soundscape_reason", "Why this soundscape", "soundscape_reason", config={
        "icon": "mdi:head-lightbulb-outline",
        "value_template": "{{ (value_json.soundscape_reason or '')[:255] }}"}),
    Entity("select", "mode", "Mode", "mode", "mode", config={
        "options": list(MODES), "icon": "mdi:weather-night"}),
    Entity("select", "soundscape", "Soundscape", "soundscape", "soundscape", config={
        "icon": "mdi:waves"}),
    Entity("number", "volume_db", "Volume", "volume_db", "volume_db", config={
        "unit_of_measurement": "dB", "step": 1, "mode": "slider", "icon": "mdi:volume-high"}),
    Entity("number", "sleep_timer_min", "Sleep timer", "sleep_timer_min", "sleep_timer_min",
           config={"device_class": "duration", "unit_of_measurement": "min", "step": 5,
                   "min": 0, "mode": "box", "icon": "mdi:timer-outline"}),
    Entity("switch", "playing", "Therapy sound", "playing", "playing", config={
        "payload_on": "ON", "payload_off": "OFF", "icon": "mdi:music",
        "value_template": "{{ 'ON' if value_json.playing else 'OFF' }}"}),
    Entity("button", "session_start", "Start session", command_key="session", config={
        "payload_press": "START", "icon": "mdi:play"}),
    Entity("button", "session_stop", "Stop session", command_key="session", config={
        "payload_press": "STOP", "icon": "mdi:stop"}),
)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The Home Assistant device that groups the entities."""

    identifier: str
    name: str
    model: str = "Heartsong bedside device"
    manufacturer: str = "Heartsong open-source project"
    sw_version: str = __version__

    def as_json(self) -> dict[str, object]:
        """The ``device`` block of a discovery payload."""
        return {
            "identifiers": [self.identifier],
            "name": self.name,
            "model": self.model,
            "manufacturer": self.manufacturer,
            "sw_version": self.sw_version,
        }


def expire_after_s(publish_interval_s: float) -> int:
    """Seconds without state after which a health value becomes unavailable."""
    return max(EXPIRE_MIN_S, math.ceil(EXPIRE_INTERVALS * publish_interval_s))


def _announced(entity: Entity, publishes: Callable[[str], bool], commands: bool) -> bool:
    if entity.command_key is not None and not commands:
        return False
    return entity.state_key is None or publishes(entity.state_key)


def _payload(
    entity: Entity, topics: Topics, device: DeviceInfo, limits: CommandLimits,
    publish_interval_s: float,
) -> dict[str, object]:
    p: dict[str, object] = {
        "name": entity.name,
        "unique_id": f"{device.identifier}_{entity.key}",
        "availability": [{"topic": topics.availability}],
        "device": device.as_json(),
        "origin": {"name": "heartsong", "sw_version": device.sw_version},
        "qos": 1,
    }
    if entity.state_key is not None:
        p["state_topic"] = topics.state
        p["value_template"] = f"{{{{ value_json.{entity.state_key} }}}}"
    if entity.command_key is not None:
        p["command_topic"] = topics.command(entity.command_key)
    if entity.health:
        p["expire_after"] = expire_after_s(publish_interval_s)
    if entity.key == "soundscape":
        p["options"] = list(limits.soundscapes)
    if entity.key == "volume_db":
        p["min"], p["max"] = limits.volume_min_db, limits.volume_max_db
    if entity.key == "sleep_timer_min":
        p["max"] = limits.sleep_timer_max_min
    p.update(entity.config)
    return p


def discovery_messages(
    topics: Topics,
    device: DeviceInfo,
    *,
    publishes: Callable[[str], bool],
    commands: bool,
    limits: CommandLimits,
    publish_interval_s: float,
) -> list[tuple[str, bytes]]:
    """The retained discovery messages for one device, config topic -> JSON payload.

    Parameters
    ----------
    topics, device:
        Topic names and the device block.
    publishes:
        The privacy filter: True when a state key may be published. An entity whose
        value is not published gets an empty payload, which removes it from Home
        Assistant.
    commands:
        False when the device accepts no commands: the controls are withdrawn.
    limits:
        Soundscape options and the volume and sleep-timer ranges of the controls.
    publish_interval_s:
        Interval between state messages in seconds (sets ``expire_after``).
    """
    out: list[tuple[str, bytes]] = []
    for entity in ENTITIES:
        topic = topics.discovery(entity.component, entity.key)
        if not _announced(entity, publishes, commands):
            out.append((topic, b""))
            continue
        payload = _payload(entity, topics, device, limits, publish_interval_s)
        out.append((topic, json.dumps(payload, separators=(",", ":")).encode("utf-8")))
    return out
