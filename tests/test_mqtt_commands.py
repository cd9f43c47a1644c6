"""Commands: payload schema, topic routing, rate limit, and what they do to the settings.

Hardware- and broker-free. The fuzz test sends 10,000 hypothesis-generated messages
through the same validation path paho's thread uses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartsong.errors import InputDataError
from heartsong.mqtt.apply import apply_command, sleep_timer_remaining_min
from heartsong.mqtt.commands import (
    COMMAND_KEYS,
    MAX_PAYLOAD_BYTES,
    Command,
    CommandLimits,
    SessionControl,
    SetMode,
    SetPlaying,
    SetSleepTimer,
    SetSoundscape,
    SetVolume,
    call_on_loop,
    parse_command,
)
from heartsong.mqtt.ratelimit import TokenBucket
from heartsong.mqtt.router import CommandRouter, Rejection
from heartsong.mqtt.topics import Topics
from heartsong.therapy.policy import PolicyInput, PolicySettings, decide

LIMITS = CommandLimits(soundscapes=("ocean", "brown_noise"), volume_min_db=-60.0,
                       volume_max_db=-6.0, sleep_timer_max_min=720.0)
TOPICS = Topics("heartsong", "bedroom")
SETTINGS = PolicySettings(mode="wind_down", soundscape="ocean", volume_db=-18.0,
                          breath_rate_bpm=6.0, sleep_timer_s=0.0)


class FakeClock:
    """A monotonic clock the test steps by hand, in seconds."""

    def __init__(self) -> None:
        self.t_s = 100.0

    def __call__(self) -> float:
        return self.t_s


def _router(rate_per_s: float = 1e9, burst: int = 10**9) -> CommandRouter:
    return CommandRouter(TOPICS, LIMITS, TokenBucket(rate_per_s, burst))


# --------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("key", "payload", "command"),
    [
        ("mode", b"calm", SetMode("calm")),
        ("mode", b" sleep\n", SetMode("sleep")),
        ("soundscape", b"brown_noise", SetSoundscape("brown_noise")),
        ("volume_db", b"-20", SetVolume(-20.0)),
        ("volume_db", b"-6.0", SetVolume(-6.0)),
        ("volume_db", b"-60", SetVolume(-60.0)),
        ("sleep_timer_min", b"30", SetSleepTimer(30.0)),
        ("sleep_timer_min", b"0", SetSleepTimer(0.0)),
        ("playing", b"ON", SetPlaying(True)),
        ("playing", b"off", SetPlaying(False)),
        ("session", b"START", SessionControl("start")),
        ("session", b"Stop", SessionControl("stop")),
    ],
)
def test_valid_payloads_become_typed_commands(key: str, payload: bytes, command: Command) -> None:
    assert parse_command(key, payload, LIMITS) == command


@pytest.mark.parametrize(
    ("key", "payload", "expected_words"),
    [
        ("mode", b"party", "'wind_down', 'calm', 'sleep'"),
        ("mode", b"CALM", "'wind_down', 'calm', 'sleep'"),
        ("soundscape", b"rain", "'ocean', 'brown_noise'"),
        ("volume_db", b"-5", "from -60 to -6 (dB)"),  # above the ceiling
        ("volume_db", b"12", "from -60 to -6 (dB)"),
        ("volume_db", b"-61", "from -60 to -6 (dB)"),
        ("volume_db", b"nan", "a number"),
        ("volume_db", b"-1e999", "a number"),
        ("volume_db", b"-2_0", "a number"),
        ("volume_db", b"", "a number"),
        ("sleep_timer_min", b"-1", "from 0 to 720 (min)"),
        ("sleep_timer_min", b"721", "from 0 to 720 (min)"),
        ("playing", b"1", "'ON', 'OFF'"),
        ("session", b"PRESS", "'START', 'STOP'"),
        ("mode", b"\xff\xfe", "UTF-8 text"),
        ("mode", b"x" * (MAX_PAYLOAD_BYTES + 1), f"at most {MAX_PAYLOAD_BYTES} bytes"),
    ],
)
def test_invalid_payloads_name_the_field_and_what_was_expected(
    key: str, payload: bytes, expected_words: str
) -> None:
    with pytest.raises(InputDataError) as err:
        parse_command(key, payload, LIMITS)
    assert err.value.field == key
    assert expected_words in err.value.expected


def test_unknown_key_is_a_topic_error_listing_the_keys() -> None:
    with pytest.raises(InputDataError) as err:
        parse_command("volume", b"-20", LIMITS)
    assert err.value.field == "topic"
    assert all(repr(k) in err.value.expected for k in COMMAND_KEYS)


def test_limits_must_be_consistent() -> None:
    with pytest.raises(InputDataError, match="volume_max_db"):
        CommandLimits(soundscapes=("ocean",), volume_min_db=-10.0, volume_max_db=-20.0)
    with pytest.raises(InputDataError, match="soundscapes"):
        CommandLimits(soundscapes=())


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("topic", "retain", "field"),
    [
        ("heartsong/bedroom/set/bogus", False, "topic"),
        ("heartsong/bedroom/set/mode/extra", False, "topic"),
        ("heartsong/bedroom/set/", False, "topic"),
        ("heartsong/kitchen/set/mode", False, "topic"),
        ("heartsong/bedroom/set/mode", True, "retain"),
    ],
)
def test_router_rejects_bad_topics_and_retained_commands(
    topic: str, retain: bool, field: str
) -> None:
    router = _router()
    result = router.route(topic, b"calm", retain=retain)
    assert isinstance(result, Rejection)
    assert result.field == field
    assert router.rejected == 1 and router.accepted == 0


def test_rejection_document_is_json_with_field_expected_and_value() -> None:
    result = _router().route("heartsong/bedroom/set/volume_db", b"12")
    assert isinstance(result, Rejection)
    doc = json.loads(result.as_json())
    assert doc["topic"] == "heartsong/bedroom/set/volume_db"
    assert doc["field"] == "volume_db"
    assert "-6" in doc["expected"]
    assert doc["got"] == "12"
    assert doc["error"].startswith("volume_db: a number from -60 to -6")


def test_long_bad_values_are_echoed_shortened() -> None:
    result = _router().route("heartsong/bedroom/set/" + "k" * 500, b"x")
    assert isinstance(result, Rejection)
    assert result.got is not None and len(result.got) < 80


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 5, clock=clock)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    clock.t_s += 1.0  # two tokens refilled
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.t_s += 100.0  # refills only up to the burst size
    assert sum(bucket.take() for _ in range(20)) == 5
    assert bucket.refused == 2 + 1 + 15


def test_token_bucket_rejects_nonsense_parameters() -> None:
    with pytest.raises(InputDataError, match="rate_per_s"):
        TokenBucket(0.0, 5)
    with pytest.raises(InputDataError, match="burst"):
        TokenBucket(1.0, 0)


def test_router_rate_limit_counts_every_message_and_names_the_limit() -> None:
    clock = FakeClock()
    router = CommandRouter(TOPICS, LIMITS, TokenBucket(1.0, 3, clock=clock))
    results = [router.route("heartsong/bedroom/set/mode", b"calm") for _ in range(5)]
    assert [isinstance(r, SetMode) for r in results] == [True, True, True, False, False]
    limited = results[-1]
    assert isinstance(limited, Rejection) and limited.field == "rate"
    assert "1 commands per second" in limited.expected
    clock.t_s += 1.0
    assert isinstance(router.route("heartsong/bedroom/set/mode", b"calm"), SetMode)


# --------------------------------------------------------------------------- applying


def test_each_command_changes_the_matching_setting() -> None:
    def apply(cmd: Command) -> PolicySettings:
        return apply_command(SETTINGS, cmd, session_elapsed_s=0.0).settings

    assert apply(SetMode("sleep")).mode == "sleep"
    assert apply(SetSoundscape("brown_noise")).soundscape == "brown_noise"
    assert apply(SetVolume(-30.0)).volume_db == -30.0
    assert apply(SetPlaying(False)).playing is False
    assert apply(SessionControl("stop")).playing is False
    # Nothing else changes.
    after = apply(SetMode("sleep"))
    assert dataclasses.replace(after, mode=SETTINGS.mode) == SETTINGS


def test_unchanged_value_says_so() -> None:
    applied = apply_command(SETTINGS, SetMode("wind_down"), session_elapsed_s=0.0)
    assert applied.settings == SETTINGS
    assert "already" in applied.reason


def test_a_soundscape_command_is_judged_against_what_plays() -> None:
    # The learner plays rain; the user picks the configured ocean: a real change.
    picked = apply_command(SETTINGS, SetSoundscape("ocean"), session_elapsed_s=0.0,
                           playing_soundscape="rain")
    assert picked.chose_soundscape and picked.reason == "soundscape rain -> ocean: command"
    same = apply_command(SETTINGS, SetSoundscape("rain"), session_elapsed_s=0.0,
                         playing_soundscape="rain")
    assert not same.chose_soundscape and "already rain" in same.reason
    assert same.settings.soundscape == "rain"  # kept as the user's choice


def test_sleep_timer_counts_from_now_and_the_policy_obeys_it() -> None:
    elapsed = 600.0
    applied = apply_command(SETTINGS, SetSleepTimer(1.0), session_elapsed_s=elapsed)
    s = applied.settings
    assert s.sleep_timer_s == pytest.approx(elapsed + 60.0)
    assert sleep_timer_remaining_min(s, elapsed) == pytest.approx(1.0)
    assert sleep_timer_remaining_min(s, elapsed + 30.0) == pytest.approx(0.5)
    before = decide(PolicyInput(s, elapsed + 59.0), None).targets
    after = decide(PolicyInput(s, elapsed + 61.0), before).targets
    assert before.playing and not after.playing
    off = apply_command(s, SetSleepTimer(0.0), session_elapsed_s=elapsed).settings
    assert off.sleep_timer_s == 0.0
    assert sleep_timer_remaining_min(off, elapsed) == 0.0


def test_sound_on_after_the_timer_ran_out_clears_the_timer() -> None:
    s = dataclasses.replace(SETTINGS, sleep_timer_s=60.0, playing=True)
    applied = apply_command(s, SetPlaying(True), session_elapsed_s=120.0)
    assert applied.settings.sleep_timer_s == 0.0 and applied.settings.playing
    assert decide(PolicyInput(applied.settings, 120.0), None).targets.playing
    running = apply_command(s, SetPlaying(True), session_elapsed_s=30.0)
    assert running.settings.sleep_timer_s == 60.0  # a running timer is kept


def test_session_start_restarts_with_the_configured_timer() -> None:
    s = dataclasses.replace(SETTINGS, playing=False, sleep_timer_s=0.0)
    applied = apply_command(s, SessionControl("start"), session_elapsed_s=5000.0,
                            configured_sleep_timer_s=1800.0)
    assert applied.restart_session
    assert applied.settings.playing and applied.settings.sleep_timer_s == 1800.0
    stop = apply_command(applied.settings, SessionControl("stop"), session_elapsed_s=10.0)
    assert not stop.restart_session and not stop.settings.playing


def test_call_on_loop_runs_the_handler_on_the_loop_thread() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    seen: list[tuple[Command, threading.Thread]] = []
    done = threading.Event()

    def handler(cmd: Command) -> None:
        seen.append((cmd, threading.current_thread()))
        done.set()

    try:
        call_on_loop(loop, handler)(SetMode("calm"))
        assert done.wait(5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert seen == [(SetMode("calm"), thread)]


# --------------------------------------------------------------------------- fuzzing

_KEYS = st.sampled_from([*COMMAND_KEYS, "volume", "", "+", "#", "mode/x", "ñ", "set"])
_TOPICS = st.one_of(
    _KEYS.map(lambda k: f"heartsong/bedroom/set/{k}"),
    st.text(max_size=80).map(lambda t: f"heartsong/bedroom/set/{t}"),
    st.text(max_size=80),
)
_PAYLOADS = st.one_of(
    st.binary(max_size=2 * MAX_PAYLOAD_BYTES),
    st.text(max_size=80).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    st.integers(-(10**30), 10**30).map(lambda i: str(i).encode()),
    st.sampled_from([b"ON", b"OFF", b"START", b"STOP", b"calm", b"ocean", b"-20", b"30"]),
)


def test_10000_fuzzed_messages_never_raise_and_always_get_an_answer() -> None:
    router = _router()

    @settings(max_examples=10_000, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(topic=_TOPICS, payload=_PAYLOADS, retain=st.booleans())
    def one_message(topic: str, payload: bytes, retain: bool) -> None:
        result = router.route(topic, payload, retain=retain)
        if isinstance(result, Rejection):
            doc = json.loads(result.as_json())
            assert doc["field"] and doc["expected"]
        else:
            # Whatever got through is within the schema and applies cleanly.
            assert not retain
            if isinstance(result, SetVolume):
                assert LIMITS.volume_min_db <= result.volume_db <= LIMITS.volume_max_db
            elif isinstance(result, SetSleepTimer):
                assert 0.0 <= result.minutes <= LIMITS.sleep_timer_max_min
            elif isinstance(result, SetSoundscape):
                assert result.name in LIMITS.soundscapes
            applied = apply_command(SETTINGS, result, session_elapsed_s=0.0)
            assert isinstance(applied.settings, PolicySettings)
        # ... and the router still answers a valid command.
        assert router.route("heartsong/bedroom/set/mode", b"calm") == SetMode("calm")

    one_message()
    # 10,000 examples, each followed by a valid command that was accepted.
    assert router.accepted + router.rejected >= 2 * 10_000
    assert router.accepted >= 10_000
    assert router.rejected > 5_000  # most fuzzed messages are malformed
