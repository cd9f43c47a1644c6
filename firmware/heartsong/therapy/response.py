"""The body's answer to a soundscape: how heart rate, RMSSD and stress moved while it played.

An *episode* is one stay of one soundscape in a ``calm`` or ``wind_down`` session. While
it plays, :class:`ResponseRecorder` collects the metrics updates; when it ends (another
soundscape, sleep onset, the session's end, or ``window_s`` after its start)
:func:`measure_response` turns them into a :class:`Response`:

* the **reference** is the median of the clean updates in the first ``reference_s`` after
  the start: the metrics window (one minute) still lies mostly before the sound could act,
  so it is the person's level at the start of the episode;
* the **change** of each metric is the slope of a least-squares line through the
  reference and the clean updates after it, times ``window_s`` (so episodes of different
  lengths compare):
  heart rate in bpm, RMSSD as a log ratio (``ln(RMSSD_end / RMSSD_start)``, so a change
  is relative to the person's own level), ``p_stress`` in probability units;
* the changes are combined into one **calm score** (positive = calmer), each scaled by a
  typical between-night spread (``HR_SCALE_BPM``, ``RMSSD_SCALE_LOG``, ``P_STRESS_SCALE``,
  design choices of this project), averaged over the metrics present; the learner
  weights each by the inverse of its noise variance in the person's history (a metric
  that is noisy for this person counts less; inverse-variance weighting, e.g. Hartung
  et al. 2008).

The *usual drift* of a session (people calm down lying in bed, whatever plays) is not
the sound's doing. How much they calm depends on how long they have been in bed and on
how aroused they were to start with: the higher the start, the larger the fall (the law
of initial values, Wilder 1967). :func:`expected_drift` estimates it from the person's
own history: per metric, the slope of the change on the start level, fitted within
groups of the same soundscape and session phase (so it is not confounded with either),
plus the mean change of the episodes that started in the same phase of a session
(``PHASE_EDGES_S``), adjusted to the mean start level, averaged first per soundscape and
then over the soundscapes (so how often a sound was chosen does not move it). A phase
without history takes the nearest phase that has some; no history, no correction.
:func:`corrected` subtracts it: what remains is what the sound did beyond what usually
happens at that point of the person's sessions from that start level.

A measurement needs clean data: at least ``min_reference`` clean updates in the reference
window, at least ``min_length_s`` of episode, and at least ``min_clean_fraction`` of the
updates clean (signal quality at least ``quality_min`` and the metric present). Otherwise
:func:`measure_response` returns no response and the reason, and nothing is learnt.

The least-squares slope is the ordinary one (Gauss); using the change over minutes after
a stimulus against a pre-stimulus reference is the usual design of music-HRV studies
(e.g. Bernardi et al. 2006; Chuang et al. 2011).

References
----------
Bernardi L, Porta C, Sleight P (2006) Cardiovascular, cerebrovascular, and respiratory
changes induced by different types of music in musicians and non-musicians: the
importance of silence. Heart 92(4):445-452.
Hartung J, Knapp G, Sinha BK (2008) Statistical Meta-Analysis with Applications. Wiley.
Wilder J (1967) Stimulus and Response: The Law of Initial Value. Wright, Bristol.
Chuang CY et al. (2011) Effects of music therapy on heart rate variability in patients
with cancer. Integr Cancer Ther 10(4):312-316.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from heartsong.errors import InputDataError, check_number
from heartsong.events import Metrics

__all__ = [
    "HR_SCALE_BPM",
    "PHASE_EDGES_S",
    "P_STRESS_SCALE",
    "RMSSD_SCALE_LOG",
    "Drift",
    "DriftFit",
    "Response",
    "ResponseConfig",
    "ResponseOutcome",
    "ResponseRecorder",
    "Sample",
    "calm_score",
    "calm_terms",
    "corrected",
    "expected_drift",
    "fit_drift",
    "measure_response",
    "phase_bin",
]

#: Change of heart rate worth one calm unit, bpm.
HR_SCALE_BPM: Final = 3.0
#: Change of ln(RMSSD) worth one calm unit (about 16 %).
RMSSD_SCALE_LOG: Final = 0.15
#: Change of p_stress worth one calm unit.
P_STRESS_SCALE: Final = 0.1
#: Session phases (edges in seconds since the session started) of equal expected drift.
PHASE_EDGES_S: Final = (300.0, 900.0, 1800.0)


@dataclass(frozen=True, slots=True)
class ResponseConfig:
    """How an episode is measured (times in seconds, fractions 0..1).

    Attributes
    ----------
    reference_s:
        The reference is the median of the clean updates in the first ``reference_s``.
    window_s:
        At most this much of the episode is measured (the rest is not the start's answer).
    min_length_s:
        Shorter episodes give no response.
    min_reference:
        Clean updates needed in the reference window.
    min_clean_fraction:
        Share of the episode's updates that must be clean.
    quality_min:
        Signal quality at or above which an update is clean.
    """

    reference_s: float = 60.0
    window_s: float = 600.0
    min_length_s: float = 300.0
    min_reference: int = 3
    min_clean_fraction: float = 0.6
    quality_min: float = 0.5

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("reference_s", 10.0, 600.0),
            ("window_s", 120.0, 7200.0),
            ("min_length_s", 60.0, 7200.0),
            ("min_reference", 1, 100),
            ("min_clean_fraction", 0.0, 1.0),
            ("quality_min", 0.0, 1.0),
        ):
            check_number(f"therapy.response.{name}", getattr(self, name), lo, hi)
        if self.min_length_s > self.window_s or self.reference_s >= self.min_length_s:
            raise InputDataError(
                "therapy.response.min_length_s",
                "reference_s < min_length_s <= window_s",
                (self.reference_s, self.min_length_s, self.window_s),
            )


@dataclass(frozen=True, slots=True)
class Sample:
    """One metrics update of an episode (None: metric missing or signal not clean).

    ``t_s`` is seconds since the episode started.
    """

    t_s: float
    hr_bpm: float | None
    rmssd_ms: float | None
    p_stress: float | None


@dataclass(frozen=True, slots=True)
class Response:
    """The measured answer to one episode (changes over ``length_s``; see the module doc).

    Attributes
    ----------
    soundscape:
        The preset that played.
    start_wall_s:
        Unix time of the episode's start, s.
    session_s:
        Seconds since the session started when the episode started.
    length_s:
        Measured length, s.
    d_hr_bpm:
        Change of heart rate over ``window_s``, bpm (negative = slower), or None.
    d_rmssd_log:
        Change of ln(RMSSD) (positive = more variability), or None.
    d_p_stress:
        Change of the stress probability, or None.
    n_clean:
        Clean updates used.
    ref_hr_bpm, ref_rmssd_log, ref_p_stress:
        The reference (start) levels: bpm, ln(ms), probability (None: unknown).
    """

    soundscape: str
    start_wall_s: float
    session_s: float
    length_s: float
    d_hr_bpm: float | None
    d_rmssd_log: float | None
    d_p_stress: float | None
    n_clean: int
    ref_hr_bpm: float | None = None
    ref_rmssd_log: float | None = None
    ref_p_stress: float | None = None

    @property
    def calm(self) -> float:
        """The calm score of the raw changes (positive = calmer), see :func:`calm_score`."""
        return calm_score(self.d_hr_bpm, self.d_rmssd_log, self.d_p_stress)


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """A response, or None and why not."""

    response: Response | None
    reason: str


def calm_terms(
    d_hr_bpm: float | None, d_rmssd_log: float | None, d_p: float | None
) -> tuple[float | None, float | None, float | None]:
    """The scaled changes, signed so that positive is calmer (None where missing).

    ``-d_hr/HR_SCALE_BPM``, ``+d_ln_rmssd/RMSSD_SCALE_LOG`` and ``-d_p/P_STRESS_SCALE``.
    """
    return (
        None if d_hr_bpm is None else -d_hr_bpm / HR_SCALE_BPM,
        None if d_rmssd_log is None else d_rmssd_log / RMSSD_SCALE_LOG,
        None if d_p is None else -d_p / P_STRESS_SCALE,
    )


def calm_score(
    d_hr_bpm: float | None,
    d_rmssd_log: float | None,
    d_p: float | None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> float:
    """One number for "calmer": the weighted mean of the :func:`calm_terms` present.

    ``weights`` (heart rate, RMSSD, p_stress) default to equal; the learner uses the
    inverse of each term's noise variance in the person's own history. 0 when no term is
    present.
    """
    num = den = 0.0
    for term, w in zip(calm_terms(d_hr_bpm, d_rmssd_log, d_p), weights, strict=True):
        if term is not None:
            num += w * term
            den += w
    return num / den if den > 0.0 else 0.0


def _change(ts: list[float], ys: list[float], length_s: float) -> float | None:
    """Least-squares slope of ``ys`` over ``ts`` times ``length_s`` (None: under 3 points)."""
    if len(ts) < 3:
        return None
    mt = math.fsum(ts) / len(ts)
    my = math.fsum(ys) / len(ys)
    sxx = math.fsum((t - mt) ** 2 for t in ts)
    if sxx <= 0.0:
        return None
    sxy = math.fsum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True))
    return sxy / sxx * length_s


def measure_response(
    samples: list[Sample],
    soundscape: str,
    start_wall_s: float,
    session_s: float,
    cfg: ResponseConfig,
    *,
    expected_updates: int | None = None,
) -> ResponseOutcome:
    """The response of one episode from its samples (see the module docstring).

    Parameters
    ----------
    samples:
        The episode's updates in time order (``t_s`` from the episode's start).
    soundscape, start_wall_s, session_s:
        What played, and when the episode started (Unix s; seconds into the session).
    cfg:
        Measurement rules.
    expected_updates:
        Updates the episode should have had (default: ``len(samples)``), for the clean
        share.

    Returns
    -------
    ResponseOutcome
        The response, or None with the reason (too short, too little clean data).
    """
    inside = [s for s in samples if 0.0 <= s.t_s <= cfg.window_s]
    if not inside:
        return ResponseOutcome(None, "no updates while it played")
    length = inside[-1].t_s
    if length < cfg.min_length_s:
        return ResponseOutcome(
            None, f"played {length / 60:.1f} min < {cfg.min_length_s / 60:.1f} min"
        )
    expected = max(len(inside), expected_updates or 0)
    clean = [s for s in inside if s.hr_bpm is not None]
    share = len(clean) / expected
    if share < cfg.min_clean_fraction:
        return ResponseOutcome(
            None, f"clean signal {100 * share:.0f}% < {100 * cfg.min_clean_fraction:.0f}%"
        )
    ref = [s for s in clean if s.t_s <= cfg.reference_s]
    if len(ref) < cfg.min_reference:
        return ResponseOutcome(
            None,
            f"{len(ref)} clean updates in the first {cfg.reference_s:.0f} s "
            f"< {cfg.min_reference}",
        )
    after = [s for s in clean if s.t_s > cfg.reference_s]
    span = cfg.window_s

    def series(values: list[tuple[float, float | None]], ref_vals: list[float | None]) -> (
        float | None
    ):
        r = [v for v in ref_vals if v is not None]
        pts = [(t, v) for t, v in values if v is not None]
        if len(r) < cfg.min_reference or len(pts) < 3:
            return None
        ts = [0.0] + [t for t, _ in pts]
        ys = [statistics.median(r)] + [v for _, v in pts]
        return _change(ts, ys, span)

    t_ref = statistics.median(s.t_s for s in ref)
    ref_hr = [s.hr_bpm for s in ref]
    ref_rm = [math.log(s.rmssd_ms) if s.rmssd_ms else None for s in ref]
    ref_p = [s.p_stress for s in ref]
    d_hr = series([(s.t_s - t_ref, s.hr_bpm) for s in after], ref_hr)
    d_rm = series(
        [(s.t_s - t_ref, math.log(s.rmssd_ms) if s.rmssd_ms else None) for s in after], ref_rm
    )
    d_p = series([(s.t_s - t_ref, s.p_stress) for s in after], ref_p)
    if d_hr is None:
        return ResponseOutcome(None, "too few clean heart-rate updates after the start")

    def ref_of(vals: list[float | None]) -> float | None:
        r = [v for v in vals if v is not None]
        return statistics.median(r) if r else None

    refs = (ref_of(ref_hr), ref_of(ref_rm), ref_of(ref_p))
    return ResponseOutcome(
        Response(soundscape, start_wall_s, session_s, length, d_hr, d_rm, d_p, len(clean),
                 *refs),
        f"{len(clean)} clean updates over {length / 60:.1f} min",
    )


@dataclass(slots=True)
class ResponseRecorder:
    """Collects one episode's updates as they arrive (at most ``window_s`` of them).

    Parameters
    ----------
    soundscape:
        The preset playing.
    start_s, start_wall_s:
        Monotonic and Unix time of the episode's start, seconds.
    session_s:
        Seconds since the session started.
    cfg:
        Measurement rules.
    update_s:
        Nominal interval of metrics updates, s (for the expected count).
    """

    soundscape: str
    start_s: float
    start_wall_s: float
    session_s: float
    cfg: ResponseConfig
    update_s: float = 5.0
    samples: list[Sample] = field(default_factory=list)

    def add(self, metrics: Metrics, now_s: float) -> None:
        """Keep one update (unclean updates count as missing)."""
        t = now_s - self.start_s
        if t < 0.0 or t > self.cfg.window_s:
            return
        q = metrics.signal_quality
        ok = q is not None and q >= self.cfg.quality_min and metrics.hr_bpm is not None
        if not ok:
            self.samples.append(Sample(t, None, None, None))
            return
        rm = metrics.rmssd_ms if metrics.rmssd_ms is not None and metrics.rmssd_ms > 0 else None
        self.samples.append(Sample(t, metrics.hr_bpm, rm, metrics.p_stress))

    def full(self, now_s: float) -> bool:
        """Whether the measurement window has passed."""
        return now_s - self.start_s >= self.cfg.window_s

    def finish(self) -> ResponseOutcome:
        """The episode's response (see :func:`measure_response`)."""
        length = self.samples[-1].t_s if self.samples else 0.0
        expected = int(length / self.update_s) if self.update_s > 0 else None
        return measure_response(
            self.samples, self.soundscape, self.start_wall_s, self.session_s, self.cfg,
            expected_updates=expected,
        )


