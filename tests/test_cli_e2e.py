"""End-to-end: the real ``heartsong`` command in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_helpers import REPO, heartsong
from heartsong.events import METRIC_NAMES

STATUS_RE = re.compile(
    r"^\d\d:\d\d:\d\d HR (?P<hr>[\d.]+|--) bpm \| "
    r"RMSSD (?P<rmssd>[\d.]+|--) ms \| stress (?P<stress>\w+)"
)


def _status_lines(out: str) -> list[re.Match[str]]:
    return [m for line in out.splitlines() if (m := STATUS_RE.match(line))]


def test_demo_30s_at_20x_prints_status_and_exits_0() -> None:
    res = heartsong("demo", "--duration", "30", "--speed", "20", "--audio", "none")
    assert res.returncode == 0, res.stderr
    lines = _status_lines(res.stdout)
    # an update every 5 s of simulated time over 30 s: five or six lines
    assert len(lines) >= 4, res.stdout
    assert "stopped cleanly" in res.stderr


@pytest.mark.slow
def test_demo_five_simulated_minutes_measures_the_simulated_person(tmp_path: Path) -> None:
    cfg = tmp_path / "calm.toml"
    cfg.write_text(
        "[simulation]\nhr_bpm = 60.0\nrmssd_ms = 45.0\nstress = 0.0\nseed = 7\n"
        "motion_artifacts_per_hour = 0.0\n"
    )
    wav_path = tmp_path / "night.wav"
    res = heartsong(
        "--config", str(cfg), "demo", "--duration", "300", "--speed", "30",
        "--audio", f"wav:{wav_path}", "--no-ble",
    )
    assert res.returncode == 0, res.stderr
    lines = _status_lines(res.stdout)
    assert len(lines) >= 50  # one every 5 simulated s
    # after the first minute the window is full: heart rate and RMSSD are measured
    late = [m for m in lines[15:] if m["hr"] != "--"]
    assert len(late) >= 0.9 * len(lines[15:])
    hr = np.array([float(m["hr"]) for m in late])
    rmssd = np.array([float(m["rmssd"]) for m in late if m["rmssd"] != "--"])
    assert abs(np.median(hr) - 60.0) < 3.0
    assert 25.0 < np.median(rmssd) < 70.0
    assert lines[0]["stress"] == "unknown"  # no guess before there is data
    with wave.open(str(wav_path), "rb") as w:
        assert w.getnchannels() == 2
        seconds = w.getnframes() / w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert 300.0 <= seconds <= 310.0
    assert np.abs(audio).max() > 100  # it played something
    assert np.abs(audio[-200:]).max() < 50  # and faded out at the end


def test_unknown_config_key_exits_2_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[audio]\nvolum_db = -20\n")
    res = heartsong("--config", str(cfg), "demo", "--duration", "5")
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1, res.stderr
    assert "audio.volum_db" in err[0] and str(cfg) in err[0]


def test_out_of_range_config_value_exits_2_naming_key(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[audio]\nvolume_db = 12\n")
    res = heartsong("--config", str(cfg), "config", "--print")
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "audio.volume_db" in err[0] and "12" in err[0]


def test_config_print_shows_effective_values(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[audio]\nsoundscape = "brown_noise"\n')
    res = heartsong("--config", str(cfg), "config", "--print")
    assert res.returncode == 0, res.stderr
    assert 'soundscape = "brown_noise"' in res.stdout
    assert "[mqtt]" in res.stdout


def test_doctor_without_hardware_lists_missing_parts_and_fails() -> None:
    res = heartsong("doctor")
    assert res.returncode != 0
    assert "i2c" in res.stdout.lower()


def test_doctor_with_a_bad_config_still_checks_every_part(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[audio]\nvolume_db = 12\n")
    res = heartsong("--config", str(cfg), "doctor")
    assert res.returncode == 2
    assert "MISSING config" in res.stdout and "audio.volume_db = 12" in res.stdout
    assert "i2c bus" in res.stdout and "tflite runtime" in res.stdout
    assert "audio.volume_db = 12" in res.stderr  # the usual one line too


def test_bad_demo_flags_exit_2() -> None:
    res = heartsong("demo", "--audio", "speaker")
    assert res.returncode == 2 and "--audio" in res.stderr
    res = heartsong("demo", "--mqtt", "nohostport")
    assert res.returncode == 2 and "--mqtt" in res.stderr
    for flag, value in (("--speed", "inf"), ("--speed", "nan"), ("--duration", "inf")):
        res = heartsong("demo", flag, value, "--audio", "none")
        assert res.returncode == 2 and f"{flag} = {value}" in res.stderr, res.stderr
        assert "Traceback" not in res.stderr


def test_sigterm_fades_out_and_exits_0() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "heartsong", "demo", "--speed", "5", "--audio", "none"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if STATUS_RE.match(line):
            break
    assert STATUS_RE.match(line), "no status line before the deadline"
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stop requested" in err and "stopped cleanly" in err


def test_demo_publishes_availability_and_state_to_a_real_broker(mosquitto_broker: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: dict[str, bytes] = {}
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="e2e-sub")
    sub.on_connect = lambda c, *a: c.subscribe("heartsong/#", qos=1)
    sub.on_message = lambda c, u, msg: got.setdefault(msg.topic, msg.payload)
    sub.connect(mosquitto_broker.host, mosquitto_broker.port)
    sub.loop_start()
    try:
        res = heartsong(
            "demo", "--duration", "30", "--speed", "10", "--audio", "none",
            "--mqtt", f"{mosquitto_broker.host}:{mosquitto_broker.port}",
        )
        assert res.returncode == 0, res.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "heartsong/heartsong/state" not in got:
            time.sleep(0.05)
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert got.get("heartsong/heartsong/availability") == b"online"
    state = json.loads(got["heartsong/heartsong/state"])
    assert set(METRIC_NAMES) <= set(state)
    # the soundscape learner picked this first night's trial, and says so
    assert state["mode"] == "wind_down"
    assert state["soundscape"] in state["soundscape_reason"], state
