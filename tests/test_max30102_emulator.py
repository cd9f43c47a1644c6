"""The MAX30102 register map and the emulated chip, checked at register level.

The emulator is what every driver test runs over, so its behaviour is pinned here
against the datasheet facts in :mod:`heartsong.sensors.max30102_regs`.
"""

from __future__ import annotations

import errno
from typing import Any

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from smbus2 import i2c_msg

from heartsong.events import FloatArray
from heartsong.sensors import max30102_regs as r
from heartsong.sensors.max30102_emulator import (
    RESET_TIME_S,
    ManualClock,
    Max30102Emulator,
    PpgSignal,
)
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson

ADDR = r.I2C_ADDRESS


class ConstantFinger:
    """A signal source with constant counts at the reference settings (7 mA, 4096 nA)."""

    def __init__(self, ir: float = 100_000.0, red: float = 80_000.0, fs_hz: float = 100.0):
        self.ir, self.red, self._fs = ir, red, fs_hz

    @property
    def fs_hz(self) -> float:
        return self._fs

    def read(self, n: int) -> tuple[FloatArray, FloatArray, bool]:
        return np.full(n, self.ir), np.full(n, self.red), True


def make(signal: PpgSignal | None = None, **kw: Any) -> tuple[ManualClock, Max30102Emulator]:
    clk = ManualClock()
    emu = Max30102Emulator(clk.monotonic, signal or ConstantFinger(), **kw)
    return clk, emu


def configure(
    emu: Max30102Emulator,
    *,
    mode: r.ModeCode = r.ModeCode.SPO2,
    sps: int = 100,
    pulse_us: int = 411,
    range_na: int = 4096,
    led1_ma: float = 7.0,
    led2_ma: float = 7.0,
    average: int = 1,
) -> None:
    """Program the chip the way a driver would, starting the sample clock last."""
    spo2 = r.SPO2_ADC_RGE.put(0, r.code_for(r.ADC_RANGE_NA, range_na))
    spo2 = r.SPO2_SR.put(spo2, r.code_for(r.SAMPLE_RATE_SPS, sps))
    spo2 = r.LED_PW.put(spo2, r.pulse_width_code(pulse_us))
    fifo = r.SMP_AVE.put(0, r.code_for(r.SAMPLE_AVERAGE, average))
    fifo = r.FIFO_A_FULL.put(fifo, r.a_full_code(17))
    emu.write_byte_data(ADDR, r.Reg.FIFO_CONFIG, fifo)
    emu.write_byte_data(ADDR, r.Reg.SPO2_CONFIG, spo2)
    emu.write_byte_data(ADDR, r.Reg.LED1_PA, r.led_code(led1_ma))
    emu.write_byte_data(ADDR, r.Reg.LED2_PA, r.led_code(led2_ma))
    emu.write_byte_data(ADDR, r.Reg.MODE_CONFIG, r.MODE.put(0, int(mode)))


def pointers(emu: Max30102Emulator) -> tuple[int, int, int]:
    wr, ovf, rd = emu.read_i2c_block_data(ADDR, r.Reg.FIFO_WR_PTR, 3)
    return wr, ovf, rd


def burst(emu: Max30102Emulator, n_samples: int, n_channels: int = 2) -> bytes:
    write = i2c_msg.write(ADDR, [r.Reg.FIFO_DATA])
    read = i2c_msg.read(ADDR, n_samples * n_channels * r.BYTES_PER_CHANNEL)
    emu.i2c_rdwr(write, read)
    return bytes(read)


# -- register map ---------------------------------------------------------------------


def test_fields_put_and_get_without_touching_other_bits() -> None:
    byte = 0b1010_1010
    for field in (r.SPO2_ADC_RGE, r.SPO2_SR, r.LED_PW, r.SMP_AVE, r.FIFO_A_FULL, r.MODE):
        for value in range(1 << field.width):
            out = field.put(byte, value)
            assert field.get(out) == value
            assert out & ~field.mask & 0xFF == byte & ~field.mask & 0xFF
    with pytest.raises(ValueError, match="does not fit"):
        r.LED_PW.put(0, 4)


