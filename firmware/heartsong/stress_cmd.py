"""``heartsong analyze --stress``: the stress model over every window of a recording.

``heartsong analyze REC --stress [--baseline-seconds 300] [--stress-model DIR]`` adds to
every window ``p_stress_window`` (the int8 model's probability for that window alone),
``p_stress`` (smoothed over time, as the device publishes it) and ``stress_state``
(calm, neutral, stressed, unknown), and a ``stress`` section: the model version, the
baseline used and how many windows got a verdict. The first ``--baseline-seconds`` of the
recording are the person's resting baseline (:func:`heartsong.stress.baseline.
baseline_from_start`); with too few usable windows there, the population baseline of the
model's training data is used and the section says so.

The windows are scored in time order with the device's own parts
(:mod:`heartsong.stress.features`, :mod:`heartsong.stress.model`,
:mod:`heartsong.stress.smoothing`), so the numbers are those the device would give with
that baseline.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the stress modules (numpy) load only when --stress is used
    from heartsong.stress.model import StressModel

__all__ = [
    "DEFAULT_BASELINE_S",
    "add_arguments",
    "annotate_windows",
    "apply",
    "check_args",
    "format_stress",
]

#: Default resting start of a recording, seconds.
DEFAULT_BASELINE_S = 300.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--stress``, ``--baseline-seconds`` and ``--stress-model`` to ``analyze``."""
    p.add_argument("--stress", action="store_true",
                   help="add p_stress and stress_state to every window (int8 stress model)")
    p.add_argument("--baseline-seconds", type=float, default=DEFAULT_BASELINE_S, metavar="S",
                   help="the first S seconds are the person's resting baseline (default 300)")
    p.add_argument("--stress-model", type=Path, default=None, metavar="DIR",
                   help="directory of stress_int8.tflite and stress_features.json "
                        "(default: the source tree's models/)")


def check_args(args: argparse.Namespace) -> None:
    """Refuse a bad ``--baseline-seconds`` before the recording is analysed.

    Raises
    ------
    InputDataError
        Naming ``--baseline-seconds`` when it is not a positive number of seconds, or too
        short for the windows of a personal baseline to end within it.
    """
    from heartsong.errors import InputDataError

    if not getattr(args, "stress", False):
        return
    baseline_s = getattr(args, "baseline_seconds", DEFAULT_BASELINE_S)
    if not (math.isfinite(baseline_s) and baseline_s > 0.0):
        raise InputDataError("--baseline-seconds", "a positive number of seconds", baseline_s)
    problem = _baseline_problem(baseline_s, args.window, args.step)
    if problem:
        raise InputDataError("--baseline-seconds", problem)


def _baseline_problem(baseline_s: float, window_s: float, step_s: float) -> str:
    """Why ``baseline_s`` can never hold a personal baseline ("" when it can)."""
    from heartsong.stress.baseline import MIN_BASELINE_WINDOWS

    need_s = window_s + (MIN_BASELINE_WINDOWS - 1) * step_s
    if baseline_s >= need_s:
        return ""
    return (f"at least {need_s:g} s ({MIN_BASELINE_WINDOWS} windows of {window_s:g} s "
            f"every {step_s:g} s must end within it; got {baseline_s:g})")


