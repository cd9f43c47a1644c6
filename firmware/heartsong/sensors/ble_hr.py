"""Bluetooth LE heart-rate strap client: scan, connect, subscribe, watch, reconnect.

:class:`BleHrClient` speaks to a strap through two injected objects with bleak's
interface: a *scanner* with ``discover(timeout, return_adv=True, service_uuids=[...])``
(bleak's :class:`bleak.BleakScanner` class itself, or a fake) and a *client factory*
called like :class:`bleak.BleakClient` ``(device_or_address, disconnected_callback=...,
timeout=...)``. The real and the fake backend therefore run the same code, line for line.

What it does, in a loop that only ends when cancelled:

1. find the strap: connect straight to the configured address, or to the strap it used
   last (remembered in a small JSON file in the state directory); otherwise scan for
   devices advertising the Heart Rate Service (0x180D) and take the configured name, the
   remembered strap, or else the strongest signal (RSSI);
2. connect, subscribe to Heart Rate Measurement (0x2A37), read Body Sensor Location
   (0x2A38), Battery Level (0x2A19) and the Device Information strings; hand every
   notification, decoded by :func:`~heartsong.sensors.hrm_parse.parse_heart_rate_measurement`,
   to a :class:`HrListener` (a malformed one is counted, logged and dropped);
3. watch the link: when the strap disconnects, or when notifications stall for
   ``stall_timeout_s`` while BlueZ still reports the link up (a known BlueZ failure, common
   on the Pi Zero 2 W), disconnect cleanly and go back to 1 after an exponential back-off
   with jitter between 1 and 60 s (:class:`ReconnectBackoff`).

A host without Bluetooth never crashes the appliance: a missing D-Bus (bleak then raises
a bare ``FileNotFoundError``), a stopped BlueZ, a missing or powered-off adapter, or a
missing permission is explained once, in one log line with the fix, and retried in the
background at the back-off's pace. Every wait is on the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import os
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

from heartsong.clock import Clock
from heartsong.config import BleConfig
from heartsong.errors import SensorError
from heartsong.private_file import write_private
from heartsong.sensors.hrm_parse import (
    BATTERY_LEVEL_UUID,
    BODY_SENSOR_LOCATION_UUID,
    DEVICE_INFO_UUIDS,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    HeartRateMeasurement,
    HrmPayloadError,
    parse_battery_level,
    parse_body_sensor_location,
    parse_heart_rate_measurement,
    parse_utf8_string,
)

__all__ = [
    "BleHrClient",
    "BleSettings",
    "BleStats",
    "BluetoothProblem",
    "HrListener",
    "LastStrapStore",
    "ReconnectBackoff",
    "StrapInfo",
    "StrapNotFoundError",
    "choose_strap",
    "explain_bluetooth_error",
    "settings_from_config",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds one scan listens for advertisements.
SCAN_TIMEOUT_S: Final = 5.0
#: Seconds bleak may take to find (when given an address) and connect to the strap.
CONNECT_TIMEOUT_S: Final = 20.0
#: Shortest and longest wait between attempts, in seconds.
BACKOFF_MIN_S: Final = 1.0
BACKOFF_MAX_S: Final = 60.0
#: Extra seconds the client waits beyond bleak's own connect timeout before giving up.
CONNECT_GRACE_S: Final = 5.0
#: Seconds a single characteristic read, stop_notify or disconnect may take.
GATT_TIMEOUT_S: Final = 5.0
#: A battery below this percentage is reported once per connection.
BATTERY_LOW_PCT: Final = 15
#: File (in the state directory) remembering the strap used last.
LAST_STRAP_FILE: Final = "ble_last_strap.json"
#: Reconnection delays and latencies kept for the doctor and the tests.
HISTORY_LEN: Final = 1000

_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_DBUS_SOCKET = "/run/dbus/system_bus_socket"


# --------------------------------------------------------------------------- interfaces


class DeviceLike(Protocol):
    """What a scan result's device offers (``bleak.backends.device.BLEDevice``)."""

    @property
    def address(self) -> str: ...

    @property
    def name(self) -> str | None: ...