def test_unit_tables_follow_the_datasheet() -> None:
    assert [r.SAMPLE_RATE_SPS[c] for c in range(8)] == [50, 100, 200, 400, 800, 1000, 1600, 3200]
    assert [r.ADC_RANGE_NA[c] for c in range(4)] == [2048, 4096, 8192, 16384]
    assert [r.PULSE_WIDTH[c] for c in range(4)] == [(69, 15), (118, 16), (215, 17), (411, 18)]
    assert r.led_code(7.0) == 0x23 and r.led_current_ma(0xFF) == pytest.approx(51.0)
    assert r.a_full_unread(r.a_full_code(17)) == 17 and r.a_full_code(32) == 0
    # two LEDs per sample leave less time for each pulse than one
    for sps, widths in r.ALLOWED_PULSE_WIDTHS_US[2].items():
        assert set(widths) <= set(r.ALLOWED_PULSE_WIDTHS_US[1][sps])
    assert r.ALLOWED_PULSE_WIDTHS_US[2][3200] == ()
    assert 411 not in r.ALLOWED_PULSE_WIDTHS_US[2][800]


@pytest.mark.parametrize("temp_c", [-40.0, -0.0625, 0.0, 25.5, 31.25, 85.9375])
def test_temperature_codes_round_trip(temp_c: float) -> None:
    assert r.temperature_c(*r.temperature_codes(temp_c)) == pytest.approx(temp_c)


def test_fifo_words_round_trip_and_flag_corruption() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, r.ADC_FULL_SCALE + 1, size=(40, 2))
    data = r.fifo_encode(codes)
    assert len(data) == 40 * 2 * 3
    back, clean = r.fifo_decode(data, 2)
    assert clean and np.array_equal(back, codes)
    # big-endian 18-bit words: 0x3FFFF is 03 FF FF
    assert r.fifo_encode(np.array([[r.ADC_FULL_SCALE]])) == b"\x03\xff\xff"
    corrupt = bytearray(data)
    corrupt[3] |= 0x80  # an unused bit of the second word
    assert r.fifo_decode(bytes(corrupt), 2)[1] is False


# -- identity, reset, interface -----------------------------------------------------------


def test_part_id_and_reset_bit_that_clears_itself() -> None:
    clk, emu = make()
    assert emu.read_byte_data(ADDR, r.Reg.PART_ID) == r.PART_ID_VALUE
    emu.write_byte_data(ADDR, r.Reg.PART_ID, 0x00)  # read-only
    assert emu.read_byte_data(ADDR, r.Reg.PART_ID) == r.PART_ID_VALUE
    emu.write_byte_data(ADDR, r.Reg.SPO2_CONFIG, 0x27)
    emu.write_byte_data(ADDR, r.Reg.MODE_CONFIG, r.RESET.put(0, 1))
    assert r.RESET.get(emu.read_byte_data(ADDR, r.Reg.MODE_CONFIG)) == 1
    clk.advance(RESET_TIME_S)
    assert emu.read_byte_data(ADDR, r.Reg.MODE_CONFIG) == 0
    assert emu.read_byte_data(ADDR, r.Reg.SPO2_CONFIG) == 0  # back to power-on state


def test_i2c_rdwr_fills_read_buffers_and_block_reads_are_limited() -> None:
    clk, emu = make()
    configure(emu)
    clk.advance(0.1)
    write = i2c_msg.write(ADDR, [r.Reg.FIFO_WR_PTR])
    read = i2c_msg.read(ADDR, 3)
    emu.i2c_rdwr(write, read)
    assert tuple(bytes(read)) == pointers(emu) == (10, 0, 0)
    with pytest.raises(ValueError, match="32"):
        emu.read_i2c_block_data(ADDR, r.Reg.FIFO_DATA, 33)


