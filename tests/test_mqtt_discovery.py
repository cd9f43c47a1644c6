"""Home Assistant discovery: payload schema, uniqueness, topics, privacy, re-announcement.

The required keys follow Home Assistant's MQTT platform schemas (``state_topic`` for a
sensor; ``command_topic`` for select, number, switch and button; ``options`` for a
select) plus what device discovery needs (``unique_id`` and a ``device`` with
``identifiers``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from heartsong.config import Config, with_overrides
from heartsong.events import METRIC_NAMES, Metrics
from heartsong.mqtt.commands import MODES, Command, CommandLimits
from heartsong.mqtt.discovery import (
    ENTITIES,
    DeviceInfo,
    discovery_messages,
    expire_after_s,
)
from heartsong.mqtt.link import MqttLink
from heartsong.mqtt.privacy import DEVICE_KEYS, EXPLANATION_KEYS, PrivacyFilter
from heartsong.mqtt.topics import Topics
from mqtt_tls import Recorder, wait_for

LIMITS = CommandLimits(soundscapes=("ocean", "brown_noise"), volume_max_db=-10.0)
TOPICS = Topics("heartsong", "bedroom")
DEVICE = DeviceInfo(identifier="heartsong_bedroom", name="Bedroom")

REQUIRED: dict[str, set[str]] = {
    "sensor": {"state_topic"},
    "select": {"command_topic", "options"},
    "number": {"command_topic"},
    "switch": {"command_topic"},
    "button": {"command_topic"},
}
COMMON = {"name", "unique_id", "device", "availability", "origin"}
_TEMPLATE_KEY = re.compile(r"value_json\.([a-z_0-9]+)")


def _messages(publish: list[str] | None = None, commands: bool = True) -> dict[str, Any]:
    msgs = discovery_messages(
        TOPICS, DEVICE, publishes=PrivacyFilter(publish or ["all"]).publishes,
        commands=commands, limits=LIMITS, publish_interval_s=5.0,
    )
    return {t: (json.loads(p) if p else None) for t, p in msgs}


def _state_doc() -> dict[str, object]:
    doc = Metrics(t_s=1.0, wall_s=2.0).as_dict()
    doc.update({k: 0 for k in DEVICE_KEYS})
    doc.update({k: "" for k in EXPLANATION_KEYS})
    return doc


def test_every_payload_has_the_keys_home_assistant_requires() -> None:
    msgs = _messages()
    assert len(msgs) == len(ENTITIES)
    for topic, payload in msgs.items():
        component = topic.split("/")[1]
        assert re.fullmatch(r"homeassistant/[a-z]+/bedroom/[a-z_0-9]+/config", topic)
        assert payload is not None, topic
        assert REQUIRED[component] | COMMON <= set(payload), topic
        assert payload["device"] == {
            "identifiers": ["heartsong_bedroom"], "name": "Bedroom",
            "model": DEVICE.model, "manufacturer": DEVICE.manufacturer,
            "sw_version": DEVICE.sw_version,
        }
        assert payload["availability"] == [{"topic": "heartsong/bedroom/availability"}]
        assert payload["qos"] == 1


def test_unique_ids_are_unique_and_stable() -> None:
    ids = [p["unique_id"] for p in _messages().values()]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("heartsong_bedroom_") for i in ids)
    assert ids == [p["unique_id"] for p in _messages().values()]


def test_the_issue_s_entities_are_all_there() -> None:
    by_key = {t.split("/")[3]: (t.split("/")[1], p) for t, p in _messages().items()}
    for metric in ("hr_bpm", "rmssd_ms", "sdnn_ms", "lf_hf", "resp_rate_bpm", "coherence",
                   "p_stress", "stress_state", "signal_quality", "source", "audio_underruns"):
        assert by_key[metric][0] == "sensor", metric
    assert by_key["mode"][0] == by_key["soundscape"][0] == "select"
    assert by_key["volume_db"][0] == by_key["sleep_timer_min"][0] == "number"
    assert by_key["playing"][0] == "switch"
    assert by_key["session_start"][0] == by_key["session_stop"][0] == "button"
    assert by_key["mode"][1]["options"] == list(MODES)
    assert by_key["soundscape"][1]["options"] == ["ocean", "brown_noise"]
    assert (by_key["volume_db"][1]["min"], by_key["volume_db"][1]["max"]) == (-60.0, -10.0)
    assert by_key["session_start"][1]["payload_press"] == "START"
    assert by_key["session_stop"][1]["payload_press"] == "STOP"


def test_classes_units_and_expiry() -> None:
    p = {t.split("/")[3]: p for t, p in _messages().items()}
    assert p["hr_bpm"]["unit_of_measurement"] == "bpm"
    assert p["hr_bpm"]["state_class"] == "measurement"
    assert p["rmssd_ms"]["device_class"] == "duration"
    assert p["rmssd_ms"]["unit_of_measurement"] == "ms"
    assert p["stress_state"]["device_class"] == "enum"
    # the state string "unknown" is Home Assistant's own unknown state, and an option, so
    # no version refuses it (a template rendering None sent the string "None")
    assert p["stress_state"]["options"][-1] == "unknown"
    assert "None" not in p["stress_state"]["value_template"]
    assert "state_class" not in p["stress_state"]  # enums have none
    assert p["audio_underruns"]["state_class"] == "total_increasing"
    assert p["sleep_timer_min"]["device_class"] == "duration"
    health = {"hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct", "lf_hf", "resp_rate_bpm",
              "coherence", "p_stress", "stress_state", "signal_quality"}
    for key, payload in p.items():
        if key in health:
            assert payload["expire_after"] == expire_after_s(5.0), key
        else:
            assert "expire_after" not in payload, key
    assert expire_after_s(5.0) >= 3 * 5.0
    assert expire_after_s(60.0) > expire_after_s(5.0)


def test_templates_read_keys_the_state_document_has() -> None:
    doc = _state_doc()
    for topic, payload in _messages().items():
        for key in _TEMPLATE_KEY.findall(payload.get("value_template", "")):
            assert key in doc, (topic, key)
        if "state_topic" in payload:
            assert payload["state_topic"] == "heartsong/bedroom/state"
    assert set(METRIC_NAMES) <= set(doc)


def test_privacy_withdraws_what_is_not_published() -> None:
    msgs = _messages(["stress_state", "device"])
    announced = {t.split("/")[3] for t, p in msgs.items() if p is not None}
    assert "stress_state" in announced and "mode" in announced
    assert "hr_bpm" not in announced and "rmssd_ms" not in announced
    assert msgs["homeassistant/sensor/bedroom/hr_bpm/config"] is None  # empty = removed


def test_without_commands_the_controls_are_withdrawn() -> None:
    msgs = _messages(commands=False)
    for topic, payload in msgs.items():
        if topic.split("/")[1] in {"select", "number", "switch", "button"}:
            assert payload is None, topic
        else:
            assert payload is not None, topic


def test_soundscape_options_default_to_the_presets() -> None:
    from heartsong.audio.soundscapes import PRESETS

    assert CommandLimits().soundscapes == tuple(PRESETS)


# --------------------------------------------------------------------------- broker


def test_discovery_and_every_referenced_topic_reach_the_broker(mosquitto_broker: Any) -> None:
    cfg = with_overrides(Config(), {"mqtt.enabled": True, "mqtt.host": mosquitto_broker.host,
                                    "mqtt.port": mosquitto_broker.port}).mqtt
    link = MqttLink(cfg, "bedroom", device_name="Bedroom", limits=LIMITS)
    taken: list[Command] = []
    link.start(on_command=taken.append)
    try:
        assert wait_for(lambda: link.subscribed)
        link.publish_state(_state_doc())
        # A subscriber arriving later (Home Assistant) gets the retained configs.
        rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "#", "late-ha")
        def n_configs(retained_only: bool = False) -> int:
            return sum(t.startswith("homeassistant/") and t.endswith("/config")
                       and (r or not retained_only) for t, _, r in rec.messages)

        assert wait_for(lambda: n_configs(retained_only=True) == len(ENTITIES))
        payloads = [json.loads(p) for t, p, _ in rec.messages if t.endswith("/config")]
        # Every topic a payload names for reading is published by the device ...
        link.publish_state(_state_doc())
        read_topics = {p["state_topic"] for p in payloads if "state_topic" in p}
        read_topics |= {a["topic"] for p in payloads for a in p["availability"]}
        assert wait_for(lambda: read_topics <= {t for t, _, _ in rec.messages})
        # ... and every topic it names for writing reaches the device.
        for p in payloads:
            if "command_topic" in p:
                payload = p.get("payload_press") or p.get("payload_on") or (
                    p["options"][0] if "options" in p else str(p["max"]))
                rec.publish(p["command_topic"], payload)
        n_commands = sum("command_topic" in p for p in payloads)
        assert wait_for(lambda: len(taken) == n_commands)
        assert rec.on("heartsong/bedroom/error") == []
        # Home Assistant restarts: it says "online" and the device announces again.
        # The latest state is published again too, so entities have a value at once.
        before, states = n_configs(), len(rec.on("heartsong/bedroom/state"))
        rec.publish("homeassistant/status", "online")
        assert wait_for(lambda: n_configs() == before + len(ENTITIES))
        assert wait_for(lambda: len(rec.on("heartsong/bedroom/state")) == states + 1)
        rec.close()
    finally:
        link.stop()
