"""Fixtures of the reliability suite: a state folder per scenario and the figures hook."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An empty state folder (session store, MQTT outbox) for one scenario."""
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


@pytest.fixture(autouse=True)
def _quiet_expected_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Keep the injected faults' warnings in the report, not on the console."""
    caplog.set_level(logging.INFO)
    yield
