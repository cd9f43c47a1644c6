"""The stress stage's interface, and the estimator used while no model is installed.

A stress estimator turns one :class:`~heartsong.events.Metrics` update into a probability
of stress and a state in {calm, neutral, stressed, unknown}. Until the trained int8 model
(``models/stress_int8.tflite``) is installed, :class:`NoModelEstimator` answers
``unknown`` with its reason: the device never invents a stress value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from heartsong.events import Metrics, StressState


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
