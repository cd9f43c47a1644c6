"""Fuzzing 0x2A37 Heart Rate Measurement payloads through the whole strap path.

``tests/test_hrm_parse.py`` fuzzes the parser with random bytes, and
``tests/test_ble_beats.py`` the beat timeline with well-behaved RR ticks (1-3000). Here
the payloads are structure-aware and extreme: every flag combination, 8- and 16-bit
heart rates (0 to 65535), RR intervals anywhere in 1-65535 ticks (1 ms to 64 s), energy
fields, then truncated, extended or bit-flipped, with arrival times that may repeat or
jump. Each goes parser -> beat timeline -> streaming DSP -> metrics, as in the appliance.
The promise: a payload is refused with :class:`HrmPayloadError` or the DSP refuses the
block with :class:`InputDataError` (the appliance counts and drops both), never another
exception; metrics computed afterwards are finite numbers or None.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.errors import InputDataError
from heartsong.events import METRIC_NAMES
from heartsong.sensors.ble_beats import RrTimeline
from heartsong.sensors.ble_fake import build_hrm_payload
from heartsong.sensors.hrm_parse import HrmPayloadError, parse_heart_rate_measurement

_VALID = st.builds(
    lambda uint16, hr, ticks, contact, energy: build_hrm_payload(
        hr if uint16 else hr % 256, ticks, contact=contact, energy_kj=energy, hr_uint16=uint16),
    st.booleans(),
    st.integers(0, 65535),
    st.lists(st.one_of(st.integers(1, 65535), st.integers(700, 1300)), max_size=9),
    st.sampled_from([True, False, None]),
    st.one_of(st.none(), st.integers(0, 65535)),
)


@st.composite
def _payloads(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(_VALID))
    how = draw(st.sampled_from(["keep", "keep", "truncate", "extend", "flip"]))
    if how == "truncate" and data:
        del data[draw(st.integers(0, len(data) - 1)):]
    elif how == "extend":
        data += draw(st.binary(min_size=1, max_size=6))
    elif how == "flip" and data:
        k = draw(st.integers(0, len(data) - 1))
        data[k] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(_payloads(), st.floats(0.0, 90.0)), min_size=1, max_size=40))
def test_any_payload_sequence_ends_in_clear_errors_or_finite_metrics(
    notes: list[tuple[bytes, float]],
) -> None:
    timeline = RrTimeline()
    pipe = StreamingPipeline()
    t = 0.0
    for payload, dt in notes:
        t += dt
        try:
            m = parse_heart_rate_measurement(payload)
        except HrmPayloadError as exc:
            assert exc.field.startswith("0x2A37")
            continue
        block = timeline.feed(m, t)
        if block is None:
            continue
        try:
            pipe.feed_rr(block)
        except InputDataError:
            continue  # counted and dropped by the appliance (Appliance.on_block)
    metrics = pipe.metrics(t, 1_800_000_000.0 + t, "ble")
    for name in METRIC_NAMES:
        value = getattr(metrics, name)
        if isinstance(value, float):
            assert math.isfinite(value), (name, value)
