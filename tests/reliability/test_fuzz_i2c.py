"""Fuzzing the MAX30102 driver with register garbage on the I2C bus.

The emulator already injects its own random garbage at a fixed rate
(``tests/test_max30102_driver.py``); here hypothesis chooses, transaction by transaction,
which reads come back as which bytes (FIFO pointers, FIFO data, status and ID registers
alike), during start-up and while streaming, so shrinking finds the smallest sequence
that breaks the driver. The promise: the driver either delivers blocks of finite samples
on an increasing timeline or raises :class:`SensorError` (the source then restarts it
with back-off); no other exception, no hang (every wait is on a manual clock).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from heartsong.errors import SensorError
from heartsong.sensors.max30102 import Max30102
from heartsong.sensors.max30102_emulator import I2C_M_RD, ManualClock, Max30102Emulator
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson

#: One entry per bus transaction: None = the chip's true answer, else these bytes.
_Schedule = list[bytes | None]


class GarblingBus:
    """The emulator's SMBus, with read results replaced by a schedule of bytes."""

    def __init__(self, chip: Max30102Emulator, schedule: _Schedule) -> None:
        self._chip = chip
        self._schedule = schedule
        self._k = 0
        self.garbled = 0

    def _next(self, n: int) -> bytes | None:
        entry = self._schedule[self._k % len(self._schedule)] if self._schedule else None
        self._k += 1
        if entry is None or n == 0:
            return None
        self.garbled += 1
        return (entry * (n // max(1, len(entry)) + 1))[:n] if entry else bytes(n)

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        value = self._chip.read_byte_data(i2c_addr, register)
        junk = self._next(1)
        return junk[0] if junk is not None else value

    def write_byte_data(self, i2c_addr: int, register: int, value: int,
                        force: bool | None = None) -> None:
        self._chip.write_byte_data(i2c_addr, register, value)

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: bool | None = None) -> list[int]:
        data = self._chip.read_i2c_block_data(i2c_addr, register, length)
        junk = self._next(length)
        return list(junk) if junk is not None else data

    def i2c_rdwr(self, *msgs: Any) -> None:
        self._chip.i2c_rdwr(*msgs)
        for msg in msgs:
            if int(msg.flags) & I2C_M_RD:
                junk = self._next(int(msg.len))
                if junk is not None:
                    ctypes.memmove(msg.buf, junk, len(junk))

    def close(self) -> None:
        self._chip.close()


_SCHEDULE = st.lists(
    st.one_of(st.none(), st.none(), st.none(), st.binary(min_size=1, max_size=8),
              st.sampled_from([b"\xff", b"\x00", b"\x15", b"\x1f\x00\x1f"])),
    max_size=40,
)


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(schedule=_SCHEDULE, step_s=st.floats(0.02, 1.5), seed=st.integers(0, 3))
def test_register_garbage_gives_finite_blocks_or_a_sensor_error(
    schedule: _Schedule, step_s: float, seed: int
) -> None:
    clk = ManualClock()
    person = SimulatedPerson(PersonParams(), seed=seed)
    chip = Max30102Emulator(clk.monotonic, PpgSynth(person, 100.0, seed=seed + 1), seed=seed)
    bus = GarblingBus(chip, schedule)
    drv = Max30102(bus, time_fn=clk.monotonic, sleep_fn=clk.sleep_sync)
    try:
        drv.start()
    except SensorError:
        event("refused at start-up")
        return  # "no MAX30102 answers" / "not a MAX30102": the source backs off
    last_t = -np.inf
    for _ in range(25):
        clk.advance(step_s)
        try:
            blocks = drv.read()
        except SensorError:
            event("sensor error while streaming")
            return  # the source drops this driver and starts a new one
        for b in blocks:
            assert np.isfinite(b.t0_s) and b.fs_hz > 0
            assert np.all(np.isfinite(b.ir)) and np.all(np.isfinite(b.red))
            assert b.t0_s >= last_t - 1e-6, "block timeline went backwards"
            last_t = b.t0_s
    event("streamed through garbage" if bus.garbled else "streamed clean")
    drv.close()
