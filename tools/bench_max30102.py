"""Benchmark the MAX30102 driver: CPU time per minute of sampling and I2C traffic.

The real driver reads an emulated sensor (heartsong.sensors.max30102_emulator). The
emulator's own cost is measured separately and subtracted, so the figures are the
driver's share; on a Raspberry Pi each I2C transaction also costs a system call and the
bus time (about 25 us per byte at 400 kHz), which this machine cannot measure.

Modes
-----
int:      read when the emulated INT line signals FIFO almost full (17 samples).
poll:     read every ``Max30102.poll_interval_s`` (a third of the FIFO fill time).
realtime: the whole Max30102Source (worker thread, event loop hand-off) on the real
          clock for ``--realtime-s`` seconds; CPU of the process minus the emulator's.

Usage::

    .venv/bin/python tools/bench_max30102.py [--minutes 1] [--sps 100] [--realtime-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heartsong.clock import RealClock
from heartsong.config import SensorConfig
from heartsong.sensors.max30102 import Max30102
from heartsong.sensors.max30102_emulator import ManualClock, Max30102Emulator
from heartsong.sensors.max30102_settings import Max30102Settings
from heartsong.sensors.ppg_source import Max30102Source
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson


class TimedBus:
    """Wraps the emulator and adds up the thread CPU time spent inside it."""

    def __init__(self, emu: Max30102Emulator) -> None:
        self.emu = emu
        self.cpu_ns = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.emu, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time_ns()
            try:
                return method(*args, **kwargs)
            finally:
                self.cpu_ns += time.thread_time_ns() - t0
                self.calls += 1

        return timed


@dataclass
class Result:
    mode: str
    sim_s: float
    reads: int
    samples: int
    driver_cpu_s: float
    emulator_cpu_s: float
    transactions: int
    bursts: int
    bytes_read: int

    def report(self) -> str:
        minutes = self.sim_s / 60.0
        per_min = self.driver_cpu_s / minutes
        return (
            f"{self.mode:8s} {self.sim_s:7.0f} s simulated, {self.samples} samples, "
            f"{self.reads / self.sim_s:5.1f} reads/s\n"
            f"         driver CPU {per_min * 1e3:7.1f} ms per minute of sampling "
            f"= {100 * per_min / 60:.3f} % of one core "
            f"({1e6 * self.driver_cpu_s / max(1, self.reads):.0f} us per read)\n"
            f"         I2C {self.transactions / self.sim_s:5.1f} transactions/s, "
            f"{self.bursts / max(1, self.reads):.2f} FIFO bursts per read, "
            f"{self.bytes_read / self.sim_s:6.0f} bytes/s "
            f"(emulator CPU {self.emulator_cpu_s:.2f} s, not counted)"
        )


def _emulated(clock_fn: Callable[[], float], seed: int = 1, **kw: Any) -> Max30102Emulator:
    person = SimulatedPerson(PersonParams(), seed=seed)
    return Max30102Emulator(clock_fn, PpgSynth(person, 100.0, seed=seed + 1), **kw)


def bench_simulated(mode: str, sps: int, minutes: float) -> Result:
    """Drive the real driver over the emulator on a manual clock, reading by INT or poll."""
    clk = ManualClock()
    emu = _emulated(clk.monotonic, clock_error=0.005)
    bus = TimedBus(emu)
    drv = Max30102(
        bus, Max30102Settings(sample_rate_sps=sps), time_fn=clk.monotonic, sleep_fn=clk.sleep_sync
    )
    drv.start()
    start_calls = bus.calls
    end = minutes * 60.0
    cpu_ns = 0
    samples = 0
    while clk.monotonic() < end:
        if mode == "int":
            nxt = emu.next_sample_time()
            assert nxt is not None
            clk.advance(nxt - clk.monotonic() + 1e-9)
            emu.update()
            if not emu.int_asserted:
                continue
        else:
            clk.advance(drv.poll_interval_s)
        t0 = time.thread_time_ns()
        blocks = drv.read()
        cpu_ns += time.thread_time_ns() - t0
        samples += sum(b.n for b in blocks)
    return Result(
        mode,
        end,
        drv.stats.reads,
        samples,
        (cpu_ns - bus.cpu_ns) / 1e9,
        bus.cpu_ns / 1e9,
        bus.calls - start_calls,
        emu.stats.fifo_bursts,
        emu.stats.bytes_read,
    )


def bench_realtime(sps: int, seconds: float) -> Result:
    """Run the whole source (thread + loop hand-off) on the real clock."""
    clock = RealClock()
    emu = _emulated(clock.monotonic)
    bus = TimedBus(emu)
    cfg = SensorConfig(sample_rate_sps=sps)
    src = Max30102Source(lambda: bus, clock, cfg, poll=True, bus_label="emulated bus")
    samples = 0

    def sink(block: Any) -> None:
        nonlocal samples
        samples += block.n

    async def main() -> float:
        task = asyncio.create_task(src.run(sink))
        await asyncio.sleep(1.0)  # start-up (compiles the simulation) is not counted
        c0 = time.process_time()
        e0 = bus.cpu_ns
        await asyncio.sleep(seconds)
        cpu = time.process_time() - c0 - (bus.cpu_ns - e0) / 1e9
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return cpu

    cpu = asyncio.run(main())
    stats = src.stats.driver if src.driver is None else src.driver.stats
    return Result(
        "realtime", seconds, stats.reads, samples, cpu, bus.cpu_ns / 1e9,
        stats.transactions, stats.fifo_bursts, emu.stats.bytes_read,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=1.0, help="simulated minutes per mode")
    p.add_argument("--sps", type=int, default=100, help="sample rate, samples/s")
    p.add_argument(
        "--realtime-s", type=float, default=0.0,
        help="also run the threaded source on the real clock for this many seconds",
    )
    args = p.parse_args()
    print(f"MAX30102 driver benchmark, {args.sps} samples/s, red+IR, 411 us")
    for mode in ("int", "poll"):
        print(bench_simulated(mode, args.sps, args.minutes).report())
    if args.realtime_s > 0:
        print(bench_realtime(args.sps, args.realtime_s).report())


if __name__ == "__main__":
    main()
