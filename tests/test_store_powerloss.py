"""Power-loss safety: a writer process killed with SIGKILL at random moments, many times.

After every kill the database must pass ``PRAGMA integrity_check`` and hold a contiguous
run of updates (sequence numbers and sample indices without holes) that ends no more than
the writer's flush interval (plus the scheduling jitter the writer itself saw) before the
kill. Every restart reopens the crashed database (WAL recovery) and continues the series.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heartsong.store.db import Store

pytestmark = pytest.mark.slow

KILLS = 30
PERIOD_S = 0.005  # one metrics update every 5 ms: 200 rows a second to lose

# The writer process: resumes the series where the database ends, announces "ready",
# then records updates (and beats and events) as fast as PERIOD_S allows until killed.
CHILD = r"""
import sys, time
from heartsong.events import Event, Metrics
from heartsong.store.db import Store
from heartsong.store.recorder import SessionRecorder
from heartsong.store.writer import StoreWriter

path, flush_s, period_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = Store(path)
row = s.db.execute("SELECT MAX(t_s) FROM metrics").fetchone()[0]
s.close()
k = 0 if row is None else int(row) + 1
rec = SessionRecorder(StoreWriter(path, flush_s=flush_s, retention_days=0))
rec.start_session(time.time(), "calm", "rain")
print("ready", flush=True)
next_t = time.monotonic()
while True:
    rec.on_metrics(Metrics(t_s=float(k), wall_s=time.time(), hr_bpm=60.0 + k % 10,
                           rmssd_ms=40.0, source="ble"), pacer_bpm=6.0, soundscape="rain")
    rec.on_beats([float(k)], "ble")
    if k % 50 == 0:
        rec.on_event(Event(float(k), time.time(), "adaptation", f"update {k}", {"k": k}))
    k += 1
    next_t += period_s
    time.sleep(max(0.0, next_t - time.monotonic()))
"""


def _check(path: Path, t_ready: float, t_kill: float, flush_s: float, before: int) -> int:
    store = Store(path)
    try:
        assert store.integrity() == "ok"
        rows = store.db.execute("SELECT seq, t_s, wall_s FROM metrics ORDER BY seq").fetchall()
        n = len(rows)
        seqs = [r[0] for r in rows]
        idx = [int(r[1]) for r in rows]
        assert seqs == list(range(1, n + 1)), "sequence numbers have a hole"
        assert idx == list(range(n)), "the series has a hole"
        # The newest stored update of this run; "ready" when the kill came before the
        # first commit.
        walls = [t_ready] + [r[2] for r in rows[before:]]
        jitter = max((b - a for a, b in itertools.pairwise(walls[1:])), default=0.0)
        lost_s = t_kill - walls[-1]
        # What the kill may take: the batch since the last commit (<= flush_s) and the
        # commit in progress, whose own latency shows up as the jitter it caused.
        assert lost_s <= flush_s + jitter + 0.25, (lost_s, flush_s, jitter)
        beats = store.db.execute("SELECT MAX(t_s), COUNT(*) FROM beats").fetchone()
        if n:  # beats share the updates' transactions: at most the last one is behind
            assert int(beats[0]) >= n - 2
        open_sessions = store.db.execute(
            "SELECT COUNT(*) FROM sessions WHERE end_wall_s IS NULL").fetchone()[0]
        assert open_sessions <= 1  # the last run's; earlier ones were closed on reopen
        return n
    finally:
        store.close()


def test_kill_9_never_corrupts_and_loses_at_most_the_last_flush(tmp_path: Path) -> None:
    rng = random.Random(20240510)
    path = tmp_path / "state" / "sessions.sqlite3"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "firmware")
    total = 0
    for i in range(KILLS):
        flush_s = 1.0 if i % 2 == 0 else 0.25
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(flush_s), str(PERIOD_S)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == "ready", child.stderr.read() if child.stderr else line
            t_ready = time.time()
            time.sleep(rng.uniform(0.05, 1.6))
            t_kill = time.time()
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdout, child.stderr):
                if stream is not None:
                    stream.close()
        assert child.returncode == -signal.SIGKILL
        committed_before = total
        total = _check(path, t_ready, t_kill, flush_s, total)
    assert total > committed_before > 0  # the runs did store data, and kept it
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
