"""Reusable checks that configuration schemas are built from (ranges, one-of, patterns, ...).

In the spirit of ESPHome's ``config_validation``: each check validates and normalises one
value, says in words what it allows (``allowed``, used both in error messages and in the
documented example file) and writes an accepted value back as TOML (``render``). A failed
check raises :class:`CheckError` carrying only *what was expected*; the loader in
:mod:`heartsong.config` adds the file and the dotted key to make a
:class:`~heartsong.errors.ConfigError`.

Type rules follow TOML rather than Python: an integer is accepted where a number (float)
is expected, but a boolean is never a number (TOML ``true`` is not ``1``).
"""

from __future__ import annotations

import abc
import datetime as dt
import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import Field
from typing import Any, NoReturn

__all__ = [
    "Boolean",
    "Check",
    "CheckError",
    "ClockTime",
    "FilePath",
    "Hostname",
    "Integer",
    "MacAddress",
    "MqttTopic",
    "Number",
    "OneOf",
    "OrUnset",
    "Pattern",
    "Text",
    "field_check",
    "field_doc",
    "setting",
    "toml_value",
]


class CheckError(ValueError):
    """A value failed a check; ``expected`` says what would have been accepted."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


# --------------------------------------------------------------------------- TOML output

_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    """Quote ``text`` as a TOML basic string, escaping quotes and control characters."""
    out: list[str] = []
    for ch in text:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(value: object) -> str:
    """Write a scalar (bool, int, float or str) as a TOML value that parses back equal.

    Raises
    ------
    TypeError
        For any other type (tables and arrays are not configuration values here).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # shortest repr that round-trips; always has "." or "e"
    if isinstance(value, str):
        return _toml_string(text=value)
    raise TypeError(f"cannot write {type(value).__name__} as a TOML value")


def _num(x: float) -> str:
    """Format a bound compactly: ``-60`` rather than ``-60.0``, ``0.1`` stays ``0.1``."""
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


# --------------------------------------------------------------------------- base


class Check(abc.ABC):
    """Validate and normalise one configuration value."""

    @property
    @abc.abstractmethod
    def allowed(self) -> str:
        """What the check accepts, in words, e.g. ``"a number from -60 to 0 (dB)"``."""

    @abc.abstractmethod
    def __call__(self, value: object) -> object:
        """Return the normalised value, or raise :class:`CheckError`."""

    def render(self, value: object) -> str:
        """Write an accepted value as TOML."""
        return toml_value(value)

    def _reject(self) -> NoReturn:
        raise CheckError(f"must be {self.allowed}")


# --------------------------------------------------------------------------- pieces


class Boolean(Check):
    """``true`` or ``false``; no numbers or strings."""

    @property
    def allowed(self) -> str:
        return "true or false"

    def __call__(self, value: object) -> bool:
        if not isinstance(value, bool):
            self._reject()
        return value