class AdvertisementLike(Protocol):
    """What a scan result's advertisement offers (``bleak.backends.scanner.AdvertisementData``)."""

    @property
    def local_name(self) -> str | None: ...

    @property
    def service_uuids(self) -> list[str]: ...

    @property
    def rssi(self) -> int: ...


ScanResult = Mapping[str, tuple[DeviceLike, AdvertisementLike]]


class ScannerLike(Protocol):
    """``bleak.BleakScanner`` as the client uses it: one classmethod."""

    async def discover(
        self, timeout: float = ..., *, return_adv: Literal[True], service_uuids: list[str]
    ) -> ScanResult: ...


NotifyCallback = Callable[[Any, bytearray], None]


class ClientLike(Protocol):
    """``bleak.BleakClient`` as the client uses it."""

    @property
    def is_connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    async def start_notify(self, char_specifier: str, callback: NotifyCallback) -> None: ...

    async def stop_notify(self, char_specifier: str) -> None: ...

    async def read_gatt_char(self, char_specifier: str) -> bytearray: ...


#: ``factory(device_or_address, disconnected_callback=cb, timeout=seconds)``.
ClientFactory = Callable[..., ClientLike]


class HrListener(Protocol):
    """Where the client hands what it receives (the BLE heart source)."""

    def on_connected(self, info: StrapInfo) -> None:
        """A link is up and subscribed; what came before it is not continuous with it."""

    def on_measurement(self, m: HeartRateMeasurement, arrival_s: float) -> None:
        """A decoded notification and its arrival time (clock monotonic seconds)."""

    def on_gap(self, reason: str) -> None:
        """Notifications were lost (link lost, stall, a payload dropped as malformed)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class BleSettings:
    """How the client finds and watches its strap.

    Attributes
    ----------
    address:
        MAC address of the strap to use; "" = any.
    name:
        Part of the strap's advertised name (case-insensitive); "" = any.
    stall_timeout_s:
        Seconds without a notification on a live link before it counts as stalled.
    scan_timeout_s:
        Seconds one scan listens.
    connect_timeout_s:
        Seconds to find (by address) and connect.
    backoff_min_s, backoff_max_s:
        Shortest and longest wait between attempts, seconds.
    """

    address: str = ""
    name: str = ""
    stall_timeout_s: float = 5.0
    scan_timeout_s: float = SCAN_TIMEOUT_S
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    backoff_min_s: float = BACKOFF_MIN_S
    backoff_max_s: float = BACKOFF_MAX_S

    def __post_init__(self) -> None:
        if self.address and not _MAC.match(self.address):
            raise ValueError(f"address must look like AA:BB:CC:DD:EE:FF, got {self.address!r}")
        for key in ("stall_timeout_s", "scan_timeout_s", "connect_timeout_s", "backoff_min_s"):
            value = getattr(self, key)
            if not value > 0:
                raise ValueError(f"{key} must be > 0 s, got {value!r}")
        if not self.backoff_max_s >= self.backoff_min_s:
            raise ValueError(
                f"backoff_max_s must be >= backoff_min_s ({self.backoff_min_s} s), "
                f"got {self.backoff_max_s!r}"
            )


def settings_from_config(cfg: BleConfig) -> BleSettings:
    """The client settings for the ``[ble]`` configuration section."""
    return BleSettings(address=cfg.address, name=cfg.name, stall_timeout_s=cfg.stall_timeout_s)


# --------------------------------------------------------------------------- back-off


class ReconnectBackoff:
    """Exponential back-off with "equal jitter": attempt ``n`` waits U(c/2, c) seconds,
    ``c = min(max_s, 2 * min_s * 2**n)``; so 1-2, 2-4, 4-8 ... 30-60, 30-60 s by default.

    Half of each wait is fixed (the exponential growth), half random, so repeated
    attempts never fall into step with a strap's advertising cycle (Brooker 2015,
    "Exponential backoff and jitter", AWS Architecture Blog).
    """

    def __init__(
        self,
        min_s: float = BACKOFF_MIN_S,
        max_s: float = BACKOFF_MAX_S,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"need 0 < min_s <= max_s, got {min_s!r}, {max_s!r}")
        self.min_s = min_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self.attempts = 0

    def bounds(self, attempt: int) -> tuple[float, float]:
        """The (shortest, longest) wait before attempt ``attempt`` (0-based), seconds."""
        ceiling = min(self.max_s, 2.0 * self.min_s * 2.0 ** min(attempt, 62))
        return max(self.min_s, ceiling / 2.0), ceiling

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds (and count the attempt)."""
        lo, hi = self.bounds(self.attempts)
        self.attempts += 1
        return self._rng.uniform(lo, hi)

    def reset(self) -> None:
        """Start from the shortest waits again (after a link that worked)."""
        self.attempts = 0


