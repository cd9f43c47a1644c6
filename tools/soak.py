"""Soak test: a whole night of the appliance with random faults, memory and data checked.

Two modes, one command:

* default: a simulated 8-hour night at high speed (``--speed``, default 120x, four
  minutes of real time) on the reliability rig (``tests/reliability/rig.py``: the real
  driver, bleak client, DSP, stress model, policy, store writer over the fakes), with
  faults drawn from a seeded Poisson plan: I2C error stretches (1 %, 10 %, 100 %), the
  sensor unplugged, strap disconnects, stalls, malformed payloads, lost contact and
  out-of-range spells (``heartsong.sensors.ble_fake.FaultPlan``), the disk full under
  the store, and the wall clock stepped by hours;
* ``--realtime 600``: ten real minutes at 1x with the sound on a real PortAudio stream
  (the JACK dummy device that ``tools/with_jack_dummy.sh`` starts, PortAudio name
  ``system``) and MQTT to a real mosquitto (started here on a free port), with the broker
  killed and restarted, an I2C error stretch, a strap disconnect and an unplugged sensor.

Checks (exit code 1 when one fails): every metrics update is in the session store (and,
with MQTT, at the broker or in the on-disk outbox); memory growth after warm-up (the
first 30 simulated minutes, or the first minute in real time) is at most 5 MB by both
``tracemalloc`` (the device's code; the simulated world left out) and the resident set
size (the simulated night is run twice for this: tracemalloc's own bookkeeping inflates
the RSS of the run it traces); no audio underrun on the real-time path
(PortAudio's output-underflow flags counted by the engine, from one second after the
stream started). The figures go to a JSON file that ``tools/reliability_report.py``
puts in ``docs/RELIABILITY.md``.

Usage::

    .venv/bin/python tools/soak.py              # simulated night -> docs/soak-simulated.json
    tools/with_jack_dummy.sh .venv/bin/python tools/soak.py --realtime 600
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from heartsong.audio.engine import AudioEngine  # noqa: E402
from heartsong.audio.sinks import Sink  # noqa: E402
from heartsong.config import Config  # noqa: E402
from heartsong.sensors.ble_fake import FaultPlan, play_faults  # noqa: E402
from mosquitto_broker import MosquittoBroker, find_mosquitto  # noqa: E402
from reliability.figures import rss_mb  # noqa: E402
from reliability.rig import Rig, base_config, build_rig, disk_full  # noqa: E402

#: Most memory growth after warm-up the issue allows, in MB.
MAX_GROWTH_MB = 5.0
DEFAULT_OUT = {"simulated": REPO / "docs" / "soak-simulated.json",
               "realtime": REPO / "docs" / "soak-realtime.json"}


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``kind`` from ``t_s`` for ``duration_s`` (simulated s)."""

    t_s: float
    kind: str
    duration_s: float
    value: float = 0.0


def plan_faults(duration_s: float, seed: int, *, per_hour: float = 1.0) -> list[Fault]:
    """Faults of the rig's own kinds as Poisson processes, non-overlapping per kind.

    ``per_hour`` scales every rate (1.0: the night's plan).
    """
    rng = random.Random(seed)
    kinds: list[tuple[str, float, tuple[float, float]]] = [
        ("i2c", 2.0, (30.0, 300.0)),
        ("unplug", 0.5, (20.0, 180.0)),
        ("disk_full", 0.5, (60.0, 600.0)),
        ("clock_step", 0.25, (0.0, 0.0)),
    ]
    faults: list[Fault] = []
    for kind, rate, (lo, hi) in kinds:
        t = 120.0
        while True:
            t += rng.expovariate(rate * per_hour / 3600.0)
            if t >= duration_s - 60.0:
                break
            dur = rng.uniform(lo, hi)
            value = 0.0
            if kind == "i2c":
                value = rng.choice([0.01, 0.10, 1.0])
            elif kind == "clock_step":
                value = rng.choice([-1.0, 1.0, 3.0, 9.0]) * 3600.0
            faults.append(Fault(t, kind, dur, value))
            t += dur
    return sorted(faults, key=lambda f: f.t_s)


async def _inject(rig: Rig, fault: Fault) -> None:
    """Apply ``fault`` at its time and undo it after its duration."""
    clock = rig.clock
    await clock.sleep(fault.t_s - clock.monotonic())
    if fault.kind == "i2c" and rig.emulator is not None:
        rig.emulator.io_error_rate = fault.value
        await clock.sleep(fault.duration_s)
        rig.emulator.io_error_rate = 0.0
    elif fault.kind == "disk_full" and rig.writer is not None:
        with disk_full(rig.writer._store):
            await clock.sleep(fault.duration_s)
    elif fault.kind == "clock_step":
        clock.step_wall(fault.value)


