"""The configuration: TOML file -> frozen, validated dataclasses; and back to TOML.

Every setting has a default, so an empty (or missing) file is a working configuration.
Each section is a frozen dataclass whose fields carry their check and doc (with unit)
as metadata (see :mod:`heartsong.config_checks`); the same metadata validates files and
command-line overrides and writes the documented example file, so code, checks and docs
cannot drift apart. The first problem found stops loading with a
:class:`~heartsong.errors.ConfigError` whose ``one_line()`` names the file, the dotted
key, the bad value and what is allowed, e.g.::

    /etc/heartsong/config.toml: audio.volume_db = 12: must be a number from -60 to 0 (dB)

A key that was renamed gets a migration message from :data:`RENAMED` instead of
"unknown key".
"""

from __future__ import annotations

import difflib
import logging
import re
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from heartsong.config_checks import (
    Boolean,
    CheckError,
    ClockTime,
    FilePath,
    Hostname,
    Integer,
    MacAddress,
    MqttTopic,
    Number,
    OneOf,
    OrUnset,
    Pattern,
    Text,
    field_check,
    field_doc,
    setting,
    toml_value,
)
from heartsong.controls.settings import ControlsConfig, controls_problem
from heartsong.errors import ConfigError, InputDataError
from heartsong.events import Mode

__all__ = [
    "DEFAULT_LEARN_CANDIDATES",
    "DEFAULT_PATH",
    "RENAMED",
    "AudioConfig",
    "BleConfig",
    "Config",
    "DeviceConfig",
    "DspConfig",
    "MqttConfig",
    "SensorConfig",
    "SimulationConfig",
    "SourcesConfig",
    "TherapyConfig",
    "config_from_mapping",
    "config_to_mapping",
    "example_toml",
    "load_config",
    "parse_config",
    "parse_override",
    "render_toml",
    "with_overrides",
]

logger = logging.getLogger(__name__)

#: Where ``heartsong`` looks for its configuration unless ``--config`` says otherwise.
DEFAULT_PATH: Path = Path("/etc/heartsong/config.toml")

#: Keys that were renamed: old dotted key -> new dotted key. A file that still uses the
#: old name stops with "renamed to <new>" rather than a bare "unknown key".
RENAMED: Mapping[str, str] = {
    "audio.volume": "audio.volume_db",
}

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
PreferredSource = Literal["ble", "ppg"]
AudioOutput = Literal["device", "wav", "none"]
MqttProtocol = Literal["3.1.1", "5"]


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DeviceConfig:
    """Identity, storage and logging of this device."""

    id: str = field(
        default="heartsong",
        metadata=setting(
            Pattern(
                r"^[a-z0-9][a-z0-9_-]{0,31}$",
                "1 to 32 lowercase letters, digits, _ or -, not starting with _ or -",
            ),
            "Device id; names this device in MQTT topics (heartsong/<id>/...).",
        ),
    )
    name: str = field(
        default="Heartsong",
        metadata=setting(Text(1, 64, "a name"), "Human-readable name shown in Home Assistant."),
    )
    state_dir: str = field(
        default="/var/lib/heartsong",
        metadata=setting(
            FilePath(absolute=True, allow_empty=False),
            "Directory for the session database, the MQTT outbox and per-user baselines.",
        ),
    )
    log_level: LogLevel = field(
        default="info",
        metadata=setting(
            OneOf(("debug", "info", "warning", "error")), "Lowest severity that is logged."
        ),
    )
    log_format: LogFormat = field(
        default="text",
        metadata=setting(
            OneOf(("text", "json")), "Log line format: text for the journal, json for shippers."
        ),
    )


@dataclass(frozen=True)
class SourcesConfig:
    """Which heart-beat sources to use."""

    ppg: bool = field(
        default=True,
        metadata=setting(Boolean(), "Read the MAX30102 PPG sensor on I2C."),
    )
    ble: bool = field(
        default=False,
        metadata=setting(
            Boolean(), "Connect to a Bluetooth LE heart-rate strap (GATT service 0x180D)."
        ),
    )
    preferred: PreferredSource = field(
        default="ble",
        metadata=setting(
            OneOf(("ble", "ppg")),
            "Source used while both deliver good beats; the other one is the fallback.",
        ),
    )


