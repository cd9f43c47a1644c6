"""The appliance's MQTT connection: availability, discovery, state, commands.

paho-mqtt 2.x runs its own network thread (``loop_start``) that connects and reconnects
with back-off (1 s doubling to 60 s); this class wires paho's callbacks to the parts
that do the work, each in its own module:

* :mod:`~heartsong.mqtt.discovery`: Home Assistant discovery, announced on every connect
  and again when Home Assistant says ``online`` on ``homeassistant/status``;
* :mod:`~heartsong.mqtt.outbox` and :mod:`~heartsong.mqtt.spool`: state documents,
  in order, at least once, queued on disk while the broker is away;
* :mod:`~heartsong.mqtt.router`: commands validated and rate-limited on paho's thread,
  handed to the appliance as typed :mod:`~heartsong.mqtt.commands`, rejections published
  as JSON on the error topic;
* :mod:`~heartsong.mqtt.privacy`: what may leave the device at all;
* :mod:`~heartsong.mqtt.security`: password from a file or the environment, TLS.

With no broker reachable the appliance keeps running and says why once per outage
(unreachable, TLS refused, credentials refused), not once per retry. The password is
never logged.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from heartsong.config import MqttConfig
from heartsong.errors import ConfigError, InputDataError
from heartsong.mqtt.commands import CommandHandler, CommandLimits
from heartsong.mqtt.discovery import DeviceInfo, discovery_messages
from heartsong.mqtt.outbox import Outbox
from heartsong.mqtt.privacy import PrivacyFilter
from heartsong.mqtt.ratelimit import TokenBucket
from heartsong.mqtt.router import CommandRouter, Rejection
from heartsong.mqtt.schedule import PublishSchedule
from heartsong.mqtt.security import (
    INSECURE_WARNING,
    describe_connect_error,
    read_password,
    tls_context,
)
from heartsong.mqtt.spool import DEFAULT_MAX_MESSAGES, Spool
from heartsong.mqtt.topics import Topics

__all__ = ["MqttLink"]

log = logging.getLogger(__name__)

RECONNECT_MIN_S: Final = 1
RECONNECT_MAX_S: Final = 60
#: Error documents published at most this often (per second, bursts of ERROR_BURST).
ERROR_RATE_PER_S: Final = 2.0
ERROR_BURST: Final = 10
#: MQTT CONNACK reason codes that mean "wrong or missing credentials" (3.1.1 and 5).
_AUTH_CODES: Final = frozenset({4, 5, 0x86, 0x87})
#: paho's ``MQTT_LOG_ERR`` level (``paho.mqtt.enums.LogLevel``), without importing paho.
_PAHO_LOG_ERR: Final = 8
#: A connection the broker closes within this many seconds of accepting it is short-lived
#: (a broker closes the older of two connections with one client id: two devices left on
#: the same ``device.id`` take each other's place over and over) ...
SHORT_SESSION_S: Final = 10.0
#: ... and this many of them within :data:`TAKEOVER_WINDOW_S` seconds are reported once.
TAKEOVER_COUNT: Final = 3
TAKEOVER_WINDOW_S: Final = 300.0


def _finite(value: object) -> object:
    """JSON cannot carry NaN or infinity: they become null (unknown)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    return value


