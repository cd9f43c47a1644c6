"""The one-line status of ``heartsong demo``/``run``: what it shows, and the age of the
therapy's latest reason when it came from an earlier update."""

from __future__ import annotations

from heartsong.app import Status
from heartsong.events import Metrics, SoundTargets
from heartsong.status import format_status


def _status(reason: str, age_s: float | None) -> Status:
    metrics = Metrics(
        t_s=600.0, wall_s=1_700_000_000.0, hr_bpm=63.2, rmssd_ms=41.0, p_stress=0.21,
        stress_state="calm", signal_quality=0.98, source="ppg",
    )
    targets = SoundTargets("ocean", volume_db=-18.0, breath_rate_bpm=6.0)
    return Status(metrics, targets, "wind_down", reason, 0, age_s)


def test_status_line_shows_metrics_sound_pacer_and_the_latest_reason() -> None:
    line = format_status(_status("breath rate 7.5 -> 7.0 /min: breathing followed", 0.0))
    for part in ("HR 63.2 bpm", "RMSSD 41 ms", "stress calm (0.21)", "ocean -18 dB",
                 "pacer 6.0/min", "wind_down", "ppg q0.98",
                 "| breath rate 7.5 -> 7.0 /min: breathing followed"):
        assert part in line
    assert "ago" not in line  # a reason from this update needs no age


def test_a_reason_from_an_earlier_update_says_how_old_it_is() -> None:
    line = format_status(_status("stress response holds: no stress estimate", 35.0))
    assert line.endswith("| stress response holds: no stress estimate (35 s ago)")


def test_an_old_reason_says_how_old_it_is() -> None:
    line = format_status(_status("held at 6.0 /min: resonance found", 250.0))
    assert line.endswith("| held at 6.0 /min: resonance found (4 min ago)")


def test_no_reason_no_age() -> None:
    line = format_status(_status("", None))
    assert line.endswith("| wind_down | ppg q0.98")