# --------------------------------------------------------------------------- diagnosis


class StrapNotFoundError(SensorError):
    """No heart-rate strap matching the configuration is advertising (or in range)."""


@dataclass(frozen=True)
class BluetoothProblem:
    """Why an attempt failed, in words a user can act on.

    Attributes
    ----------
    kind:
        ``no_dbus``, ``no_bluez``, ``no_adapter``, ``adapter_off``, ``permission`` (the
        host's Bluetooth is unavailable), ``not_found`` (no strap), ``link`` (the radio
        link or the strap failed) or ``bug`` (an error heartsong did not expect).
    message:
        One sentence with the fix.
    """

    kind: str
    message: str

    @property
    def host_unavailable(self) -> bool:
        """True when the host's Bluetooth itself is missing, not just the strap."""
        return self.kind in ("no_dbus", "no_bluez", "no_adapter", "adapter_off", "permission")


def explain_bluetooth_error(exc: BaseException) -> BluetoothProblem:
    """Classify what bleak (or the fake) raised into a :class:`BluetoothProblem`."""
    if isinstance(exc, StrapNotFoundError):
        return BluetoothProblem("not_found", str(exc))
    bleak_problem = _explain_bleak(exc)
    if bleak_problem is not None:
        return bleak_problem
    if isinstance(exc, PermissionError):
        return BluetoothProblem(
            "permission",
            f"no permission to use Bluetooth over D-Bus ({exc}): add the user to the "
            "'bluetooth' group",
        )
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ECONNREFUSED)
    ):
        where = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={_DBUS_SOCKET}")
        return BluetoothProblem(
            "no_dbus",
            f"no D-Bus system bus at {where} ({exc}): Bluetooth needs D-Bus and BlueZ "
            "(sudo apt install bluez; sudo systemctl enable --now dbus bluetooth)",
        )
    if isinstance(exc, TimeoutError):
        return BluetoothProblem("link", f"timed out ({exc})" if str(exc) else "timed out")
    if isinstance(exc, OSError | HrmPayloadError):
        return BluetoothProblem("link", f"{type(exc).__name__}: {exc}")
    return BluetoothProblem("bug", f"unexpected {type(exc).__name__}: {exc}")


