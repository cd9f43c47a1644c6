"""The systemd unit: required settings present, and systemd's own exposure score <= 2.0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "heartsong.service"
MAX_EXPOSURE = 2.0


def _unavailable(reason: str) -> None:
    """Skip, or fail under `make test` (HEARTSONG_REQUIRE_SERVICES=1), like conftest.py."""
    if os.environ.get("HEARTSONG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (HEARTSONG_REQUIRE_SERVICES=1: `make test` should provide it)")
    pytest.skip(reason)


def _settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_the_required_settings() -> None:
    s = _settings()
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert s["WatchdogSec"] and s["NotifyAccess"] == ["main"]
    assert s["User"] == ["heartsong"]
    assert set(s["SupplementaryGroups"][0].split()) == {"i2c", "gpio", "audio", "bluetooth"}
    assert s["StateDirectory"] == ["heartsong"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["ProtectHome"] == ["yes"] and s["PrivateTmp"] == ["yes"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["DevicePolicy"] == ["closed"]
    allowed = {v.split()[0] for v in s["DeviceAllow"]}
    assert allowed == {"char-i2c", "char-gpiochip", "/dev/gpiomem", "char-alsa"}
    assert s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in s["SystemCallFilter"]
    numba = [v for v in s["Environment"] if v.startswith("NUMBA_CACHE_DIR=")]
    assert numba == ["NUMBA_CACHE_DIR=/var/cache/heartsong/numba"]
    assert s["CacheDirectory"] == ["heartsong"]  # so the numba cache dir is writable


def test_exposure_score_is_at_most_two() -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        _unavailable("systemd-analyze is not installed (apt package systemd)")
    assert tool is not None
    proc = subprocess.run(
        [tool, "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    text = proc.stdout + proc.stderr
    if "--offline" in text and "unrecognized option" in text:
        _unavailable("systemd-analyze is older than v252 (no --offline)")
    m = re.search(r"Overall exposure level for heartsong\.service:\s*([0-9.]+)", text)
    assert m is not None, text[-2000:]
    assert float(m.group(1)) <= MAX_EXPOSURE, text
