"""How the link proves itself and checks the broker: password source, TLS, failure reasons.

* The broker password comes from a file (``mqtt.password_file``) or an environment
  variable (``mqtt.password_env``), never from the configuration file itself, and is never
  logged: errors about it name the setting, not the secret.
* TLS verifies the broker's certificate chain against ``mqtt.ca_file`` (or the system
  store) and its host name; a client certificate is optional. Host-name checking can be
  switched off (``mqtt.tls_insecure``) but never silently: the link warns on every
  connect.
* :func:`describe_connect_error` turns the exception behind a failed connection attempt
  into a sentence that says which setting to look at.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import Final

from heartsong.errors import ConfigError

__all__ = ["INSECURE_WARNING", "describe_connect_error", "read_password", "tls_context"]

#: Logged on every connect while host-name checking is off.
INSECURE_WARNING: Final = (
    "mqtt.tls_insecure = true: the broker's certificate is not checked against its host "
    "name, so another machine holding any certificate from the same CA can pose as the "
    "broker; set it to false once the certificate names the broker"
)

_SOURCE: Final = "<mqtt credentials>"


def read_password(password_file: str = "", password_env: str = "") -> str | None:
    """The broker password, from a file or an environment variable (None: no password).

    The file's content is the password; one trailing line break is removed (other white
    space is kept, it may be part of the password).

    Raises
    ------
    ConfigError
        Naming ``mqtt.password_file`` or ``mqtt.password_env`` (never the password) when
        both are set, the file cannot be read, or the variable is unset or empty.
    """
    if password_file and password_env:
        raise ConfigError(_SOURCE, "mqtt.password_env", password_env,
                          "set either mqtt.password_file or mqtt.password_env, not both")
    if password_file:
        try:
            with open(password_file, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(_SOURCE, "mqtt.password_file", password_file,
                              f"must be a readable UTF-8 file holding the password ({reason})"
                              ) from None
        password = text.removesuffix("\n").removesuffix("\r")
        if not password:
            raise ConfigError(_SOURCE, "mqtt.password_file", password_file,
                              "must hold the password (the file is empty)")
        return password
    if password_env:
        value = os.environ.get(password_env)
        if not value:
            raise ConfigError(_SOURCE, "mqtt.password_env", password_env,
                              "must name an environment variable holding the password "
                              "(it is unset or empty)")
        return value
    return None


def tls_context(
    ca_file: str = "", certfile: str = "", keyfile: str = "", *, insecure: bool = False
) -> ssl.SSLContext:
    """A client TLS context (TLS 1.2 or newer) that verifies the broker.

    Parameters
    ----------
    ca_file:
        PEM file of the CA certificate(s) that signed the broker's certificate; empty =
        the system's trust store.
    certfile, keyfile:
        Client certificate and its private key (PEM), for brokers that require one.
    insecure:
        Do not check the broker's host name against its certificate (the chain is still
        verified).

    Raises
    ------
    ConfigError
        Naming ``mqtt.ca_file`` or ``mqtt.certfile`` when a file is missing or not a
        certificate / key.
    """
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(_SOURCE, "mqtt.ca_file", ca_file,
                          f"must be a readable PEM file of CA certificates ({exc})") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if certfile:
        try:
            ctx.load_cert_chain(certfile, keyfile or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(_SOURCE, "mqtt.certfile", certfile,
                              "must be a readable PEM client certificate matching "
                              f"mqtt.keyfile ({exc})") from None
    if insecure:
        ctx.check_hostname = False
    return ctx


def describe_connect_error(exc: BaseException | None) -> tuple[str, str]:
    """Classify a failed connection attempt: (kind, sentence).

    ``kind`` is ``"tls"``, ``"dns"`` or ``"unreachable"``; the link reports each kind
    once per outage rather than once per retry.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = (exc.verify_message or str(exc)).rstrip(".")
        return "tls", (f"the broker's TLS certificate was refused: {why}; check mqtt.ca_file "
                       "(the CA that signed the broker's certificate) and mqtt.host")
    if isinstance(exc, ssl.SSLError):
        return "tls", (f"the TLS handshake with the broker failed: {exc.reason or exc}; "
                       "check mqtt.tls, mqtt.port and the client certificate")
    if isinstance(exc, socket.gaierror):
        return "dns", f"the broker's host name does not resolve ({exc.strerror or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return "unreachable", f"not reachable ({exc.strerror})"
    return "unreachable", "not reachable" if exc is None else f"not reachable ({exc})"
