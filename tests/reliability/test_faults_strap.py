"""The chest strap drops its link and stalls while the whole appliance runs.

Faults go through the fake radio under the real bleak client: the link breaks
(``FakeStrap.drop_link``), and later the link stays up while notifications stop reaching
the host (``FakeStrap.stall``, the BlueZ failure). The promises: the appliance keeps
running on the PPG while the strap is away (the heart rate is never interrupted for more
than three updates); a stall is detected within ``ble.stall_timeout_s`` (measured
with a bound of twice that); the strap is the active source again within the longest reconnect
back-off plus the fusion's hysteresis; every update is stored. Times are simulated.
"""

from __future__ import annotations

from pathlib import Path

from heartsong.events import Metrics
from heartsong.sensors.fusion import RETURN_AFTER_S
from reliability.figures import record
from reliability.rig import Rig, base_config, build_rig, longest_gap

SPEED = 40.0
#: HR from either source may pause at most three updates during a strap fault (plus
#: slack for a loaded machine running the simulation fast), s.
FALLBACK_GAP_S = 20.0
#: The strap is back as the active source within this long after a fault, s: the client's
#: longest reconnect back-off (ble_hr's default 30 s) plus the fusion's hysteresis.
RETURN_BOUND_S = 30.0 + RETURN_AFTER_S + 15.0
DROP_AT_S, STALL_AT_S, END_S = 150.0, 270.0, 420.0


def _faults(rig: Rig, m: Metrics) -> None:
    assert rig.strap is not None
    if m.t_s >= DROP_AT_S and not getattr(rig, "_dropped", False):
        rig.strap.drop_link()
        rig._dropped = True  # type: ignore[attr-defined]
    if m.t_s >= STALL_AT_S and not getattr(rig, "_stalled", False):
        rig.strap.stall()
        rig._stalled = True  # type: ignore[attr-defined]


def _settled_on_strap(rig: Rig, fault_s: float, until_s: float) -> float | None:
    """First update time after ``fault_s`` from which every update until ``until_s``
    has the strap's heart rate (None if the strap never settled back)."""
    window = [m for m in rig.produced if fault_s <= m.t_s < until_s]
    for k, m in enumerate(window):
        if all(w.source == "ble" and w.hr_bpm is not None for w in window[k:]):
            return m.t_s
    return None


def test_strap_disconnect_and_stall(state_dir: Path) -> None:
    rig = build_rig(base_config(**{"sources.ble": True}), speed=SPEED, state_dir=state_dir)
    rig.hooks.append(_faults)
    assert rig.run(END_S) == 0
    assert rig.ble_client is not None
    stats = rig.ble_client.stats
    any_hr = rig.metric_times()
    drop_t = next(m.t_s for m in rig.produced if m.t_s >= DROP_AT_S)
    stall_t = next(m.t_s for m in rig.produced if m.t_s >= STALL_AT_S)
    back_after_drop = _settled_on_strap(rig, drop_t, stall_t)
    back_after_stall = _settled_on_strap(rig, stall_t, END_S + 1.0)
    gap_drop = longest_gap(any_hr, drop_t, STALL_AT_S)
    gap_stall = longest_gap(any_hr, stall_t, END_S)
    lost = rig.lost_in_store()
    assert back_after_drop is not None and back_after_stall is not None
    r_drop, r_stall = back_after_drop - drop_t, back_after_stall - stall_t
    reconnect = max(stats.reconnect_s) if stats.reconnect_s else float("nan")
    stall_detect = max(stats.stall_detect_s) if stats.stall_detect_s else float("nan")
    record(
        "strap_disconnect", title="BLE strap link drops",
        faults="fake radio: FakeStrap.drop_link() (host sees a disconnection)",
        outcome="kept running, exit 0; PPG took over, strap reconnected",
        recovery=f"link back in {reconnect:.1f} s; strap the active source from "
                 f"{r_drop:.0f} s on (bound {RETURN_BOUND_S:.0f} s); "
                 f"longest HR gap {gap_drop:.1f} s (bound {FALLBACK_GAP_S:.0f} s), simulated",
        data_lost=lost, produced=len(rig.produced), memory=rig.memory_growth(),
        recovery_s=r_drop, reconnect_s=reconnect, hr_gap_s=gap_drop, disconnects=stats.disconnects,
    )
    record(
        "strap_stall", title="BLE strap notifications stall (link stays up)",
        faults="fake radio: FakeStrap.stall() (notifications stop, no disconnect)",
        outcome="kept running, exit 0; stall detected, link closed and reopened",
        recovery=f"stall detected in {stall_detect:.1f} s; strap active again after "
                 f"{r_stall:.0f} s (bound {RETURN_BOUND_S:.0f} s); longest HR gap "
                 f"{gap_stall:.1f} s, simulated",
        data_lost=lost, produced=len(rig.produced), memory=rig.memory_growth(),
        recovery_s=r_stall, stall_detect_s=stall_detect, hr_gap_s=gap_stall,
    )
    assert stats.disconnects >= 1 and stats.stalls >= 1
    assert stats.connects >= 3  # first connect, after the drop, after the stall
    assert stall_detect <= 2.0 * rig.app.cfg.ble.stall_timeout_s
    assert gap_drop <= FALLBACK_GAP_S and gap_stall <= FALLBACK_GAP_S
    assert r_drop <= RETURN_BOUND_S and r_stall <= RETURN_BOUND_S
    assert lost == 0
