"""The MAX30102 register map, its bit fields, and the tables from register codes to units.

Everything here is declared once and read like the datasheet (Maxim Integrated,
"MAX30102 High-Sensitivity Pulse Oximeter and Heart-Rate Sensor for Wearable Health",
19-7740 Rev 1, 10/2018; the MAX30101 and MAX30105 share the map). The driver
(:mod:`heartsong.sensors.max30102`) and the emulator
(:mod:`heartsong.sensors.max30102_emulator`) both use these declarations, so they cannot
disagree about where a bit lives or what a code means.

Facts this module encodes (datasheet section in brackets):

* Registers 0x00-0x0A, 0x0C/0x0D (LED pulse amplitudes), 0x11/0x12 (multi-LED slots),
  0x1F-0x21 (die temperature), 0xFE (revision) and 0xFF (part ID, always 0x15)
  [Register Maps and Descriptions].
* The FIFO holds 32 samples; a sample is 3 bytes per active LED channel, LED1 (red)
  before LED2 (IR) in SpO2 mode, so the red/IR order is fixed by the chip, not by the
  host [FIFO Data Register]. Each 3-byte word is big-endian with the ADC value in
  bits 17..0 and bits 23..18 unused (read as 0). The value is left-justified: its MSB
  is always bit 17 whatever the resolution, so at 15 bits the three low bits read 0
  and the full scale stays 2**18 - 1 counts.
* Burst-reading FIFO_DATA (0x07) does not advance the register address but advances
  FIFO_RD_PTR by one sample per sample read; every other register auto-increments.
* OVF_COUNTER counts samples lost while the FIFO was full, saturates at 0x1F and resets
  when a sample is popped.
* The ADC full scale is a photodiode current (2048-16384 nA); the LED pulse width sets
  the integration time and so the resolution (69 us -> 15 bits ... 411 us -> 18 bits).
* Not every sample rate fits every pulse width: each LED pulse (plus its ambient
  measurement) must fit in its slot of the sample period, so fewer combinations are
  allowed with two LEDs (SpO2 mode) than with one [Tables 11 and 12].
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: The 7-bit I2C address of every MAX30102 (write 0xAE, read 0xAF).
I2C_ADDRESS: Final = 0x57
#: What the PART_ID register (0xFF) reads on a MAX30102, MAX30101 or MAX30105.
PART_ID_VALUE: Final = 0x15
#: FIFO depth, in samples.
FIFO_DEPTH: Final = 32
#: Bytes per channel per FIFO sample.
BYTES_PER_CHANNEL: Final = 3
#: Mask of the 5-bit FIFO pointers and of the overflow counter.
POINTER_MASK: Final = 0x1F
#: OVF_COUNTER stops counting here.
OVERFLOW_SATURATED: Final = 0x1F
#: Mask of the 18 ADC bits inside a 3-byte FIFO word.
DATA_MASK: Final = 0x3FFFF
#: ADC full scale, in counts (every resolution is left-justified to 18 bits).
ADC_FULL_SCALE: Final = 262_143
#: Bits 23..18 of a FIFO word: always 0 on the wire from a real chip.
RESERVED_WORD_BITS: Final = 0xFC  # in the first byte of each 3-byte word
#: LED pulse amplitude per register LSB, in mA (0x00 = 0 mA ... 0xFF = 51 mA).
LED_MA_PER_LSB: Final = 0.2
#: Largest LED current the pulse-amplitude register can set, in mA.
LED_MAX_MA: Final = 0xFF * LED_MA_PER_LSB
#: Die temperature: TEMP_INT is two's-complement degrees C, TEMP_FRAC counts this much.
TEMP_FRAC_C_PER_LSB: Final = 0.0625
#: Typical die-temperature conversion time, in seconds.
TEMP_CONVERSION_S: Final = 0.029


class Reg(IntEnum):
    """Register addresses."""

    INT_STATUS_1 = 0x00
    INT_STATUS_2 = 0x01
    INT_ENABLE_1 = 0x02
    INT_ENABLE_2 = 0x03
    FIFO_WR_PTR = 0x04
    OVF_COUNTER = 0x05
    FIFO_RD_PTR = 0x06
    FIFO_DATA = 0x07
    FIFO_CONFIG = 0x08
    MODE_CONFIG = 0x09
    SPO2_CONFIG = 0x0A
    LED1_PA = 0x0C  # red
    LED2_PA = 0x0D  # infrared
    MULTI_LED_1 = 0x11  # slots 1 and 2
    MULTI_LED_2 = 0x12  # slots 3 and 4
    TEMP_INT = 0x1F
    TEMP_FRAC = 0x20
    TEMP_CONFIG = 0x21
    REV_ID = 0xFE
    PART_ID = 0xFF


@dataclass(frozen=True, slots=True)
class Field:
    """A bit field ``width`` bits wide starting at bit ``shift`` of register ``reg``."""

    reg: Reg
    shift: int
    width: int

    @property
    def mask(self) -> int:
        """The field's bits in place within the register byte."""
        return ((1 << self.width) - 1) << self.shift

    def get(self, byte: int) -> int:
        """The field's value in a register byte."""
        return (byte & self.mask) >> self.shift

    def put(self, byte: int, value: int) -> int:
        """``byte`` with the field set to ``value`` (which must fit)."""
        if not 0 <= value < (1 << self.width):
            raise ValueError(f"{value} does not fit in a {self.width}-bit field")
        return (byte & ~self.mask & 0xFF) | (value << self.shift)


