"""The real MAX30102 driver over the emulated chip: no lost or altered sample, honest gaps,
sample-clock timing, light control, finger detection and fault recovery.

Time is simulated: a :class:`ManualClock` drives both the emulator and the driver, and
the tests move it forward in seeded, jittered steps instead of sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from gpiozero import DigitalInputDevice
from gpiozero.pins.mock import MockFactory

from heartsong.config import SensorConfig
from heartsong.errors import ConfigError, SensorError
from heartsong.events import PpgBlock
from heartsong.sensors import max30102_regs as r
from heartsong.sensors.max30102 import (
    A_FULL_SAMPLES,
    Max30102,
    Max30102NotFoundError,
)
from heartsong.sensors.max30102_emulator import ManualClock, Max30102Emulator, Truth
from heartsong.sensors.max30102_light import CONTACT_OFF_NA_PER_MA, DC_SETTLED_BAND, PROBE_LED_MA
from heartsong.sensors.max30102_settings import Max30102Settings, settings_from_config
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson

CLOCK_ERROR = 0.008  # the emulated oscillator runs 0.8 % fast


@dataclass
class Rig:
    """A driver on an emulated sensor with a simulated finger, sharing a manual clock."""

    clk: ManualClock
    emu: Max30102Emulator
    drv: Max30102
    synth: PpgSynth
    rng: np.random.Generator
    blocks: list[PpgBlock] = field(default_factory=list)

    def run_until(self, t_s: float, lo: float = 0.1, hi: float = 0.9) -> None:
        """Read at jittered intervals (fractions lo..hi of the FIFO fill time) until t_s."""
        fill = self.drv.settings.fifo_fill_s
        while self.clk.monotonic() < t_s:
            self.clk.advance(self.rng.uniform(lo, hi) * fill)
            self.blocks.extend(self.drv.read())

    def read_after(self, dt_s: float) -> None:
        self.clk.advance(dt_s)
        self.blocks.extend(self.drv.read())


def rig(
    sps: int = 100,
    *,
    seed: int = 1,
    motion_per_hour: float = 0.0,
    synth_kw: dict[str, Any] | None = None,
    emu_kw: dict[str, Any] | None = None,
    **settings: Any,
) -> Rig:
    clk = ManualClock()
    person = SimulatedPerson(PersonParams(motion_artifacts_per_hour=motion_per_hour), seed=seed)
    synth = PpgSynth(person, 100.0, seed=seed + 1, **(synth_kw or {}))
    emu = Max30102Emulator(
        clk.monotonic, synth, clock_error=CLOCK_ERROR, record=True, seed=seed, **(emu_kw or {})
    )
    drv = Max30102(
        emu,
        Max30102Settings(sample_rate_sps=sps, **settings),
        time_fn=clk.monotonic,
        sleep_fn=clk.sleep_sync,
    )
    drv.start()
    return Rig(clk, emu, drv, synth, np.random.default_rng(seed + 100))


@dataclass
class Delivered:
    """The driver's output laid over the emulator's sample indices."""

    index: np.ndarray[Any, Any]  # truth index of every delivered sample
    ir: np.ndarray[Any, Any]
    red: np.ndarray[Any, Any]
    t_s: np.ndarray[Any, Any]  # the driver's timestamp of every delivered sample
    gaps: int
    end: int  # index after the last delivered sample


def lay_out(blocks: list[PpgBlock]) -> Delivered:
    index, ts = [], []
    i = 0
    for b in blocks:
        i += b.gap_samples
        n = max(b.ir.shape[0], b.red.shape[0])
        index.append(np.arange(i, i + n))
        ts.append(b.t0_s + np.arange(n) / b.fs_hz)
        i += n
    return Delivered(
        np.concatenate(index),
        np.concatenate([b.ir for b in blocks]),
        np.concatenate([b.red for b in blocks]),
        np.concatenate(ts),
        sum(b.gap_samples for b in blocks),
        i,
    )


def assert_exact(d: Delivered, truth: Truth, red_col: int = 0, ir_col: int = 1) -> None:
    """Every delivered sample is the chip's sample at that index, channel for channel."""
    if d.ir.size:
        assert np.array_equal(d.ir, truth.codes[d.index, ir_col])
    if d.red.size:
        assert np.array_equal(d.red, truth.codes[d.index, red_col])


