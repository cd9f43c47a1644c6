"""GPIO pin assignments: BCM numbers, each used once, never a bus the device needs.

The Raspberry Pi's 40-pin header exposes BCM GPIO 0..27. Some of them belong to buses
this device uses and must not be taken by a button or LED:

* GPIO 2/3 are I2C1 SDA/SCL, where the MAX30102 sits (``dtparam=i2c_arm=on``);
* GPIO 18/19/20/21 are the PCM/I2S clock, frame, input and output lines of the
  MAX98357A amplifier (``dtoverlay=hifiberry-dac`` or ``max98357a``);
* GPIO 0/1 are ID_SD/ID_SC, the HAT identification EEPROM bus, read at boot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from heartsong.errors import ConfigError

__all__ = ["GPIO_MAX", "GPIO_MIN", "RESERVED_PINS", "pin_problem", "validate_pins"]

#: Lowest and highest BCM GPIO number on the 40-pin header.
GPIO_MIN: Final = 0
GPIO_MAX: Final = 27

#: BCM number -> what the pin is reserved for.
RESERVED_PINS: Final[Mapping[int, str]] = {
    0: "the HAT ID EEPROM (ID_SD)",
    1: "the HAT ID EEPROM (ID_SC)",
    2: "I2C1 SDA (the pulse sensor)",
    3: "I2C1 SCL (the pulse sensor)",
    18: "I2S BCLK (the amplifier)",
    19: "I2S LRCLK (the amplifier)",
    20: "I2S DIN",
    21: "I2S DOUT (the amplifier's data)",
}


def pin_problem(assignments: Mapping[str, int | None]) -> tuple[str, object, str] | None:
    """The first problem in a set of pin assignments, or None when they are all usable.

    Parameters
    ----------
    assignments:
        Dotted configuration key (``"controls.play_pin"``) -> BCM GPIO number, or None
        for a part that is not fitted. Order matters only for which key is blamed:
        a pin used twice is reported at its second key.

    Returns
    -------
    tuple or None
        ``(key, value, expected)`` naming the key to blame, its value and what would be
        accepted (the shape of :class:`~heartsong.errors.ConfigError`'s fields).
    """
    used: dict[int, str] = {}
    for key, pin in assignments.items():
        if pin is None:
            continue
        if isinstance(pin, bool) or not isinstance(pin, int):
            return key, pin, f"must be a BCM GPIO number from {GPIO_MIN} to {GPIO_MAX}"
        if not GPIO_MIN <= pin <= GPIO_MAX:
            return key, pin, f"must be a BCM GPIO number from {GPIO_MIN} to {GPIO_MAX}"
        if pin in RESERVED_PINS:
            return key, pin, f"must not be GPIO {pin}: it is {RESERVED_PINS[pin]}"
        if pin in used:
            return key, pin, f"must differ from {used[pin]} = {pin} (a pin can do one job)"
        used[pin] = key
    return None


def validate_pins(assignments: Mapping[str, int | None], source: str) -> None:
    """Raise :class:`~heartsong.errors.ConfigError` for the first unusable pin.

    ``source`` names where the assignments came from (the configuration file's path).
    """
    problem = pin_problem(assignments)
    if problem is not None:
        raise ConfigError(source, *problem)
