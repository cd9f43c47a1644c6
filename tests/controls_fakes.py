"""A fake appliance for the controls tests: settings changed by the real apply_command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heartsong.controls.controller import Controls
from heartsong.controls.settings import ControlsConfig
from heartsong.mqtt.apply import apply_command, sleep_timer_remaining_min
from heartsong.mqtt.commands import Command
from heartsong.therapy.policy import PolicySettings

PRESETS = ("ocean", "rain", "forest")


@dataclass
class FakeHost:
    """Time, pacer phase and settings the controls read; commands applied like the app's."""

    t: float = 0.0
    wall_s: float = 0.0
    phase: float = 0.0
    settings: PolicySettings = field(
        default_factory=lambda: PolicySettings("wind_down", "ocean", -18.0, 6.0, 0.0)
    )
    commands: list[Command] = field(default_factory=list)
    shutdowns: int = 0

    def send(self, command: Command) -> None:
        self.commands.append(command)
        self.settings = apply_command(self.settings, command, session_elapsed_s=self.t).settings

    def shutdown(self) -> None:
        self.shutdowns += 1

    def controls(self, cfg: ControlsConfig, factory: Any) -> Controls:
        return Controls(
            cfg,
            presets=PRESETS,
            volume_min_db=-60.0,
            volume_max_db=-6.0,
            settings=lambda: self.settings,
            send=self.send,
            timer_remaining_min=lambda: sleep_timer_remaining_min(self.settings, self.t),
            breath_phase=lambda: self.phase,
            on_shutdown=self.shutdown,
            now=lambda: self.t,
            wall=lambda: self.wall_s,
            pin_factory=factory,
        )
