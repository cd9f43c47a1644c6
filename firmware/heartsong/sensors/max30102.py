"""MAX30102 (and MAX30101/MAX30105) pulse-oximeter driver over an smbus2-style bus.

The driver is synchronous and owns no thread: :class:`Max30102` is called from a worker
thread by :class:`heartsong.sensors.ppg_source.Max30102Source` whenever the INT line
says the FIFO is almost full, or at a poll interval short enough that the FIFO cannot
overflow. Each :meth:`Max30102.read` makes one small pointer read and one burst read of
every pending sample, and returns :class:`~heartsong.events.PpgBlock` objects.

What it guarantees, and how:

* **No silent loss.** The number of samples comes from the FIFO write/read pointers;
  samples the chip dropped while its FIFO was full (OVF_COUNTER, exact up to 30,
  estimated from the sample clock beyond) are reported as ``gap_samples`` of the next
  block. A burst that fails or comes back garbled part way has already advanced the
  read pointer; the driver moves the pointer back (the datasheet's way to re-read) and
  reads those samples again, unless the chip has overwritten them, in which case they
  are reported as a gap.
* **Channels in the chip's order.** LED1 (red) comes before LED2 (IR) in each FIFO
  sample; 18-bit values are decoded from bits 17..0 of each 3-byte word and words whose
  unused bits are set are rejected as corrupt. A clone board with the LEDs wired the
  other way round is handled by ``leds_swapped``.
* **Timestamps from the sensor's own clock.** Sample ``i`` is complete at
  ``t0 + i * T``. ``T`` (the real sample period, which differs from nominal by the
  oscillator's tolerance) is a trimmed least-squares fit of host read times against
  sample counts over a sliding window; ``t0`` comes from the lower envelope of the read
  times (a sample cannot have been read before it was made), as in one-way clock
  estimation (Moon et al. 1999). Block start times are slewed, never stepped, while the
  timeline is continuous, so the DSP sees one unbroken segment.
* **Light level.** With no finger the LEDs run at a low probe current and blocks carry
  ``contact=False``. A finger is detected from the IR DC level normalised to the LED
  current and the ADC range (photocurrent per mA of drive); the LED currents are then
  set so the DC sits mid-range, and re-adjusted only when it leaves a wide band or a
  sample clips (hysteresis, so a settled signal is not disturbed). Blocks are marked
  ``contact=True`` only once the level has settled.
* **Faults.** Every bus transaction is retried with a short back-off; a read that still
  fails is left for the next poll (the samples wait in the FIFO); repeated failures
  re-initialise the chip, and if that fails a :class:`~heartsong.errors.SensorError`
  tells the caller to back off. A periodic read-back of the configuration catches a chip
  that was power-cycled behind the driver's back.

References
----------
Maxim Integrated (2018) MAX30102 High-Sensitivity Pulse Oximeter and Heart-Rate Sensor
for Wearable Health, data sheet 19-7740 Rev 1.
Moon SB, Skelly P, Towsley D (1999) Estimation and removal of clock skew from network
delay measurements. Proc IEEE INFOCOM '99, 227-234.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

import numpy as np

from heartsong.errors import ConfigError, SensorError
from heartsong.events import FloatArray, PpgBlock
from heartsong.sensors import max30102_regs as r
from heartsong.sensors.max30102_light import (
    MIN_EVAL_SAMPLES,
    MIN_LED_MA,
    ContactState,
    LightControl,
)
from heartsong.sensors.max30102_settings import Max30102Settings
from heartsong.sensors.sample_clock import SampleClock

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The FIFO raises A_FULL (and INT) when this many samples are unread.
A_FULL_SAMPLES: Final = 17
#: Poll at this fraction of the FIFO fill time when INT is not wired.
POLL_FRACTION: Final = 1.0 / 3.0
#: Attempts per bus transaction, and the waits between them in seconds.
RETRY_DELAYS_S: Final = (0.002, 0.010)
#: Consecutive failed reads after which the chip is re-initialised.
REINIT_AFTER_FAILED_READS: Final = 3
#: Interval of the configuration read-back and of the die-temperature reading, seconds.
HEALTH_CHECK_S: Final = 10.0
TEMPERATURE_EVERY_S: Final = 60.0
#: Without new samples for this long while sampling, check the chip at once, seconds.
STALL_CHECK_S: Final = 0.5
#: Largest relative rate change used to slew block times onto the fit (the DSP accepts
#: rates within 2 % of the one it was designed for).
SLEW_LIMIT: Final = 0.01
#: Beyond this many sample periods (and at least STEP_MIN_S) off the fit, block times
#: step instead of slewing.
STEP_PERIODS: Final = 4.0
STEP_MIN_S: Final = 0.02
#: The message every "sensor missing" report carries.
I2C_HINT: Final = "is I2C enabled: dtparam=i2c_arm=on in config.txt?"


class SMBusLike(Protocol):
    """The smbus2 ``SMBus`` methods the driver uses (the emulator offers the same)."""

    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        """Read one register."""
        ...

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        """Write one register."""
        ...

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        """Read ``length`` (<= 32) consecutive registers."""
        ...

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Run ``smbus2.i2c_msg`` messages as one combined transfer."""
        ...

    def close(self) -> None:
        """Release the bus."""
        ...


