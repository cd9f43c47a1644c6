"""``heartsong doctor``: check that every part the configuration relies on is present.

Each probe looks at one part of the machine (I2C bus and PPG sensor, audio output,
Bluetooth, MQTT broker, files, writable directories, TFLite runtime) and returns a
:class:`Check` that names the part, says what was found and, when something is missing,
the command or setting that fixes it. Whether a part is *required* follows from the
configuration: the sensor only when ``sources.ppg``, Bluetooth only when ``sources.ble``,
the broker only when ``mqtt.enabled``, the sound card only when ``audio.output = "device"``.

Where the probes look is injected through :class:`Machine` (device and sysfs roots, the I2C
bus opener, the audio device lister, the module importer, the environment), so tests run
every probe against a temporary directory and fake buses, without hardware. A probe never
raises: an unexpected error becomes a failed check that carries the error text.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple, Protocol

from heartsong.config import Config
from heartsong.stress.runtime import RuntimeMissingError, find_runtime

__all__ = [
    "AudioOutputs",
    "Check",
    "I2cBus",
    "Machine",
    "exit_code",
    "format_report",
    "run_doctor",
]

logger = logging.getLogger(__name__)

#: MAX30102 PART_ID register and the value every MAX30102 answers with (datasheet, Table 1).
MAX30102_REG_PART_ID = 0xFF
MAX30102_PART_ID = 0x15

#: Modules that provide a TFLite ``Interpreter``, in order of preference.

_FIX_ENABLE_I2C = "enable I2C: dtparam=i2c_arm=on in /boot/firmware/config.txt, then reboot"
_FIX_WIRING = "check wiring SDA=GPIO2, SCL=GPIO3, VIN 3V3"
_FIX_SPEAKER = "install/plug a speaker; see `aplay -l`"
_FIX_BLUEZ = "sudo apt install bluez; sudo systemctl enable --now bluetooth"


@dataclass(frozen=True)
class Check:
    """The outcome of one probe.

    Attributes
    ----------
    name:
        The part that was looked at, e.g. ``"i2c bus 1"``.
    ok:
        True when the part is present and answering.
    required:
        True when this configuration cannot run without the part.
    detail:
        What was found (or the error text when the probe itself failed).
    fix:
        How to fix a missing part; empty when ``ok``.
    """

    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""


class I2cBus(Protocol):
    """The part of :class:`smbus2.SMBus` the sensor probe uses."""

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        """Read one register (8 bit) of the device at the 7-bit address ``i2c_addr``."""
        ...

    def close(self) -> None:
        """Release the bus."""
        ...


@dataclass(frozen=True)
class AudioOutputs:
    """Names of the devices that can play sound, and the system default one (if any)."""

    names: tuple[str, ...]
    default: str | None


def _open_smbus2(path: Path) -> I2cBus:
    import smbus2

    bus: I2cBus = smbus2.SMBus(str(path))
    return bus


def _pyaudio_outputs() -> AudioOutputs:
    """The output devices as the device's own audio backend sees them (which also keeps
    ALSA's and JACK's start-up chatter out of the report)."""
    from heartsong.audio.portaudio import PortAudioBackend

    backend = PortAudioBackend()
    try:
        default = backend.default_device()
        return AudioOutputs(tuple(d.name for d in backend.devices()),
                            None if default is None else default.name)
    finally:
        backend.close()


def _environ() -> dict[str, str]:
    return dict(os.environ)


@dataclass(frozen=True)
class Machine:
    """Where the probes look; the defaults look at this machine.

    Attributes
    ----------
    dev_root, sys_root, run_root:
        Stand-ins for ``/dev``, ``/sys`` and ``/run``.
    open_i2c:
        Opens the I2C bus device file (default :class:`smbus2.SMBus`).
    list_audio_outputs:
        Lists the output devices (default: PyAudio).
    import_module:
        Imports a module by dotted name (default :func:`importlib.import_module`).
    env:
        Environment variables (``NUMBA_CACHE_DIR``, ``XDG_CACHE_HOME``, ``HOME``).
    package_dir:
        The installed ``heartsong`` package, where numba caches beside the sources.
    connect_timeout_s:
        TCP connect timeout for the broker probe, in s.
    """

    dev_root: Path = Path("/dev")
    sys_root: Path = Path("/sys")
    run_root: Path = Path("/run")
    open_i2c: Callable[[Path], I2cBus] = _open_smbus2
    list_audio_outputs: Callable[[], AudioOutputs] = _pyaudio_outputs
    import_module: Callable[[str], object] = importlib.import_module
    env: Mapping[str, str] = field(default_factory=_environ)
    package_dir: Path = Path(__file__).resolve().parent
    connect_timeout_s: float = 2.0


class _Outcome(NamedTuple):
    ok: bool
    detail: str
    fix: str = ""


def _run(name: str, required: bool, probe: Callable[[], _Outcome]) -> Check:
    """Run one probe; an exception it raises becomes a failed check with the error text."""
    try:
        ok, detail, fix = probe()
    except Exception as exc:
        logger.debug("doctor probe %r failed", name, exc_info=True)
        return Check(name, False, required, f"probe failed: {type(exc).__name__}: {exc}")
    return Check(name, ok, required, detail, "" if ok else fix)


# --------------------------------------------------------------------------- probes


def _i2c_bus(path: Path, machine: Machine) -> _Outcome:
    if not path.exists():
        return _Outcome(False, f"{path} not found", _FIX_ENABLE_I2C)
    try:
        machine.open_i2c(path).close()
    except PermissionError:
        return _Outcome(
            False,
            f"{path}: permission denied",
            "add the user to the i2c group: sudo usermod -aG i2c $USER, then log in again",
        )
    return _Outcome(True, f"{path} opens")


def _max30102(path: Path, address: int, machine: Machine) -> _Outcome:
    if not path.exists():
        return _Outcome(False, f"not probed: {path} not found")
    bus = machine.open_i2c(path)
    try:
        part_id = bus.read_byte_data(address, MAX30102_REG_PART_ID)
    except OSError as exc:  # errno 121 (EREMOTEIO): nothing acknowledged the address
        return _Outcome(False, f"no answer at 0x{address:02X} on {path} ({exc})", _FIX_WIRING)
    finally:
        bus.close()
    if part_id != MAX30102_PART_ID:
        return _Outcome(
            False,
            f"part ID 0x{part_id:02X} at 0x{address:02X}, "
            f"expected 0x{MAX30102_PART_ID:02X} (not a MAX30102?)",
            f"{_FIX_WIRING}; check sensor.address",
        )
    return _Outcome(True, f"MAX30102 (part ID 0x{part_id:02X}) at 0x{address:02X}")


def _audio_output(wanted: str, machine: Machine) -> _Outcome:
    outputs = machine.list_audio_outputs()
    if not outputs.names:
        return _Outcome(False, "no output device", _FIX_SPEAKER)
    if not wanted:
        if outputs.default is None:
            return _Outcome(False, "no default output device", _FIX_SPEAKER)
        return _Outcome(True, f"default device {outputs.default!r}")
    for name in outputs.names:
        if wanted.lower() in name.lower():
            return _Outcome(True, f"{name!r} matches audio.device = {wanted!r}")
    shown = ", ".join(repr(n) for n in outputs.names)
    return _Outcome(
        False,
        f"no output device matches audio.device = {wanted!r}; found {shown}",
        f"{_FIX_SPEAKER}; or set audio.device to part of one of the names found",
    )


def _bluetooth_adapter(machine: Machine) -> _Outcome:
    class_dir = machine.sys_root / "class" / "bluetooth"
    adapters = sorted(p.name for p in class_dir.glob("hci*")) if class_dir.is_dir() else []
    if not adapters:
        return _Outcome(
            False,
            f"no adapter in {class_dir}",
            "plug in a Bluetooth adapter, or unblock the built-in one: rfkill unblock "
            "bluetooth (and no dtoverlay=disable-bt in /boot/firmware/config.txt)",
        )
    return _Outcome(True, ", ".join(adapters))


def _system_bus(machine: Machine) -> _Outcome:
    socket_path = machine.run_root / "dbus" / "system_bus_socket"
    if not socket_path.exists():
        return _Outcome(False, f"{socket_path} not found (BlueZ is reached over D-Bus)", _FIX_BLUEZ)
    return _Outcome(True, f"{socket_path}")


def _broker(host: str, port: int, enabled: bool, machine: Machine) -> _Outcome:
    if not enabled:
        return _Outcome(True, "not used (mqtt.enabled = false)")
    try:
        with socket.create_connection((host, port), timeout=machine.connect_timeout_s):
            pass
    except OSError as exc:
        return _Outcome(
            False,
            f"cannot connect to {host}:{port} ({exc})",
            "start the broker (sudo apt install mosquitto) or correct mqtt.host / mqtt.port",
        )
    return _Outcome(True, f"{host}:{port} accepts connections")


def _readable_file(key: str, path: Path) -> _Outcome:
    if not path.is_file():
        return _Outcome(False, f"{path} not found", f"create {path} or correct {key}")
    if not os.access(path, os.R_OK):
        return _Outcome(False, f"{path} not readable", f"make {path} readable by this user")
    return _Outcome(True, f"{path}")


def _writable_dir(path: Path) -> tuple[bool, str]:
    """Whether ``path`` is a writable directory, or could be created as one."""
    if path.exists():
        if not path.is_dir():
            return False, f"{path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return False, f"{path} is not writable"
        return True, f"{path} is writable"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return False, f"{path} cannot be created: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return False, f"{path} cannot be created: {ancestor} is not writable"
    return True, f"{path} will be created (in {ancestor})"


def _state_dir(path: Path) -> _Outcome:
    ok, detail = _writable_dir(path)
    return _Outcome(
        ok, detail, f"sudo install -d -o $USER {path}, or set device.state_dir (StateDirectory=)"
    )


def _wav_dir(path: Path) -> _Outcome:
    ok, detail = _writable_dir(path.parent)
    return _Outcome(ok, detail, f"make {path.parent} writable or correct audio.wav_path")


def _numba_cache(state_dir: str, machine: Machine) -> _Outcome:
    """Mirror numba's cache locators: ``NUMBA_CACHE_DIR``, else beside the sources, else
    the user-wide cache; the first usable one is where compiled kernels go."""
    fix = f"set NUMBA_CACHE_DIR to a writable directory, e.g. {state_dir}/numba"
    user_dir = machine.env.get("NUMBA_CACHE_DIR", "")
    if user_dir:
        ok, detail = _writable_dir(Path(user_dir))
        return _Outcome(ok, f"NUMBA_CACHE_DIR: {detail}", fix)
    candidates = [machine.package_dir / "__pycache__"]
    xdg = machine.env.get("XDG_CACHE_HOME", "")
    home = machine.env.get("HOME", "")
    if xdg:
        candidates.append(Path(xdg) / "numba")
    elif home:
        candidates.append(Path(home) / ".cache" / "numba")
    reasons = []
    for candidate in candidates:
        ok, detail = _writable_dir(candidate)
        if ok:
            return _Outcome(True, detail)
        reasons.append(detail)
    return _Outcome(False, "; ".join(reasons), fix)


def _tflite_runtime(machine: Machine) -> _Outcome:
    try:
        runtime = find_runtime(machine.import_module)
    except RuntimeMissingError as exc:
        return _Outcome(False, str(exc), "pip install ai-edge-litert (`make venv` installs it)")
    return _Outcome(True, runtime.module)


# --------------------------------------------------------------------------- public API


def run_doctor(
    cfg: Config,
    config_path: str,
    machine: Machine | None = None,
    config_error: str = "",
) -> list[Check]:
    """Probe every part ``cfg`` relies on; one :class:`Check` per part, never raising.

    Parameters
    ----------
    cfg:
        The loaded configuration; it decides which parts are required.
    config_path:
        Where ``cfg`` came from, shown in the report.
    machine:
        Where to look; default this machine.
    config_error:
        Why the configuration file was refused (then ``cfg`` is the defaults, and every
        other part is still checked against them).
    """
    m = machine if machine is not None else Machine()
    bus_path = m.dev_root / f"i2c-{cfg.sensor.i2c_bus}"
    audio, mqtt, ppg, ble = cfg.audio, cfg.mqtt, cfg.sources.ppg, cfg.sources.ble
    checks = [
        Check("config", True, True, f"loaded from {config_path}") if not config_error
        else Check("config", False, True, config_error,
                   "correct that line; the other checks below use the defaults"),
        _run(f"i2c bus {cfg.sensor.i2c_bus}", ppg, partial(_i2c_bus, bus_path, m)),
        _run("max30102 sensor", ppg, partial(_max30102, bus_path, cfg.sensor.address, m)),
        _run("audio output", audio.output == "device", partial(_audio_output, audio.device, m)),
        _run("bluetooth adapter", ble, partial(_bluetooth_adapter, m)),
        _run("bluetooth d-bus", ble, partial(_system_bus, m)),
        _run(
            f"mqtt broker {mqtt.host}:{mqtt.port}",
            mqtt.enabled,
            partial(_broker, mqtt.host, mqtt.port, mqtt.enabled, m),
        ),
    ]
    mqtt_files = {
        "mqtt.password_file": mqtt.password_file,
        "mqtt.ca_file": mqtt.ca_file,
        "mqtt.certfile": mqtt.certfile,
        "mqtt.keyfile": mqtt.keyfile,
    }
    checks += [
        _run(key, mqtt.enabled, partial(_readable_file, key, Path(value)))
        for key, value in mqtt_files.items()
        if value
    ]
    if audio.output == "wav":
        checks.append(_run("wav output dir", True, partial(_wav_dir, Path(audio.wav_path))))
    state_dir = cfg.device.state_dir
    checks += [
        _run("state dir", True, partial(_state_dir, Path(state_dir))),
        _run("numba cache dir", True, partial(_numba_cache, state_dir, m)),
        _run("tflite runtime", True, partial(_tflite_runtime, m)),
    ]
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    """1 if any required part is missing, else 0 (the exit code of ``heartsong doctor``)."""
    return int(any(c.required and not c.ok for c in checks))


def format_report(checks: Sequence[Check]) -> str:
    """One line per check (``ok``, ``MISSING`` if required, ``warn`` if not), fixes indented.

    The last line says whether every required part is present, and names those that are not.
    """
    lines = []
    for c in checks:
        label = "ok" if c.ok else ("MISSING" if c.required else "warn")
        note = "" if c.ok or c.required else " (not required by this configuration)"
        lines.append(f"{label:<8}{c.name}: {c.detail}{note}")
        if not c.ok and c.fix:
            lines.append(f"{'':8}fix: {c.fix}")
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        lines.append(f"{len(missing)} required part(s) missing: {', '.join(missing)}")
    else:
        lines.append("all required parts present")
    return "\n".join(lines)
