"""Shared fixtures: a real mosquitto broker, a running JACK server, the shared data folder.

Services that `make test` provides (mosquitto from `make deps`, a JACK dummy server from
``tools/with_jack_dummy.sh``) are skipped with a reason when absent, so a plain ``pytest``
works anywhere. Under `make test` (``HEARTSONG_REQUIRE_SERVICES=1``) a missing service is an
error instead, so a broken install step cannot hide behind a green run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

_TOOLS = str(Path(__file__).resolve().parents[1] / "tools")
if _TOOLS not in sys.path:
    sys.path.insert(0, _TOOLS)

from mosquitto_broker import MosquittoBroker, find_mosquitto  # noqa: E402  (tools/)

__all__ = ["JackServer", "MosquittoBroker"]


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when `make test` promised the service would be there."""
    if os.environ.get("HEARTSONG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (HEARTSONG_REQUIRE_SERVICES=1: `make test` should provide it)")
    pytest.skip(reason)


def _running_broker(tmp_path: Path, persistence_dir: Path | None = None) -> Iterator[
    MosquittoBroker
]:
    """A mosquitto started in ``tmp_path`` for one test, stopped after it."""
    binary = find_mosquitto()
    if binary is None:
        _unavailable("mosquitto binary not found (Debian package mosquitto; run via make test)")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = MosquittoBroker(binary=binary, workdir=workdir, persistence_dir=persistence_dir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A fresh mosquitto broker for one test, on a free port of 127.0.0.1."""
    yield from _running_broker(tmp_path)


@pytest.fixture
def persistent_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """:func:`mosquitto_broker` with persistence on, so it keeps queued QoS 1 messages for
    persistent sessions across a restart (the outage tests)."""
    data = tmp_path / "mosquitto-data"
    data.mkdir()
    yield from _running_broker(tmp_path, persistence_dir=data)


@dataclass(frozen=True)
class JackServer:
    """A JACK server that answered ``jack_lsp``: its ports and sample rate (Hz)."""

    ports: tuple[str, ...]
    sample_rate_hz: int


def _run_quiet(*argv: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


@pytest.fixture(scope="session")
def jack_server() -> JackServer:
    """The running JACK server (started by `make test`), or skip with "run via make test"."""
    lsp = _run_quiet("jack_lsp")
    if lsp is None or lsp.returncode != 0:
        _unavailable("no JACK server is running: run via make test")
    rate = _run_quiet("jack_samplerate")
    if rate is None or rate.returncode != 0 or not rate.stdout.strip().isdigit():
        _unavailable("jack_samplerate could not read the JACK server's sample rate")
    return JackServer(ports=tuple(lsp.stdout.splitlines()), sample_rate_hz=int(rate.stdout))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The team's shared data folder (``../shared/data`` beside the repository), or skip."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path}")
    return path


_SERVICE_MARKS = {"mosquitto_broker": "broker", "jack_server": "jack"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the services they use, so ``-m "not broker"`` selects without them."""
    for item in items:
        for fixture_name, mark in _SERVICE_MARKS.items():
            if fixture_name in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, mark))
