"""Helpers for the MQTT tests: a recording subscriber, and the security set-up.

* :class:`Recorder` subscribes to a topic filter on the real broker and keeps every
  message; :func:`wait_for` polls a condition (with a generous deadline, not a timing
  threshold: a test fails only if the condition never holds).
* A throwaway CA and certificates (``openssl`` CLI; the ``cryptography`` package is not
  installed), a mosquitto password file (``mosquitto_passwd``), and :func:`reconfigure`,
  which stops the ``mosquitto_broker`` fixture of ``conftest.py``, rewrites its
  configuration file and starts it again on the same port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

WAIT_S = 15.0


def wait_for(pred: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Poll ``pred`` every 20 ms until it holds (True) or ``timeout_s`` passes (False)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


@dataclass
class Recorder:
    """A paho client on the test broker that records every message under ``topic``."""

    host: str
    port: int
    topic: str = "#"
    client_id: str = "test-recorder"
    persistent: bool = False
    tls_ca: Path | None = None
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self._lock = threading.Lock()
        ready = threading.Event()
        # A persistent session (MQTT 3.1.1 clean_session = false) keeps the subscription
        # and queues QoS 1 messages at the broker while this client is away.
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        clean_session=not self.persistent)
        c.reconnect_delay_set(1, 2)
        if self.tls_ca is not None:
            c.tls_set(ca_certs=str(self.tls_ca))
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: ready.set()
        c.on_connect = lambda cl, *a: cl.subscribe(self.topic, qos=1)
        c.connect(self.host, self.port)
        c.loop_start()
        self.client = c
        if not ready.wait(10):
            raise RuntimeError("test recorder could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        """Payloads received on ``topic``, in arrival order."""
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def json_on(self, topic: str) -> list[Any]:
        """JSON payloads received on ``topic``, decoded, in arrival order."""
        return [json.loads(p) for p in self.on(topic) if p]

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        """Publish with QoS 1 and wait until the broker has it."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _run(*argv: str) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{res.stderr}")


def require_tool(name: str) -> str:
    """The path of a command-line tool, or skip the test with the reason."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found (Debian packages openssl / mosquitto-clients)")
    return path


@dataclass(frozen=True)
class Pki:
    """Files of one test CA (PEM): its certificate and key."""

    ca_cert: Path
    ca_key: Path


def make_ca(workdir: Path, name: str) -> Pki:
    """A self-signed CA certificate and key (EC P-256, valid one day) named ``name``."""
    require_tool("openssl")
    workdir.mkdir(parents=True, exist_ok=True)
    key, cert = workdir / f"{name}.key", workdir / f"{name}.crt"
    _run("openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", f"/CN={name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(key), "-out", str(cert))
    return Pki(cert, key)


def issue_cert(
    ca: Pki, workdir: Path, name: str, *, server: bool,
    names: str = "DNS:localhost,IP:127.0.0.1",
) -> tuple[Path, Path]:
    """A certificate signed by ``ca``: (cert, key). Server certificates carry ``names``
    as subjectAltName; client certificates are for TLS client authentication."""
    key, csr, cert = (workdir / f"{name}{ext}" for ext in (".key", ".csr", ".crt"))
    ext = workdir / f"{name}.ext"
    if server:
        ext.write_text(f"subjectAltName={names}\nextendedKeyUsage=serverAuth\n")
    else:
        ext.write_text("extendedKeyUsage=clientAuth\n")
    _run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(csr))
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca.ca_cert), "-CAkey",
         str(ca.ca_key), "-CAcreateserial", "-days", "1", "-extfile", str(ext),
         "-out", str(cert))
    return cert, key


def password_file(workdir: Path, user: str, password: str) -> Path:
    """A mosquitto password file holding one user (hashed by ``mosquitto_passwd -b``)."""
    tool = require_tool("mosquitto_passwd")
    path = workdir / "passwd"
    path.touch(mode=0o600)
    _run(tool, "-b", str(path), user, password)
    return path


def reconfigure(broker: Any, *lines: str, persistence_dir: Path | None = None) -> None:
    """Restart the fixture's broker with its listener followed by ``lines``.

    ``allow_anonymous`` and the listener-specific options (``cafile``, ``certfile``,
    ``require_certificate``, ``password_file`` ...) go in ``lines``. With
    ``persistence_dir``, sessions and queued messages survive a broker restart.
    """
    broker.stop()
    broker.configure(*lines, persistence_dir=persistence_dir)
    broker.start()


def tls_lines(ca: Pki, cert: Path, key: Path, *, require_client_cert: bool = False) -> list[str]:
    """mosquitto options that turn the listener into TLS with this CA and server cert."""
    lines = [f"cafile {ca.ca_cert}", f"certfile {cert}", f"keyfile {key}"]
    if require_client_cert:
        lines += ["require_certificate true", "use_identity_as_username false"]
    return lines
