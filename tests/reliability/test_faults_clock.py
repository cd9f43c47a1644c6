"""The wall clock jumps while the whole appliance runs (NTP setting the clock at boot).

A Pi has no real-time clock: it boots with the time it shut down at (fake-hwclock) or
the image's build date, and NTP steps it later, by hours or by months. The fault goes
through the appliance's clock (:class:`~reliability.rig.SteppableClock` moves only the
wall time; monotonic time never jumps). The promises: updates keep their cadence (they
run on monotonic time); every update is stored, under the wall time in force when it was
measured; the retention period never deletes the night being recorded.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from heartsong.events import Metrics
from reliability.figures import record
from reliability.rig import Rig, base_config, build_rig

SPEED = 100.0
HOUR_S = 3600.0
DAY_S = 86_400.0


def _stepper(steps: list[tuple[float, float]]) -> object:
    done: set[int] = set()

    def hook(rig: Rig, m: Metrics) -> None:
        for k, (at_s, by_s) in enumerate(steps):
            if m.t_s >= at_s and k not in done:
                done.add(k)
                rig.clock.step_wall(by_s)

    return hook


def _max_interval(rig: Rig, start_s: float, end_s: float) -> float:
    t = [m.t_s for m in rig.produced if start_s <= m.t_s <= end_s]
    return max(b - a for a, b in itertools.pairwise(t))


def test_wall_clock_stepped_by_hours(state_dir: Path) -> None:
    rig = build_rig(base_config(), speed=SPEED, state_dir=state_dir)
    rig.hooks.append(_stepper([(100.0, 6 * HOUR_S), (200.0, -2 * HOUR_S)]))  # type: ignore[arg-type]
    assert rig.run(330.0) == 0
    stored = rig.stored_metrics()
    lost = rig.lost_in_store()
    walls = [float(r["wall_s"]) for r in stored]  # type: ignore[arg-type]
    jumps = [b - a for a, b in itertools.pairwise(walls)]
    interval = _max_interval(rig, 60.0, 330.0)
    t = [m.t_s for m in rig.produced]
    shortest = min(b - a for a, b in itertools.pairwise(t))
    update_s = rig.app.cfg.dsp.update_s
    record(
        "clock_step_hours", title="Wall clock stepped +6 h, then -2 h",
        faults="clock: wall time jumps +6 h at 100 s and -2 h at 200 s (monotonic steady)",
        outcome="kept running, exit 0; rows stored under the stepped wall time",
        recovery=f"none needed: updates kept their {update_s:g} s cadence (longest interval "
                 f"{interval:.1f} s, simulated)",
        data_lost=lost, produced=len(rig.produced), memory=rig.memory_growth(),
        longest_interval_s=interval,
    )
    assert lost == 0
    # no stall (a 6-hour sleep) and no burst (catching up 2 hours): monotonic time rules
    assert interval <= 30.0 and shortest >= 0.2 * update_s
    # the store shows both steps, in order
    assert any(abs(j - 6 * HOUR_S) < 10.0 for j in jumps)
    assert any(abs(j + 2 * HOUR_S) < 10.0 for j in jumps)


def test_clock_set_months_forward_keeps_the_night(state_dir: Path) -> None:
    # First boot from an image built four months ago: NTP moves the clock 120 days
    # forward while the first session is being recorded (retention is 90 days).
    rig = build_rig(base_config(), speed=SPEED, state_dir=state_dir)
    rig.hooks.append(_stepper([(100.0, 120 * DAY_S)]))  # type: ignore[arg-type]
    assert rig.run(250.0) == 0
    lost = rig.lost_in_store()
    record(
        "clock_step_months", title="Wall clock set 120 days forward during the first night",
        faults="clock: wall time jumps +120 days at 100 s (stale image date; retention 90 d)",
        outcome="kept running, exit 0; retention did not delete the night being recorded",
        recovery="none needed: the session and all its updates kept",
        data_lost=lost, produced=len(rig.produced), memory=rig.memory_growth(),
    )
    assert lost == 0, f"{lost} updates deleted: retention removed the night being recorded"