class Max30102NotFoundError(SensorError):
    """No MAX30102 answers at the configured bus and address (or the bus does not exist)."""

    def __init__(self, bus_label: str, address: int, cause: BaseException | None) -> None:
        self.bus_label = bus_label
        self.address = address
        detail = f" ({cause})" if cause is not None else ""
        super().__init__(
            f"no MAX30102 answers on {bus_label} at address 0x{address:02x}{detail}; "
            f"check the wiring and power; {I2C_HINT}"
        )


class _BusFaultError(OSError):
    """A bus transaction failed on every attempt (internal: handled inside the driver)."""


class _GarbledError(OSError):
    """Bytes that cannot have come from the chip (reserved bits set)."""


# --------------------------------------------------------------------------- driver


@dataclass
class DriverStats:
    """What the driver did (for the benchmark, the doctor and tests)."""

    reads: int = 0
    empty_reads: int = 0
    samples: int = 0
    blocks: int = 0
    gaps: int = 0
    gap_samples: int = 0
    transactions: int = 0
    fifo_bursts: int = 0
    retries: int = 0
    failed_reads: int = 0
    rewinds: int = 0
    reinits: int = 0
    led_changes: int = 0


@dataclass
class _PendingRecovery:
    """A burst that failed after the chip may have popped samples."""

    wr: int
    rd: int
    count: int