# -- lossless, exact, well-timed ----------------------------------------------------------


@pytest.mark.parametrize("sps", [100, 200, 400])
def test_ten_minutes_of_jittery_reads_lose_nothing_and_change_nothing(sps: int) -> None:
    g = rig(sps)
    g.run_until(600.0, lo=0.2, hi=0.95)
    d = lay_out(g.blocks)
    truth = g.emu.truth
    assert d.gaps == 0
    assert np.array_equal(d.index, np.arange(d.end))  # every index once, in order
    assert truth.pushed[: d.end].all() and d.end >= truth.index.shape[0] - r.FIFO_DEPTH
    assert_exact(d, truth)
    assert d.end > 600 * sps * 0.99
    # timing: the sample clock runs 0.8 % fast; its rate and every sample's time are
    # recovered from the host's read times alone
    assert g.drv.fs_hz == pytest.approx(sps * (1 + CLOCK_ERROR), rel=1e-4)
    err = d.t_s - truth.t_s[d.index]
    t = truth.t_s[d.index]
    assert np.max(np.abs(err[t > 15.0])) < 0.5 / sps  # converging
    assert np.max(np.abs(err[t > 60.0])) < 0.15 / sps  # converged
    # blocks follow each other without a break in the timeline
    ends = np.array([b.t_end_s for b in g.blocks[:-1]])
    starts = np.array([b.t0_s for b in g.blocks[1:]])
    assert np.max(np.abs(starts - ends)) < 1e-9
    assert g.drv.stats.fifo_bursts == g.drv.stats.reads  # one burst per read


def test_on_chip_averaging_is_delivered_at_the_averaged_rate() -> None:
    g = rig(400, sample_average=4)
    g.run_until(60.0)
    d = lay_out(g.blocks)
    assert d.gaps == 0
    assert_exact(d, g.emu.truth)
    assert g.drv.fs_hz == pytest.approx(100 * (1 + CLOCK_ERROR), rel=2e-4)


def test_a_stalled_reader_gets_gaps_of_the_right_length() -> None:
    g = rig(100)
    g.run_until(20.0)
    g.read_after(0.5)  # ~50 samples made, 32 kept: OVF_COUNTER counts the rest
    g.run_until(40.0)
    g.read_after(5.0)  # ~500 made: the counter saturates, the sample clock counts
    g.run_until(60.0)
    truth = g.emu.truth
    d = lay_out(g.blocks)
    lost = np.flatnonzero(~truth.pushed[: d.end])
    gaps = [(i, b.gap_samples) for i, b in enumerate(g.blocks) if b.gap_samples]
    assert len(gaps) == 2
    runs = np.split(lost, np.flatnonzero(np.diff(lost) > 1) + 1)
    assert [n for _, n in gaps] == [len(run) for run in runs]
    assert gaps[0][1] < r.OVERFLOW_SATURATED < gaps[1][1]
    assert np.array_equal(np.sort(np.concatenate([d.index, lost])), np.arange(d.end))
    assert_exact(d, truth)
    # the block after each gap starts at the true time of its first sample
    for i, _n in gaps:
        first = d.index[sum(b.n for b in g.blocks[:i])]
        assert g.blocks[i].t0_s == pytest.approx(truth.t_s[first], abs=0.2 / 100)


