"""Explanations: every adaptation of the therapy is a record with its reason, and an Event.

An :class:`Adaptation` says what moved (a sound target, the pacer, the mode), from what to
what, and because of what, in words a person reads in the log, the status line and Home
Assistant, e.g. ``"breath rate 7.5 -> 7.0 /min: breathing followed for 3 min"`` or
``"brightness 50% -> 40%: p_stress 0.40 -> 0.70"``. :func:`adaptation_event` turns one into
the :class:`~heartsong.events.Event` that is logged, stored and published.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from heartsong.events import Event

__all__ = [
    "Adaptation",
    "ArmSummary",
    "adaptation_event",
    "format_duration",
    "format_value",
    "hr_effect",
    "preference_message",
]

#: How each target is named in a sentence.
LABELS: dict[str, str] = {
    "breath_rate_bpm": "breath rate",
    "volume_db": "volume",
    "brightness": "brightness",
    "intensity": "masking",
    "tempo_bpm": "pulse",
    "soundscape": "soundscape",
    "playing": "sound",
    "mode": "mode",
    "resonance_bpm": "resonance rate",
}


def format_duration(seconds: float) -> str:
    """A duration for people: ``"45 s"`` under 90 s, else ``"3 min"`` (rounded)."""
    if seconds < 90.0:
        return f"{seconds:.0f} s"
    return f"{seconds / 60.0:.0f} min"


def format_value(what: str, value: object) -> str:
    """One target value with its unit, as the reason sentences show it.

    Rates get one decimal and ``/min`` (``None`` is ``off``), levels in 0..1 a percentage,
    volume whole dB, tempo whole beats/min, everything else ``str(value)``.
    """
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        v = float(value)
        if what in ("breath_rate_bpm", "resonance_bpm"):
            return f"{v:.1f}"
        if what in ("brightness", "intensity"):
            return f"{100.0 * v:.0f}%"
        if what == "volume_db":
            return f"{v:.0f}"
        if what == "tempo_bpm":
            return f"{v:.0f}"
    return str(value)


_UNITS: dict[str, str] = {
    "breath_rate_bpm": " /min",
    "resonance_bpm": " /min",
    "volume_db": " dB",
    "tempo_bpm": " beats/min",
}


@dataclass(frozen=True, slots=True)
class Adaptation:
    """One change the therapy made, and why.

    Attributes
    ----------
    what:
        The target or state that changed: a :class:`~heartsong.events.SoundTargets` field
        (``breath_rate_bpm``, ``brightness``, ...), ``"tempo_bpm"``, ``"mode"``,
        ``"resonance_bpm"``, or ``"note"`` for a change of state that moves no target.
    before, after:
        Its value before and after (units as in the field name; None = off).
    because:
        The cause, in words with the numbers behind it.
    """

    what: str
    before: object
    after: object
    because: str

    @classmethod
    def note(cls, text: str) -> Adaptation:
        """A change of the therapy's own state that moves no target (its message is ``text``)."""
        return cls("note", None, None, text)

    @property
    def message(self) -> str:
        """The sentence: ``"<label> <before> -> <after><unit>: <because>"``."""
        if self.what == "note":
            return self.because
        if self.what == "playing":
            head = f"sound {format_value('playing', self.after)}"
        else:
            label = LABELS.get(self.what, self.what)
            before = format_value(self.what, self.before)
            after = format_value(self.what, self.after)
            unit = _UNITS.get(self.what, "") if self.after is not None else ""
            head = f"{label} {before} -> {after}{unit}"
        return f"{head}: {self.because}" if self.because else head


def adaptation_event(adaptation: Adaptation, t_s: float, wall_s: float) -> Event:
    """The event for ``adaptation`` at monotonic ``t_s`` and Unix ``wall_s`` (seconds).

    ``kind`` is ``"adaptation"``, ``message`` the sentence, and ``data`` the structured
    record (``what``, ``from``, ``to``, ``because``) for the store and MQTT.
    """
    return Event(
        t_s=t_s,
        wall_s=wall_s,
        kind="adaptation",
        message=adaptation.message,
        data={
            "what": adaptation.what,
            "from": adaptation.before,
            "to": adaptation.after,
            "because": adaptation.because,
        },
    )


class ArmSummary(Protocol):
    """What an explanation needs of a soundscape (``preference.ArmPosterior`` has it)."""

    @property
    def soundscape(self) -> str: ...
    @property
    def mean(self) -> float: ...
    @property
    def nights(self) -> int: ...
    @property
    def d_hr_bpm(self) -> float | None: ...


def hr_effect(d_hr_bpm: float) -> str:
    """``"lowered your heart rate by 4 bpm"`` (or raised, or left unchanged; whole bpm)."""
    n = round(abs(d_hr_bpm))
    if n == 0:
        return "left your heart rate unchanged"
    return f"{'lowered' if d_hr_bpm < 0 else 'raised'} your heart rate by {n} bpm"


def _nights(n: int) -> str:
    return f"{n} night{'s' if n != 1 else ''}"


def preference_message(
    chosen: str, kind: str, why: str, arms: Sequence[ArmSummary], others: int = 2
) -> str:
    """Why the learner plays ``chosen``, with the heart-rate effects it measured.

    E.g. ``"playing rain: it lowered your heart rate by 4 bpm on average over 9 nights,
    ocean by 1 bpm (beyond your usual settling)"``. Effects are the drift-corrected mean
    changes of heart rate over the response window; at most ``others`` other soundscapes
    (the best-scoring measured ones) are named. ``kind`` is ``trial``, ``explore`` or
    ``exploit`` and ``why`` the learner's reason.
    """
    by_name = {a.soundscape: a for a in arms}
    me = by_name.get(chosen)
    rest = sorted(
        (a for a in arms if a.soundscape != chosen and a.d_hr_bpm is not None),
        key=lambda a: -a.mean,
    )[:others]
    parts = []
    for a in rest:
        d = a.d_hr_bpm or 0.0
        n = round(abs(d))
        if n == 0:
            parts.append(f"{a.soundscape} left it unchanged")
        elif d < 0:
            parts.append(f"{a.soundscape} by {n} bpm")
        else:
            parts.append(f"{a.soundscape} raised it by {n} bpm")
    if me is not None and me.d_hr_bpm is not None:
        lead = f"playing {chosen} to learn more ({why})" if kind == "explore" else (
            f"playing {chosen}"
        )
        tail = f", {', '.join(parts)}" if parts else ""
        return (
            f"{lead}: it {hr_effect(me.d_hr_bpm)} on average over {_nights(me.nights)}"
            f"{tail} (beyond your usual settling)"
        )
    if not rest:
        return f"playing {chosen}: {why}"
    first = rest[0]
    so_far = [f"{first.soundscape} {hr_effect(first.d_hr_bpm or 0.0)}", *parts[1:]]
    return f"playing {chosen}: {why} (so far {', '.join(so_far)}, beyond your usual settling)"
