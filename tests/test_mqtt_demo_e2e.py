"""``heartsong demo --mqtt``: discovery, availability and state reach a subscriber, and
commands sent through the broker change the running device."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

from cli_helpers import REPO
from mqtt_tls import Recorder, wait_for


def test_demo_appears_in_home_assistant_and_obeys_commands(mosquitto_broker: Any) -> None:
    rec = Recorder(mosquitto_broker.host, mosquitto_broker.port, "#", "e2e-ha")
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "heartsong", "demo", "--duration", "3600", "--speed", "10",
         "--audio", "none", "--mqtt", f"{mosquitto_broker.host}:{mosquitto_broker.port}"],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    base = "heartsong/heartsong"
    try:
        # The issue: discovery, availability and state within 10 s of starting.
        assert wait_for(lambda: bool(rec.on(f"{base}/state")), timeout_s=10)
        assert rec.on(f"{base}/availability")[-1] == b"online"
        configs = [t for t, _, _ in rec.messages if t.endswith("/config")]
        assert "homeassistant/sensor/heartsong/hr_bpm/config" in configs
        assert "homeassistant/select/heartsong/mode/config" in configs
        state = rec.json_on(f"{base}/state")[-1]
        assert state["mode"] == "wind_down" and "sleep_timer_min" in state

        rec.publish(f"{base}/set/mode", "calm")
        rec.publish(f"{base}/set/volume_db", "-30")
        assert wait_for(lambda: (s := rec.json_on(f"{base}/state")[-1])["mode"] == "calm"
                        and s["volume_db"] == -30.0)
        rec.publish(f"{base}/set/volume_db", "0")  # above the -6 dB ceiling
        assert wait_for(lambda: bool(rec.on(f"{base}/error")))
        assert rec.json_on(f"{base}/error")[0]["field"] == "volume_db"
        rec.publish(f"{base}/set/playing", "OFF")
        assert wait_for(lambda: rec.json_on(f"{base}/state")[-1]["playing"] is False)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        rec.close()
    assert proc.returncode == 0, err
    assert "command" in err  # the command events are logged
    assert rec.on(f"{base}/availability")[-1] == b"offline"
