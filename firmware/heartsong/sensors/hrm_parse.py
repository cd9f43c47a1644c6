"""Parsers for the Bluetooth Heart Rate Service characteristics, byte for byte per the spec.

The Heart Rate Measurement characteristic (0x2A37) is laid out as the Bluetooth SIG's
*Heart Rate Service 1.0* (2011) and the *GATT Specification Supplement* (section
"Heart Rate Measurement") define it, all fields little-endian::

    byte 0      Flags
                  bit 0     heart-rate value format: 0 = uint8, 1 = uint16
                  bits 1-2  sensor contact status: 0b00 / 0b01 = not supported,
                            0b10 = supported, no contact; 0b11 = supported, contact
                            (bit 1 = "detected", bit 2 = "supported")
                  bit 3     Energy Expended field present
                  bit 4     one or more RR-Interval values present
                  bits 5-7  reserved for future use (ignored by a receiver)
    1 or 2 B    Heart Rate Measurement Value, beats/min
    2 B         Energy Expended, kJ since the last reset (0xFFFF = saturated), if bit 3
    2 B each    RR-Interval, in 1/1024 s, oldest first, as many as fit, if bit 4

A payload that breaks this layout raises :class:`HrmPayloadError`, which names the byte
and the field; nothing else is ever raised for bytes from the air. The other
characteristics a strap offers are here too: Body Sensor Location (0x2A38), Battery
Level (0x2A19) and the Device Information Service strings (0x2A24-0x2A29).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from heartsong.errors import InputDataError

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BODY_SENSOR_LOCATIONS",
    "BODY_SENSOR_LOCATION_UUID",
    "DEVICE_INFO_UUIDS",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "RR_TICKS_PER_S",
    "HeartRateMeasurement",
    "HrmPayloadError",
    "parse_battery_level",
    "parse_body_sensor_location",
    "parse_heart_rate_measurement",
    "parse_utf8_string",
    "uuid16",
]


def uuid16(short: int) -> str:
    """The 128-bit UUID string of a 16-bit SIG-assigned UUID (Bluetooth base UUID)."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


#: Heart Rate Service.
HEART_RATE_SERVICE_UUID: Final = uuid16(0x180D)
#: Heart Rate Measurement characteristic (notify).
HEART_RATE_MEASUREMENT_UUID: Final = uuid16(0x2A37)
#: Body Sensor Location characteristic (read, uint8 enumeration).
BODY_SENSOR_LOCATION_UUID: Final = uuid16(0x2A38)
#: Battery Level characteristic of the Battery Service (read, uint8 percent).
BATTERY_LEVEL_UUID: Final = uuid16(0x2A19)
#: Device Information Service strings (utf8s), by the name heartsong reports them under.
DEVICE_INFO_UUIDS: Final = {
    "manufacturer": uuid16(0x2A29),
    "model": uuid16(0x2A24),
    "serial": uuid16(0x2A25),
    "hardware": uuid16(0x2A27),
    "firmware": uuid16(0x2A26),
    "software": uuid16(0x2A28),
}
#: Body Sensor Location values (Heart Rate Service 1.0, section 3.2); 7-255 are reserved.
BODY_SENSOR_LOCATIONS: Final = ("other", "chest", "wrist", "finger", "hand", "ear lobe", "foot")
#: RR-interval resolution of the Heart Rate Measurement, in ticks per second.
RR_TICKS_PER_S: Final = 1024

_FLAG_HR_UINT16: Final = 0x01
_FLAG_CONTACT_DETECTED: Final = 0x02
_FLAG_CONTACT_SUPPORTED: Final = 0x04
_FLAG_ENERGY: Final = 0x08
_FLAG_RR: Final = 0x10


