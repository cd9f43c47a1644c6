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
from heartsong.stress.features import window_features
from heartsong.stress.history import HrHistory
from heartsong.stress.model import DEFAULT_MODEL_DIR, StressModel
from heartsong.stress.runtime import find_runtime


def best_us(fn: Callable[[int], object], n: int, repeats: int) -> float:
    """Best over ``repeats`` of the mean time per call of ``fn(i)``, i in range(n), in us."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--n", type=int, default=20000, help="calls per run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model = StressModel.load(args.model_dir)
    rng = np.random.default_rng(args.seed)
    n_in = len(model.spec.features)
    z = rng.normal(0.0, 1.0, size=(args.n, n_in))
    base = model.spec.population.values
    windows = []
    for _ in range(args.n):
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
        context = history.observe(5.0 * i, windows[i], q)
        f = window_features(windows[i], base, min_quality=q, context=context)
        assert f.values is not None
        return model.predict(f.values)

    for i in range(200):  # warm-up
        model.predict_standardized(z[i])
    t_model = best_us(lambda i: model.predict_standardized(z[i]), args.n, args.repeats)
    t_feat = best_us(features_and_model, args.n, args.repeats)
    t_est = best_us(lambda i: estimator.estimate(metrics[i]), args.n, 1)
    print(f"stress model {model.spec.model_version} ({n_in} inputs), runtime "
          f"{find_runtime().module}, {platform.machine()} {platform.processor() or ''}".rstrip())
    print(f"  model (quantize + invoke + dequantize): {t_model:7.1f} us per window")
    print(f"  features + model:                       {t_feat:7.1f} us per window")
    print(f"  estimator (baseline, history, features, model, smoothing): {t_est:7.1f} us "
          "per update")
    target = 50.0
    verdict = "meets" if t_model <= target else "MISSES"
    print(f"  target <= {target:g} us per window: {verdict}")
    return 0 if t_model <= target else 1


if __name__ == "__main__":
    sys.exit(main())
