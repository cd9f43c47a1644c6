"""Beat artefact correction after Lipponen & Tarvainen (2019), incremental for a stream.

Lipponen JA, Tarvainen MP (2019). "A robust algorithm for heart rate variability time
series artefact correction using novel beat classification". J. Med. Eng. Technol.
43(3):173-181.

The classification rules and the corrections are those of :mod:`heartsong.dsp.artifacts`
(read its docstring first): the same ``dRR`` / ``mRR`` subspaces, the same ectopic,
long/short, missed and extra rules, the same corrections (move a misplaced beat to the
midpoint of its neighbours, remove an extra beat, split an interval over missed beats,
split the series where a hole is too long to fill) and afterwards the same rejection of
intervals that are still implausible (outside 300-2000 ms, or more than 30 % from the
median of the 10 intervals each side). A stream forces three differences:

* the thresholds ``Th1 = alpha * QD(|dRR|)`` and ``Th2 = alpha * QD(|mRR|)`` are taken
  over the newest 91 intervals of the segment at each update, where the batch centres a
  91-interval window on every interval (a stream has no future);
* one pass of detection and correction instead of iterating until the count stops
  falling;
* a hole (an interval longer than 3.5 running medians or 6 s) splits the series as the
  beat arrives, judged against the median of the 11 intervals before it, where the batch
  uses the median of the whole record.

Cost. An update classifies only the intervals whose label is not yet final and corrects
only the beats after the last committed one: a label is final once ``LOOKAHEAD_BEATS``
further beats have arrived in its segment (every rule has looked at all the intervals it
needs) or the segment has ended, and a corrected beat is committed once every label that
can move, remove or flag it is final. Until then the tail is corrected provisionally,
exactly as the end of a recording is in the batch (windows cut at the end), and redone at
the next update. So an update costs the new beats plus the 91 intervals of the
thresholds, whatever the length of the window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.dsp import sorted_buffer
from heartsong.dsp.artifacts import (
    ALPHA,
    ARTIFACT_NAMES,
    C1,
    C2,
    MAX_MISSED_RUN,
    MEDIAN_WINDOW,
    QD_WINDOW,
)
from heartsong.dsp.beats import BeatWindow
from heartsong.dsp.sorted_buffer import _sorted_insert, _sorted_remove
from heartsong.errors import InputDataError
from heartsong.events import FloatArray
from heartsong.numba_cache import module_kernels, refresh_stale_kernels, sources_digest

__all__ = [
    "HOLE_FACTOR",
    "LOOKAHEAD_BEATS",
    "CorrectedWindow",
    "StreamingBeatCorrector",
]

logger = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]

#: Beats that must follow an interval in its segment before its label is final.
LOOKAHEAD_BEATS = 8
#: An interval longer than this many running medians is a hole, not a missed beat.
HOLE_FACTOR = MAX_MISSED_RUN + 1.5
#: Longest part an interval may be split into, ms (batch default ``max_interp_ms``).
MAX_INTERP_MS = 2000.0
#: Plausible NN intervals after correction, ms (200 to 30 beats per minute).
NN_RANGE_MS = (300.0, 2000.0)
#: After correction, an interval further than this fraction from the median of the
#: ``REJECT_HALF`` intervals each side is rejected (NaN) rather than reported.
MAX_DEVIATION = 0.3
REJECT_HALF = 10
#: Least number of plausible intervals around one for that median.
REJECT_MIN_COUNT = 5
#: An interval is also rejected when the plausible intervals within ``REJECT_HALF`` of it
#: span more than this ratio (longest / shortest, about 15 s of beats): no heart rhythm
#: the corrected series keeps does that, while noise in the pulse band (a moving hand) is
#: detected as beats at random intervals. The feasibility rule of Orphanidou et al.
#: (2015), IEEE J Biomed Health Inform 19(3):832-838, which limits max/min RR to 2.2 in
#: 10-s segments of ECG and PPG.
MAX_RANGE_RATIO = 2.2

# Rows of the raw float table.
_R_T, _R_RR, _R_AMP, _R_BASE, _R_Q, _R_MED = 0, 1, 2, 3, 4, 5
# Rows of the corrected float table.
_K_T, _K_NN, _K_NNC, _K_Q, _K_AMP, _K_BASE = 0, 1, 2, 3, 4, 5
# Fields of the state vector.
_S_RN = 0  # raw rows in use
_S_J = 1  # first interval (by the row that ends it) whose label is not final
_S_W = 2  # raw row of the last committed corrected beat (-1: none)
_S_MEDOK = 3  # first row whose running median is not final
_S_KCOM = 4  # corrected rows committed
_S_KHI = 5  # corrected rows written (committed + provisional)
_S_SEGOUT = 6  # output segment id of the last committed corrected beat
_S_GAP = 7  # 1 when the next beat starts a new segment (a gap was marked)
_S_S0 = 8  # first raw row of the segment being corrected
_S_KLO = 9  # first live corrected row
_S_RLO = 10  # first raw row inside the span (older ones are kept only as context)
_N_STATE = 11
# Parameters of the update kernel.
(_FP_ALPHA, _FP_C1, _FP_C2, _FP_MAX_INTERP, _FP_NN_LO, _FP_NN_HI, _FP_MAX_DEV,
 _FP_MAX_RATIO) = range(8)
_IP_QD_WINDOW, _IP_MED_WINDOW, _IP_LOOKAHEAD, _IP_MAX_RUN = 0, 1, 2, 3
_IP_REJECT_HALF, _IP_REJECT_MIN, _IP_MAX_BEATS = 4, 5, 6
# Label values (as in heartsong.dsp.artifacts).
_NORMAL, _ECTOPIC, _MISSED, _EXTRA, _LONG_SHORT = 0, 1, 2, 3, 4
_N_LABELS = 5


@njit(cache=True, nogil=True)
def _median_of(buf: FloatArray, m: int) -> float:
    """Median of ``buf[:m]`` (insertion-sorted in place); NaN when ``m == 0``."""
    for i in range(1, m):
        v = buf[i]
        k = i - 1
        while k >= 0 and buf[k] > v:
            buf[k + 1] = buf[k]
            k -= 1
        buf[k + 1] = v
    if m == 0:
        return math.nan
    half = m // 2
    if m % 2:
        return float(buf[half])
    return float(0.5 * (buf[half - 1] + buf[half]))


@njit(cache=True, nogil=True)
def _select(a: FloatArray, lo: int, hi: int, k: int) -> None:
    """Reorder ``a[lo:hi]`` so that ``a[k]`` holds the value it would hold sorted, smaller
    or equal values before it and larger or equal after (Hoare's quickselect)."""
    while hi - lo > 1:
        mid = (lo + hi - 1) // 2
        # median of three as the pivot
        x, y, z = a[lo], a[mid], a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        i, j = lo, hi - 1
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j + 1
        elif k >= i:
            lo = i
        else:
            return


@njit(cache=True, nogil=True)
def _quantile_selected(a: FloatArray, q: float) -> float:
    """Quantile ``q`` of ``a`` with NumPy's linear interpolation, by selection (``a`` is
    reordered)."""
    n = a.shape[0]
    pos = q * (n - 1)
    k = int(pos)  # pos >= 0: truncation is the floor
    _select(a, 0, n, k)
    below = a[k]
    if k + 1 >= n or pos == k:
        return float(below)
    above = a[k + 1]
    for i in range(k + 2, n):  # the next value up is the least of those after k
        above = min(above, a[i])
    return float(below + (above - below) * (pos - k))


@njit(cache=True, nogil=True)
def _quartile_deviation(v: FloatArray) -> float:
    """``(Q3 - Q1) / 2`` with NumPy's linear interpolation; 0 for an empty array.

    By selection rather than sorting (``v`` is reordered): thresholds are taken at every
    update.
    """
    if v.shape[0] == 0:
        return 0.0
    q3 = _quantile_selected(v, 0.75)
    return 0.5 * (q3 - _quantile_selected(v, 0.25))


@njit(cache=True, nogil=True)
def _add_raw_kernel(
    raw: FloatArray,
    rseg: IntArray,
    rlab: Int8Array,
    state: IntArray,
    t: FloatArray,
    rr: FloatArray,
    amp: FloatArray,
    base: FloatArray,
    qual: FloatArray,
    measured: bool,
    hole_factor: float,
    hole_max_ms: float,
    med_window: int,
    accepted: FloatArray,
) -> int:
    """Append the beats after the newest stored one; return how many (their times go to
    ``accepted``), the others are dropped.

    A detected beat's interval is the time since the previous beat of its segment; a
    ``measured`` one (a strap's) brings its own, kept even at the start of a segment (the
    strap measured it even when a notification was lost). The first beat after a marked
    gap starts a new segment, and so does one after a hole: an interval longer than
    ``hole_factor`` times the median of the up to ``med_window`` intervals before it in
    its segment (at least 3 of them), or longer than ``hole_max_ms``, whose interval is
    then dropped.
    """
    buf = np.empty(med_window)
    n_accepted = 0
    for i in range(t.shape[0]):
        row = state[_S_RN]
        if row > 0 and not t[i] > raw[_R_T, row - 1]:
            continue
        new_seg = row == 0 or state[_S_GAP] == 1
        if measured:
            value = rr[i]
        elif new_seg:
            value = math.nan
        else:
            value = (t[i] - raw[_R_T, row - 1]) * 1000.0
        if not new_seg:
            hole = value > hole_max_ms
            if not hole:
                m = 0
                k = row - 1
                cur = rseg[row - 1]
                while k >= 0 and m < med_window and rseg[k] == cur:
                    v = raw[_R_RR, k]
                    if math.isnan(v):
                        break
                    buf[m] = v
                    m += 1
                    k -= 1
                hole = m >= 3 and value > hole_factor * _median_of(buf, m)
            if hole:
                new_seg = True
                value = math.nan  # the time across a hole is not an interval
        raw[_R_T, row] = t[i]
        raw[_R_RR, row] = value
        raw[_R_AMP, row] = amp[i]
        raw[_R_BASE, row] = base[i]
        raw[_R_Q, row] = qual[i]
        raw[_R_MED, row] = math.nan
        rlab[row] = _NORMAL
        rseg[row] = (rseg[row - 1] + 1 if new_seg else rseg[row - 1]) if row > 0 else 0
        state[_S_GAP] = 0
        state[_S_RN] = row + 1
        accepted[n_accepted] = t[i]
        n_accepted += 1
    return n_accepted


@njit(cache=True, nogil=True)
def _reflect(i: int, lo: int, hi: int) -> int:
    """Index reflected into ``[lo, hi]`` (``lo - 1 -> lo + 1``), as ``np.pad`` reflect."""
    if hi == lo:
        return lo
    while i < lo or i > hi:
        if i < lo:
            i = 2 * lo - i
        if i > hi:
            i = 2 * hi - i
    return i


@njit(cache=True, nogil=True)
def _drr(raw: FloatArray, e: int, first: int) -> float:
    """``dRR`` of the interval ending at row ``e``; the first one against its median."""
    if e == first:
        return float(raw[_R_RR, e] - raw[_R_MED, e])
    return float(raw[_R_RR, e] - raw[_R_RR, e - 1])


@njit(cache=True, nogil=True)
def _mrr(raw: FloatArray, e: int) -> float:
    """``mRR`` of the interval ending at row ``e`` (negative deviations doubled)."""
    d = raw[_R_RR, e] - raw[_R_MED, e]
    return float(2.0 * d if d < 0.0 else d)


@njit(cache=True, nogil=True)
def _dv(dn: FloatArray, e: int, base: int, first: int, last: int) -> float:
    """Normalised ``dRR`` at row ``e`` reflected into ``[first, last]``; ``dn[k - base]``
    holds row ``k``."""
    return float(dn[_reflect(e, first, last) - base])


@njit(cache=True, nogil=True)
def _is_ectopic(
    dn: FloatArray, e: int, base: int, first: int, last: int, c1: float, c2: float
) -> bool:
    """The ectopic rule of subspace 1 for the interval ending at row ``e``."""
    s11 = _dv(dn, e, base, first, last)
    prev = _dv(dn, e - 1, base, first, last)
    nxt = _dv(dn, e + 1, base, first, last)
    s12 = 0.0
    if s11 > 0.0:
        s12 = max(prev, nxt)
    elif s11 < 0.0:
        s12 = min(prev, nxt)
    return (s11 > 1.0 and s12 < -c1 * s11 - c2) or (s11 < -1.0 and s12 > -c1 * s11 + c2)


@njit(cache=True, nogil=True)
def _s22(dn: FloatArray, e: int, base: int, first: int, last: int) -> float:
    """Subspace-2 ordinate of the interval ending at row ``e``."""
    nxt = _dv(dn, e + 1, base, first, last)
    nxt2 = _dv(dn, e + 2, base, first, last)
    if _dv(dn, e, base, first, last) >= 0.0:
        return min(nxt, nxt2)
    return max(nxt, nxt2)


@njit(cache=True, nogil=True)
def _threshold_samples(
    raw: FloatArray, rseg: IntArray, last: int, dv: FloatArray, mv: FloatArray
) -> int:
    """``|dRR|`` and ``|mRR|`` of the newest intervals up to row ``last`` (at most
    ``len(dv)``), across segments; returns how many. A segment's first interval is
    differenced against its median, as in the classification."""
    m = 0
    k = last
    while k >= 1 and m < dv.shape[0]:
        rr = raw[_R_RR, k]
        med = raw[_R_MED, k]
        if rr == rr and med == med:
            prev = raw[_R_RR, k - 1]
            same = (
                rseg[k - 1] == rseg[k] and prev == prev and raw[_R_MED, k - 1] == raw[_R_MED, k - 1]
            )
            dv[m] = abs(rr - prev) if same else abs(rr - med)
            d = rr - med
            mv[m] = abs(2.0 * d if d < 0.0 else d)
            m += 1
        k -= 1
    return m


@njit(cache=True, nogil=True)
def _classify_segment(
    raw: FloatArray,
    rlab: Int8Array,
    first: int,
    last: int,
    start: int,
    open_segment: bool,
    th1: float,
    th2: float,
    c1: float,
    c2: float,
    lookahead: int,
    young: bool,
) -> int:
    """Label the intervals ending at rows ``start..last`` of one segment.

    ``first..last`` are the rows ending the segment's intervals. Returns the first loop
    position whose decisions are not final (``last + 1`` or beyond when all are): in an
    open segment, a decision is final once ``lookahead`` intervals follow it, and not
    while the thresholds are ``young`` (taken over fewer intervals than the batch's
    centred window has at the start of a record). The last two intervals of an open
    segment stay unlabelled until their successors arrive: the rules compare each
    interval with the two after it, and mirrored ones (the batch's end of record) would
    turn ordinary variability into false ectopic beats at every update.
    """
    end = last - 2 if open_segment else last
    # Normalised dRR of every row the rules read (reflection reaches 3 rows back).
    base = max(first, start - 3)
    dn = np.empty(last - base + 1)
    for k in range(base, last + 1):
        dn[k - base] = _drr(raw, k, first) / th1 if th1 > 0.0 else 0.0
    for e in range(start, last + 1):
        rlab[e] = _NORMAL
    new_j = -1
    e = start
    while e <= end:
        if new_j < 0 and open_segment and (young or e + lookahead > last):
            new_j = e
        if _is_ectopic(dn, e, base, first, last, c1, c2):
            rlab[e] = _ECTOPIC
            e += 2
            continue
        if abs(_dv(dn, e, base, first, last)) <= 1.0 or (
            e + 1 <= last and _is_ectopic(dn, e + 1, base, first, last, c1, c2)
        ):
            e += 1
            continue
        stop = e
        if e + 2 <= last and abs(_dv(dn, e + 1, base, first, last)) < abs(
            _dv(dn, e + 2, base, first, last)
        ):
            stop = e + 1
        k = e
        while k <= stop:
            d = _dv(dn, k, base, first, last)
            s22 = _s22(dn, k, base, first, last)
            is_long = d > 1.0 and s22 < -1.0
            is_short = d < -1.0 and s22 > 1.0
            m = _mrr(raw, k) / th2 if th2 > 0.0 else 0.0
            if not (is_long or is_short or abs(m) > 3.0):
                k += 1
                continue
            rr = raw[_R_RR, k]
            med = raw[_R_MED, k]
            parts = round(rr / med) if med > 0.0 else 0
            if is_short and k + 1 <= last and abs(rr + raw[_R_RR, k + 1] - med) < th2:
                rlab[k] = _EXTRA
                k += 2
                continue
            if is_long and parts >= 2 and abs(rr / parts - med) < th2:
                rlab[k] = _MISSED
            else:
                rlab[k] = _LONG_SHORT
            k += 1
        e = max(e + 1, k)
    if new_j < 0:
        new_j = e if open_segment else max(e, last + 1)
    return new_j


@njit(cache=True, nogil=True)
def _update_medians(
    raw: FloatArray, lo: int, hi: int, first: int, last: int, half_lo: int, half_hi: int
) -> None:
    """Running median of the intervals around rows ``lo..hi`` within ``[first, last]``."""
    buf = np.empty(half_lo + half_hi + 1)
    for e in range(lo, hi + 1):
        m = 0
        for k in range(max(first, e - half_lo), min(last, e + half_hi) + 1):
            buf[m] = raw[_R_RR, k]
            m += 1
        raw[_R_MED, e] = _median_of(buf, m)


@njit(cache=True, nogil=True)
def _moved_flags(
    raw: FloatArray,
    rlab: Int8Array,
    a: int,
    s0: int,
    last: int,
    mt: FloatArray,
    mf: Int8Array,
) -> None:
    """Beat times after the moves of ectopic and long/short corrections, rows ``a..last``.

    ``mt[r - a]`` is the (moved) time of row ``r`` and ``mf[r - a]`` the label flagging
    the interval that ends there. Moves are applied in interval order from the original
    times, later ones overwriting earlier flags, as in the batch.
    """
    for r in range(a, last + 1):
        mt[r - a] = raw[_R_T, r]
        mf[r - a] = _NORMAL
    for e in range(max(s0 + 1, a), last + 1):
        lab = rlab[e]
        if lab == _ECTOPIC:
            k = e - 1
        elif lab == _LONG_SHORT:
            before = -1.0
            after = -1.0
            if e - 1 >= s0 + 1:
                before = abs(raw[_R_RR, e - 1] - raw[_R_MED, e - 1])
            if e + 1 <= last:
                after = abs(raw[_R_RR, e + 1] - raw[_R_MED, e + 1])
            k = e if after >= before else e - 1
        else:
            continue
        if s0 < k < last and k >= a:
            mt[k - a] = 0.5 * (raw[_R_T, k - 1] + raw[_R_T, k + 1])
            mf[k - a] = lab
            mf[k + 1 - a] = lab


@njit(cache=True, nogil=True)
def _put(
    kf: FloatArray,
    kflag: Int8Array,
    kseg: IntArray,
    kvalid: BoolArray,
    o: int,
    t: float,
    nn: float,
    flag: int,
    seg: int,
    q: float,
    amp: float,
    base: float,
) -> None:
    """Write one corrected beat at row ``o`` (and whether it pairs with the row before)."""
    kf[_K_T, o] = t
    kf[_K_NN, o] = nn
    kf[_K_NNC, o] = nn
    kf[_K_Q, o] = q
    kf[_K_AMP, o] = amp
    kf[_K_BASE, o] = base
    kflag[o] = flag
    kseg[o] = seg
    kvalid[o] = o > 0 and kseg[o - 1] == seg and flag == 0 and kflag[o - 1] == 0


@njit(cache=True, nogil=True)
def _update_kernel(
    raw: FloatArray,
    rseg: IntArray,
    rlab: Int8Array,
    kf: FloatArray,
    kflag: Int8Array,
    kseg: IntArray,
    kvalid: BoolArray,
    state: IntArray,
    counts: IntArray,
    fparams: FloatArray,
    iparams: IntArray,
) -> bool:
    """Classify, correct and commit the raw beats that arrived; see the module docstring.

    ``fparams`` and ``iparams`` hold the method's constants (``_FP_*``, ``_IP_*``).
    ``counts[label]`` counts the final labels, ``counts[0]`` the final intervals. The
    corrected table is compacted when the rewritten tail may not fit, and trimmed to the
    newest ``max_beats`` beats; returns False (nothing done) when even a compacted table
    has no room.
    """
    alpha = fparams[_FP_ALPHA]
    c1 = fparams[_FP_C1]
    c2 = fparams[_FP_C2]
    max_interp_ms = fparams[_FP_MAX_INTERP]
    nn_lo_ms = fparams[_FP_NN_LO]
    nn_hi_ms = fparams[_FP_NN_HI]
    max_dev = fparams[_FP_MAX_DEV]
    max_ratio = fparams[_FP_MAX_RATIO]
    qd_window = iparams[_IP_QD_WINDOW]
    med_window = iparams[_IP_MED_WINDOW]
    lookahead = iparams[_IP_LOOKAHEAD]
    max_run = iparams[_IP_MAX_RUN]
    reject_half = iparams[_IP_REJECT_HALF]
    reject_min = iparams[_IP_REJECT_MIN]
    # Room for the rewritten tail: every raw row after the last committed beat may become
    # up to max_run + 1 corrected ones.
    need = (state[_S_RN] - max(state[_S_W], 0) + 1) * (max_run + 1)
    if state[_S_KCOM] + need > kf.shape[1]:
        lo = state[_S_KLO]
        if state[_S_KCOM] - lo + need > kf.shape[1]:
            return False
        for i in range(state[_S_KHI] - lo):  # forward: the rows move to the front
            for r in range(kf.shape[0]):
                kf[r, i] = kf[r, lo + i]
            kflag[i] = kflag[lo + i]
            kseg[i] = kseg[lo + i]
            kvalid[i] = kvalid[lo + i]
        state[_S_KLO] -= lo
        state[_S_KCOM] -= lo
        state[_S_KHI] -= lo
    rn = state[_S_RN]
    if rn == 0:
        return True
    half_lo = (med_window - 1) // 2
    half_hi = med_window // 2
    o = state[_S_KCOM]  # corrected rows from here on are rewritten
    k_com_before = o
    committing = True
    w = state[_S_W]
    seg_out = state[_S_SEGOUT]
    s0 = state[_S_S0]
    while s0 < rn:
        s_end = max(s0, w)  # rows up to the last committed one are in this segment
        while s_end + 1 < rn and rseg[s_end + 1] == rseg[s0]:
            s_end += 1
        closed = s_end < rn - 1
        first = s0 + 1  # the row ending the segment's first interval
        # The segment's first beat opens a new output segment.
        if w < s0:
            seg_new = seg_out + 1 if o > 0 or w >= 0 else seg_out
            nn0 = raw[_R_RR, s0]  # a strap's measured interval, else NaN
            _put(
                kf,
                kflag,
                kseg,
                kvalid,
                o,
                raw[_R_T, s0],
                nn0,
                0 if nn0 == nn0 else -1,
                seg_new,
                raw[_R_Q, s0],
                raw[_R_AMP, s0],
                raw[_R_BASE, s0],
            )
            o += 1
            if committing:
                w = s0
                seg_out = seg_new
                state[_S_KCOM] = o
            cur_seg = seg_new
            prev_row = s0
            prev_moved = False
            a = s0
        else:
            a = w
            cur_seg = seg_out
            prev_row = w
            prev_moved = kf[_K_T, o - 1] != raw[_R_T, w]
        if s_end >= first:
            # Running medians: recompute those that were not final yet.
            med_from = max(state[_S_MEDOK], first)
            _update_medians(raw, med_from, s_end, first, s_end, half_lo, half_hi)
            state[_S_MEDOK] = s_end + 1 if closed else max(first, s_end - half_hi + 1)
            # Thresholds over the newest qd_window intervals, across earlier segments.
            dv = np.empty(qd_window)
            mv = np.empty(qd_window)
            n_ctx = _threshold_samples(raw, rseg, s_end, dv, mv)
            th1 = alpha * _quartile_deviation(dv[:n_ctx])
            th2 = alpha * _quartile_deviation(mv[:n_ctx])
            j_from = max(state[_S_J], first)
            if s_end - s0 >= 3:
                new_j = _classify_segment(
                    raw,
                    rlab,
                    first,
                    s_end,
                    j_from,
                    not closed,
                    th1,
                    th2,
                    c1,
                    c2,
                    lookahead,
                    n_ctx < qd_window // 2 + 1,
                )
            else:
                for e in range(j_from, s_end + 1):
                    rlab[e] = _NORMAL
                new_j = s_end + 1 if closed else j_from
            for e in range(j_from, min(new_j, s_end + 1)):
                counts[0] += 1
                if rlab[e] > 0:
                    counts[rlab[e]] += 1
            state[_S_J] = new_j
            # Moves, then the walk from the last committed beat.
            mt = np.empty(s_end - a + 2)
            mf = np.zeros(s_end - a + 2, dtype=np.int8)
            _moved_flags(raw, rlab, a, s0, s_end, mt, mf)
            e = a + 1
            while e <= s_end:
                lab = rlab[e]
                prev_t = kf[_K_T, o - 1]
                if lab == _EXTRA and e + 1 <= s_end:
                    r = e + 1
                    t_new = mt[r - a]
                    moved = t_new != raw[_R_T, r]
                    nn = (t_new - prev_t) * 1000.0
                    _put(
                        kf,
                        kflag,
                        kseg,
                        kvalid,
                        o,
                        t_new,
                        nn,
                        _EXTRA,
                        cur_seg,
                        math.nan if moved else raw[_R_Q, r],
                        math.nan if moved else raw[_R_AMP, r],
                        math.nan if moved else raw[_R_BASE, r],
                    )
                    o += 1
                    ok = closed or e + 2 < new_j
                    e += 2
                else:
                    r = e
                    t_new = mt[r - a]
                    moved = t_new != raw[_R_T, r]
                    flag = int(mf[r - a])
                    if lab == _MISSED:
                        span_ms = (t_new - prev_t) * 1000.0
                        med = raw[_R_MED, e]
                        parts = max(2, round(span_ms / med)) if med > 0.0 else 2
                        flag = _MISSED
                        if parts <= max_run + 1 and span_ms / parts <= max_interp_ms:
                            step = (t_new - prev_t) / parts
                            for p in range(1, parts):
                                _put(
                                    kf,
                                    kflag,
                                    kseg,
                                    kvalid,
                                    o,
                                    prev_t + step * p,
                                    step * 1000.0,
                                    _MISSED,
                                    cur_seg,
                                    math.nan,
                                    math.nan,
                                    math.nan,
                                )
                                o += 1
                            prev_t = kf[_K_T, o - 1]
                            nn = (t_new - prev_t) * 1000.0
                        else:
                            cur_seg += 1  # a hole: a gap, not invented beats
                            flag = -1
                            nn = math.nan
                    elif not moved and not prev_moved and prev_row == r - 1:
                        nn = raw[_R_RR, r]
                    else:
                        nn = (t_new - prev_t) * 1000.0
                    _put(
                        kf,
                        kflag,
                        kseg,
                        kvalid,
                        o,
                        t_new,
                        nn,
                        flag,
                        cur_seg,
                        math.nan if moved else raw[_R_Q, r],
                        math.nan if moved else raw[_R_AMP, r],
                        math.nan if moved else raw[_R_BASE, r],
                    )
                    o += 1
                    ok = closed or e + 1 < new_j
                    e += 1
                prev_row = r
                prev_moved = moved
                if committing and ok:
                    w = r
                    seg_out = cur_seg
                    state[_S_KCOM] = o
                else:
                    committing = False
        if not closed:
            break
        s0 = s_end + 1
        state[_S_J] = s0 + 1
        state[_S_MEDOK] = s0 + 1
        if committing:
            state[_S_S0] = s0
    state[_S_W] = w
    state[_S_SEGOUT] = seg_out
    state[_S_KHI] = o
    # Reject what correction could not make plausible (rows whose neighbourhood changed).
    _reject_kernel(
        kf,
        kseg,
        max(state[_S_KLO], k_com_before - reject_half),
        state[_S_KLO],
        o,
        nn_lo_ms,
        nn_hi_ms,
        max_dev,
        max_ratio,
        reject_half,
        reject_min,
    )
    # A bound against a runaway detector (the newest committed beat always stays).
    if o - state[_S_KLO] > iparams[_IP_MAX_BEATS]:
        state[_S_KLO] = min(o - iparams[_IP_MAX_BEATS], max(state[_S_KCOM] - 1, 0))
    return True


@njit(cache=True, nogil=True)
def _reject_kernel(
    kf: FloatArray,
    kseg: IntArray,
    start: int,
    lo: int,
    hi: int,
    nn_lo_ms: float,
    nn_hi_ms: float,
    max_dev: float,
    max_ratio: float,
    half: int,
    min_count: int,
) -> None:
    """Checked NN of rows ``start..hi - 1``: NaN outside ``[nn_lo_ms, nn_hi_ms]``, further
    than ``max_dev`` from the median of the plausible intervals within ``half`` rows in
    the same segment (rows ``[lo, hi)``, at least ``min_count`` of them), or where those
    intervals span more than ``max_ratio`` (longest / shortest).

    The window of plausible values is kept sorted as it slides.
    """
    buf = np.empty(2 * half + 1)
    m = 0
    seg = -1
    for i in range(start, hi):
        if kseg[i] != seg:  # a new segment: fill the window afresh
            seg = kseg[i]
            m = 0
            for k in range(max(lo, i - half), min(hi, i + half + 1)):
                u = kf[_K_NN, k]
                if kseg[k] == seg and u >= nn_lo_ms and u <= nn_hi_ms:
                    m = _sorted_insert(buf, m, u)
        else:
            gone = i - half - 1
            if gone >= lo:
                u = kf[_K_NN, gone]
                if kseg[gone] == seg and u >= nn_lo_ms and u <= nn_hi_ms:
                    m = _sorted_remove(buf, m, u)
            came = i + half
            if came < hi:
                u = kf[_K_NN, came]
                if kseg[came] == seg and u >= nn_lo_ms and u <= nn_hi_ms:
                    m = _sorted_insert(buf, m, u)
        v = kf[_K_NN, i]
        if not (v >= nn_lo_ms and v <= nn_hi_ms) or m < min_count:
            kf[_K_NNC, i] = math.nan
            continue
        if buf[m - 1] > max_ratio * buf[0]:
            kf[_K_NNC, i] = math.nan
            continue
        h = m // 2
        med = buf[h] if m % 2 else 0.5 * (buf[h - 1] + buf[h])
        kf[_K_NNC, i] = v if abs(v - med) <= max_dev * med else math.nan


@njit(cache=True, nogil=True)
def _window_quality_kernel(
    q: FloatArray, flags: Int8Array, threshold: float, pulses: bool
) -> float:
    """Good-beat share times (1 - share of corrected intervals); 0 without beats.

    Without pulses (RR input) every beat counts as good.
    """
    n = q.shape[0]
    if n == 0:
        return 0.0
    good = 0
    n_int = 0
    n_bad = 0
    for i in range(n):
        if not pulses or q[i] >= threshold:
            good += 1
        if flags[i] >= 0:
            n_int += 1
            if flags[i] > 0:
                n_bad += 1
    share = n_bad / n_int if n_int > 0 else 0.0
    return float(good / n * (1.0 - share))


@njit(cache=True, nogil=True)
def _select_kernel(
    raw: FloatArray,
    rseg: IntArray,
    rlab: Int8Array,
    kf: FloatArray,
    kflag: Int8Array,
    kseg: IntArray,
    kvalid: BoolArray,
    state: IntArray,
    counts: IntArray,
    fparams: FloatArray,
    iparams: IntArray,
    update: bool,
    drop_before_s: float,
    first_s: float,
    start_s: float,
    end_s: float,
    threshold: float,
    pulses: bool,
) -> tuple[bool, int, int, int, float]:
    """With ``update``, run :func:`_update_kernel` first (False and nothing else when it
    found no room); then drop stored and committed beats before ``drop_before_s``
    (keeping the newest committed one) and return the rows of the corrected beats from
    ``first_s`` and from ``start_s`` to ``end_s`` (``lo_first, lo, hi``) and the signal
    quality of ``[lo, hi)`` (NaN without beats)."""
    if update and not _update_kernel(
        raw, rseg, rlab, kf, kflag, kseg, kvalid, state, counts, fparams, iparams
    ):
        return False, 0, 0, 0, math.nan
    raw_t = raw[_R_T]
    klo = state[_S_KLO]
    last = max(state[_S_KCOM] - 1, 0)
    while klo < last and kf[_K_T, klo] < drop_before_s:
        klo += 1
    state[_S_KLO] = klo
    rlo = state[_S_RLO]
    while rlo < state[_S_RN] and raw_t[rlo] < drop_before_s:
        rlo += 1
    state[_S_RLO] = rlo
    khi = state[_S_KHI]
    t = kf[_K_T, klo:khi]
    lo_first = klo + np.searchsorted(t, first_s, side="left")
    lo = klo + np.searchsorted(t, start_s, side="left")
    hi = klo + np.searchsorted(t, end_s, side="right")
    quality = math.nan
    if hi > lo:
        quality = _window_quality_kernel(kf[_K_Q, lo:hi], kflag[lo:hi], threshold, pulses)
    return True, lo_first, lo, hi, quality


@dataclass(frozen=True, slots=True)
class CorrectedWindow:
    """The corrected beats of one time window, parallel arrays in time order.

    Attributes
    ----------
    t_s:
        Corrected beat times, monotonic seconds.
    nn_ms:
        NN interval ending at each beat, ms; NaN at the start of a segment and where the
        interval stayed implausible after correction (rejected).
    valid_diff:
        ``valid_diff[i]``: ``nn[i] - nn[i - 1]`` may be taken (one segment, neither
        interval changed by the correction).
    flags:
        Artefact class of the interval ending at each beat (0 normal, see
        :data:`heartsong.dsp.artifacts.ARTIFACT_NAMES`); -1 at the start of a segment.
    segment:
        Segment id per beat.
    quality:
        Template correlation of each beat's pulse (NaN for beats the correction moved or
        inserted, and for RR input).
    amplitude, baseline:
        PPG pulse amplitude and baseline per beat (NaN where unknown), see
        :class:`heartsong.dsp.beats.BeatWindow`.
    """

    t_s: FloatArray
    nn_ms: FloatArray
    valid_diff: BoolArray
    flags: Int8Array
    segment: IntArray
    quality: FloatArray
    amplitude: FloatArray
    baseline: FloatArray

    @property
    def n_beats(self) -> int:
        """Number of beats in the window."""
        return int(self.t_s.shape[0])


class StreamingBeatCorrector:
    """Keeps a stream's beats and corrects them (Lipponen & Tarvainen 2019) at a bounded cost.

    Detected beats (:meth:`add_detected`, PPG) or measured ones (:meth:`add_measured`, a
    strap's RR intervals) are stored as they arrive, in segments that :meth:`mark_gap`
    separates; :meth:`update` brings the correction up to date before a corrected window
    is read (:meth:`select` and :meth:`columns`, or :meth:`window`).

    Parameters
    ----------
    span_s:
        Beats older than ``span_s`` seconds before the newest data are dropped.
    max_beats:
        Most corrected beats kept (a bound against a runaway detector).
    max_interp_ms:
        An interval is never split into parts longer than this (ms); a longer hole
        becomes a segment break.
    """

    #: Raw rows kept behind the oldest uncommitted one when the raw table is compacted.
    _RAW_CONTEXT = QD_WINDOW + MEDIAN_WINDOW + 2 * LOOKAHEAD_BEATS

    def __init__(
        self, span_s: float, max_beats: int, *, max_interp_ms: float = MAX_INTERP_MS
    ) -> None:
        if not (math.isfinite(span_s) and span_s > 0.0):
            raise InputDataError("span_s", "a positive duration in seconds", span_s)
        if max_beats < 2:
            raise InputDataError("max_beats", "at least 2", max_beats)
        if not (math.isfinite(max_interp_ms) and max_interp_ms > 0.0):
            raise InputDataError("max_interp_ms", "a positive duration in ms", max_interp_ms)
        self.span_s = float(span_s)
        self.max_beats = int(max_beats)
        self.max_interp_ms = float(max_interp_ms)
        raw_capacity = 2 * (self.max_beats + self._RAW_CONTEXT)
        self._raw = np.zeros((6, raw_capacity))
        self._rseg = np.zeros(raw_capacity, dtype=np.int64)
        self._rlab = np.zeros(raw_capacity, dtype=np.int8)
        capacity = 2 * self.max_beats + 4 * (MAX_MISSED_RUN + 1) * self._RAW_CONTEXT
        self._kf = np.zeros((6, capacity))
        self._kflag = np.zeros(capacity, dtype=np.int8)
        self._kseg = np.zeros(capacity, dtype=np.int64)
        self._kvalid = np.zeros(capacity, dtype=np.bool_)
        self._state = np.zeros(_N_STATE, dtype=np.int64)
        self._counts = np.zeros(_N_LABELS, dtype=np.int64)
        self._columns = (
            self._kf[_K_T],
            self._kf[_K_NNC],
            self._kvalid,
            self._kf[_K_AMP],
            self._kf[_K_BASE],
        )
        self._nan = np.full(64, math.nan)
        self._new = 0  # raw beats since the last update (mirrors the kernel's count)
        self._fparams = np.array(
            [ALPHA, C1, C2, self.max_interp_ms, NN_RANGE_MS[0], NN_RANGE_MS[1], MAX_DEVIATION,
             MAX_RANGE_RATIO]
        )
        self._iparams = np.array(
            [
                QD_WINDOW,
                MEDIAN_WINDOW,
                LOOKAHEAD_BEATS,
                MAX_MISSED_RUN,
                REJECT_HALF,
                REJECT_MIN_COUNT,
                self.max_beats,
            ],
            dtype=np.int64,
        )
        self.clear()

    def __repr__(self) -> str:
        st = self._state
        return (
            f"StreamingBeatCorrector(beats={st[_S_RN] - st[_S_RLO]}, "
            f"corrected={st[_S_KHI] - st[_S_KLO]}, span_s={self.span_s})"
        )

    def clear(self) -> None:
        """Forget every beat and every count."""
        self._state[:] = 0
        self._state[_S_W] = -1
        self._counts[:] = 0
        self._new = 0

    def mark_gap(self) -> None:
        """Note a gap: the next beat starts a new segment."""
        self._state[_S_GAP] = 1

    @property
    def n_detected(self) -> int:
        """Beats stored within the span (as detected or measured, before correction)."""
        return int(self._state[_S_RN] - self._state[_S_RLO])

    @property
    def artifact_counts(self) -> dict[str, int]:
        """Final artefact labels so far per class, and ``intervals`` classified."""
        out = {name: int(self._counts[i]) for i, name in enumerate(ARTIFACT_NAMES) if i}
        out["intervals"] = int(self._counts[0])
        return out

    def add_detected(
        self, t_s: FloatArray, amplitude: FloatArray, baseline: FloatArray, quality: FloatArray
    ) -> FloatArray:
        """Store detected beats (PPG), oldest first; return the times of those accepted.

        Parameters
        ----------
        t_s:
            Beat times, monotonic seconds (float64); a beat not after the newest stored
            one is dropped. The interval ending at a beat is the time since the previous
            beat of its segment.
        amplitude, baseline, quality:
            The pulse's amplitude, baseline and template correlation (float64, NaN where
            unknown), carried to the corrected beats.
        """
        return self._add(t_s, t_s, amplitude, baseline, quality, False)

    def add_detected_rows(self, rows: FloatArray, n: int) -> FloatArray:
        """:meth:`add_detected` for the first ``n`` columns of ``rows`` (rows: time in s,
        amplitude, baseline, template correlation; float64, C-contiguous), as
        :meth:`heartsong.dsp.ppg_stream.PpgFrontEnd.process_rows` gives them."""
        t = rows[0, :n]
        return self._add(t, t, rows[1, :n], rows[2, :n], rows[3, :n], False)

    def add_measured(self, t_s: FloatArray, rr_ms: FloatArray) -> FloatArray:
        """Store beats with the interval a wearable measured for each (ms, float64);
        return the times of those accepted (a beat not after the newest is dropped)."""
        n = t_s.shape[0]
        nan = self._nan if n <= self._nan.shape[0] else np.full(n, math.nan)
        return self._add(t_s, rr_ms, nan[:n], nan[:n], nan[:n], True)

    def _add(
        self,
        t_s: FloatArray,
        rr_ms: FloatArray,
        amplitude: FloatArray,
        baseline: FloatArray,
        quality: FloatArray,
        measured: bool,
    ) -> FloatArray:
        n = t_s.shape[0]
        if n == 0:
            return t_s
        if self.n_beats + self._new + n > self.max_beats:
            # Nobody has asked for a window for a long time (a backup source while the
            # other one is used): forget what is older than the span before it fills up.
            self.prune(float(t_s[-1]))
        if self._new + n > self.max_beats:
            self.update()  # a long backlog: correct it before the table fills up
        if self._state[_S_RN] + n > self._raw.shape[1]:
            self._compact_raw(n)
        accepted = np.empty(n)
        k = _add_raw_kernel(
            self._raw,
            self._rseg,
            self._rlab,
            self._state,
            t_s,
            rr_ms,
            amplitude,
            baseline,
            quality,
            measured,
            HOLE_FACTOR,
            (MAX_MISSED_RUN + 1) * self.max_interp_ms,
            MEDIAN_WINDOW,
            accepted,
        )
        self._new += k
        return accepted if k == n else accepted[:k]

    def _compact_raw(self, n_new: int) -> None:
        """Drop raw rows that neither the span nor a future update reads, for ``n_new``.

        Updates read back from the last committed beat and the first unfinished label by
        at most ``_RAW_CONTEXT`` rows; the start of a long segment may go (it then starts,
        for the correction, at the oldest row kept).
        """
        st = self._state
        behind = min(int(st[_S_W]), int(st[_S_J]) - 1, int(st[_S_MEDOK]) - 1)
        keep_from = max(0, min(int(st[_S_RLO]), behind - self._RAW_CONTEXT))
        if st[_S_RN] - keep_from + n_new > self._raw.shape[1]:
            raise InputDataError(
                "beats", f"at most {self.max_beats} beats in {self.span_s:g} s", int(st[_S_RN])
            )
        live = int(st[_S_RN]) - keep_from
        self._raw[:, :live] = self._raw[:, keep_from : st[_S_RN]]
        self._rseg[:live] = self._rseg[keep_from : st[_S_RN]]
        self._rlab[:live] = self._rlab[keep_from : st[_S_RN]]
        for field in (_S_RN, _S_J, _S_MEDOK, _S_RLO):
            st[field] -= keep_from
        st[_S_S0] = max(int(st[_S_S0]) - keep_from, 0)
        if st[_S_W] >= 0:
            st[_S_W] -= keep_from

    def detected_window(self, start_s: float, end_s: float) -> BeatWindow:
        """Return (copies of) the stored beats with ``start_s <= t <= end_s`` (seconds),
        as detected or measured: interval ending at each (NaN at the start of a segment or
        after a hole), segment id, and pulse amplitude, baseline and quality."""
        lo0, hi0 = int(self._state[_S_RLO]), int(self._state[_S_RN])
        t = self._raw[_R_T, lo0:hi0]
        lo = lo0 + int(t.searchsorted(start_s, side="left"))
        hi = lo0 + int(t.searchsorted(end_s, side="right"))
        rows = self._raw[:, lo:hi].copy()
        return BeatWindow(
            t_s=rows[_R_T],
            ibi_ms=rows[_R_RR],
            segment=self._rseg[lo:hi].copy(),
            amplitude=rows[_R_AMP],
            baseline=rows[_R_BASE],
            quality=rows[_R_Q],
        )

    def interval_labels(self, start_s: float, end_s: float) -> Int8Array:
        """Artefact label of the interval ending at each stored beat with ``start_s <= t
        <= end_s`` (seconds): 0 normal, else the class of
        :data:`heartsong.dsp.artifacts.ARTIFACT_NAMES`, as classified so far (labels of
        the newest beats are provisional until :data:`LOOKAHEAD_BEATS` more arrive)."""
        lo0, hi0 = int(self._state[_S_RLO]), int(self._state[_S_RN])
        t = self._raw[_R_T, lo0:hi0]
        lo = lo0 + int(t.searchsorted(start_s, side="left"))
        hi = lo0 + int(t.searchsorted(end_s, side="right"))
        labels: Int8Array = self._rlab[lo:hi].copy()
        return labels

    def update(self) -> None:
        """Classify and correct the beats added since the last update."""
        if self._new:
            self._new = 0
            if not _update_kernel(*self._tables()):
                self._no_room()

    def _tables(
        self,
    ) -> tuple[
        FloatArray,
        IntArray,
        Int8Array,
        FloatArray,
        Int8Array,
        IntArray,
        BoolArray,
        IntArray,
        IntArray,
        FloatArray,
        IntArray,
    ]:
        return (
            self._raw,
            self._rseg,
            self._rlab,
            self._kf,
            self._kflag,
            self._kseg,
            self._kvalid,
            self._state,
            self._counts,
            self._fparams,
            self._iparams,
        )

    def _no_room(self) -> None:
        raise InputDataError(
            "beats", f"at most {self.max_beats} beats in {self.span_s:g} s", self.n_detected
        )

    def select(
        self,
        now_s: float,
        first_s: float,
        start_s: float,
        end_s: float,
        threshold: float,
        *,
        pulses: bool,
    ) -> tuple[int, int, int, float]:
        """Correct the new beats, prune, and locate a window, in one kernel call.

        Brings the correction up to date (:meth:`update`), drops beats older than
        ``now_s - span_s``, and returns the rows of the corrected beats from ``first_s``
        and from ``start_s`` up to ``end_s`` (``lo_first, lo, hi``, rows of :meth:`columns`)
        and the signal quality of ``[lo, hi)`` as :meth:`window_quality` (NaN without
        beats). Times in seconds.
        """
        new = self._new > 0
        self._new = 0
        ok, lo_first, lo, hi, quality = _select_kernel(
            self._raw,
            self._rseg,
            self._rlab,
            self._kf,
            self._kflag,
            self._kseg,
            self._kvalid,
            self._state,
            self._counts,
            self._fparams,
            self._iparams,
            new,
            now_s - self.span_s,
            first_s,
            start_s,
            end_s,
            threshold,
            pulses,
        )
        if not ok:
            self._no_room()
        return lo_first, lo, hi, quality

    def prune(self, now_s: float) -> None:
        """Forget the beats older than ``now_s - span_s`` (seconds), then correct the new ones.

        :meth:`select` does this on every window; a consumer that stops asking for windows
        (the pipeline of a backup source) is kept from filling its tables this way.
        """
        _select_kernel(*self._tables(), False, now_s - self.span_s, now_s, now_s, now_s, 0.0, False)
        self.update()

    @property
    def n_beats(self) -> int:
        """Corrected beats currently kept (committed and provisional)."""
        return int(self._state[_S_KHI] - self._state[_S_KLO])

    def rows(self, start_s: float, end_s: float) -> tuple[int, int]:
        """Row range ``[lo, hi)`` of the corrected beats with ``start_s <= t <= end_s``."""
        lo0, hi0 = int(self._state[_S_KLO]), int(self._state[_S_KHI])
        t = self._kf[_K_T, lo0:hi0]
        return (
            lo0 + int(t.searchsorted(start_s, side="left")),
            lo0 + int(t.searchsorted(end_s, side="right")),
        )

    def columns(self) -> tuple[FloatArray, FloatArray, BoolArray, FloatArray, FloatArray]:
        """The corrected beats' columns, whole: times (s), checked NN (ms), valid pairs,
        amplitude, baseline; the rows of :meth:`select` index them. Their contents change
        at the next :meth:`add_detected`, :meth:`add_measured` or :meth:`update`."""
        return self._columns

    def window(self, start_s: float, end_s: float) -> CorrectedWindow:
        """Return (copies of) the corrected beats with ``start_s <= t <= end_s``."""
        lo, hi = self.rows(start_s, end_s)
        kf = self._kf
        return CorrectedWindow(
            t_s=kf[_K_T, lo:hi].copy(),
            nn_ms=kf[_K_NNC, lo:hi].copy(),
            valid_diff=self._kvalid[lo:hi].copy(),
            flags=self._kflag[lo:hi].copy(),
            segment=self._kseg[lo:hi].copy(),
            quality=kf[_K_Q, lo:hi].copy(),
            amplitude=kf[_K_AMP, lo:hi].copy(),
            baseline=kf[_K_BASE, lo:hi].copy(),
        )

    def window_quality(self, lo: int, hi: int, threshold: float, *, pulses: bool) -> float:
        """Signal quality of rows ``[lo, hi)`` in [0, 1].

        The share of beats whose pulse correlates at least ``threshold`` with its
        template (every beat, without pulses) times one minus the share of intervals the
        correction changed, as :func:`heartsong.dsp.quality.window_quality`.
        """
        q: float = _window_quality_kernel(
            self._kf[_K_Q, lo:hi], self._kflag[lo:hi], threshold, pulses
        )
        return q


# numba's cache watches a kernel's own file only: a digest of heartsong.dsp.sorted_buffer,
# whose kernels these inline, is frozen into the cache (see heartsong.numba_cache).
_SOURCES_DIGEST = sources_digest((sorted_buffer,))


@njit(cache=True, nogil=True)
def _compiled_sources_digest_kernel() -> int:
    """The digest of the sorted-buffer source when this module's kernels were compiled."""
    return _SOURCES_DIGEST


refresh_stale_kernels(_SOURCES_DIGEST, _compiled_sources_digest_kernel, module_kernels(globals()))