def phase_bin(session_s: float) -> int:
    """The session phase (0 = first ``PHASE_EDGES_S[0]`` seconds, ...) of ``session_s``."""
    return sum(1 for edge in PHASE_EDGES_S if session_s >= edge)


@dataclass(frozen=True, slots=True)
class Drift:
    """The change a session usually shows over ``window_s`` in one phase, whatever plays.

    Changes in the units of :class:`Response` (None: no history for that metric);
    ``episodes`` is the weighted number of episodes behind it.
    """

    d_hr_bpm: float | None = None
    d_rmssd_log: float | None = None
    d_p_stress: float | None = None
    episodes: float = 0.0

    @property
    def known(self) -> bool:
        """Whether any history stood behind the estimate."""
        return self.episodes > 0.0


_PAIRS: Final = (
    ("d_hr_bpm", "ref_hr_bpm"),
    ("d_rmssd_log", "ref_rmssd_log"),
    ("d_p_stress", "ref_p_stress"),
)


def _initial_value_slope(items: Sequence[tuple[Response, float]], y: str, x: str) -> (
    tuple[float, float]
):
    """Slope of change ``y`` on start level ``x`` within (soundscape, phase) groups, and
    the mean start level; (0, mean) when the levels do not vary within any group."""
    groups: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for r, w in items:
        yv, xv = getattr(r, y), getattr(r, x)
        if yv is None or xv is None or w <= 0.0:
            continue
        groups.setdefault((r.soundscape, phase_bin(r.session_s)), []).append((xv, yv, w))
    sxx = sxy = sw = sx = 0.0
    for pts in groups.values():
        gw = math.fsum(w for _, _, w in pts)
        mx = math.fsum(w * xv for xv, _, w in pts) / gw
        my = math.fsum(w * yv for _, yv, w in pts) / gw
        sxx += math.fsum(w * (xv - mx) ** 2 for xv, _, w in pts)
        sxy += math.fsum(w * (xv - mx) * (yv - my) for xv, yv, w in pts)
        sw += gw
        sx += gw * mx
    mean_x = sx / sw if sw > 0.0 else 0.0
    return (sxy / sxx if sxx > 1e-12 else 0.0), mean_x


