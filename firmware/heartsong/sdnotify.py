"""systemd service notifications (``sd_notify``), written by the appliance itself.

systemd (``Type=notify``) passes the address of a datagram socket in ``$NOTIFY_SOCKET``: a
file-system path, or an abstract socket written with a leading ``@``. The service sends
newline-separated ``KEY=VALUE`` lines: ``READY=1`` once it serves, ``STATUS=...`` for
``systemctl status``, ``WATCHDOG=1`` at least every ``WatchdogSec`` (systemd passes it as
``$WATCHDOG_USEC``, in microseconds) and ``STOPPING=1`` when it shuts down. See
sd_notify(3) and systemd.service(5) (``WatchdogSec=``).

The watchdog is kept from the appliance's asyncio loop (:func:`watchdog_pings`), never
from a thread: when the loop hangs, the pings stop and systemd restarts the service.
Sending never raises; a failure is logged once (a lost notification must not stop the
device).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

__all__ = ["SdNotifier", "watchdog_interval_s", "watchdog_pings"]

log = logging.getLogger(__name__)


def _address(name: str) -> str:
    """The socket address for ``$NOTIFY_SOCKET`` (``@name`` = Linux abstract namespace)."""
    return "\0" + name[1:] if name.startswith("@") else name


def watchdog_interval_s(
    env: Mapping[str, str] | None = None, pid: int | None = None
) -> float | None:
    """Seconds between watchdog pings: half of ``$WATCHDOG_USEC``, or None for no watchdog.

    ``$WATCHDOG_PID``, when set, must be this process (``pid``, default ``os.getpid()``):
    the watchdog was meant for another process otherwise.
    """
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    return int(usec) / 2e6


class SdNotifier:
    """Sends ``sd_notify`` messages to ``$NOTIFY_SOCKET``; does nothing without one.

    Parameters
    ----------
    address:
        The socket name as systemd writes it (a path or ``@abstract``), or None / empty
        when the process was not started by systemd with ``Type=notify``.
    """

    def __init__(self, address: str | None) -> None:
        self.address = address or None
        self.sent = 0
        self._failed = False
        self._sock: socket.socket | None = None
        if self.address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SdNotifier:
        """The notifier for ``$NOTIFY_SOCKET`` (a no-op one when it is not set)."""
        env = os.environ if env is None else env
        return cls(env.get("NOTIFY_SOCKET"))

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self._sock is not None

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; True when it was sent."""
        if self._sock is None or self.address is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode("utf-8"), _address(self.address))
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
                self._failed = True
            return False
        self.sent += 1
        return True

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (with a status line): start-up is done, the device serves."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """``STATUS=...``: one line shown by ``systemctl status``."""
        return self.notify("STATUS=" + text.replace("\n", " "))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the service is alive."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        """``STOPPING=1``: a clean shutdown has begun."""
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        """Close the socket (safe to call twice)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __repr__(self) -> str:
        return f"<SdNotifier {self.address or 'off'} sent={self.sent}>"


async def watchdog_pings(
    notifier: SdNotifier,
    interval_s: float,
    healthy: Callable[[], bool] | None = None,
) -> None:
    """Send ``WATCHDOG=1`` every ``interval_s`` seconds from this event loop, until cancelled.

    Run it as a task on the appliance's loop: a loop that hangs (a blocking call, a busy
    callback) sends nothing, so systemd notices and restarts the service. ``healthy``,
    when given, is asked before each ping; a False answer skips that ping (for a part
    that is stuck while the loop still turns).
    """
    while True:
        if healthy is None or healthy():
            notifier.watchdog()
        else:
            log.warning("watchdog ping withheld: the appliance reports itself unhealthy")
        await asyncio.sleep(interval_s)
