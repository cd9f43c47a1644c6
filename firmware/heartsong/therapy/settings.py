"""The closed loop's tunable settings (the ``[therapy]`` section beyond mode, rate and timer).

:class:`TherapyTuning` is validated on construction; :func:`tuning_from_config` reads it
from the configuration's therapy section, taking the default for every key the section
does not (yet) have, so the therapy runs with any version of the configuration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from heartsong.errors import InputDataError, check_number

__all__ = ["SleepSound", "TherapyTuning", "tuning_from_config"]

SleepSound = Literal["masking", "off"]


def _number(name: str, value: object, low: float, high: float, unit: str = "") -> None:
    check_number(f"therapy.{name}", value, low, high, unit)


@dataclass(frozen=True, slots=True)
class TherapyTuning:
    """How the closed loop behaves (rates in breaths/min, times in seconds).

    Attributes
    ----------
    closed_loop:
        False: the open-loop foundation policy (pacer fixed at ``breath_rate_bpm``).
    resonance_min_bpm, resonance_max_bpm:
        The band searched for the personal resonance rate.
    pacer_step_bpm:
        One pacer step (and the grid of its rates).
    pacer_hold_s:
        Seconds the breathing must follow before the pacer steps down again.
    resonance_dwell_s:
        Seconds the pacer stays at each rate while assessing the resonance rate.
    switch_interval_s:
        At most one soundscape switch within any interval of this length.
    stress_tau_s:
        Time constant of the stress smoothing.
    masking_soundscape:
        Preset chosen under lasting stress ("" = never switch).
    quality_min:
        Below this signal quality the stress response holds and the pacer does not step.
    sleep_detection:
        Whether sleep onset switches to ``sleep`` mode.
    sleep_sound:
        After sleep onset: ``masking`` (quiet masking sound) or ``off`` (fade to silence).
    sleep_fade_min:
        Minutes of the fade after sleep onset.
    sleep_fade_db:
        How far the masking sound fades, dB below the sleep-mode volume.
    """

    closed_loop: bool = True
    resonance_min_bpm: float = 4.5
    resonance_max_bpm: float = 7.0
    pacer_step_bpm: float = 0.5
    pacer_hold_s: float = 30.0
    resonance_dwell_s: float = 120.0
    switch_interval_s: float = 900.0
    stress_tau_s: float = 30.0
    masking_soundscape: str = "brown_noise"
    quality_min: float = 0.5
    sleep_detection: bool = True
    sleep_sound: SleepSound = "masking"
    sleep_fade_min: float = 5.0
    sleep_fade_db: float = 10.0

    def __post_init__(self) -> None:
        for name in ("closed_loop", "sleep_detection"):
            if not isinstance(getattr(self, name), bool):
                raise InputDataError(f"therapy.{name}", "true or false", getattr(self, name))
        _number("resonance_min_bpm", self.resonance_min_bpm, 3.0, 7.0, "breaths/min")
        _number(
            "resonance_max_bpm", self.resonance_max_bpm, self.resonance_min_bpm + 0.5, 10.0,
            "breaths/min",
        )
        _number("pacer_step_bpm", self.pacer_step_bpm, 0.25, 1.0, "breaths/min")
        _number("pacer_hold_s", self.pacer_hold_s, 10.0, 600.0, "s")
        _number("resonance_dwell_s", self.resonance_dwell_s, 60.0, 600.0, "s")
        _number("switch_interval_s", self.switch_interval_s, 60.0, 86400.0, "s")
        _number("stress_tau_s", self.stress_tau_s, 5.0, 300.0, "s")
        _number("quality_min", self.quality_min, 0.0, 1.0)
        _number("sleep_fade_min", self.sleep_fade_min, 0.5, 60.0, "min")
        _number("sleep_fade_db", self.sleep_fade_db, 0.0, 40.0, "dB")
        if self.sleep_sound not in ("masking", "off"):
            raise InputDataError("therapy.sleep_sound", "'masking' or 'off'", self.sleep_sound)
        if not isinstance(self.masking_soundscape, str):
            raise InputDataError(
                "therapy.masking_soundscape", "a preset name or ''", self.masking_soundscape
            )


def tuning_from_config(section: object) -> TherapyTuning:
    """The tuning from a config section object (``cfg.therapy``).

    Every :class:`TherapyTuning` field the section has as an attribute is taken; the
    others keep their defaults.
    """
    found = {
        f.name: getattr(section, f.name)
        for f in dataclasses.fields(TherapyTuning)
        if hasattr(section, f.name)
    }
    return TherapyTuning(**found)
