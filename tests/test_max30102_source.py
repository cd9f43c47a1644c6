"""The MAX30102 heart source: worker thread, hand-off to the event loop, INT line,
back-off on a missing or lost sensor, and the demo wiring.

Most tests give the source a waiter that advances a manual clock instead of sleeping,
so the worker thread runs simulated minutes in milliseconds, deterministically.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from heartsong.clock import ScaledClock
from heartsong.config import SensorConfig
from heartsong.events import PpgBlock, RrBlock
from heartsong.sensors import ppg_source
from heartsong.sensors.max30102 import A_FULL_SAMPLES
from heartsong.sensors.max30102_emulator import ManualClock, Max30102Emulator
from heartsong.sensors.ppg_source import (
    BACKOFF_S,
    Backoff,
    Max30102Source,
    make_demo_ppg_source,
    make_device_ppg_source,
)
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson

LOGGER = "heartsong.sensors.ppg_source"


def emulated(clk: ManualClock, **kw: Any) -> Max30102Emulator:
    person = SimulatedPerson(PersonParams(motion_artifacts_per_hour=0.0), seed=2)
    return Max30102Emulator(clk.monotonic, PpgSynth(person, 100.0, seed=3), record=True, **kw)


def manual_waiter(
    clk: ManualClock, emu: Max30102Emulator, until_s: float, step_s: float | None = None
) -> Callable[[threading.Event, float], bool]:
    """Waits by advancing the manual clock (in ``step_s`` steps, running the chip so its
    INT line can fire); past ``until_s`` it blocks until the source is stopped."""

    def wait(event: threading.Event, seconds: float) -> bool:
        if clk.monotonic() >= until_s:
            event.wait()
            return True
        end = clk.monotonic() + seconds
        while not event.is_set() and clk.monotonic() < end:
            clk.advance(min(step_s or seconds, end - clk.monotonic()))
            emu.update()
        return event.is_set()

    return wait


async def run_source(src: Max30102Source, clk: ManualClock, until_s: float) -> list[PpgBlock]:
    """Run the source until the manual clock passes ``until_s``; return what reached the sink."""
    got: list[PpgBlock] = []
    loop_thread = threading.get_ident()

    def sink(block: PpgBlock | RrBlock) -> None:
        assert threading.get_ident() == loop_thread  # handed over to the loop's thread
        assert isinstance(block, PpgBlock)
        got.append(block)

    task = asyncio.create_task(src.run(sink))
    while clk.monotonic() < until_s:
        assert not task.done()
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return got


def test_backoff_doubles_up_to_a_minute() -> None:
    b = Backoff()
    assert [b.next_delay() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    b.reset()
    assert b.next_delay() == BACKOFF_S[0]


def test_blocks_reach_the_sink_on_the_loop_exactly_as_the_chip_made_them() -> None:
    clk = ManualClock()
    emu = emulated(clk, clock_error=0.008)
    src = Max30102Source(
        lambda: emu, clk, SensorConfig(), wait=manual_waiter(clk, emu, until_s=60.0)
    )
    got = asyncio.run(run_source(src, clk, 60.0))
    assert sum(b.gap_samples for b in got) == 0
    ir = np.concatenate([b.ir for b in got])
    assert np.array_equal(ir, emu.truth.codes[: ir.shape[0], 1])
    assert ir.shape[0] > 59 * 100
    assert got[-1].contact and src.stats.starts == 1
    assert src.driver is None and emu.closed and not emu.sampling  # shut down on cancel


def test_a_missing_sensor_is_reported_once_per_backoff_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clk = ManualClock()
    emu = emulated(clk)
    emu.schedule_absence(0.0, 150.0)
    src = Max30102Source(
        lambda: emu,
        clk,
        SensorConfig(),
        bus_label="/dev/i2c-1",
        wait=manual_waiter(clk, emu, until_s=240.0),
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        got = asyncio.run(run_source(src, clk, 240.0))
    warnings = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    # attempts at 0, 1, 3, 7, 15, 31, 63, 123 s fail; the one at 183 s finds it
    assert src.stats.backoff_steps == 8 == len(warnings)
    first = warnings[0]
    assert "/dev/i2c-1" in first and "0x57" in first and "dtparam=i2c_arm=on" in first
    assert all("still unavailable" in w for w in warnings[1:])
    assert [w.rsplit("retrying in ", 1)[1] for w in warnings] == [
        "1 s", "2 s", "4 s", "8 s", "16 s", "32 s", "60 s", "60 s",
    ]
    assert any("found" in rec.getMessage() for rec in caplog.records)
    assert emu.stats.nacks <= 3 * 8  # a few tries per step, never a tight loop
    assert got and got[0].t0_s > 183.0


def test_a_sensor_lost_mid_run_comes_back_with_a_gap(caplog: pytest.LogCaptureFixture) -> None:
    clk = ManualClock()
    emu = emulated(clk)
    emu.schedule_absence(30.0, 40.0)
    src = Max30102Source(
        lambda: emu, clk, SensorConfig(), wait=manual_waiter(clk, emu, until_s=90.0)
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        got = asyncio.run(run_source(src, clk, 90.0))
    assert src.stats.losses == 1 and src.stats.starts == 2
    gapped = [b for b in got if b.gap_samples]
    assert len(gapped) == 1 and gapped[0].t0_s > 40.0
    before = got[got.index(gapped[0]) - 1]
    assert gapped[0].gap_samples == pytest.approx((gapped[0].t0_s - before.t_end_s) * 100, rel=0.02)
    assert len(caplog.records) < 8


class BrokenBurstBus:
    """The emulated bus, except that FIFO bursts raise what no bus should: a bug."""

    def __init__(self, emu: Max30102Emulator) -> None:
        self.emu = emu

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emu, name)

    def i2c_rdwr(self, *msgs: Any) -> None:
        raise RuntimeError("a bug below the driver")


def test_an_unexpected_error_restarts_the_driver_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clk = ManualClock()
    emu = emulated(clk)
    src = Max30102Source(
        lambda: BrokenBurstBus(emu),
        clk,
        SensorConfig(),
        wait=manual_waiter(clk, emu, until_s=100.0),
    )
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert asyncio.run(run_source(src, clk, 100.0)) == []
    # restarts after 1, 2, 4, 8, 16, 32 s (and a 60 s wait running when time is up)
    assert src.stats.starts == len(caplog.records) == 7
    assert "a bug below the driver" in caplog.text


def test_the_int_line_paces_the_reads() -> None:
    clk = ManualClock()
    emu = emulated(clk)
    factory = MockFactory()
    emu.int_pin = factory.pin(17)
    src = Max30102Source(
        lambda: emu,
        clk,
        SensorConfig(int_pin=17),
        pin_factory=factory,
        wait=manual_waiter(clk, emu, until_s=30.0, step_s=0.002),
    )
    got = asyncio.run(run_source(src, clk, 30.0))
    assert src.stats.int_timeouts == 0
    assert 0 <= src.stats.interrupts - len(got) <= 1  # the last one may meet the stop
    assert min(b.n for b in got[1:]) >= A_FULL_SAMPLES  # read when almost full, not before
    assert emu.stats.fifo_bursts == len(got)
    ir = np.concatenate([b.ir for b in got])
    assert np.array_equal(ir, emu.truth.codes[: ir.shape[0], 1])


def test_a_dead_int_line_falls_back_to_polling(caplog: pytest.LogCaptureFixture) -> None:
    clk = ManualClock()
    emu = emulated(clk)  # the INT pin is not connected to the chip
    src = Max30102Source(
        lambda: emu,
        clk,
        SensorConfig(int_pin=17),
        pin_factory=MockFactory(),
        wait=manual_waiter(clk, emu, until_s=30.0),
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        got = asyncio.run(run_source(src, clk, 30.0))
    assert any("never fires" in rec.getMessage() for rec in caplog.records)
    assert sum(b.gap_samples for b in got) == 0


def test_a_missing_i2c_bus_explains_how_to_enable_it(caplog: pytest.LogCaptureFixture) -> None:
    from smbus2 import SMBus

    clk = ManualClock()
    emu = emulated(clk)
    src = Max30102Source(
        lambda: SMBus(31),  # no /dev/i2c-31 here
        clk,
        SensorConfig(i2c_bus=31),
        wait=manual_waiter(clk, emu, until_s=5.0),
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert asyncio.run(run_source(src, clk, 5.0)) == []
    first = caplog.records[0].getMessage()
    assert "/dev/i2c-31" in first and "dtparam=i2c_arm=on" in first


def test_device_wiring_opens_smbus_lazily() -> None:
    src = make_device_ppg_source(SensorConfig(i2c_bus=7, int_pin=None), ScaledClock(1.0))
    assert src.bus_label == "/dev/i2c-7" and src.name == "ppg"
    assert src.driver is None  # nothing opened until run()


def test_demo_wiring_reads_through_the_driver_on_a_fast_clock() -> None:
    async def main() -> list[PpgBlock]:
        clock = ScaledClock(50.0)
        person = SimulatedPerson(PersonParams(motion_artifacts_per_hour=0.0), seed=5)
        src = make_demo_ppg_source(PpgSynth(person, 100.0, seed=6), clock, SensorConfig())
        got: list[PpgBlock] = []

        def sink(block: PpgBlock | RrBlock) -> None:
            assert isinstance(block, PpgBlock)
            got.append(block)

        task = asyncio.create_task(src.run(sink))
        # 60 simulated seconds of samples (a cold start may first spend real time
        # loading the simulation's numba kernels)
        for _ in range(3000):
            await asyncio.sleep(0.01)
            if sum(b.n for b in got) > 6000:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    got = asyncio.run(main())
    assert sum(b.n for b in got) > 6000
    assert sum(b.gap_samples for b in got) == 0  # elastic FIFO above real time
    assert got[-1].contact
    # once the sample clock is fitted, blocks join up into one continuous timeline
    late = got[len(got) // 2 :]
    starts = np.array([b.t0_s for b in late[1:]])
    ends = np.array([b.t_end_s for b in late[:-1]])
    assert np.max(np.abs(starts - ends)) < 1e-9
    # The rate estimate itself is checked exactly on a manual clock
    # (test_max30102_driver.py); on a scaled clock, host scheduling delays are multiplied
    # by the speed, so here it is only bounded by what the DSP accepts (2 %).
    rate = 100.0 * (1 + ppg_source.DEMO_CLOCK_ERROR)
    assert late[-1].fs_hz == pytest.approx(rate, rel=0.02)
