"""Source fusion: the preferred source while it is good, the other at once when it is not,
and back only after the preferred one has been good for a while.

Each test plays a script in time order, as the appliance would: PPG blocks every 0.25 s,
strap notifications every second, and a decision every 5 s (``dsp.update_s``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from heartsong.events import SourceName
from heartsong.sensors.fusion import RETURN_AFTER_S, SourceFusion

#: What a source delivers at time t: None (nothing arrives), or (beats, contact).
Script = Callable[[float], tuple[int, bool] | None]

STEP_S = 0.25


def play(
    f: SourceFusion,
    until_s: float,
    *,
    ppg: Script,
    ble: Script,
    decide_every_s: float = 5.0,
) -> dict[float, SourceName]:
    """Run the script to ``until_s``; return the decision at each decision time."""
    choices: dict[float, SourceName] = {}
    per_decision = round(decide_every_s / STEP_S)
    for k in range(round(until_s / STEP_S) + 1):
        t = k * STEP_S
        got = ppg(t)
        if got is not None:
            f.observe("ppg", t, beats=got[0], contact=got[1])
        if k % 4 == 0 and (got := ble(t)) is not None:
            f.observe("ble", t, beats=got[0], contact=got[1])
        if k % per_decision == 0:
            choices[t] = f.choose(t)
    return choices


def good(_: float) -> tuple[int, bool]:
    return 1, True


def silent(_: float) -> None:
    return None


def when(cond: Callable[[float], bool], then: Script, other: Script) -> Script:
    return lambda t: then(t) if cond(t) else other(t)


def no_contact(_: float) -> tuple[int, bool]:
    return 0, False


def first_time(choices: dict[float, SourceName], source: SourceName, after_s: float) -> float:
    return min(t for t, s in choices.items() if t >= after_s and s == source)


def test_the_preferred_source_is_used_as_soon_as_it_is_good() -> None:
    f = SourceFusion("ble")
    assert f.choose(0.0) == "none" and "no heart source" in f.reason
    choices = play(f, 60.0, ppg=good, ble=when(lambda t: t >= 20.0, good, silent))
    assert choices[5.0] == "ppg" and choices[15.0] == "ppg"  # the only good one
    # the strap is preferred, but the PPG was good: it takes over after the hysteresis
    assert first_time(choices, "ble", 20.0) == 35.0
    f2 = SourceFusion("ble")
    assert play(f2, 10.0, ppg=good, ble=good)[0.0] == "ble"  # preferred at once


def test_lost_contact_switches_at_the_next_decision_not_after_a_timeout() -> None:
    f = SourceFusion("ble")
    choices = play(f, 100.0, ppg=good, ble=when(lambda t: t < 61.0, good, no_contact))
    assert choices[60.0] == "ble"
    assert choices[65.0] == "ppg"  # the first decision after the strap said "no contact"
    assert "ble reports no contact" in f.reason


def test_a_silent_strap_is_replaced_after_its_staleness_limit() -> None:
    f = SourceFusion("ble", stale_s={"ble": 5.0})
    # the link is lost at 50 s: the last notification (and beat) arrived at 49 s
    choices = play(
        f, 80.0, ppg=good, ble=when(lambda t: t < 50.0, good, silent), decide_every_s=1.0
    )
    assert choices[54.0] == "ble"  # exactly 5 s: still within the limit
    assert choices[55.0] == "ppg"
    assert "no beat for" in f.reason


def test_switching_back_waits_for_the_strap_to_be_good_long_enough() -> None:
    f = SourceFusion("ble", return_after_s=15.0)
    strap = when(lambda t: 50.0 <= t < 80.0, no_contact, good)
    choices = play(f, 120.0, ppg=good, ble=strap)
    assert [choices[t] for t in (45.0, 50.0, 75.0)] == ["ble", "ppg", "ppg"]
    assert [choices[t] for t in (80.0, 85.0, 90.0, 95.0, 100.0)] == [
        "ppg", "ppg", "ppg", "ble", "ble",
    ]


def test_a_slipping_strap_does_not_make_the_metrics_flap() -> None:
    f = SourceFusion("ble")
    # from 60 s the strap has contact for 10 s, then none for 2 s, again and again
    slipping = when(lambda t: t >= 60.0 and (t - 60.0) % 12.0 < 2.0, no_contact, good)
    choices = play(f, 300.0, ppg=good, ble=slipping)
    assert all(s == "ble" for t, s in choices.items() if t < 60.0)
    assert {s for t, s in choices.items() if t > 60.0} == {"ppg"}  # never good for 15 s


def test_the_preferred_source_returns_at_once_when_the_fallback_fails() -> None:
    f = SourceFusion("ble")
    strap = when(lambda t: 30.0 <= t < 36.0, no_contact, good)
    finger = when(lambda t: t < 40.0, good, no_contact)  # the finger leaves the PPG at 40 s
    choices = play(f, 60.0, ppg=finger, ble=strap, decide_every_s=1.0)
    assert choices[31.0] == "ppg" and choices[39.0] == "ppg"  # strap back, but held off
    assert choices[40.0] == "ble"  # no hysteresis without a good fallback


def test_nothing_good_means_none() -> None:
    f = SourceFusion("ppg")
    choices = play(
        f, 60.0,
        ppg=when(lambda t: t < 20.0, good, silent),
        ble=when(lambda t: t < 20.0 or t >= 45.0, good, silent),
    )
    assert choices[15.0] == "ppg" and choices[40.0] == "none"
    assert choices[45.0] == "ble"  # the fallback, as the preferred PPG is still silent


def test_default_hysteresis_and_validation() -> None:
    assert SourceFusion("ble").return_after_s == RETURN_AFTER_S
    with pytest.raises(ValueError, match="preferred"):
        SourceFusion("none")
    with pytest.raises(ValueError, match="return_after_s"):
        SourceFusion("ble", return_after_s=-1.0)
    with pytest.raises(ValueError, match="stale_s"):
        SourceFusion("ble", stale_s={"ppg": 0.0})
