"""The MQTT link against a real mosquitto broker: birth, state, last will, commands.

Commands go through the broker to a fake appliance that applies them with
:func:`heartsong.mqtt.apply.apply_command` on its own asyncio loop (as the real one does
through :func:`heartsong.mqtt.commands.call_on_loop`) and publishes its new state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartsong.config import Config, MqttConfig, with_overrides
from heartsong.events import Metrics
from heartsong.mqtt.apply import apply_command, sleep_timer_remaining_min
from heartsong.mqtt.commands import Command, CommandLimits, call_on_loop
from heartsong.mqtt.link import MqttLink
from heartsong.therapy.policy import PolicySettings
from mqtt_tls import Recorder, wait_for

LIMITS = CommandLimits(soundscapes=("ocean", "brown_noise"), volume_max_db=-6.0)


def _cfg(broker: Any, **extra: object) -> MqttConfig:
    overrides = {"mqtt.enabled": True, "mqtt.host": broker.host, "mqtt.port": broker.port}
    overrides.update({f"mqtt.{k}": v for k, v in extra.items()})
    return with_overrides(Config(), overrides).mqtt


def _state(settings: PolicySettings, elapsed_s: float, **metrics: Any) -> dict[str, object]:
    doc = Metrics(t_s=elapsed_s, wall_s=1_700_000_000.0 + elapsed_s, **metrics).as_dict()
    doc.update(mode=settings.mode, soundscape=settings.soundscape, playing=settings.playing,
               volume_db=settings.volume_db,
               sleep_timer_min=sleep_timer_remaining_min(settings, elapsed_s),
               pacer_bpm=settings.breath_rate_bpm, audio_underruns=0)
    return doc


class FakeAppliance:
    """Stands in for ``app.Appliance``: an asyncio loop that owns the settings."""

    def __init__(self, link: MqttLink) -> None:
        self.link = link
        self.settings = PolicySettings(mode="wind_down", soundscape="ocean", volume_db=-18.0,
                                       breath_rate_bpm=6.0, sleep_timer_s=0.0)
        self.elapsed_s = 300.0
        self.reasons: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def on_command(self, command: Command) -> None:
        """Runs on the appliance's loop (the link hands commands over thread-safely)."""
        assert threading.current_thread() is self.thread
        applied = apply_command(self.settings, command, session_elapsed_s=self.elapsed_s,
                                configured_sleep_timer_s=1800.0)
        self.settings = applied.settings
        self.reasons.append(applied.reason)
        if applied.restart_session:
            self.elapsed_s = 0.0
        self.link.publish_state(_state(self.settings, self.elapsed_s))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def device(mosquitto_broker: Any) -> Iterator[tuple[MqttLink, FakeAppliance, Recorder]]:
    """A connected link with a fake appliance taking its commands, and a recorder."""
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "#")
    link = MqttLink(_cfg(mosquitto_broker), "bedroom", limits=LIMITS,
                    command_rate_per_s=1000.0, command_burst=1000)
    app = FakeAppliance(link)
    link.start(on_command=call_on_loop(app.loop, app.on_command))
    assert wait_for(lambda: link.subscribed)
    assert wait_for(lambda: b"online" in rec.on("heartsong/bedroom/availability"))
    try:
        yield link, app, rec
    finally:
        link.stop()
        app.close()
        rec.close()


def _last_state(rec: Recorder) -> dict[str, Any] | None:
    docs = rec.json_on("heartsong/bedroom/state")
    return docs[-1] if docs else None


# --------------------------------------------------------------------------- basics


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_birth_state_and_offline(mosquitto_broker: Any, protocol: str) -> None:
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "heartsong/#")
    link = MqttLink(_cfg(mosquitto_broker, protocol=protocol), "bedroom", limits=LIMITS)
    link.start()
    try:
        assert wait_for(lambda: link.connected)
        assert wait_for(lambda: b"online" in rec.on("heartsong/bedroom/availability"))
        link.publish_state({"hr_bpm": 61.5, "stress_state": "unknown", "wall_s": 1.0})
        assert wait_for(lambda: bool(rec.on("heartsong/bedroom/state")))
        assert rec.json_on("heartsong/bedroom/state")[0] == {
            "hr_bpm": 61.5, "stress_state": "unknown", "wall_s": 1.0}
        link.publish_state({"wall_s": 2.0})  # the last document, right before shutdown
    finally:
        link.stop()
        link.stop()  # safe twice
    assert wait_for(lambda: b"offline" in rec.on("heartsong/bedroom/availability"))
    assert rec.json_on("heartsong/bedroom/state")[-1] == {"wall_s": 2.0}
    assert link.queued == 0
    with pytest.raises(RuntimeError, match="cannot be started again"):
        link.start()
    rec.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_broker_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    cfg = with_overrides(
        Config(), {"mqtt.enabled": True, "mqtt.host": "127.0.0.1", "mqtt.port": _closed_port()}
    )
    link = MqttLink(cfg.mqtt, "bedroom", limits=LIMITS)
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.link"):
        link.start()
        assert wait_for(lambda: link.last_error is not None)
        time.sleep(3.5)  # paho retries at 1, 2 s...: several failed attempts
        assert not link.connected
        link.publish_state({"hr_bpm": 60.0})
        assert link.outbox.sync()
        assert link.queued == 1  # kept for later, not lost
        link.stop()
    warnings = [r for r in caplog.records if "not reachable" in r.getMessage()]
    assert len(warnings) == 1
    assert "Connection refused" in warnings[0].getMessage()


