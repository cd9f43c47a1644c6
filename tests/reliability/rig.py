"""The whole appliance in simulation, with a handle on every fake that a fault goes through.

:func:`build_rig` assembles :class:`heartsong.app.Appliance` from the same public parts
that :func:`heartsong.wiring.build_demo` uses (the real MAX30102 driver over the register
emulator, the real bleak client over the fake radio, the real DSP, stress model, policy,
store writer and MQTT link), but keeps the fakes in reach so a test can break them:

* ``rig.emulator``: the fake SMBus (``io_error_rate``, ``garbage_rate``, ``stuck``,
  ``schedule_absence``);
* ``rig.strap``: the fake chest strap (``drop_link``, ``stall``, ``leave``);
* ``rig.clock``: a :class:`SteppableClock` whose wall time can jump (NTP at boot);
* the store writer's SQLite connection (disk full) and the broker (killed, restarted).

Every metrics update the appliance makes is counted in :attr:`Rig.produced` through the
``on_status`` hook, so a test can compare what was measured with what was stored,
published or spooled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from heartsong.app import Appliance, Status
from heartsong.audio.sinks import NullSink, Sink
from heartsong.clock import ScaledClock
from heartsong.config import Config, with_overrides
from heartsong.dsp.pipeline import warm_up as dsp_warm_up
from heartsong.events import Metrics
from heartsong.mqtt.link import MqttLink
from heartsong.mqtt.spool import OUTBOX_FILE
from heartsong.sensors.ble_fake import FakeStrap, make_demo_air
from heartsong.sensors.ble_hr import BleHrClient, BleSettings
from heartsong.sensors.ble_source import BleHeartSource
from heartsong.sensors.max30102_emulator import Max30102Emulator
from heartsong.sensors.ppg_source import Max30102Source
from heartsong.sensors.simulated import PpgSynth, SimulatedPerson, SimulatedStrap
from heartsong.sensors.sources import HeartSource
from heartsong.store.db import Store, db_path
from heartsong.store.recorder import SessionRecorder
from heartsong.store.writer import StoreWriter
from heartsong.stress.estimator import make_stress_estimator
from heartsong.wiring import (
    SimWorld,
    make_engine,
    make_mqtt,
    person_params,
    warm_up_simulation,
)
from reliability.figures import rss_mb

#: A fixed bedtime (2026-11-30 22:30 UTC) so runs are repeatable.
START_WALL_S = 1_796_077_800.0


class SteppableClock(ScaledClock):
    """A :class:`ScaledClock` whose wall time can be stepped (NTP setting the clock).

    Monotonic time never jumps; :meth:`step_wall` moves only :meth:`wall`.
    """

    def __init__(self, speed: float, start_wall: float = START_WALL_S) -> None:
        super().__init__(speed, start_wall=start_wall)
        self.wall_offset_s = 0.0

    def step_wall(self, seconds: float) -> None:
        """Jump the wall clock by ``seconds`` (positive: forward)."""
        self.wall_offset_s += float(seconds)

    def wall(self) -> float:
        """Unix time in seconds, including every step so far."""
        return super().wall() + self.wall_offset_s


@dataclass
class Rig:
    """One assembled appliance and the fakes behind it."""

    app: Appliance
    clock: SteppableClock
    person: SimulatedPerson
    emulator: Max30102Emulator | None = None
    strap: FakeStrap | None = None
    ble_client: BleHrClient | None = None
    ppg_source: Max30102Source | None = None
    writer: StoreWriter | None = None
    state_dir: Path | None = None
    mqtt: MqttLink | None = None
    produced: list[Metrics] = field(default_factory=list)
    #: Simulated time (s) of every update, kept even when ``keep_metrics`` is False.
    produced_t: list[float] = field(default_factory=list)
    #: Keep every update's Metrics in :attr:`produced` (the soak turns this off, so the
    #: harness does not hold a night of objects the appliance would have freed).
    keep_metrics: bool = True
    hooks: list[Callable[[Rig, Metrics], None]] = field(default_factory=list)
    #: Simulated seconds after which the process counts as warmed up (memory baseline).
    warm_s: float = 60.0
    rss_warm_mb: float | None = None

    def on_status(self, status: Status) -> None:
        """The appliance's status hook: count the update, then run the test's hooks."""
        self.produced_t.append(status.metrics.t_s)
        if self.keep_metrics:
            self.produced.append(status.metrics)
        if self.rss_warm_mb is None and status.metrics.t_s >= self.warm_s:
            self.rss_warm_mb = rss_mb()
        for hook in self.hooks:
            hook(self, status.metrics)

    def run(self, duration_s: float) -> int:
        """Run the appliance for ``duration_s`` simulated seconds; its exit code."""
        return asyncio.run(self.app.run(duration_s=duration_s))

    @contextlib.contextmanager
    def running(self, duration_s: float = 3600.0) -> Iterator[list[int]]:
        """Run the appliance in a background thread while the block injects faults.

        Yields a list that holds the exit code once the block has left: leaving asks the
        appliance to stop (as SIGTERM does) and waits up to 60 s for it.
        """
        loop_box: list[asyncio.AbstractEventLoop] = []
        result: list[int] = []

        async def main() -> int:
            loop_box.append(asyncio.get_running_loop())
            return await self.app.run(duration_s=duration_s)

        runner = threading.Thread(target=lambda: result.append(asyncio.run(main())),
                                  name="rig-appliance")
        runner.start()
        try:
            yield result
        finally:
            if loop_box:
                loop_box[0].call_soon_threadsafe(self.app.request_stop)
            runner.join(60)

    def memory_growth(self) -> str:
        """RSS growth from warm-up to now, as the report shows it."""
        if self.rss_warm_mb is None:
            return "n/a (ended before warm-up)"
        end_s = self.produced_t[-1] if self.produced_t else 0.0
        return (f"{rss_mb() - self.rss_warm_mb:+.1f} MB RSS "
                f"({self.warm_s:.0f}-{end_s:.0f} s)")

    def stored_metrics(self) -> list[dict[str, object]]:
        """Every metrics row in the session store (all sessions), oldest first."""
        assert self.state_dir is not None
        store = Store(db_path(self.state_dir))
        try:
            rows: list[dict[str, object]] = []
            for s in store.sessions():
                rows.extend(store.metrics(s.id))
            return rows
        finally:
            store.close()

    def lost_in_store(self) -> int:
        """Metrics updates produced but not found in the store (matched by ``t_s``)."""
        stored = {round(float(r["t_s"]), 6) for r in self.stored_metrics()}  # type: ignore[arg-type]
        return sum(1 for t in self.produced_t if round(t, 6) not in stored)

    def metric_times(self, source: str | None = None) -> list[float]:
        """Simulated times (s) of the updates with a heart rate (from ``source`` if given)."""
        return [
            m.t_s for m in self.produced
            if m.hr_bpm is not None and (source is None or m.source == source)
        ]


def first_after(times: list[float], t_s: float) -> float | None:
    """The first time in ``times`` at or after ``t_s`` (None if there is none)."""
    return next((t for t in times if t >= t_s), None)


def longest_gap(times: list[float], start_s: float, end_s: float) -> float:
    """Longest interval (s) without an element of ``times`` inside ``[start_s, end_s]``."""
    inside = [start_s, *(t for t in times if start_s < t < end_s), end_s]
    return max(b - a for a, b in itertools.pairwise(inside))


def base_config(**overrides: object) -> Config:
    """The demo's defaults for a calm sleeper, with ``overrides`` (dotted keys)."""
    base: dict[str, object] = {
        "audio.output": "none",
        "simulation.stress": 0.0,
        "simulation.hr_bpm": 58.0,
        "simulation.motion_artifacts_per_hour": 0.0,
    }
    base.update(overrides)
    return with_overrides(Config(), base)


