"""The stress model's spec (``models/stress_features.json``), read and checked against the code.

The training script writes the spec next to the model: which features the model takes and
in which order, how they are standardised, the population baseline, the decision and
hysteresis thresholds, the smoothing, the heart-rate history the features look back at
(:mod:`heartsong.stress.history`), the model's version and the SHA-256 of the model
file. Loading checks that the spec matches :mod:`heartsong.stress.features` (feature
version, names, raw metrics, signal-quality gate) and is complete; any mismatch is a
:class:`StressModelError` naming the key, because a model fed features in another order or
scale would answer confidently and wrongly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heartsong.errors import HeartsongError
from heartsong.stress.baseline import Baseline
from heartsong.stress.features import (
    FEATURE_CLIP,
    FEATURE_NAMES,
    FEATURE_VERSION,
    RAW_METRICS,
    REQUIRED_METRICS,
)
from heartsong.stress.history import HistorySettings
from heartsong.stress.smoothing import StressThresholds

__all__ = [
    "MODEL_FILE",
    "SPEC_FILE",
    "SPEC_FORMAT",
    "SPEC_VERSION",
    "StressModelError",
    "StressSpec",
    "load_spec",
]

#: File names inside the model directory.
MODEL_FILE = "stress_int8.tflite"
SPEC_FILE = "stress_features.json"
SPEC_FORMAT = "heartsong-stress-spec"
SPEC_VERSION = 2


class StressModelError(HeartsongError, RuntimeError):
    """The stress model or its spec is missing, corrupt or does not match the code."""


@dataclass(frozen=True, slots=True)
class StressSpec:
    """What the model expects and how its output is read.

    Attributes
    ----------
    path:
        The spec file.
    model_version:
        Version string of the trained model.
    model_sha256:
        SHA-256 (hex) of the model file the spec belongs to.
    features:
        The model's inputs, in order (a subset of :data:`FEATURE_NAMES`).
    feature_index:
        Position of each input in :data:`FEATURE_NAMES`.
    mean, scale:
        Standardisation of each input (training mean and standard deviation).
    clip:
        Standardised inputs are clipped to +-clip.
    min_signal_quality:
        Signal-quality gate of a usable window, 0..1.
    population:
        Fallback baseline (the training participants' resting medians).
    baseline_s:
        Length of the resting start used as the baseline in training, seconds.
    decision_threshold:
        ``p_stress`` at or above which a window counts as stress (chosen in training).
    thresholds:
        Hysteresis thresholds of the state on the smoothed probability.
    tau_s, warmup_s, max_gap_s:
        Smoothing time constant, warm-up and reset gap, seconds.
    history:
        The heart-rate history the features were trained with.
    window_s:
        Length of the HRV windows the model was trained on, seconds (its features are
        only comparable over windows of that length).
    """

    path: Path
    model_version: str
    model_sha256: str
    features: tuple[str, ...]
    feature_index: tuple[int, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    clip: float
    min_signal_quality: float
    population: Baseline
    baseline_s: float
    decision_threshold: float
    thresholds: StressThresholds
    tau_s: float
    warmup_s: float
    max_gap_s: float
    history: HistorySettings
    window_s: float


def _get(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise StressModelError(f"{where}: missing key {key!r}")
    return doc[key]


def _number(doc: dict[str, Any], key: str, where: str, lo: float, hi: float) -> float:
    v = _get(doc, key, where)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
        math.isfinite(v) and lo <= v <= hi
    ):
        raise StressModelError(f"{where}: {key} = {v!r}: expected a number in [{lo}, {hi}]")
    return float(v)


def _numbers(
    doc: dict[str, Any], key: str, where: str, n: int, positive: bool
) -> tuple[float, ...]:
    v = _get(doc, key, where)
    ok = isinstance(v, list) and len(v) == n and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        and (x > 0.0 or not positive)
        for x in v
    )
    if not ok:
        what = "positive numbers" if positive else "numbers"
        raise StressModelError(f"{where}: {key}: expected {n} finite {what}, got {v!r}")
    return tuple(float(x) for x in v)


def _section(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    v = _get(doc, key, where)
    if not isinstance(v, dict):
        raise StressModelError(f"{where}: {key}: expected an object")
    return v


def load_spec(path: Path) -> StressSpec:
    """Read and check a stress model spec.

    Parameters
    ----------
    path:
        ``stress_features.json``.

    Returns
    -------
    StressSpec
        The checked spec.

    Raises
    ------
    StressModelError
        When the file is missing, not JSON, incomplete, or written for other features
        than this code computes (the message names the key and the fix).
    """
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise StressModelError(
            f"{where}: missing (train a model with tools/train_stress_model.py)"
        ) from exc
    except OSError as exc:
        raise StressModelError(f"{where}: unreadable ({exc.strerror})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StressModelError(f"{where}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(doc, dict) or doc.get("format") != SPEC_FORMAT:
        raise StressModelError(f"{where}: not a heartsong stress spec (format {SPEC_FORMAT!r})")
    if doc.get("spec_version") != SPEC_VERSION:
        raise StressModelError(
            f"{where}: spec_version = {doc.get('spec_version')!r}: this code reads {SPEC_VERSION}"
        )
    fv = doc.get("feature_version")
    if fv != FEATURE_VERSION:
        raise StressModelError(
            f"{where}: feature_version = {fv!r} but heartsong.stress.features computes "
            f"version {FEATURE_VERSION}: retrain the model with tools/train_stress_model.py"
        )
    for key, expected in (
        ("all_features", FEATURE_NAMES),
        ("raw_metrics", RAW_METRICS),
        ("required_metrics", REQUIRED_METRICS),
    ):
        got = _get(doc, key, where)
        if not isinstance(got, list) or tuple(got) != expected:
            raise StressModelError(
                f"{where}: {key} = {got!r} does not match the code's {list(expected)!r}: "
                "retrain the model with tools/train_stress_model.py"
            )
    features = _get(doc, "features", where)
    if (
        not isinstance(features, list)
        or not features
        or any(f not in FEATURE_NAMES for f in features)
        or len(set(features)) != len(features)
    ):
        raise StressModelError(
            f"{where}: features = {features!r}: expected distinct names from {list(FEATURE_NAMES)}"
        )
    n = len(features)
    norm = _section(doc, "normalization", where)
    gate = _section(doc, "gate", where)
    th = _section(doc, "thresholds", where)
    sm = _section(doc, "smoothing", where)
    base = _section(doc, "baseline", where)
    hist = _section(doc, "history", where)
    win = _section(doc, "window", where)
    clip = _number(norm, "clip", f"{where}: normalization", 0.5, 100.0)
    if clip != FEATURE_CLIP:
        raise StressModelError(f"{where}: normalization.clip = {clip}: the code clips at "
                               f"{FEATURE_CLIP}")
    pop = _get(doc, "population_baseline", where)
    if not isinstance(pop, dict):
        raise StressModelError(f"{where}: population_baseline: expected an object")
    try:
        population = Baseline.from_values(pop, f"{where}: population_baseline")
    except ValueError as exc:
        raise StressModelError(str(exc)) from exc
    try:
        thresholds = StressThresholds(
            calm_enter=_number(th, "calm_enter", f"{where}: thresholds", 0.0, 1.0),
            calm_exit=_number(th, "calm_exit", f"{where}: thresholds", 0.0, 1.0),
            stressed_exit=_number(th, "stressed_exit", f"{where}: thresholds", 0.0, 1.0),
            stressed_enter=_number(th, "stressed_enter", f"{where}: thresholds", 0.0, 1.0),
        )
    except ValueError as exc:
        raise StressModelError(f"{where}: thresholds: {exc}") from exc
    hw = f"{where}: history"
    try:
        history = HistorySettings(
            window_s=_number(hist, "window_s", hw, 1.0, 86400.0),
            low_quantile=_number(hist, "low_quantile", hw, 0.0, 1.0),
            min_windows=int(_number(hist, "min_windows", hw, 1.0, 1e6)),
            lag_s=_number(hist, "lag_s", hw, 1.0, 86400.0),
            max_lag_s=_number(hist, "max_lag_s", hw, 1.0, 86400.0),
        )
    except ValueError as exc:
        raise StressModelError(f"{hw}: {exc}") from exc
    version = _get(doc, "model_version", where)
    sha = _get(doc, "model_sha256", where)
    if not isinstance(version, str) or not version:
        raise StressModelError(f"{where}: model_version: expected a string")
    if not isinstance(sha, str) or len(sha) != 64:
        raise StressModelError(f"{where}: model_sha256: expected 64 hex digits")
    return StressSpec(
        path=path,
        model_version=version,
        model_sha256=sha.lower(),
        features=tuple(features),
        feature_index=tuple(FEATURE_NAMES.index(f) for f in features),
        mean=_numbers(norm, "mean", f"{where}: normalization", n, positive=False),
        scale=_numbers(norm, "scale", f"{where}: normalization", n, positive=True),
        clip=clip,
        min_signal_quality=_number(gate, "min_signal_quality", f"{where}: gate", 0.0, 1.0),
        population=population,
        baseline_s=_number(base, "baseline_s", f"{where}: baseline", 1.0, 86400.0),
        decision_threshold=_number(th, "decision", f"{where}: thresholds", 0.0, 1.0),
        thresholds=thresholds,
        tau_s=_number(sm, "tau_s", f"{where}: smoothing", 1.0, 3600.0),
        warmup_s=_number(sm, "warmup_s", f"{where}: smoothing", 0.0, 3600.0),
        max_gap_s=_number(sm, "max_gap_s", f"{where}: smoothing", 0.0, 86400.0),
        history=history,
        window_s=_number(win, "window_s", f"{where}: window", 1.0, 3600.0),
    )