def test_privacy_setting_limits_the_state_and_the_entities(mosquitto_broker: Any) -> None:
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "#")
    link = MqttLink(_cfg(mosquitto_broker), "bedroom", limits=LIMITS,
                    publish=["stress_state"])
    link.start(on_command=lambda cmd: None)
    try:
        assert wait_for(lambda: link.connected)
        settings = PolicySettings("calm", "ocean", -18.0, 6.0, 0.0)
        link.publish_state(_state(settings, 10.0, hr_bpm=58.0, stress_state="calm"))
        assert wait_for(lambda: _last_state(rec) is not None)
        assert _last_state(rec) == {"wall_s": 1_700_000_010.0, "stress_state": "calm"}
        hr_config = "homeassistant/sensor/bedroom/hr_bpm/config"
        stress_config = "homeassistant/sensor/bedroom/stress_state/config"
        assert wait_for(lambda: bool(rec.on(stress_config)))
        assert rec.on(hr_config) == [b""]  # withdrawn, not announced
        assert json.loads(rec.on(stress_config)[0])["state_topic"] == "heartsong/bedroom/state"
    finally:
        link.stop()
        rec.close()


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("key", "payload", "check"),
    [
        ("mode", "calm", lambda s, d: s.mode == "calm" and d["mode"] == "calm"),
        ("soundscape", "brown_noise",
         lambda s, d: s.soundscape == "brown_noise" and d["soundscape"] == "brown_noise"),
        ("volume_db", "-25", lambda s, d: s.volume_db == -25.0 and d["volume_db"] == -25.0),
        ("sleep_timer_min", "30",
         lambda s, d: s.sleep_timer_s == 300.0 + 1800.0 and d["sleep_timer_min"] == 30.0),
        ("playing", "OFF", lambda s, d: s.playing is False and d["playing"] is False),
        ("session", "STOP", lambda s, d: s.playing is False and d["playing"] is False),
    ],
)
def test_commands_round_trip_and_change_the_device(
    device: tuple[MqttLink, FakeAppliance, Recorder], key: str, payload: str, check: Any
) -> None:
    _link, app, rec = device
    rec.publish(f"heartsong/bedroom/set/{key}", payload)
    assert wait_for(lambda: (d := _last_state(rec)) is not None and check(app.settings, d))
    assert app.reasons and "command" in app.reasons[-1]
    assert rec.on("heartsong/bedroom/error") == []


def test_session_start_restarts_the_session(
    device: tuple[MqttLink, FakeAppliance, Recorder],
) -> None:
    _link, app, rec = device
    rec.publish("heartsong/bedroom/set/playing", "OFF")
    assert wait_for(lambda: not app.settings.playing)
    rec.publish("heartsong/bedroom/set/session", "START")
    assert wait_for(lambda: app.settings.playing and app.elapsed_s == 0.0)
    assert wait_for(lambda: (d := _last_state(rec)) is not None and d["sleep_timer_min"] == 30.0)


@pytest.mark.parametrize(
    ("topic", "payload", "retain", "field", "words"),
    [
        ("heartsong/bedroom/set/volume_db", "0", False, "volume_db", "to -6 (dB)"),
        ("heartsong/bedroom/set/mode", "party", False, "mode", "'calm'"),
        ("heartsong/bedroom/set/colour", "red", False, "topic", "'soundscape'"),
        ("heartsong/bedroom/set/mode/now", "calm", False, "topic", "one level below set/"),
    ],
)
def test_bad_commands_are_answered_with_a_json_reason(
    device: tuple[MqttLink, FakeAppliance, Recorder],
    topic: str, payload: str, retain: bool, field: str, words: str,
) -> None:
    _link, app, rec = device
    before = app.settings
    rec.publish(topic, payload, retain=retain)
    assert wait_for(lambda: bool(rec.on("heartsong/bedroom/error")))
    error = rec.json_on("heartsong/bedroom/error")[0]
    assert error["topic"] == topic and error["field"] == field
    assert words in error["expected"]
    assert app.settings == before


def test_a_retained_command_is_not_replayed_at_connect(mosquitto_broker: Any) -> None:
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "heartsong/bedroom/error")
    rec.publish("heartsong/bedroom/set/session", "START", retain=True)  # e.g. hours ago
    taken: list[Command] = []
    link = MqttLink(_cfg(mosquitto_broker), "bedroom", limits=LIMITS)
    link.start(on_command=taken.append)
    try:
        assert wait_for(lambda: bool(rec.on("heartsong/bedroom/error")))
        assert rec.json_on("heartsong/bedroom/error")[0]["field"] == "retain"
        assert taken == []
    finally:
        link.stop()
        rec.publish("heartsong/bedroom/set/session", "", retain=True)
        rec.close()


