"""The exception tree: one root, leaves that also subclass the builtin they resemble.

Modelled on gpiozero (``GPIOZeroError`` with ``PinInvalidPull(PinError, ValueError)``), so
callers can catch ``HeartsongError`` for "anything heartsong raised on purpose" or the
builtin for the generic meaning.
"""

from __future__ import annotations

import contextlib
import math
import re
from numbers import Real

#: The last part of a key that names a secret (``mqtt.password``; not ``password_env``).
_SECRET_KEY = re.compile(r"(?:^|[._])(?:pass(?:word)?|passphrase|secret|token|psk|api_?key)$",
                         re.IGNORECASE)


class HeartsongError(Exception):
    """Root of every error heartsong raises on purpose."""


class ConfigError(HeartsongError, ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range.

    Attributes
    ----------
    path:
        The file the value came from (``"<defaults>"`` or ``"<command line>"`` otherwise).
    key:
        Dotted key, e.g. ``"audio.volume_db"``.
    value:
        The offending value as written (``None`` when a key is missing or the file unreadable).
    expected:
        What would have been accepted, in words.
    """

    def __init__(self, path: str, key: str, value: object, expected: str) -> None:
        self.path = path
        self.key = key
        # A secret written where it does not belong (``mqtt.password = "..."``) must not
        # reach the journal through the error that refuses it.
        self.value = "<hidden>" if value is not None and _SECRET_KEY.search(key) else value
        self.expected = expected
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The single line printed by the CLI before it exits with code 2."""
        if self.key:
            return f"{self.path}: {self.key} = {self.value!r}: {self.expected}"
        return f"{self.path}: {self.expected}"


class InputDataError(HeartsongError, ValueError):
    """A recording, payload or byte string from outside is malformed.

    ``field`` names the column, byte or key that is wrong and ``expected`` what was wanted.
    """

    def __init__(self, field: str, expected: str, value: object = None) -> None:
        self.field = field
        self.expected = expected
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{field}: {expected}{shown}")


def check_number(field: str, value: object, low: float, high: float, unit: str = "") -> float:
    """``value`` as a float, or :class:`InputDataError` naming ``field`` and the range.

    A number is a finite real (an int, a float or a NumPy scalar) from ``low`` to ``high``
    inclusive, in ``unit``; a bool is not a number (TOML ``true`` is not ``1``).
    """
    x = math.nan
    if isinstance(value, Real) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an int too big for a float: out of range
            x = float(value)
    if not (math.isfinite(x) and low <= x <= high):
        shown = f" {unit}" if unit else ""
        raise InputDataError(field, f"a number from {low:g} to {high:g}{shown}", value)
    return x


class HardwareError(HeartsongError, OSError):
    """A hardware part (sensor, audio device, adapter) is missing or not answering."""


class SensorError(HardwareError):
    """The PPG sensor or a wearable failed in a way the driver could not recover from."""


class AudioDeviceError(HardwareError):
    """The audio output device cannot be opened or was lost."""
