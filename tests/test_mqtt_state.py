"""What leaves the device (privacy filter) and when (publish schedule)."""

from __future__ import annotations

import logging

import pytest

from heartsong.errors import InputDataError
from heartsong.events import METRIC_NAMES, Metrics
from heartsong.mqtt.privacy import (
    DEVICE_KEYS,
    EXPLANATION_KEYS,
    PUBLISHABLE,
    PrivacyFilter,
    resolve_publish,
)
from heartsong.mqtt.schedule import PublishSchedule


def _doc(**changes: object) -> dict[str, object]:
    """A state document shaped like ``Appliance.state_document``."""
    doc = Metrics(t_s=10.0, wall_s=1_700_000_000.0, hr_bpm=61.0, rmssd_ms=40.0,
                  stress_state="calm", source="ppg", n_beats=60,
                  reasons={"lf_hf": "window too short", "p_stress": "no model"}).as_dict()
    doc.update(mode="wind_down", soundscape="ocean", playing=True, volume_db=-18.0,
               sleep_timer_min=0.0, pacer_bpm=6.0, audio_underruns=0,
               last_adaptation="brightness 0.50 -> 0.45: p_stress 0.42 -> 0.71")
    doc.update(changes)
    return doc


def test_the_default_publishes_every_known_key() -> None:
    doc = _doc()
    assert PrivacyFilter()(doc) == doc
    assert set(PUBLISHABLE) == (
        set(METRIC_NAMES) | {"n_beats"} | set(DEVICE_KEYS) | set(EXPLANATION_KEYS)
    )


def test_the_explanation_quotes_metrics_so_only_all_publishes_it() -> None:
    assert "last_adaptation" not in PrivacyFilter(["device", "metrics"])(_doc())
    assert PrivacyFilter(["all"])(_doc())["last_adaptation"].startswith("brightness")


def test_only_stress_state_leaves_the_device() -> None:
    out = PrivacyFilter(["stress_state"])(_doc())
    assert out == {"wall_s": 1_700_000_000.0, "stress_state": "calm"}


def test_groups_and_reasons_follow_the_published_metrics() -> None:
    f = PrivacyFilter(["device", "p_stress"])
    out = f(_doc())
    assert set(out) == {"wall_s", "p_stress", "reasons", *DEVICE_KEYS}
    assert out["reasons"] == {"p_stress": "no model"}
    assert "hr_bpm" not in out and "n_beats" not in out
    assert f.publishes("mode") and not f.publishes("rmssd_ms")


def test_unknown_state_keys_never_leave_the_device(caplog: pytest.LogCaptureFixture) -> None:
    f = PrivacyFilter(["all"])
    with caplog.at_level(logging.INFO, logger="heartsong.mqtt.privacy"):
        out1 = f(_doc(gps_location="52.1,4.3"))
        out2 = f(_doc(gps_location="52.1,4.3"))
    assert "gps_location" not in out1 and "gps_location" not in out2
    assert sum("gps_location" in r.getMessage() for r in caplog.records) == 1


def test_comma_separated_setting_and_unknown_names() -> None:
    assert resolve_publish("stress_state, mode") == {"stress_state", "mode"}
    assert resolve_publish([]) == frozenset()
    with pytest.raises(InputDataError) as err:
        resolve_publish(["stress_state", "heart_rate"])
    assert err.value.field == "mqtt.publish"
    assert "hr_bpm" in err.value.expected and "metrics" in err.value.expected


def test_schedule_publishes_at_the_interval_and_on_changes_that_matter() -> None:
    sched = PublishSchedule(5.0)
    assert sched.due(_doc(), 0.0)                       # first document
    assert not sched.due(_doc(hr_bpm=62.0), 1.0)         # metric drift waits
    assert sched.due(_doc(stress_state="stressed"), 2.0)  # stress change goes at once
    assert not sched.due(_doc(stress_state="stressed"), 3.0)
    assert sched.due(_doc(stress_state="stressed", mode="calm"), 3.5)  # a command's effect
    assert not sched.due(_doc(stress_state="stressed", mode="calm"), 8.0)
    assert sched.due(_doc(stress_state="stressed", mode="calm"), 8.5)  # 5 s after 3.5


def test_schedule_interval_must_be_positive() -> None:
    with pytest.raises(InputDataError, match="publish_interval_s"):
        PublishSchedule(0.0)
