"""A fake Bluetooth radio with bleak's interface: straps that send real 0x2A37 payloads.

The fake is a complete backend one level down from the client (like gpiozero's
``MockFactory``): :class:`FakeBleakScanner` has ``BleakScanner.discover``,
:meth:`FakeAir.client` builds :class:`FakeBleakClient` objects called like
``BleakClient(device_or_address, disconnected_callback=..., timeout=...)``, and
:class:`FakeStrap` is the peripheral: a chest strap whose GATT server notifies Heart
Rate Measurement byte strings built exactly per the specification from the simulated
person's RR stream (:class:`~heartsong.sensors.sim_strap.SimulatedStrap`), on the
injected clock, and answers reads of Body Sensor Location, Battery Level and the
Device Information strings.

Faults are injected on demand: :meth:`FakeStrap.drop_link` (the radio link breaks),
:meth:`FakeStrap.stall` (the link stays up but notifications stop reaching the host, the
BlueZ failure), :meth:`FakeStrap.lose_contact`, :meth:`FakeStrap.corrupt_next` (malformed
payloads), :meth:`FakeStrap.leave` (out of range) and :meth:`FakeStrap.inject_payload`;
``replay_on_subscribe`` re-sends the last payload on subscription like BlueZ's cached
value. Every notification the strap produced is kept in :attr:`FakeStrap.sent` with its
fate and the true beat times, so tests can check what the client made of it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from heartsong.clock import Clock
from heartsong.events import FloatArray
from heartsong.sensors.hrm_parse import (
    BATTERY_LEVEL_UUID,
    BODY_SENSOR_LOCATION_UUID,
    DEVICE_INFO_UUIDS,
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    RR_TICKS_PER_S,
    uuid16,
)
from heartsong.sensors.sim_strap import SimulatedStrap

__all__ = [
    "FakeAdvertisement",
    "FakeAir",
    "FakeBleakClient",
    "FakeBleakScanner",
    "FakeDevice",
    "FakeStrap",
    "Fault",
    "FaultPlan",
    "SentNotification",
    "build_hrm_payload",
    "make_demo_air",
    "play_faults",
]

log = logging.getLogger(__name__)

#: Delivery delay of a notification after the strap sent it, range in seconds.
DELIVERY_DELAY_S: Final = (0.008, 0.060)
#: Time a connection takes to come up, range in seconds.
CONNECT_TIME_S: Final = (0.3, 1.2)
#: Time a characteristic read takes, in seconds.
READ_TIME_S: Final = 0.02
#: Energy Expended is included in every this many notifications (as Polar straps do).
ENERGY_EVERY: Final = 10
#: Kinds of :class:`Fault`.
FaultKind = Literal["disconnect", "stall", "no_contact", "malformed", "leave"]
#: What became of a notification.
Fate = Literal["delivered", "not_connected", "stalled"]


def _norm_uuid(spec: object) -> str:
    """Any spelling of a UUID (16-bit ``"2a37"``, int, 128-bit) as bleak's 128-bit form."""
    if isinstance(spec, int):
        return uuid16(spec)
    text = str(spec).lower()
    if len(text) == 4:
        return uuid16(int(text, 16))
    return text


def build_hrm_payload(
    hr_bpm: int,
    rr_ticks: Sequence[int] = (),
    *,
    contact: bool | None = True,
    energy_kj: int | None = None,
    hr_uint16: bool = False,
) -> bytes:
    """Encode a Heart Rate Measurement (0x2A37) value as a strap does.

    Parameters
    ----------
    hr_bpm:
        Heart rate in beats per minute (0-255, or 0-65535 with ``hr_uint16``).
    rr_ticks:
        RR intervals in 1/1024 s (1-65535 each); flags bit 4 is set when there are any.
    contact:
        Skin contact (True/False; contact detection supported), or None when the strap
        does not support contact detection.
    energy_kj:
        Energy expended in kJ (0-65535), or None to leave the field out.
    hr_uint16:
        Send the heart rate in the 16-bit format.
    """
    flags = 0
    body = bytearray()
    if hr_uint16:
        flags |= 0x01
        body += int(hr_bpm).to_bytes(2, "little")
    else:
        body.append(int(hr_bpm))
    if contact is not None:
        flags |= 0x04 | (0x02 if contact else 0)
    if energy_kj is not None:
        flags |= 0x08
        body += int(energy_kj).to_bytes(2, "little")
    if rr_ticks:
        flags |= 0x10
        for tick in rr_ticks:
            body += int(tick).to_bytes(2, "little")
    return bytes([flags]) + bytes(body)