def _explain_bleak(exc: BaseException) -> BluetoothProblem | None:
    try:
        from bleak.exc import (
            BleakBluetoothNotAvailableError,
            BleakBluetoothNotAvailableReason,
            BleakDBusError,
            BleakDeviceNotFoundError,
            BleakError,
        )
    except ImportError:  # pragma: no cover - bleak is a dependency; a broken install
        return None
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            return BluetoothProblem(
                "adapter_off",
                f"the Bluetooth adapter is off or blocked ({exc}): "
                "rfkill unblock bluetooth; bluetoothctl power on",
            )
        if reason.name.startswith("DENIED"):
            return BluetoothProblem(
                "permission",
                f"Bluetooth access denied ({exc}): add the user to the 'bluetooth' group",
            )
        return BluetoothProblem(
            "no_adapter",
            f"no Bluetooth LE adapter ({exc}): check `bluetoothctl list`; on a Pi, "
            "that dtoverlay=disable-bt is not set in config.txt",
        )
    if isinstance(exc, BleakDBusError):
        name = exc.dbus_error
        if name in (
            "org.freedesktop.DBus.Error.ServiceUnknown",
            "org.freedesktop.DBus.Error.NameHasNoOwner",
        ):
            return BluetoothProblem(
                "no_bluez",
                f"BlueZ is not running ({exc}): sudo systemctl enable --now bluetooth",
            )
        if name == "org.freedesktop.DBus.Error.AccessDenied":
            return BluetoothProblem(
                "permission",
                f"D-Bus denies Bluetooth access ({exc}): add the user to the 'bluetooth' group",
            )
        if name == "org.bluez.Error.NotReady":
            return BluetoothProblem(
                "adapter_off",
                f"the Bluetooth adapter is not powered ({exc}): bluetoothctl power on",
            )
        return BluetoothProblem("link", f"BlueZ: {exc}")
    if isinstance(exc, BleakDeviceNotFoundError):
        return BluetoothProblem(
            "not_found", f"strap {exc.identifier} not found: is it worn and in range?"
        )
    if isinstance(exc, BleakError):
        text = str(exc)
        if "adapter" in text.lower() and "not found" in text.lower():
            return BluetoothProblem("no_adapter", f"{text}: check `bluetoothctl list`")
        return BluetoothProblem("link", text or type(exc).__name__)
    return None


# --------------------------------------------------------------------------- the strap


@dataclass(frozen=True)
class StrapInfo:
    """What the client learnt about the strap it is connected to.

    Attributes
    ----------
    address, name:
        Bluetooth address and name.
    rssi_dbm:
        Signal strength when it was found by a scan, in dBm (None when connected directly).
    location:
        Body Sensor Location (``"chest"``, ``"wrist"``, ...), or None if not offered.
    battery_pct:
        Battery Level in percent, or None if not offered.
    device_info:
        Device Information strings by name (``manufacturer``, ``model``, ``serial``,
        ``hardware``, ``firmware``, ``software``), those offered.
    """

    address: str
    name: str
    rssi_dbm: int | None = None
    location: str | None = None
    battery_pct: int | None = None
    device_info: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """A one-line description for the log."""
        parts = [f"{self.name or 'unnamed strap'} ({self.address})"]
        model = " ".join(
            v for k in ("manufacturer", "model") if (v := self.device_info.get(k, ""))
        )
        if model:
            parts.append(model)
        if self.location:
            parts.append(f"worn on the {self.location}")
        if self.battery_pct is not None:
            parts.append(f"battery {self.battery_pct} %")
        if self.rssi_dbm is not None:
            parts.append(f"RSSI {self.rssi_dbm} dBm")
        return ", ".join(parts)


@dataclass(frozen=True)
class RememberedStrap:
    """The strap used last: its address and name."""

    address: str
    name: str