def test_reading_on_the_int_line_takes_one_burst_per_interrupt() -> None:
    g = rig(200)
    factory = MockFactory()
    fired = threading.Event()
    line = DigitalInputDevice(17, pull_up=True, pin_factory=factory)
    line.when_activated = fired.set
    g.emu.int_pin = factory.pin(17)
    period = 1.0 / (200 * (1 + CLOCK_ERROR))
    interrupts = 0
    steady: tuple[int, int] | None = None
    while g.clk.monotonic() < 60.0:
        if steady is None and g.clk.monotonic() > 20.0:
            steady = (g.drv.stats.transactions, interrupts)
        nxt = g.emu.next_sample_time()
        assert nxt is not None
        g.clk.advance(nxt - g.clk.monotonic() + 1e-9)
        g.emu.update()
        if fired.is_set():
            fired.clear()
            interrupts += 1
            g.read_after(g.rng.uniform(0.0, 5.0) * period)  # interrupt latency, jittered
    d = lay_out(g.blocks)
    assert d.gaps == 0
    assert_exact(d, g.emu.truth)
    assert g.emu.stats.fifo_bursts == interrupts == len(g.blocks)
    assert min(b.n for b in g.blocks[1:]) >= A_FULL_SAMPLES
    # per interrupt: one pointer read and one burst (plus a config check every 10 s and
    # a temperature reading every minute)
    assert steady is not None
    per_interrupt = (g.drv.stats.transactions - steady[0]) / (interrupts - steady[1])
    assert 2.0 <= per_interrupt < 2.05
    line.close()


# -- light level and finger ------------------------------------------------------------------


@pytest.mark.parametrize("ir_dc", [30_000.0, 120_000.0, 240_000.0])
def test_led_control_settles_within_5_s_and_never_clips(ir_dc: float) -> None:
    g = rig(
        100,
        motion_per_hour=120.0,
        synth_kw={"ir_dc": ir_dc, "red_dc": ir_dc * 0.8},
    )
    g.synth.remove_finger(0.0, 30.0)
    g.run_until(29.7)
    assert g.drv.state == "no_contact"
    assert all(not b.contact for b in g.blocks if b.t0_s > 1.0)  # (the finger leaves at 0)
    assert g.emu.led_currents_ma == (PROBE_LED_MA, PROBE_LED_MA)
    changes: list[tuple[float, tuple[float, float]]] = []
    settled = None
    while g.clk.monotonic() < 300.0:
        g.run_until(g.clk.monotonic() + 0.1)
        leds = g.emu.led_currents_ma
        if not changes or changes[-1][1] != leds:
            changes.append((g.clk.monotonic(), leds))
        state: str = g.drv.state
        if settled is None and state == "tracking":
            settled = g.clk.monotonic()
    assert settled is not None and settled - 30.0 < 5.0
    assert changes[-1][0] - 30.0 < 5.0  # no LED change after settling
    d = lay_out(g.blocks)
    after = g.emu.truth.t_s[d.index] > settled
    top = r.ADC_FULL_SCALE
    assert d.ir[after].max() < top and d.red[after].max() < top
    assert d.ir[after].min() > 0
    level = d.ir[after].mean() / top
    assert DC_SETTLED_BAND[0] <= level <= DC_SETTLED_BAND[1]
    assert all(b.contact for b in g.blocks if b.t0_s > settled + 1.0)


