"""Explanations and settings: reason sentences, their events, and the [therapy] keys."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from heartsong.errors import InputDataError
from heartsong.therapy.explain import Adaptation, adaptation_event, format_duration
from heartsong.therapy.settings import TherapyTuning, tuning_from_config


@pytest.mark.parametrize(
    ("adaptation", "message"),
    [
        (Adaptation("breath_rate_bpm", 7.5, 7.0, "breathing followed for 3 min"),
         "breath rate 7.5 -> 7.0 /min: breathing followed for 3 min"),
        (Adaptation("brightness", 0.5, 0.4, "p_stress 0.40 -> 0.70"),
         "brightness 50% -> 40%: p_stress 0.40 -> 0.70"),
        (Adaptation("breath_rate_bpm", 6.0, None, "asleep"), "breath rate 6.0 -> off: asleep"),
        (Adaptation("volume_db", -20.0, -22.0, "sleep fade 20% of 5 min"),
         "volume -20 -> -22 dB: sleep fade 20% of 5 min"),
        (Adaptation("mode", "wind_down", "sleep", "sleep onset: still for 3 min"),
         "mode wind_down -> sleep: sleep onset: still for 3 min"),
        (Adaptation("playing", True, False, "faded to silence"), "sound off: faded to silence"),
        (Adaptation.note("stress response holds: signal quality 0.30 < 0.50"),
         "stress response holds: signal quality 0.30 < 0.50"),
    ],
)
def test_messages(adaptation: Adaptation, message: str) -> None:
    assert adaptation.message == message


def test_event_carries_the_structured_record() -> None:
    a = Adaptation("breath_rate_bpm", 7.5, 7.0, "breathing followed for 3 min")
    e = adaptation_event(a, 12.0, 1.7e9)
    assert e.kind == "adaptation" and e.message == a.message and e.t_s == 12.0
    assert e.data == {"what": "breath_rate_bpm", "from": 7.5, "to": 7.0,
                      "because": "breathing followed for 3 min"}


def test_durations_read_naturally() -> None:
    assert format_duration(45.0) == "45 s"
    assert format_duration(180.0) == "3 min"


def test_tuning_takes_the_keys_the_section_has() -> None:
    section = SimpleNamespace(mode="calm", switch_interval_s=1200.0, sleep_sound="off")
    t = tuning_from_config(section)
    assert t.switch_interval_s == 1200.0 and t.sleep_sound == "off"
    assert t.pacer_hold_s == TherapyTuning().pacer_hold_s  # absent: the default


@pytest.mark.parametrize(
    ("key", "value"),
    [("switch_interval_s", 5.0), ("resonance_max_bpm", 4.0), ("sleep_sound", "loud"),
     ("closed_loop", 1), ("quality_min", float("nan"))],
)
def test_bad_tuning_names_the_key(key: str, value: object) -> None:
    with pytest.raises(InputDataError, match=rf"therapy\.{key}"):
        TherapyTuning(**{key: value})  # type: ignore[arg-type]