def _balanced(items: Sequence[tuple[Response, float]], y: str, x: str, slope: float,
              mean_x: float) -> float | None:
    """Mean over soundscapes of each one's weighted mean change, adjusted to the mean
    start level (``y - slope * (x - mean_x)``)."""
    sums: dict[str, list[float]] = {}
    for r, w in items:
        v = getattr(r, y)
        if v is None or w <= 0.0:
            continue
        xv = getattr(r, x)
        if xv is not None:
            v -= slope * (xv - mean_x)
        acc = sums.setdefault(r.soundscape, [0.0, 0.0])
        acc[0] += w * v
        acc[1] += w
    means = [a / b for a, b in sums.values() if b > 0.0]
    return math.fsum(means) / len(means) if means else None


@dataclass(frozen=True, slots=True)
class DriftFit:
    """The drift model fitted to a history (see :func:`fit_drift`).

    ``slopes`` holds per metric (``d_hr_bpm``, ...) the law-of-initial-values slope and the
    mean start level; ``levels`` per session phase the balanced level of each metric
    (heart rate, RMSSD, p_stress; None: no data) and the weighted episodes behind it.
    """

    slopes: dict[str, tuple[float, float]]
    levels: dict[int, tuple[float | None, float | None, float | None, float]]


def fit_drift(history: Sequence[tuple[Response, float]]) -> DriftFit:
    """Fit the drift model once to ``history`` (weighted responses)."""
    slopes = {y: _initial_value_slope(history, y, x) for y, x in _PAIRS}
    by_bin: dict[int, list[tuple[Response, float]]] = {}
    for r, w in history:
        if w > 0.0:
            by_bin.setdefault(phase_bin(r.session_s), []).append((r, w))
    levels: dict[int, tuple[float | None, float | None, float | None, float]] = {}
    for b, items in by_bin.items():
        lv = [_balanced(items, y, x, *slopes[y]) for y, x in _PAIRS]
        levels[b] = (lv[0], lv[1], lv[2], math.fsum(w for _, w in items))
    return DriftFit(slopes, levels)