@dataclass(frozen=True)
class SensorConfig:
    """The MAX30102 pulse sensor on I2C."""

    i2c_bus: int = field(
        default=1,
        metadata=setting(Integer(0, 31), "I2C bus number N of /dev/i2c-N."),
    )
    address: int = field(
        default=0x57,
        metadata=setting(
            Integer(0x08, 0x77, hex_digits=2),
            "7-bit I2C address of the sensor (the MAX30102 answers at 0x57).",
        ),
    )
    sample_rate_sps: int = field(
        default=100,
        metadata=setting(
            OneOf((50, 100, 200, 400, 800, 1000, 1600, 3200), "samples/s"),
            "Sensor sample rate in samples/s (SPO2_SR register field).",
        ),
    )
    mode: str = field(
        default="red_ir",
        metadata=setting(
            OneOf(("red_ir", "red", "ir")),
            "LEDs sampled: red_ir (both, SpO2 mode), red or ir (one LED, heart-rate mode).",
        ),
    )
    sample_average: int = field(
        default=1,
        metadata=setting(
            OneOf((1, 2, 4, 8, 16, 32)),
            "Samples averaged on the chip per FIFO sample (output rate = rate / average).",
        ),
    )
    pulse_width_us: int = field(
        default=411,
        metadata=setting(
            OneOf((69, 118, 215, 411), "us"),
            "LED pulse width in us (69/118/215/411 = 15/16/17/18-bit ADC); the datasheet "
            "limits it at high sample rates.",
        ),
    )
    adc_range_na: int = field(
        default=4096,
        metadata=setting(
            OneOf((2048, 4096, 8192, 16384), "nA"),
            "ADC full scale in nA of photodiode current.",
        ),
    )
    led_current_ma: float = field(
        default=7.0,
        metadata=setting(
            Number(0.2, 51, "mA"),
            "Starting LED drive current in mA (0.2 mA steps); fixed when auto_led = false.",
        ),
    )
    auto_led: bool = field(
        default=True,
        metadata=setting(
            Boolean(), "Adjust the LED current to keep the signal in the ADC's range."
        ),
    )
    leds_swapped: bool = field(
        default=False,
        metadata=setting(
            Boolean(), "Set for boards wired with the red and IR LEDs the other way round."
        ),
    )
    int_pin: int | None = field(
        default=None,
        metadata=setting(
            OrUnset(Integer(2, 27, "BCM GPIO number")),
            "BCM GPIO wired to the sensor's INT output; not set = poll the FIFO.",
        ),
    )


@dataclass(frozen=True)
class BleConfig:
    """The Bluetooth LE heart-rate strap (Heart Rate Service 0x180D)."""

    address: str = field(
        default="",
        metadata=setting(MacAddress(), "MAC address of the strap; empty = the first strap found, "
                         "then only that one (remembered in the state directory)."),
    )
    name: str = field(
        default="",
        metadata=setting(
            Text(0, 64, "a name"),
            "Advertised name (or part of it) of the strap to use; empty = any name.",
        ),
    )
    stall_timeout_s: float = field(
        default=5.0,
        metadata=setting(
            Number(2, 60, "s"), "Seconds without a notification before the strap is lost."
        ),
    )


@dataclass(frozen=True)
class DspConfig:
    """Beat detection and heart-rate-variability analysis."""

    window_s: float = field(
        default=60.0,
        metadata=setting(Number(20, 600, "s"), "Length of the HRV analysis window in s."),
    )
    update_s: float = field(
        default=5.0,
        metadata=setting(
            Number(1, 60, "s"), "Interval between metric updates in s; at most dsp.window_s."
        ),
    )


@dataclass(frozen=True)
class AudioConfig:
    """Sound output: where it goes, how loud, which soundscape."""

    output: AudioOutput = field(
        default="device",
        metadata=setting(
            OneOf(("device", "wav", "none")),
            "Where sound goes: device = sound card, wav = file audio.wav_path, none = silent.",
        ),
    )
    device: str = field(
        default="",
        metadata=setting(
            Text(0, 128, "text"),
            "Part of the output device's name; empty = the system default device.",
        ),
    )
    wav_path: str = field(
        default="",
        metadata=setting(FilePath(), 'WAV file written when audio.output = "wav".'),
    )
    sample_rate_hz: int = field(
        default=48000,
        metadata=setting(OneOf((44100, 48000), "Hz"), "Output sample rate in Hz."),
    )
    buffer_frames: int = field(
        default=256,
        metadata=setting(
            OneOf((64, 128, 256, 512, 1024, 2048), "frames"),
            "Frames per audio callback; fewer = lower latency but more CPU.",
        ),
    )
    volume_db: float = field(
        default=-18.0,
        metadata=setting(
            Number(-60, 0, "dB"),
            "Playback volume in dB relative to full scale; at most audio.max_volume_db.",
        ),
    )
    max_volume_db: float = field(
        default=-6.0,
        metadata=setting(
            Number(-40, 0, "dB"), "Hard safety ceiling in dB that no command can exceed."
        ),
    )
    soundscape: str = field(
        default="ocean",
        metadata=setting(
            Pattern(
                r"^[a-z][a-z0-9_]{0,31}$",
                "a lowercase letter, then up to 31 lowercase letters, digits or _",
            ),
            "Soundscape to play.",
        ),
    )
    fade_s: float = field(
        default=3.0,
        metadata=setting(Number(0.1, 30, "s"), "Fade-in and fade-out time in s."),
    )
    crossfade_s: float = field(
        default=4.0,
        metadata=setting(
            Number(2, 30, "s"), "Equal-power crossfade between soundscapes, in s."
        ),
    )
    wait_for_device: bool = field(
        default=True,
        metadata=setting(
            Boolean(),
            "Start without the output device and play when it appears (a USB speaker "
            "plugged in later); false = a missing device stops start-up.",
        ),
    )


