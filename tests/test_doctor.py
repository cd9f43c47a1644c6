"""heartsong doctor: each probe's missing and present outcome, required-ness, the report."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from heartsong.config import Config, with_overrides
from heartsong.doctor import (
    MAX30102_PART_ID,
    MAX30102_REG_PART_ID,
    AudioOutputs,
    Check,
    Machine,
    exit_code,
    format_report,
    run_doctor,
)

if TYPE_CHECKING:
    from conftest import JackServer, MosquittoBroker


class FakeI2cBus:
    """An I2C bus with devices at some addresses; others do not acknowledge (EREMOTEIO)."""

    def __init__(self, devices: Mapping[int, Mapping[int, int]]) -> None:
        self.devices = devices
        self.closed = False

    def read_byte_data(self, i2c_addr: int, register: int) -> int:
        if i2c_addr not in self.devices:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return self.devices[i2c_addr][register]

    def close(self) -> None:
        self.closed = True


def _cfg(**overrides: object) -> Config:
    """A configuration with dotted-key overrides (``audio__device`` -> ``audio.device``)."""
    return with_overrides(Config(), {k.replace("__", "."): v for k, v in overrides.items()})


def _healthy(tmp_path: Path, sensor_id: int = MAX30102_PART_ID) -> Machine:
    """A machine on which every part is present: I2C bus 1 with a MAX30102 at 0x57, an
    adapter, the D-Bus socket, a speaker, a TFLite runtime, a writable cache."""
    (tmp_path / "dev").mkdir(parents=True)
    (tmp_path / "dev" / "i2c-1").touch()
    (tmp_path / "sys" / "class" / "bluetooth" / "hci0").mkdir(parents=True)
    (tmp_path / "run" / "dbus").mkdir(parents=True)
    (tmp_path / "run" / "dbus" / "system_bus_socket").touch()
    (tmp_path / "pkg").mkdir()
    return Machine(
        dev_root=tmp_path / "dev",
        sys_root=tmp_path / "sys",
        run_root=tmp_path / "run",
        open_i2c=lambda _path: FakeI2cBus({0x57: {MAX30102_REG_PART_ID: sensor_id}}),
        list_audio_outputs=lambda: AudioOutputs(("bcm2835 Headphones", "USB Audio"), "USB Audio"),
        import_module=lambda _name: SimpleNamespace(Interpreter=object),
        env={"HOME": str(tmp_path / "home")},
        package_dir=tmp_path / "pkg",
    )


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def all_sources(tmp_path: Path) -> Config:
    return _cfg(sources__ppg=True, sources__ble=True, device__state_dir=str(tmp_path / "state"))


def test_healthy_machine_has_every_part(tmp_path: Path, all_sources: Config) -> None:
    checks = run_doctor(all_sources, "/etc/heartsong/config.toml", _healthy(tmp_path))

    assert all(c.ok for c in checks), format_report(checks)
    assert all(c.fix == "" for c in checks)
    assert exit_code(checks) == 0
    report = format_report(checks)
    assert "/etc/heartsong/config.toml" in report
    assert report.splitlines()[-1] == "all required parts present"
    assert "MISSING" not in report


def test_bare_machine_misses_sensor_and_bluetooth_with_fixes(
    tmp_path: Path, all_sources: Config
) -> None:
    bare = replace(
        _healthy(tmp_path / "m"), dev_root=tmp_path, sys_root=tmp_path, run_root=tmp_path
    )

    checks = _by_name(run_doctor(all_sources, "<defaults>", bare))

    assert not checks["i2c bus 1"].ok and checks["i2c bus 1"].required
    assert "dtparam=i2c_arm=on" in checks["i2c bus 1"].fix
    assert not checks["max30102 sensor"].ok and checks["max30102 sensor"].required
    assert not checks["bluetooth adapter"].ok and checks["bluetooth adapter"].required
    assert not checks["bluetooth d-bus"].ok
    assert "sudo apt install bluez" in checks["bluetooth d-bus"].fix
    assert exit_code(list(checks.values())) == 1


def test_report_names_every_missing_part_and_its_fix(tmp_path: Path, all_sources: Config) -> None:
    bare = replace(
        _healthy(tmp_path / "m"), dev_root=tmp_path, sys_root=tmp_path, run_root=tmp_path
    )
    checks = run_doctor(all_sources, "<defaults>", bare)
    missing = [c for c in checks if not c.ok]

    report = format_report(checks)

    assert {c.name for c in missing} == {
        "i2c bus 1",
        "max30102 sensor",
        "bluetooth adapter",
        "bluetooth d-bus",
    }
    lines = report.splitlines()
    for c in missing:
        assert f"MISSING {c.name}: {c.detail}" in lines
        if c.fix:
            assert f"        fix: {c.fix}" in lines
    assert lines[-1].startswith(f"{len(missing)} required part(s) missing: ")
    assert all(c.name in lines[-1] for c in missing)


def test_this_machine_agrees_with_its_device_files(tmp_path: Path) -> None:
    cfg = _cfg(sources__ble=True, device__state_dir=str(tmp_path / "state"))

    checks = run_doctor(cfg, "<defaults>")  # the real /dev, /sys, /run, PyAudio, imports
    by_name = _by_name(checks)

    assert by_name["i2c bus 1"].ok == Path("/dev/i2c-1").exists()
    has_adapter = any(Path("/sys/class/bluetooth").glob("hci*"))
    assert by_name["bluetooth adapter"].ok == has_adapter
    assert by_name["bluetooth d-bus"].ok == Path("/run/dbus/system_bus_socket").exists()
    assert exit_code(checks) == int(any(c.required and not c.ok for c in checks))
    if not Path("/dev/i2c-1").exists():  # e.g. CI: no I2C, so the device cannot run here
        assert exit_code(checks) == 1
        assert "enable I2C" in by_name["i2c bus 1"].fix


def test_sensor_found_on_the_configured_bus_and_address(tmp_path: Path) -> None:
    machine = _healthy(tmp_path)
    (machine.dev_root / "i2c-3").touch()
    opened: list[Path] = []

    def open_bus(path: Path) -> FakeI2cBus:
        opened.append(path)
        return FakeI2cBus({0x5A: {MAX30102_REG_PART_ID: MAX30102_PART_ID}})

    cfg = _cfg(sensor__i2c_bus=3, sensor__address=0x5A)
    checks = _by_name(run_doctor(cfg, "x", replace(machine, open_i2c=open_bus)))

    assert checks["i2c bus 3"].ok
    assert checks["max30102 sensor"].ok and "0x5A" in checks["max30102 sensor"].detail
    assert set(opened) == {machine.dev_root / "i2c-3"}


def test_sensor_not_answering_or_wrong_part_needs_wiring(tmp_path: Path) -> None:
    machine = _healthy(tmp_path)
    silent = replace(machine, open_i2c=lambda _p: FakeI2cBus({}))
    max30100 = replace(machine, open_i2c=lambda _p: FakeI2cBus({0x57: {0xFF: 0x11}}))

    no_answer = _by_name(run_doctor(Config(), "x", silent))["max30102 sensor"]
    wrong = _by_name(run_doctor(Config(), "x", max30100))["max30102 sensor"]

    for check in (no_answer, wrong):
        assert not check.ok and check.required
        assert "SDA=GPIO2, SCL=GPIO3" in check.fix
    assert "no answer at 0x57" in no_answer.detail
    assert "0x11" in wrong.detail and "0x15" in wrong.detail


def test_i2c_permission_denied_names_the_group(tmp_path: Path) -> None:
    def refuse(path: Path) -> FakeI2cBus:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    machine = replace(_healthy(tmp_path), open_i2c=refuse)
    checks = _by_name(run_doctor(Config(), "x", machine))

    assert not checks["i2c bus 1"].ok
    assert "i2c group" in checks["i2c bus 1"].fix


def test_sensor_and_bluetooth_required_only_by_their_source(tmp_path: Path) -> None:
    bare = replace(
        _healthy(tmp_path / "m"), dev_root=tmp_path, sys_root=tmp_path, run_root=tmp_path
    )
    ppg_only = _cfg(sources__ppg=True, sources__ble=False)
    ble_only = _cfg(sources__ppg=False, sources__ble=True)

    with_ppg = _by_name(run_doctor(ppg_only, "x", bare))
    with_ble = _by_name(run_doctor(ble_only, "x", bare))

    assert with_ppg["i2c bus 1"].required and not with_ble["i2c bus 1"].required
    assert with_ble["bluetooth adapter"].required and not with_ppg["bluetooth adapter"].required
    assert "warn    bluetooth adapter" in format_report(list(with_ppg.values()))


def test_audio_device_matched_by_part_of_its_name(tmp_path: Path) -> None:
    machine = _healthy(tmp_path)

    found = _by_name(run_doctor(_cfg(audio__device="usb"), "x", machine))["audio output"]
    absent = _by_name(run_doctor(_cfg(audio__device="HiFiBerry"), "x", machine))["audio output"]

    assert found.ok and "USB Audio" in found.detail
    assert not absent.ok and absent.required
    assert "aplay -l" in absent.fix
    assert "bcm2835 Headphones" in absent.detail, "the names found help pick audio.device"


def test_no_speaker_is_missing_only_when_sound_goes_to_a_device(tmp_path: Path) -> None:
    mute = replace(_healthy(tmp_path), list_audio_outputs=lambda: AudioOutputs((), None))

    device = _by_name(run_doctor(_cfg(audio__output="device"), "x", mute))["audio output"]
    silent = _by_name(run_doctor(_cfg(audio__output="none"), "x", mute))["audio output"]

    assert not device.ok and device.required and "speaker" in device.fix
    assert not silent.ok and not silent.required


def test_audio_output_on_jack_through_real_portaudio(
    tmp_path: Path, jack_server: JackServer
) -> None:
    machine = replace(_healthy(tmp_path), list_audio_outputs=Machine().list_audio_outputs)

    check = _by_name(run_doctor(_cfg(audio__device="system"), "x", machine))["audio output"]

    assert check.ok, check.detail
    assert "'system'" in check.detail


def test_broker_reachable_and_unreachable(
    tmp_path: Path, mosquitto_broker: MosquittoBroker
) -> None:
    machine = _healthy(tmp_path)
    up = _cfg(
        mqtt__enabled=True, mqtt__host=mosquitto_broker.host, mqtt__port=mosquitto_broker.port
    )
    down = replace(up, mqtt=replace(up.mqtt, port=_closed_port()))

    ok = run_doctor(up, "x", machine)
    failed = run_doctor(down, "x", machine)

    assert _by_name(ok)[f"mqtt broker 127.0.0.1:{mosquitto_broker.port}"].ok
    assert exit_code(ok) == 0
    broken = next(c for c in failed if c.name.startswith("mqtt broker"))
    assert not broken.ok and broken.required and "mosquitto" in broken.fix
    assert exit_code(failed) == 1


def test_broker_not_probed_when_mqtt_is_disabled(tmp_path: Path) -> None:
    cfg = _cfg(mqtt__enabled=False, mqtt__host="127.0.0.1", mqtt__port=_closed_port())

    check = next(c for c in run_doctor(cfg, "x", _healthy(tmp_path)) if "mqtt" in c.name)

    assert check.ok and not check.required
    assert "mqtt.enabled = false" in check.detail


def test_configured_mqtt_files_must_exist(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("CA")
    cfg = _cfg(
        mqtt__enabled=True,
        mqtt__username="heartsong",
        mqtt__password_file=str(tmp_path / "missing-password"),
        mqtt__ca_file=str(tmp_path / "ca.pem"),
    )

    checks = _by_name(run_doctor(cfg, "x", _healthy(tmp_path / "m")))

    assert checks["mqtt.ca_file"].ok
    assert not checks["mqtt.password_file"].ok and checks["mqtt.password_file"].required
    assert "mqtt.password_file" in checks["mqtt.password_file"].fix
    assert "mqtt.certfile" not in checks, "unset file settings are not probed"


def test_state_dir_must_be_a_writable_directory(tmp_path: Path) -> None:
    machine = _healthy(tmp_path)
    (tmp_path / "a-file").write_text("")
    existing, creatable, blocked = tmp_path, tmp_path / "new" / "state", tmp_path / "a-file" / "x"

    results = [
        _by_name(run_doctor(_cfg(device__state_dir=str(p)), "x", machine))["state dir"]
        for p in (existing, creatable, blocked)
    ]

    assert [r.ok for r in results] == [True, True, False]
    assert "will be created" in results[1].detail
    assert results[2].required and "device.state_dir" in results[2].fix


def test_wav_output_needs_a_writable_folder(tmp_path: Path) -> None:
    machine = _healthy(tmp_path)
    (tmp_path / "a-file").write_text("")
    good = _cfg(audio__output="wav", audio__wav_path=str(tmp_path / "out.wav"))
    bad = _cfg(audio__output="wav", audio__wav_path=str(tmp_path / "a-file" / "out.wav"))

    assert _by_name(run_doctor(good, "x", machine))["wav output dir"].ok
    assert not _by_name(run_doctor(bad, "x", machine))["wav output dir"].ok
    assert "wav output dir" not in _by_name(run_doctor(Config(), "x", machine))


def test_numba_cache_follows_numbas_own_order(tmp_path: Path) -> None:
    machine = _healthy(tmp_path)
    (tmp_path / "a-file").write_text("")
    blocked = str(tmp_path / "a-file" / "cache")

    def cache(m: Machine) -> Check:
        return _by_name(run_doctor(Config(), "x", m))["numba cache dir"]

    in_tree = cache(machine)
    user_dir = cache(replace(machine, env={"NUMBA_CACHE_DIR": str(tmp_path / "nc")}))
    bad_user_dir = cache(replace(machine, env={"NUMBA_CACHE_DIR": blocked}))
    no_tree = replace(machine, package_dir=Path(blocked))
    fallback = cache(replace(no_tree, env={"HOME": str(tmp_path / "home")}))
    nowhere = cache(replace(no_tree, env={"XDG_CACHE_HOME": blocked}))

    assert in_tree.ok and str(tmp_path / "pkg" / "__pycache__") in in_tree.detail
    assert user_dir.ok and "NUMBA_CACHE_DIR" in user_dir.detail
    assert not bad_user_dir.ok and "NUMBA_CACHE_DIR" in bad_user_dir.fix
    assert fallback.ok and str(tmp_path / "home" / ".cache" / "numba") in fallback.detail
    assert not nowhere.ok and nowhere.required


def test_tflite_runtime_falls_back_to_tflite_runtime(tmp_path: Path) -> None:
    def only(available: str) -> Machine:
        def import_module(name: str) -> object:
            if name != available:
                raise ModuleNotFoundError(f"No module named {name!r}")
            return SimpleNamespace(Interpreter=object)

        return replace(_healthy(tmp_path / available), import_module=import_module)

    fallback = _by_name(run_doctor(Config(), "x", only("tflite_runtime.interpreter")))
    neither = _by_name(run_doctor(Config(), "x", only("nothing")))

    assert fallback["tflite runtime"].ok
    assert fallback["tflite runtime"].detail == "tflite_runtime.interpreter"
    assert not neither["tflite runtime"].ok and neither["tflite runtime"].required
    assert "ai-edge-litert" in neither["tflite runtime"].fix


def test_a_probe_that_raises_becomes_a_failed_check(tmp_path: Path) -> None:
    def broken_audio() -> AudioOutputs:
        raise ValueError("PortAudio exploded")

    def broken_bus(_path: Path) -> FakeI2cBus:
        raise RuntimeError("bus driver crashed")

    machine = replace(_healthy(tmp_path), list_audio_outputs=broken_audio, open_i2c=broken_bus)

    checks = run_doctor(Config(), "x", machine)
    by_name = _by_name(checks)

    assert not by_name["audio output"].ok
    assert by_name["audio output"].detail == "probe failed: ValueError: PortAudio exploded"
    assert "RuntimeError: bus driver crashed" in by_name["max30102 sensor"].detail
    assert by_name["tflite runtime"].ok, "one failing probe does not stop the others"
    assert exit_code(checks) == 1
