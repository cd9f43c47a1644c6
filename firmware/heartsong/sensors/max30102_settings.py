"""MAX30102 settings: what the chip can be asked to do, checked against the datasheet."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

from heartsong.errors import ConfigError
from heartsong.sensors import max30102_regs as r
from heartsong.sensors.max30102_light import MIN_LED_MA

SensorMode = Literal["red_ir", "red", "ir"]


@dataclass(frozen=True)
class Max30102Settings:
    """How the sensor is configured (validated against the datasheet on construction).

    Attributes
    ----------
    mode:
        ``"red_ir"`` (SpO2 mode: red and IR), ``"red"`` or ``"ir"`` (one LED: heart-rate
        mode when it is LED1, else multi-LED mode with one slot).
    sample_rate_sps:
        ADC sample rate in samples per second (50-3200).
    sample_average:
        Samples averaged on the chip into one FIFO sample (1-32); the output rate is
        ``sample_rate_sps / sample_average``.
    pulse_width_us:
        LED pulse width in microseconds (69, 118, 215, 411: 15-18 bit resolution).
    adc_range_na:
        ADC full-scale photocurrent in nA (2048, 4096, 8192, 16384).
    led_current_ma:
        LED drive current in mA while a finger is on the sensor and ``auto_led`` is off
        (0.2-51, 0.2 mA steps).
    auto_led:
        Choose the LED currents that keep the DC level mid-range (the first choice comes
        from the light seen at the probe current when the finger arrives).
    leds_swapped:
        The board wires LED1 to the IR LED and LED2 to the red one (some clones).
    """

    mode: SensorMode = "red_ir"
    sample_rate_sps: int = 100
    sample_average: int = 1
    pulse_width_us: int = 411
    adc_range_na: int = 4096
    led_current_ma: float = 7.0
    auto_led: bool = True
    leds_swapped: bool = False

    def __post_init__(self) -> None:
        def bad(key: str, expected: str) -> ConfigError:
            return ConfigError("<sensor settings>", f"sensor.{key}", getattr(self, key), expected)

        if self.mode not in ("red_ir", "red", "ir"):
            raise bad("mode", 'must be "red_ir", "red" or "ir"')
        _check_choice(
            self.sample_rate_sps, r.SAMPLE_RATE_SPS.values(), bad, "sample_rate_sps", "samples/s"
        )
        _check_choice(self.sample_average, (1, 2, 4, 8, 16, 32), bad, "sample_average", "samples")
        _check_choice(self.pulse_width_us, (69, 118, 215, 411), bad, "pulse_width_us", "us")
        _check_choice(self.adc_range_na, r.ADC_RANGE_NA.values(), bad, "adc_range_na", "nA")
        ma = self.led_current_ma
        if isinstance(ma, bool) or not isinstance(ma, int | float) or not (
            MIN_LED_MA <= ma <= r.LED_MAX_MA
        ):
            raise bad(
                "led_current_ma", f"must be a number from {MIN_LED_MA:g} to {r.LED_MAX_MA:g} (mA)"
            )
        for key in ("auto_led", "leds_swapped"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, "must be true or false")
        allowed = r.ALLOWED_PULSE_WIDTHS_US[len(self.channels)][self.sample_rate_sps]
        if self.pulse_width_us not in allowed:
            table = "Table 11, SpO2 mode" if len(self.channels) == 2 else "Table 12, one LED"
            if allowed:
                expected = (
                    f"at {self.sample_rate_sps} samples/s in {self.mode} mode the LED pulse "
                    f"width must be one of {', '.join(map(str, allowed))} us (datasheet {table})"
                )
            else:
                expected = (
                    f"{self.sample_rate_sps} samples/s is not possible in {self.mode} mode with "
                    f"any pulse width (datasheet {table}); use 1600 samples/s or less"
                )
            raise bad("pulse_width_us", expected)

    @property
    def leds(self) -> dict[str, int]:
        """Which LED pin (1 or 2) drives each colour on this board."""
        return {"red": 2, "ir": 1} if self.leds_swapped else {"red": 1, "ir": 2}

    @property
    def channels(self) -> tuple[str, ...]:
        """Light colour of each FIFO channel, in FIFO order (LED1's before LED2's)."""
        if self.mode == "red_ir":
            return tuple(sorted(("red", "ir"), key=self.leds.__getitem__))
        return (self.mode,)

    @property
    def fs_hz(self) -> float:
        """Nominal rate of FIFO samples in Hz (after on-chip averaging)."""
        return self.sample_rate_sps / self.sample_average

    @property
    def resolution_bits(self) -> int:
        """ADC resolution at the configured pulse width, in bits."""
        return r.resolution_bits(self.pulse_width_us)

    @property
    def fifo_fill_s(self) -> float:
        """Seconds for the empty FIFO to fill at the nominal rate."""
        return r.FIFO_DEPTH / self.fs_hz

    def describe(self) -> str:
        """A short human summary for logs."""
        avg = f" (average of {self.sample_average})" if self.sample_average > 1 else ""
        return (
            f"{self.fs_hz:g} samples/s{avg}, {self.mode.replace('_', '+')}, "
            f"{self.pulse_width_us} us / {self.resolution_bits} bit, {self.adc_range_na} nA range"
        )


def _check_choice(
    value: object,
    allowed: Iterable[int],
    bad: Callable[[str, str], ConfigError],
    key: str,
    unit: str,
) -> None:
    choices = sorted(allowed)
    if isinstance(value, bool) or value not in choices:
        raise bad(key, f"must be one of {', '.join(str(c) for c in choices)} ({unit})")


def settings_from_config(cfg: object, path: str = "<config>") -> Max30102Settings:
    """Driver settings from a :class:`heartsong.config.SensorConfig` (and keys it may gain).

    Keys the section does not have yet take the driver defaults. A bad combination is
    reported as a :class:`~heartsong.errors.ConfigError` naming ``path`` and the key.
    """
    values: dict[str, Any] = {}
    for f in fields(Max30102Settings):
        if hasattr(cfg, f.name):
            values[f.name] = getattr(cfg, f.name)
    try:
        return Max30102Settings(**values)
    except ConfigError as exc:
        raise ConfigError(path, exc.key, exc.value, exc.expected) from None
