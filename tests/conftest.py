"""Shared fixtures: a real mosquitto broker, a running JACK server, the shared data folder.

Services that `make test` provides (mosquitto from `make deps`, a JACK dummy server from
``tools/with_jack_dummy.sh``) are skipped with a reason when absent, so a plain ``pytest``
works anywhere. Under `make test` (``HEARTSONG_REQUIRE_SERVICES=1``) a missing service is an
error instead, so a broken install step cannot hide behind a green run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NoReturn

import pytest

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
STARTUP_TIMEOUT_S = 10.0


def _unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when `make test` promised the service would be there."""
    if os.environ.get("HEARTSONG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (HEARTSONG_REQUIRE_SERVICES=1: `make test` should provide it)")
    pytest.skip(reason)


def _free_port(host: str) -> int:
    """Ask the kernel for a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts_tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _mosquitto_binary() -> str | None:
    for candidate in MOSQUITTO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mosquitto")


@dataclass
class MosquittoBroker:
    """A real mosquitto process on 127.0.0.1, which a test may stop and start again.

    The port stays the same across ``stop()``/``start()``, so clients can reconnect to it
    as they would to a broker that went away and came back.
    """

    binary: str
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = _free_port(self.host)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
        )

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start mosquitto (no-op if running) and wait until it accepts TCP connections."""
        if self.running:
            return
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _accepts_tcp(self.host, self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.log_path.read_text(errors="replace")
                raise RuntimeError(f"mosquitto did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop mosquitto (no-op if stopped); connected clients see the connection drop."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A fresh mosquitto broker for one test, on a free port of 127.0.0.1."""
    binary = _mosquitto_binary()
    if binary is None:
        _unavailable("mosquitto binary not found (Debian package mosquitto; run via make test)")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    broker = MosquittoBroker(binary=binary, workdir=workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def persistent_broker(mosquitto_broker: MosquittoBroker, tmp_path: Path) -> MosquittoBroker:
    """:func:`mosquitto_broker` with persistence on, so it keeps queued QoS 1 messages for
    persistent sessions across a restart (the outage tests)."""
    from mqtt_tls import reconfigure

    data = tmp_path / "mosquitto-data"
    data.mkdir()
    reconfigure(mosquitto_broker, "allow_anonymous true", persistence_dir=data)
    return mosquitto_broker


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
