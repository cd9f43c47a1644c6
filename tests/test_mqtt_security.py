"""Broker security: password authentication and TLS against a real mosquitto.

A throwaway CA and certificates are made with the ``openssl`` CLI and a password file with
``mosquitto_passwd`` (see ``mqtt_tls.py``); the broker fixture is restarted with them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from heartsong.config import Config, MqttConfig, with_overrides
from heartsong.errors import ConfigError
from heartsong.mqtt.commands import CommandLimits
from heartsong.mqtt.link import MqttLink
from heartsong.mqtt.security import INSECURE_WARNING, read_password
from mqtt_tls import (
    Pki,
    Recorder,
    issue_cert,
    make_ca,
    password_file,
    reconfigure,
    tls_lines,
    wait_for,
)

LIMITS = CommandLimits(soundscapes=("ocean",))
SECRET = "s3cret-Pass word"


def _cfg(broker: Any, **mqtt: object) -> MqttConfig:
    overrides = {"mqtt.enabled": True, "mqtt.host": broker.host, "mqtt.port": broker.port}
    overrides.update({f"mqtt.{k}": v for k, v in mqtt.items()})
    return with_overrides(Config(), overrides).mqtt


def _secret_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mqtt-password"
    path.write_text(text)
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- passwords


@pytest.fixture
def auth_broker(mosquitto_broker: Any, tmp_path: Path) -> Any:
    users = password_file(tmp_path, "heartsong", SECRET)
    reconfigure(mosquitto_broker, "allow_anonymous false", f"password_file {users}")
    return mosquitto_broker


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_right_password_from_a_file_connects(
    auth_broker: Any, tmp_path: Path, protocol: str
) -> None:
    secret = _secret_file(tmp_path, SECRET + "\n")
    link = MqttLink(_cfg(auth_broker, username="heartsong", password_file=str(secret),
                         protocol=protocol), "bedroom", limits=LIMITS)
    link.start()
    try:
        assert wait_for(lambda: link.connected)
        assert link.last_error is None
    finally:
        link.stop()


def test_right_password_from_the_environment_connects(
    auth_broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEARTSONG_TEST_MQTT_PASSWORD", SECRET)
    link = MqttLink(_cfg(auth_broker, username="heartsong"), "bedroom", limits=LIMITS,
                    password_env="HEARTSONG_TEST_MQTT_PASSWORD")
    link.start()
    try:
        assert wait_for(lambda: link.connected)
    finally:
        link.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_wrong_password_is_refused_and_reported_without_the_password(
    auth_broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    wrong = "not-" + SECRET
    secret = _secret_file(tmp_path, wrong)
    link = MqttLink(_cfg(auth_broker, username="heartsong", password_file=str(secret),
                         protocol=protocol), "bedroom", limits=LIMITS)
    with caplog.at_level(logging.DEBUG):
        link.start()
        try:
            assert wait_for(lambda: link.last_error is not None)
            assert not link.connected
            assert wait_for(lambda: "refused" in caplog.text)
        finally:
            link.stop()
    refused = [r for r in caplog.records if "refused the connection" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "authori" in refused[0].getMessage().lower()
    assert "mqtt.username" in refused[0].getMessage()
    assert link.last_error is not None and "refused" in link.last_error
    assert wrong not in caplog.text and SECRET not in caplog.text
    assert wrong not in repr(link)


def test_anonymous_is_refused_when_the_broker_wants_a_password(
    auth_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    link = MqttLink(_cfg(auth_broker), "bedroom", limits=LIMITS)
    with caplog.at_level(logging.ERROR, logger="heartsong.mqtt.link"):
        link.start()
        try:
            assert wait_for(lambda: link.last_error is not None)
        finally:
            link.stop()
    assert "refused the connection" in caplog.text


def test_password_problems_name_the_setting_never_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _secret_file(tmp_path, SECRET + "\n")
    assert read_password(str(good)) == SECRET  # one line break removed, spaces kept
    assert read_password() is None
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.delenv("HEARTSONG_TEST_UNSET", raising=False)
    cases = [
        ((str(tmp_path / "missing"), ""), "mqtt.password_file", "readable"),
        ((str(empty), ""), "mqtt.password_file", "empty"),
        (("", "HEARTSONG_TEST_UNSET"), "mqtt.password_env", "unset or empty"),
        ((str(good), "HEARTSONG_TEST_UNSET"), "mqtt.password_env", "not both"),
    ]
    for args, key, words in cases:
        with pytest.raises(ConfigError) as err:
            read_password(*args)
        assert err.value.key == key and words in err.value.expected
        assert SECRET not in str(err.value)


def test_password_env_needs_a_username() -> None:
    with pytest.raises(ConfigError) as err:
        MqttLink(Config().mqtt, "bedroom", limits=LIMITS, password_env="X")
    assert err.value.key == "mqtt.username"


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two CAs, a server certificate for 127.0.0.1/localhost, one for another name, and
    a client certificate, all made once for the module."""
    d = tmp_path_factory.mktemp("pki")
    ca, other = make_ca(d, "test-ca"), make_ca(d, "other-ca")
    return {
        "ca": ca,
        "other": other,
        "server": issue_cert(ca, d, "server", server=True),
        "elsewhere": issue_cert(ca, d, "elsewhere", server=True, names="DNS:broker.invalid"),
        "client": issue_cert(ca, d, "client", server=False),
    }


