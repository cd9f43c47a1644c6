"""Configuration: defaults, the example file, errors that name file/key/value, round trips."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heartsong import config as config_mod
from heartsong.config import (
    DEFAULT_PATH,
    RENAMED,
    Config,
    config_from_mapping,
    config_to_mapping,
    example_toml,
    load_config,
    parse_config,
    parse_override,
    render_toml,
    with_overrides,
)
from heartsong.config_checks import (
    ClockTime,
    Hostname,
    Integer,
    MacAddress,
    MqttTopic,
    Number,
    OneOf,
    OrUnset,
    Text,
    field_check,
    field_doc,
)
from heartsong.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "heartsong.example.toml"
SECTIONS = [f.name for f in dataclasses.fields(Config)]
ALL_FIELDS = [(s, f) for s in SECTIONS for f in dataclasses.fields(getattr(Config(), s))]
NUMERIC_FIELDS = [
    (s, f) for s, f in ALL_FIELDS if isinstance(field_check(f), Number | Integer | OrUnset)
]


def _error(data: dict[str, object], source: str = "test.toml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_mapping(data, source)
    return info.value


def _load_error(tmp_path: Path, text: str) -> tuple[Path, ConfigError]:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return path, info.value


# --------------------------------------------------------------------------- defaults


def test_every_default_passes_its_own_check_and_has_a_doc() -> None:
    for section, f in ALL_FIELDS:
        check = field_check(f)
        assert check(f.default) == f.default, f"{section}.{f.name}"
        assert field_doc(f).endswith("."), f"{section}.{f.name} needs a doc sentence"
    assert config_from_mapping({}, "empty.toml") == Config()
    assert config_from_mapping({s: {} for s in SECTIONS}, "empty.toml") == Config()


def test_default_path_and_fallback_to_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Path("/etc/heartsong/config.toml") == DEFAULT_PATH
    missing = tmp_path / "nowhere" / "config.toml"
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", missing)
    assert load_config() == Config()
    present = tmp_path / "config.toml"
    present.write_text("[simulation]\nseed = 9\n", encoding="utf-8")
    monkeypatch.setattr(config_mod, "DEFAULT_PATH", present)
    assert load_config().simulation.seed == 9


def test_example_file_is_generated_documents_every_key_and_loads_to_defaults() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text == example_toml(), "run python tools/gen_example_config.py"
    assert load_config(EXAMPLE) == Config()
    for section, f in ALL_FIELDS:
        assert f"[{section}]" in text
        written = f"# {f.name} =   (not set)" if f.default is None else f"\n{f.name} = "
        assert written in text, f"{section}.{f.name} missing from the example"
    assert "address = 0x57" in text  # register addresses stay in hex


# --------------------------------------------------------------------------- round trips


def test_non_default_config_round_trips_through_toml() -> None:
    cfg = with_overrides(
        Config(),
        {
            "device.name": 'Ann\'s "bedside" \\ heart ♥',
            "sensor.int_pin": 24,
            "sensor.address": 0x3C,
            "sensor.led_current_ma": 0.2,
            "sensor.mode": "ir",
            "sensor.pulse_width_us": 215,
            "sensor.auto_led": False,
            "audio.output": "wav",
            "audio.wav_path": "out/night.wav",
            "audio.volume_db": -33.3,
            "mqtt.tls": True,
            "mqtt.certfile": "/etc/heartsong/c.pem",
            "mqtt.keyfile": "/etc/heartsong/k.pem",
            "simulation.start_time": "06:05",
        },
    )
    for docs in (True, False):
        text = render_toml(cfg, docs=docs)
        again = parse_config(text, "rendered.toml")
        assert again == cfg
        assert render_toml(again, docs=docs) == text
    assert "address = 0x3C" in render_toml(cfg)
    assert "# int_pin" not in render_toml(cfg)
    # without docs, the only comments are the keys left unset (the optional RGB LED pins)
    unset = [line for line in render_toml(cfg, docs=False).splitlines() if "#" in line]
    assert unset == [f"# rgb_{c}_pin =   (not set)" for c in ("red", "green", "blue")]
    unwired = with_overrides(cfg, {"controls.play_pin": False})
    assert unwired.controls.play_pin is None
    assert "play_pin = false" in render_toml(unwired)
    assert config_from_mapping(tomllib.loads(render_toml(unwired)), "<t>") == unwired


def test_config_to_mapping_feeds_back_into_config_from_mapping() -> None:
    cfg = with_overrides(Config(), {"sensor.int_pin": 4, "therapy.mode": "sleep"})
    data = config_to_mapping(cfg)
    assert data["therapy"]["mode"] == "sleep"
    assert config_from_mapping(data, "dict") == cfg


# --------------------------------------------------------------------------- one-line errors


def test_out_of_range_line_matches_the_documented_format() -> None:
    err = _error({"audio": {"volume_db": 12}}, "/etc/heartsong/config.toml")
    assert err.one_line() == (
        "/etc/heartsong/config.toml: audio.volume_db = 12: must be a number from -60 to 0 (dB)"
    )
    assert (err.key, err.value) == ("audio.volume_db", 12)


@pytest.mark.parametrize(
    ("toml_line", "section", "key", "shown", "allowed"),
    [
        ('i2c_bus = "1"', "sensor", "i2c_bus", "'1'", "an integer from 0 to 31"),
        ("i2c_bus = 1.0", "sensor", "i2c_bus", "1.0", "an integer from 0 to 31"),
        ("i2c_bus = true", "sensor", "i2c_bus", "True", "an integer from 0 to 31"),
        ("window_s = true", "dsp", "window_s", "True", "a number from 20 to 600 (s)"),
        ('window_s = "60"', "dsp", "window_s", "'60'", "a number from 20 to 600 (s)"),
        ("ppg = 1", "sources", "ppg", "1", "true or false"),
        ("sample_rate_sps = 150", "sensor", "sample_rate_sps", "150", "one of 50, 100, 200"),
        ("sample_rate_hz = true", "audio", "sample_rate_hz", "True", "one of 44100, 48000 (Hz)"),
        ('log_level = "loud"', "device", "log_level", "'loud'", 'one of "debug", "info"'),
        ("port = 0", "mqtt", "port", "0", "an integer from 1 to 65535"),
        ("address = 0x78", "sensor", "address", "120", "an integer from 0x08 to 0x77"),
        ("led_current_ma = 51.5", "sensor", "led_current_ma", "51.5", "from 0.2 to 51 (mA)"),
        ("fade_s = 0.05", "audio", "fade_s", "0.05", "a number from 0.1 to 30 (s)"),
        ('id = "Kitchen"', "device", "id", "'Kitchen'", "lowercase letters"),
        ('state_dir = "var/lib"', "device", "state_dir", "'var/lib'", "an absolute path"),
        ('address = "AA:BB"', "ble", "address", "'AA:BB'", "AA:BB:CC:DD:EE:FF"),
        ('topic_prefix = "/hs"', "mqtt", "topic_prefix", "'/hs'", "without + or #"),
        ('start_time = "24:00"', "simulation", "start_time", "'24:00'", '"HH:MM"'),
    ],
)
def test_wrong_type_or_range_names_file_key_value_and_allowed(
    tmp_path: Path, toml_line: str, section: str, key: str, shown: str, allowed: str
) -> None:
    path, err = _load_error(tmp_path, f"[{section}]\n{toml_line}\n")
    line = err.one_line()
    assert line.startswith(f"{path}: {section}.{key} = {shown}: must be ")
    assert allowed in line
    assert "\n" not in line


@pytest.mark.parametrize(("section", "f"), NUMERIC_FIELDS, ids=lambda x: getattr(x, "name", x))
def test_numeric_bounds_are_inclusive(section: str, f: dataclasses.Field[object]) -> None:
    check = field_check(f)
    inner = check.inner if isinstance(check, OrUnset) else check
    assert isinstance(inner, Number | Integer)
    step = 1 if isinstance(inner, Integer) else 1e-6
    assert check(inner.lo) == inner.lo
    assert check(inner.hi) == inner.hi
    for outside in (inner.lo - step, inner.hi + step):
        with pytest.raises(ValueError, match="must be"):
            check(outside)


def test_ints_are_accepted_for_floats_but_bools_are_not_numbers() -> None:
    cfg = config_from_mapping({"dsp": {"window_s": 30}}, "t.toml")
    assert cfg.dsp.window_s == 30.0
    assert type(cfg.dsp.window_s) is float
    assert _error({"simulation": {"stress": True}}).key == "simulation.stress"
    assert _error({"simulation": {"seed": False}}).key == "simulation.seed"


def test_unknown_nested_key_suggests_the_close_one(tmp_path: Path) -> None:
    path, err = _load_error(tmp_path, "[audio]\nvolme_db = -20\n")
    assert err.one_line() == (
        f"{path}: audio.volme_db = -20: unknown key; did you mean audio.volume_db?"
    )


def test_a_password_written_in_the_file_is_refused_without_repeating_it(
    tmp_path: Path,
) -> None:
    path, err = _load_error(tmp_path, '[mqtt]\npassword = "hunter2"\n')
    assert "hunter2" not in err.one_line() and "hunter2" not in repr(err.value)
    assert err.one_line() == (
        f"{path}: mqtt.password = '<hidden>': unknown key; did you mean mqtt.password_env?"
    )


def test_unknown_section_suggests_the_close_one(tmp_path: Path) -> None:
    path, err = _load_error(tmp_path, "[audoi]\nvolume_db = -20\n")
    line = err.one_line()
    assert line.startswith(f"{path}: audoi = ")
    assert line.endswith("unknown section; did you mean [audio]?")


def test_key_in_the_wrong_place_points_to_its_section() -> None:
    assert _error({"audio": {"seed": 3}}).one_line().endswith("did you mean simulation.seed?")
    top = _error({"volume_db": -20}).one_line()
    assert (
        top == "test.toml: volume_db = -20: key outside any section; did you mean audio.volume_db?"
    )


def test_unknown_key_without_a_near_match_lists_the_allowed_keys() -> None:
    line = _error({"dsp": {"zzz": 1}}).one_line()
    assert line == "test.toml: dsp.zzz = 1: unknown key; allowed: window_s, update_s"


def test_section_must_be_a_table() -> None:
    err = _error({"audio": 3})
    assert (err.key, err.value) == ("audio", 3)
    assert "must be a table" in err.expected


def test_renamed_key_gives_a_migration_message(tmp_path: Path) -> None:
    assert RENAMED["audio.volume"] == "audio.volume_db"
    path, err = _load_error(tmp_path, "[audio]\nvolume = -20\n")
    assert err.one_line() == f"{path}: audio.volume = -20: renamed to audio.volume_db"
    with pytest.raises(ConfigError, match=r"renamed to audio\.volume_db"):
        with_overrides(Config(), {"audio.volume": -20})


def test_rename_table_also_moves_whole_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_mod, "RENAMED", {"strap": "ble", "ble.mac": "ble.address"})
    assert _error({"strap": {"name": "x"}}).expected == "renamed to ble"
    assert _error({"ble": {"mac": "x"}}).expected == "renamed to ble.address"


# --------------------------------------------------------------------------- cross-field rules


@pytest.mark.parametrize(
    ("data", "key", "expected"),
    [
        ({"audio": {"output": "wav"}}, "audio.wav_path", 'must be set when audio.output = "wav"'),
        (
            {"audio": {"volume_db": -5.5}},
            "audio.volume_db",
            "must not exceed audio.max_volume_db = -6 (dB)",
        ),
        (
            {"audio": {"volume_db": -20, "max_volume_db": -30}},
            "audio.volume_db",
            "must not exceed audio.max_volume_db = -30 (dB)",
        ),
        (
            {"dsp": {"window_s": 20, "update_s": 30}},
            "dsp.update_s",
            "must not exceed dsp.window_s = 20 (s)",
        ),
        ({"sources": {"ppg": False}}, "sources.ppg", "must be true when sources.ble = false"),
        ({"mqtt": {"certfile": "/c.pem"}}, "mqtt.keyfile", "must be set when mqtt.certfile"),
        ({"mqtt": {"keyfile": "/k.pem"}}, "mqtt.certfile", "must be set when mqtt.keyfile"),
        ({"mqtt": {"password_file": "/pw"}}, "mqtt.username", "must be set when mqtt.password"),
        (
            {"therapy": {"masking_soundscape": "whale_song"}},
            "therapy.masking_soundscape",
            "'' or one of ocean",
        ),
        (
            {"therapy": {"resonance_min_bpm": 6.0, "resonance_max_bpm": 6.2}},
            "therapy.resonance_max_bpm",
            "at least resonance_min_bpm + 0.5 = 6.5",
        ),
    ],
)
def test_cross_field_rules(data: dict[str, object], key: str, expected: str) -> None:
    err = _error(data)
    assert err.key == key
    assert err.expected.startswith(expected)


def test_cross_field_rules_accept_the_boundary_and_the_fix() -> None:
    ok = {
        "audio": {"output": "wav", "wav_path": "n.wav", "volume_db": -6, "max_volume_db": -6},
        "dsp": {"window_s": 20, "update_s": 20},
        "sources": {"ppg": False, "ble": True},
        "mqtt": {"certfile": "/c.pem", "keyfile": "/k.pem", "tls": True},
        "therapy": {"resonance_min_bpm": 6.0, "resonance_max_bpm": 6.5, "masking_soundscape": ""},
    }
    cfg = config_from_mapping(ok, "t.toml")
    assert cfg.audio.volume_db == cfg.audio.max_volume_db == -6.0
    assert cfg.dsp.update_s == cfg.dsp.window_s


def test_tls_files_without_tls_only_warn_and_are_not_opened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="heartsong.config"):
        cfg = config_from_mapping({"mqtt": {"ca_file": "/no/such/ca.pem"}}, "t.toml")
    assert cfg.mqtt.ca_file == "/no/such/ca.pem"
    assert "mqtt.tls = false" in caplog.text


# --------------------------------------------------------------------------- reading files


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path, err = _load_error(tmp_path, '[audio]\nvolume_db = -20\noutput = "wav\n')
    line = err.one_line()
    assert line.startswith(f"{path}: invalid TOML: ")
    assert "line 3" in line


def test_unreadable_or_missing_file_says_cannot_read(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.toml", tmp_path):
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.one_line().startswith(f"{path}: cannot read: ")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"[audio]\nsoundscape = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(binary)


def test_toml_local_time_is_accepted_for_start_time(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[simulation]\nstart_time = 23:05:00\n", encoding="utf-8")
    assert load_config(path).simulation.start_time == "23:05"


# --------------------------------------------------------------------------- overrides


def test_with_overrides_applies_validated_values_and_keeps_the_original() -> None:
    base = Config()
    cfg = with_overrides(base, {"audio.output": "none", "simulation.seed": 3, "dsp.window_s": 90})
    assert (cfg.audio.output, cfg.simulation.seed, cfg.dsp.window_s) == ("none", 3, 90.0)
    assert base == Config()
    assert cfg.audio.volume_db == base.audio.volume_db
    assert with_overrides(cfg, {"sensor.int_pin": None}).sensor.int_pin is None


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"simulation.seed": -1}, "simulation.seed", "an integer from 0 to 2147483647"),
        ({"audio.volume_db": None}, "audio.volume_db", "a number from -60 to 0 (dB)"),
        ({"audio.volum_db": -3}, "audio.volum_db", "did you mean audio.volume_db?"),
        ({"audoi.volume_db": -3}, "audoi", "did you mean [audio]?"),
        ({"seed": 3}, "seed", "SECTION.KEY"),
        ({"audio.output": "wav"}, "audio.wav_path", "must be set when"),
    ],
)
def test_with_overrides_rejects_like_the_file(
    overrides: dict[str, object], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), overrides)
    assert info.value.path == "<command line>"
    assert info.value.key == key
    assert fragment in info.value.expected


def test_parse_override_types_values_by_the_target_key() -> None:
    assert parse_override("audio.volume_db=-12.5") == ("audio.volume_db", -12.5)
    assert parse_override(" simulation.seed = 7 ") == ("simulation.seed", 7)
    assert parse_override("mqtt.tls=true") == ("mqtt.tls", True)
    assert parse_override("mqtt.protocol=5") == ("mqtt.protocol", "5")
    assert parse_override("audio.output=none") == ("audio.output", "none")
    assert parse_override('device.name="a b"') == ("device.name", "a b")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("audio.volume_db")


# --------------------------------------------------------------------------- immutability


def test_config_and_sections_are_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.audio.volume_db = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.audio = cfg.audio  # type: ignore[misc]
    assert hash(cfg) == hash(Config())


# --------------------------------------------------------------------------- check pieces


def test_check_pieces_accept_and_reject() -> None:
    assert MacAddress()("aa:bb:cc:dd:ee:0f") == "AA:BB:CC:DD:EE:0F"
    assert MacAddress()("") == ""
    for host in ("localhost", "broker.lan", "10.0.0.2", "::1", "a-b.example.com."):
        assert Hostname()(host) == host
    for topic in ("heartsong", "home/bedroom"):
        assert MqttTopic()(topic) == topic
    assert ClockTime()(dt.time(7, 0)) == "07:00"
    assert OneOf((1, 2))(2) == 2
    assert Number(0, 1)(1) == 1.0
    bad = [
        (Hostname(), ""),
        (Hostname(), "bad host"),
        (Hostname(), "-lead.example"),
        (MqttTopic(), "a//b"),
        (MqttTopic(), "a/+/b"),
        (MqttTopic(), "a/"),
        (ClockTime(), "7:00"),
        (ClockTime(), dt.time(7, 0, 30)),
        (OneOf((1, 2)), True),
        (OneOf((1, 2)), 1.0),
        (OneOf(("a", "b")), "A"),
        (Number(0, 1), float("nan")),
        (Number(0, 1e9), float("inf")),
        (Number(0, 1), 10**400),
        (Integer(0, 9), 3.0),
        (Text(0, 9), "tab\there"),
        (Text(1, 9), ""),
        (MacAddress(), "AA:BB:CC:DD:EE:FF\n"),
    ]
    for check, value in bad:
        with pytest.raises(ValueError, match="^must be " + re.escape(check.allowed)):
            check(value)
    with pytest.raises(TypeError):
        OneOf(("a", 1))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fuzzing

_FIELD_NAMES = sorted({f.name for _, f in ALL_FIELDS} | {"volume"})
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.integers(min_value=-5, max_value=130),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-70, max_value=700),
    st.text(max_size=20),
    st.sampled_from(["wav", "none", "sleep", "ble", "5", "22:30", "/x", "AA:BB:CC:DD:EE:FF"]),
    st.times(),
    st.lists(st.integers(), max_size=2),
)
_tables = st.dictionaries(
    st.one_of(st.sampled_from(_FIELD_NAMES), st.text(max_size=10)), _scalars, max_size=4
)
_documents = st.dictionaries(
    st.one_of(st.sampled_from([*SECTIONS, "strap"]), st.text(max_size=8)),
    st.one_of(_tables, _scalars),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_random_mappings_only_ever_raise_config_error(data: dict[str, object]) -> None:
    try:
        cfg = config_from_mapping(data, "fuzz.toml")
    except ConfigError as exc:
        assert exc.one_line().startswith("fuzz.toml: ")
        assert "\n" not in exc.one_line()
        return
    assert parse_config(render_toml(cfg), "again.toml") == cfg


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.one_of(
            st.sampled_from([f"{s}.{f.name}" for s, f in ALL_FIELDS]),
            st.text(max_size=12),
        ),
        _scalars,
        max_size=3,
    )
)
def test_random_overrides_only_ever_raise_config_error(overrides: dict[str, object]) -> None:
    try:
        cfg = with_overrides(Config(), overrides)
    except ConfigError as exc:
        assert exc.path == "<command line>"
        return
    assert parse_config(render_toml(cfg), "again.toml") == cfg


def test_sensor_rate_and_pulse_width_are_checked_against_the_datasheet(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sensor]\nsample_rate_sps = 3200\npulse_width_us = 411\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    line = info.value.one_line()
    assert str(path) in line and "sensor." in line


def test_soundscape_must_be_a_known_preset() -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), {"audio.soundscape": "whale_song"})
    assert info.value.key == "audio.soundscape" and "ocean" in info.value.expected


def test_therapy_section_becomes_the_closed_loop_tuning() -> None:
    from heartsong.therapy.settings import TherapyTuning, tuning_from_config

    cfg = with_overrides(
        Config(), {"therapy.closed_loop": False, "therapy.sleep_sound": "off",
                   "therapy.pacer_hold_s": 45, "therapy.sleep_fade_min": 20},
    )
    tuning = tuning_from_config(cfg.therapy)
    assert tuning == TherapyTuning(
        closed_loop=False, sleep_sound="off", pacer_hold_s=45.0, sleep_fade_min=20.0
    )
    # every tuning field is a config key, so nothing of the closed loop is hidden from users
    tuning_keys = {f.name for f in dataclasses.fields(TherapyTuning)}
    assert tuning_keys <= {f.name for f in dataclasses.fields(cfg.therapy)}