_WARM = False


def _warm_up(fs_hz: float) -> None:
    """Compile the numba kernels once per process, before any simulated time starts."""
    global _WARM
    if _WARM:
        return
    dsp_warm_up()
    warm_up_simulation(fs_hz)
    _WARM = True


def build_rig(
    cfg: Config,
    *,
    speed: float,
    state_dir: Path | None = None,
    mqtt: bool = False,
    sink: Callable[[Config, object], Sink] | None = None,
    seed: int = 0,
) -> Rig:
    """Assemble the appliance over the fakes.

    Parameters
    ----------
    cfg:
        Configuration (``sources.ppg`` / ``sources.ble`` choose the sources; ``mqtt.*``
        the broker when ``mqtt``).
    speed:
        Simulated seconds per real second.
    state_dir:
        Session store and MQTT outbox folder; None: no store, outbox in memory.
    mqtt:
        Build the broker link from ``cfg.mqtt`` (``heartsong.wiring.make_mqtt``).
    sink:
        Builds the audio sink from (cfg, engine); default a :class:`NullSink`.
    seed:
        Seed of the person, the sensor noise and the radio.
    """
    sim = cfg.simulation
    engine = make_engine(cfg, seed=seed)
    engine.warm_up()
    _warm_up(sim.ppg_fs_hz)
    clock = SteppableClock(speed)
    person = SimulatedPerson(person_params(cfg), seed=seed)
    sources: list[HeartSource] = []
    emulator = ppg_source = strap = client = None
    if cfg.sources.ppg:
        synth = PpgSynth(person, sim.ppg_fs_hz, seed=seed + 1)
        emulator = Max30102Emulator(
            clock.monotonic, synth, address=cfg.sensor.address, clock_error=0.004,
            elastic_fifo=True, seed=seed + 2,
        )
        bus = emulator
        ppg_source = Max30102Source(lambda: bus, clock, cfg.sensor, poll=True,
                                    bus_label="emulated I2C bus")
        sources.append(ppg_source)
    if cfg.sources.ble:
        air, strap = make_demo_air(SimulatedStrap(person), clock, seed=seed)
        client = BleHrClient(
            BleSettings(stall_timeout_s=cfg.ble.stall_timeout_s), clock, air.scanner,
            air.client, rng=random.Random(seed),
        )
        sources.append(BleHeartSource(client))
    writer = recorder = None
    if state_dir is not None:
        writer = StoreWriter(db_path(state_dir), flush_s=cfg.store.flush_s,
                             retention_days=cfg.store.retention_days, wall=clock.wall)
        recorder = SessionRecorder(writer, record_beats=cfg.store.record_beats,
                                   update_s=cfg.dsp.update_s)
    link = None
    if mqtt:
        link = make_mqtt(cfg, spool_path=None if state_dir is None
                         else state_dir / OUTBOX_FILE)
    rig_box: list[Rig] = []
    app = Appliance(
        cfg,
        clock=clock,
        sources=sources,
        engine=engine,
        sink=sink(cfg, engine) if sink is not None else NullSink(),
        estimator=make_stress_estimator(
            Path(cfg.stress.model_dir) if cfg.stress.model_dir else None
        ),
        mqtt=link,
        world=SimWorld(person),
        on_status=lambda s: rig_box[0].on_status(s),
        recorder=recorder,
    )
    rig = Rig(app=app, clock=clock, person=person, emulator=emulator, strap=strap,
              ble_client=client, ppg_source=ppg_source, writer=writer, state_dir=state_dir,
              mqtt=link)
    rig_box.append(rig)
    return rig


@contextlib.contextmanager
def disk_full(store: Store) -> Iterator[None]:
    """While inside, the session database cannot grow: SQLite answers every commit that
    needs a new page with ``SQLITE_FULL`` ("database or disk is full"), the error a full
    SD card gives. Done at the SQLite layer (``PRAGMA max_page_count`` on the store's own
    connection, e.g. the writer's ``_store``), so the real commit, rollback and retry code
    runs."""
    db: sqlite3.Connection = store.db
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    db.execute(f"PRAGMA max_page_count = {pages}")
    try:
        yield
    finally:
        db.execute("PRAGMA max_page_count = 1073741823")
