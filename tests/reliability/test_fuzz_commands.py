"""Fuzzing MQTT command sequences end to end: parse, then apply to the user's settings.

``tests/test_mqtt_commands.py`` already fuzzes single messages through the router (10,000
topics and payloads). What it does not cover is what *accepted* commands do in sequence:
here random sequences of well-formed and malformed payloads for every command key go
through :func:`parse_command` and, when accepted, :func:`apply_command`, at random session
times. The promise: a payload is either refused with :class:`InputDataError` naming the
key, or applied, and the settings stay inside their limits whatever the sequence (the
volume never exceeds the ceiling, the sleep timer is never negative or infinite, the
soundscape is always a preset).
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartsong.errors import InputDataError
from heartsong.mqtt.apply import apply_command, sleep_timer_remaining_min
from heartsong.mqtt.commands import COMMAND_KEYS, CommandLimits, parse_command
from heartsong.therapy.policy import PolicySettings

LIMITS = CommandLimits(volume_max_db=-12.0)

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["1e309", "-0", "0x10", "1_0", " 30 ", "NaN", "inf", "30min", ""]),
)
_WORDS = st.one_of(
    st.sampled_from(["ON", "off", "On ", "START", "stop", "calm", "sleep", "focus", "ocean",
                     "rain", "OCEAN", "brown_noise", "\x00", "null", "{}", "[]", "true"]),
    st.text(max_size=40),
)
_PAYLOAD = st.one_of(_NUMBERS, _WORDS).map(lambda t: t.encode("utf-8", "surrogatepass"))
_STEP = st.tuples(st.sampled_from(COMMAND_KEYS), _PAYLOAD, st.floats(0.0, 4 * 3600.0))


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, min_size=1, max_size=25))
def test_random_command_sequences_keep_the_settings_valid(
    steps: list[tuple[str, bytes, float]],
) -> None:
    s = PolicySettings(mode="calm", soundscape="ocean", volume_db=-20.0,
                       breath_rate_bpm=6.0, sleep_timer_s=0.0)
    elapsed = 0.0
    for key, payload, dt_s in steps:
        elapsed += dt_s
        try:
            command = parse_command(key, payload, LIMITS)
        except InputDataError as exc:
            assert exc.field == key  # the refusal names the key, never a crash
            continue
        applied = apply_command(s, command, session_elapsed_s=elapsed,
                                configured_sleep_timer_s=1800.0)
        s = applied.settings
        if applied.restart_session:
            elapsed = 0.0
        assert applied.reason
        assert LIMITS.volume_min_db <= s.volume_db <= LIMITS.volume_max_db
        assert s.soundscape in LIMITS.soundscapes
        assert math.isfinite(s.sleep_timer_s) and s.sleep_timer_s >= 0.0
        remaining = sleep_timer_remaining_min(s, elapsed)
        assert 0.0 <= remaining <= max(LIMITS.sleep_timer_max_min, 30.0) + 1e-6
