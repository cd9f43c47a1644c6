"""The 0x2A37 parser against byte vectors written from the GATT specification, and fuzzed.

Vectors are packed here with ``struct`` straight from the field table (flags, uint8 or
uint16 heart rate, uint16 energy, uint16 RR intervals, little-endian), independently of
the fake strap's encoder; the fuzz test feeds random bytes to the parser (and
``test_ble_client.py`` sends them through the fake radio to the client).
"""

from __future__ import annotations

import itertools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartsong.errors import HeartsongError, InputDataError
from heartsong.sensors.ble_fake import build_hrm_payload
from heartsong.sensors.hrm_parse import (
    BODY_SENSOR_LOCATIONS,
    HeartRateMeasurement,
    HrmPayloadError,
    parse_battery_level,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
    parse_utf8_string,
    uuid16,
)


def spec_vector(
    flags: int, hr: int, energy: int | None = None, rr: tuple[int, ...] = ()
) -> bytes:
    """Pack a payload field by field as the specification's table lists them."""
    out = struct.pack("<B", flags)
    out += struct.pack("<H" if flags & 0x01 else "<B", hr)
    if flags & 0x08:
        assert energy is not None
        out += struct.pack("<H", energy)
    if flags & 0x10:
        out += struct.pack(f"<{len(rr)}H", *rr)
    return out


# Every combination of the five defined flag bits (format, contact detected, contact
# supported, energy present, RR present) -- 32 payloads.
ALL_FLAGS = [
    (b0 | b1 | b2 | b3 | b4)
    for b0, b1, b2, b3, b4 in itertools.product((0, 1), (0, 2), (0, 4), (0, 8), (0, 16))
]


@pytest.mark.parametrize("flags", ALL_FLAGS, ids=[f"flags=0x{f:02x}" for f in ALL_FLAGS])
def test_every_flag_combination_decodes_per_the_specification(flags: int) -> None:
    hr = 0x0123 if flags & 0x01 else 0x5A  # 291 bpm needs 16 bits; 90 bpm fits 8
    rr = (0x0321, 0x0400, 0x02F0)  # 801, 1024, 752 ticks of 1/1024 s
    data = spec_vector(flags, hr, energy=0xBEEF, rr=rr)
    m = parse_heart_rate_measurement(data)
    assert m.hr_bpm == hr
    assert m.hr_uint16 == bool(flags & 0x01)
    # contact status: 0b0x = not supported, 0b10 = supported/no contact, 0b11 = contact
    assert m.contact_supported == bool(flags & 0x04)
    assert m.contact_detected == (flags & 0x06 == 0x06)
    assert m.contact == (flags & 0x06 != 0x04)
    assert m.energy_kj == (0xBEEF if flags & 0x08 else None)
    assert m.rr_ticks == (rr if flags & 0x10 else ())
    expected_len = 1 + (2 if flags & 0x01 else 1) + (2 if flags & 0x08 else 0)
    expected_len += 2 * len(rr) if flags & 0x10 else 0
    assert len(data) == expected_len


def test_known_strap_payloads() -> None:
    # flags 0x16: uint8 HR, contact supported + detected, RR present; 64 bpm, 2 intervals
    m = parse_heart_rate_measurement(bytes.fromhex("16 40 c0 03 b8 03"))
    assert (m.hr_bpm, m.contact, m.rr_ticks) == (64, True, (0x03C0, 0x03B8))
    assert m.rr_ms == pytest.approx((937.5, 929.6875))  # 960/1024 s, 952/1024 s
    # flags 0x00: only an 8-bit heart rate
    assert parse_heart_rate_measurement(b"\x00\x48") == HeartRateMeasurement(hr_bpm=72)
    # flags 0x04: contact supported but not detected (straps send HR 0 then)
    m = parse_heart_rate_measurement(b"\x04\x00")
    assert m.contact_supported and not m.contact_detected and not m.contact
    # flags 0x02 alone: the contact feature is not supported, so "detected" means nothing
    m = parse_heart_rate_measurement(b"\x02\x48")
    assert not m.contact_supported and not m.contact_detected and m.contact


def test_sixteen_bit_heart_rates_are_little_endian() -> None:
    for hr in (0, 1, 0xFF, 0x100, 0x1F4, 0xFFFF):
        m = parse_heart_rate_measurement(struct.pack("<BH", 0x01, hr))
        assert m.hr_bpm == hr and m.hr_uint16
    # the same 255 bpm, either format
    assert parse_heart_rate_measurement(b"\x00\xff").hr_bpm == 255
    assert parse_heart_rate_measurement(b"\x01\xff\x00").hr_bpm == 255
    assert parse_heart_rate_measurement(b"\x01\x00\x01").hr_bpm == 256


