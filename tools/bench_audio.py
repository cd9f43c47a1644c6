#!/usr/bin/env python3
"""Benchmark the audio engine: real-time factor per preset, callback times, output latency.

Run it with a JACK dummy server (a headless audio device with a real clock) so the
callback is also timed on a real PortAudio stream::

    tools/with_jack_dummy.sh .venv/bin/python tools/bench_audio.py

It reports, on one CPU core (``--cpu``):

1. real-time factor of each preset at its defaults: seconds of audio rendered per second
   of CPU, rendering in callback-sized blocks (target >= 200x, so a Pi Zero 2 W, roughly
   10-20x slower, keeps a wide margin);
2. the callback's duration offline (``AudioEngine.process_callback`` called back to back)
   under a stress script (a control change every 100 ms, a preset switch every 10 s, so
   crossfades run two presets at once): mean, p99.9 and worst against the buffer period
   (target p99.9 <= 10 % of it), as thread CPU time and as wall-clock time;
3. the same measured inside the real PortAudio callback on the JACK dummy device for
   ``--jack-seconds`` of real time (wall clock, in the audio thread), with the underrun
   count from one second after the start (JACK reports an xrun while it activates a new
   client);
4. the output latency PortAudio reports for a stream at default settings (target
   <= 20 ms);
5. how late a real-time thread wakes up on this host (``--stall-seconds``), with nothing
   of the engine running: the floor under every audio deadline here. A JACK period
   shorter than the worst stall gives xruns whatever the callback does (the JACK dummy
   driver itself reports "JackTimedDriver::Process XRun" when it wakes past a period).

Timing adds a ``perf_counter_ns`` pair around each callback (two small int objects): this
is the benchmark's own cost, not the engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from heartsong.audio.engine import AudioEngine
from heartsong.audio.portaudio import PortAudioBackend
from heartsong.audio.soundscapes import PRESETS
from heartsong.errors import AudioDeviceError

TARGET_RT = 200.0
TARGET_P999_FRACTION = 0.10
TARGET_LATENCY_S = 0.020
FRAMES = 256
RATE = 48000


def _engine(name: str, seed: int = 0) -> AudioEngine:
    engine = AudioEngine(sample_rate_hz=RATE, buffer_frames=FRAMES, max_volume_db=-6.0, seed=seed)
    defaults = PRESETS[name].defaults()
    engine.set_params(soundscape=name, playing=True, **defaults)
    engine.warm_up()
    return engine


def realtime_factor(name: str, seconds: float, repeats: int) -> dict[str, float]:
    """Seconds of audio per CPU second for preset ``name`` (median and best of repeats)."""
    engine = _engine(name)
    buf = np.zeros((FRAMES, 2), dtype=np.float32)
    calls = max(1, round(seconds * RATE / FRAMES))
    for _ in range(round(2.0 * RATE / FRAMES)):  # past the fade-in
        engine.render(buf)
    factors = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(calls):
            engine.render(buf)
        cpu = time.process_time() - t0
        factors.append(calls * FRAMES / RATE / max(cpu, 1e-9))
    return {"median_x": statistics.median(factors), "best_x": max(factors)}


class StressScript:
    """A control change every 100 ms and a preset switch every 10 s, seeded."""

    def __init__(self, engine: AudioEngine, seed: int = 1) -> None:
        self.engine = engine
        self.rng = np.random.default_rng(seed)
        self.names = list(PRESETS)
        self.step = 0

    def next(self) -> None:
        preset = PRESETS[self.names[(self.step // 100) % len(self.names)]]
        values: dict[str, object] = {"soundscape": preset.name, "playing": True}
        for key, rng in preset.ranges().items():
            if rng is not None and key != "volume_db":
                values[key] = float(self.rng.uniform(rng.lo, rng.hi))
        values["volume_db"] = float(self.rng.uniform(-40.0, -10.0))
        self.engine.set_params(**values)
        self.step += 1


def _summary(durations_ns: np.ndarray, period_s: float) -> dict[str, float]:
    d_us = durations_ns / 1000.0
    period_us = period_s * 1e6
    return {
        "callbacks": int(d_us.size),
        "mean_us": float(d_us.mean()),
        "p99_9_us": float(np.percentile(d_us, 99.9)),
        "worst_us": float(d_us.max()),
        "period_us": period_us,
        "p99_9_of_period": float(np.percentile(d_us, 99.9) / period_us),
        "worst_of_period": float(d_us.max() / period_us),
    }


def offline_callbacks(seconds: float) -> dict[str, Any]:
    """Time ``process_callback`` back to back over ``seconds`` of audio under the stress script.

    Reports the thread's CPU time per callback (what the callback costs, whatever else the
    machine runs) and, for reference, its wall-clock time (which also counts any moment the
    operating system gave the core to another process).
    """
    engine = _engine(next(iter(PRESETS)))
    script = StressScript(engine)
    per_change = round(0.1 * RATE / FRAMES)
    calls = round(seconds * RATE / FRAMES)
    cpu = np.zeros(calls, dtype=np.int64)
    wall = np.zeros(calls, dtype=np.int64)
    cpu_clock = time.thread_time_ns
    wall_clock = time.perf_counter_ns
    for i in range(calls):
        if i % per_change == 0:
            script.next()
        w0 = wall_clock()
        c0 = cpu_clock()
        engine.process_callback(None, FRAMES, None, 0)
        cpu[i] = cpu_clock() - c0
        wall[i] = wall_clock() - w0
    out: dict[str, Any] = _summary(cpu, FRAMES / RATE)
    out["wall"] = _summary(wall, FRAMES / RATE)
    return out


def jack_callbacks(seconds: float, device: str) -> dict[str, Any]:
    """Time the callback inside a real PortAudio stream (JACK dummy) for ``seconds``."""
    engine = _engine(next(iter(PRESETS)))
    capacity = round(seconds * RATE / FRAMES * 1.5) + 1000
    durations = np.zeros(capacity, dtype=np.int64)
    count = [0]
    clock = time.perf_counter_ns
    callback = engine.process_callback

    def timed(in_data: bytes | None, frames: int, info: Any, status: int) -> tuple[bytes, int]:
        t0 = clock()
        result = callback(in_data, frames, info, status)
        i = count[0]
        if i < capacity:
            durations[i] = clock() - t0
        count[0] = i + 1
        return result

    backend = PortAudioBackend()
    try:
        wanted = [d for d in backend.devices() if device.casefold() in d.name.casefold()]
        if not wanted:
            raise AudioDeviceError(f"no output matching {device!r}")
        stream = backend.open(wanted[0], RATE, FRAMES, timed)
        script = StressScript(engine)
        stream.start()
        try:
            # JACK reports an xrun while it activates a new client: count from 1 s in
            time.sleep(1.0)
            underruns0 = engine.underruns
            first = count[0]
            t_start = time.monotonic()
            steps = 0
            while time.monotonic() - t_start < seconds:
                script.next()
                steps += 1
                time.sleep(max(0.0, t_start + 0.1 * steps - time.monotonic()))
            elapsed = time.monotonic() - t_start
            last = count[0]
        finally:
            stream.stop()
            stream.close()
    finally:
        backend.close()
    out: dict[str, Any] = _summary(durations[first : min(last, capacity)], FRAMES / RATE)
    out.update(
        device=wanted[0].name,
        host_api=wanted[0].host_api,
        wall_s=elapsed,
        expected_callbacks=int(elapsed * RATE / FRAMES),
        underruns=engine.underruns - underruns0,
        underruns_at_activation=underruns0,
    )
    return out


def default_latency() -> dict[str, Any]:
    """Output latency PortAudio reports for a stream on the default output, default settings."""
    backend = PortAudioBackend()
    try:
        device = backend.default_device()
        if device is None:
            raise AudioDeviceError("no default output")
        engine = AudioEngine(sample_rate_hz=RATE, buffer_frames=FRAMES)
        stream = backend.open(device, RATE, FRAMES, engine.process_callback)
        try:
            latency = stream.latency_s
        finally:
            stream.close()
    finally:
        backend.close()
    return {
        "device": device.name,
        "host_api": device.host_api,
        "stream_latency_ms": 1000.0 * latency,
        "device_default_low_ms": 1000.0 * device.default_low_latency_s,
    }


#: JACK periods (frames) against which host stalls are counted.
STALL_PERIODS = (256, 512, 1024, 2048)


def host_stalls(seconds: float, tick_s: float = 0.001, priority: int = 10) -> dict[str, Any]:
    """How late this thread wakes from ``tick_s`` sleeps kept on an absolute schedule.

    Runs SCHED_FIFO at ``priority`` (the JACK dummy driver's default) where permitted, so a
    late wake-up is not another process taking the core: it is the kernel or, on a virtual
    machine, the hypervisor not running the virtual CPU. Counts wake-ups later than each
    period of ``STALL_PERIODS`` at ``RATE`` (lateness in ms; the schedule restarts after a
    late tick, as the JACK dummy driver's does).
    """
    policy = "SCHED_OTHER"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        policy = f"SCHED_FIFO {priority}"
    except (AttributeError, PermissionError, OSError):
        pass
    late_ms: list[float] = []
    ticks = 0
    try:
        clock = time.monotonic
        end = clock() + seconds
        deadline = clock()
        while True:
            deadline += tick_s
            time.sleep(max(0.0, deadline - clock()))
            now = clock()
            ticks += 1
            if now - deadline > 1e-3:
                late_ms.append(1000.0 * (now - deadline))
                deadline = now
            if now >= end:
                break
    finally:
        if policy != "SCHED_OTHER":
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    periods = {
        f"over_{n}_frames": sum(x > 1000.0 * n / RATE for x in late_ms) for n in STALL_PERIODS
    }
    return {
        "policy": policy,
        "seconds": seconds,
        "ticks": ticks,
        "late_over_1ms": len(late_ms),
        "worst_ms": max(late_ms, default=0.0),
        **periods,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0,
                   help="audio seconds per real-time-factor repeat (default 10)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per preset (default 3)")
    p.add_argument("--callback-seconds", type=float, default=120.0,
                   help="audio seconds of offline callback timing (default 120)")
    p.add_argument("--jack-seconds", type=float, default=30.0,
                   help="real seconds on the JACK device; 0 skips it (default 30)")
    p.add_argument("--stall-seconds", type=float, default=30.0,
                   help="seconds of the host wake-up probe; 0 skips it (default 30)")
    p.add_argument("--device", default="system", help="output name for --jack-seconds")
    p.add_argument("--cpu", type=int, default=0, help="CPU core to run on (default 0)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    report: dict[str, Any] = {"rate_hz": RATE, "frames": FRAMES, "cpu": args.cpu}
    print(f"heartsong audio benchmark: {RATE} Hz, {FRAMES}-frame buffers "
          f"({1000 * FRAMES / RATE:.2f} ms), pinned to CPU {args.cpu}")

    print(f"\n1. real-time factor per preset at its defaults (target >= {TARGET_RT:.0f}x):")
    rt: dict[str, Any] = {}
    for name in PRESETS:
        r = realtime_factor(name, args.seconds, args.repeats)
        rt[name] = r
        flag = "ok" if r["median_x"] >= TARGET_RT else "BELOW TARGET"
        print(f"   {name:16s} {r['median_x']:7.0f}x median, {r['best_x']:7.0f}x best   {flag}")
    report["realtime_factor"] = rt

    def show(s: dict[str, Any], judged: bool = True) -> None:
        flag = "ok" if s["p99_9_of_period"] <= TARGET_P999_FRACTION else "ABOVE TARGET"
        flag = flag if judged else "(context)"
        print(f"   {s['callbacks']} callbacks: mean {s['mean_us']:.1f} us, p99.9 "
              f"{s['p99_9_us']:.1f} us ({100 * s['p99_9_of_period']:.2f} % of "
              f"{s['period_us']:.0f} us), worst {s['worst_us']:.1f} us "
              f"({100 * s['worst_of_period']:.2f} %)   {flag}")

    print(f"\n2. callback time offline, stress script, {args.callback_seconds:g} s of audio "
          f"(target p99.9 <= {100 * TARGET_P999_FRACTION:.0f} % of the period):")
    report["callback_offline"] = offline_callbacks(args.callback_seconds)
    print("   CPU time of the callback thread:")
    show(report["callback_offline"])
    print("   wall clock (includes time the OS gave the core to other processes):")
    show(report["callback_offline"]["wall"], judged=False)

    if args.jack_seconds > 0:
        print(f"\n3. callback time on the real device {args.device!r}, stress script, "
              f"{args.jack_seconds:g} s:")
        try:
            j = jack_callbacks(args.jack_seconds, args.device)
        except AudioDeviceError as exc:
            print(f"   skipped: {exc} (run under tools/with_jack_dummy.sh)")
            report["callback_device"] = None
        else:
            report["callback_device"] = j
            print(f"   device {j['device']!r} ({j['host_api']}): {j['callbacks']} of "
                  f"{j['expected_callbacks']} expected callbacks, underruns {j['underruns']} "
                  f"(plus {j['underruns_at_activation']} while JACK activated the client)")
            show(j)

    print(f"\n4. output latency at default settings (target <= {1000 * TARGET_LATENCY_S:.0f} ms):")
    try:
        lat = default_latency()
    except AudioDeviceError as exc:
        print(f"   skipped: {exc}")
        report["latency"] = None
    else:
        report["latency"] = lat
        flag = "ok" if lat["stream_latency_ms"] <= 1000 * TARGET_LATENCY_S else "ABOVE TARGET"
        print(f"   {lat['device']!r} ({lat['host_api']}): {lat['stream_latency_ms']:.1f} ms "
              f"(device default low {lat['device_default_low_ms']:.1f} ms)   {flag}")

    if args.stall_seconds > 0:
        print(f"\n5. host wake-up stalls of a real-time thread, {args.stall_seconds:g} s "
              "(nothing else of the engine running):")
        st = host_stalls(args.stall_seconds)
        report["host_stalls"] = st
        over = ", ".join(
            f"> {n} frames ({1000 * n / RATE:.1f} ms): {st[f'over_{n}_frames']}"
            for n in STALL_PERIODS
        )
        print(f"   {st['policy']}: {st['late_over_1ms']} wake-ups over 1 ms late, worst "
              f"{st['worst_ms']:.1f} ms; {over}")

    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