class Integer(Check):
    """An integer in ``[lo, hi]``; floats and booleans are refused.

    Parameters
    ----------
    lo, hi:
        Inclusive bounds, in ``unit``.
    unit:
        Unit named in messages, e.g. ``"s"``.
    hex_digits:
        When non-zero, bounds and values are written in hex with this many digits (for
        register addresses such as ``0x57``).
    """

    def __init__(self, lo: int, hi: int, unit: str = "", *, hex_digits: int = 0) -> None:
        self.lo, self.hi, self.unit, self.hex_digits = lo, hi, unit, hex_digits

    def _fmt(self, x: int) -> str:
        return f"0x{x:0{self.hex_digits}X}" if self.hex_digits else str(x)

    @property
    def allowed(self) -> str:
        return f"an integer from {self._fmt(self.lo)} to {self._fmt(self.hi)}{_unit(self.unit)}"

    def __call__(self, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self._reject()
        if not self.lo <= value <= self.hi:
            self._reject()
        return value

    def render(self, value: object) -> str:
        if self.hex_digits and isinstance(value, int) and not isinstance(value, bool):
            return self._fmt(value)
        return toml_value(value)


class Number(Check):
    """A finite number in ``[lo, hi]``, returned as float; integers accepted, booleans not."""

    def __init__(self, lo: float, hi: float, unit: str = "") -> None:
        self.lo, self.hi, self.unit = lo, hi, unit

    @property
    def allowed(self) -> str:
        return f"a number from {_num(self.lo)} to {_num(self.hi)}{_unit(self.unit)}"

    def __call__(self, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._reject()
        # Compare before converting: a huge int would overflow float(), NaN fails here.
        if not self.lo <= value <= self.hi:
            self._reject()
        return float(value)


class OneOf(Check):
    """One of a fixed set of strings or of integers (never a bool for an integer set)."""

    def __init__(self, choices: Sequence[str] | Sequence[int], unit: str = "") -> None:
        kinds = {type(c) for c in choices}
        if not choices or len(kinds) != 1 or not kinds <= {str, int}:
            raise TypeError("OneOf needs a non-empty set of only str or only int choices")
        self.choices: tuple[str | int, ...] = tuple(choices)
        self.kind: type = kinds.pop()
        self.unit = unit

    @property
    def allowed(self) -> str:
        shown = ", ".join(toml_value(c) for c in self.choices)
        return f"one of {shown}{_unit(self.unit)}"

    def __call__(self, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            self._reject()
        if value not in self.choices:
            self._reject()
        return value


class Text(Check):
    """Printable text (no control characters) of ``min_len`` to ``max_len`` characters."""

    def __init__(self, min_len: int = 0, max_len: int = 256, what: str = "text") -> None:
        self.min_len, self.max_len, self.what = min_len, max_len, what

    @property
    def allowed(self) -> str:
        if self.min_len == 0:
            return f"{self.what} of at most {self.max_len} printable characters"
        return f"{self.what} of {self.min_len} to {self.max_len} printable characters"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value.isprintable():
            self._reject()
        if not self.min_len <= len(value) <= self.max_len:
            self._reject()
        return value


class Pattern(Check):
    """A string that matches a regular expression as a whole.

    Parameters
    ----------
    regex:
        Pattern the whole value must match (``re.fullmatch``, so ``$`` cannot match
        before a trailing newline).
    what:
        The rule in words, shown before the pattern in messages.
    allow_empty:
        Also accept ``""`` (meaning "not configured").
    """

    def __init__(self, regex: str, what: str, *, allow_empty: bool = False) -> None:
        self.regex = re.compile(regex)
        self.what = what
        self.allow_empty = allow_empty

    @property
    def allowed(self) -> str:
        empty = '"" or ' if self.allow_empty else ""
        return f"{empty}{self.what} (matching {self.regex.pattern})"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            self._reject()
        if value == "" and self.allow_empty:
            return value
        if self.regex.fullmatch(value) is None:
            self._reject()
        return value


class MacAddress(Check):
    """A Bluetooth MAC ``AA:BB:CC:DD:EE:FF`` (any case, stored upper-case) or ``""``."""

    _RE = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")

    @property
    def allowed(self) -> str:
        return '"" or a MAC address like "AA:BB:CC:DD:EE:FF"'

    def __call__(self, value: object) -> str:
        if not isinstance(value, str):
            self._reject()
        if value and self._RE.fullmatch(value) is None:
            self._reject()
        return value.upper()


class FilePath(Check):
    """A file-system path written as printable text; existence is not checked here.

    Whether the file exists is a property of the machine, not of the configuration, so
    ``heartsong doctor`` checks it, not the loader.
    """

    def __init__(self, *, absolute: bool = False, allow_empty: bool = True) -> None:
        self.absolute, self.allow_empty = absolute, allow_empty

    @property
    def allowed(self) -> str:
        kind = "an absolute path" if self.absolute else "a path"
        return f'"" or {kind}' if self.allow_empty else kind

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value.isprintable():
            self._reject()
        if value == "":
            if not self.allow_empty:
                self._reject()
            return value
        if self.absolute and not value.startswith("/"):
            self._reject()
        return value


class Hostname(Check):
    """A DNS host name (RFC 1123 labels) or an IPv4/IPv6 address."""

    _LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

    @property
    def allowed(self) -> str:
        return "a host name or an IP address"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            self._reject()
        try:
            ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            return value
        name = value.removesuffix(".")
        if len(name) > 253 or not all(self._LABEL.fullmatch(p) for p in name.split(".")):
            self._reject()
        return value


class MqttTopic(Check):
    """An MQTT topic prefix: non-empty levels, no ``+``/``#`` wildcards, no outer ``/``."""

    @property
    def allowed(self) -> str:
        return "an MQTT topic without + or #, empty levels or a leading or trailing /"

    def __call__(self, value: object) -> str:
        if not isinstance(value, str) or not value.isprintable():
            self._reject()
        if not value or len(value.encode()) > 1024 or any(c in value for c in "+#"):
            self._reject()
        if "" in value.split("/"):  # leading, trailing or doubled "/"
            self._reject()
        return value


class ClockTime(Check):
    """A local time of day ``"HH:MM"`` (a TOML local time ``22:30:00`` is accepted too)."""

    _RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")

    @property
    def allowed(self) -> str:
        return 'a time of day "HH:MM" from "00:00" to "23:59"'

    def __call__(self, value: object) -> str:
        if isinstance(value, dt.time) and value.tzinfo is None:
            if value.second or value.microsecond:
                self._reject()
            return f"{value.hour:02d}:{value.minute:02d}"
        if not isinstance(value, str) or self._RE.fullmatch(value) is None:
            self._reject()
        return value


class OrUnset(Check):
    """The inner check, or not set (``None``): the key left out of the file (when its default
    is unset) or written ``false`` (to unset a key whose default is set, e.g. a pin that is
    not wired)."""

    def __init__(self, inner: Check) -> None:
        self.inner = inner

    @property
    def allowed(self) -> str:
        return f"{self.inner.allowed}, or false for not set"

    def __call__(self, value: object) -> object:
        if value is None or value is False:
            return None
        try:
            return self.inner(value)
        except CheckError:
            self._reject()

    def render(self, value: object) -> str:
        return self.inner.render(value)


# --------------------------------------------------------------------------- field metadata


def setting(check: Check, doc: str) -> Mapping[str, object]:
    """Metadata for a configuration dataclass field: its check and its one-line doc.

    Use as ``field(default=..., metadata=setting(Number(0, 1), "Stress level (0..1)."))``.
    """
    return {"check": check, "doc": doc}


def field_check(f: Field[Any]) -> Check:
    """The :class:`Check` stored on a field by :func:`setting`."""
    check = f.metadata.get("check")
    if not isinstance(check, Check):
        raise TypeError(f"field {f.name!r} has no configuration check")
    return check


def field_doc(f: Field[Any]) -> str:
    """The doc string stored on a field by :func:`setting`."""
    return str(f.metadata.get("doc", ""))
