"""The MQTT link against a real mosquitto broker: birth, state, last will, no crash offline."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

import pytest

from heartsong.config import Config, with_overrides
from heartsong.mqtt.link import MqttLink

pytestmark = pytest.mark.broker


def _subscriber(host: str, port: int, topic: str) -> tuple[Any, list[tuple[str, bytes, bool]]]:
    import paho.mqtt.client as mqtt

    got: list[tuple[str, bytes, bool]] = []
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-sub")
    c.on_message = lambda cl, ud, msg: got.append((msg.topic, msg.payload, msg.retain))
    c.on_subscribe = lambda *a: ready.set()
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.connect(host, port)
    c.loop_start()
    assert ready.wait(5)
    return c, got


def _seen(got: list[tuple[str, bytes, bool]], topic: str, payload: bytes) -> bool:
    return any(t == topic and p == payload for t, p, _ in got)


def _wait(pred: Any, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_birth_state_and_offline(mosquitto_broker: Any) -> None:
    cfg = with_overrides(
        Config(), {"mqtt.enabled": True, "mqtt.host": mosquitto_broker.host,
                   "mqtt.port": mosquitto_broker.port},
    )
    sub, got = _subscriber(mosquitto_broker.host, mosquitto_broker.port, "heartsong/#")
    link = MqttLink(cfg.mqtt, "bedroom")
    link.start()
    try:
        assert _wait(lambda: link.connected)
        assert _wait(lambda: _seen(got, "heartsong/bedroom/availability", b"online"))
        assert link.publish_state({"hr_bpm": 61.5, "stress_state": "unknown"})
        assert _wait(lambda: any(t == "heartsong/bedroom/state" for t, _, _ in got))
        state = next(json.loads(p) for t, p, _ in got if t == "heartsong/bedroom/state")
        assert state == {"hr_bpm": 61.5, "stress_state": "unknown"}
    finally:
        link.stop()
        link.stop()  # safe twice
    assert _wait(lambda: _seen(got, "heartsong/bedroom/availability", b"offline"))
    sub.loop_stop()
    sub.disconnect()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_broker_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    port = _closed_port()
    cfg = with_overrides(
        Config(), {"mqtt.enabled": True, "mqtt.host": "127.0.0.1", "mqtt.port": port}
    )
    link = MqttLink(cfg.mqtt, "bedroom")
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.link"):
        link.start()
        time.sleep(3.5)  # paho retries at 1, 2 s...: several failed attempts
        assert not link.connected
        assert link.publish_state({"hr_bpm": 60.0}) is False
        link.stop()
    warnings = [r for r in caplog.records if "not reachable" in r.getMessage()]
    assert len(warnings) == 1
