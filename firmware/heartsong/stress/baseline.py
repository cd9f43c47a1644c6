"""The person's resting baseline: learned at rest, kept across reboots, population fallback.

HRV differs far more between people than within one person, so the stress features
(:mod:`heartsong.stress.features`) compare each window with the same person at rest. A
:class:`Baseline` holds the median of every raw metric (:data:`RAW_METRICS`) over usable
windows at rest.

* In a recording (``heartsong analyze --stress``, and training) the rest is the first
  ``baseline_s`` seconds, as in the lab protocol the model was trained on
  (:func:`baseline_from_start`).
* On the device (:class:`BaselineLearner`) the rest is the first ``learn_s`` seconds of
  each session (the person lying down; a session starts with the first update and again
  after ``session_gap_s`` without a usable window). Each session's median is blended into
  the stored personal baseline (a running mean over sessions, then an exponential one
  with weight ``session_weight``, so the baseline follows slow changes), which is saved as
  JSON in the state directory and loaded at start-up. Until the first session has been
  learned, the population baseline of the training data (from the model's spec) is used.

A stored file that cannot be read is reported and replaced at the next save: the device
never stops because of it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from heartsong.errors import InputDataError
from heartsong.private_file import write_private
from heartsong.stress.features import MIN_SIGNAL_QUALITY, RAW_METRICS, REQUIRED_METRICS, gate_reason

__all__ = [
    "BASELINE_FILE",
    "MIN_BASELINE_WINDOWS",
    "Baseline",
    "BaselineLearner",
    "baseline_from_start",
    "baseline_from_windows",
    "blend_baselines",
    "load_baseline",
    "save_baseline",
]

logger = logging.getLogger(__name__)

#: File name of the personal baseline in the state directory.
BASELINE_FILE = "stress_baseline.json"
#: Fewest usable windows a baseline is learned from: about 80 s of clean signal at a 10-s
#: step (each window is already a 60-s median). A personal baseline from a short clean
#: stretch beats the population's (HRV differs far more between people than within one);
#: on the Stress-Predict wrist recordings, where movement leaves few clean windows at the
#: start, 6 windows left 9 of 26 people on the population baseline and 3 left 6 (LOSO in
#: models/MODEL_CARD.md).
MIN_BASELINE_WINDOWS = 3
_FORMAT = "heartsong-stress-baseline"
_VERSION = 1

BaselineSource = Literal["personal", "population"]


@dataclass(frozen=True, slots=True)
class Baseline:
    """Resting values of the raw metrics of one person (or of the population).

    Attributes
    ----------
    values:
        Median at rest of each :data:`RAW_METRICS` entry, in that metric's unit (bpm, ms,
        %, breaths/min, 0..1); NaN when it was never measured at rest.
    source:
        ``"personal"`` or ``"population"``.
    n_windows:
        Usable windows behind the latest estimate.
    sessions:
        Sessions blended into a personal baseline (0 for others).
    """

    values: dict[str, float]
    source: BaselineSource = "personal"
    n_windows: int = 0
    sessions: int = 0

    def __post_init__(self) -> None:
        for name in REQUIRED_METRICS:
            v = self.values.get(name)
            if v is None or not math.isfinite(v) or (name != "pnn50_pct" and v <= 0.0):
                raise InputDataError(f"baseline.{name}", "a finite, positive resting value", v)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (NaN becomes None)."""
        return {
            "source": self.source,
            "n_windows": self.n_windows,
            "sessions": self.sessions,
            "values": {
                k: (v if math.isfinite(v) else None) for k, v in self.values.items()
            },
        }

    @classmethod
    def from_values(
        cls, values: Mapping[str, object], where: str, source: BaselineSource = "population"
    ) -> Baseline:
        """A baseline from a mapping of metric name to number (None for unknown).

        Raises
        ------
        InputDataError
            Naming ``where`` and the metric, when a value is not a number or a required
            one is missing.
        """
        out: dict[str, float] = {}
        for name in RAW_METRICS:
            v = values.get(name)
            if v is None:
                out[name] = math.nan
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[name] = float(v)
            else:
                raise InputDataError(f"{where}.{name}", "a number or null", v)
        try:
            return cls(out, source=source)
        except InputDataError as exc:
            raise InputDataError(f"{where}: {exc.field}", exc.expected, exc.value) from exc