#: The soundscapes the learner chooses among by default (the calm presets; the masking
#: and beat presets are left to the stress response and the user).
DEFAULT_LEARN_CANDIDATES: tuple[str, ...] = (
    "rain", "ocean", "forest_night", "mountain_stream", "warm_drone", "evolving_garden",
)


@dataclass(frozen=True)
class TherapyConfig:
    """What the device tries to do for the listener."""

    mode: Mode = field(
        default="wind_down",
        metadata=setting(
            OneOf(("wind_down", "calm", "sleep")),
            "wind_down slows breathing before sleep, calm answers stress, sleep stays quiet.",
        ),
    )
    breath_rate_bpm: float = field(
        default=6.0,
        metadata=setting(
            Number(3, 20, "breaths/min"),
            "Target rate of the breath pacer in breaths/min (6 = resonance breathing).",
        ),
    )
    sleep_timer_min: float = field(
        default=0.0,
        metadata=setting(Number(0, 720, "min"), "Stop playing after this many minutes; 0 = never."),
    )
    sleep_fade_min: float = field(
        default=10.0,
        metadata=setting(
            Number(1, 60, "min"),
            "Minutes of the slow fade: the sleep timer's (ending when the timer runs out), "
            "and the one after detected sleep onset.",
        ),
    )
    closed_loop: bool = field(
        default=True,
        metadata=setting(
            Boolean(),
            "Adapt to the heart: pacer that follows your breathing, stress response, sleep "
            "detection. false = the fixed pacer at breath_rate_bpm.",
        ),
    )
    resonance_min_bpm: float = field(
        default=4.5,
        metadata=setting(
            Number(3, 7, "breaths/min"),
            "Lowest rate searched for your personal resonance breathing rate, breaths/min.",
        ),
    )
    resonance_max_bpm: float = field(
        default=7.0,
        metadata=setting(
            Number(3.5, 10, "breaths/min"),
            "Highest rate searched for your personal resonance breathing rate, breaths/min.",
        ),
    )
    pacer_step_bpm: float = field(
        default=0.5,
        metadata=setting(
            Number(0.25, 1, "breaths/min"), "One step of the breath pacer, breaths/min."
        ),
    )
    pacer_hold_s: float = field(
        default=30.0,
        metadata=setting(
            Number(10, 600, "s"),
            "Seconds your breathing must follow the pacer before it slows another step.",
        ),
    )
    resonance_dwell_s: float = field(
        default=120.0,
        metadata=setting(
            Number(60, 600, "s"),
            "Seconds the pacer stays at each rate while finding your resonance rate.",
        ),
    )
    switch_interval_s: float = field(
        default=900.0,
        metadata=setting(
            Number(60, 86400, "s"),
            "At most one automatic soundscape switch within this many seconds.",
        ),
    )
    stress_tau_s: float = field(
        default=30.0,
        metadata=setting(
            Number(5, 300, "s"),
            "Time constant of the sound's response to stress, s (larger = calmer changes); "
            "it includes the stress model's own smoothing.",
        ),
    )
    masking_soundscape: str = field(
        default="brown_noise",
        metadata=setting(
            Text(0, 64, "a soundscape name"),
            "Soundscape switched to under lasting stress; empty = never switch.",
        ),
    )
    quality_min: float = field(
        default=0.5,
        metadata=setting(
            Number(0, 1),
            "Below this signal quality (0..1) the therapy holds instead of reacting to noise.",
        ),
    )
    sleep_detection: bool = field(
        default=True,
        metadata=setting(
            Boolean(), "Detect sleep onset from the heart and answer with a slow fade."
        ),
    )
    sleep_sound: str = field(
        default="masking",
        metadata=setting(
            OneOf(("masking", "off")),
            "After sleep onset: masking keeps a quiet masking sound, off fades to silence.",
        ),
    )
    sleep_fade_db: float = field(
        default=10.0,
        metadata=setting(
            Number(0, 40, "dB"),
            "How far the masking sound fades after sleep onset, dB.",
        ),
    )
    learn_soundscapes: bool = field(
        default=True,
        metadata=setting(
            Boolean(),
            "Learn which soundscape calms you (from your heart's answer to each) and play it "
            "in calm and wind_down sessions; false = always start with audio.soundscape.",
        ),
    )
    learn_candidates: str = field(
        default=", ".join(DEFAULT_LEARN_CANDIDATES),
        metadata=setting(
            Pattern(
                r"^[a-z_0-9]+(\s*,\s*[a-z_0-9]+)*$",
                'comma-separated soundscape names, e.g. "rain, ocean"',
            ),
            "The soundscapes the learner chooses among (each is tried twice first).",
        ),
    )
    learn_explore_max: float = field(
        default=0.1,
        metadata=setting(
            Number(0, 0.5),
            "Highest share of recent sessions that may try another soundscape than the best.",
        ),
    )
    learn_half_life_days: float = field(
        default=60.0,
        metadata=setting(
            Number(1, 3650, "days"),
            "What was learnt about a soundscape counts half after this many days.",
        ),
    )