def _malformed_payload(rng: random.Random, valid: bytes) -> bytes:
    """A payload that breaks the 0x2A37 layout in one of the ways seen from real straps."""
    options: list[bytes] = [
        b"",  # nothing
        bytes([0x07, 60]),  # 16-bit heart rate announced, 1 byte sent
        bytes([0x0E, 60, 0x10]),  # energy expended announced, cut short
        bytes([0x16, 60]),  # RR intervals announced, none sent
        bytes([0x16, 60, 0, 0]),  # an RR interval of 0
        bytes([0x06, 60, 0xAA]),  # a byte after the last field
    ]
    if valid[0] & 0x10:
        options.append(valid[:-1])  # the last RR interval cut in half
    return rng.choice(options)


@dataclass(frozen=True)
class FakeDevice:
    """A scan result's device, like ``bleak.backends.device.BLEDevice``."""

    address: str
    name: str | None
    details: object = None


@dataclass(frozen=True)
class FakeAdvertisement:
    """A scan result's advertisement, like ``bleak.backends.scanner.AdvertisementData``."""

    local_name: str | None
    service_uuids: list[str]
    rssi: int
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    service_data: dict[str, bytes] = field(default_factory=dict)
    tx_power: int | None = None
    platform_data: tuple[object, ...] = ()


@dataclass(frozen=True)
class SentNotification:
    """One notification the fake strap produced, and what became of it.

    Attributes
    ----------
    send_s, arrival_s:
        When the strap sent it and when it reached (or would have reached) the host, s.
    payload:
        The bytes on the air.
    rr_ticks, beat_times_s:
        The RR intervals the simulated person's beats gave (1/1024 s) and the true
        times of the beats ending them (s), whether or not the payload carries them.
    kind:
        ``"ok"``, ``"no_contact"`` (no intervals sent), ``"malformed"``, ``"replay"``
        (the cached last value re-sent on subscription) or ``"injected"``.
    fate:
        ``"delivered"``, ``"not_connected"`` or ``"stalled"``.
    """

    send_s: float
    arrival_s: float
    payload: bytes
    rr_ticks: tuple[int, ...]
    beat_times_s: tuple[float, ...]
    kind: str
    fate: Fate


