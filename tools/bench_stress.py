"""Time the stress model per window on this machine (issue 7 target: <= 50 us).

    .venv/bin/python tools/bench_stress.py [--model-dir models] [--n 20000] [--repeats 5]

Three figures, each the best of ``--repeats`` runs of ``--n`` calls, in microseconds per
window:

* ``model``: :meth:`heartsong.stress.model.StressModel.predict_standardized` (quantize,
  invoke the int8 interpreter, dequantize): the inference the target is about;
* ``features + model``: :meth:`~heartsong.stress.model.StressModel.predict` after
  :meth:`heartsong.stress.history.HrHistory.observe` and
  :func:`heartsong.stress.features.window_features` (what each window costs; one window
  every 5 s, so the history holds 120 heart rates);
* ``estimator``: :meth:`heartsong.stress.estimator.ModelEstimator.estimate` on a
  :class:`heartsong.events.Metrics` (baseline learner, history, features, model,
  smoothing).

Inputs are seeded pseudo-random windows around the population baseline. Needs only the
runtime (ai-edge-litert), not TensorFlow.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from heartsong.events import Metrics
from heartsong.stress.baseline import BaselineLearner
from heartsong.stress.estimator import ModelEstimator
from heartsong.stress.history import HrHistory
from heartsong.stress.model import DEFAULT_MODEL_DIR, StressModel
from heartsong.stress.runtime import find_runtime

#: Issue 7's target for one inference, us per window.
TARGET_US = 50.0


def best_us(fn: Callable[[int], object], n: int, repeats: int) -> float:
    """Best over ``repeats`` of the mean time per call of ``fn(i)``, i in range(n), in us."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def measure(model_dir: Path, n: int = 20000, repeats: int = 5, seed: int = 0) -> dict[str, object]:
    """The three timings of the module docstring (us per window) for the model in
    ``model_dir``, with the runtime and machine they were taken on."""
    model = StressModel.load(model_dir)
    rng = np.random.default_rng(seed)
    n_in = len(model.spec.features)
    z = rng.normal(0.0, 1.0, size=(n, n_in))
    base = model.spec.population.values
    windows = []
    for _ in range(n):
        scale = rng.normal(1.0, 0.1)
        windows.append({
            "hr_bpm": base["hr_bpm"] * scale,
            "rmssd_ms": base["rmssd_ms"] / scale,
            "sdnn_ms": base["sdnn_ms"] / scale,
            "pnn50_pct": max(base["pnn50_pct"] + rng.normal(0.0, 5.0), 0.0),
            "lf_hf": base["lf_hf"] * scale,
            "resp_rate_bpm": base["resp_rate_bpm"] + rng.normal(0.0, 1.0),
            "coherence": 0.3,
            "signal_quality": 0.8,
        })
    metrics = [Metrics(t_s=5.0 * i, wall_s=5.0 * i, source="ppg", **w)  # type: ignore[arg-type]
               for i, w in enumerate(windows)]
    estimator = ModelEstimator(model, BaselineLearner(model.spec.population))
    q = model.spec.min_signal_quality
    history = HrHistory(model.spec.history)

    def features_and_model(i: int) -> object:
        f = history.features(5.0 * i, windows[i], base, q)
        assert f.values is not None
        return model.predict(f.values)

    for i in range(min(200, n)):  # warm-up
        model.predict_standardized(z[i])
    return {
        "model_version": model.spec.model_version,
        "inputs": n_in,
        "runtime": find_runtime().module,
        "machine": f"{platform.machine()} {platform.processor() or ''}".rstrip(),
        "model_us": best_us(lambda i: model.predict_standardized(z[i]), n, repeats),
        "features_model_us": best_us(features_and_model, n, repeats),
        "estimator_us": best_us(lambda i: estimator.estimate(metrics[i]), n, 1),
        "n": n,
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--n", type=int, default=20000, help="calls per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    r = measure(args.model_dir, args.n, args.repeats, args.seed)
    t_model = float(r["model_us"])  # type: ignore[arg-type]
    print(f"stress model {r['model_version']} ({r['inputs']} inputs), runtime "
          f"{r['runtime']}, {r['machine']}")
    print(f"  model (quantize + invoke + dequantize): {t_model:7.1f} us per window")
    print(f"  features + model:                       {r['features_model_us']:7.1f} us per window")
    print(f"  estimator (baseline, history, features, model, smoothing): "
          f"{r['estimator_us']:7.1f} us per update")
    verdict = "meets" if t_model <= TARGET_US else "MISSES"
    print(f"  target <= {TARGET_US:g} us per window: {verdict}")
    return 0 if t_model <= TARGET_US else 1


if __name__ == "__main__":
    sys.exit(main())
