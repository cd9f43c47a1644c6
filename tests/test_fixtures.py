"""The shared fixtures work: a real broker round-trip, a broker outage, JACK seen by PortAudio."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pyaudio
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from mosquitto_broker import accepts_tcp  # tools/, on the path via conftest

if TYPE_CHECKING:
    from conftest import JackServer, MosquittoBroker

TIMEOUT_S = 10.0


def _read_retained(broker: MosquittoBroker, topic: str) -> tuple[bytes, bool]:
    """Subscribe with a fresh client and return the first message's payload and retain flag."""
    received: queue.Queue[tuple[bytes, bool]] = queue.Queue()

    def on_connect(client: mqtt.Client, *_: Any) -> None:
        client.subscribe(topic, qos=1)

    def on_message(_client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        received.put((bytes(msg.payload), bool(msg.retain)))

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="reader")
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        return received.get(timeout=TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()


def _publish_retained(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="writer")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout=TIMEOUT_S)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_broker_round_trips_a_retained_message(mosquitto_broker: MosquittoBroker) -> None:
    _publish_retained(mosquitto_broker, "heartsong/test/state", b'{"hr_bpm": 61.5}')

    payload, retained = _read_retained(mosquitto_broker, "heartsong/test/state")

    assert payload == b'{"hr_bpm": 61.5}'
    assert retained, "a message delivered on subscribe must carry the retain flag"


def test_broker_stop_and_start_on_the_same_port(mosquitto_broker: MosquittoBroker) -> None:
    port = mosquitto_broker.port
    assert mosquitto_broker.running and accepts_tcp(mosquitto_broker.host, mosquitto_broker.port)

    mosquitto_broker.stop()
    assert not mosquitto_broker.running
    refused = not accepts_tcp(mosquitto_broker.host, mosquitto_broker.port)
    assert refused, "a stopped broker must refuse connections"
    mosquitto_broker.stop()  # stopping twice is harmless

    mosquitto_broker.start()
    assert mosquitto_broker.running and mosquitto_broker.port == port
    # persistence is off, so the restarted broker is empty but fully working
    _publish_retained(mosquitto_broker, "heartsong/test/after", b"back")
    assert _read_retained(mosquitto_broker, "heartsong/test/after") == (b"back", True)


def test_jack_server_is_an_output_device_for_portaudio(jack_server: JackServer) -> None:
    assert any(port.startswith("system:playback_") for port in jack_server.ports)
    assert jack_server.sample_rate_hz > 0

    pa = pyaudio.PyAudio()
    try:
        jack_outputs = []
        for index in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(index)
            api = pa.get_host_api_info_by_index(int(info["hostApi"]))
            if "JACK" in str(api["name"]) and int(info["maxOutputChannels"]) > 0:
                jack_outputs.append(info)
    finally:
        pa.terminate()

    assert jack_outputs, "PortAudio lists no JACK output device while the server runs"
    assert float(jack_outputs[0]["defaultSampleRate"]) == pytest.approx(jack_server.sample_rate_hz)


def test_shared_data_points_at_the_recordings(shared_data: Path) -> None:
    assert shared_data.name == "data" and shared_data.parent.name == "shared"
    assert (shared_data / "README.md").is_file()