class LastStrapStore:
    """Remembers the strap used last in a small JSON file (``{"address": ..., "name": ...}``).

    Parameters
    ----------
    path:
        The file, or None to remember in memory only. Its directory is not created (it
        is the appliance's state directory): without it the strap is remembered in
        memory; a file that cannot be read or written is reported once.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: RememberedStrap | None = None
        self._warned = False

    def load(self) -> RememberedStrap | None:
        """The remembered strap, or None (no file, unreadable or malformed file)."""
        if self.path is None or self._memory is not None:
            return self._memory
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._warn(f"cannot read {self.path} ({exc}); ignoring it")
            return None
        address = doc.get("address") if isinstance(doc, dict) else None
        name = doc.get("name", "") if isinstance(doc, dict) else None
        if not (isinstance(address, str) and _MAC.match(address)):
            self._warn(f"{self.path}: address = {address!r}: expected AA:BB:CC:DD:EE:FF; ignoring")
            return None
        if not isinstance(name, str):
            self._warn(f"{self.path}: name = {name!r}: expected a string; ignoring")
            return None
        self._memory = RememberedStrap(address.upper(), name[:64])
        return self._memory

    def save(self, strap: RememberedStrap) -> None:
        """Remember ``strap`` (atomically replacing the file)."""
        if strap == self._memory:
            return
        self._memory = strap
        if self.path is None:
            return
        if not self.path.parent.is_dir():
            log.debug("no directory %s: remembering the strap in memory", self.path.parent)
            return
        try:
            # Owner-only whatever the umask (the strap's address identifies the user).
            write_private(
                self.path, json.dumps({"address": strap.address, "name": strap.name}) + "\n"
            )
        except OSError as exc:
            self._warn(f"cannot remember the strap in {self.path} ({exc}); keeping it in memory")

    def _warn(self, message: str) -> None:
        if not self._warned:
            log.warning(message)
            self._warned = True
        else:
            log.debug(message)


def choose_strap(
    found: ScanResult,
    *,
    address: str = "",
    name: str = "",
    remembered: RememberedStrap | None = None,
) -> tuple[DeviceLike, AdvertisementLike] | None:
    """Pick the strap to connect to from a scan.

    Only devices advertising the Heart Rate Service count; of those the one with the
    configured ``address`` (if set) and a name containing ``name`` (if set, case
    insensitive); among those the remembered strap, else the strongest RSSI. With neither
    ``address`` nor ``name`` configured, a remembered strap is the only one: another
    person's strap nearby (a partner's, in the same bed) must not be adopted while the
    user's is off or out of range.
    """
    want = address.upper()
    key = name.casefold()
    candidates = []
    for device, adv in found.values():
        if HEART_RATE_SERVICE_UUID not in (u.lower() for u in adv.service_uuids):
            continue
        if want and device.address.upper() != want:
            continue
        shown = adv.local_name or device.name or ""
        if key and key not in shown.casefold():
            continue
        candidates.append((device, adv))
    if not candidates:
        return None
    if remembered is not None:
        for device, adv in candidates:
            if device.address.upper() == remembered.address:
                return device, adv
        if not want and not key:
            return None
    return max(candidates, key=lambda c: c[1].rssi)


# --------------------------------------------------------------------------- the client


@dataclass
class BleStats:
    """What the client did, for the doctor, the logs and the tests."""

    attempts: int = 0
    scans: int = 0
    connects: int = 0
    connect_failures: int = 0
    unavailable: int = 0
    disconnects: int = 0
    stalls: int = 0
    notifications: int = 0
    malformed: int = 0
    listener_errors: int = 0
    backoff_s: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    reconnect_s: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    stall_detect_s: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))


class BleHrClient:
    """Finds a heart-rate strap, keeps it connected and hands on its notifications.

    Parameters
    ----------
    settings:
        What to look for and how patiently (see :class:`BleSettings`).
    clock:
        The appliance's clock; every wait and timestamp is on it.
    scanner:
        ``bleak.BleakScanner`` or a fake with its ``discover`` classmethod.
    client_factory:
        ``bleak.BleakClient`` or a fake class with its constructor and methods.
    store:
        Where the strap used last is remembered (default: memory only).
    rng:
        Random source of the back-off jitter (seed it for reproducible runs).
    """

    def __init__(
        self,
        settings: BleSettings,
        clock: Clock,
        scanner: ScannerLike,
        client_factory: ClientFactory,
        *,
        store: LastStrapStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._scanner = scanner
        self._client_factory = client_factory
        self.store = store or LastStrapStore(None)
        self.backoff = ReconnectBackoff(settings.backoff_min_s, settings.backoff_max_s, rng)
        self.stats = BleStats()
        self.info: StrapInfo | None = None
        self._listener: HrListener | None = None
        self._client: ClientLike | None = None
        self._lost = asyncio.Event()
        self._closing = False
        self._direct_ok = True  # connecting straight to the known address is worth a try
        self._known: RememberedStrap | None = None
        self._device_info: dict[str, Mapping[str, str]] = {}  # per address, read once
        self._last_rx_s = 0.0
        self._lost_at_s: float | None = None  # when the previous link was lost
        self._session_valid = 0  # valid notifications on the current link
        self._last_problem: str | None = None
        self._announced = ""  # address of the strap last described in the log

    def __repr__(self) -> str:
        state = f"connected to {self.info.address}" if self.connected and self.info else "idle"
        return f"BleHrClient({state}, connects={self.stats.connects})"

    @property
    def connected(self) -> bool:
        """True while subscribed to a strap over a live link."""
        return self._client is not None and not self._lost.is_set()

    # -- the loop ------------------------------------------------------------------------
    async def run(self, listener: HrListener) -> None:
        """Connect, receive, reconnect, until cancelled; never raises anything else."""
        self._listener = listener
        self._known = self._remembered()
        while True:
            self.stats.attempts += 1
            failure: Exception | None = None
            try:
                ended = await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = exc
                ended = ""
            if self._session_valid:
                self.backoff.reset()  # the link worked: start over from the short waits
            attempt = self.backoff.attempts
            delay = self.backoff.next_delay()
            self.stats.backoff_s.append(delay)
            if failure is not None:
                self._report(failure, attempt, delay)
            else:
                log.info("BLE strap %s; reconnecting in %.1f s", ended, delay)
            await self._clock.sleep(delay)

    async def _attempt(self) -> str:
        """One try: find, connect, receive until the link ends; returns how it ended."""
        self._session_valid = 0
        target, rssi, name = await self._find()
        return await self._session(target, rssi, name)

    async def _find(self) -> tuple[DeviceLike | str, int | None, str]:
        """The device (or address) to connect to, its RSSI when a scan saw it, its name."""
        known = self._known
        if self.settings.address:
            same = known is not None and known.address == self.settings.address.upper()
            return self.settings.address, None, known.name if known and same else ""
        if known is not None and self._direct_ok:
            return known.address, None, known.name
        self.stats.scans += 1
        found = await _within(
            self._clock,
            self._scanner.discover(
                self.settings.scan_timeout_s,
                return_adv=True,
                service_uuids=[HEART_RATE_SERVICE_UUID],
            ),
            self.settings.scan_timeout_s + CONNECT_GRACE_S,
            "scan",
        )
        chosen = choose_strap(
            found, address=self.settings.address, name=self.settings.name, remembered=self._known
        )
        if chosen is None:
            want = f" named like {self.settings.name!r}" if self.settings.name else ""
            if self._known is not None and not self.settings.name and found:
                forget = f", or delete {self.store.path}" if self.store.path else ""
                raise StrapNotFoundError(
                    f"the strap used last ({self._known.address}) is not advertising; "
                    f"{len(found)} other heart-rate strap(s) nearby are left alone (to use "
                    f"another, set ble.address{forget})"
                )
            raise StrapNotFoundError(
                f"no heart-rate strap{want} advertising (saw {len(found)} device(s) in "
                f"{self.settings.scan_timeout_s:g} s): is it worn (the strap wakes on skin "
                "contact) and not connected to a phone?"
            )
        device, adv = chosen
        return device, adv.rssi, adv.local_name or device.name or ""

    async def _session(self, target: DeviceLike | str, rssi: int | None, name: str) -> str:
        address = target if isinstance(target, str) else target.address
        self._lost = asyncio.Event()
        self._closing = False
        client = self._client_factory(
            target,
            disconnected_callback=self._on_disconnected,
            timeout=self.settings.connect_timeout_s,
        )
        try:
            await _within(
                self._clock,
                client.connect(),
                self.settings.connect_timeout_s + CONNECT_GRACE_S,
                f"connecting to {address}",
            )
        except Exception:
            self.stats.connect_failures += 1
            if not self.settings.address:
                self._direct_ok = False  # scan next time (the strap may have changed)
            with contextlib.suppress(Exception):
                await _within(self._clock, client.disconnect(), GATT_TIMEOUT_S, "disconnect")
            raise
        self._client = client
        try:
            # before subscribing: what arrives from now on is not continuous with the past
            # (``BleakClient.name`` exists from bleak 1.1 on)
            name = name or str(getattr(client, "name", "") or "")
            self.info = StrapInfo(address, name[:64], rssi)
            assert self._listener is not None
            self._listener.on_connected(self.info)
            self._last_rx_s = self._clock.monotonic()
            await _within(
                self._clock,
                client.start_notify(HEART_RATE_MEASUREMENT_UUID, self.handle_notification),
                GATT_TIMEOUT_S,
                "subscribing to heart-rate notifications",
            )
            self._subscribed(self.info)
            info = await self._read_info(client, address, rssi)
            self._announce(info)
            return await self._watch()
        finally:
            await self._close(client)

    def _subscribed(self, info: StrapInfo) -> None:
        now = self._clock.monotonic()
        self.stats.connects += 1
        self._direct_ok = True
        if self._lost_at_s is not None:
            self.stats.reconnect_s.append(now - self._lost_at_s)
            self._lost_at_s = None
        if self._last_problem is not None:
            log.info("Bluetooth strap reachable again")
            self._last_problem = None
        self._known = RememberedStrap(info.address.upper(), info.name)
        self.store.save(self._known)

    async def _read_info(self, client: ClientLike, address: str, rssi: int | None) -> StrapInfo:
        location = await self._read(client, BODY_SENSOR_LOCATION_UUID, parse_body_sensor_location)
        battery = await self._read(client, BATTERY_LEVEL_UUID, parse_battery_level)
        dev_info = self._device_info.get(address)
        if dev_info is None:
            strings: dict[str, str] = {}
            for key, uuid in DEVICE_INFO_UUIDS.items():
                parse = functools.partial(parse_utf8_string, name=key)
                text = await self._read(client, uuid, parse)
                if text:
                    strings[key] = text
            dev_info = self._device_info[address] = strings
        assert self.info is not None
        self.info = StrapInfo(address, self.info.name, rssi, location, battery, dev_info)
        return self.info

    async def _read(
        self, client: ClientLike, uuid: str, parse: Callable[[bytearray], T]
    ) -> T | None:
        """Read and decode one characteristic; None when absent, failing or malformed."""
        try:
            data = await _within(
                self._clock, client.read_gatt_char(uuid), GATT_TIMEOUT_S, f"reading {uuid}"
            )
            return parse(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("strap characteristic %s not read: %s", uuid, exc)
            return None

    def _announce(self, info: StrapInfo) -> None:
        if info.address != self._announced:
            log.info("BLE strap connected: %s", info.describe())
            self._announced = info.address
        elif self.stats.reconnect_s:
            log.info("BLE strap reconnected after %.1f s", self.stats.reconnect_s[-1])
        if info.battery_pct is not None and info.battery_pct < BATTERY_LOW_PCT:
            log.warning("BLE strap battery low: %d %%", info.battery_pct)

    async def _watch(self) -> str:
        """Wait until the link is lost or notifications stall; say which."""
        stall_s = self.settings.stall_timeout_s
        while True:
            if self._lost.is_set():
                self.stats.disconnects += 1
                return "disconnected"
            now = self._clock.monotonic()
            idle = now - self._last_rx_s
            if idle >= stall_s:
                self.stats.stalls += 1
                self.stats.stall_detect_s.append(idle)
                self._lost_at_s = now
                log.log(
                    logging.WARNING if self.stats.stalls == 1 else logging.INFO,
                    "no valid BLE strap notification for %.1f s on a live link (stall %d, "
                    "%d malformed so far); disconnecting to recover", idle, self.stats.stalls,
                    self.stats.malformed,
                )
                assert self._listener is not None
                self._listener.on_gap("notifications stalled")
                return "stalled"
            await _wait_event(self._clock, self._lost, stall_s - idle)

    async def _close(self, client: ClientLike) -> None:
        """Unsubscribe and disconnect (best effort, time-bounded)."""
        self._closing = True
        self._client = None
        if client.is_connected:
            with contextlib.suppress(Exception):
                await _within(
                    self._clock, client.stop_notify(HEART_RATE_MEASUREMENT_UUID),
                    GATT_TIMEOUT_S, "stop_notify",
                )
        with contextlib.suppress(Exception):
            await _within(self._clock, client.disconnect(), GATT_TIMEOUT_S, "disconnect")

    # -- callbacks -------------------------------------------------------------------------
    def _on_disconnected(self, client: object) -> None:
        """bleak's disconnected_callback (on the event loop)."""
        if client is not self._client or self._closing or self._lost.is_set():
            return  # our own disconnect, or a late call about an earlier link
        self._lost_at_s = self._clock.monotonic()
        self._lost.set()
        if self._listener is not None:
            self._listener.on_gap("link lost")

    def handle_notification(self, sender: object, data: bytearray) -> None:
        """bleak's notification callback for 0x2A37: decode and hand on; never raises.

        A payload that does not follow the specification is counted, reported (the first
        and every hundredth) and dropped; the listener hears of the gap it leaves. Only a
        valid one keeps the link "alive" for the stall watch: a strap that sends nothing
        but malformed payloads gets its link recycled like a silent one.
        """
        now = self._clock.monotonic()
        self.stats.notifications += 1
        listener = self._listener
        try:
            m = parse_heart_rate_measurement(data)
        except HrmPayloadError as exc:
            self.stats.malformed += 1
            if self.stats.malformed % 100 == 1:
                log.warning(
                    "dropped a malformed heart-rate notification: %s", exc,
                    extra={"fields": {"malformed": self.stats.malformed}},
                )
            if listener is not None:
                self._call(listener.on_gap, "malformed notification dropped")
            return
        self._last_rx_s = now
        self._session_valid += 1
        if listener is not None:
            self._call(listener.on_measurement, m, now)

    def _call(self, fn: Callable[..., None], *args: object) -> None:
        try:
            fn(*args)
        except Exception:
            self.stats.listener_errors += 1
            if self.stats.listener_errors % 100 == 1:
                log.exception("BLE heart-rate listener failed; notification dropped")

    # -- reporting ---------------------------------------------------------------------------
    def _remembered(self) -> RememberedStrap | None:
        strap = self.store.load()
        if strap is None:
            return None
        if self.settings.name and self.settings.name.casefold() not in strap.name.casefold():
            return None  # the configuration asks for another strap
        return strap

    def _report(self, exc: Exception, attempt: int, delay: float) -> None:
        """One clear line when a problem starts (or changes); debug lines while it lasts."""
        problem = explain_bluetooth_error(exc)
        if problem.host_unavailable:
            self.stats.unavailable += 1
        key = f"{problem.kind}:{problem.message}" if problem.kind == "link" else problem.kind
        if key == self._last_problem:
            log.debug("BLE strap: still %s (attempt %d); next try in %.1f s",
                      problem.message, attempt + 1, delay)
            return
        self._last_problem = key
        if problem.host_unavailable:
            log.warning(
                "Bluetooth unavailable: %s -- running without the BLE strap; "
                "retrying in the background (first in %.1f s, then up to every %.0f s)",
                problem.message, delay, self.backoff.max_s,
            )
        elif problem.kind == "not_found":
            log.info("BLE strap: %s; looking again in %.0f s", problem.message, delay)
        elif problem.kind == "bug":
            log.error(
                "BLE strap client: %s; retrying in %.0f s", problem.message, delay, exc_info=exc
            )
        else:
            log.warning("BLE strap: %s; retrying in %.1f s", problem.message, delay)


# --------------------------------------------------------------------------- clock waits


async def _within(clock: Clock, aw: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``aw`` for at most ``seconds`` of clock time; TimeoutError after that."""
    task = asyncio.ensure_future(aw)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        elif not task.cancelled():
            task.exception()  # retrieved, even when we are being cancelled ourselves
    if task.cancelled():
        raise TimeoutError(f"{what} took more than {seconds:g} s")
    return task.result()


async def _wait_event(clock: Clock, event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` of clock time passed; True if set."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    timer = asyncio.ensure_future(clock.sleep(max(0.0, seconds)))
    try:
        await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        timer.cancel()
    return event.is_set()