def test_commands_are_rate_limited(mosquitto_broker: Any) -> None:
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "heartsong/bedroom/error")
    taken: list[Command] = []
    link = MqttLink(_cfg(mosquitto_broker), "bedroom", limits=LIMITS,
                    command_rate_per_s=0.5, command_burst=3)
    link.start(on_command=taken.append)
    try:
        assert wait_for(lambda: link.subscribed)
        for _ in range(20):
            rec.client.publish("heartsong/bedroom/set/mode", "calm", qos=1)
        assert wait_for(lambda: link.router.accepted + link.router.rejected >= 20)
        assert wait_for(lambda: len(taken) == link.router.accepted)
        assert 3 <= len(taken) < 20  # the burst, perhaps a refill, not all
        assert wait_for(lambda: any(e["field"] == "rate"
                                    for e in rec.json_on("heartsong/bedroom/error")))
    finally:
        link.stop()
        rec.close()


_FUZZ_MESSAGES = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["mode", "volume_db", "playing", "session", "x", "mode/y"]),
                  # Topics the broker itself refuses (control characters, wildcards) never
                  # reach the device; everything else may.
                  st.text(st.characters(blacklist_categories=["Cs", "Cc", "Cn"],
                                        blacklist_characters="+#"), max_size=20)),
        st.one_of(st.binary(max_size=100), st.text(max_size=30).map(str.encode)),
    ),
    min_size=1, max_size=25,
)


def test_fuzzed_commands_through_the_broker_leave_the_device_answering(
    device: tuple[MqttLink, FakeAppliance, Recorder],
) -> None:
    link, app, rec = device
    sent = 0

    @settings(max_examples=20, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(messages=_FUZZ_MESSAGES)
    def batch(messages: list[tuple[str, bytes]]) -> None:
        nonlocal sent
        for key, payload in messages:
            rec.client.publish(f"heartsong/bedroom/set/{key}", payload, qos=1)
        sent += len(messages)

    batch()
    assert sent >= 100
    assert wait_for(lambda: link.router.accepted + link.router.rejected >= sent)
    # Still connected, online, and answering a valid command with a state change.
    assert link.connected
    target = -7.0 if app.settings.volume_db != -7.0 else -8.0
    rec.publish("heartsong/bedroom/set/volume_db", str(target))
    assert wait_for(lambda: (d := _last_state(rec)) is not None and d["volume_db"] == target)
    assert rec.on("heartsong/bedroom/availability")[-1] == b"online"
    assert link.router.rejected > 0 and rec.on("heartsong/bedroom/error")


def test_a_failing_appliance_handler_is_reported_not_fatal(mosquitto_broker: Any) -> None:
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "heartsong/bedroom/error")
    loop = asyncio.new_event_loop()
    loop.close()  # the appliance's loop is gone: call_soon_threadsafe raises
    link = MqttLink(_cfg(mosquitto_broker), "bedroom", limits=LIMITS)
    link.start(on_command=call_on_loop(loop, lambda cmd: None))
    try:
        assert wait_for(lambda: link.subscribed)
        rec.publish("heartsong/bedroom/set/mode", "calm")
        assert wait_for(lambda: bool(rec.on("heartsong/bedroom/error")))
        assert rec.json_on("heartsong/bedroom/error")[0]["field"] == "device"
        assert link.connected
    finally:
        link.stop()
        rec.close()


def test_spool_file_is_used_when_given(mosquitto_broker: Any, tmp_path: Path) -> None:
    path = tmp_path / "state" / "mqtt-outbox.sqlite3"
    link = MqttLink(_cfg(mosquitto_broker), "bedroom", limits=LIMITS, spool_path=path)
    assert link.outbox.spool.path == path and path.exists()
    link.stop()  # before start: closes the spool, and the link stays stopped
    link.stop()
    with pytest.raises(RuntimeError, match="cannot be started again"):
        link.start()


def test_two_devices_with_one_id_are_told_apart_once(
    mosquitto_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Two units left on the default device.id take each other's broker session over and
    over; each only ever logged "connection lost". Now each says why, once."""
    links = [MqttLink(_cfg(mosquitto_broker), "heartsong", limits=LIMITS,
                      reconnect_max_s=1) for _ in range(2)]
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.link"):
        for link in links:
            link.start()
        assert wait_for(lambda: any("own device.id" in r.getMessage()
                                    for r in caplog.records), timeout_s=40)
        for link in links:
            link.stop()
    told = [r.getMessage() for r in caplog.records if "own device.id" in r.getMessage()]
    assert 1 <= len(told) <= 2  # once per link at most
    assert "'heartsong-heartsong'" in told[0]
