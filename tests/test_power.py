"""Safe shutdown: the app stops cleanly first, then asks logind to power off."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from typing import Any

import pytest

from heartsong.config import Config, with_overrides
from heartsong.power import POWER_OFF_COMMAND, power_off
from heartsong.wiring import build_demo


def test_power_off_runs_systemctl_poweroff() -> None:
    calls: list[list[str]] = []

    def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    assert power_off(run=run)
    assert calls == [list(POWER_OFF_COMMAND)]


def test_refused_power_off_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 1, "", "Access denied")

    def missing(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError("systemctl")

    with caplog.at_level(logging.ERROR, logger="heartsong.power"):
        assert not power_off(run=refuse)
        assert not power_off(run=missing)
    assert "polkit-heartsong.rules" in caplog.text and "Access denied" in caplog.text


def test_request_power_off_stops_the_appliance_cleanly_first() -> None:
    app = build_demo(with_overrides(Config(), {"audio.output": "none"}), speed=100.0)

    async def main() -> int:
        task = asyncio.create_task(app.run(duration_s=10_000.0))
        await asyncio.sleep(0.3)
        app.request_power_off()
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(main()) == 0
    assert app.power_off_requested and app.engine.is_silent
    assert any("safe shutdown" in e.message for e in app.events)