def annotate_windows(
    windows: list[dict[str, Any]], model: StressModel, baseline_s: float
) -> dict[str, object]:
    """Score every window with the stress model, in place.

    Parameters
    ----------
    windows:
        Windows of :meth:`heartsong.dsp.batch.AnalysisResult.as_dict` (``t_start_s``,
        ``t_end_s`` in seconds, the metrics, ``reasons``), in time order.
    model:
        The loaded stress model.
    baseline_s:
        The first ``baseline_s`` seconds are the resting baseline.

    Returns
    -------
    dict
        The ``stress`` section: model version, baseline (values, source), counts.
    """
    from heartsong.stress.baseline import baseline_from_start
    from heartsong.stress.history import HrHistory
    from heartsong.stress.smoothing import StressSmoother

    spec = model.spec
    baseline = baseline_from_start(
        windows, baseline_s, spec.population, min_quality=spec.min_signal_quality
    )
    smoother = StressSmoother(
        spec.thresholds, tau_s=spec.tau_s, warmup_s=spec.warmup_s, max_gap_s=spec.max_gap_s
    )
    history = HrHistory(spec.history)
    states: Counter[str] = Counter()
    n_scored = 0
    for w in windows:
        t_end = w.get("t_end_s")
        t_s = float(t_end) if isinstance(t_end, (int, float)) else math.nan
        feats = history.features(t_s, w, baseline.values, spec.min_signal_quality)
        p = None if feats.values is None else model.predict(feats.values)
        out = smoother.update(t_s, p, feats.reason)
        n_scored += p is not None
        w["p_stress_window"] = None if p is None else round(p, 4)
        w["p_stress"] = None if out.p_stress is None else round(out.p_stress, 4)
        w["stress_state"] = out.state
        states[out.state] += 1
        if out.reason:
            reasons = w.setdefault("reasons", {})
            if isinstance(reasons, dict):
                reasons["p_stress"] = out.reason
    return {
        "model_version": spec.model_version,
        "baseline_s": baseline_s,
        "baseline": baseline.as_dict(),
        "decision_threshold": spec.decision_threshold,
        "n_windows": len(windows),
        "n_scored": n_scored,
        "states": {s: states.get(s, 0) for s in ("calm", "neutral", "stressed", "unknown")},
    }


def apply(out: dict[str, Any], args: argparse.Namespace) -> str:
    """Run ``--stress`` on an analysis result (``AnalysisResult.as_dict()``), in place.

    Returns
    -------
    str
        ``""`` on success, else a one-line error (bad ``--baseline-seconds``, a model that
        is missing, corrupt or does not match its spec, no TFLite runtime).
    """
    if not getattr(args, "stress", False):
        return ""
    from heartsong.stress.model import DEFAULT_MODEL_DIR, StressModel
    from heartsong.stress.runtime import RuntimeMissingError
    from heartsong.stress.spec import StressModelError

    baseline_s = args.baseline_seconds
    if not (math.isfinite(baseline_s) and baseline_s > 0.0):
        return f"--baseline-seconds: a positive number of seconds (got {baseline_s!r})"
    try:
        model = StressModel.load(args.stress_model or DEFAULT_MODEL_DIR)
    except (StressModelError, RuntimeMissingError) as exc:
        return f"--stress: {exc}"
    window_s, step_s = args.window, args.step
    if not math.isclose(window_s, model.spec.window_s):
        return (f"--window: {model.spec.window_s:g} s with --stress (the model was trained "
                f"on {model.spec.window_s:g}-s windows; got {window_s:g})")
    problem = _baseline_problem(baseline_s, window_s, step_s)
    if problem:
        return f"--baseline-seconds: {problem}"
    duration_s = float(out.get("duration_s") or 0.0)
    if baseline_s >= duration_s:
        return (f"--baseline-seconds: shorter than the recording ({duration_s:.0f} s), so "
                f"that some windows come after the baseline (got {baseline_s:g})")
    out["stress"] = annotate_windows(out["windows"], model, baseline_s)
    return ""


def format_stress(out: dict[str, Any]) -> list[str]:
    """Summary lines for the ``stress`` section of a result (none without it)."""
    section = out.get("stress")
    if not isinstance(section, dict):
        return []
    base = section["baseline"]
    states = section["states"]
    return [
        f"  stress model {section['model_version']}: {section['n_scored']} of "
        f"{section['n_windows']} windows scored, baseline {base['source']} "
        f"(first {section['baseline_s']:g} s, {base['n_windows']} windows)",
        "  stress states: " + ", ".join(f"{k} {v}" for k, v in states.items()),
    ]
