"""The simulated person in bed and the sensors that observe it (public facade).

:class:`SimulatedPerson` generates seeded, deterministic heartbeats (IPFM with respiratory
sinus arrhythmia, Mayer waves and stress) and breathing that can follow a pacer;
:class:`PpgSynth` turns its beats into a MAX30102-like IR/red PPG, and
:class:`SimulatedStrap` into the RR-interval notifications of a BLE chest strap. Both
read one shared beat history through :class:`BeatCursor` objects. Time is simulation
time in seconds from 0; callers drive it from an injected clock
(:class:`heartsong.clock.ScaledClock`), so a night can run many times faster than real time.

The model lives in :mod:`heartsong.sensors.sim_person`, :mod:`heartsong.sensors.sim_ppg`
and :mod:`heartsong.sensors.sim_strap`; this module only re-exports it.
"""

from __future__ import annotations

from heartsong.sensors.sim_person import (
    FRONTIER_S,
    STEP_S,
    BeatCursor,
    Calibration,
    PersonParams,
    SimulatedPerson,
    calibrate,
    rsa_gain,
)
from heartsong.sensors.sim_ppg import ADC_MAX, PpgSynth
from heartsong.sensors.sim_strap import RR_TICKS_PER_S, Notification, SimulatedStrap

__all__ = [
    "ADC_MAX",
    "FRONTIER_S",
    "RR_TICKS_PER_S",
    "STEP_S",
    "BeatCursor",
    "Calibration",
    "Notification",
    "PersonParams",
    "PpgSynth",
    "SimulatedPerson",
    "SimulatedStrap",
    "calibrate",
    "rsa_gain",
]