def baseline_from_windows(
    windows: Iterable[Mapping[str, object]],
    *,
    min_windows: int = MIN_BASELINE_WINDOWS,
    min_quality: float = MIN_SIGNAL_QUALITY,
) -> Baseline | None:
    """Median of each raw metric over the usable windows, or None when too few.

    Parameters
    ----------
    windows:
        Window metrics under :data:`RAW_METRICS` names (None when not measured).
    min_windows:
        Fewest usable windows (:func:`heartsong.stress.features.gate_reason`).
    min_quality:
        Lowest signal quality of a usable window, 0..1.

    Returns
    -------
    Baseline or None
        A personal baseline; a metric never measured in the usable windows is NaN.
    """
    usable = [w for w in windows if not gate_reason(w, min_quality)]
    if len(usable) < min_windows:
        return None
    values: dict[str, float] = {}
    for name in RAW_METRICS:
        col = [_number(w.get(name)) for w in usable]
        finite = np.array([v for v in col if math.isfinite(v)], dtype=np.float64)
        values[name] = float(np.median(finite)) if finite.size else math.nan
    return Baseline(values, source="personal", n_windows=len(usable))


def baseline_from_start(
    windows: Iterable[Mapping[str, object]],
    baseline_s: float,
    population: Baseline,
    *,
    min_quality: float = MIN_SIGNAL_QUALITY,
) -> Baseline:
    """The baseline of a recording: its windows ending within the first ``baseline_s``.

    Parameters
    ----------
    windows:
        Windows with ``t_end_s`` (seconds from the start) and the raw metrics.
    baseline_s:
        Length of the resting start, seconds.
    population:
        Returned when the start holds fewer than :data:`MIN_BASELINE_WINDOWS` usable
        windows.
    min_quality:
        Lowest signal quality of a usable window, 0..1.
    """
    if not (math.isfinite(baseline_s) and baseline_s > 0.0):
        raise InputDataError("baseline_s", "a positive number of seconds", baseline_s)
    start = [w for w in windows if _number(w.get("t_end_s")) <= baseline_s + 1e-9]
    personal = baseline_from_windows(start, min_quality=min_quality)
    return personal if personal is not None else population


def blend_baselines(stored: Baseline | None, session: Baseline, weight: float) -> Baseline:
    """Fold one session's baseline into the stored one.

    The result is ``(1 - w) * stored + w * session`` per metric with
    ``w = max(1 / (sessions + 1), weight)``: the plain mean of the first ``1 / weight``
    sessions, then an exponential average. A metric unknown on one side keeps the other.
    """
    if stored is None or stored.source != "personal":
        return Baseline(dict(session.values), "personal", session.n_windows, 1)
    w = max(1.0 / (stored.sessions + 1), weight)
    values: dict[str, float] = {}
    for name in RAW_METRICS:
        a, b = stored.values.get(name, math.nan), session.values.get(name, math.nan)
        if not math.isfinite(a):
            values[name] = b
        elif not math.isfinite(b):
            values[name] = a
        else:
            values[name] = (1.0 - w) * a + w * b
    return Baseline(values, "personal", session.n_windows, stored.sessions + 1)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def load_baseline(path: Path) -> Baseline | None:
    """Read a stored personal baseline; None when absent or unreadable (logged).

    Parameters
    ----------
    path:
        The JSON file written by :func:`save_baseline`.
    """
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise InputDataError(f"{path}: format", f"{_FORMAT!r}", doc.get("format")
                                 if isinstance(doc, dict) else type(doc).__name__)
        if doc.get("version") != _VERSION:
            raise InputDataError(f"{path}: version", str(_VERSION), doc.get("version"))
        values = doc.get("values")
        if not isinstance(values, dict):
            raise InputDataError(f"{path}: values", "an object of metric values")
        base = Baseline.from_values(values, f"{path}: values", "personal")
        sessions = doc.get("sessions")
        n_windows = doc.get("n_windows")
        if not isinstance(sessions, int) or sessions < 1:
            raise InputDataError(f"{path}: sessions", "a positive integer", sessions)
        return Baseline(
            base.values, "personal", n_windows if isinstance(n_windows, int) else 0, sessions
        )
    except (OSError, ValueError) as exc:  # InputDataError and JSONDecodeError are ValueErrors
        logger.warning("stress baseline %s unusable (%s); starting from the population", path,
                       exc)
        return None


