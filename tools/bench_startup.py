"""Start-up time: from process start to the first audio block, with a warm numba cache.

Starts a fresh Python process that does what ``heartsong run`` does before the first
audio callback: import the appliance (every stage), load the configuration, build the
engine, compile-or-load the audio and DSP kernels (``warm_up``), set the first sound
targets and render one block of ``audio.buffer_frames`` frames. The time is measured by
the parent, from just before the process is spawned to the child's report of the first
block (so interpreter start-up and imports are included).

The first run fills the numba cache (``--cache-dir``, default a temporary directory,
like ``NUMBA_CACHE_DIR=/var/cache/heartsong/numba`` on the device); the following
``--runs`` are measured warm. Target: <= 3 s (issue 11).

Usage: ``python tools/bench_startup.py [--runs 5] [--cache-dir DIR] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 3.0

CHILD = r"""
import time
t_import = time.perf_counter()
import numpy as np
from heartsong import wiring
from heartsong.config import Config
from heartsong.dsp.pipeline import warm_up as dsp_warm_up
from heartsong.events import SoundTargets
cfg = Config()
engine = wiring.make_engine(cfg)
engine.warm_up()
dsp_warm_up()
engine.set_targets(SoundTargets(cfg.audio.soundscape, volume_db=cfg.audio.volume_db))
block = np.zeros((cfg.audio.buffer_frames, 2), dtype=np.float32)
engine.render(block)
print(f"FIRST_BLOCK {time.time():.6f} {time.perf_counter() - t_import:.6f}", flush=True)
"""


def run_once(cache_dir: Path) -> tuple[float, float]:
    """One cold process: (seconds from spawn to first block, seconds inside the child)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("FIRST_BLOCK "))
    _, t_first, inside = line.split()
    return float(t_first) - t0, float(inside)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; exit status 1 when the warm median exceeds the target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="warm runs measured (default 5)")
    ap.add_argument("--cache-dir", type=Path, help="numba cache (default: a temporary dir)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="heartsong-numba-") as tmp:
        cache = args.cache_dir or Path(tmp)
        cold, _ = run_once(cache)
        warm = [run_once(cache) for _ in range(max(args.runs, 1))]
    totals = [w[0] for w in warm]
    result = {
        "cold_s": round(cold, 3),
        "warm_median_s": round(statistics.median(totals), 3),
        "warm_max_s": round(max(totals), 3),
        "warm_in_process_median_s": round(statistics.median(w[1] for w in warm), 3),
        "runs": len(warm),
        "target_s": TARGET_S,
    }
    sys.stdout.write(
        f"start-up to first audio block: cold cache {result['cold_s']} s; warm cache median "
        f"{result['warm_median_s']} s (max {result['warm_max_s']} s, of which "
        f"{result['warm_in_process_median_s']} s after the interpreter started); target "
        f"<= {TARGET_S} s\n"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["warm_median_s"] <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