# -- bit fields ----------------------------------------------------------------------
# Interrupt status 1 / enable 1
A_FULL: Final = Field(Reg.INT_STATUS_1, 7, 1)
PPG_RDY: Final = Field(Reg.INT_STATUS_1, 6, 1)
ALC_OVF: Final = Field(Reg.INT_STATUS_1, 5, 1)
PWR_RDY: Final = Field(Reg.INT_STATUS_1, 0, 1)
A_FULL_EN: Final = Field(Reg.INT_ENABLE_1, 7, 1)
PPG_RDY_EN: Final = Field(Reg.INT_ENABLE_1, 6, 1)
ALC_OVF_EN: Final = Field(Reg.INT_ENABLE_1, 5, 1)
# Interrupt status 2 / enable 2
DIE_TEMP_RDY: Final = Field(Reg.INT_STATUS_2, 1, 1)
DIE_TEMP_RDY_EN: Final = Field(Reg.INT_ENABLE_2, 1, 1)
# FIFO pointers
FIFO_WR_PTR: Final = Field(Reg.FIFO_WR_PTR, 0, 5)
OVF_COUNTER: Final = Field(Reg.OVF_COUNTER, 0, 5)
FIFO_RD_PTR: Final = Field(Reg.FIFO_RD_PTR, 0, 5)
# FIFO configuration
SMP_AVE: Final = Field(Reg.FIFO_CONFIG, 5, 3)
FIFO_ROLLOVER_EN: Final = Field(Reg.FIFO_CONFIG, 4, 1)
FIFO_A_FULL: Final = Field(Reg.FIFO_CONFIG, 0, 4)
# Mode configuration
SHDN: Final = Field(Reg.MODE_CONFIG, 7, 1)
RESET: Final = Field(Reg.MODE_CONFIG, 6, 1)
MODE: Final = Field(Reg.MODE_CONFIG, 0, 3)
# SpO2 configuration
SPO2_ADC_RGE: Final = Field(Reg.SPO2_CONFIG, 5, 2)
SPO2_SR: Final = Field(Reg.SPO2_CONFIG, 2, 3)
LED_PW: Final = Field(Reg.SPO2_CONFIG, 0, 2)
# Multi-LED mode slots
SLOT1: Final = Field(Reg.MULTI_LED_1, 0, 3)
SLOT2: Final = Field(Reg.MULTI_LED_1, 4, 3)
SLOT3: Final = Field(Reg.MULTI_LED_2, 0, 3)
SLOT4: Final = Field(Reg.MULTI_LED_2, 4, 3)
SLOTS: Final = (SLOT1, SLOT2, SLOT3, SLOT4)
# Die temperature
TEMP_FRAC: Final = Field(Reg.TEMP_FRAC, 0, 4)
TEMP_EN: Final = Field(Reg.TEMP_CONFIG, 0, 1)

#: Bits of INT_STATUS_1 / INT_STATUS_2 that exist (the rest read 0).
STATUS_1_BITS: Final = A_FULL.mask | PPG_RDY.mask | ALC_OVF.mask | PWR_RDY.mask
STATUS_2_BITS: Final = DIE_TEMP_RDY.mask


# -- codes -> units ------------------------------------------------------------------


class ModeCode(IntEnum):
    """MODE[2:0] of MODE_CONFIG."""

    HEART_RATE = 0b010  # red LED only
    SPO2 = 0b011  # red and IR
    MULTI_LED = 0b111  # slots 1-4 as programmed in MULTI_LED_1/2


class SlotLed(IntEnum):
    """What a multi-LED time slot pulses (SLOTx codes)."""

    NONE = 0
    LED1_RED = 1
    LED2_IR = 2


#: SPO2_SR code -> sample rate in samples per second.
SAMPLE_RATE_SPS: Final[dict[int, int]] = {
    0: 50, 1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 6: 1600, 7: 3200,
}
#: SMP_AVE code -> samples averaged into one FIFO sample (codes 5, 6 and 7 all mean 32).
SAMPLE_AVERAGE: Final[dict[int, int]] = {0: 1, 1: 2, 2: 4, 3: 8, 4: 16, 5: 32, 6: 32, 7: 32}
#: LED_PW code -> (LED pulse width in microseconds, ADC resolution in bits).
PULSE_WIDTH: Final[dict[int, tuple[int, int]]] = {
    0: (69, 15), 1: (118, 16), 2: (215, 17), 3: (411, 18),
}
#: SPO2_ADC_RGE code -> ADC full-scale photodiode current in nA (LSB 7.81-62.5 pA at 18 bits).
ADC_RANGE_NA: Final[dict[int, int]] = {0: 2048, 1: 4096, 2: 8192, 3: 16384}

