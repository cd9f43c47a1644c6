"""A fake SMBus with a MAX30102 behind it, emulated at register level.

The emulator answers the smbus2 ``SMBus`` calls the driver makes (``read_byte_data``,
``write_byte_data``, ``read_i2c_block_data``, ``i2c_rdwr`` with real
``smbus2.i2c_msg`` objects, ``close``), so the real driver runs unchanged over it, in
tests and in ``heartsong demo``. What it models, from the register map in
:mod:`heartsong.sensors.max30102_regs`:

* power-on and software reset (the RESET bit reads 1 until the reset is done, then
  clears itself), part and revision IDs, interrupt flags that clear on read and an
  active-low INT line (drive a gpiozero ``MockPin`` with it);
* a 32-sample FIFO filled by its own sample clock, which runs ``clock_error`` fast or
  slow against the host (the datasheet allows a few per cent), with averaging; write and
  read pointers that wrap; an overflow counter that saturates at 31 and resets when a
  sample is popped; rollover when enabled; FIFO_DATA bursts that do not advance the
  register address but pop one sample per sample read;
* ADC codes from a simulated finger: the signal source (a
  :class:`~heartsong.sensors.simulated.PpgSynth`) gives red and IR counts at the
  reference LED current and ADC range; the emulator samples it (linear interpolation)
  at the times its own clock produces samples, scales each channel by its LED's current
  and by the full-scale range, quantises to the resolution the pulse width gives
  (left-justified 18-bit words), averages, and saturates at full scale;
* the die-temperature conversion (TEMP_EN self-clears after ~29 ms, DIE_TEMP_RDY);
* faults on demand: I/O errors on a fraction of transactions (a transfer can fail part
  way, after popping FIFO samples, as on a real bus), garbage bytes returned by a
  fraction of reads, a stuck bus (every transfer times out), and a sensor that
  disappears (NACK: "Remote I/O error") and comes back in its power-on state.

With ``record=True`` it keeps the ground truth of every sample it produced, so tests
can check that the driver delivered exactly what the chip held.

``elastic_fifo=True`` is a demo aid, not chip behaviour: samples that would overflow
the FIFO wait in a hidden queue (up to :data:`ELASTIC_LIMIT_S` of them) and enter the
FIFO as it drains, scaled by the LED currents in force when they enter (as if just
taken). A demo running a hundred times faster than real time gives the reader ~3 ms of
real time before the 32-sample FIFO overflows, which a Python thread cannot promise;
with the queue the driver still sees every sample, late, and since its clock estimate
only trusts the earliest reads, lateness does not bias the timestamps.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from heartsong.events import FloatArray
from heartsong.sensors import max30102_regs as r

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: The I2C_M_RD flag of a Linux ``struct i2c_msg``: the message reads from the device.
I2C_M_RD: Final = 0x0001
#: Longest SMBus block transfer, in bytes (smbus2 refuses longer ones).
SMBUS_BLOCK_MAX: Final = 32
#: How long a software reset keeps the RESET bit set, in seconds.
RESET_TIME_S: Final = 0.001
#: Seconds of signal fetched from the source at a time (its ``read`` is sequential).
_CHUNK_S: Final = 1.0
#: Most signal fetched in one call when skipping ahead, in seconds.
_MAX_FETCH_S: Final = 60.0
#: Most samples an elastic FIFO holds back, in seconds of sampling.
ELASTIC_LIMIT_S: Final = 60.0


class PpgSignal(Protocol):
    """What the emulator reads the finger from (a PpgSynth satisfies it)."""

    @property
    def fs_hz(self) -> float:
        """Rate of the source's samples in Hz; sample ``i`` is at ``i / fs_hz`` seconds."""
        ...

    def read(self, n: int) -> tuple[FloatArray, FloatArray, bool]:
        """The next ``n`` samples as (ir, red) counts at the reference settings."""
        ...


class DrivablePin(Protocol):
    """A pin the emulator can pull low and release (gpiozero ``MockPin``)."""

    def drive_low(self) -> None:
        """Pull the line low (INT asserted)."""
        ...

    def drive_high(self) -> None:
        """Release the line (pulled up: INT deasserted)."""
        ...