@dataclass(frozen=True)
class MqttConfig:
    """MQTT broker connection and Home Assistant discovery."""

    enabled: bool = field(
        default=False,
        metadata=setting(Boolean(), "Publish to an MQTT broker (nothing leaves the device else)."),
    )
    host: str = field(
        default="localhost",
        metadata=setting(Hostname(), "Broker host name or IP address."),
    )
    port: int = field(
        default=1883,
        metadata=setting(Integer(1, 65535), "Broker TCP port (1883 plain, 8883 TLS)."),
    )
    client_id: str = field(
        default="",
        metadata=setting(
            Pattern(r"^[A-Za-z0-9_-]{1,64}$", "1 to 64 letters, digits, _ or -", allow_empty=True),
            "MQTT client id; empty = derived from device.id.",
        ),
    )
    keepalive_s: int = field(
        default=60,
        metadata=setting(Integer(5, 3600, "s"), "MQTT keep-alive interval in s."),
    )
    protocol: MqttProtocol = field(
        default="5",
        metadata=setting(OneOf(("3.1.1", "5")), "MQTT protocol version."),
    )
    username: str = field(
        default="",
        metadata=setting(Text(0, 256, "text"), "Broker user name; empty = anonymous."),
    )
    password_file: str = field(
        default="",
        metadata=setting(
            FilePath(), "File holding the broker password (keeps it out of this file)."
        ),
    )
    tls: bool = field(
        default=False,
        metadata=setting(Boolean(), "Connect with TLS."),
    )
    ca_file: str = field(
        default="",
        metadata=setting(FilePath(), "CA certificate(s) for TLS; empty = system store."),
    )
    certfile: str = field(
        default="",
        metadata=setting(FilePath(), "Client certificate for TLS; needs mqtt.keyfile."),
    )
    keyfile: str = field(
        default="",
        metadata=setting(FilePath(), "Private key of the client certificate."),
    )
    topic_prefix: str = field(
        default="heartsong",
        metadata=setting(MqttTopic(), "Device topics live under <prefix>/<device.id>/."),
    )
    discovery_prefix: str = field(
        default="homeassistant",
        metadata=setting(MqttTopic(), "Home Assistant discovery prefix."),
    )
    publish_interval_s: float = field(
        default=5.0,
        metadata=setting(Number(1, 3600, "s"), "Interval between metric messages in s."),
    )
    publish: str = field(
        default="all",
        metadata=setting(
            Pattern(
                r"^[a-z_0-9]+(\s*,\s*[a-z_0-9]+)*$",
                "comma-separated state keys and groups, e.g. \"stress_state, device\"",
            ),
            "Which values leave the device: state keys (hr_bpm, stress_state, ...) and "
            "groups all, metrics, device; others are never published.",
        ),
    )
    password_env: str = field(
        default="",
        metadata=setting(
            Pattern(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", "an environment variable name",
                    allow_empty=True),
            "Environment variable holding the broker password (instead of "
            "mqtt.password_file).",
        ),
    )
    tls_insecure: bool = field(
        default=False,
        metadata=setting(
            Boolean(),
            "Skip the check of the broker's host name against its certificate (the "
            "chain is still verified); warned on every connect.",
        ),
    )
    spool_max_messages: int = field(
        default=17280,
        metadata=setting(
            Integer(100, 1_000_000, "documents"),
            "State documents kept on disk while the broker is away (17280 = 24 h at "
            "5 s); the oldest are dropped, and counted, past this.",
        ),
    )
    command_rate_per_s: float = field(
        default=5.0,
        metadata=setting(
            Number(0.1, 100, "commands/s"), "Commands accepted per second on average."
        ),
    )
    command_burst: int = field(
        default=20,
        metadata=setting(Integer(1, 1000, "commands"), "Commands accepted back to back."),
    )


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated sleeper used by ``heartsong demo`` and by the tests."""

    seed: int = field(
        default=1,
        metadata=setting(Integer(0, 2**31 - 1), "Random seed; the same seed gives the same night."),
    )
    hr_bpm: float = field(
        default=64.0,
        metadata=setting(Number(40, 120, "beats/min"), "Resting heart rate in beats/min."),
    )
    rmssd_ms: float = field(
        default=42.0,
        metadata=setting(Number(5, 150, "ms"), "Resting RMSSD (beat-to-beat variability) in ms."),
    )
    breath_rate_bpm: float = field(
        default=14.0,
        metadata=setting(
            Number(4, 30, "breaths/min"), "Spontaneous breathing rate in breaths/min."
        ),
    )
    stress: float = field(
        default=0.5,
        metadata=setting(
            Number(0, 1), "Stress at the start, 0 = calm to 1 = stressed (dimensionless)."
        ),
    )
    follows_pacer: bool = field(
        default=True,
        metadata=setting(Boolean(), "Breathing entrains to the audio breath pacer."),
    )
    ppg_fs_hz: float = field(
        default=100.0,
        metadata=setting(Number(25, 400, "Hz"), "Sample rate of the simulated PPG in Hz."),
    )
    motion_artifacts_per_hour: float = field(
        default=6.0,
        metadata=setting(
            Number(0, 120, "1/h"), "Mean rate of movement artifacts in the PPG, per hour."
        ),
    )
    start_time: str = field(
        default="22:30",
        metadata=setting(ClockTime(), "Local time of day at which the simulated night starts."),
    )


@dataclass(frozen=True)
class StressConfig:
    """The stress classifier (int8 TFLite model) and its personal baseline."""

    model_dir: str = field(
        default="",
        metadata=setting(
            Text(max_len=4096),
            "Folder with stress_int8.tflite and stress_features.json; empty = the "
            "models/ folder shipped with heartsong.",
        ),
    )


@dataclass(frozen=True)
class StoreConfig:
    """The session history kept on the device (SQLite in ``device.state_dir``)."""

    enabled: bool = field(
        default=True,
        metadata=setting(Boolean(), "Record sessions, metrics and events on the device."),
    )
    retention_days: int = field(
        default=90,
        metadata=setting(
            Integer(0, 3650, "days"), "Days sessions are kept (applied daily); 0 = forever."
        ),
    )
    flush_s: float = field(
        default=1.0,
        metadata=setting(
            Number(0.1, 1.0, "s"),
            "Seconds between commits: the most data a crash or power cut can lose.",
        ),
    )
    record_beats: bool = field(
        default=True,
        metadata=setting(Boolean(), "Store every beat time and RR interval (for export)."),
    )


@dataclass(frozen=True)
class Config:
    """The whole configuration: one frozen section per TOML table."""

    device: DeviceConfig = field(default_factory=DeviceConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    ble: BleConfig = field(default_factory=BleConfig)
    dsp: DspConfig = field(default_factory=DspConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    therapy: TherapyConfig = field(default_factory=TherapyConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    stress: StressConfig = field(default_factory=StressConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    controls: ControlsConfig = field(default_factory=ControlsConfig)
    simulation: SimulationConfig = field(default_factory=SimulationConfig)


#: Section name -> section dataclass, in file order.
_SECTIONS: dict[str, type[Any]] = {f.name: type(getattr(Config(), f.name)) for f in fields(Config)}
_FIELDS: dict[str, dict[str, Field[Any]]] = {
    name: {f.name: f for f in fields(cls)} for name, cls in _SECTIONS.items()
}


# --------------------------------------------------------------------------- key lookup


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _show_key(name: str) -> str:
    """A key as TOML would write it: bare if it can be, else quoted (keeps errors one line)."""
    return name if _BARE_KEY.fullmatch(name) else toml_value(name)


def _unknown(
    source: str, section: str, name: str, value: object, candidates: list[str]
) -> ConfigError:
    """An "unknown key" error, with a "did you mean" for a close or misplaced name."""
    key = f"{section}.{_show_key(name)}" if section else _show_key(name)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    if close:
        hint = f"{section}.{close[0]}" if section else f"[{close[0]}]"
    else:  # the right key in the wrong section (or at the top level)?
        homes = [s for s, fs in _FIELDS.items() if name in fs and s != section]
        hint = f"{homes[0]}.{name}" if homes else ""
    if section:
        what = "unknown key"
    else:
        what = "unknown section" if isinstance(value, Mapping) else "key outside any section"
    if hint:
        return ConfigError(source, key, value, f"{what}; did you mean {hint}?")
    return ConfigError(source, key, value, f"{what}; allowed: {', '.join(candidates)}")


def _section(name: str, value: object, source: str) -> str:
    """Check a top-level name; return it if it is a section."""
    if name in RENAMED:
        raise ConfigError(source, name, value, f"renamed to {RENAMED[name]}")
    if name not in _SECTIONS:
        raise _unknown(source, "", name, value, list(_SECTIONS))
    return name


def _field(section: str, name: str, value: object, source: str) -> Field[Any]:
    """Check a key inside a section; return its dataclass field."""
    key = f"{section}.{name}"
    if key in RENAMED:
        raise ConfigError(source, key, value, f"renamed to {RENAMED[key]}")
    found = _FIELDS[section].get(name)
    if found is None:
        raise _unknown(source, section, name, value, list(_FIELDS[section]))
    return found


def _checked(f: Field[Any], key: str, value: object, source: str) -> object:
    """Run a field's check; turn a failure into a ConfigError naming source and key."""
    try:
        return field_check(f)(value)
    except CheckError as exc:
        raise ConfigError(source, key, value, exc.expected) from None