def test_wrong_address_is_not_acknowledged() -> None:
    _clk, emu = make()
    with pytest.raises(OSError) as info:
        emu.read_byte_data(0x58, r.Reg.PART_ID)
    assert info.value.errno == errno.EREMOTEIO


# -- FIFO and sample clock ---------------------------------------------------------------


def test_fifo_fills_at_the_sample_rate_of_a_fast_oscillator() -> None:
    clk, emu = make(clock_error=0.008)
    configure(emu, sps=200)
    clk.advance(0.1)
    wr, ovf, rd = pointers(emu)
    assert (wr, ovf, rd) == (int(0.1 * 200 * 1.008), 0, 0)
    assert emu.next_sample_time() == pytest.approx((wr + 1) / (200 * 1.008))


def test_averaging_divides_the_rate() -> None:
    clk, emu = make()
    configure(emu, sps=400, average=4)
    clk.advance(0.2)
    assert pointers(emu)[0] == 20


def test_pointers_wrap_and_samples_come_out_in_order() -> None:
    clk, emu = make(ConstantFinger(ir=0.0), record=True)  # IR counts carry no information
    configure(emu)
    got: list[int] = []
    for _ in range(10):  # 10 x 25 samples: the pointers wrap around 32 several times
        clk.advance(0.25)
        wr, ovf, rd = pointers(emu)
        n = (wr - rd) % r.FIFO_DEPTH
        assert ovf == 0 and n == 25
        got.extend(r.fifo_decode(burst(emu, n), 2)[0][:, 0].tolist())
        assert pointers(emu)[2] == wr
    truth = emu.truth
    assert np.array_equal(got, truth.codes[: len(got), 0])
    assert len(got) == 250 and emu.stats.fifo_bursts == 10


def test_overflow_counter_counts_saturates_and_resets_on_pop() -> None:
    clk, emu = make()
    configure(emu)
    clk.advance(0.37)  # 37 samples: 32 stored, 5 lost
    wr, ovf, rd = pointers(emu)
    assert wr == rd and ovf == 5
    clk.advance(10.0)
    assert pointers(emu)[1] == r.OVERFLOW_SATURATED
    burst(emu, 1)
    wr, ovf, rd = pointers(emu)
    assert ovf == 0 and (wr - rd) % r.FIFO_DEPTH == 31


def test_rollover_overwrites_the_oldest_samples() -> None:
    clk, emu = make(record=True)
    configure(emu)
    emu.write_byte_data(ADDR, r.Reg.FIFO_CONFIG, r.FIFO_ROLLOVER_EN.put(0, 1))
    clk.advance(0.40)
    wr, ovf, rd = pointers(emu)
    assert wr == rd and ovf == 8


def test_moving_the_read_pointer_back_re_reads_samples() -> None:
    clk, emu = make(record=True)
    configure(emu)
    clk.advance(0.1)
    first = burst(emu, 4)
    emu.write_byte_data(ADDR, r.Reg.FIFO_RD_PTR, 0)
    assert burst(emu, 4) == first
    assert emu.fifo_count == 6


# -- ADC codes -------------------------------------------------------------------------------


def first_codes(emu: Max30102Emulator, clk: ManualClock, n_channels: int = 2) -> list[int]:
    clk.advance(0.05)
    wr, _ovf, rd = pointers(emu)
    codes, clean = r.fifo_decode(burst(emu, (wr - rd) % 32, n_channels), n_channels)
    assert clean
    return [int(c) for c in codes[-1]]


def test_codes_scale_with_led_current_and_range_and_red_comes_first() -> None:
    clk, emu = make(ConstantFinger(ir=100_000.0, red=80_000.0))
    configure(emu, led1_ma=7.0, led2_ma=7.0)
    assert first_codes(emu, clk) == [80_000, 100_000]  # LED1 = red, then LED2 = IR
    emu.write_byte_data(ADDR, r.Reg.LED2_PA, r.led_code(14.0))
    assert first_codes(emu, clk) == pytest.approx([80_000, 200_000], abs=1)
    configure(emu, range_na=16384)
    assert first_codes(emu, clk) == pytest.approx([20_000, 25_000], abs=1)


