"""CPU cost of heartsong's streaming DSP per second of 100 Hz PPG input.

The 5-min NeuroKit2 resting recording (``ppg_reference/neurokit_resting_5min``) is tiled
to ``--minutes`` and fed to :class:`heartsong.dsp.pipeline.StreamingPipeline` in blocks of
``--block`` samples (25: a MAX30102 FIFO read every 0.25 s at 100 Hz; 32: a full FIFO),
with a metrics update every ``--update`` seconds of signal, as the appliance runs it (the
update times are worked out before the clock starts, as the appliance's timer knows them
without reading each block). The figure is CPU time (``time.process_time``) per second
of input, the best of ``--repeats``
runs (other processes on the machine only ever add time). ``--breakdown`` runs once more
with the stages timed apart (the timers add their own cost; the total of that run is
not the figure).

``python tools/bench_dsp_stream.py [--data DIR] [--minutes 60] [--block 25 32]
[--update 5] [--repeats 5] [--breakdown] [--json OUT.json]``
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FS_HZ = 100.0
RECORD = Path("ppg_reference") / "neurokit_resting_5min" / "bio_resting_5min_100hz.csv"
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_ppg(data: Path, seconds: float) -> np.ndarray:
    """The recording's PPG column (100 Hz), tiled to ``seconds``."""
    path = data / RECORD
    if not path.is_file():
        raise SystemExit(f"bench_dsp_stream: {path} not found (use --data DIR)")
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=header.index("PPG"))
    n = round(seconds * FS_HZ)
    return np.tile(x, -(-n // x.size))[:n]


def run(x: np.ndarray, block: int, update_s: float) -> dict[str, float]:
    """Feed ``x`` once; CPU seconds in total and inside the metrics calls."""
    from heartsong.dsp.pipeline import StreamingPipeline
    from heartsong.events import PpgBlock

    empty = np.zeros(0)
    blocks = [
        PpgBlock(i / FS_HZ, FS_HZ, x[i : i + block], empty)
        for i in range(0, x.size - block + 1, block)
    ]
    # The update times are worked out before the clock starts: the appliance asks for
    # metrics on a timer, not by reading each block's end time (harness cost, not DSP).
    plan: list[tuple[PpgBlock, float | None]] = []
    next_update = update_s
    for blk in blocks:
        end = blk.t_end_s
        if end >= next_update:
            plan.append((blk, end))
            next_update += update_s
        else:
            plan.append((blk, None))
    pipe = StreamingPipeline(fs_hz=FS_HZ, invert_ppg=False, update_s=update_s)
    pipe.warm_up()
    metrics_s = 0.0
    valid = updates = 0
    clock = time.process_time
    start = clock()
    for blk, update_t in plan:
        pipe.feed_ppg(blk)
        if update_t is not None:
            t0 = clock()
            m = pipe.metrics(update_t, 0.0, "ppg")
            metrics_s += clock() - t0
            updates += 1
            valid += m.rmssd_ms is not None
    total = clock() - start
    seconds = len(blocks) * block / FS_HZ
    return {
        "us_per_s": total * 1e6 / seconds,
        "feed_us_per_s": (total - metrics_s) * 1e6 / seconds,
        "metrics_us_per_s": metrics_s * 1e6 / seconds,
        "us_per_update": metrics_s * 1e6 / max(updates, 1),
        "updates": float(updates),
        "updates_with_rmssd": float(valid),
    }


def breakdown(x: np.ndarray, block: int, update_s: float) -> dict[str, float]:
    """One instrumented run: CPU microseconds per second of input, per stage."""
    from heartsong.dsp import artifacts_stream, pipeline, ppg_stream, window

    spent: dict[str, float] = {}
    patches: list[tuple[object, str, Any]] = []

    def timed(owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)
        spent[label] = 0.0

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.process_time() - t0

        patches.append((owner, name, original))
        setattr(owner, name, wrapper)

    stages: list[tuple[object, str, str]] = [
        (pipeline.StreamingPipeline, "_flush", "front end (chunk)"),
        (ppg_stream.PpgFrontEnd, "process_rows", "  filter+detector+pulses"),
        (artifacts_stream.StreamingBeatCorrector, "select", "artefact correction + rows"),
        (pipeline, "_window_rows", "window metrics"),
        (window, "_window_kernel", "  time domain + breathing + coherence"),
        (window, "_lf_hf", "  LF/HF"),
    ]
    for owner, name, label in stages:
        timed(owner, name, label)
    try:
        result = run(x, block, update_s)
    finally:
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)
    seconds = x.size / FS_HZ
    out = {label: s * 1e6 / seconds for label, s in spent.items()}
    out["total (instrumented)"] = result["us_per_s"]
    return out


def best_of(repeats: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The run with the least total CPU time."""
    return min((fn() for _ in range(repeats)), key=lambda r: r["us_per_s"])


def main(argv: list[str] | None = None) -> int:
    """Measure, print a table, optionally write JSON; return the exit code."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--minutes", type=float, default=60.0, help="length of the tiled signal")
    p.add_argument("--block", type=int, nargs="+", default=[25, 32], help="samples per block")
    p.add_argument("--update", type=float, default=5.0, help="seconds between metric updates")
    p.add_argument("--repeats", type=int, default=5, help="runs per block size (best kept)")
    p.add_argument("--breakdown", action="store_true", help="also time the stages apart")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)

    x = load_ppg(args.data, args.minutes * 60.0)
    results: dict[str, Any] = {"signal_s": x.size / FS_HZ, "fs_hz": FS_HZ, "runs": {}}
    for block in args.block:
        r = best_of(args.repeats, functools.partial(run, x, block, args.update))
        results["runs"][str(block)] = r
        print(
            f"{block:3d}-sample blocks, update every {args.update:g} s: "
            f"{r['us_per_s']:.1f} us CPU per s of input "
            f"(feed {r['feed_us_per_s']:.1f} + metrics {r['metrics_us_per_s']:.1f}; "
            f"{r['us_per_update']:.0f} us per update; "
            f"{r['updates_with_rmssd']:.0f}/{r['updates']:.0f} updates with RMSSD)"
        )
    if args.breakdown:
        parts = breakdown(x, args.block[0], args.update)
        results["breakdown_us_per_s"] = parts
        width = max(len(k) for k in parts)
        print(f"stages ({args.block[0]}-sample blocks, instrumented, us per s of input):")
        for label, value in parts.items():
            print(f"  {label:<{width}}  {value:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