class HrmPayloadError(InputDataError):
    """A characteristic value from a wearable does not follow the specification.

    Attributes
    ----------
    field:
        The byte range and field that is wrong, e.g. ``"0x2A37 bytes 3-4 (RR-interval 1)"``.
    expected:
        What the specification requires there.
    value:
        The payload as a hex string.
    """


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One decoded Heart Rate Measurement notification (0x2A37).

    Attributes
    ----------
    hr_bpm:
        Heart rate the wearable computed, in beats per minute (0 is what many straps send
        without skin contact).
    hr_uint16:
        True when the value was sent in the 16-bit format (flags bit 0).
    contact_supported:
        The wearable reports skin contact (flags bit 2).
    contact_detected:
        Skin contact, as reported (flags bit 1); False when not supported.
    energy_kj:
        Energy expended since the wearable's last reset, in kJ, or None if absent.
    rr_ticks:
        RR intervals in units of 1/1024 s, oldest first (each > 0).
    """

    hr_bpm: int
    hr_uint16: bool = False
    contact_supported: bool = False
    contact_detected: bool = False
    energy_kj: int | None = None
    rr_ticks: tuple[int, ...] = ()

    @property
    def contact(self) -> bool:
        """True unless the wearable supports contact detection and reports no contact."""
        return self.contact_detected or not self.contact_supported

    @property
    def rr_ms(self) -> tuple[float, ...]:
        """The RR intervals in milliseconds (``ticks * 1000 / 1024``, exact in binary)."""
        return tuple(t * 1000.0 / RR_TICKS_PER_S for t in self.rr_ticks)


def _hex(data: bytes) -> str:
    return data.hex(" ")


def _fail(data: bytes, first: int, last: int, name: str, expected: str) -> HrmPayloadError:
    where = f"byte {first}" if first == last else f"bytes {first}-{last}"
    return HrmPayloadError(f"0x2A37 {where} ({name})", expected, _hex(data))


def parse_heart_rate_measurement(data: bytes | bytearray | memoryview) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (0x2A37) value exactly as the specification lays it out.

    Parameters
    ----------
    data:
        The characteristic value as notified (any bytes-like object).

    Returns
    -------
    HeartRateMeasurement
        The decoded fields; the reserved flag bits 5-7 are ignored, as the Bluetooth
        Core Specification requires of a receiver.

    Raises
    ------
    HrmPayloadError
        The payload is empty, a field the flags announce is missing or cut short, the
        RR-interval field is empty or not a whole number of uint16 values, an
        RR-interval is 0, or bytes follow the last field the flags announce.
    """
    raw = bytes(data)
    n = len(raw)
    if n == 0:
        raise HrmPayloadError("0x2A37 byte 0 (flags)", "a flags byte; the payload is empty", "")
    flags = raw[0]
    pos = 1
    if flags & _FLAG_HR_UINT16:
        if n < pos + 2:
            raise _fail(
                raw, pos, pos + 1, "heart rate, uint16",
                f"2 bytes since flags bit 0 is set; the payload ends at byte {n - 1}",
            )
        hr = int.from_bytes(raw[pos : pos + 2], "little")
        pos += 2
    else:
        if n < pos + 1:
            raise _fail(raw, pos, pos, "heart rate, uint8", "1 byte; the payload ends at byte 0")
        hr = raw[pos]
        pos += 1
    energy: int | None = None
    if flags & _FLAG_ENERGY:
        if n < pos + 2:
            raise _fail(
                raw, pos, pos + 1, "energy expended, uint16 kJ",
                f"2 bytes since flags bit 3 is set; the payload ends at byte {n - 1}",
            )
        energy = int.from_bytes(raw[pos : pos + 2], "little")
        pos += 2
    rr: tuple[int, ...] = ()
    if flags & _FLAG_RR:
        rest = n - pos
        if rest == 0:
            raise _fail(
                raw, pos, pos + 1, "RR-interval 1",
                "at least one uint16 RR-interval since flags bit 4 is set; none follow",
            )
        if rest % 2:
            raise _fail(
                raw, n - 1, n - 1, f"RR-interval {rest // 2 + 1}",
                "whole uint16 RR-intervals; the last one is cut to 1 byte",
            )
        values = []
        for k in range(rest // 2):
            at = pos + 2 * k
            tick = int.from_bytes(raw[at : at + 2], "little")
            if tick == 0:
                raise _fail(
                    raw, at, at + 1, f"RR-interval {k + 1}",
                    "an interval > 0 in 1/1024 s, not 0",
                )
            values.append(tick)
        rr = tuple(values)
        pos = n
    if pos != n:
        raise _fail(
            raw, pos, n - 1, "after the last field",
            f"nothing: flags 0x{flags:02x} announce {pos} bytes, the payload has {n}",
        )
    return HeartRateMeasurement(
        hr_bpm=hr,
        hr_uint16=bool(flags & _FLAG_HR_UINT16),
        contact_supported=bool(flags & _FLAG_CONTACT_SUPPORTED),
        contact_detected=bool(flags & _FLAG_CONTACT_SUPPORTED and flags & _FLAG_CONTACT_DETECTED),
        energy_kj=energy,
        rr_ticks=rr,
    )


def parse_body_sensor_location(data: bytes | bytearray | memoryview) -> str:
    """Decode Body Sensor Location (0x2A38): ``"chest"``, ``"wrist"``, ... or ``"reserved (N)"``.

    Raises
    ------
    HrmPayloadError
        The value is not exactly one byte.
    """
    raw = bytes(data)
    if len(raw) != 1:
        raise HrmPayloadError(
            "0x2A38 byte 0 (body sensor location)", "exactly 1 byte (uint8)", _hex(raw)
        )
    code = raw[0]
    if code < len(BODY_SENSOR_LOCATIONS):
        return BODY_SENSOR_LOCATIONS[code]
    return f"reserved ({code})"


def parse_battery_level(data: bytes | bytearray | memoryview) -> int:
    """Decode Battery Level (0x2A19), in percent of full charge (0-100).

    Raises
    ------
    HrmPayloadError
        The value is not one byte, or above 100 (101-255 are prohibited).
    """
    raw = bytes(data)
    if len(raw) != 1 or raw[0] > 100:
        raise HrmPayloadError(
            "0x2A19 byte 0 (battery level)", "exactly 1 byte with a percentage 0-100", _hex(raw)
        )
    return raw[0]


def parse_utf8_string(data: bytes | bytearray | memoryview, name: str = "string") -> str:
    """Decode a Device Information string (utf8s): trailing NULs and blanks removed.

    Raises
    ------
    HrmPayloadError
        The bytes are not UTF-8.
    """
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HrmPayloadError(
            f"{name} byte {exc.start}", "UTF-8 text (utf8s)", _hex(raw)
        ) from None
    return text.rstrip("\x00").strip()