class MqttLink:
    """Publish availability, discovery and state for one device; receive its commands.

    Parameters
    ----------
    cfg:
        The ``[mqtt]`` configuration section.
    device_id:
        ``device.id``, the topic segment that names this device.
    device_name:
        ``device.name``, the device's name in Home Assistant.
    limits:
        Allowed command values; pass ``CommandLimits(volume_max_db=audio.max_volume_db)``.
    publish:
        ``mqtt.publish``: state keys and groups that may leave the device.
    spool_path:
        The on-disk outbox (``<device.state_dir>/mqtt-outbox.sqlite3``); None = memory.
    spool_max_messages:
        ``mqtt.spool_max_messages``: most documents queued; oldest dropped past this.
    command_rate_per_s, command_burst:
        ``mqtt.command_rate_per_s`` / ``mqtt.command_burst``: the command rate limit.
    password_env:
        ``mqtt.password_env``: environment variable holding the password.
    tls_insecure:
        ``mqtt.tls_insecure``: skip the host-name check (warned on every connect).
    reconnect_min_s, reconnect_max_s:
        Reconnection back-off bounds in seconds.

    Raises
    ------
    ConfigError
        When the password or a TLS file cannot be read (the error names the setting).
    """

    def __init__(
        self,
        cfg: MqttConfig,
        device_id: str,
        *,
        device_name: str = "Heartsong",
        limits: CommandLimits | None = None,
        publish: Iterable[str] | str = ("all",),
        spool_path: Path | None = None,
        spool_max_messages: int = DEFAULT_MAX_MESSAGES,
        command_rate_per_s: float = 5.0,
        command_burst: int = 20,
        password_env: str = "",
        tls_insecure: bool = False,
        reconnect_min_s: int = RECONNECT_MIN_S,
        reconnect_max_s: int = RECONNECT_MAX_S,
    ) -> None:
        self._cfg = cfg
        self.topics = Topics(cfg.topic_prefix, device_id, cfg.discovery_prefix)
        self.base_topic = self.topics.base
        self.availability_topic = self.topics.availability
        self.state_topic = self.topics.state
        self.device = DeviceInfo(identifier=f"heartsong_{device_id}", name=device_name)
        self.limits = limits or CommandLimits()
        self.privacy = PrivacyFilter(publish)
        self.schedule = PublishSchedule(cfg.publish_interval_s)
        self._client_id = cfg.client_id or f"heartsong-{device_id}"
        self._password: str | None = None
        if cfg.username:
            self._password = read_password(cfg.password_file, password_env)
        elif password_env:
            raise ConfigError("<mqtt credentials>", "mqtt.username", "",
                              "must be set when mqtt.password_env is set")
        self._tls_insecure = tls_insecure
        self._tls = (
            tls_context(cfg.ca_file, cfg.certfile, cfg.keyfile, insecure=tls_insecure)
            if cfg.tls else None
        )
        if tls_insecure and not cfg.tls:
            log.warning("mqtt.tls_insecure is set but mqtt.tls = false: nothing is encrypted")
        if not 1 <= reconnect_min_s <= reconnect_max_s:
            raise InputDataError("reconnect_max_s",
                                 f"seconds, at least reconnect_min_s = {reconnect_min_s} >= 1",
                                 reconnect_max_s)
        self._reconnect = (int(reconnect_min_s), int(reconnect_max_s))
        self.outbox = Outbox(Spool(spool_path, spool_max_messages), self._publish_state_payload,
                             publish_late=self._publish_late_payload)
        self.router = CommandRouter(
            self.topics, self.limits, TokenBucket(command_rate_per_s, command_burst)
        )
        self._error_bucket = TokenBucket(ERROR_RATE_PER_S, ERROR_BURST)
        self._on_command: CommandHandler | None = None
        self._client: Any = None
        self._stopping = False
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._reported: set[str] = set()
        self._refused = False  # the broker refused the current attempt in its CONNACK
        self._connected_at: float | None = None
        self._short_sessions: deque[float] = deque(maxlen=TAKEOVER_COUNT)
        self._takeover_reported = False
        self._paho_error = ""  # paho's last error-level log line (never holds secrets)
        self._last_state: bytes | None = None
        self.last_error: str | None = None
        self.published = 0
        self.errors_suppressed = 0

    # -- status -------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while a session with the broker is up."""
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        """True once the broker confirmed this session's subscriptions (commands and
        Home Assistant's status); False while disconnected."""
        return self._subscribed.is_set()

    @property
    def queued(self) -> int:
        """State documents waiting in the outbox for the broker."""
        return self.outbox.queued

    @property
    def dropped(self) -> int:
        """State documents dropped because the outbox was full."""
        return self.outbox.dropped

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, on_command: CommandHandler | None = None) -> None:
        """Begin connecting in paho's network thread; returns at once.

        Parameters
        ----------
        on_command:
            Receives validated commands on paho's thread (wrap the appliance's handler
            with ``loop.call_soon_threadsafe``). None: no commands are subscribed and the
            controls are not announced.
        """
        import paho.mqtt.client as mqtt  # lazy: hardware and network libraries load on use
        from paho.mqtt.enums import CallbackAPIVersion

        if self._client is not None:
            return
        if self._stopping:
            raise RuntimeError("a stopped MqttLink cannot be started again; make a new one")
        self._on_command = on_command
        v5 = self._cfg.protocol == "5"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        # paho's own logger is not enabled: it reports every failed retry at ERROR level;
        # this class reports each kind of failure once per outage instead.
        client.will_set(self.availability_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(*self._reconnect)
        if self._cfg.username:
            client.username_pw_set(self._cfg.username, self._password)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_log = self._on_log
        client.on_subscribe = self._on_subscribe
        self._client = client
        self.outbox.start()
        if v5:
            # A clean session every time: commands sent while the device was away are
            # not replayed hours later.
            client.connect_async(self._cfg.host, self._cfg.port,
                                 keepalive=self._cfg.keepalive_s, clean_start=True)
        else:
            client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive_s)
        client.loop_start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Deliver or park pending state, publish ``offline``, disconnect. Safe twice."""
        client, already = self._client, self._stopping
        self._stopping = True
        if client is None or already:
            self.outbox.stop(timeout_s)
            return
        self.outbox.stop(timeout_s)  # still publishing (through ``client``) while it drains
        self._client = None
        if self.connected:
            info = client.publish(self.availability_topic, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=timeout_s)
            except (RuntimeError, ValueError):
                log.debug("offline message not confirmed before shutdown")
            client.disconnect()
        client.loop_stop()
        self._connected.clear()
        self._subscribed.clear()

    # -- state --------------------------------------------------------------------------
    def publish_state(self, state: Mapping[str, object]) -> None:
        """Send one state document (QoS 1): at once when connected, else via the outbox.

        Only the keys the privacy setting allows leave the device.
        """
        doc = _finite(self.privacy(state))
        payload = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        self._last_state = payload
        self.outbox.put(payload)
        self.published += 1

    def offer_state(self, state: Mapping[str, object], now_s: float) -> bool:
        """Publish ``state`` if it is due (a change that matters, or the interval passed).

        ``now_s`` is monotonic time in seconds. Returns True when it was published.
        """
        if not self.schedule.due(state, now_s):
            return False
        self.publish_state(state)
        return True

    def publish_summary(self, summary: Mapping[str, object]) -> bool:
        """Publish a finished session's summary (retained, QoS 1) when connected.

        The caller filters it by the privacy setting (see
        :func:`heartsong.store.recorder.summary_for_mqtt`). Returns False when offline:
        the summary stays in the session store either way.
        """
        client = self._client
        if client is None or not self.connected:
            return False
        payload = json.dumps(_finite(dict(summary)), separators=(",", ":"))
        client.publish(self.topics.session, payload, qos=1, retain=True)
        return True

    def _publish_state_payload(self, payload: bytes) -> int:
        return self._publish_qos1(self.state_topic, payload)

    def _publish_late_payload(self, payload: bytes) -> int:
        return self._publish_qos1(self.topics.state_late, payload)

    def _publish_qos1(self, topic: str, payload: bytes) -> int:
        client = self._client
        if client is None:
            raise RuntimeError("the MQTT link is stopped")
        mid: int = client.publish(topic, payload, qos=1).mid
        return mid

    # -- paho callbacks (network thread) ------------------------------------------------
    def _report(self, kind: str, level: int, text: str) -> None:
        self.last_error = text
        if kind not in self._reported:
            self._reported.add(kind)
            log.log(level, "MQTT broker %s:%d: %s; the device keeps running and retries "
                    "every %d-%d s", self._cfg.host, self._cfg.port, text, *self._reconnect)

    def _on_connect(
        self, client: Any, userdata: object, flags: object, reason: Any, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            hint = ""
            if getattr(reason, "value", None) in _AUTH_CODES:
                hint = ("; check mqtt.username and the password "
                        "(mqtt.password_file or mqtt.password_env)")
            self._refused = True
            self._report(f"refused:{reason}", logging.ERROR,
                         f"refused the connection: {reason}{hint}")
            return
        # The outbox resends state itself, in order; paho must not resend behind its back.
        # (Client.drop_out_messages is new in paho-mqtt 2.2.)
        client.drop_out_messages()
        self._reported.clear()
        self.last_error = None
        self._connected.set()
        self._connected_at = time.monotonic()
        log.info("MQTT connected to %s:%d", self._cfg.host, self._cfg.port)
        if self._tls_insecure:
            log.warning(INSECURE_WARNING)
        self._announce(client)
        client.publish(self.availability_topic, "online", qos=1, retain=True)
        subscriptions = [(self.topics.ha_status, 1)]
        if self._on_command is not None:
            subscriptions.append((self.topics.command_filter, 1))
        client.subscribe(subscriptions)
        self.outbox.connected()

    def _on_disconnect(
        self, client: Any, userdata: object, flags: object, reason: Any, props: object
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        self.outbox.disconnected()
        refused, self._refused = self._refused, False
        if self._stopping:
            return  # our own disconnect at shutdown
        if was:
            log.warning("MQTT connection lost (%s); reconnecting in the background", reason)
            self._watch_takeovers()
        elif not refused:
            # Dropped between the TCP/TLS handshake and CONNACK: with TLS 1.3 this is how
            # a broker rejects a missing or unknown client certificate.
            detail = self._paho_error or str(reason)
            self._report("dropped", logging.ERROR,
                         f"closed the connection before accepting it ({detail}); with TLS, "
                         "check the client certificate (mqtt.certfile, mqtt.keyfile)")

    def _watch_takeovers(self) -> None:
        """Say once when the broker keeps closing connections it just accepted."""
        now = time.monotonic()
        if self._connected_at is None or now - self._connected_at >= SHORT_SESSION_S:
            return
        self._short_sessions.append(now)
        if (not self._takeover_reported and len(self._short_sessions) == TAKEOVER_COUNT
                and now - self._short_sessions[0] <= TAKEOVER_WINDOW_S):
            self._takeover_reported = True
            log.warning(
                "the MQTT broker closed %d connections within %.0f s of accepting them: "
                "another client may be connecting as %r (two devices with device.id = %r?); "
                "give each device its own device.id (or mqtt.client_id)",
                TAKEOVER_COUNT, SHORT_SESSION_S, self._client_id, self.topics.device_id,
            )

    def _on_subscribe(
        self, client: Any, userdata: object, mid: int, reasons: list[Any], props: object
    ) -> None:
        refused = [r for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("MQTT broker refused a subscription (%s): commands may not arrive; "
                      "check the broker's access control for %s",
                      ", ".join(str(r) for r in refused), self.topics.command_filter)
        self._subscribed.set()

    def _on_log(self, client: Any, userdata: object, level: int, buf: str) -> None:
        # paho's error-level lines say why a socket failed (e.g. a TLS alert); they are
        # kept for the next report, not logged one by one.
        if level == _PAHO_LOG_ERR:
            self._paho_error = buf

    def _on_connect_fail(self, client: Any, userdata: object) -> None:
        # paho calls this inside its ``except OSError`` block: the exception is current.
        kind, text = describe_connect_error(sys.exception())
        level = logging.ERROR if kind == "tls" else logging.WARNING
        self._report(kind, level, text)

    def _on_publish(
        self, client: Any, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        self.outbox.acked(mid)

    def _announce(self, client: Any) -> None:
        for topic, payload in discovery_messages(
            self.topics,
            self.device,
            publishes=self.privacy.publishes,
            commands=self._on_command is not None,
            limits=self.limits,
            publish_interval_s=self._cfg.publish_interval_s,
        ):
            client.publish(topic, payload, qos=1, retain=True)

    def _on_message(self, client: Any, userdata: object, msg: Any) -> None:
        try:
            self._handle_message(client, msg)
        except Exception:  # never let a message end paho's network thread
            log.exception("MQTT message could not be handled")

    def _handle_message(self, client: Any, msg: Any) -> None:
        payload = bytes(msg.payload)
        try:
            topic = str(msg.topic)
        except UnicodeDecodeError:
            self._reject(client, Rejection("", "topic", "a UTF-8 topic"))
            return
        if topic == self.topics.ha_status:
            if payload.strip().lower() == b"online":
                log.info("Home Assistant is online: announcing the device again")
                self._announce(client)
                if self._last_state is not None:
                    self.outbox.put(self._last_state)
            return
        result = self.router.route(topic, payload, retain=bool(msg.retain))
        if isinstance(result, Rejection):
            self._reject(client, result)
            return
        handler = self._on_command
        if handler is None:
            return
        log.info("MQTT command accepted: %s", result)
        try:
            handler(result)
        except Exception as exc:
            log.exception("the appliance could not take command %s", result)
            self._reject(client, Rejection(topic, "device", "a device able to take commands",
                                           type(exc).__name__))

    def _reject(self, client: Any, rejection: Rejection) -> None:
        if not self._error_bucket.take():
            self.errors_suppressed += 1
            return
        log.warning("MQTT command rejected: %s", rejection.message)
        client.publish(self.topics.error, rejection.as_json(), qos=1)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return (f"MqttLink({self._cfg.host}:{self._cfg.port}, {state}, "
                f"{self.outbox.queued} queued)")