class ManualClock:
    """Simulation time that moves only when told to: for tests and benchmarks.

    It satisfies :class:`heartsong.clock.Clock` (``await sleep`` advances the time and
    yields once) and offers :meth:`sleep_sync` for code that blocks in a thread.
    """

    speed = 1.0

    def __init__(self, start_s: float = 0.0, wall_origin_s: float = 1_700_000_000.0) -> None:
        self._t = float(start_s)
        self._wall0 = float(wall_origin_s)

    def monotonic(self) -> float:
        """The current simulation time in seconds."""
        return self._t

    def wall(self) -> float:
        """A Unix time that moves with :meth:`monotonic`, in seconds."""
        return self._wall0 + self._t

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` (negative values are ignored)."""
        self._t += max(0.0, float(seconds))

    def sleep_sync(self, seconds: float) -> None:
        """Blocking sleep: advance the time by ``seconds`` and return at once."""
        self.advance(seconds)

    async def sleep(self, seconds: float) -> None:
        """Advance the time by ``seconds`` and let other tasks run once."""
        self.advance(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(t={self._t:.6f})"


@dataclass
class EmulatorStats:
    """Counts of what the host did on the bus."""

    transactions: int = 0
    reads: int = 0
    writes: int = 0
    fifo_bursts: int = 0
    fifo_samples_popped: int = 0
    bytes_read: int = 0
    injected_errors: int = 0
    injected_garbage: int = 0
    nacks: int = 0
    timeouts: int = 0


@dataclass
class Truth:
    """Ground truth of the samples the emulated chip produced (``record=True``).

    Attributes
    ----------
    session:
        Sampling session of each sample (a new one starts at every (re)configuration
        that restarts the sample clock, and after a power cycle).
    index:
        Index of the sample within its session, from 0.
    t_s:
        Host time at which the sample was complete, in seconds.
    codes:
        ADC codes in FIFO channel order, shape (samples, channels); -1 where the sample
        was never stored (dropped on overflow).
    pushed:
        True when the sample entered the FIFO.
    destroyed:
        True when the sample was popped by a transfer that failed or came back garbled
        and was then overwritten before the host could read it again.
    """

    session: IntArray
    index: IntArray
    t_s: FloatArray
    codes: IntArray
    pushed: BoolArray
    destroyed: BoolArray


def _os_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class _SignalTap:
    """Reads a sequential signal source and interpolates it at arbitrary increasing times."""

    def __init__(self, signal: PpgSignal) -> None:
        self._signal = signal
        self._fs = float(signal.fs_hz)
        self._start = 0  # source index of buf[0]
        self._ir: FloatArray = np.zeros(0)
        self._red: FloatArray = np.zeros(0)

    def _ensure(self, last_index: int) -> None:
        """Fetch source samples until index ``last_index`` is buffered."""
        chunk = max(1, int(_CHUNK_S * self._fs))
        limit = max(chunk, int(_MAX_FETCH_S * self._fs))
        while self._start + self._ir.shape[0] <= last_index:
            missing = last_index + 1 - (self._start + self._ir.shape[0])
            n = min(limit, max(chunk, missing))
            ir, red, _contact = self._signal.read(n)
            self._ir = np.concatenate([self._ir, ir])
            self._red = np.concatenate([self._red, red])

    def _drop_before(self, first_index: int) -> None:
        k = first_index - self._start
        if k > 0:
            self._ir, self._red = self._ir[k:], self._red[k:]
            self._start = first_index

    def skip_to(self, t_s: float) -> None:
        """Forget the signal before ``t_s`` (s), reading through it if needed."""
        i = max(0, math.floor(t_s * self._fs) - 1)
        self._ensure(i + 1)
        self._drop_before(i)

    def at(self, t_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(ir, red) counts at the reference settings, linearly interpolated at ``t_s``."""
        x = np.maximum(np.asarray(t_s, dtype=np.float64), 0.0) * self._fs
        i0 = max(math.floor(float(x[0])) - 1, 0)
        self._drop_before(min(i0, self._start + self._ir.shape[0]))
        self._ensure(math.floor(float(x[-1])) + 1)
        pos = np.maximum(x - self._start, 0.0)
        i = np.minimum(pos.astype(np.int64), self._ir.shape[0] - 2)
        frac = pos - i
        ir = self._ir[i] * (1.0 - frac) + self._ir[i + 1] * frac
        red = self._red[i] * (1.0 - frac) + self._red[i + 1] * frac
        return ir, red


@dataclass
class _Session:
    """One run of the sample clock: fixed rate, averaging and channel layout."""

    number: int
    t0_s: float
    rate_hz: float  # FIFO samples per second (after averaging)
    raw_rate_hz: float
    average: int
    channels: tuple[str, ...]  # light colour of each FIFO channel: "red" or "ir"
    leds: tuple[int, ...]  # which LED (1 or 2) pulses for each FIFO channel
    produced: int = 0


@dataclass
class _TruthLog:
    session: list[IntArray] = field(default_factory=list)
    index: list[IntArray] = field(default_factory=list)
    t_s: list[FloatArray] = field(default_factory=list)
    stored_ids: list[IntArray] = field(default_factory=list)
    stored_codes: list[IntArray] = field(default_factory=list)
    destroyed_ids: set[int] = field(default_factory=set)


@dataclass
class _Pending:
    """Samples taken but not in the FIFO yet: ids and signal at the reference settings."""

    ids: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ir: FloatArray = field(default_factory=lambda: np.zeros((0, 1)))
    red: FloatArray = field(default_factory=lambda: np.zeros((0, 1)))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def extend(self, ids: IntArray, ir: FloatArray, red: FloatArray) -> None:
        if len(self) == 0:
            self.ids, self.ir, self.red = ids, ir, red
        else:
            self.ids = np.concatenate([self.ids, ids])
            self.ir = np.concatenate([self.ir, ir])
            self.red = np.concatenate([self.red, red])

    def take(self, n: int) -> tuple[IntArray, FloatArray, FloatArray]:
        out = self.ids[:n], self.ir[:n], self.red[:n]
        self.ids, self.ir, self.red = self.ids[n:], self.ir[n:], self.red[n:]
        return out


class Max30102Emulator:
    """A MAX30102 on an emulated I2C bus, with the smbus2 ``SMBus`` methods the driver uses.

    Parameters
    ----------
    time_fn:
        Host monotonic time in seconds (``clock.monotonic``); the chip's sample clock and
        every delay follow it.
    signal:
        The finger: red and IR counts at ``reference_led_ma`` and ``reference_range_na``.
    address:
        7-bit I2C address the chip answers at.
    clock_error:
        Relative error of the chip's oscillator: 0.008 makes it sample 0.8 % fast.
    seed:
        Seed (integer >= 0) of the fault injection.
    rev_id:
        What REV_ID (0xFE) reads.
    die_temp_c:
        Die temperature the next conversion reports, in degrees C (settable).
    reference_led_ma, reference_range_na:
        LED current (mA) and ADC full-scale range (nA) at which ``signal`` is given.
    leds_swapped:
        Emulate a clone board whose LED1 pin drives the IR LED and LED2 the red one.
    record:
        Keep the ground truth of every sample (see :attr:`truth`).
    elastic_fifo:
        Demo aid: queue samples that would overflow instead of dropping them (see the
        module docstring).
    """

    def __init__(
        self,
        time_fn: Callable[[], float],
        signal: PpgSignal,
        *,
        address: int = r.I2C_ADDRESS,
        clock_error: float = 0.0,
        seed: int = 0,
        rev_id: int = 0x03,
        die_temp_c: float = 31.25,
        reference_led_ma: float = 7.0,
        reference_range_na: int = 4096,
        leds_swapped: bool = False,
        record: bool = False,
        elastic_fifo: bool = False,
    ) -> None:
        if not -0.1 < clock_error < 0.1:
            raise ValueError(f"clock_error must be within +-0.1, got {clock_error!r}")
        if not reference_led_ma > 0:
            raise ValueError(f"reference_led_ma must be > 0 mA, got {reference_led_ma!r}")
        if reference_range_na not in r.ADC_RANGE_NA.values():
            raise ValueError(f"reference_range_na must be one of {sorted(r.ADC_RANGE_NA.values())}")
        self._time = time_fn
        self._tap = _SignalTap(signal)
        self.address = int(address)
        self.clock_error = float(clock_error)
        self._rng = np.random.default_rng(seed)
        self._rev_id = rev_id & 0xFF
        self.die_temp_c = float(die_temp_c)
        self._ref_ma = float(reference_led_ma)
        self._ref_range = float(reference_range_na)
        self._leds_swapped = bool(leds_swapped)
        self._record = record
        self._truth = _TruthLog()
        self._elastic = bool(elastic_fifo)
        self._backlog = _Pending()

        # faults
        self.io_error_rate = 0.0
        self.garbage_rate = 0.0
        self.stuck = False
        self._removed = False  # by remove()/reinsert()
        self._absences: list[tuple[float, float]] = []  # by schedule_absence()
        self._absent = False

        self.stats = EmulatorStats()
        self._int_pin: DrivablePin | None = None
        self._int_asserted = False
        self.closed = False

        self._regs = bytearray(256)
        self._slots: list[bytes] = [b""] * r.FIFO_DEPTH
        self._slot_ids: list[int] = [-1] * r.FIFO_DEPTH
        self._wr = self._rd = self._count = self._ovf = 0
        self._session: _Session | None = None
        self._sessions = 0
        self._produced_total = 0
        self._reset_until = -math.inf
        self._temp_due: float | None = None
        self._cur_sample = b""
        self._cur_pos = 0
        self._unconfirmed: set[int] = set()
        self._t_last = float(time_fn())
        self._power_on()

    # -- fault control ------------------------------------------------------------------
    def remove(self) -> None:
        """Take the sensor off the bus (it stops answering and loses power)."""
        self._removed = True
        self._set_present(self._time())

    def reinsert(self) -> None:
        """Put the sensor back: it answers again, in its power-on state."""
        self._removed = False
        self._set_present(self._time())

    def schedule_absence(self, t_start_s: float, t_end_s: float) -> None:
        """Remove the sensor from ``t_start_s`` to ``t_end_s`` (host seconds)."""
        if not t_end_s > t_start_s:
            raise ValueError("t_end_s must be after t_start_s")
        self._absences.append((float(t_start_s), float(t_end_s)))

    @property
    def present(self) -> bool:
        """True while the sensor answers on the bus."""
        return not self._absent

    # -- observation --------------------------------------------------------------------
    @property
    def sampling(self) -> bool:
        """True while the sample clock runs."""
        return self._session is not None

    @property
    def fifo_count(self) -> int:
        """Unread samples in the FIFO (the chip's own count, 0..32)."""
        return self._count

    @property
    def led_currents_ma(self) -> tuple[float, float]:
        """(LED1, LED2) pulse amplitudes in mA as programmed."""
        return (
            r.led_current_ma(self._regs[r.Reg.LED1_PA]),
            r.led_current_ma(self._regs[r.Reg.LED2_PA]),
        )

    @property
    def int_pin(self) -> DrivablePin | None:
        """The pin the INT line drives (a gpiozero ``MockPin``); set it to attach one."""
        return self._int_pin

    @int_pin.setter
    def int_pin(self, pin: DrivablePin | None) -> None:
        self._int_pin = pin
        if pin is not None:  # bring the new pin to the line's present level
            if self._int_asserted:
                pin.drive_low()
            else:
                pin.drive_high()

    @property
    def int_asserted(self) -> bool:
        """True while the INT line is pulled low."""
        return self._int_asserted

    def update(self) -> None:
        """Run the chip up to the current time (samples, conversions, INT line)."""
        now = self._time()
        self._set_present(now)
        self._advance(now)
        self._update_int()

    def next_sample_time(self) -> float | None:
        """Host time at which the next FIFO sample completes, or None when not sampling."""
        s = self._session
        if s is None:
            return None
        return s.t0_s + (s.produced + 1) / s.rate_hz

    @property
    def truth(self) -> Truth:
        """Ground truth of every sample produced so far (needs ``record=True``)."""
        if not self._record:
            raise RuntimeError("the emulator was made without record=True")
        t = self._truth
        n = sum(x.shape[0] for x in t.index)
        width = max((c.shape[1] for c in t.stored_codes), default=1)
        codes = np.full((n, width), -1, dtype=np.int64)
        for ids, c in zip(t.stored_ids, t.stored_codes, strict=True):
            codes[ids, : c.shape[1]] = c
        ids_all = np.arange(n, dtype=np.int64)
        return Truth(
            session=_cat_int(t.session),
            index=_cat_int(t.index),
            t_s=np.concatenate(t.t_s) if t.t_s else np.zeros(0),
            codes=codes,
            pushed=np.isin(ids_all, _cat_int(t.stored_ids)),
            destroyed=np.isin(ids_all, np.fromiter(t.destroyed_ids, dtype=np.int64)),
        )

    # -- smbus2 SMBus interface ---------------------------------------------------------
    def read_byte_data(self, i2c_addr: int, register: int, force: bool | None = None) -> int:
        """Read one register (an SMBus "read byte data" transaction)."""
        (data,) = self._transaction(
            i2c_addr, [(True, bytes([register & 0xFF])), (False, b"")], [1]
        )
        return data[0]

    def write_byte_data(
        self, i2c_addr: int, register: int, value: int, force: bool | None = None
    ) -> None:
        """Write one register (an SMBus "write byte data" transaction)."""
        self._transaction(i2c_addr, [(True, bytes([register & 0xFF, value & 0xFF]))], [])

    def read_i2c_block_data(
        self, i2c_addr: int, register: int, length: int, force: bool | None = None
    ) -> list[int]:
        """Read ``length`` (<= 32) bytes from ``register`` on (an I2C block read)."""
        if not 0 <= length <= SMBUS_BLOCK_MAX:
            raise ValueError(f"Desired block length over {SMBUS_BLOCK_MAX} bytes")
        (data,) = self._transaction(
            i2c_addr, [(True, bytes([register & 0xFF])), (False, b"")], [length]
        )
        return list(data)

    def i2c_rdwr(self, *i2c_msgs: Any) -> None:
        """Run ``smbus2.i2c_msg`` messages as one combined transfer; fill the read buffers."""
        ops: list[tuple[bool, bytes]] = []
        lengths: list[int] = []
        addr = None
        for msg in i2c_msgs:
            if addr is None:
                addr = int(msg.addr)
            elif int(msg.addr) != addr:
                raise ValueError("the emulator serves one device per transfer")
            if int(msg.flags) & I2C_M_RD:
                ops.append((False, b""))
                lengths.append(int(msg.len))
            else:
                ops.append((True, bytes(msg)))
        data = self._transaction(addr if addr is not None else -1, ops, lengths)
        reads = iter(data)
        for msg in i2c_msgs:
            if int(msg.flags) & I2C_M_RD:
                chunk = next(reads)
                ctypes.memmove(msg.buf, chunk, len(chunk))

    def close(self) -> None:
        """Release the bus handle (the emulated chip keeps running)."""
        self.closed = True

    # -- the transaction engine -----------------------------------------------------------
    def _transaction(
        self, addr: int, ops: list[tuple[bool, bytes]], read_lengths: list[int]
    ) -> list[bytes]:
        """One START..STOP transfer: writes set the register pointer (then write), reads read.

        ``ops`` are (is_write, payload) in bus order; a read's length comes from
        ``read_lengths`` in order.
        """
        now = self._time()
        self._set_present(now)
        self._advance(now)
        if self._session is not None:
            self._drain_backlog(self._session, False)
        self.stats.transactions += 1
        if self._absent or addr != self.address:
            self.stats.nacks += 1
            raise _os_error(errno.EREMOTEIO)
        if self.stuck:
            self.stats.timeouts += 1
            raise _os_error(errno.ETIMEDOUT)
        total = sum(len(p) for w, p in ops if w) + sum(read_lengths)
        fail_at = -1
        if self.io_error_rate > 0 and self._rng.random() < self.io_error_rate:
            fail_at = int(self._rng.integers(0, total + 1))
        garbage = self.garbage_rate > 0 and self._rng.random() < self.garbage_rate
        popped: list[int] = []
        out: list[bytes] = []
        done = 0
        lengths = iter(read_lengths)
        pointer = 0
        try:
            for is_write, payload in ops:
                if is_write:
                    for k, byte in enumerate(payload):
                        if done == fail_at:
                            raise _os_error(int(self._rng.choice(_FAULT_ERRNOS)))
                        if k == 0:
                            pointer = byte
                        else:
                            self._write_reg(pointer, byte, now)
                            pointer = self._next_pointer(pointer)
                        done += 1
                    self.stats.writes += 1
                else:
                    n = next(lengths)
                    if pointer == r.Reg.FIFO_DATA and n:
                        self.stats.fifo_bursts += 1
                    cut = n if not done <= fail_at < done + n else fail_at - done
                    data, pointer = self._read_bytes(pointer, cut, popped)
                    done += cut
                    if cut < n:
                        raise _os_error(int(self._rng.choice(_FAULT_ERRNOS)))
                    self.stats.reads += 1
                    self.stats.bytes_read += n
                    out.append(data)
            if done == fail_at:
                raise _os_error(int(self._rng.choice(_FAULT_ERRNOS)))
        except OSError:
            self.stats.injected_errors += 1
            self._end_transfer(popped, delivered=False)
            raise
        if garbage and out:
            self.stats.injected_garbage += 1
            out = [self._rng.integers(0, 256, len(b), dtype=np.uint8).tobytes() for b in out]
        self._end_transfer(popped, delivered=not garbage)
        return out

    def _end_transfer(self, popped: list[int], *, delivered: bool) -> None:
        self._cur_sample = b""
        self._cur_pos = 0
        if self._record:
            if delivered:
                self._unconfirmed.difference_update(popped)
            else:
                self._unconfirmed.update(popped)
        self._update_int()

    @staticmethod
    def _next_pointer(reg: int) -> int:
        """The register address after ``reg`` in a burst (FIFO_DATA does not advance)."""
        return reg if reg == r.Reg.FIFO_DATA else (reg + 1) & 0xFF

    def _set_present(self, now: float) -> None:
        """Apply removal and scheduled absences at ``now``; power on again when back.

        An absence that began and ended since the last look still cost the chip its
        power: it restarts in its power-on state.
        """
        for a, b in self._absences:
            if self._t_last < a and b <= now and not self._absent:
                self._advance(a)
                self._absent = True
                self._session = None
                self._t_last = b
        absent = self._removed or any(a <= now < b for a, b in self._absences)
        if absent and not self._absent:
            self._advance(now)
            self._absent = True
            self._session = None
            self._update_int()
        elif self._absent and not absent:
            self._absent = False
            self._t_last = max(self._t_last, now)
            self._power_on()

    # -- registers ------------------------------------------------------------------------
    def _power_on(self) -> None:
        self._reset_registers()
        self._regs[r.Reg.INT_STATUS_1] = r.PWR_RDY.put(0, 1)
        self._update_int()

    def _reset_registers(self) -> None:
        self._regs[:] = bytes(256)
        self._regs[r.Reg.REV_ID] = self._rev_id
        self._regs[r.Reg.PART_ID] = r.PART_ID_VALUE
        self._slots = [b""] * r.FIFO_DEPTH
        self._slot_ids = [-1] * r.FIFO_DEPTH
        self._wr = self._rd = self._count = self._ovf = 0
        self._cur_sample = b""
        self._cur_pos = 0
        self._unconfirmed = set()
        self._temp_due = None
        self._session = None
        self._backlog = _Pending()

    def _read_bytes(self, pointer: int, n: int, popped: list[int]) -> tuple[bytes, int]:
        """Read ``n`` bytes from register ``pointer`` on; returns them and the next pointer."""
        if pointer == r.Reg.FIFO_DATA:
            return self._read_fifo_bytes(n, popped), pointer
        out = bytearray()
        for _ in range(n):
            out.append(self._read_reg(pointer))
            pointer = self._next_pointer(pointer)
        return bytes(out), pointer

    def _read_reg(self, reg: int) -> int:
        if reg == r.Reg.FIFO_WR_PTR:
            return self._wr
        if reg == r.Reg.OVF_COUNTER:
            return self._ovf
        if reg == r.Reg.FIFO_RD_PTR:
            return self._rd
        value = self._regs[reg]
        if reg in (r.Reg.INT_STATUS_1, r.Reg.INT_STATUS_2):
            self._regs[reg] = 0  # flags clear on read
        elif reg == r.Reg.MODE_CONFIG and self._time() < self._reset_until:
            value = r.RESET.put(value, 1)
        return value

    def _write_reg(self, reg: int, value: int, now: float) -> None:
        if reg in (r.Reg.INT_STATUS_1, r.Reg.INT_STATUS_2, r.Reg.REV_ID, r.Reg.PART_ID):
            return  # read-only
        if reg == r.Reg.FIFO_DATA:
            return
        if reg == r.Reg.FIFO_WR_PTR:
            self._wr = value & r.POINTER_MASK
            self._count = (self._wr - self._rd) % r.FIFO_DEPTH
            return
        if reg == r.Reg.OVF_COUNTER:
            self._ovf = value & r.POINTER_MASK
            return
        if reg == r.Reg.FIFO_RD_PTR:
            self._write_read_pointer(value & r.POINTER_MASK)
            return
        if reg == r.Reg.MODE_CONFIG and r.RESET.get(value):
            self._reset_registers()
            self._reset_until = now + RESET_TIME_S
            return
        old = self._regs[reg]
        self._regs[reg] = value
        if reg == r.Reg.TEMP_CONFIG and r.TEMP_EN.get(value):
            self._temp_due = now + r.TEMP_CONVERSION_S
        layout = reg in (r.Reg.MODE_CONFIG, r.Reg.MULTI_LED_1, r.Reg.MULTI_LED_2) and old != value
        rate = reg == r.Reg.SPO2_CONFIG and r.SPO2_SR.get(old) != r.SPO2_SR.get(value)
        average = reg == r.Reg.FIFO_CONFIG and r.SMP_AVE.get(old) != r.SMP_AVE.get(value)
        if layout or rate or average:
            self._restart_sampling(now)

    def _write_read_pointer(self, rd: int) -> None:
        """Move FIFO_RD_PTR: moving it back re-exposes popped samples (to re-read them)."""
        back = (self._rd - rd) % r.FIFO_DEPTH
        if back and self._count + back <= r.FIFO_DEPTH:
            self._count += back
        else:
            self._count = (self._wr - rd) % r.FIFO_DEPTH
        self._rd = rd

    # -- FIFO ------------------------------------------------------------------------------
    def _read_fifo_bytes(self, n: int, popped: list[int]) -> bytes:
        """``n`` bytes of FIFO_DATA: the read pointer advances as each sample's first byte
        is read; an empty FIFO still hands out its (stale) slot and moves the pointer on."""
        out = bytearray()
        while len(out) < n:
            if self._cur_pos >= len(self._cur_sample):
                self._cur_sample = self._slots[self._rd] or bytes(self._sample_size())
                if self._slot_ids[self._rd] >= 0:
                    popped.append(self._slot_ids[self._rd])
                self._rd = (self._rd + 1) % r.FIFO_DEPTH
                self._count = self._count - 1 if self._count else r.FIFO_DEPTH - 1
                self._ovf = 0
                self._cur_pos = 0
                self.stats.fifo_samples_popped += 1
                self._regs[r.Reg.INT_STATUS_1] &= ~(r.A_FULL.mask | r.PPG_RDY.mask) & 0xFF
            take = min(n - len(out), len(self._cur_sample) - self._cur_pos)
            out += self._cur_sample[self._cur_pos : self._cur_pos + take]
            self._cur_pos += take
        return bytes(out)

    def _sample_size(self) -> int:
        s = self._session
        return r.BYTES_PER_CHANNEL * (len(s.channels) if s else 2)

    def _push(self, data: list[bytes], ids: list[int]) -> None:
        """Store samples in order (with rollover, the oldest are overwritten when full)."""
        rollover = r.FIFO_ROLLOVER_EN.get(self._regs[r.Reg.FIFO_CONFIG])
        for sample, sid in zip(data, ids, strict=True):
            old = self._slot_ids[self._wr]
            if self._count == r.FIFO_DEPTH:
                if not rollover:  # pragma: no cover - callers never push onto a full FIFO
                    raise AssertionError("push onto a full FIFO")
                self._rd = (self._rd + 1) % r.FIFO_DEPTH
                self._ovf = min(self._ovf + 1, r.OVERFLOW_SATURATED)
            else:
                self._count += 1
            if old >= 0 and old in self._unconfirmed:
                self._unconfirmed.discard(old)
                self._truth.destroyed_ids.add(old)
            self._slots[self._wr] = sample
            self._slot_ids[self._wr] = sid
            self._wr = (self._wr + 1) % r.FIFO_DEPTH
        status = self._regs[r.Reg.INT_STATUS_1]
        if data:
            status = r.PPG_RDY.put(status, 1)
            level = r.a_full_unread(r.FIFO_A_FULL.get(self._regs[r.Reg.FIFO_CONFIG]))
            if self._count >= level:
                status = r.A_FULL.put(status, 1)
        self._regs[r.Reg.INT_STATUS_1] = status

    # -- sample clock ----------------------------------------------------------------------
    def _channels(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        mode = r.MODE.get(self._regs[r.Reg.MODE_CONFIG])
        if mode == r.ModeCode.HEART_RATE:
            leds: tuple[int, ...] = (1,)
        elif mode == r.ModeCode.SPO2:
            leds = (1, 2)
        elif mode == r.ModeCode.MULTI_LED:
            found: list[int] = []
            for slot in r.SLOTS:
                code = slot.get(self._regs[slot.reg])
                if code not in (r.SlotLed.LED1_RED, r.SlotLed.LED2_IR):
                    break
                found.append(int(code))
            leds = tuple(found)
        else:
            leds = ()
        colours = {1: "red", 2: "ir"}
        if self._leds_swapped:
            colours = {1: "ir", 2: "red"}
        return tuple(colours[led] for led in leds), leds

    def _restart_sampling(self, now: float) -> None:
        mode_cfg = self._regs[r.Reg.MODE_CONFIG]
        channels, leds = self._channels()
        if r.SHDN.get(mode_cfg) or not channels or self._absent:
            self._session = None
            return
        spo2 = self._regs[r.Reg.SPO2_CONFIG]
        raw = r.SAMPLE_RATE_SPS[r.SPO2_SR.get(spo2)] * (1.0 + self.clock_error)
        avg = r.SAMPLE_AVERAGE[r.SMP_AVE.get(self._regs[r.Reg.FIFO_CONFIG])]
        self._tap.skip_to(now)
        now = max(now, self._time())  # sampling starts once the write is done
        self._t_last = max(self._t_last, now)
        self._sessions += 1
        self._session = _Session(self._sessions, now, raw / avg, raw, avg, channels, leds)

    def _advance(self, now: float) -> None:
        """Produce every sample due by ``now`` and finish a due temperature conversion."""
        if now < self._t_last:
            now = self._t_last
        self._t_last = now
        if self._temp_due is not None and now >= self._temp_due:
            t_int, t_frac = r.temperature_codes(self.die_temp_c)
            self._regs[r.Reg.TEMP_INT] = t_int
            self._regs[r.Reg.TEMP_FRAC] = t_frac
            self._regs[r.Reg.TEMP_CONFIG] = r.TEMP_EN.put(self._regs[r.Reg.TEMP_CONFIG], 0)
            self._regs[r.Reg.INT_STATUS_2] = r.DIE_TEMP_RDY.put(self._regs[r.Reg.INT_STATUS_2], 1)
            self._temp_due = None
        s = self._session
        if s is None:
            return
        due = math.floor((now - s.t0_s) * s.rate_hz + 1e-9)
        n_new = due - s.produced
        if n_new <= 0:
            return
        rollover = bool(r.FIFO_ROLLOVER_EN.get(self._regs[r.Reg.FIFO_CONFIG]))
        self._drain_backlog(s, rollover)
        room = r.FIFO_DEPTH - self._count - len(self._backlog)
        if self._elastic:
            room += int(ELASTIC_LIMIT_S * s.rate_hz)
        n_keep = n_new if rollover else min(n_new, max(0, room))
        k = s.produced + np.arange(n_new, dtype=np.int64)
        t_done = s.t0_s + (k + 1) / s.rate_hz
        ids = self._produced_total + np.arange(n_keep, dtype=np.int64)
        ir_ref, red_ref = self._reference(s, k[:n_keep])
        if n_keep < n_new:
            self._tap.skip_to(float(t_done[-1]))
        if self._record:
            t = self._truth
            t.session.append(np.full(n_new, s.number, dtype=np.int64))
            t.index.append(k)
            t.t_s.append(t_done)
        self._backlog.extend(ids, ir_ref, red_ref)
        self._drain_backlog(s, rollover)
        if n_new > n_keep:
            self._ovf = min(self._ovf + n_new - n_keep, r.OVERFLOW_SATURATED)
        s.produced += n_new
        self._produced_total += n_new

    def _drain_backlog(self, s: _Session, rollover: bool) -> None:
        """Move taken samples into the FIFO as room allows, scaled by the present settings."""
        room = len(self._backlog) if rollover else r.FIFO_DEPTH - self._count
        if room <= 0 or not len(self._backlog):
            return
        ids, ir_ref, red_ref = self._backlog.take(room)
        codes = self._quantise(s, ir_ref, red_ref)
        if self._record:
            self._truth.stored_ids.append(ids)
            self._truth.stored_codes.append(codes)
        size = r.BYTES_PER_CHANNEL * codes.shape[1]
        data = r.fifo_encode(codes)
        self._push([data[i : i + size] for i in range(0, len(data), size)], ids.tolist())

    def _reference(self, s: _Session, k: IntArray) -> tuple[FloatArray, FloatArray]:
        """The signal at the reference settings for FIFO samples ``k`` of session ``s``.

        Shape (len(k), average): one column per ADC sample averaged into a FIFO sample.
        """
        avg = s.average
        if k.shape[0] == 0:
            return np.zeros((0, avg)), np.zeros((0, avg))
        j = (k[:, None] * avg + np.arange(avg)[None, :]).ravel()
        ir, red = self._tap.at(s.t0_s + (j + 1) / s.raw_rate_hz)
        return ir.reshape(-1, avg), red.reshape(-1, avg)

    def _quantise(self, s: _Session, ir_ref: FloatArray, red_ref: FloatArray) -> IntArray:
        """ADC codes in FIFO channel order from reference counts at the present settings.

        The LED current and the ADC range scale the light, the resolution truncates the
        low bits (left-justified words), the chip averages, and full scale saturates.
        """
        spo2 = self._regs[r.Reg.SPO2_CONFIG]
        full_scale_na = r.ADC_RANGE_NA[r.SPO2_ADC_RGE.get(spo2)]
        bits = r.PULSE_WIDTH[r.LED_PW.get(spo2)][1]
        lsb_mask = ~((1 << (18 - bits)) - 1)
        out = np.empty((ir_ref.shape[0], len(s.channels)), dtype=np.int64)
        for c, (colour, led) in enumerate(zip(s.channels, s.leds, strict=True)):
            pa = self._regs[r.Reg.LED1_PA if led == 1 else r.Reg.LED2_PA]
            gain = r.led_current_ma(pa) / self._ref_ma * self._ref_range / full_scale_na
            ref = ir_ref if colour == "ir" else red_ref
            raw = np.clip(np.floor(ref * gain), 0, r.ADC_FULL_SCALE).astype(np.int64) & lsb_mask
            out[:, c] = (raw.sum(axis=1) // s.average) & lsb_mask
        return out

    # -- INT line ---------------------------------------------------------------------------
    def _update_int(self) -> None:
        s1 = self._regs[r.Reg.INT_STATUS_1]
        s2 = self._regs[r.Reg.INT_STATUS_2]
        en1 = self._regs[r.Reg.INT_ENABLE_1] | r.PWR_RDY.mask
        en2 = self._regs[r.Reg.INT_ENABLE_2]
        asserted = bool((s1 & en1) or (s2 & en2)) and not self._absent
        if asserted != self._int_asserted:
            self._int_asserted = asserted
            if self._int_pin is not None:
                if asserted:
                    self._int_pin.drive_low()
                else:
                    self._int_pin.drive_high()

    def __repr__(self) -> str:
        return (
            f"Max30102Emulator(address=0x{self.address:02x}, sampling={self.sampling}, "
            f"fifo={self._count}, present={self.present})"
        )


_FAULT_ERRNOS: Final = (errno.EIO, errno.ETIMEDOUT, errno.EREMOTEIO)


def _cat_int(parts: list[IntArray]) -> IntArray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