def test_finger_removal_is_detected_within_1_s_and_no_pulse_is_reported() -> None:
    g = rig(100)
    g.synth.remove_finger(120.0, 10_000.0)
    g.run_until(119.0)
    state: str = g.drv.state
    assert state == "tracking"
    while state != "no_contact":
        g.run_until(g.clk.monotonic() + 0.01)
        state = g.drv.state
    detected = g.clk.monotonic()
    assert detected - 120.0 < 1.0
    assert not g.blocks[-1].contact  # the block that showed it is already marked
    g.run_until(180.0)
    late = [b for b in g.blocks if b.t_end_s > detected]
    assert late and not any(b.contact for b in late)
    assert g.drv.led_currents_ma == {"red": PROBE_LED_MA, "ir": PROBE_LED_MA}
    # what the sensor sees now is far below a finger
    gain = late[-1].ir.mean() / r.ADC_FULL_SCALE * 4096 / PROBE_LED_MA
    assert gain < CONTACT_OFF_NA_PER_MA


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("io_rate", "garbage_rate"), [(0.1, 0.0), (0.0, 0.05), (0.1, 0.05)])
def test_bus_faults_lose_no_sample_the_chip_still_holds(
    io_rate: float, garbage_rate: float
) -> None:
    g = rig(100, seed=3)
    g.run_until(10.0)
    g.emu.io_error_rate, g.emu.garbage_rate = io_rate, garbage_rate
    g.run_until(310.0)  # no exception escapes
    g.emu.io_error_rate = g.emu.garbage_rate = 0.0
    failed_during_faults = g.drv.stats.failed_reads
    n_blocks = len(g.blocks)
    g.run_until(340.0)
    truth = g.emu.truth
    d = lay_out(g.blocks)
    assert_exact(d, truth)
    held = np.flatnonzero(truth.pushed[: d.end] & ~truth.destroyed[: d.end])
    assert np.array_equal(np.intersect1d(held, d.index), held)  # everything still held
    assert np.all(np.diff(d.index) > 0)  # in order, none twice
    assert d.gaps == d.end - d.index.shape[0]  # every loss reported as a gap
    assert g.emu.stats.injected_errors + g.emu.stats.injected_garbage > 100
    # recovered on its own: reading normally again
    assert g.drv.stats.failed_reads == failed_during_faults
    assert len(g.blocks) > n_blocks and all(b.gap_samples == 0 for b in g.blocks[n_blocks + 1 :])
    # a read whose every attempt failed can let the FIFO overflow: rare, and a gap
    assert d.gaps < 0.002 * d.end
    assert g.drv.stats.rewinds > 0  # popped-then-failed samples were read again


def test_a_power_cycled_chip_is_re_initialised_with_a_gap() -> None:
    g = rig(100)
    g.run_until(30.0)
    g.emu.schedule_absence(30.05, 30.06)  # a brown-out between two reads
    g.run_until(45.0)
    assert g.drv.stats.reinits == 1
    gaps = [b for b in g.blocks if b.gap_samples]
    assert len(gaps) == 1 and gaps[0].t0_s > 30.0
    after = g.blocks[g.blocks.index(gaps[0]) :]
    truth = g.emu.truth
    new = truth.session == truth.session.max()
    got = np.concatenate([b.ir for b in after])
    assert np.array_equal(got, truth.codes[new, 1][: got.shape[0]])
    assert g.drv.state in ("settling", "tracking")


def test_a_sensor_gone_for_good_raises_sensor_error_after_re_init_fails() -> None:
    g = rig(100)
    g.run_until(10.0)
    g.emu.remove()
    with pytest.raises(SensorError, match="could not be re-initialised"):
        for _ in range(10):
            g.read_after(0.1)
    assert g.drv.stats.failed_reads == 3 and g.emu.stats.nacks < 40


def test_missing_sensor_error_names_bus_address_and_i2c_hint() -> None:
    clk = ManualClock()
    person = SimulatedPerson(PersonParams(), seed=1)
    emu = Max30102Emulator(clk.monotonic, PpgSynth(person, 100.0, seed=1), address=0x58)
    drv = Max30102(emu, bus_label="/dev/i2c-1", time_fn=clk.monotonic, sleep_fn=clk.sleep_sync)
    with pytest.raises(Max30102NotFoundError) as info:
        drv.start()
    msg = str(info.value)
    assert "/dev/i2c-1" in msg and "0x57" in msg and "dtparam=i2c_arm=on" in msg
    assert isinstance(info.value, OSError)


def test_a_different_part_is_refused() -> None:
    clk = ManualClock()
    person = SimulatedPerson(PersonParams(), seed=1)
    emu = Max30102Emulator(clk.monotonic, PpgSynth(person, 100.0, seed=1), seed=4)
    emu.garbage_rate = 1.0  # every byte read is noise: the part ID is wrong
    drv = Max30102(emu, time_fn=clk.monotonic, sleep_fn=clk.sleep_sync)
    with pytest.raises(SensorError, match="part ID"):
        drv.start()