def test_many_rr_intervals_in_one_notification() -> None:
    rr = tuple(range(300, 1200, 100))  # 9 intervals
    data = spec_vector(0x1F, 0x0041, energy=12, rr=rr)
    m = parse_heart_rate_measurement(data)
    assert m.rr_ticks == rr
    assert m.energy_kj == 12
    assert m.rr_ms == tuple(t * 1000 / 1024 for t in rr)
    # the largest interval the field can carry: 65535/1024 s
    assert parse_heart_rate_measurement(b"\x10\x30\xff\xff").rr_ticks == (0xFFFF,)


def test_reserved_flag_bits_are_ignored() -> None:
    base = parse_heart_rate_measurement(spec_vector(0x16, 60, rr=(1000,)))
    for reserved in (0x20, 0x40, 0x80, 0xE0):
        assert parse_heart_rate_measurement(spec_vector(0x16 | reserved, 60, rr=(1000,))) == base


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"", "byte 0 (flags)"),
        (b"\x00", "byte 1 (heart rate, uint8)"),
        (b"\x01\x48", "bytes 1-2 (heart rate, uint16)"),
        (b"\x08\x48\x10", "bytes 2-3 (energy expended"),
        (b"\x09\x48\x00", "bytes 3-4 (energy expended"),
        (b"\x10\x48", "bytes 2-3 (RR-interval 1)"),
        (b"\x10\x48\x00\x04\x10", "byte 4 (RR-interval 2)"),
        (b"\x18\x48\x01\x00\x00\x04\x00\x00", "bytes 6-7 (RR-interval 2)"),
        (b"\x00\x48\x00", "byte 2 (after the last field)"),
        (b"\x08\x48\x01\x00\xaa\xbb", "bytes 4-5 (after the last field)"),
    ],
)
def test_malformed_payloads_name_the_byte_and_field(payload: bytes, field: str) -> None:
    with pytest.raises(HrmPayloadError) as info:
        parse_heart_rate_measurement(payload)
    err = info.value
    assert isinstance(err, InputDataError | HeartsongError | ValueError)
    assert isinstance(err, ValueError) and isinstance(err, HeartsongError)
    assert err.field.startswith("0x2A37 ")
    assert field in err.field, err.field
    assert err.value == payload.hex(" ")
    assert field in str(err)


def test_other_characteristics() -> None:
    assert parse_body_sensor_location(b"\x01") == "chest"
    assert parse_body_sensor_location(b"\x02") == "wrist"
    assert [parse_body_sensor_location(bytes([i])) for i in range(7)] == list(
        BODY_SENSOR_LOCATIONS
    )
    assert parse_body_sensor_location(b"\x09") == "reserved (9)"
    assert parse_battery_level(b"\x00") == 0 and parse_battery_level(b"\x64") == 100
    assert parse_utf8_string(b"Polar\x00") == "Polar"
    assert parse_utf8_string("Kardiø H9 ".encode()) == "Kardiø H9"
    for bad, reader in (
        (b"", parse_body_sensor_location),
        (b"\x01\x02", parse_body_sensor_location),
        (b"\x65", parse_battery_level),
        (b"", parse_battery_level),
        (b"\xff\xfe", parse_utf8_string),
    ):
        with pytest.raises(HrmPayloadError):
            reader(bad)
    assert uuid16(0x2A37) == "00002a37-0000-1000-8000-00805f9b34fb"


def test_the_fake_strap_encoder_agrees_with_the_specification_vectors() -> None:
    assert build_hrm_payload(64, (960, 952)) == bytes.fromhex("16 40 c0 03 b8 03")
    assert build_hrm_payload(300, (), contact=None, hr_uint16=True) == spec_vector(0x01, 300)
    assert build_hrm_payload(0, contact=False) == spec_vector(0x04, 0)
    assert build_hrm_payload(70, (800,), energy_kj=5) == spec_vector(0x1E, 70, 5, (800,))


# --------------------------------------------------------------------------- fuzzing


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=24))
def test_random_bytes_parse_or_raise_the_payload_error(data: bytes) -> None:
    try:
        m = parse_heart_rate_measurement(data)
    except HrmPayloadError as exc:
        assert exc.field.startswith("0x2A37 byte")
        return
    # whatever parsed accounts for every byte, exactly as the flags say
    flags = data[0]
    size = 1 + (2 if flags & 0x01 else 1) + (2 if flags & 0x08 else 0) + 2 * len(m.rr_ticks)
    assert size == len(data)
    assert bool(m.rr_ticks) == bool(flags & 0x10)
    assert all(t > 0 for t in m.rr_ticks)
    hr_bytes = data[1:3] if flags & 0x01 else data[1:2]
    assert m.hr_bpm == int.from_bytes(hr_bytes, "little")