def save_baseline(path: Path, baseline: Baseline, wall_s: float) -> bool:
    """Write a personal baseline atomically (temporary file, then rename).

    Parameters
    ----------
    path:
        Destination JSON file; its directory must exist.
    baseline:
        The baseline to keep.
    wall_s:
        Unix time of the update, seconds (recorded in the file).

    Returns
    -------
    bool
        False when the file could not be written (logged; the baseline stays in memory).
    """
    doc = {"format": _FORMAT, "version": _VERSION, "updated_wall_s": round(wall_s, 3),
           **baseline.as_dict()}
    try:
        write_private(path, json.dumps(doc, indent=1) + "\n")
    except OSError as exc:
        logger.error("cannot save the stress baseline to %s: %s", path, exc.strerror or exc)
        return False
    return True


@dataclass
class BaselineLearner:
    """Learns the personal baseline on the device and keeps it across reboots.

    Parameters
    ----------
    population:
        Fallback until a personal baseline exists (the training data's resting values).
    path:
        JSON file in the state directory (None: nothing is stored).
    learn_s:
        Length of the resting start of a session, seconds.
    session_gap_s:
        A new session starts after this long without a usable window, seconds.
    session_weight:
        Weight of a new session in the stored baseline once more than ``1 / weight``
        sessions were learned (see :func:`blend_baselines`).
    min_quality:
        Lowest signal quality of a usable window, 0..1.
    """

    population: Baseline
    path: Path | None = None
    learn_s: float = 300.0
    session_gap_s: float = 1800.0
    session_weight: float = 0.2
    min_quality: float = MIN_SIGNAL_QUALITY
    stored: Baseline | None = field(default=None, init=False)
    _session_t0: float | None = field(default=None, init=False)
    _last_usable_t: float | None = field(default=None, init=False)
    _sample: list[dict[str, object]] = field(default_factory=list, init=False)
    _learning: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        for name, value in (("learn_s", self.learn_s), ("session_gap_s", self.session_gap_s)):
            if not (math.isfinite(value) and value > 0.0):
                raise InputDataError(name, "a positive number of seconds", value)
        if not 0.0 < self.session_weight <= 1.0:
            raise InputDataError("session_weight", "a weight in (0, 1]", self.session_weight)
        if self.path is not None:
            self.stored = load_baseline(self.path)
            if self.stored is not None:
                logger.info("stress baseline loaded from %s (%d sessions)", self.path,
                            self.stored.sessions)

    @property
    def current(self) -> Baseline:
        """The baseline in force: the stored personal one, else the population's."""
        return self.stored if self.stored is not None else self.population

    @property
    def learning(self) -> bool:
        """True while the resting start of a session is being collected."""
        return self._learning

    def observe(self, t_s: float, window: Mapping[str, object], wall_s: float) -> None:
        """Take one metrics update into account.

        Parameters
        ----------
        t_s:
            Monotonic time of the update, seconds.
        window:
            Its metrics under :data:`RAW_METRICS` names.
        wall_s:
            Unix time, seconds (recorded when the baseline is saved).
        """
        usable = not gate_reason(window, self.min_quality)
        last = self._last_usable_t if self._last_usable_t is not None else self._session_t0
        if self._session_t0 is None or (last is not None and t_s - last > self.session_gap_s):
            if self._learning:
                self._finish(wall_s)
            self._session_t0 = t_s
            self._last_usable_t = None
            self._sample = []
            self._learning = True
            logger.info("stress baseline: learning from the first %.0f s of this session",
                        self.learn_s)
        if usable:
            self._last_usable_t = t_s
        if not self._learning:
            return
        if t_s - self._session_t0 <= self.learn_s:
            if usable:
                self._sample.append({k: window.get(k) for k in RAW_METRICS})
        else:
            self._finish(wall_s)

    def _finish(self, wall_s: float) -> None:
        self._learning = False
        session = baseline_from_windows(self._sample, min_quality=self.min_quality)
        n = len(self._sample)
        self._sample = []
        if session is None:
            logger.warning(
                "stress baseline: only %d usable windows at the start of this session "
                "(need %d); keeping the %s baseline", n, MIN_BASELINE_WINDOWS,
                self.current.source,
            )
            return
        self.stored = blend_baselines(self.stored, session, self.session_weight)
        logger.info("stress baseline updated from %d windows (%d sessions)", n,
                    self.stored.sessions)
        if self.path is not None:
            save_baseline(self.path, self.stored, wall_s)