class FakeStrap:
    """A simulated chest strap: advertises 0x180D, accepts one connection, notifies 0x2A37.

    Parameters
    ----------
    strap:
        The simulated person's RR stream (one notification per its ``period_s``).
    clock:
        The injected clock; notifications go out on it.
    address, name:
        Bluetooth address and advertised name.
    rssi_dbm:
        Signal strength a scan reports, in dBm.
    location:
        Body Sensor Location code (1 = chest).
    battery_pct:
        Battery Level, percent.
    device_info:
        Device Information strings by key (``manufacturer``, ``model``, ``serial``,
        ``hardware``, ``firmware``, ``software``).
    supports_contact:
        Whether the payloads carry the sensor-contact bits.
    hr_uint16:
        Send heart rates in the 16-bit format.
    replay_on_subscribe:
        On subscription, re-send the last payload sent (BlueZ's cached value).
    seed:
        Seed of the delivery delays, connection times and malformed payloads.
    """

    def __init__(
        self,
        strap: SimulatedStrap,
        clock: Clock,
        *,
        address: str,
        name: str,
        rssi_dbm: int = -60,
        location: int = 1,
        battery_pct: int = 80,
        device_info: Mapping[str, str] | None = None,
        supports_contact: bool = True,
        hr_uint16: bool = False,
        replay_on_subscribe: bool = False,
        seed: int = 0,
    ) -> None:
        self.strap = strap
        self.clock = clock
        self.address = address.upper()
        self.name = name
        self.rssi_dbm = rssi_dbm
        self.location = location
        self.battery_pct = battery_pct
        self.device_info = dict(
            device_info
            if device_info is not None
            else {
                "manufacturer": "Heartsong Labs",
                "model": "SimStrap 1",
                "serial": "0000-0001",
                "firmware": "1.0.0",
            }
        )
        self.supports_contact = supports_contact
        self.hr_uint16 = hr_uint16
        self.replay_on_subscribe = replay_on_subscribe
        self._rng = random.Random(seed)
        self.sent: list[SentNotification] = []
        self.connections = 0
        self._link: FakeBleakClient | None = None
        self._callback: Callable[[Any, bytearray], None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stalled = False
        self._no_contact = (math.inf, -math.inf)  # (from, until) in seconds
        self._away_until = -math.inf
        self._corrupt = 0
        self._last_payload: bytes | None = None
        self._last_hr = 0
        self._next_delay = self._rng.uniform(*DELIVERY_DELAY_S)

    def __repr__(self) -> str:
        state = "linked" if self._link is not None else "advertising"
        if self.away:
            state = "away"
        return f"FakeStrap({self.address}, {self.name!r}, {state}, sent={len(self.sent)})"

    # -- faults --------------------------------------------------------------------------
    def drop_link(self) -> None:
        """The radio link breaks now (the host sees a disconnection)."""
        self._advance()
        if self._link is not None:
            self._detach(self._link)

    def stall(self) -> None:
        """Notifications stop reaching the host; the link stays up until it is closed."""
        self._advance()
        if self._link is not None:
            self._stalled = True

    def lose_contact(self, seconds: float) -> None:
        """No skin contact for ``seconds``: payloads say so and carry no RR intervals."""
        self._advance()
        now = self.clock.monotonic()
        self._no_contact = (now, now + seconds)

    def corrupt_next(self, count: int = 1) -> None:
        """Make the next ``count`` notifications malformed."""
        self._advance()
        self._corrupt += count

    def leave(self, seconds: float) -> None:
        """Go out of range for ``seconds``: the link drops and nothing is found meanwhile."""
        self._advance()
        self._away_until = self.clock.monotonic() + seconds
        if self._link is not None:
            self._detach(self._link)

    def inject_payload(self, payload: bytes) -> bool:
        """Notify arbitrary bytes now (if subscribed); True if they were delivered."""
        self._advance()
        return self._notify(payload, (), (), "injected")

    @property
    def away(self) -> bool:
        """True while out of range."""
        return self.clock.monotonic() < self._away_until

    @property
    def linked(self) -> bool:
        """True while a host is connected."""
        return self._link is not None

    # -- the radio -----------------------------------------------------------------------
    def advertisement(self) -> tuple[FakeDevice, FakeAdvertisement] | None:
        """What a scan sees now (None while away or connected: straps stop advertising)."""
        self._advance()
        if self.away or self._link is not None:
            return None
        rssi = self.rssi_dbm + self._rng.randint(-3, 3)
        adv = FakeAdvertisement(self.name, [HEART_RATE_SERVICE_UUID], rssi, tx_power=0)
        return FakeDevice(self.address, self.name), adv

    def _attach(self, client: FakeBleakClient) -> None:
        self._advance()
        if self._link is not None:
            from bleak.exc import BleakError

            raise BleakError(f"{self.address} is already connected to another host")
        self._link = client
        self._stalled = False
        self.connections += 1

    def _detach(self, client: FakeBleakClient) -> None:
        if self._link is not client:
            return
        self._advance()
        self._link = None
        self._callback = None
        self._stalled = False
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        client._lost()

    def _subscribe(self, callback: Callable[[Any, bytearray], None]) -> None:
        self._advance()
        self._callback = callback
        if self.replay_on_subscribe and self._last_payload is not None:
            self._notify(self._last_payload, (), (), "replay")
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(
                self._run_pump(), name=f"fake-strap-{self.address}"
            )

    def _unsubscribe(self) -> None:
        self._advance()
        self._callback = None
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None

    async def _run_pump(self) -> None:
        """Deliver each notification at its send time plus a delivery delay."""
        while True:
            due = self.strap.t_next_s + self._next_delay
            wait = due - self.clock.monotonic()
            if wait > 0:
                await self.clock.sleep(wait)
            self._advance()

    def _advance(self) -> None:
        """Produce every notification due by now (delivered or not)."""
        now = self.clock.monotonic()
        while self.strap.t_next_s + self._next_delay <= now + 1e-9:
            send_s = self.strap.t_next_s
            arrival_s = send_s + self._next_delay
            self._next_delay = self._rng.uniform(*DELIVERY_DELAY_S)
            for _, rr_ms, beats in self.strap.notifications_until(send_s):
                self._produce(send_s, arrival_s, rr_ms, beats)

    def _produce(
        self, send_s: float, arrival_s: float, rr_ms: FloatArray, beats: FloatArray
    ) -> None:
        ticks = tuple(round(float(v) * RR_TICKS_PER_S / 1000.0) for v in rr_ms)
        times = tuple(float(t) for t in beats)
        if ticks:
            self._last_hr = round(60.0 * RR_TICKS_PER_S * len(ticks) / sum(ticks))
        contact: bool | None = None
        kind = "ok"
        if self.supports_contact:
            start, until = self._no_contact
            contact = not start <= send_s < until
        if contact is False:
            payload = build_hrm_payload(0, (), contact=False, hr_uint16=self.hr_uint16)
            kind = "no_contact"
        else:
            energy = None
            if len(self.sent) % ENERGY_EVERY == 0:
                energy = min(65535, int(send_s / 60.0 * 25.0))  # ~25 kJ/min at rest
            payload = build_hrm_payload(
                self._last_hr, ticks, contact=contact, energy_kj=energy, hr_uint16=self.hr_uint16
            )
            if self._corrupt > 0:
                self._corrupt -= 1
                payload = _malformed_payload(self._rng, payload)
                kind = "malformed"
        self._notify(payload, ticks, times, kind, send_s=send_s, arrival_s=arrival_s)

    def _notify(
        self,
        payload: bytes,
        ticks: tuple[int, ...],
        times: tuple[float, ...],
        kind: str,
        *,
        send_s: float | None = None,
        arrival_s: float | None = None,
    ) -> bool:
        now = self.clock.monotonic()
        fate: Fate = "delivered"
        if self._link is None or self._callback is None:
            fate = "not_connected"
        elif self._stalled:
            fate = "stalled"
        self.sent.append(
            SentNotification(
                send_s=now if send_s is None else send_s,
                arrival_s=now if arrival_s is None else arrival_s,
                payload=payload,
                rr_ticks=ticks,
                beat_times_s=times,
                kind=kind,
                fate=fate,
            )
        )
        if fate != "delivered":
            return False
        if kind != "replay":
            self._last_payload = payload  # what BlueZ would cache as the value
        assert self._callback is not None
        self._callback(HEART_RATE_MEASUREMENT_UUID, bytearray(payload))
        return True

    def read(self, uuid: str) -> bytearray | None:
        """The value of a readable characteristic, or None if the strap has none."""
        if uuid == BODY_SENSOR_LOCATION_UUID:
            return bytearray([self.location])
        if uuid == BATTERY_LEVEL_UUID:
            return bytearray([self.battery_pct])
        for key, char in DEVICE_INFO_UUIDS.items():
            if uuid == char and key in self.device_info:
                return bytearray(self.device_info[key].encode("utf-8") + b"\x00")
        return None


class FakeAir:
    """The radio environment: the straps in range and the other advertisers.

    Parameters
    ----------
    clock:
        The injected clock.
    seed:
        Seed of connection times.

    Attributes
    ----------
    scan_error, connect_error:
        When set, the next scans or connections raise this (e.g. ``FileNotFoundError()``
        as bleak does without D-Bus); None for a healthy host.
    """

    def __init__(self, clock: Clock, *, seed: int = 0) -> None:
        self.clock = clock
        self.straps: list[FakeStrap] = []
        self.others: list[tuple[FakeDevice, FakeAdvertisement]] = []
        self.scan_error: BaseException | None = None
        self.connect_error: BaseException | None = None
        self.scans = 0
        self._rng = random.Random(seed)

    def add_strap(self, strap: FakeStrap) -> FakeStrap:
        """Put a strap in range; returns it."""
        self.straps.append(strap)
        return strap

    def add_other(self, address: str, name: str, rssi_dbm: int, services: Sequence[str]) -> None:
        """Put a device that advertises other services (a lamp, a phone) in range."""
        self.others.append(
            (FakeDevice(address.upper(), name), FakeAdvertisement(name, list(services), rssi_dbm))
        )

    @property
    def scanner(self) -> FakeBleakScanner:
        """A scanner (``BleakScanner.discover``) on this air."""
        return FakeBleakScanner(self)

    def client(
        self,
        address_or_ble_device: FakeDevice | str,
        disconnected_callback: Callable[[FakeBleakClient], None] | None = None,
        services: Sequence[str] | None = None,
        *,
        timeout: float = 30.0,
        **kwargs: Any,
    ) -> FakeBleakClient:
        """A client, called like ``BleakClient(...)``."""
        return FakeBleakClient(self, address_or_ble_device, disconnected_callback, timeout=timeout)

    def find(self, address: str) -> FakeStrap | None:
        """The strap with ``address`` (in range or not)."""
        for strap in self.straps:
            if strap.address == address.upper():
                return strap
        return None

    def connect_time(self) -> float:
        """How long the next connection takes to come up, in seconds."""
        return self._rng.uniform(*CONNECT_TIME_S)


class FakeBleakScanner:
    """``bleak.BleakScanner`` on a :class:`FakeAir`: only ``discover`` is offered."""

    def __init__(self, air: FakeAir) -> None:
        self._air = air

    async def discover(
        self,
        timeout: float = 5.0,
        *,
        return_adv: bool = False,
        service_uuids: list[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Listen for ``timeout`` seconds; the devices seen (with advertisements)."""
        air = self._air
        air.scans += 1
        if air.scan_error is not None:
            raise air.scan_error
        await air.clock.sleep(timeout)
        seen: dict[str, tuple[FakeDevice, FakeAdvertisement]] = {}
        for strap in air.straps:
            found = strap.advertisement()
            if found is not None:
                seen[found[0].address] = found
        for device, adv in air.others:
            seen[device.address] = (device, adv)
        if service_uuids:
            wanted = {_norm_uuid(u) for u in service_uuids}
            seen = {
                a: (d, adv) for a, (d, adv) in seen.items()
                if wanted & {_norm_uuid(u) for u in adv.service_uuids}
            }
        if return_adv:
            return seen
        return [d for d, _ in seen.values()]


class FakeBleakClient:
    """``bleak.BleakClient`` on a :class:`FakeAir` (build it with :meth:`FakeAir.client`)."""

    def __init__(
        self,
        air: FakeAir,
        address_or_ble_device: FakeDevice | str,
        disconnected_callback: Callable[[FakeBleakClient], None] | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        self._air = air
        self._target = address_or_ble_device
        self._address = (
            address_or_ble_device
            if isinstance(address_or_ble_device, str)
            else address_or_ble_device.address
        ).upper()
        self._disconnected_callback = disconnected_callback
        self._timeout = timeout
        self._strap: FakeStrap | None = None

    def __repr__(self) -> str:
        return f"FakeBleakClient({self._address}, connected={self.is_connected})"

    @property
    def address(self) -> str:
        """The strap's Bluetooth address."""
        return self._address

    @property
    def name(self) -> str:
        """The strap's name (its address with dashes when unknown, as bleak does)."""
        strap = self._air.find(self._address)
        return strap.name if strap is not None else self._address.replace(":", "-")

    @property
    def is_connected(self) -> bool:
        """True while the link is up."""
        return self._strap is not None

    async def __aenter__(self) -> FakeBleakClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def connect(self, **kwargs: Any) -> None:
        """Find (when given an address) and connect; raises like bleak on failure."""
        from bleak.exc import BleakDeviceNotFoundError, BleakError

        air = self._air
        if air.connect_error is not None:
            raise air.connect_error
        if self._strap is not None:
            raise BleakError("Client is already connected")
        strap = air.find(self._address)
        if strap is None or strap.away:
            await air.clock.sleep(self._timeout)
            if isinstance(self._target, str):
                raise BleakDeviceNotFoundError(
                    self._address, f"Device with address {self._address} was not found."
                )
            raise TimeoutError(f"connecting to {self._address} timed out")
        await air.clock.sleep(air.connect_time())
        if strap.away:
            raise BleakError(f"{self._address}: connection failed to be established")
        strap._attach(self)
        self._strap = strap

    async def disconnect(self) -> None:
        """Close the link (no-op when not connected)."""
        strap = self._strap
        if strap is not None:
            strap._detach(self)
        await asyncio.sleep(0)

    def _lost(self) -> None:
        """Called by the strap when the link goes down, however it went."""
        self._strap = None
        if self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback, self)

    def _connected_strap(self) -> FakeStrap:
        if self._strap is None:
            from bleak.exc import BleakError

            raise BleakError("Not connected")
        return self._strap

    async def start_notify(
        self, char_specifier: object, callback: Callable[[Any, bytearray], None], **kwargs: Any
    ) -> None:
        """Subscribe ``callback(sender, data)`` to Heart Rate Measurement notifications."""
        from bleak.exc import BleakCharacteristicNotFoundError

        strap = self._connected_strap()
        if _norm_uuid(char_specifier) != HEART_RATE_MEASUREMENT_UUID:
            raise BleakCharacteristicNotFoundError(str(char_specifier))
        await asyncio.sleep(0)
        strap._subscribe(callback)

    async def stop_notify(self, char_specifier: object) -> None:
        """Unsubscribe."""
        strap = self._connected_strap()
        strap._unsubscribe()
        await asyncio.sleep(0)

    async def read_gatt_char(self, char_specifier: object, **kwargs: Any) -> bytearray:
        """Read a characteristic (0x2A38, 0x2A19, Device Information strings)."""
        from bleak.exc import BleakCharacteristicNotFoundError, BleakError

        self._connected_strap()
        await self._air.clock.sleep(READ_TIME_S)
        strap = self._strap
        if strap is None:
            raise BleakError("Not connected")
        value = strap.read(_norm_uuid(char_specifier))
        if value is None:
            raise BleakCharacteristicNotFoundError(str(char_specifier))
        return value


# --------------------------------------------------------------------------- fault plans


@dataclass(frozen=True)
class Fault:
    """One injected fault: at ``t_s`` (clock seconds) do ``kind`` (for ``duration_s``)."""

    t_s: float
    kind: FaultKind
    duration_s: float = 0.0


@dataclass(frozen=True)
class FaultPlan:
    """Random faults as Poisson processes, in events per hour, for a demo or a soak test."""

    disconnects_per_hour: float = 0.0
    stalls_per_hour: float = 0.0
    malformed_per_hour: float = 0.0
    no_contact_per_hour: float = 0.0
    no_contact_s: float = 30.0
    leave_per_hour: float = 0.0
    leave_s: float = 120.0
    seed: int = 0

    def schedule(self, duration_s: float, start_s: float = 0.0) -> list[Fault]:
        """The faults of ``duration_s`` seconds from ``start_s``, in time order."""
        rng = random.Random(self.seed)
        faults: list[Fault] = []
        rates: tuple[tuple[FaultKind, float, float], ...] = (
            ("disconnect", self.disconnects_per_hour, 0.0),
            ("stall", self.stalls_per_hour, 0.0),
            ("malformed", self.malformed_per_hour, 0.0),
            ("no_contact", self.no_contact_per_hour, self.no_contact_s),
            ("leave", self.leave_per_hour, self.leave_s),
        )
        for kind, per_hour, duration in rates:
            if per_hour <= 0:
                continue
            t = start_s
            while True:
                t += rng.expovariate(per_hour / 3600.0)
                if t >= start_s + duration_s:
                    break
                faults.append(Fault(t, kind, duration))
        return sorted(faults, key=lambda f: f.t_s)


async def play_faults(strap: FakeStrap, faults: Sequence[Fault]) -> None:
    """Inject ``faults`` into ``strap`` at their times on the strap's clock."""
    clock = strap.clock
    for fault in sorted(faults, key=lambda f: f.t_s):
        wait = fault.t_s - clock.monotonic()
        if wait > 0:
            await clock.sleep(wait)
        log.debug("fake strap fault at %.1f s: %s", clock.monotonic(), fault.kind)
        if fault.kind == "disconnect":
            strap.drop_link()
        elif fault.kind == "stall":
            strap.stall()
        elif fault.kind == "no_contact":
            strap.lose_contact(fault.duration_s)
        elif fault.kind == "malformed":
            strap.corrupt_next(1)
        else:
            strap.leave(fault.duration_s)


def make_demo_air(
    strap: SimulatedStrap, clock: Clock, *, seed: int = 0
) -> tuple[FakeAir, FakeStrap]:
    """The demo's radio: the simulated person's chest strap and a lamp that is not one."""
    air = FakeAir(clock, seed=seed)
    fake = air.add_strap(
        FakeStrap(
            strap, clock, address="F0:0D:5E:ED:00:01", name="SimStrap 0001",
            rssi_dbm=-58, seed=seed + 1,
        )
    )
    air.add_other("C0:FF:EE:00:00:02", "Bedroom lamp", -47, [uuid16(0xFFF0)])
    return air, fake