def test_codes_saturate_at_full_scale() -> None:
    clk, emu = make(ConstantFinger(ir=100_000.0, red=80_000.0))
    configure(emu, range_na=2048, led1_ma=51.0, led2_ma=51.0)
    assert first_codes(emu, clk) == [r.ADC_FULL_SCALE, r.ADC_FULL_SCALE]


@pytest.mark.parametrize("pulse_us", [69, 118, 215, 411])
def test_pulse_width_sets_resolution_left_justified(pulse_us: int) -> None:
    clk, emu = make(ConstantFinger(ir=100_003.0, red=80_007.0))
    configure(emu, pulse_us=pulse_us)
    step = 1 << (18 - r.resolution_bits(pulse_us))
    assert first_codes(emu, clk) == [80_007 // step * step, 100_003 // step * step]


def test_single_led_modes_and_swapped_leds() -> None:
    clk, emu = make(ConstantFinger(ir=100_000.0, red=80_000.0))
    configure(emu, mode=r.ModeCode.HEART_RATE)
    assert first_codes(emu, clk, 1) == [80_000]  # heart-rate mode: red only
    emu.write_byte_data(ADDR, r.Reg.MULTI_LED_1, r.SLOT1.put(0, int(r.SlotLed.LED2_IR)))
    configure(emu, mode=r.ModeCode.MULTI_LED)
    assert first_codes(emu, clk, 1) == [100_000]
    clk2, swapped = make(ConstantFinger(ir=100_000.0, red=80_000.0), leds_swapped=True)
    configure(swapped)
    assert first_codes(swapped, clk2) == [100_000, 80_000]


def test_simulated_finger_has_realistic_dc_and_pulse_levels() -> None:
    person = SimulatedPerson(PersonParams(stress=0.0, motion_artifacts_per_hour=0.0), seed=4)
    clk, emu = make(PpgSynth(person, 100.0, seed=5))
    configure(emu)
    codes = []
    for _ in range(40):
        clk.advance(0.25)
        wr, _ovf, rd = pointers(emu)
        codes.append(r.fifo_decode(burst(emu, (wr - rd) % 32), 2)[0])
    red, ir = np.concatenate(codes).T.astype(float)
    assert 100_000 < ir.mean() < 140_000 and 80_000 < red.mean() < 110_000
    ir_pi = (np.percentile(ir, 97) - np.percentile(ir, 3)) / ir.mean()
    red_pi = (np.percentile(red, 97) - np.percentile(red, 3)) / red.mean()
    assert 0.005 < ir_pi < 0.05
    assert 0.3 < red_pi / ir_pi < 0.8  # ratio of ratios of a well-oxygenated finger


# -- interrupts ------------------------------------------------------------------------------


def test_flags_clear_on_read_and_drive_the_int_line() -> None:
    clk, emu = make()
    pin = MockFactory().pin(17)
    pin.function = "input"
    pin.pull = "up"
    emu.int_pin = pin
    emu.update()
    assert emu.int_asserted and not pin.state  # PWR_RDY after power-on
    emu.read_byte_data(ADDR, r.Reg.INT_STATUS_1)
    assert not emu.int_asserted and pin.state
    configure(emu)
    emu.write_byte_data(ADDR, r.Reg.INT_ENABLE_1, r.A_FULL_EN.put(0, 1))
    clk.advance(0.165)
    emu.update()
    assert emu.fifo_count == 16 and pin.state
    clk.advance(0.01)
    emu.update()
    assert emu.fifo_count == 17 and not pin.state
    status = emu.read_byte_data(ADDR, r.Reg.INT_STATUS_1)
    assert r.A_FULL.get(status) and pin.state
    assert emu.read_byte_data(ADDR, r.Reg.INT_STATUS_1) == 0
    clk.advance(0.01)
    emu.update()
    assert not pin.state  # still above the level: raised again by the next sample
    burst(emu, emu.fifo_count)
    assert pin.state  # reading the FIFO clears A_FULL


def test_die_temperature_conversion() -> None:
    clk, emu = make(die_temp_c=36.5)
    emu.write_byte_data(ADDR, r.Reg.TEMP_CONFIG, 1)
    assert emu.read_byte_data(ADDR, r.Reg.TEMP_CONFIG) == 1
    clk.advance(r.TEMP_CONVERSION_S)
    t_int, t_frac, t_cfg = emu.read_i2c_block_data(ADDR, r.Reg.TEMP_INT, 3)
    assert t_cfg == 0 and r.temperature_c(t_int, t_frac) == 36.5
    assert r.DIE_TEMP_RDY.get(emu.read_byte_data(ADDR, r.Reg.INT_STATUS_2))


# -- faults ----------------------------------------------------------------------------------


def test_io_errors_arrive_at_the_requested_rate() -> None:
    _clk, emu = make(seed=9)
    emu.io_error_rate = 0.1
    failures = 0
    for _ in range(2000):
        try:
            emu.read_byte_data(ADDR, r.Reg.PART_ID)
        except OSError as exc:
            assert exc.errno in (errno.EIO, errno.ETIMEDOUT, errno.EREMOTEIO)
            failures += 1
    assert 140 < failures < 260


def test_a_burst_can_fail_after_popping_samples() -> None:
    clk, emu = make(seed=2, record=True)
    configure(emu)
    clk.advance(0.3)
    emu.io_error_rate = 1.0
    popped = []
    for _ in range(5):
        before = pointers_no_fault(emu)
        with pytest.raises(OSError):
            burst(emu, 30)
        popped.append((pointers_no_fault(emu)[2] - before[2]) % 32)
    assert max(popped) > 0  # some transfers broke off part way, after popping samples


def pointers_no_fault(emu: Max30102Emulator) -> tuple[int, int, int]:
    rate, emu.io_error_rate = emu.io_error_rate, 0.0
    try:
        return pointers(emu)
    finally:
        emu.io_error_rate = rate


def test_stuck_bus_times_out_and_recovers() -> None:
    clk, emu = make()
    configure(emu)
    emu.stuck = True
    with pytest.raises(OSError) as info:
        pointers(emu)
    assert info.value.errno == errno.ETIMEDOUT
    emu.stuck = False
    clk.advance(0.1)
    assert pointers(emu)[0] == 10


def test_garbage_bytes_on_demand() -> None:
    _clk, emu = make(seed=1)
    emu.garbage_rate = 1.0
    ids = {emu.read_byte_data(ADDR, r.Reg.PART_ID) for _ in range(20)}
    assert ids - {r.PART_ID_VALUE}


def test_sensor_disappears_and_comes_back_in_power_on_state() -> None:
    clk, emu = make()
    configure(emu)
    emu.schedule_absence(1.0, 2.0)
    clk.advance(1.5)
    with pytest.raises(OSError, match="Remote I/O error"):
        emu.read_byte_data(ADDR, r.Reg.PART_ID)
    assert not emu.present and not emu.sampling
    clk.advance(1.0)
    assert emu.read_byte_data(ADDR, r.Reg.PART_ID) == r.PART_ID_VALUE
    assert emu.read_byte_data(ADDR, r.Reg.MODE_CONFIG) == 0 and not emu.sampling
    assert r.PWR_RDY.get(emu.read_byte_data(ADDR, r.Reg.INT_STATUS_1))


def test_elastic_fifo_holds_samples_back_instead_of_dropping_them() -> None:
    clk, emu = make(record=True, elastic_fifo=True)
    configure(emu)
    clk.advance(1.0)
    wr, ovf, rd = pointers(emu)
    assert wr == rd and ovf == 0
    got = 0
    while got < 100:
        got += len(r.fifo_decode(burst(emu, 32), 2)[0])
    assert got == 128 and emu.truth.pushed[:100].all()
