"""What SECURITY.md promises, checked on the running program.

* The appliance opens no listening socket: while ``heartsong demo`` runs with MQTT, every
  socket the process holds (``/proc/<pid>/fd``) is looked up in the kernel's tables
  (``/proc/net/{tcp,tcp6,udp,udp6}``): none listens, and the one that exists is the
  outgoing broker connection.
* The broker password never appears in anything the program writes (standard output,
  standard error, debug logs in text and JSON), whether the broker accepts or refuses it.
* Files the program creates in the state folder are owner-only (0600, folders 0700)
  even under a permissive umask.
* TLS verification cannot be switched off: every TLS context verifies the broker's
  chain (``CERT_REQUIRED``); ``mqtt.tls_insecure`` relaxes only the host-name check and
  is warned about (on every connect: ``tests/test_mqtt_security.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartsong.config import Config, with_overrides
from heartsong.mqtt.link import MqttLink
from heartsong.mqtt.security import tls_context
from heartsong.mqtt.spool import OUTBOX_FILE, Spool
from heartsong.sensors.ble_hr import LastStrapStore, RememberedStrap
from heartsong.store.db import Store, db_path
from heartsong.stress.baseline import save_baseline
from heartsong.stress.model import DEFAULT_MODEL_DIR
from heartsong.stress.spec import load_spec
from heartsong.therapy.resonance import ResonanceModel, ResonanceStore
from mqtt_tls import password_file, reconfigure
from reliability.figures import record

REPO = Path(__file__).resolve().parents[2]
#: TCP state code of a listening socket in /proc/net/tcp.
TCP_LISTEN = "0A"
TCP_ESTABLISHED = "01"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    return env


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _inet_sockets(pid: int) -> list[tuple[str, str, str]]:
    """(table, local address, state) of every TCP/UDP socket the process holds."""
    mine = _socket_inodes(pid)
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            cols = line.split()
            if len(cols) > 9 and cols[9] in mine:
                found.append((table, cols[1], cols[3]))
    return found


def _run_demo(args: list[str], *, seconds: float,
              watch: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Run ``heartsong`` with ``args`` for ``seconds`` real seconds, then SIGTERM it;
    ``watch(pid)`` is called every 0.2 s meanwhile. Returns (exit code, all output)."""
    proc = subprocess.Popen([sys.executable, "-m", "heartsong", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(),
                            cwd=REPO)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end and proc.poll() is None:
            if watch is not None:
                watch(proc.pid)
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.decode(errors="replace")


def test_the_appliance_opens_no_listening_socket(mosquitto_broker: Any, tmp_path: Path) -> None:
    seen: list[tuple[str, str, str]] = []

    def watch(pid: int) -> None:
        with contextlib.suppress(OSError):  # the process ended between two reads
            seen.extend(_inet_sockets(pid))

    code, out = _run_demo(
        ["demo", "--duration", "600", "--speed", "20",
         "--mqtt", f"{mosquitto_broker.host}:{mosquitto_broker.port}",
         "--state-dir", str(tmp_path / "state")],
        seconds=8.0, watch=watch)
    assert code == 0, out
    listening = {s for s in seen if s[0].startswith("tcp") and s[2] == TCP_LISTEN}
    udp = {s for s in seen if s[0].startswith("udp")}
    connected = {s for s in seen if s[0].startswith("tcp") and s[2] == TCP_ESTABLISHED}
    record(
        "security_no_listener", title="Security: no listening socket",
        faults="/proc/<pid>/fd sockets looked up in /proc/net/tcp,tcp6,udp,udp6 for 8 s "
               "of `heartsong demo --mqtt`",
        outcome=f"{len(listening)} listening TCP, {len(udp)} UDP sockets; "
                f"{len(connected)} outgoing TCP (the broker)",
        recovery="n/a (a property, checked every 0.2 s)", data_lost=0, produced=0,
        memory="n/a",
    )
    assert connected, "the check saw none of the process's sockets: it proves nothing"
    assert not listening, listening
    assert not udp, udp


@pytest.fixture
def auth_broker(mosquitto_broker: Any, tmp_path: Path) -> tuple[Any, str]:
    secret = "pw-" + secrets.token_hex(12)
    pw = password_file(tmp_path, "sleeper", secret)
    reconfigure(mosquitto_broker, "allow_anonymous false", f"password_file {pw}")
    return mosquitto_broker, secret


def test_the_mqtt_password_never_reaches_the_output(
    auth_broker: tuple[Any, str], tmp_path: Path
) -> None:
    broker, secret = auth_broker
    outputs = []
    # accepted (debug logs as text), then refused (debug logs as JSON)
    for password, log_format in ((secret, "text"), ("wrong-" + secret, "json")):
        pw_file = tmp_path / "mqtt-password"
        pw_file.write_text(password + "\n")
        pw_file.chmod(0o600)
        cfg = tmp_path / "config.toml"
        cfg.write_text(
            f'[device]\nlog_level = "debug"\nlog_format = "{log_format}"\n'
            f'[mqtt]\nusername = "sleeper"\npassword_file = "{pw_file}"\n')
        code, out = _run_demo(
            ["--config", str(cfg), "demo", "--duration", "600", "--speed", "20",
             "--mqtt", f"{broker.host}:{broker.port}"], seconds=6.0)
        assert code == 0, out
        outputs.append(out)
    accepted, refused = outputs
    assert "MQTT connected" in accepted  # the checks below looked at a real session
    assert "refused the connection" in refused
    for out in outputs:
        assert secret not in out


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _private(path: Path) -> list[str]:
    """Files and folders under ``path`` (itself included) readable by others."""
    bad = []
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode & 0o777
        if mode & 0o077:
            bad.append(f"{p.relative_to(path.parent)} {mode:o}")
    return bad


def _session_store(state: Path) -> None:
    store = Store(db_path(state))
    store.write_batch([("event", (None, 1.0, 2.0, "test", "a row", "{}"))])
    store.close()


def _outbox(state: Path) -> None:
    spool = Spool(state / OUTBOX_FILE)
    spool.append(b'{"hr_bpm": 60}')
    spool.close()


def _strap(state: Path) -> None:
    state.mkdir(mode=0o700, exist_ok=True)
    LastStrapStore(state / "ble_last_strap.json").save(
        RememberedStrap("F0:0D:5E:ED:00:01", "SimStrap"))


def _stress_baseline(state: Path) -> None:
    state.mkdir(mode=0o700, exist_ok=True)
    spec = load_spec(DEFAULT_MODEL_DIR / "stress_features.json")
    assert save_baseline(state / "stress_baseline.json", spec.population, 1.0)


def _resonance(state: Path) -> None:
    state.mkdir(mode=0o700, exist_ok=True)
    ResonanceStore(state / "baseline.json").save(ResonanceModel())


@pytest.mark.parametrize("create", [
    _session_store, _outbox, _strap, _stress_baseline, _resonance,
])
def test_state_files_are_owner_only_under_a_permissive_umask(
    tmp_path: Path, create: Callable[[Path], None]
) -> None:
    state = tmp_path / "state"
    with _umask(0o022):
        create(state)
    assert any(state.iterdir())
    assert _private(state) == []


@settings(max_examples=40, deadline=None)
@given(insecure=st.booleans(), use_system_store=st.booleans())
def test_tls_always_verifies_the_broker_chain(insecure: bool, use_system_store: bool) -> None:
    ca = "" if use_system_store else ssl.get_default_verify_paths().cafile or ""
    ctx = tls_context(ca, insecure=insecure)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is (not insecure)
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_no_setting_turns_verification_off_silently(caplog: pytest.LogCaptureFixture) -> None:
    # The only TLS relaxation a configuration can ask for is mqtt.tls_insecure ...
    mqtt_keys = {k for k in Config().mqtt.__dataclass_fields__}
    relaxing = {k for k in mqtt_keys if "insecure" in k or "verify" in k}
    assert relaxing == {"tls_insecure"}
    # ... and asking for it without TLS is said out loud, not ignored.
    cfg = with_overrides(Config(), {"mqtt.enabled": True, "mqtt.tls_insecure": True})
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.link"):
        MqttLink(cfg.mqtt, "bedroom", tls_insecure=True)
    assert any("nothing is encrypted" in r.getMessage() for r in caplog.records)