# --------------------------------------------------------------------------- cross-field rules

#: A broken rule: (dotted key to blame, its value, what is expected).
_Broken = tuple[str, object, str]
_Rule = Callable[[Config], _Broken | None]


def _rule_some_source(cfg: Config) -> _Broken | None:
    if not (cfg.sources.ppg or cfg.sources.ble):
        return "sources.ppg", False, "must be true when sources.ble = false (no heart source)"
    return None


def _rule_update_within_window(cfg: Config) -> _Broken | None:
    if cfg.dsp.update_s > cfg.dsp.window_s:
        return (
            "dsp.update_s",
            cfg.dsp.update_s,
            f"must not exceed dsp.window_s = {cfg.dsp.window_s:g} (s)",
        )
    return None


def _rule_wav_needs_path(cfg: Config) -> _Broken | None:
    if cfg.audio.output == "wav" and not cfg.audio.wav_path:
        return "audio.wav_path", "", 'must be set when audio.output = "wav"'
    return None


def _rule_volume_ceiling(cfg: Config) -> _Broken | None:
    if cfg.audio.volume_db > cfg.audio.max_volume_db:
        return (
            "audio.volume_db",
            cfg.audio.volume_db,
            f"must not exceed audio.max_volume_db = {cfg.audio.max_volume_db:g} (dB)",
        )
    return None