class Max30102:
    """Driver for one MAX30102 on an I2C bus.

    Parameters
    ----------
    bus:
        An open ``smbus2.SMBus`` (or anything with the same methods).
    settings:
        Sample rate, mode, pulse width, range and LED current.
    address:
        7-bit I2C address (0x57 on every MAX30102).
    bus_label:
        How messages name the bus, e.g. ``"/dev/i2c-1"``.
    time_fn:
        Host monotonic time in seconds (``clock.monotonic``).
    sleep_fn:
        Blocking wait in seconds of ``time_fn``'s time (scaled when time runs faster).
    max_led_ma:
        Highest LED current the automatic control may set, in mA.
    """

    def __init__(
        self,
        bus: SMBusLike,
        settings: Max30102Settings | None = None,
        *,
        address: int = r.I2C_ADDRESS,
        bus_label: str = "/dev/i2c-1",
        time_fn: Callable[[], float] = time.monotonic,
        sleep_fn: Callable[[float], None] = time.sleep,
        max_led_ma: float = r.LED_MAX_MA,
    ) -> None:
        self.settings = settings or Max30102Settings()
        if not MIN_LED_MA <= max_led_ma <= r.LED_MAX_MA:
            raise ConfigError(
                "<sensor settings>", "max_led_ma", max_led_ma,
                f"must be from {MIN_LED_MA:g} to {r.LED_MAX_MA:g} (mA)",
            )
        self._bus = bus
        self.address = int(address)
        self.bus_label = bus_label
        self._now = time_fn
        self._sleep = sleep_fn
        self.stats = DriverStats()
        self.part_id = 0
        self.rev_id = 0
        self.temperature_c: float | None = None
        self._light = LightControl(self.settings, max_led_ma)
        self._clock = SampleClock(self.settings.fs_hz)
        self._channels = self.settings.channels
        self._sample_bytes = r.BYTES_PER_CHANNEL * len(self._channels)
        self._started = False
        self._written: dict[int, int] = {}
        # FIFO bookkeeping: global index of the next sample to deliver, losses pending
        self._next_index = 0
        self._pending_gap = 0
        self._saturated = False
        self._recovery: _PendingRecovery | None = None
        self._failed_reads = 0
        self._last_sample_t = 0.0
        self._last_burst_t = 0.0
        self._led_valid_from = 0  # first index taken at the present LED currents
        self._leds_dirty = False  # the chip's LED currents lag the light control's
        self._t_sampling = 0.0
        # output timeline
        self._out_next_t: float | None = None
        self._out_next_index = 0
        # housekeeping
        self._health_at = math.inf
        self._temp_at = math.inf
        self._temp_requested_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"Max30102({self.bus_label}, 0x{self.address:02x}, {self.settings.describe()}, "
            f"state={self.state}, started={self._started})"
        )

    # -- public state -----------------------------------------------------------------------
    @property
    def state(self) -> ContactState:
        """``"no_contact"``, ``"settling"`` (finger on, light level adjusting) or ``"tracking"``."""
        return self._light.state

    @property
    def led_currents_ma(self) -> dict[str, float]:
        """Present LED currents by colour, in mA."""
        return dict(self._light.currents_ma)

    @property
    def fs_hz(self) -> float:
        """The sample rate measured against the host clock, in Hz."""
        return self._clock.fs_hz

    @property
    def poll_interval_s(self) -> float:
        """Longest safe wait between reads without INT: a third of the FIFO fill time."""
        return self.settings.fifo_fill_s * POLL_FRACTION

    @property
    def int_timeout_s(self) -> float:
        """How long to wait for INT before reading anyway, in seconds."""
        return (A_FULL_SAMPLES + 6) / self.settings.fs_hz

    def sample_time(self, index: int) -> float:
        """Host time (s) at which sample ``index`` (counted from start) was complete."""
        return self._clock.time_of(index)

    # -- bus access ---------------------------------------------------------------------------
    def _retry(self, what: str, op: Callable[[], T]) -> T:
        """Run one bus transaction, retrying with a short back-off; raise _BusFaultError at last."""
        last: OSError | None = None
        for attempt in range(len(RETRY_DELAYS_S) + 1):
            if attempt:
                self.stats.retries += 1
                self._sleep(RETRY_DELAYS_S[attempt - 1])
            self.stats.transactions += 1
            try:
                return op()
            except OSError as exc:
                last = exc
                log.debug("MAX30102 %s failed (attempt %d): %s", what, attempt + 1, exc)
        raise _BusFaultError(f"{what}: {last}")

    def _read_reg(self, reg: r.Reg) -> int:
        return self._retry(
            f"read 0x{reg:02x}", lambda: self._bus.read_byte_data(self.address, reg) & 0xFF
        )

    def _write_reg(self, reg: r.Reg, value: int) -> None:
        self._retry(
            f"write 0x{reg:02x}", lambda: self._bus.write_byte_data(self.address, reg, value)
        )
        self._written[reg] = value

    def _read_block(self, reg: r.Reg, length: int) -> list[int]:
        return self._retry(
            f"read 0x{reg:02x}+{length}",
            lambda: list(self._bus.read_i2c_block_data(self.address, reg, length)),
        )

    def _read_pointers(self) -> tuple[int, int, int, float]:
        """(FIFO_WR_PTR, OVF_COUNTER, FIFO_RD_PTR, host time just after they were latched)."""

        def op() -> tuple[int, int, int, float]:
            wr, ovf, rd = self._bus.read_i2c_block_data(self.address, r.Reg.FIFO_WR_PTR, 3)
            t = self._now()
            if (wr | ovf | rd) & ~r.POINTER_MASK:
                raise _GarbledError("FIFO pointers have reserved bits set")
            return wr, ovf, rd, t

        return self._retry("read FIFO pointers", op)

    def _burst(self, count: int) -> bytes:
        """Read ``count`` FIFO samples in one combined write-then-read transfer."""
        from smbus2 import i2c_msg

        n_bytes = count * self._sample_bytes

        def op() -> bytes:
            write = i2c_msg.write(self.address, [r.Reg.FIFO_DATA])
            read = i2c_msg.read(self.address, n_bytes)
            self._bus.i2c_rdwr(write, read)
            return bytes(read)

        self.stats.transactions += 1
        self.stats.fifo_bursts += 1
        try:
            return op()  # not retried: a failure may have popped samples (see _recover)
        except OSError as exc:
            raise _BusFaultError(f"FIFO burst of {count} samples: {exc}") from exc

    # -- start-up -------------------------------------------------------------------------------
    def start(self) -> None:
        """Find, reset and configure the chip, and start sampling.

        Raises
        ------
        Max30102NotFoundError
            Nothing answers at the address (with the "is I2C enabled" hint).
        SensorError
            Something else answers, or the chip does not take its configuration.
        """
        try:
            self._initialise()
        except _BusFaultError as exc:
            raise Max30102NotFoundError(self.bus_label, self.address, exc) from None
        self._clock.restart(self._t_sampling + self._clock.period_s, 0)
        self._last_sample_t = self._last_burst_t = self._t_sampling
        self._next_index = 0
        self._out_next_t = None
        self._out_next_index = 0
        self._started = True
        log.info(
            "MAX30102 ready on %s at 0x%02x (part 0x%02x, revision 0x%02x): %s; INT at %d samples",
            self.bus_label, self.address, self.part_id, self.rev_id,
            self.settings.describe(), A_FULL_SAMPLES,
        )

    def _initialise(self) -> None:
        """Identify, reset and configure; leaves ``_t_sampling`` at the start of sampling."""
        part = self._read_reg(r.Reg.PART_ID)
        if part != r.PART_ID_VALUE:
            part = self._read_reg(r.Reg.PART_ID)  # once more: a garbled byte is not a verdict
        if part != r.PART_ID_VALUE:
            raise SensorError(
                f"the device at 0x{self.address:02x} on {self.bus_label} reports part ID "
                f"0x{part:02x}, not 0x{r.PART_ID_VALUE:02x} (MAX30102/MAX30101/MAX30105); "
                "is the right sensor wired there?"
            )
        self.part_id = part
        self.rev_id = self._read_reg(r.Reg.REV_ID)
        self._write_reg(r.Reg.MODE_CONFIG, r.RESET.put(0, 1))
        for _ in range(100):
            self._sleep(0.001)
            if not r.RESET.get(self._read_reg(r.Reg.MODE_CONFIG)):
                break
        else:
            raise SensorError(f"MAX30102 on {self.bus_label} did not finish its reset")
        s = self.settings
        self._written.clear()
        fifo_cfg = r.SMP_AVE.put(0, r.code_for(r.SAMPLE_AVERAGE, s.sample_average))
        fifo_cfg = r.FIFO_ROLLOVER_EN.put(fifo_cfg, 0)  # keep the oldest: losses are a gap
        fifo_cfg = r.FIFO_A_FULL.put(fifo_cfg, r.a_full_code(A_FULL_SAMPLES))
        spo2 = r.SPO2_ADC_RGE.put(0, r.code_for(r.ADC_RANGE_NA, s.adc_range_na))
        spo2 = r.SPO2_SR.put(spo2, r.code_for(r.SAMPLE_RATE_SPS, s.sample_rate_sps))
        spo2 = r.LED_PW.put(spo2, r.pulse_width_code(s.pulse_width_us))
        self._write_reg(r.Reg.INT_ENABLE_1, r.A_FULL_EN.put(0, 1))
        self._write_reg(r.Reg.INT_ENABLE_2, 0)
        self._write_reg(r.Reg.FIFO_CONFIG, fifo_cfg)
        self._write_reg(r.Reg.SPO2_CONFIG, spo2)
        self._light.reset()
        self._write_leds()
        if s.mode == "red_ir":
            mode = r.ModeCode.SPO2  # LED1 then LED2 in every sample
        elif s.leds[s.mode] == 1:
            mode = r.ModeCode.HEART_RATE  # LED1 only
        else:  # one slot pulsing LED2
            mode = r.ModeCode.MULTI_LED
            self._write_reg(r.Reg.MULTI_LED_1, r.SLOT1.put(0, int(r.SlotLed.LED2_IR)))
            self._write_reg(r.Reg.MULTI_LED_2, 0)
        for reg in (r.Reg.FIFO_WR_PTR, r.Reg.OVF_COUNTER, r.Reg.FIFO_RD_PTR):
            self._write_reg(reg, 0)
        self._read_block(r.Reg.INT_STATUS_1, 2)  # clears PWR_RDY and stale flags
        self._write_reg(r.Reg.MODE_CONFIG, r.MODE.put(0, int(mode)))
        self._t_sampling = self._now()
        if not self._config_intact():
            raise SensorError(f"MAX30102 on {self.bus_label} did not keep its configuration")
        self._recovery = None
        self._saturated = False
        self._failed_reads = 0
        self._pending_gap = 0
        self._led_valid_from = 0
        self._leds_dirty = False
        self._health_at = self._t_sampling + HEALTH_CHECK_S
        self._temp_at = self._t_sampling + 1.0
        self._temp_requested_at = None

    def _write_leds(self) -> None:
        """Program the LED pulse amplitudes from the light control's currents."""
        currents = self._light.currents_ma
        for colour, led in self.settings.leds.items():  # an unused LED stays dark
            reg = r.Reg.LED1_PA if led == 1 else r.Reg.LED2_PA
            self._write_reg(reg, r.led_code(currents.get(colour, 0.0)))

    def _config_intact(self) -> bool:
        """True when the configuration registers read back as written."""
        regs = (r.Reg.FIFO_CONFIG, r.Reg.MODE_CONFIG, r.Reg.SPO2_CONFIG)
        got = self._read_block(r.Reg.FIFO_CONFIG, 3)
        want = [self._written.get(reg, 0) for reg in regs]
        if got == want:
            return True
        return self._read_block(r.Reg.FIFO_CONFIG, 3) == want  # twice: rule out garbling

    def close(self) -> None:
        """Put the chip into shutdown (LEDs off); errors are ignored. Safe to call twice."""
        if not self._started:
            return
        self._started = False
        try:
            self._bus.write_byte_data(self.address, r.Reg.MODE_CONFIG, r.SHDN.put(0, 1))
        except OSError as exc:
            log.debug("MAX30102 shutdown failed: %s", exc)

    # -- reading --------------------------------------------------------------------------------
    def read(self) -> list[PpgBlock]:
        """Read every pending sample; returns zero or one block (two around a re-start).

        Raises
        ------
        SensorError
            The chip stopped answering and could not be re-initialised; back off and
            build a new driver later.
        """
        if not self._started:
            raise SensorError("Max30102.read() before start()")
        self.stats.reads += 1
        try:
            blocks = self._read_fifo()
            self._failed_reads = 0
        except _BusFaultError as exc:
            self.stats.failed_reads += 1
            self._failed_reads += 1
            log.debug("MAX30102 read failed (%d in a row): %s", self._failed_reads, exc)
            if self._failed_reads >= REINIT_AFTER_FAILED_READS:
                self._reinit(f"{self._failed_reads} reads in a row failed ({exc})")
            return []
        self._housekeeping()
        return blocks

    def _read_fifo(self) -> list[PpgBlock]:
        """Read every pending sample; a failed burst is recovered and retried at once."""
        for delay in (0.0, *RETRY_DELAYS_S):
            if delay:
                self.stats.retries += 1
                self._sleep(delay)
            try:
                return self._read_fifo_once()
            except _BusFaultError as exc:
                last = exc
        raise last

    def _read_fifo_once(self) -> list[PpgBlock]:
        wr, ovf, rd, t_obs = self._read_pointers()
        popped = self._popped(rd)
        count = self._unread(wr, ovf, rd, t_obs, popped)
        if count > self._plausible_max(t_obs, popped):
            wr, ovf, rd, t_obs = self._read_pointers()  # a garbled read can look plausible
            popped = self._popped(rd)
            count = self._unread(wr, ovf, rd, t_obs, popped)
        if self._recovery is not None:
            count, rd = self._resolve_recovery(ovf, count, rd, popped)
        if self._saturated:
            self._estimate_saturated_gap(t_obs, count)
        if count == 0:
            self.stats.empty_reads += 1
            if t_obs - self._last_sample_t > STALL_CHECK_S:
                self._health_at = min(self._health_at, t_obs)
            return []
        try:
            data = self._burst(count)
        except _BusFaultError:
            self._recovery = _PendingRecovery(wr, rd, count)
            raise
        codes, clean = r.fifo_decode(data, len(self._channels))
        if not clean or codes.shape[0] != count:
            self._recovery = _PendingRecovery(wr, rd, count)
            raise _BusFaultError("garbled FIFO data (unused bits set)")
        self._last_sample_t = self._last_burst_t = t_obs
        i0 = self._next_index
        gap = self._pending_gap
        self._pending_gap = 0
        self._next_index += count
        if ovf >= r.OVERFLOW_SATURATED:
            self._saturated = True  # how many were lost is estimated at the next read
        elif ovf:
            self._pending_gap += ovf  # lost after the samples just read
            self._next_index += ovf
        if count < r.FIFO_DEPTH and not self._saturated:
            # (a full FIFO does not say since when it has been full: no timing from it)
            self._clock.observe(t_obs, self._next_index)
        return [self._make_block(i0, codes, gap)]

    def _popped(self, rd: int) -> int:
        """Samples a failed burst popped before it broke off (0 when none is pending).

        With all 32 samples popped the pointers would look untouched; that needs the
        transfer to fail after its very last byte, and is taken as nothing popped.
        """
        rec = self._recovery
        return 0 if rec is None else (rd - rec.rd) % r.FIFO_DEPTH

    def _unread(self, wr: int, ovf: int, rd: int, t_obs: float, popped: int) -> int:
        """Samples in the FIFO from the pointers (equal pointers: empty, or full)."""
        count = (wr - rd) % r.FIFO_DEPTH
        if ovf or (count == 0 and self._expected_unread(t_obs, popped) >= r.FIFO_DEPTH // 2):
            return r.FIFO_DEPTH
        return count

    def _expected_unread(self, t_s: float, popped: int = 0) -> int:
        """Samples the sample clock says are waiting in the FIFO at host time ``t_s``."""
        clock = self._clock
        if self._saturated:  # the index is unknown until the gap is estimated
            return clock.produced_by(t_s) - clock.produced_by(self._last_burst_t)
        return clock.produced_by(t_s) - self._next_index - popped

    def _plausible_max(self, t_s: float, popped: int) -> int:
        """Most samples that can be waiting, allowing for the clock estimate's error."""
        expected = self._expected_unread(t_s, popped)
        return min(r.FIFO_DEPTH, expected + self._clock.slack(t_s))

    def _resolve_recovery(self, ovf: int, count: int, rd: int, popped: int) -> tuple[int, int]:
        """After a failed burst: re-expose the popped samples the chip still holds.

        Returns the number of samples waiting and the read pointer once that is done.
        """
        rec = self._recovery
        assert rec is not None
        if not popped:
            self._recovery = None
            return count, rd
        free_before = r.FIFO_DEPTH - rec.count
        arrived = r.FIFO_DEPTH if ovf else count - (rec.count - popped)
        overwritten = min(popped, max(0, arrived - free_before))
        recoverable = popped - overwritten
        if recoverable:
            # may raise: the recovery then stays pending for the next read
            rd = (rec.rd + overwritten) % r.FIFO_DEPTH
            self._write_reg(r.Reg.FIFO_RD_PTR, rd)
            self.stats.rewinds += 1
            count = min(r.FIFO_DEPTH, count + recoverable)
        self._recovery = None
        if overwritten:
            self._pending_gap += overwritten
            self._next_index += overwritten
            log.debug("MAX30102: %d samples lost in a failed transfer", overwritten)
        return count, rd

    def _estimate_saturated_gap(self, t_obs: float, count: int) -> None:
        """OVF_COUNTER saturated: take the number lost from the sample clock instead."""
        self._saturated = False
        first = self._clock.produced_by(t_obs) - count
        lost = max(r.OVERFLOW_SATURATED, first - self._next_index)
        self._pending_gap += lost
        self._next_index += lost

    def _make_block(self, i0: int, codes: r.IntArray, gap: int) -> PpgBlock:
        n = codes.shape[0]
        values = codes.astype(np.float64)
        by_colour = {c: values[:, k] for k, c in enumerate(self._channels)}
        contact = self._judge_light(i0, by_colour)
        t0, fs = self._block_timing(i0, n, gap)
        self.stats.samples += n
        self.stats.blocks += 1
        if gap:
            self.stats.gaps += 1
            self.stats.gap_samples += gap
        empty = np.zeros(0)
        return PpgBlock(
            t0_s=t0,
            fs_hz=fs,
            ir=np.ascontiguousarray(by_colour.get("ir", empty)),
            red=np.ascontiguousarray(by_colour.get("red", empty)),
            gap_samples=gap,
            contact=contact,
        )

    def _block_timing(self, i0: int, n: int, gap: int) -> tuple[float, float]:
        """Start time and rate of a block: on the fitted clock, slewed for continuity."""
        clock = self._clock
        fit_start = clock.time_of(i0)
        continuous = (
            self._out_next_t is not None and gap == 0 and i0 == self._out_next_index
            and abs(self._out_next_t - fit_start) < max(STEP_PERIODS * clock.period_s, STEP_MIN_S)
        )
        t0 = self._out_next_t if continuous and self._out_next_t is not None else fit_start
        fs = clock.fs_hz
        span = clock.time_of(i0 + n) - t0
        if span > 0:
            fs = min(max(n / span, fs * (1.0 - SLEW_LIMIT)), fs * (1.0 + SLEW_LIMIT))
        self._out_next_t = t0 + n / fs
        self._out_next_index = i0 + n
        return t0, fs

    # -- light ----------------------------------------------------------------------------------
    def _judge_light(self, i0: int, x: dict[str, FloatArray]) -> bool:
        """Run the light control on the samples taken at the present LED currents."""
        if self._leds_dirty:
            self._apply_leds()  # a failed LED write: try again before judging anything
        else:
            skip = max(0, self._led_valid_from - i0)
            n = next(iter(x.values())).shape[0]
            if n - skip >= MIN_EVAL_SAMPLES and self._light.update(
                {c: v[skip:] for c, v in x.items()}
            ):
                self._apply_leds()
        return self._light.state == "tracking" and not self._leds_dirty

    def _apply_leds(self) -> None:
        try:
            self._write_leds()
        except _BusFaultError as exc:
            log.debug("MAX30102 LED update failed; retrying at the next read: %s", exc)
            self._leds_dirty = True
            return
        self._leds_dirty = False
        self.stats.led_changes += 1
        self._led_valid_from = self._first_index_after_now()
        log.debug("MAX30102 LED currents now %s mA", self._light.currents_ma)

    def _first_index_after_now(self) -> int:
        """Index of the first sample surely taken after this moment.

        Every sample not yet in the FIFO is taken later; the one in progress may straddle
        the moment, hence the +1. The FIFO count comes from the pointers (exact); the
        sample clock's figure is a floor, in case the pointers cannot be read.
        """
        floor = self._clock.produced_by(self._now()) + 1
        if self._recovery is not None or self._saturated:
            return floor
        try:
            wr, ovf, rd, t = self._read_pointers()
        except _BusFaultError:
            return floor
        return max(floor, self._next_index + self._unread(wr, ovf, rd, t, 0) + ovf + 1)

    # -- housekeeping ---------------------------------------------------------------------------
    def _housekeeping(self) -> None:
        now = self._now()
        try:
            if now >= self._health_at:
                self._health_at = now + HEALTH_CHECK_S
                if not self._config_intact():
                    self._reinit("the chip lost its configuration (power glitch or reconnect)")
                    return
            if self._temp_requested_at is not None and now - self._temp_requested_at >= 0.04:
                self._finish_temperature()
            elif now >= self._temp_at:
                self._temp_at = now + TEMPERATURE_EVERY_S
                self._write_reg(r.Reg.TEMP_CONFIG, r.TEMP_EN.put(0, 1))
                self._temp_requested_at = now
        except _BusFaultError as exc:
            log.debug("MAX30102 housekeeping failed: %s", exc)

    def _finish_temperature(self) -> None:
        t_int, t_frac, t_cfg = self._read_block(r.Reg.TEMP_INT, 3)
        if r.TEMP_EN.get(t_cfg):
            return  # still converting
        self._temp_requested_at = None
        self.temperature_c = r.temperature_c(t_int, t_frac)

    def measure_temperature_c(self) -> float:
        """Run one die-temperature conversion now and return it in degrees C (blocks ~40 ms)."""
        try:
            self._write_reg(r.Reg.TEMP_CONFIG, r.TEMP_EN.put(0, 1))
            self._temp_requested_at = self._now()
            for _ in range(10):
                self._sleep(0.01)
                self._finish_temperature()
                if self._temp_requested_at is None and self.temperature_c is not None:
                    return self.temperature_c
        except _BusFaultError as exc:
            raise SensorError(f"MAX30102 temperature read failed: {exc}") from None
        raise SensorError("MAX30102 temperature conversion did not finish")

    def _reinit(self, reason: str) -> None:
        """Reset and reconfigure after repeated failures; the timeline restarts with a gap."""
        log.warning("MAX30102 on %s: %s; re-initialising", self.bus_label, reason)
        self.stats.reinits += 1
        expected_next = self._clock.time_of(self._next_index)
        undelivered_gap = self._pending_gap
        try:
            self._initialise()
        except (_BusFaultError, SensorError) as exc:
            self._started = False
            raise SensorError(
                f"MAX30102 on {self.bus_label} at 0x{self.address:02x} stopped answering "
                f"and could not be re-initialised ({exc})"
            ) from None
        first_t = self._t_sampling + self._clock.period_s
        lost = max(1, round((first_t - expected_next) / self._clock.period_s))
        self._pending_gap = undelivered_gap + lost
        self._next_index += lost
        self._clock.restart(first_t, self._next_index)
        self._last_sample_t = self._last_burst_t = self._t_sampling
        self._led_valid_from = self._next_index
        self._out_next_t = None
