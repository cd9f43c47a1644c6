"""A real mosquitto broker process on 127.0.0.1, for the tests and the soak run.

The tests (``tests/conftest.py``'s ``mosquitto_broker`` fixture, ``tests/mqtt_tls.py``'s
``reconfigure``) and ``tools/soak.py`` start, stop and restart the same kind of broker:
one class does it for all of them, so the broker the tests prove things against is the
one the soak run uses. The broker is the Debian package ``mosquitto`` (installed by
``make deps``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["MosquittoBroker", "accepts_tcp", "find_mosquitto", "free_port"]

#: Where Debian and a source build put the binary (it is often not on a user's PATH).
MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
#: How long a start may take before it counts as failed, s.
STARTUP_TIMEOUT_S = 10.0


def free_port(host: str) -> int:
    """Ask the kernel for a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def accepts_tcp(host: str, port: int) -> bool:
    """True if something accepts a TCP connection on ``host:port`` within 0.5 s."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None when it is not installed."""
    for candidate in MOSQUITTO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mosquitto")


@dataclass
class MosquittoBroker:
    """A real mosquitto process on 127.0.0.1, which may be stopped and started again.

    The port stays the same across ``stop()``/``start()``, so clients can reconnect to it
    as they would to a broker that went away and came back. With ``persistence_dir`` it
    keeps persistent sessions and their queued QoS 1 messages across a restart.
    """

    binary: str
    workdir: Path
    host: str = "127.0.0.1"
    port: int = 0
    persistence_dir: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port(self.host)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.configure("allow_anonymous true", persistence_dir=self.persistence_dir)

    def configure(self, *lines: str, persistence_dir: Path | None = None) -> None:
        """Write the configuration: the listener, persistence, then ``lines`` (options such
        as ``allow_anonymous``, ``cafile``, ``password_file``). Takes effect at the next
        :meth:`start`."""
        self.persistence_dir = persistence_dir
        persistence = (["persistence true", f"persistence_location {persistence_dir}/"]
                       if persistence_dir is not None else ["persistence false"])
        # Started as root, mosquitto would switch to the "mosquitto" user, which cannot
        # read pytest's private temporary directories: stay root.
        user = ["user root"] if os.geteuid() == 0 else []
        body = [f"listener {self.port} {self.host}", *persistence, *user, "log_dest stderr",
                "per_listener_settings false", *lines]
        self.config_path.write_text("\n".join(body) + "\n")

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start mosquitto (no-op if running) and wait until it accepts TCP connections.

        Raises
        ------
        RuntimeError
            It exited or did not listen within ``STARTUP_TIMEOUT_S``; the message holds
            its log.
        """
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
        while not accepts_tcp(self.host, self.port):
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

    def restart(self, down_s: float) -> None:
        """Stop, stay down ``down_s`` seconds (a broker outage), start again."""
        self.stop()
        time.sleep(down_s)
        self.start()
