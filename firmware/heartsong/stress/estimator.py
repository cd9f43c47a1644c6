"""The stress stage's interface, the model-based estimator, and the one used without a model.

A stress estimator turns one :class:`~heartsong.events.Metrics` update into a probability
of stress and a state in {calm, neutral, stressed, unknown}. :class:`ModelEstimator` runs
the trained int8 model (``models/stress_int8.tflite``) against the person's baseline;
while no usable model is installed, :class:`NoModelEstimator` answers ``unknown`` with its
reason: the device never invents a stress value. :func:`make_stress_estimator` picks one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from heartsong.events import Metrics, StressState
from heartsong.stress.baseline import BASELINE_FILE, BaselineLearner
from heartsong.stress.features import RAW_METRICS
from heartsong.stress.history import HrHistory
from heartsong.stress.model import DEFAULT_MODEL_DIR, StressModel
from heartsong.stress.runtime import RuntimeMissingError
from heartsong.stress.smoothing import StressSmoother
from heartsong.stress.spec import StressModelError

__all__ = [
    "ModelEstimator",
    "NoModelEstimator",
    "StressEstimate",
    "StressEstimator",
    "make_stress_estimator",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StressEstimate:
    """One answer of the stress stage.

    ``p_stress`` is a probability in [0, 1] or None; ``reason`` says why when the state is
    ``unknown``.
    """

    p_stress: float | None
    state: StressState
    reason: str = ""


class StressEstimator(Protocol):
    """Anything that maps heart metrics to a stress estimate."""

    def estimate(self, metrics: Metrics) -> StressEstimate:
        """Estimate stress from one metrics update."""
        ...


class NoModelEstimator:
    """Answers ``unknown`` with the reason that no model is installed."""

    def __init__(self, reason: str = "no stress model installed") -> None:
        self.reason = reason

    def estimate(self, metrics: Metrics) -> StressEstimate:
        """Always ``unknown``: without a model there is nothing honest to say."""
        return StressEstimate(None, "unknown", self.reason)

    def __repr__(self) -> str:
        return f"NoModelEstimator({self.reason!r})"


class ModelEstimator:
    """The trained model with the person's baseline and smoothing over time.

    Each update: the baseline learner sees the window
    (:class:`heartsong.stress.baseline.BaselineLearner`) and the heart-rate history
    (:class:`heartsong.stress.history.HrHistory`) see the window, its features against
    the baseline in force and that history
    (:func:`heartsong.stress.features.window_features`) go through
    the int8 model (:class:`heartsong.stress.model.StressModel`), and the probability is
    smoothed into a state (:class:`heartsong.stress.smoothing.StressSmoother`). A window
    without enough clean beats is ``unknown`` with the reason, never a guess.
    """

    def __init__(self, model: StressModel, learner: BaselineLearner,
                 smoother: StressSmoother | None = None) -> None:
        self.model = model
        self.learner = learner
        spec = model.spec
        self.smoother = smoother or StressSmoother(
            spec.thresholds, tau_s=spec.tau_s, warmup_s=spec.warmup_s, max_gap_s=spec.max_gap_s
        )
        self.history = HrHistory(spec.history)

    def estimate(self, metrics: Metrics) -> StressEstimate:
        """Smoothed ``p_stress`` and state after one metrics update."""
        window = {name: getattr(metrics, name) for name in RAW_METRICS}
        self.learner.observe(metrics.t_s, window, metrics.wall_s)
        baseline = self.learner.current
        feats = self.history.features(metrics.t_s, window, baseline.values,
                                      self.model.spec.min_signal_quality)
        p = None if feats.values is None else self.model.predict(feats.values)
        out = self.smoother.update(metrics.t_s, p, feats.reason)
        return StressEstimate(out.p_stress, out.state, out.reason)

    def __repr__(self) -> str:
        return f"ModelEstimator({self.model!r}, baseline={self.learner.current.source})"


def make_stress_estimator(
    model_dir: Path | None = None, state_dir: Path | None = None, *, learn_s: float | None = None
) -> StressEstimator:
    """The stress stage for the appliance: the model if it loads, else :class:`NoModelEstimator`.

    A model that is missing, corrupt or does not match its spec (or no TFLite runtime) is
    logged as an error with the reason, and the device runs on without adaptation: the
    sound still plays, ``stress_state`` stays ``unknown`` with that reason.

    Parameters
    ----------
    model_dir:
        Directory of ``stress_int8.tflite`` and ``stress_features.json`` (default the
        source tree's ``models/``).
    state_dir:
        Where the personal baseline is kept (``stress_baseline.json``); None keeps it in
        memory only.
    learn_s:
        Resting start of a session the baseline is learned from, seconds (default the
        spec's ``baseline_s``).
    """
    try:
        model = StressModel.load(model_dir or DEFAULT_MODEL_DIR)
    except (StressModelError, RuntimeMissingError) as exc:
        log.error("stress model not loaded, running without stress adaptation: %s", exc)
        return NoModelEstimator(f"stress model not loaded: {exc}")
    learner = BaselineLearner(
        model.spec.population,
        None if state_dir is None else state_dir / BASELINE_FILE,
        learn_s=model.spec.baseline_s if learn_s is None else learn_s,
        min_quality=model.spec.min_signal_quality,
    )
    return ModelEstimator(model, learner)
