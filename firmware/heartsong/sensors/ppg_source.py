"""The MAX30102 as a heart source: the driver in a worker thread, blocks handed to the loop.

:class:`Max30102Source` satisfies :class:`heartsong.sensors.sources.HeartSource`. Its
``run`` starts one dedicated thread that owns the I2C bus: it waits for the sensor's INT
line (FIFO almost full, through gpiozero) when one is wired, or for a poll interval that
cannot overflow the FIFO, calls :meth:`~heartsong.sensors.max30102.Max30102.read`, and
hands every :class:`~heartsong.events.PpgBlock` to the event loop with
``loop.call_soon_threadsafe``. Blocking I2C never runs on the loop.

A sensor that is missing at start-up, or that goes away, is reported once with the bus,
the address and the "is I2C enabled" hint, then retried in the background after 1, 2,
4 ... 60 s, one log line per step; the appliance keeps running on its other sources
meanwhile. Every wait is in clock time: with a :class:`~heartsong.clock.ScaledClock`
the thread waits ``seconds / clock.speed`` real seconds, so ``heartsong demo --speed
100`` runs the same code a hundred times faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from heartsong.clock import Clock
from heartsong.config import SensorConfig
from heartsong.errors import SensorError
from heartsong.events import PpgBlock, SourceName
from heartsong.sensors.max30102 import (
    A_FULL_SAMPLES,
    I2C_HINT,
    DriverStats,
    Max30102,
    Max30102NotFoundError,
    SMBusLike,
)
from heartsong.sensors.max30102_emulator import Max30102Emulator, PpgSignal
from heartsong.sensors.max30102_settings import Max30102Settings, settings_from_config
from heartsong.sensors.sources import BlockSink

log = logging.getLogger(__name__)

#: Waits between attempts to find a missing sensor, in seconds (the last one repeats).
BACKOFF_S: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
#: Timeouts in a row, each followed by a full FIFO, after which INT is given up for polling.
INT_MISSES_BEFORE_POLLING: Final = 3
#: After this many seconds without an unexpected error, its back-off starts over.
CRASH_FORGET_S: Final = 600.0
#: Real seconds to wait for the worker thread when the source is cancelled.
THREAD_JOIN_S: Final = 5.0
#: Oscillator error of the emulated sensor in ``heartsong demo`` (relative; +0.4 % fast).
DEMO_CLOCK_ERROR: Final = 0.004

#: ``wait(event, seconds)``: block until ``event`` is set or ``seconds`` of clock time
#: have passed; True when the event was set.
Waiter = Callable[[threading.Event, float], bool]


class Backoff:
    """The back-off schedule: 1, 2, 4 ... 60, 60 ... seconds."""

    def __init__(self, steps: tuple[float, ...] = BACKOFF_S) -> None:
        self._steps = steps
        self.attempts = 0

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds (and count the attempt)."""
        delay = self._steps[min(self.attempts, len(self._steps) - 1)]
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Start from the shortest wait again (after a success)."""
        self.attempts = 0


@dataclass
class SourceStats:
    """What the source did, for the doctor, the benchmark and tests."""

    blocks: int = 0
    samples: int = 0
    starts: int = 0
    losses: int = 0
    backoff_steps: int = 0
    interrupts: int = 0
    int_timeouts: int = 0
    driver: DriverStats = dataclasses.field(default_factory=DriverStats)


class _IntLine:
    """The sensor's active-low, open-drain INT output on a GPIO, through gpiozero."""

    def __init__(self, pin: int, pin_factory: object | None, event: threading.Event) -> None:
        from gpiozero import DigitalInputDevice

        self._event = event
        self._device: Any = DigitalInputDevice(pin, pull_up=True, pin_factory=pin_factory)
        self._device.when_activated = event.set

    @property
    def asserted(self) -> bool:
        """True while INT is held low (an enabled interrupt is pending)."""
        return bool(self._device.is_active)

    def close(self) -> None:
        """Release the GPIO (safe twice)."""
        self._device.when_activated = None
        self._device.close()