#: Pulse widths (us) the datasheet allows at each sample rate (sps), by the number of LEDs
#: pulsed per sample: Table 12 (heart-rate mode, one LED) and Table 11 (SpO2 mode, two).
ALLOWED_PULSE_WIDTHS_US: Final[dict[int, dict[int, tuple[int, ...]]]] = {
    1: {
        50: (69, 118, 215, 411),
        100: (69, 118, 215, 411),
        200: (69, 118, 215, 411),
        400: (69, 118, 215, 411),
        800: (69, 118, 215, 411),
        1000: (69, 118, 215, 411),
        1600: (69, 118, 215),
        3200: (69,),
    },
    2: {
        50: (69, 118, 215, 411),
        100: (69, 118, 215, 411),
        200: (69, 118, 215, 411),
        400: (69, 118, 215, 411),
        800: (69, 118, 215),
        1000: (69, 118),
        1600: (69,),
        3200: (),
    },
}


def code_for(table: dict[int, int], value: int) -> int:
    """The register code whose unit value is ``value`` in ``table`` (first match)."""
    for code, unit in table.items():
        if unit == value:
            return code
    raise KeyError(value)


def pulse_width_code(pulse_us: int) -> int:
    """LED_PW code for a pulse width in microseconds (69, 118, 215 or 411)."""
    for code, (us, _bits) in PULSE_WIDTH.items():
        if us == pulse_us:
            return code
    raise KeyError(pulse_us)


def resolution_bits(pulse_us: int) -> int:
    """ADC resolution in bits at a pulse width in microseconds."""
    return PULSE_WIDTH[pulse_width_code(pulse_us)][1]


def led_code(current_ma: float) -> int:
    """LED pulse-amplitude register code for a current in mA (nearest 0.2 mA step)."""
    code = round(current_ma / LED_MA_PER_LSB)
    if not 0 <= code <= 0xFF:
        raise ValueError(f"LED current {current_ma!r} mA is outside 0..{LED_MAX_MA:g} mA")
    return code


def led_current_ma(code: int) -> float:
    """LED current in mA for a pulse-amplitude register code."""
    return (code & 0xFF) * LED_MA_PER_LSB


def a_full_code(unread_samples: int) -> int:
    """FIFO_A_FULL code that raises A_FULL when ``unread_samples`` (17..32) are in the FIFO."""
    code = FIFO_DEPTH - unread_samples
    if not 0 <= code <= 0xF:
        raise ValueError(f"the almost-full level must be 17..32 samples, got {unread_samples}")
    return code


def a_full_unread(code: int) -> int:
    """Unread samples at which A_FULL is raised for a FIFO_A_FULL code (0..15)."""
    return FIFO_DEPTH - (code & 0xF)


def temperature_c(temp_int: int, temp_frac: int) -> float:
    """Die temperature in degrees C from TEMP_INT (two's complement) and TEMP_FRAC."""
    whole = temp_int - 256 if temp_int & 0x80 else temp_int
    return whole + TEMP_FRAC.get(temp_frac) * TEMP_FRAC_C_PER_LSB


def temperature_codes(temp_c: float) -> tuple[int, int]:
    """(TEMP_INT, TEMP_FRAC) register bytes for a die temperature in degrees C."""
    sixteenths = int(np.floor(temp_c / TEMP_FRAC_C_PER_LSB))
    whole, frac = divmod(sixteenths, 16)
    return whole & 0xFF, frac


# -- FIFO words ------------------------------------------------------------------------


def fifo_encode(codes: IntArray) -> bytes:
    """FIFO bytes for ADC codes of shape (samples, channels), channels in FIFO order."""
    c = np.asarray(codes, dtype=np.int64) & DATA_MASK
    out = np.empty((*c.shape, BYTES_PER_CHANNEL), dtype=np.uint8)
    out[..., 0] = c >> 16
    out[..., 1] = (c >> 8) & 0xFF
    out[..., 2] = c & 0xFF
    return out.tobytes()


def fifo_decode(data: bytes, n_channels: int) -> tuple[IntArray, bool]:
    """Decode a FIFO burst into ADC codes of shape (samples, channels).

    Returns the codes and whether every word had its unused bits 23..18 clear; a word
    with them set did not come from the chip (a corrupted transfer).
    """
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, n_channels, BYTES_PER_CHANNEL)
    b = raw.astype(np.int64)
    codes: IntArray = ((b[..., 0] & 0x03) << 16) | (b[..., 1] << 8) | b[..., 2]
    clean = not bool(np.any(raw[..., 0] & RESERVED_WORD_BITS))
    return codes, clean
