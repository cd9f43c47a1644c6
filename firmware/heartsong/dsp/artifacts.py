"""Beat-interval artefact detection and correction after Lipponen & Tarvainen (2019).

Lipponen JA, Tarvainen MP (2019). "A robust algorithm for heart rate variability time
series artefact correction using novel beat classification". J. Med. Eng. Technol.
43(3):173-181. The method Kubios HRV uses.

For the inter-beat intervals ``RR(j)`` (the interval ``j`` runs from beat ``j`` to beat
``j + 1``):

* ``dRR(j) = RR(j) - RR(j - 1)`` (the first one against the local median), normalised by
  the time-varying threshold ``Th1(j) = alpha * QD(|dRR|)``, where ``QD`` is the quartile
  deviation ``(Q3 - Q1) / 2`` over the 91 surrounding beats and ``alpha = 5.2``;
* ``mRR(j) = RR(j) - medRR(j)`` with ``medRR`` an 11-beat running median, negative values
  doubled, normalised by ``Th2 = alpha * QD(|mRR|)`` over 91 beats;
* subspace 1: ``S11 = dRR`` against ``S12(j) = max(dRR(j-1), dRR(j+1))`` if ``dRR(j) > 0``
  else ``min(...)``; subspace 2: ``S21 = dRR`` against ``S22(j) = min(dRR(j+1),
  dRR(j+2))`` if ``dRR(j) >= 0`` else ``max(...)``.

An interval with ``|dRR| > 1`` is *ectopic* when ``S11 > 1 and S12 < -c1 S11 - c2`` or
``S11 < -1 and S12 > -c1 S11 + c2`` (``c1 = 0.13``, ``c2 = 0.17``); otherwise it is *long*
(``S11 > 1 and S22 < -1``) or *short* (``S11 < -1 and S22 > 1``) or simply far from the
median (``|mRR| > 3``). A long one is a *missed* beat when ``|RR / 2 - medRR| < Th2`` and
a short one an *extra* beat when ``|RR(j) + RR(j + 1) - medRR| < Th2``; the following
interval is checked too when ``|dRR(j + 1)| < |dRR(j + 2)|`` (the paper's Fig. 1).

Correction keeps beat times and intervals consistent: an extra beat is removed (its two
intervals merge), a missed beat is inserted (the interval splits in equal parts; the
paper's test is generalised to ``n = round(RR / medRR)`` parts, at most
``MAX_MISSED_RUN + 1``), and an ectopic, long or short interval is interpolated by moving
the misplaced beat to the midpoint of its neighbours. Detection and correction repeat
until the number of artefacts stops falling (as in Kubios' iterative mode). An interval
longer than ``max_interp_ms`` or spanning more missing beats is not invented: the beat
series is split there into separate segments.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp import sorted_buffer
from heartsong.dsp.sorted_buffer import _sorted_insert, _sorted_remove, _sorted_replace
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = [
    "ARTIFACT_NAMES",
    "MAX_MISSED_RUN",
    "ArtifactCorrection",
    "correct_beats_lipponen2019",
    "rr_artifacts_lipponen2019",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

#: Per-interval labels (``flags``): 0 is a normal interval.
NORMAL = 0
ECTOPIC = 1
MISSED = 2
EXTRA = 3
LONG_SHORT = 4
#: Names of the artefact classes, indexed by their label.
ARTIFACT_NAMES: tuple[str, ...] = ("normal", "ectopic", "missed", "extra", "long_short")

#: Paper constants: threshold multiplier and the ectopic decision line.
ALPHA = 5.2
C1 = 0.13
C2 = 0.17
#: Beats over which the quartile deviation is taken, and the running-median length.
QD_WINDOW = 91
MEDIAN_WINDOW = 11
#: Most consecutive beats a missed-beat correction may insert.
MAX_MISSED_RUN = 2
#: Iterations of detection + correction at most.
MAX_ITERATIONS = 6


@njit(cache=True, nogil=True)
def _quantile_sorted(v: FloatArray, q: float) -> float:
    """Quantile of an already sorted array with linear interpolation (NumPy's default)."""
    pos = q * (v.shape[0] - 1)
    lo = int(pos)  # pos >= 0: truncation is the floor
    hi = min(lo + 1, v.shape[0] - 1)
    return float(v[lo] + (v[hi] - v[lo]) * (pos - lo))


@njit(cache=True, nogil=True)
def _rolling_quantiles_kernel(
    x: FloatArray, width: int, q_lo: float, q_hi: float, out: FloatArray
) -> None:
    """``out[i] = Q(q_hi) - Q(q_lo)`` of ``x`` over a centred window of ``width`` values
    (cut at the ends); with ``q_lo < 0`` just ``Q(q_hi)``.

    The window's values are kept sorted as it slides (the value that leaves is replaced
    by the one that enters), so a series of ``n`` values costs ``O(n * width)`` simple
    steps rather than a sort per value.
    """
    n = x.shape[0]
    half_lo = (width - 1) // 2
    half_hi = width // 2
    buf = np.empty(width)
    m = 0
    nxt = 0
    for i in range(n):
        gone = i - half_lo - 1
        come = i + half_hi
        if gone >= 0 and come < n:
            _sorted_replace(buf, m, x[gone], x[come])
            nxt = come + 1
        else:
            while nxt < n and nxt <= come:
                m = _sorted_insert(buf, m, x[nxt])
                nxt += 1
            if gone >= 0:
                m = _sorted_remove(buf, m, x[gone])
        hi = _quantile_sorted(buf[:m], q_hi)
        out[i] = hi - _quantile_sorted(buf[:m], q_lo) if q_lo >= 0.0 else hi


@njit(cache=True, nogil=True)
def _rolling_qd_kernel(x: FloatArray, width: int) -> FloatArray:
    """Quartile deviation ``(Q3 - Q1) / 2`` of ``|x|`` over a centred window of ``width``.

    The window is cut at the ends (as pandas ``rolling(center=True, min_periods=1)``).
    """
    out = np.empty(x.shape[0])
    _rolling_quantiles_kernel(np.abs(x), width, 0.25, 0.75, out)
    return 0.5 * out


@njit(cache=True, nogil=True)
def _rolling_median_kernel(x: FloatArray, width: int) -> FloatArray:
    """Median over a centred window of ``width`` values, cut at the ends."""
    out = np.empty(x.shape[0])
    _rolling_quantiles_kernel(x, width, -1.0, 0.5, out)
    return out


@njit(cache=True, nogil=True)
def _reflect(i: int, n: int) -> int:
    """Index reflected into ``[0, n)`` (``-1 -> 1``, ``n -> n - 2``), as ``np.pad`` reflect."""
    if n == 1:
        return 0
    while i < 0 or i >= n:
        if i < 0:
            i = -i
        if i >= n:
            i = 2 * (n - 1) - i
    return i


@njit(cache=True, nogil=True)
def _classify_kernel(
    rr: FloatArray, alpha: float, c1: float, c2: float, qd_window: int, med_window: int
) -> Int8Array:
    """Label every interval of ``rr`` (any time unit) with its artefact class (0 normal)."""
    n = rr.shape[0]
    labels = np.zeros(n, dtype=np.int8)
    if n < 3:
        return labels
    med = _rolling_median_kernel(rr, med_window)
    drr = np.empty(n)
    drr[0] = rr[0] - med[0]
    for j in range(1, n):
        drr[j] = rr[j] - rr[j - 1]
    th1 = alpha * _rolling_qd_kernel(drr, qd_window)
    mrr = np.empty(n)
    for j in range(n):
        d = rr[j] - med[j]
        mrr[j] = 2.0 * d if d < 0.0 else d
    th2 = alpha * _rolling_qd_kernel(mrr, qd_window)
    for j in range(n):
        drr[j] = drr[j] / th1[j] if th1[j] > 0.0 else 0.0
        mrr[j] = mrr[j] / th2[j] if th2[j] > 0.0 else 0.0

    s12 = np.zeros(n)
    s22 = np.zeros(n)
    for j in range(n):
        prev = drr[_reflect(j - 1, n)]
        nxt = drr[_reflect(j + 1, n)]
        nxt2 = drr[_reflect(j + 2, n)]
        if drr[j] > 0.0:
            s12[j] = max(prev, nxt)
        elif drr[j] < 0.0:
            s12[j] = min(prev, nxt)
        if drr[j] >= 0.0:
            s22[j] = min(nxt, nxt2)
        else:
            s22[j] = max(nxt, nxt2)

    # Ectopic beats first: the pattern spans two intervals (short-long or long-short), and
    # the interval before the one that meets the test belongs to the same event.
    ectopic = np.zeros(n, dtype=np.bool_)
    for j in range(n):
        s11 = drr[j]
        if (s11 > 1.0 and s12[j] < -c1 * s11 - c2) or (s11 < -1.0 and s12[j] > -c1 * s11 + c2):
            ectopic[j] = True
    j = 0
    while j < n:
        if ectopic[j]:
            labels[j] = 1  # ECTOPIC
            j += 2  # its partner interval is corrected with it
            continue
        if abs(drr[j]) <= 1.0 or (j + 1 < n and ectopic[j + 1]):
            j += 1
            continue
        # Long/short candidates: this interval, and the next if it looks worse after it.
        last = j + 1 if j + 2 < n and abs(drr[j + 1]) < abs(drr[j + 2]) else j
        k = j
        while k <= last:
            is_long = drr[k] > 1.0 and s22[k] < -1.0
            is_short = drr[k] < -1.0 and s22[k] > 1.0
            if not (is_long or is_short or abs(mrr[k]) > 3.0):
                k += 1
                continue
            parts = round(rr[k] / med[k]) if med[k] > 0.0 else 0
            if is_short and k + 1 < n and abs(rr[k] + rr[k + 1] - med[k]) < th2[k]:
                labels[k] = 3  # EXTRA: this interval and the next are one beat
                k += 2
                continue
            if is_long and parts >= 2 and abs(rr[k] / parts - med[k]) < th2[k]:
                labels[k] = 2  # MISSED (the paper's test for parts == 2)
            else:
                labels[k] = 4  # LONG_SHORT
            k += 1
        j = max(j + 1, k)
    return labels


def _check_rr(rr_ms: npt.ArrayLike) -> FloatArray:
    rr = np.ascontiguousarray(rr_ms, dtype=np.float64)
    if rr.ndim != 1:
        raise InputDataError("rr_ms", "a 1-D array of intervals in ms", rr.shape)
    if rr.size and not (np.all(np.isfinite(rr)) and np.all(rr > 0.0)):
        raise InputDataError("rr_ms", "finite, positive intervals in ms")
    return rr


def rr_artifacts_lipponen2019(
    rr_ms: npt.ArrayLike,
    *,
    alpha: float = ALPHA,
    c1: float = C1,
    c2: float = C2,
) -> Int8Array:
    """Classify each inter-beat interval (Lipponen & Tarvainen 2019), without correcting.

    Parameters
    ----------
    rr_ms:
        Consecutive inter-beat intervals of one unbroken beat series, in ms.
    alpha, c1, c2:
        The paper's threshold multiplier and ectopic decision line (dimensionless).

    Returns
    -------
    Int8Array
        One label per interval: 0 normal, 1 ectopic, 2 missed beat, 3 extra beat (the
        interval and the next one together make one beat), 4 long/short; see
        :data:`ARTIFACT_NAMES`.
    """
    rr = _check_rr(rr_ms)
    labels: Int8Array = _classify_kernel(rr, alpha, c1, c2, QD_WINDOW, MEDIAN_WINDOW)
    return labels


@dataclass(frozen=True, slots=True)
class ArtifactCorrection:
    """Corrected beats of a recording and what was changed.

    Attributes
    ----------
    beat_t_s:
        Corrected beat times, seconds, increasing.
    segment:
        Segment id per beat; intervals and successive differences never span segments.
    nn_ms:
        Corrected normal-to-normal interval ending at each beat, ms; NaN for the first
        beat of each segment (length ``n_beats``).
    flags:
        Per beat, the artefact class of the interval ending there (0 normal, see
        :data:`ARTIFACT_NAMES`); -1 for the first beat of a segment.
    counts:
        Number of artefacts found per class name (``ectopic``, ``missed``, ``extra``,
        ``long_short``), in the input beats.
    n_intervals:
        Intervals in the input (within segments).
    artifact_pct:
        ``100 * sum(counts) / n_intervals`` (0 when there is no interval), in %.
    """

    beat_t_s: FloatArray
    segment: IntArray
    nn_ms: FloatArray
    flags: Int8Array
    counts: dict[str, int]
    n_intervals: int
    artifact_pct: float

    def nn_series(self) -> tuple[FloatArray, FloatArray, BoolArray, Int8Array]:
        """The intervals as a series: (end times s, NN ms, valid successive pairs, flags).

        Returns
        -------
        tuple
            Times of the beats ending each interval (s), the intervals (ms), a mask of
            length ``n - 1`` that is True where two intervals follow each other in one
            segment, and each interval's flag.
        """
        has = np.isfinite(self.nn_ms)
        idx = np.flatnonzero(has)
        seg = self.segment[idx]
        valid: BoolArray = (np.diff(idx) == 1) & (seg[1:] == seg[:-1])
        return self.beat_t_s[idx], self.nn_ms[idx], valid, self.flags[idx]


@njit(cache=True, nogil=True)
def _correct_once_kernel(
    t: FloatArray,
    flags: Int8Array,
    labels: Int8Array,
    med_ms: FloatArray,
    max_interp_ms: float,
    max_run: int,
) -> tuple[FloatArray, Int8Array, BoolArray]:
    """Apply one round of corrections to beat times ``t`` (s).

    ``labels[j]`` belongs to the interval from ``t[j]`` to ``t[j + 1]``; ``flags[i]`` is
    the class of the interval ending at beat ``i`` so far. Returns the new times, their
    flags, and a mask of the new beats that must start a new segment.
    """
    n_int = t.shape[0] - 1
    moved = t.copy()
    fl = flags.copy()
    # Ectopic at interval j: the beat that starts it (shared with interval j - 1) is off.
    # Long/short: of the interval's two beats, the one whose other interval is further
    # from the median is off. Either is moved to the midpoint of its neighbours, which
    # interpolates the two intervals it bounds.
    for j in range(n_int):
        lab = labels[j]
        if lab == ECTOPIC:
            k = j
        elif lab == LONG_SHORT:
            before = abs((t[j] - t[j - 1]) * 1000.0 - med_ms[j - 1]) if j > 0 else -1.0
            after = abs((t[j + 2] - t[j + 1]) * 1000.0 - med_ms[j + 1]) if j + 1 < n_int else -1.0
            k = j + 1 if after >= before else j
        else:
            continue
        if 0 < k < t.shape[0] - 1:
            moved[k] = 0.5 * (t[k - 1] + t[k + 1])
            fl[k] = lab
            fl[k + 1] = lab

    cap = t.shape[0] + max_run * n_int
    out_t = np.empty(cap)
    out_f = np.empty(cap, dtype=np.int8)
    split = np.zeros(cap, dtype=np.bool_)
    out_t[0] = moved[0]
    out_f[0] = fl[0]
    m = 1
    j = 0
    while j < n_int:
        lab = labels[j]
        start = moved[j]
        end = moved[j + 1]
        if lab == EXTRA and j + 1 < n_int:
            out_t[m] = moved[j + 2]  # beat j + 1 goes: its two intervals merge
            out_f[m] = EXTRA
            m += 1
            j += 2
            continue
        if lab == MISSED:
            span_ms = (end - start) * 1000.0
            parts = max(2, round(span_ms / med_ms[j]))
            if parts <= max_run + 1 and span_ms / parts <= max_interp_ms:
                step = (end - start) / parts
                for p in range(1, parts):
                    out_t[m] = start + step * p
                    out_f[m] = MISSED
                    m += 1
            else:
                split[m] = True  # too long a hole: a gap, not invented beats
            out_t[m] = end
            out_f[m] = MISSED
            m += 1
            j += 1
            continue
        out_t[m] = end
        out_f[m] = fl[j + 1]
        m += 1
        j += 1
    return out_t[:m].copy(), out_f[:m].copy(), split[:m].copy()


def _correct_segment(
    t: FloatArray, max_interp_ms: float, counts: dict[str, int]
) -> tuple[FloatArray, Int8Array, IntArray]:
    """Iteratively correct one unbroken beat series.

    Returns the corrected times (s), the flag of the interval ending at each beat, and a
    sub-segment number per beat (a hole too long to fill splits the series). ``counts``
    receives the artefacts found in the first pass, i.e. in the input beats.
    """
    flags = np.zeros(t.shape[0], dtype=np.int8)
    sub = np.zeros(t.shape[0], dtype=np.int64)
    n_prev = -1
    for _ in range(MAX_ITERATIONS):
        if t.shape[0] < 4:
            break
        rr = np.diff(t) * 1000.0
        labels = _classify_kernel(rr, ALPHA, C1, C2, QD_WINDOW, MEDIAN_WINDOW)
        # Never re-interpolate across a hole already declared a gap.
        labels[sub[1:] != sub[:-1]] = NORMAL
        n_found = int(np.count_nonzero(labels))
        if n_found == 0 or (n_prev >= 0 and n_found >= n_prev):
            break
        if n_prev < 0:
            for lab in range(1, len(ARTIFACT_NAMES)):
                counts[ARTIFACT_NAMES[lab]] += int(np.count_nonzero(labels == lab))
        n_prev = n_found
        med = _rolling_median_kernel(rr, MEDIAN_WINDOW)
        t_new, flags, split = _correct_once_kernel(
            t, flags, labels, med, max_interp_ms, MAX_MISSED_RUN
        )
        # Carry the sub-segment numbers over to the new beats, then add the new splits.
        sub_new = sub[np.clip(np.searchsorted(t, t_new, side="right") - 1, 0, t.shape[0] - 1)]
        t, sub = t_new, sub_new + np.cumsum(split)
    return t, flags, sub


def correct_beats_lipponen2019(
    beat_t_s: npt.ArrayLike,
    segment: npt.ArrayLike | None = None,
    *,
    max_interp_ms: float = 2000.0,
) -> ArtifactCorrection:
    """Detect and correct beat artefacts (Lipponen & Tarvainen 2019) in a beat series.

    Parameters
    ----------
    beat_t_s:
        Beat times in seconds, increasing.
    segment:
        Optional segment id per beat (equal ids: no gap between); each segment is
        corrected on its own and no interval spans two segments.
    max_interp_ms:
        An interval is never split into parts longer than this (ms); longer holes become a
        segment break instead of invented beats.

    Returns
    -------
    ArtifactCorrection
        Corrected beats, NN intervals (ms), per-beat flags, counts per class and the
        artefact percentage.
    """
    t_all = np.ascontiguousarray(beat_t_s, dtype=np.float64)
    if t_all.ndim != 1 or not np.all(np.isfinite(t_all)):
        raise InputDataError("beat_t_s", "a 1-D array of finite beat times in seconds")
    if np.any(np.diff(t_all) <= 0.0):
        raise InputDataError("beat_t_s", "strictly increasing beat times in seconds")
    if segment is None:
        seg_all = np.zeros(t_all.shape[0], dtype=np.int64)
    else:
        seg_all = np.ascontiguousarray(segment, dtype=np.int64)
        if seg_all.shape != t_all.shape:
            raise InputDataError("segment", f"one id per beat, shape {t_all.shape}", seg_all.shape)
    counts = {name: 0 for name in ARTIFACT_NAMES[1:]}
    n_intervals = 0
    times: list[FloatArray] = []
    segs: list[IntArray] = []
    nns: list[FloatArray] = []
    flag_parts: list[Int8Array] = []
    next_id = 0
    # A hole that no correction may fill (more than MAX_MISSED_RUN beats, or parts longer
    # than max_interp_ms) is a gap before classification starts: beats are never moved
    # or interpolated across it, and it does not inflate the thresholds.
    rr_all = np.diff(t_all) * 1000.0
    if rr_all.size:
        typical = float(np.median(rr_all))
        hole = rr_all > min((MAX_MISSED_RUN + 1.5) * typical, (MAX_MISSED_RUN + 1) * max_interp_ms)
        seg_all = seg_all + np.concatenate([[0], np.cumsum(hole)])
    bounds = np.flatnonzero(np.diff(seg_all) != 0) + 1
    for part in np.split(t_all, bounds):
        if part.size == 0:
            continue
        n_intervals += part.size - 1
        t, flags, sub = _correct_segment(part, max_interp_ms, counts)
        seg = sub + next_id
        next_id = int(seg[-1]) + 1
        nn = np.full(t.shape[0], np.nan)
        nn[1:] = np.diff(t) * 1000.0
        starts = np.concatenate([[True], seg[1:] != seg[:-1]])
        nn[starts] = np.nan
        flags[starts] = -1
        times.append(t)
        segs.append(seg)
        nns.append(nn)
        flag_parts.append(flags)
    if not times:
        empty = np.zeros(0)
        return ArtifactCorrection(
            empty, np.zeros(0, dtype=np.int64), empty, np.zeros(0, dtype=np.int8), counts, 0, 0.0
        )
    total = sum(counts.values())
    pct = 100.0 * total / n_intervals if n_intervals > 0 else 0.0
    if total:
        logger.debug("artefacts corrected: %s (%.1f %%)", counts, pct)
    return ArtifactCorrection(
        beat_t_s=np.concatenate(times),
        segment=np.concatenate(segs),
        nn_ms=np.concatenate(nns),
        flags=np.concatenate(flag_parts),
        counts=counts,
        n_intervals=n_intervals,
        artifact_pct=pct,
    )


# numba's cache watches a kernel's own file only: a digest of heartsong.dsp.sorted_buffer,
# whose kernels these inline, is frozen into the cache (see heartsong.numba_cache).
_SOURCES_DIGEST = sources_digest((sorted_buffer,))


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of the sorted-buffer source when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))