def _rule_client_cert_pair(cfg: Config) -> _Broken | None:
    m = cfg.mqtt
    if bool(m.certfile) != bool(m.keyfile):
        if m.certfile:
            return "mqtt.keyfile", m.keyfile, "must be set when mqtt.certfile is set"
        return "mqtt.certfile", m.certfile, "must be set when mqtt.keyfile is set"
    return None


def _rule_password_needs_user(cfg: Config) -> _Broken | None:
    if cfg.mqtt.password_file and not cfg.mqtt.username:
        return "mqtt.username", "", "must be set when mqtt.password_file is set"
    if cfg.mqtt.password_env and not cfg.mqtt.username:
        return "mqtt.username", "", "must be set when mqtt.password_env is set"
    return None


def _rule_one_password_source(cfg: Config) -> _Broken | None:
    if cfg.mqtt.password_file and cfg.mqtt.password_env:
        return ("mqtt.password_env", cfg.mqtt.password_env,
                "must be empty when mqtt.password_file is set (one password source)")
    return None


def _rule_publish_names(cfg: Config) -> _Broken | None:
    from heartsong.mqtt.privacy import resolve_publish

    try:
        resolve_publish(cfg.mqtt.publish)
    except InputDataError as exc:
        return "mqtt.publish", cfg.mqtt.publish, f"must list only {exc.expected}"
    return None


def _rule_sensor_timing(cfg: Config) -> _Broken | None:
    # The datasheet's sample-rate x pulse-width limits live with the driver's register map.
    from heartsong.sensors.max30102_settings import settings_from_config

    try:
        settings_from_config(cfg.sensor)
    except ConfigError as exc:
        return exc.key, exc.value, exc.expected
    return None


