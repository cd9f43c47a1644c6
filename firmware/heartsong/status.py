"""The one-line status a person reads: time, heart rate, RMSSD, stress, sound and pacer."""

from __future__ import annotations

import datetime as dt

from heartsong.app import Status


def _num(value: float | None, fmt: str, unit: str) -> str:
    if value is None:
        return f"-- {unit}".rstrip()
    return f"{value:{fmt}} {unit}".rstrip()


def format_status(status: Status) -> str:
    """Render ``status`` as one line, e.g.
    ``22:41:05 HR 63.2 bpm | RMSSD 41 ms | stress unknown | ocean -18 dB | pacer 6.0/min |
    wind_down | ppg q0.98 | breath rate 7.5 -> 7.0 /min: breathing followed for 30 s``
    (the last part: the therapy's latest change and why, with its age when it came
    from an earlier update, e.g. ``(35 s ago)`` or ``(4 min ago)``).
    """
    m = status.metrics
    t = status.targets
    clock = dt.datetime.fromtimestamp(m.wall_s).strftime("%H:%M:%S")
    sound = f"{t.soundscape} {t.volume_db:.0f} dB" if t.playing else f"{t.soundscape} (off)"
    pacer = "pacer off" if t.breath_rate_bpm is None else f"pacer {t.breath_rate_bpm:.1f}/min"
    stress = m.stress_state if m.p_stress is None else f"{m.stress_state} ({m.p_stress:.2f})"
    quality = "" if m.signal_quality is None else f" q{m.signal_quality:.2f}"
    why = f" | {status.last_reason}" if status.last_reason else ""
    age = status.last_reason_age_s
    if why and age is not None and age >= 1.0:  # not from this update: say how old
        why += f" ({age:.0f} s ago)" if age < 60.0 else f" ({age / 60.0:.0f} min ago)"
    return (
        f"{clock} HR {_num(m.hr_bpm, '.1f', 'bpm')} | RMSSD {_num(m.rmssd_ms, '.0f', 'ms')} | "
        f"stress {stress} | {sound} | {pacer} | {status.mode} | {m.source}{quality}{why}"
    )