class Max30102Source:
    """PPG from a MAX30102, read in a worker thread.

    Parameters
    ----------
    bus_factory:
        Opens the I2C bus (``smbus2.SMBus(1)`` on the device, the emulator in a demo);
        called again after the sensor was lost.
    clock:
        The appliance's clock: sample times and every wait follow it.
    cfg:
        The ``[sensor]`` configuration section (bus, address, rate, LED current, INT pin).
    settings:
        Driver settings; default: taken from ``cfg`` (:func:`settings_from_config`).
    pin_factory:
        gpiozero pin factory for the INT line (None: gpiozero's default; tests pass
        ``MockFactory()``).
    poll:
        Poll the FIFO even when ``cfg.int_pin`` names an INT GPIO.
    bus_label:
        How messages name the bus; default ``/dev/i2c-<cfg.i2c_bus>``.
    wait:
        How the worker waits (see :data:`Waiter`); default: real time scaled by
        ``clock.speed``. Tests pass one that advances a manual clock.
    """

    name: SourceName = "ppg"

    def __init__(
        self,
        bus_factory: Callable[[], SMBusLike],
        clock: Clock,
        cfg: SensorConfig,
        *,
        settings: Max30102Settings | None = None,
        pin_factory: object | None = None,
        poll: bool = False,
        bus_label: str | None = None,
        wait: Waiter | None = None,
    ) -> None:
        self._bus_factory = bus_factory
        self._clock = clock
        self._cfg = cfg
        self.settings = settings or settings_from_config(cfg)
        self._pin_factory = pin_factory
        self._int_pin = None if poll else cfg.int_pin
        self.bus_label = bus_label or f"/dev/i2c-{cfg.i2c_bus}"
        self._wait_fn: Waiter = wait or self._real_wait
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.stats = SourceStats()
        self.driver: Max30102 | None = None
        self._last_block: PpgBlock | None = None
        self._mark_restart = False  # the next block follows a lost sensor
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        how = f"INT on GPIO {self._int_pin}" if self._int_pin is not None else "polling"
        return f"Max30102Source({self.bus_label}, 0x{self._cfg.address:02x}, {how})"

    # -- the HeartSource interface ---------------------------------------------------------
    async def run(self, sink: BlockSink) -> None:
        """Read until cancelled, calling ``sink`` on the loop with every block."""
        loop = asyncio.get_running_loop()
        died: asyncio.Future[None] = loop.create_future()
        self._stop.clear()
        self._wake.clear()
        thread = threading.Thread(
            target=self._thread_main, args=(loop, sink, died), name="max30102", daemon=True
        )
        self._thread = thread
        thread.start()
        try:
            await died
        finally:
            self.stop()
            await asyncio.to_thread(thread.join, THREAD_JOIN_S)

    def stop(self) -> None:
        """Ask the worker thread to finish (it closes the sensor and the bus)."""
        self._stop.set()
        self._wake.set()

    # -- waiting -------------------------------------------------------------------------------
    def _real_wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds) / self._clock.speed)

    def _sleep(self, seconds: float) -> None:
        """The driver's short blocking waits (retries, reset), cut short by stop()."""
        self._wait_fn(self._stop, seconds)

    # -- the worker thread -------------------------------------------------------------------
    def _thread_main(
        self, loop: asyncio.AbstractEventLoop, sink: BlockSink, died: asyncio.Future[None]
    ) -> None:
        try:
            self._work(loop, sink)
        except BaseException as exc:  # a bug: let the appliance log it and carry on
            log.exception("PPG reader thread failed")
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_fail, died, exc)

    def _work(self, loop: asyncio.AbstractEventLoop, sink: BlockSink) -> None:
        backoff = Backoff()
        crashes = Backoff()  # for errors the driver did not expect: a bug, not the sensor
        last_crash = -float("inf")
        bus: SMBusLike | None = None
        line: _IntLine | None = None
        misses = 0
        try:
            while not self._stop.is_set():
                if self.driver is None:
                    bus = self._start(backoff)
                    if bus is None:
                        continue
                    line = line or self._open_int_line()
                assert self.driver is not None
                driver = self.driver
                fired = self._wait_for_data(driver, line)
                if self._stop.is_set():
                    break
                try:
                    blocks = driver.read()
                except SensorError as exc:
                    self.stats.losses += 1
                    log.warning("PPG sensor lost: %s", exc)
                    self._drop(bus)
                    bus = None
                    continue
                except Exception:
                    now = self._clock.monotonic()
                    if now - last_crash > CRASH_FORGET_S:
                        crashes.reset()
                    last_crash = now
                    delay = crashes.next_delay()
                    log.exception(
                        "PPG sensor read failed unexpectedly; restarting the driver in %g s", delay
                    )
                    self._drop(bus)
                    bus = None
                    self._wait_fn(self._stop, delay)
                    continue
                if line is not None:
                    n_read = sum(b.n or b.red.shape[0] for b in blocks)
                    misses = 0 if fired or n_read < A_FULL_SAMPLES else misses + 1
                    if misses >= INT_MISSES_BEFORE_POLLING:
                        log.warning(
                            "the MAX30102 INT line on GPIO %s never fires although the FIFO "
                            "fills; check that wire. Polling every %.0f ms instead",
                            self._int_pin, driver.poll_interval_s * 1000,
                        )
                        line.close()
                        line = None
                for block in blocks:
                    if not self._deliver(loop, sink, block):
                        return
        finally:
            if line is not None:
                line.close()
            self._drop(bus)

    def _start(self, backoff: Backoff) -> SMBusLike | None:
        """Open the bus and start a driver; on failure report, wait, and return None."""
        bus: SMBusLike | None = None
        try:
            bus = self._bus_factory()
            driver = Max30102(
                bus,
                self.settings,
                address=self._cfg.address,
                bus_label=self.bus_label,
                time_fn=self._clock.monotonic,
                sleep_fn=self._sleep,
            )
            driver.start()
        except Exception as exc:
            if bus is not None:
                with contextlib.suppress(Exception):
                    bus.close()
            delay = backoff.next_delay()
            self.stats.backoff_steps += 1
            self._report_missing(exc, backoff.attempts, delay)
            self._wait_fn(self._stop, delay)
            return None
        if backoff.attempts:
            log.info(
                "PPG sensor found on %s at 0x%02x after %d attempt(s)",
                self.bus_label, self._cfg.address, backoff.attempts,
            )
        backoff.reset()
        self.stats.starts += 1
        self._mark_restart = self._last_block is not None
        self.driver = driver
        return bus

    def _report_missing(self, exc: BaseException, attempt: int, delay: float) -> None:
        """One log line per back-off step: the full explanation first, then reminders."""
        where = f"{self.bus_label} at 0x{self._cfg.address:02x}"
        if attempt == 1:
            if isinstance(exc, Max30102NotFoundError | SensorError):
                why = str(exc)
            elif isinstance(exc, FileNotFoundError) or getattr(exc, "errno", None) == errno.ENOENT:
                why = f"cannot open {self.bus_label} ({exc}); {I2C_HINT}"
            elif isinstance(exc, PermissionError):
                why = f"no permission to open {self.bus_label}: add the user to the 'i2c' group"
            else:
                why = f"cannot start the MAX30102 on {where} ({exc!r}); {I2C_HINT}"
            log.warning(
                "PPG sensor unavailable: %s -- running without it; retrying in %g s", why, delay
            )
        else:
            log.warning(
                "PPG sensor still unavailable on %s (%s); retrying in %g s",
                where, _brief(exc), delay,
            )

    def _open_int_line(self) -> _IntLine | None:
        if self._int_pin is None:
            return None
        try:
            return _IntLine(self._int_pin, self._pin_factory, self._wake)
        except Exception as exc:
            log.warning(
                "cannot watch the MAX30102 INT line on GPIO %s (%s); polling the FIFO instead",
                self._int_pin, exc,
            )
            self._int_pin = None
            return None

    def _wait_for_data(self, driver: Max30102, line: _IntLine | None) -> bool:
        """Wait for INT (with a timeout) or for one poll interval; True if INT fired."""
        self._wake.clear()
        if line is None:
            self._wait_fn(self._wake, driver.poll_interval_s)
            return False
        if line.asserted or self._wait_fn(self._wake, driver.int_timeout_s):
            self.stats.interrupts += 1
            return True
        self.stats.int_timeouts += 1
        return False

    def _deliver(self, loop: asyncio.AbstractEventLoop, sink: BlockSink, block: PpgBlock) -> bool:
        """Hand a block to the loop; False when the loop has gone away."""
        last = self._last_block
        if self._mark_restart and last is not None:
            # the first block from a new driver after a loss: the timeline broke there
            missing = round((block.t0_s - last.t_end_s) * block.fs_hz)
            block = dataclasses.replace(block, gap_samples=max(1, missing, block.gap_samples))
        self._mark_restart = False
        self._last_block = block
        self.stats.blocks += 1
        self.stats.samples += max(block.n, block.red.shape[0])
        try:
            loop.call_soon_threadsafe(sink, block)
        except RuntimeError:  # the loop is closed: we are shutting down
            self._stop.set()
            return False
        return True

    def _drop(self, bus: SMBusLike | None) -> None:
        """Shut the driver down and close the bus (errors ignored)."""
        driver, self.driver = self.driver, None
        if driver is not None:
            self.stats.driver = driver.stats
            driver.close()
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.close()


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _brief(exc: BaseException) -> str:
    """A short cause for repeated reports: the errno text, or the message's first clause."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).split(";")[0]


# --------------------------------------------------------------------------- wiring


def make_demo_ppg_source(synth: PpgSignal, clock: Clock, cfg: SensorConfig) -> Max30102Source:
    """The demo's PPG source: the real driver reading an emulated MAX30102 that observes
    ``synth`` (its oscillator runs :data:`DEMO_CLOCK_ERROR` fast; INT is not used).

    When the clock runs faster than real time the emulator's FIFO is elastic (see
    :mod:`heartsong.sensors.max30102_emulator`): no host can meet a 32-sample deadline
    at a hundred times real speed, and the demo is about the signal path, not that race.
    """
    emulator = Max30102Emulator(
        clock.monotonic,
        synth,
        address=cfg.address,
        clock_error=DEMO_CLOCK_ERROR,
        elastic_fifo=clock.speed > 1.0,
    )
    return Max30102Source(lambda: emulator, clock, cfg, poll=True, bus_label="emulated I2C bus")


def make_device_ppg_source(cfg: SensorConfig, clock: Clock) -> Max30102Source:
    """The device's PPG source: smbus2 on ``/dev/i2c-<cfg.i2c_bus>`` (opened in the worker
    thread, reopened after a loss), INT on ``cfg.int_pin`` when set."""

    def open_bus() -> SMBusLike:
        from smbus2 import SMBus

        bus: SMBusLike = SMBus(cfg.i2c_bus)
        return bus

    return Max30102Source(open_bus, clock, cfg)
