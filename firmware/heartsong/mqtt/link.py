"""The appliance's MQTT connection: availability (birth and last will) and the state document.

paho-mqtt 2.x runs its own network thread (``loop_start``) that connects and reconnects
with back-off (1 s to 60 s); this class only publishes and reports. With no broker
reachable the appliance keeps running and says so once, not once per retry.

Topics (DESIGN.md): ``<prefix>/<device_id>/availability`` (retained ``online``/``offline``)
and ``<prefix>/<device_id>/state`` (one JSON document with the metric names of
:data:`heartsong.events.METRIC_NAMES`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from heartsong.config import MqttConfig

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60


class MqttLink:
    """Publish availability and state for one device.

    Parameters
    ----------
    cfg:
        The ``[mqtt]`` configuration section.
    device_id:
        ``device.id``, the topic segment that names this device.
    """

    def __init__(self, cfg: MqttConfig, device_id: str) -> None:
        self._cfg = cfg
        self.base_topic = f"{cfg.topic_prefix}/{device_id}"
        self.availability_topic = f"{self.base_topic}/availability"
        self.state_topic = f"{self.base_topic}/state"
        self._client_id = cfg.client_id or f"heartsong-{device_id}"
        self._client: Any = None
        self._connected = threading.Event()
        self._warned_unreachable = False
        self._ever_connected = False
        self.published = 0

    @property
    def connected(self) -> bool:
        """True while a session with the broker is up."""
        return self._connected.is_set()

    def start(self) -> None:
        """Begin connecting in paho's network thread; returns at once."""
        import paho.mqtt.client as mqtt  # lazy: hardware and network libraries load on use
        from paho.mqtt.enums import CallbackAPIVersion

        protocol = mqtt.MQTTv5 if self._cfg.protocol == "5" else mqtt.MQTTv311
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=protocol,
        )
        # paho's own logger is not enabled: it reports every failed retry at ERROR level;
        # this class reports reachability once instead.
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        if self._cfg.username:
            client.username_pw_set(self._cfg.username, self._read_password())
        if self._cfg.tls:
            client.tls_set(
                ca_certs=self._cfg.ca_file or None,
                certfile=self._cfg.certfile or None,
                keyfile=self._cfg.keyfile or None,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        self._client = client
        client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive_s)
        client.loop_start()

    def _read_password(self) -> str | None:
        path = self._cfg.password_file
        if not path:
            return None
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()

    def _on_connect(
        self, client: Any, userdata: object, flags: object, reason: Any, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error(
                "MQTT broker %s:%d refused the connection: %s",
                self._cfg.host,
                self._cfg.port,
                reason,
            )
            return
        self._connected.set()
        self._ever_connected = True
        self._warned_unreachable = False
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        log.info("MQTT connected to %s:%d", self._cfg.host, self._cfg.port)

    def _on_disconnect(
        self, client: Any, userdata: object, flags: object, reason: Any, props: object
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was:
            log.warning("MQTT connection lost (%s); reconnecting in the background", reason)

    def _on_connect_fail(self, client: Any, userdata: object) -> None:
        if not self._warned_unreachable:
            self._warned_unreachable = True
            log.warning(
                "MQTT broker %s:%d is not reachable; the device keeps running and retries "
                "every %d-%d s",
                self._cfg.host,
                self._cfg.port,
                RECONNECT_MIN_S,
                RECONNECT_MAX_S,
            )

    def publish_state(self, state: Mapping[str, object]) -> bool:
        """Publish one state document (QoS 1); returns False when not connected."""
        if self._client is None or not self.connected:
            return False
        self._client.publish(self.state_topic, json.dumps(state), qos=1)
        self.published += 1
        return True

    def stop(self, timeout_s: float = 2.0) -> None:
        """Publish ``offline``, disconnect cleanly and stop the network thread. Safe twice."""
        client, self._client = self._client, None
        if client is None:
            return
        if self.connected:
            info = client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError):
                log.debug("offline message not confirmed before shutdown")
        if self.connected:
            client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"MqttLink({self._cfg.host}:{self._cfg.port}, {state})"