@pytest.fixture
def tls_broker(mosquitto_broker: Any, pki: dict[str, Any]) -> Iterator[Any]:
    ca: Pki = pki["ca"]
    reconfigure(mosquitto_broker, "allow_anonymous true", *tls_lines(ca, *pki["server"]))
    yield mosquitto_broker


def _tls_link(broker: Any, ca: Path, **kwargs: Any) -> MqttLink:
    cert = kwargs.pop("client", None)
    extra: dict[str, object] = {"tls": True, "ca_file": str(ca)}
    if cert is not None:
        extra.update(certfile=str(cert[0]), keyfile=str(cert[1]))
    return MqttLink(_cfg(broker, **extra), "bedroom", limits=LIMITS, **kwargs)


def test_tls_with_the_test_ca_works(tls_broker: Any, pki: dict[str, Any]) -> None:
    ca: Pki = pki["ca"]
    rec = Recorder(tls_broker.host, tls_broker.port, "heartsong/#", tls_ca=ca.ca_cert)
    link = _tls_link(tls_broker, ca.ca_cert)
    link.start()
    try:
        assert wait_for(lambda: link.connected)
        link.publish_state({"wall_s": 1.0, "stress_state": "calm"})
        assert wait_for(lambda: rec.json_on("heartsong/bedroom/state") == [
            {"wall_s": 1.0, "stress_state": "calm"}])
    finally:
        link.stop()
        rec.close()


def test_a_wrong_ca_is_refused_and_reported(
    tls_broker: Any, pki: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    link = _tls_link(tls_broker, pki["other"].ca_cert)
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.link"):
        link.start()
        try:
            assert wait_for(lambda: link.last_error is not None)
            assert not link.connected
        finally:
            link.stop()
    assert link.last_error is not None
    assert "certificate" in link.last_error and "mqtt.ca_file" in link.last_error
    reports = [r for r in caplog.records if "certificate" in r.getMessage()]
    assert len(reports) == 1 and reports[0].levelno == logging.ERROR


def test_a_certificate_for_another_host_is_refused_unless_insecure(
    mosquitto_broker: Any, pki: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    ca: Pki = pki["ca"]
    reconfigure(mosquitto_broker, "allow_anonymous true", *tls_lines(ca, *pki["elsewhere"]))
    strict = _tls_link(mosquitto_broker, ca.ca_cert)
    strict.start()
    try:
        assert wait_for(lambda: strict.last_error is not None)
        assert "mismatch" in (strict.last_error or "") and not strict.connected
    finally:
        strict.stop()
    lax = _tls_link(mosquitto_broker, ca.ca_cert, tls_insecure=True, reconnect_max_s=2)
    with caplog.at_level(logging.WARNING, logger="heartsong.mqtt.link"):
        lax.start()
        try:
            assert wait_for(lambda: lax.connected)
            mosquitto_broker.stop()  # reconnect: the warning comes again
            assert wait_for(lambda: not lax.connected)
            mosquitto_broker.start()
            assert wait_for(lambda: lax.connected)
        finally:
            lax.stop()
    assert sum(r.getMessage() == INSECURE_WARNING for r in caplog.records) == 2


def test_a_required_client_certificate(
    mosquitto_broker: Any, pki: dict[str, Any]
) -> None:
    ca: Pki = pki["ca"]
    reconfigure(mosquitto_broker, "allow_anonymous true",
                *tls_lines(ca, *pki["server"], require_client_cert=True))
    with_cert = _tls_link(mosquitto_broker, ca.ca_cert, client=pki["client"])
    with_cert.start()
    try:
        assert wait_for(lambda: with_cert.connected)
    finally:
        with_cert.stop()
    without = _tls_link(mosquitto_broker, ca.ca_cert)
    without.start()
    try:
        assert wait_for(lambda: without.last_error is not None)
        assert not without.connected
    finally:
        without.stop()
    # The broker's TLS alert is part of the report.
    assert without.last_error is not None and "certificate required" in without.last_error


def test_tls_files_that_cannot_be_read_name_the_setting(tmp_path: Path) -> None:
    cfg = with_overrides(Config(), {"mqtt.tls": True,
                                    "mqtt.ca_file": str(tmp_path / "none.pem")}).mqtt
    with pytest.raises(ConfigError) as err:
        MqttLink(cfg, "bedroom", limits=LIMITS)
    assert err.value.key == "mqtt.ca_file"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    cfg = with_overrides(Config(), {"mqtt.tls": True, "mqtt.certfile": str(junk),
                                    "mqtt.keyfile": str(junk)}).mqtt
    with pytest.raises(ConfigError) as err:
        MqttLink(cfg, "bedroom", limits=LIMITS)
    assert err.value.key == "mqtt.certfile"