def expected_drift(
    history: Sequence[tuple[Response, float]], episode: Response, *, fit: DriftFit | None = None
) -> Drift:
    """The change expected for ``episode`` whatever played, from the person's history.

    Parameters
    ----------
    history:
        The person's past responses with a weight each (e.g. forgetting by age).
    episode:
        The episode to correct (its phase ``session_s`` and start levels are used).
    fit:
        :func:`fit_drift` of ``history``, when already computed (many episodes, one
        history).

    Returns
    -------
    Drift
        The phase's level, balanced over soundscapes (or the nearest phase with history),
        plus the law-of-initial-values term ``slope * (start level - mean start level)``
        (see the module docstring); empty without history.
    """
    f = fit if fit is not None else fit_drift(history)
    if not f.levels:
        return Drift()
    want = phase_bin(episode.session_s)
    b = min(f.levels, key=lambda k: (abs(k - want), k))
    *lv, episodes = f.levels[b]
    out: list[float | None] = []
    for (y, x), level in zip(_PAIRS, lv, strict=True):
        slope, mean_x = f.slopes[y]
        xe = getattr(episode, x)
        if level is not None and xe is not None:
            level += slope * (xe - mean_x)
        out.append(level)
    return Drift(out[0], out[1], out[2], episodes)


def corrected(resp: Response, drift: Drift) -> Response:
    """``resp`` with the expected drift subtracted from each change it has."""
    def sub(a: float | None, b: float | None) -> float | None:
        return None if a is None else a - (b or 0.0)

    return dataclasses.replace(
        resp,
        d_hr_bpm=sub(resp.d_hr_bpm, drift.d_hr_bpm),
        d_rmssd_log=sub(resp.d_rmssd_log, drift.d_rmssd_log),
        d_p_stress=sub(resp.d_p_stress, drift.d_p_stress),
    )
