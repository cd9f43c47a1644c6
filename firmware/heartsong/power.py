"""Powering the device off after a safe shutdown (the play button held for seconds).

The appliance first stops cleanly (sound faded, store and MQTT flushed), then asks logind
to power off with ``systemctl poweroff``. As the unprivileged ``heartsong`` user this is
allowed by one polkit rule (``hw/polkit-heartsong.rules``, installed by
``tools/install-pi.sh``); without it, logind refuses and the service simply stays stopped.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

#: The command that asks logind (over D-Bus) to power the machine off.
POWER_OFF_COMMAND: tuple[str, ...] = ("systemctl", "poweroff")

Runner = Callable[..., subprocess.CompletedProcess[str]]


def power_off(
    command: Sequence[str] = POWER_OFF_COMMAND,
    run: Runner = subprocess.run,
    timeout_s: float = 30.0,
) -> bool:
    """Ask the system to power off; True when the request was accepted.

    Never raises: a refusal (no polkit rule, not under systemd) is logged with the reason
    and how to allow it.
    """
    try:
        proc = run(list(command), capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.error("cannot power off (%s): %s", " ".join(command), exc)
        return False
    if proc.returncode != 0:
        log.error(
            "power-off refused (%s exited %d: %s); install hw/polkit-heartsong.rules "
            "(tools/install-pi.sh does) to allow the service to power the device off",
            " ".join(command), proc.returncode, (proc.stderr or "").strip(),
        )
        return False
    log.info("powering off")
    return True