#: The simulated world (person, fake strap, emulated sensor) is not the device: its
#: allocations are left out of the tracemalloc figure.
SIMULATION_ONLY = (
    tracemalloc.Filter(False, "*/heartsong/sensors/sim_*.py"),
    tracemalloc.Filter(False, "*/heartsong/sensors/simulated.py"),
    tracemalloc.Filter(False, "*/heartsong/sensors/ble_fake.py"),
    tracemalloc.Filter(False, "*/heartsong/sensors/max30102_emulator.py"),
    tracemalloc.Filter(False, tracemalloc.__file__),
)


def _traced_mb() -> float:
    """Live traced allocations of the device's code (the simulation left out), MB."""
    snap = tracemalloc.take_snapshot().filter_traces(SIMULATION_ONLY)
    return sum(stat.size for stat in snap.statistics("filename")) / 1e6


@dataclass
class MemoryProbe:
    """Samples RSS and tracemalloc; the baseline is taken at ``warm_s``."""

    warm_s: float
    every_s: float
    samples: list[dict[str, float]]
    snapshots: bool = False
    trace: bool = True
    rss0: float | None = None
    first: tracemalloc.Snapshot | None = None
    last: tracemalloc.Snapshot | None = None

    async def run(self, rig: Rig) -> None:
        clock = rig.clock
        await clock.sleep(self.warm_s - clock.monotonic())
        if self.trace:
            tracemalloc.start()
        self.rss0 = rss_mb()
        if self.snapshots and self.trace:
            self.first = tracemalloc.take_snapshot().filter_traces(SIMULATION_ONLY)
        while True:
            if rig.strap is not None:
                rig.strap.sent.clear()  # the fake strap's record for tests, not the device's
            self._sample(clock.monotonic())
            await clock.sleep(self.every_s)

    def _sample(self, t_s: float) -> None:
        assert self.rss0 is not None
        traced = _traced_mb() if self.trace else float("nan")
        # RSS without tracemalloc's own bookkeeping, which is not the appliance's memory
        rss = rss_mb() - tracemalloc.get_tracemalloc_memory() / 1e6 - self.rss0
        self.samples.append({"t_s": round(t_s, 1), "rss_mb": round(rss, 3),
                             "traced_mb": round(traced, 3)})

    def finish(self, t_s: float) -> None:
        """The last sample (call before the appliance shuts down)."""
        if self.rss0 is not None:
            if self.snapshots and self.trace:
                self.last = tracemalloc.take_snapshot().filter_traces(SIMULATION_ONLY)
            self._sample(t_s)

    def top_growth(self, n: int = 8) -> list[str]:
        """The ``n`` source lines whose live allocations grew most after warm-up."""
        if self.first is None or self.last is None:
            return []
        stats = self.last.compare_to(self.first, "lineno")
        return [str(s) for s in stats[:n]]

    def growth(self) -> tuple[float, float]:
        """(RSS growth, tracemalloc growth) in MB at the last sample."""
        if not self.samples:
            return float("nan"), float("nan")
        last = self.samples[-1]
        return last["rss_mb"], last["traced_mb"]


# ------------------------------------------------------------------------ broker (realtime)


@contextlib.contextmanager
def mosquitto(workdir: Path) -> Iterator[MosquittoBroker]:
    """A running mosquitto on a free port of 127.0.0.1, with persistence (its
    ``restart(seconds)`` is the broker outage)."""
    binary = find_mosquitto()
    if binary is None:
        raise SystemExit("soak: mosquitto not found (Debian package mosquitto)")
    data = workdir / "mosquitto-data"
    data.mkdir()
    broker = MosquittoBroker(binary, workdir, persistence_dir=data)
    try:
        broker.start()
    except RuntimeError as exc:
        raise SystemExit(f"soak: {exc}") from exc
    try:
        yield broker
    finally:
        broker.stop()