def _rule_known_soundscape(cfg: Config) -> _Broken | None:
    from heartsong.audio.soundscapes import PRESETS

    if cfg.audio.soundscape not in PRESETS:
        return "audio.soundscape", cfg.audio.soundscape, "one of " + ", ".join(PRESETS)
    return None


def learn_candidates(text: str) -> tuple[str, ...]:
    """The soundscape names of ``therapy.learn_candidates`` (a comma-separated list)."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _rule_therapy(cfg: Config) -> _Broken | None:
    from heartsong.audio.soundscapes import PRESETS

    t = cfg.therapy
    if t.masking_soundscape and t.masking_soundscape not in PRESETS:
        return (
            "therapy.masking_soundscape", t.masking_soundscape,
            "'' or one of " + ", ".join(PRESETS),
        )
    names = learn_candidates(t.learn_candidates)
    unknown = [n for n in names if n not in PRESETS]
    if unknown or len(set(names)) != len(names):
        return (
            "therapy.learn_candidates", t.learn_candidates,
            "distinct soundscape names from " + ", ".join(PRESETS),
        )
    if t.resonance_max_bpm < t.resonance_min_bpm + 0.5:
        return (
            "therapy.resonance_max_bpm", t.resonance_max_bpm,
            f"at least resonance_min_bpm + 0.5 = {t.resonance_min_bpm + 0.5:g} breaths/min",
        )
    return None


def _rule_controls(cfg: Config) -> _Broken | None:
    return controls_problem(cfg.controls, sensor_int_pin=cfg.sensor.int_pin)


_RULES: tuple[_Rule, ...] = (
    _rule_known_soundscape,
    _rule_therapy,
    _rule_controls,
    _rule_some_source,
    _rule_sensor_timing,
    _rule_update_within_window,
    _rule_wav_needs_path,
    _rule_volume_ceiling,
    _rule_client_cert_pair,
    _rule_password_needs_user,
    _rule_one_password_source,
    _rule_publish_names,
)


def _check_rules(cfg: Config, source: str) -> Config:
    """Apply the rules that involve more than one key; return ``cfg`` unchanged."""
    for rule in _RULES:
        broken = rule(cfg)
        if broken is not None:
            raise ConfigError(source, *broken)
    m = cfg.mqtt
    if not m.tls and (m.ca_file or m.certfile or m.keyfile):
        logger.warning("%s: mqtt TLS files are ignored while mqtt.tls = false", source)
    return cfg


# --------------------------------------------------------------------------- loading


def config_from_mapping(data: Mapping[str, object], source: str) -> Config:
    """Validate a parsed TOML document (section -> key -> value) into a :class:`Config`.

    Parameters
    ----------
    data:
        Tables by section name, as returned by :func:`tomllib.loads`. Missing sections
        and keys take their defaults.
    source:
        Where ``data`` came from (a file path or ``"<command line>"``), named in errors.

    Raises
    ------
    ConfigError
        At the first renamed or unknown key, wrong type, out-of-range value or broken
        cross-field rule.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(source, "", data, "must be a table of sections")
    sections: dict[str, Any] = {}
    for raw_name, table in data.items():
        name = _section(str(raw_name), table, source)
        if not isinstance(table, Mapping):
            raise ConfigError(source, name, table, f"must be a table of settings ([{name}])")
        values: dict[str, object] = {}
        for raw_key, value in table.items():
            f = _field(name, str(raw_key), value, source)
            values[f.name] = _checked(f, f"{name}.{f.name}", value, source)
        sections[name] = _SECTIONS[name](**values)
    return _check_rules(Config(**sections), source)


