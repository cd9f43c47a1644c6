"""MAX30102 light-level control: keep the LED current where the photodiode signal sits mid-range,
and tell a finger from an empty sensor by the light it returns.

Photocurrent per LED current (nA/mA) separates a bare sensor (~3) from a finger (100-400);
the DC level is held in the middle of the ADC range so pulses never clip.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from heartsong.events import FloatArray
from heartsong.sensors import max30102_regs as r

if TYPE_CHECKING:
    from heartsong.sensors.max30102_settings import Max30102Settings

log = logging.getLogger(__name__)

ContactState = Literal["no_contact", "settling", "tracking"]

#: LED current with no finger on the sensor, and the smallest working current, in mA.
PROBE_LED_MA: Final = 1.0
MIN_LED_MA: Final = 0.2
#: Finger detection: photocurrent per LED current (nA/mA) above which a finger is seen,
#: and below which it is gone (a bare sensor reflects ~3 nA/mA, a finger 100-400).
CONTACT_ON_NA_PER_MA: Final = 60.0
CONTACT_OFF_NA_PER_MA: Final = 30.0
#: DC level targets as fractions of the ADC full scale.
DC_TARGET: Final = 0.5
DC_SETTLED_BAND: Final = (0.3, 0.7)
DC_TRACKING_BAND: Final = (0.2, 0.75)
#: Fewest samples (taken after an LED change) worth judging the light level on.
MIN_EVAL_SAMPLES: Final = 4


class LightControl:
    """Finger detection and LED-current control (state machine over the DC level)."""

    def __init__(self, settings: Max30102Settings, max_led_ma: float) -> None:
        self._s = settings
        self._max_ma = max_led_ma
        self._contact_channel = "ir" if "ir" in settings.channels else "red"
        self.state: ContactState = "no_contact"
        self.currents_ma: dict[str, float] = {c: PROBE_LED_MA for c in settings.channels}
        self._top = r.ADC_FULL_SCALE & ~((1 << (18 - settings.resolution_bits)) - 1)

    def reset(self) -> None:
        """Back to no contact with probe currents (after a (re)initialisation)."""
        self.state = "no_contact"
        self.currents_ma = {c: PROBE_LED_MA for c in self._s.channels}

    def gain_na_per_ma(self, counts: float, channel: str) -> float:
        """Photocurrent per LED drive current (nA/mA) for a DC level in counts."""
        return counts / r.ADC_FULL_SCALE * self._s.adc_range_na / self.currents_ma[channel]

    def update(self, x: dict[str, FloatArray]) -> bool:
        """Judge one stretch of samples taken at the present currents.

        Returns True when the LED currents changed (the caller writes them).
        """
        tail = x[self._contact_channel][-max(1, x[self._contact_channel].shape[0] // 4) :]
        gain = self.gain_na_per_ma(float(np.mean(tail)), self._contact_channel)
        if self.state == "no_contact":
            if gain < CONTACT_ON_NA_PER_MA:
                return False
            self.state = "settling"
            log.info("finger on the sensor (%.0f nA/mA)", gain)
            if not self._s.auto_led:
                return self._set({c: self._s.led_current_ma for c in self.currents_ma})
            changed, _ok = self._adjust(x, DC_SETTLED_BAND)
            return changed
        if gain < CONTACT_OFF_NA_PER_MA:
            self.state = "no_contact"
            log.info("no finger on the sensor (%.0f nA/mA)", gain)
            return self._set({c: PROBE_LED_MA for c in self.currents_ma})
        if not self._s.auto_led:
            self.state = "tracking"
            return False
        if self.state == "settling":
            changed, ok = self._adjust(x, DC_SETTLED_BAND)
            if ok and not changed:
                self.state = "tracking"
            return changed
        changed, _ok = self._adjust(x, DC_TRACKING_BAND)
        if changed:
            self.state = "settling"
        return changed

    def _adjust(self, x: dict[str, FloatArray], band: tuple[float, float]) -> tuple[bool, bool]:
        """Move each channel's DC towards the target if it is outside ``band`` or clips.

        Returns (currents changed, every channel in band or at a current limit).
        """
        new = dict(self.currents_ma)
        ok = True
        for ch, cur in self.currents_ma.items():
            xs = x[ch]
            level = float(np.mean(xs)) / r.ADC_FULL_SCALE
            clipped = float(np.max(xs)) >= self._top
            if clipped:
                want = cur / 2.0
            elif band[0] <= level <= band[1]:
                continue
            else:
                want = cur * DC_TARGET / level if level > 0 else cur * 8.0
                want = min(max(want, cur / 8.0), cur * 8.0)
            want = r.led_current_ma(r.led_code(min(max(want, MIN_LED_MA), self._max_ma)))
            at_limit = r.led_code(want) == r.led_code(cur) and not clipped
            if not at_limit:
                ok = False
            new[ch] = want
        return self._set(new), ok

    def _set(self, currents: dict[str, float]) -> bool:
        changed = any(
            r.led_code(currents[c]) != r.led_code(self.currents_ma[c]) for c in currents
        )
        self.currents_ma = dict(currents)
        return changed