class Subscriber:
    """A persistent paho subscriber that keeps every state document's ``wall_s`` (live
    and late, with ``topic`` a wildcard)."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.seen: list[float] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-subscriber",
                        clean_session=False)
        c.reconnect_delay_set(1, 2)
        c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
        c.on_message = lambda cl, ud, msg: self.seen.append(
            round(float(json.loads(msg.payload)["wall_s"]), 3))
        c.connect(host, port)
        c.loop_start()
        self.client = c

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


# ------------------------------------------------------------------------------- the run


def _jack_sink(cfg: Config, engine: object) -> Sink:
    from heartsong.audio.device_sink import PyAudioSink

    assert isinstance(engine, AudioEngine)
    return PyAudioSink(engine, "system", watch=None)


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run one soak; returns its figures."""
    realtime = args.realtime is not None
    duration = float(args.realtime if realtime else args.hours * 3600.0)
    speed = 1.0 if realtime else float(args.speed)
    warm_s = 60.0 if realtime else 1800.0
    with tempfile.TemporaryDirectory(prefix="heartsong-soak-") as tmp, contextlib.ExitStack() as st:
        state = Path(tmp) / "state"
        state.mkdir(mode=0o700)
        overrides: dict[str, object] = {"sources.ble": True}
        sub = broker = None
        if realtime:
            broker = st.enter_context(mosquitto(Path(tmp)))
            overrides.update({"mqtt.enabled": True, "mqtt.host": broker.host,
                              "mqtt.port": broker.port, "audio.output": "device"})
        cfg = base_config(**overrides)
        rig = build_rig(cfg, speed=speed, state_dir=state, mqtt=realtime,
                        sink=_jack_sink if realtime else None, seed=args.seed)
        rig.keep_metrics = False
        if args.history is not None:  # what-if: the appliance keeping a shorter history
            rig.app.metrics_history = deque(maxlen=args.history)
            rig.app.events = deque(maxlen=args.history)
        if realtime:
            assert rig.mqtt is not None and broker is not None
            # state/# : the live topic and state/late, where what waited arrives
            sub = Subscriber(broker.host, broker.port, rig.mqtt.state_topic + "/#")
            st.callback(sub.close)
            sent: list[float] = []
            publish = rig.mqtt.publish_state

            def counting(state_doc: Any) -> None:
                sent.append(round(float(state_doc["wall_s"]), 3))
                publish(state_doc)

            rig.mqtt.publish_state = counting  # type: ignore[method-assign,assignment]
        per_hour = 6.0 if realtime else 1.0  # a short real run gets a denser plan
        faults = plan_faults(duration, args.seed, per_hour=per_hour)
        if realtime:
            faults = [f for f in faults if f.kind != "disk_full"] + [
                Fault(duration * 0.3, "unplug", 30.0)]
        for f in faults:
            if f.kind == "unplug" and rig.emulator is not None:
                rig.emulator.schedule_absence(f.t_s, f.t_s + f.duration_s)
        strap_plan = FaultPlan(disconnects_per_hour=2.0 * per_hour,
                               stalls_per_hour=1.0 * per_hour,
                               malformed_per_hour=4.0 * per_hour,
                               no_contact_per_hour=1.0 * per_hour,
                               leave_per_hour=0.5 * per_hour, seed=args.seed)
        strap_faults = strap_plan.schedule(duration - 60.0, start_s=60.0)
        probe = MemoryProbe(warm_s, 60.0 if realtime else 1800.0, [], snapshots=args.top,
                            trace=args.memory != "rss")
        underruns_from: list[int] = []

        async def main() -> int:
            loop = asyncio.get_running_loop()
            tasks = [asyncio.create_task(_inject(rig, f)) for f in faults
                     if f.kind != "unplug"]
            assert rig.strap is not None
            tasks.append(asyncio.create_task(play_faults(rig.strap, strap_faults)))
            tasks.append(asyncio.create_task(probe.run(rig)))

            async def mark_underruns() -> None:
                await asyncio.sleep(1.0)  # the stream runs; JACK's activation xrun is past
                underruns_from.append(rig.app.engine.underruns)

            tasks.append(asyncio.create_task(mark_underruns()))
            if broker is not None:
                outage = broker.restart

                async def broker_outage() -> None:
                    await rig.clock.sleep(duration * 0.5)
                    await loop.run_in_executor(None, outage, 20.0)

                tasks.append(asyncio.create_task(broker_outage()))
            async def end_snapshot() -> None:
                await rig.clock.sleep(duration - 2.0 * rig.app.cfg.dsp.update_s)
                probe.finish(rig.clock.monotonic())

            tasks.append(asyncio.create_task(end_snapshot()))
            try:
                return await rig.app.run(duration_s=duration)
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

        t0 = time.monotonic()
        code = asyncio.run(main())
        real_s = time.monotonic() - t0
        tracemalloc.stop()
        lost_store = rig.lost_in_store()
        lost_mqtt = None
        if realtime and sub is not None and rig.mqtt is not None:
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not set(sent) <= set(sub.seen):
                time.sleep(0.2)
            from heartsong.mqtt.spool import OUTBOX_FILE, Spool

            spool = Spool(state / OUTBOX_FILE)
            parked = len(spool)
            spool.close()
            lost_mqtt = max(0, len(set(sent) - set(sub.seen)) - parked)
        rss_growth, traced_growth = probe.growth()
        engine = rig.app.engine
        underruns = (engine.underruns - underruns_from[0]) if realtime and underruns_from \
            else None
        kinds = Counter(f.kind for f in faults) + Counter(f.kind for f in strap_faults)
        if broker is not None:
            kinds["broker_restart"] = 1
        figures: dict[str, Any] = {
            "mode": "realtime" if realtime else "simulated",
            "duration_s": duration, "speed": speed, "real_s": round(real_s, 1),
            "seed": args.seed, "exit_code": code, "memory": args.memory, "runs": 1,
            "faults": dict(sorted(kinds.items())),
            "history": args.history,
            "produced": len(rig.produced_t), "lost_store": lost_store, "lost_mqtt": lost_mqtt,
            "store_failed_commits": rig.writer.failed_commits if rig.writer else 0,
            "warm_s": warm_s, "rss_growth_mb": rss_growth,
            "tracemalloc_growth_mb": traced_growth, "memory_samples": probe.samples,
            "underruns": underruns, "top_growth": probe.top_growth(),
            "audio_frames": engine.frames_rendered if realtime else None,
            "load_average": os.getloadavg()[0],
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
    failures = []
    if code != 0:
        failures.append(f"exit code {code}")
    if lost_store or lost_mqtt:
        failures.append(f"lost metrics: store {lost_store}, mqtt {lost_mqtt}")
    if args.memory != "traced" and not rss_growth <= MAX_GROWTH_MB:
        failures.append(f"RSS growth {rss_growth:.2f} MB")
    if args.memory != "rss" and not traced_growth <= MAX_GROWTH_MB:
        failures.append(f"tracemalloc growth {traced_growth:.2f} MB")
    if underruns:
        failures.append(f"{underruns} audio underruns")
    figures["passed"] = not failures
    figures["failures"] = failures
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the soak, write its figures, print a summary; 0 when every check held."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--realtime", type=float, default=None, metavar="S",
                   help="run S real seconds at 1x with JACK audio and a real broker")
    p.add_argument("--hours", type=float, default=8.0, help="simulated hours (default 8)")
    p.add_argument("--speed", type=float, default=120.0,
                   help="simulation speed of the simulated night (default 120: 4 min a night)")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--memory", choices=("split", "rss", "traced", "both"), default="split",
                   help="split (default for the simulated night): the night twice, RSS "
                        "measured without tracemalloc (whose own bookkeeping grows the RSS), "
                        "then tracemalloc; rss / traced: one night, one measure; both: one "
                        "run, both measures (the real-time mode)")
    p.add_argument("--history", type=int, default=None, metavar="N",
                   help="what-if: the appliance keeps only N recent metrics and events in "
                        "memory (default: as built, app.HISTORY_LEN)")
    p.add_argument("--top", action="store_true",
                   help="also list the source lines whose allocations grew most")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON figures (default docs/soak-<mode>.json)")
    args = p.parse_args(argv)
    if args.realtime is not None:
        args.memory = "both"
    if args.memory == "split":
        rss = soak(argparse.Namespace(**{**vars(args), "memory": "rss"}))
        figures = soak(argparse.Namespace(**{**vars(args), "memory": "traced"}))
        figures.update(
            memory="split", rss_growth_mb=rss["rss_growth_mb"],
            rss_samples=rss["memory_samples"], runs=2,
            produced=rss["produced"] + figures["produced"],
            lost_store=rss["lost_store"] + figures["lost_store"],
            store_failed_commits=rss["store_failed_commits"] + figures["store_failed_commits"],
            exit_code=max(rss["exit_code"], figures["exit_code"]),
            real_s=rss["real_s"] + figures["real_s"],
            failures=rss["failures"] + figures["failures"],
        )
        figures["passed"] = not figures["failures"]
    else:
        figures = soak(args)
    out = args.out or DEFAULT_OUT[figures["mode"]]
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"soak {figures['mode']}: {figures['duration_s']:.0f} s at {figures['speed']:g}x in "
          f"{figures['real_s']:.0f} s real; faults {figures['faults']}; "
          f"{figures['produced']} updates, lost store {figures['lost_store']}, "
          f"mqtt {figures['lost_mqtt']}; memory growth RSS {figures['rss_growth_mb']:+.2f} MB, "
          f"tracemalloc {figures['tracemalloc_growth_mb']:+.2f} MB; underruns "
          f"{figures['underruns']}; -> {out}")
    for failure in figures["failures"]:
        print(f"soak: FAILED: {failure}", file=sys.stderr)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
