"""The disk fills up under the session store while the whole appliance runs.

The fault is injected at the SQLite layer of the store writer's own connection
(``PRAGMA max_page_count`` at the current size), so every commit that needs a new page
fails with ``SQLITE_FULL``, "database or disk is full", the error a full SD card gives,
and the writer's real rollback-and-retry path runs. The promises: the appliance keeps
running and measuring; the writer keeps the failed batch and retries each flush; once
space is back, every update measured during the outage is committed within a few flush
intervals; nothing is lost.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from heartsong.events import Metrics
from reliability.figures import record
from reliability.rig import Rig, base_config, build_rig, disk_full

SPEED = 100.0
FULL_FROM_S, FULL_UNTIL_S, END_S = 60.0, 240.0, 900.0
#: The backlog is committed within this many real seconds after space returns: one flush
#: interval (1 s) plus generous slack for a loaded machine.
CATCH_UP_BOUND_S = 5.0


def test_disk_full_for_three_minutes_loses_nothing(state_dir: Path) -> None:
    rig = build_rig(base_config(**{"sources.ble": True}), speed=SPEED, state_dir=state_dir)
    assert rig.writer is not None
    writer = rig.writer
    state: dict[str, Any] = {}

    def fault(r: Rig, m: Metrics) -> None:
        if FULL_FROM_S <= m.t_s < FULL_UNTIL_S and "ctx" not in state:
            ctx = disk_full(writer._store)
            ctx.__enter__()
            state["ctx"] = ctx
            state["committed_at_full"] = writer.committed
        elif m.t_s >= FULL_UNTIL_S and "ctx" in state and "freed" not in state:
            state["ctx"].__exit__(None, None, None)
            state["freed"] = time.monotonic()
            state["failed"] = writer.failed_commits
            state["committed_before_free"] = writer.committed
        elif "freed" in state and "caught_up" not in state and (
            writer.committed > int(state["committed_before_free"])
        ):
            state["caught_up"] = time.monotonic() - float(state["freed"])

    rig.hooks.append(fault)
    assert rig.run(END_S) == 0
    # the writer retried and caught up before shutdown: measure how long it took
    assert "freed" in state and "caught_up" in state, "the store never caught up"
    caught_up = float(state["caught_up"])
    failed = int(state["failed"])
    lost = rig.lost_in_store()
    committed_during = int(state["committed_before_free"]) - int(state["committed_at_full"])
    record(
        "disk_full", title="Disk full under the session store",
        faults="SQLite SQLITE_FULL ('database or disk is full') on every commit for 180 s",
        outcome="kept running, exit 0; failed commits logged and retried",
        recovery=f"backlog committed {caught_up:.1f} s (real) after space returned, seen at "
                 f"the next update (writer flushes every {writer.flush_s:g} s real; bound "
                 f"{CATCH_UP_BOUND_S:.0f} s); {failed} commits failed meanwhile",
        data_lost=lost, produced=len(rig.produced), memory=rig.memory_growth(),
        recovery_real_s=caught_up, failed_commits=failed, committed_during_outage=committed_during,
    )
    assert failed >= 1, "the disk-full fault never reached a commit"
    assert committed_during == 0  # nothing could be written while the disk was full
    assert writer.dropped == 0
    assert caught_up <= CATCH_UP_BOUND_S
    assert lost == 0, f"{lost} metric updates missing from the store after the disk-full"