# -- settings, modes, temperature --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "key", "words"),
    [
        ({"sample_rate_sps": 800, "pulse_width_us": 411}, "sensor.pulse_width_us", "69, 118, 215"),
        ({"sample_rate_sps": 3200, "pulse_width_us": 69}, "sensor.pulse_width_us", "not possible"),
        ({"sample_rate_sps": 150}, "sensor.sample_rate_sps", "50, 100, 200"),
        ({"sample_average": 3}, "sensor.sample_average", "1, 2, 4, 8, 16, 32"),
        ({"adc_range_na": 1000}, "sensor.adc_range_na", "2048"),
        ({"led_current_ma": 0.0}, "sensor.led_current_ma", "0.2 to 51"),
        ({"mode": "green"}, "sensor.mode", "red_ir"),
    ],
)
def test_settings_are_checked_against_the_datasheet(
    kw: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Max30102Settings(**kw)
    assert info.value.key == key and words in info.value.expected


def test_one_led_allows_what_two_do_not() -> None:
    # Datasheet Tables 11 (SpO2 mode, two LEDs) and 12 (heart-rate mode, one LED).
    assert Max30102Settings(mode="red", sample_rate_sps=3200, pulse_width_us=69).fs_hz == 3200
    ir_only = Max30102Settings(mode="ir", sample_rate_sps=1000, pulse_width_us=411)
    assert ir_only.resolution_bits == 18
    assert Max30102Settings(mode="red", sample_rate_sps=1600, pulse_width_us=215).fs_hz == 1600
    for mode, sps, pw in (
        ("red", 3200, 118), ("red", 1600, 411), ("red_ir", 3200, 69),
        ("red_ir", 1600, 118), ("red_ir", 1000, 215), ("red_ir", 800, 411),
    ):
        with pytest.raises(ConfigError):
            Max30102Settings(mode=mode, sample_rate_sps=sps, pulse_width_us=pw)  # type: ignore[arg-type]
    assert Max30102Settings(mode="red_ir", sample_rate_sps=1600, pulse_width_us=69).fs_hz == 1600


def test_settings_from_config_names_the_file() -> None:
    s = settings_from_config(SensorConfig(sample_rate_sps=200, led_current_ma=10.0))
    assert (s.sample_rate_sps, s.led_current_ma, s.mode) == (200, 10.0, "red_ir")
    with pytest.raises(ConfigError) as info:
        settings_from_config(SensorConfig(sample_rate_sps=3200), path="/etc/heartsong/config.toml")
    assert info.value.path == "/etc/heartsong/config.toml"
    assert info.value.key == "sensor.pulse_width_us"


@pytest.mark.parametrize("swapped", [False, True])
@pytest.mark.parametrize("mode", ["red", "ir"])
def test_single_led_modes_deliver_their_one_colour(mode: str, swapped: bool) -> None:
    g = rig(100, mode=mode, leds_swapped=swapped, emu_kw={"leds_swapped": swapped})
    g.run_until(30.0)
    d = lay_out(g.blocks)
    assert d.gaps == 0
    got, other = (d.red, d.ir) if mode == "red" else (d.ir, d.red)
    assert other.size == 0 and np.array_equal(got, g.emu.truth.codes[d.index, 0])
    assert g.drv.state == "tracking"
    # only the LED of that colour is lit: pin 1 carries red unless the board is swapped
    lit_pin = 1 if (mode == "red") != swapped else 2
    led1, led2 = g.emu.led_currents_ma
    assert (led1 > 0, led2 > 0) == (lit_pin == 1, lit_pin == 2)


def test_a_board_with_swapped_leds_still_labels_the_channels_right() -> None:
    g = rig(100, leds_swapped=True, emu_kw={"leds_swapped": True})
    g.run_until(30.0)
    d = lay_out(g.blocks)
    assert_exact(d, g.emu.truth, red_col=1, ir_col=0)  # the chip sends the IR LED first
    # the IR channel carries the stronger pulse (red is absorbed more by oxygenated blood)
    late = d.index > 1000
    pi = [np.ptp(x[late][-300:]) / x[late][-300:].mean() for x in (d.ir, d.red)]
    assert pi[0] > pi[1]


def test_die_temperature_is_read_in_passing_and_on_demand() -> None:
    g = rig(100)
    g.run_until(5.0)
    assert g.drv.temperature_c == 31.25
    g.emu.die_temp_c = 36.5
    assert g.drv.measure_temperature_c() == 36.5
