"""The recent heart rates the stress features look back at, kept causally in time order.

In a long session people settle: the heart rate drifts down over the hour, so a window's
ratio to the start-of-session baseline mixes arousal with the drift. The stress stage
therefore also compares each window with what it has seen in the last minutes
(:class:`heartsong.stress.features.HrContext`): a low quantile of the usable windows'
heart rates over ``window_s`` (a running low reference, as in baseline-wander removal by
running order statistics; Tukey 1977, *Exploratory Data Analysis*, running medians), and
the heart rate of the usable window ending about ``lag_s`` earlier. Only the past and the
present window are used, one update per window in time order, so the device
(:class:`heartsong.stress.estimator.ModelEstimator`), ``heartsong analyze --stress`` and
the training script (``tools/train_stress_model.py``) compute the same numbers.

The settings travel with the model (``models/stress_features.json``, section
``history``): a model is only valid with the history it was trained with.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass

from heartsong.errors import InputDataError
from heartsong.stress.features import (
    MIN_SIGNAL_QUALITY,
    HrContext,
    WindowFeatures,
    gate_reason,
    window_features,
)

__all__ = ["HistorySettings", "HrHistory"]

_EPS_S = 1e-6


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """How far back the heart-rate history looks.

    Attributes
    ----------
    window_s:
        Span of the running low reference, seconds.
    low_quantile:
        Quantile (0..1) of the heart rates in that span taken as the recent low.
    min_windows:
        Fewest usable windows in the span for a recent low (else None: the baseline).
    lag_s:
        The earlier heart rate is that of the latest usable window ending at least this
        long before the present one, seconds ...
    max_lag_s:
        ... and at most this long before it, seconds (else None: no change).
    """

    window_s: float = 600.0
    low_quantile: float = 0.1
    min_windows: int = 3
    lag_s: float = 60.0
    max_lag_s: float = 90.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.window_s) and self.window_s > 0.0):
            raise InputDataError("history.window_s", "a positive number of seconds",
                                 self.window_s)
        if not (math.isfinite(self.low_quantile) and 0.0 <= self.low_quantile <= 1.0):
            raise InputDataError("history.low_quantile", "a quantile in [0, 1]",
                                 self.low_quantile)
        if self.min_windows < 1:
            raise InputDataError("history.min_windows", "at least 1", self.min_windows)
        if not (math.isfinite(self.lag_s) and math.isfinite(self.max_lag_s)
                and 0.0 < self.lag_s <= self.max_lag_s):
            raise InputDataError("history.lag_s/max_lag_s", "0 < lag_s <= max_lag_s seconds",
                                 (self.lag_s, self.max_lag_s))

    def as_dict(self) -> dict[str, float]:
        """The settings as written to the model spec."""
        return {"window_s": self.window_s, "low_quantile": self.low_quantile,
                "min_windows": self.min_windows, "lag_s": self.lag_s,
                "max_lag_s": self.max_lag_s}


class HrHistory:
    """Heart rates of the usable windows seen recently, and the context of the present one.

    Parameters
    ----------
    settings:
        See :class:`HistorySettings`.
    """

    def __init__(self, settings: HistorySettings | None = None) -> None:
        self.settings = settings or HistorySettings()
        self._t: list[float] = []  # window end times, s, increasing
        self._hr: list[float] = []  # their heart rates, bpm

    def __len__(self) -> int:
        return len(self._t)

    def reset(self) -> None:
        """Forget everything (a new session)."""
        self._t.clear()
        self._hr.clear()

    def observe(
        self,
        t_s: float,
        window: Mapping[str, object],
        min_quality: float = MIN_SIGNAL_QUALITY,
    ) -> HrContext:
        """Record one window and return the heart-rate context of that window.

        Parameters
        ----------
        t_s:
            Time of the window's end, seconds (non-decreasing; a step back in time starts
            a new history).
        window:
            The window's metrics (``hr_bpm`` in bpm and the rest of
            :data:`~heartsong.stress.features.RAW_METRICS`); it is recorded only when
            usable (:func:`~heartsong.stress.features.gate_reason`).
        min_quality:
            Signal-quality gate of a usable window, 0..1.

        Returns
        -------
        HrContext
            The recent low (including this window) and the earlier heart rate, bpm.
        """
        if not math.isfinite(t_s):
            raise InputDataError("t_s", "a finite time in seconds", t_s)
        s = self.settings
        if self._t and t_s < self._t[-1] - _EPS_S:
            self.reset()
        old = bisect.bisect_left(self._t, t_s - max(s.window_s, s.max_lag_s) - _EPS_S)
        if old:
            del self._t[:old]
            del self._hr[:old]
        if not gate_reason(window, min_quality):
            hr = window.get("hr_bpm")
            assert isinstance(hr, (int, float))
            self._t.append(float(t_s))
            self._hr.append(float(hr))
        return HrContext(self._recent_low(t_s), self._earlier(t_s))

    def features(
        self,
        t_s: float,
        window: Mapping[str, object],
        baseline: Mapping[str, float],
        min_quality: float = MIN_SIGNAL_QUALITY,
    ) -> WindowFeatures:
        """Record one window (:meth:`observe`) and compute its stress features with that
        context (:func:`~heartsong.stress.features.window_features`): the one path the
        device, ``analyze --stress``, the training script and the benchmark share.

        Parameters
        ----------
        t_s:
            Time of the window's end, seconds.
        window:
            The window's metrics (see :meth:`observe`).
        baseline:
            The person's resting value of each metric (NaN when unknown).
        min_quality:
            Signal-quality gate of a usable window, 0..1.
        """
        context = self.observe(t_s, window, min_quality)
        return window_features(window, baseline, min_quality=min_quality, context=context)

    def _recent_low(self, t_s: float) -> float | None:
        """The ``low_quantile`` of the heart rates in ``(t_s - window_s, t_s]`` (linear
        interpolation between order statistics, as ``numpy.quantile``), bpm."""
        s = self.settings
        first = bisect.bisect_right(self._t, t_s - s.window_s + _EPS_S)
        values = sorted(self._hr[first:])
        n = len(values)
        if n < s.min_windows:
            return None
        pos = s.low_quantile * (n - 1)
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        return values[lo] + (values[hi] - values[lo]) * (pos - lo)

    def _earlier(self, t_s: float) -> float | None:
        """Heart rate of the latest window ending in ``[t_s - max_lag_s, t_s - lag_s]``."""
        s = self.settings
        k = bisect.bisect_right(self._t, t_s - s.lag_s + _EPS_S) - 1
        if k < 0 or self._t[k] < t_s - s.max_lag_s - _EPS_S:
            return None
        return self._hr[k]