def parse_config(text: str, source: str) -> Config:
    """Parse and validate TOML text; a syntax error names the line and column.

    Raises
    ------
    ConfigError
        For invalid TOML (message ``invalid TOML: ... (at line L, column C)``) and for
        everything :func:`config_from_mapping` rejects.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = f"end of document, line {text.count(chr(10)) + 1}"
        reason = str(exc).replace("end of document", where)
        raise ConfigError(source, "", None, f"invalid TOML: {reason}") from None
    return config_from_mapping(data, source)


def load_config(path: Path | None = None) -> Config:
    """Load the configuration file, or the defaults.

    Parameters
    ----------
    path:
        File to read. ``None`` reads :data:`DEFAULT_PATH` if it exists and otherwise
        returns the defaults.

    Raises
    ------
    ConfigError
        When the file cannot be read (``cannot read: <reason>``), is not UTF-8, is not
        valid TOML, or holds an invalid value.
    """
    if path is None:
        if not DEFAULT_PATH.exists():
            logger.info("no %s; using the default configuration", DEFAULT_PATH)
            return Config()
        path = DEFAULT_PATH
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), "", None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", None, f"cannot read: not UTF-8 text ({exc})") from None
    cfg = parse_config(text, str(path))
    logger.debug("configuration loaded from %s", path)
    return cfg


def with_overrides(
    cfg: Config, overrides: Mapping[str, object], source: str = "<command line>"
) -> Config:
    """Return ``cfg`` with some keys replaced, validated by the same checks and rules.

    Parameters
    ----------
    overrides:
        Dotted key -> value, e.g. ``{"audio.output": "none", "simulation.seed": 3}``.
        ``None`` unsets an optional key such as ``sensor.int_pin``.
    source:
        Named in errors instead of a file.
    """
    changes: dict[str, dict[str, object]] = {}
    for dotted, value in overrides.items():
        section, dot, name = str(dotted).partition(".")
        if not dot:
            if section in RENAMED:
                raise ConfigError(source, section, value, f"renamed to {RENAMED[section]}")
            raise ConfigError(
                source, _show_key(section), value, "must be SECTION.KEY, e.g. audio.volume_db"
            )
        section = _section(section, value, source)
        f = _field(section, name, value, source)
        changes.setdefault(section, {})[f.name] = _checked(f, f"{section}.{name}", value, source)
    sections = {s: replace(getattr(cfg, s), **kv) for s, kv in changes.items()}
    return _check_rules(replace(cfg, **sections), source)


def parse_override(text: str) -> tuple[str, object]:
    """Split a command-line ``KEY=VALUE`` into a dotted key and a typed value.

    The value is read as a TOML value (``3``, ``-12.5``, ``true``, ``"x"``); for keys
    whose value is text, unquoted text is taken as is (``audio.output=none``,
    ``mqtt.protocol=5``). Pass the result to :func:`with_overrides`, which validates it.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError("<command line>", "", None, f"{text!r} must be KEY=VALUE")
    value: object = raw
    if "\n" not in raw:
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
    section, _, name = key.partition(".")
    f = _FIELDS.get(section, {}).get(name)
    if f is not None and isinstance(f.default, str) and not isinstance(value, str):
        value = raw
    return key, value


# --------------------------------------------------------------------------- output


def config_to_mapping(cfg: Config) -> dict[str, dict[str, object]]:
    """The configuration as plain nested dicts (for JSON); unset keys are ``None``."""
    return {
        s: {f.name: getattr(getattr(cfg, s), f.name) for f in fs.values()}
        for s, fs in _FIELDS.items()
    }


def _comment(text: str) -> Iterator[str]:
    for line in textwrap.wrap(text, width=98):
        yield f"# {line}"


def render_toml(cfg: Config, *, docs: bool = True) -> str:
    """Write the full effective configuration as TOML that loads back to an equal ``cfg``.

    Parameters
    ----------
    docs:
        Precede each section with its purpose and each key with ``# doc (allowed: ...)``.
        Keys that are not set are written commented out, or as ``false`` when their
        default is set (a button pin that is not wired).
    """
    lines: list[str] = []
    for s, fs in _FIELDS.items():
        if lines:
            lines.append("")
        if docs:
            purpose = (_SECTIONS[s].__doc__ or "").strip().splitlines()[0]
            lines.extend(_comment(purpose.replace("``", "`")))
        lines.append(f"[{s}]")
        section = getattr(cfg, s)
        for f in fs.values():
            value = getattr(section, f.name)
            check = field_check(f)
            if docs:
                lines.append("")
                lines.extend(_comment(f"{field_doc(f)} (allowed: {check.allowed})"))
            if value is None and f.default is not None:
                # Left out, the key would take its (set) default: write the unset form.
                lines.append(f"{f.name} = false")
            elif value is None:
                lines.append(f"# {f.name} =   (not set)")
            else:
                lines.append(f"{f.name} = {check.render(value)}")
    return "\n".join(lines) + "\n"


_EXAMPLE_HEADER = """\
# heartsong configuration: every key, with its default value and what it accepts.
#
# Copy this file to /etc/heartsong/config.toml (or pass --config FILE) and change what
# you need; keys you leave out keep their defaults. `heartsong config --print` shows the
# effective configuration. Generated by tools/gen_example_config.py; do not edit by hand.
"""


def example_toml() -> str:
    """The documented example file: the defaults rendered with docs, under a header."""
    return _EXAMPLE_HEADER + "\n" + render_toml(Config(), docs=True)
