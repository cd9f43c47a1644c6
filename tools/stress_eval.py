"""Scores for the stress classifier: thresholds, balanced accuracy, F1, AUROC, calibration.

Balanced accuracy is the mean of sensitivity and specificity (Brodersen et al. 2010, ICPR);
AUROC is the Mann-Whitney U statistic over the two classes with tied scores counted half
(Hanley & McNeil 1982, Radiology 143:29-36); the expected calibration error is the
bin-weighted mean gap between predicted probability and observed frequency over 10
equal-width bins (Naeini et al. 2015, AAAI; Guo et al. 2017, ICML). NumPy only, so the
tests that reproduce the model card need no training extra.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def best_threshold(y: np.ndarray, score: np.ndarray) -> float:
    """The threshold ``t`` (``score >= t`` is stress) with the highest balanced accuracy.

    Candidates are midpoints between consecutive distinct scores; ties go to the lowest.
    """
    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float(np.median(s))
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1 - y_sorted)
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # end of a run of equal scores
    ba = 0.5 * (tp / n_pos + (n_neg - fp) / n_neg)
    ba = np.where(last, ba, -1.0)
    k = int(np.argmax(ba))
    nxt = s_sorted[k + 1] if k + 1 < s_sorted.size else s_sorted[k] - 1e-6
    return float(0.5 * (s_sorted[k] + nxt))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of sensitivity and specificity (NaN when a class is absent)."""
    y = np.asarray(y, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if y.all() or not y.any():
        return math.nan
    return float(0.5 * (pred[y].mean() + (~pred[~y]).mean()))


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (NaN when a class is absent)."""
    y = np.asarray(y, dtype=int)
    s = np.asarray(score, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():
        return math.nan
    order = np.argsort(s, kind="stable")
    ranks = np.empty(s.size)
    sorted_s = s[order]
    # Average rank (1-based) over each run of equal scores.
    starts = np.r_[0, np.flatnonzero(sorted_s[1:] != sorted_s[:-1]) + 1]
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = 0.5 * (a + b + 1)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    u = float(ranks[y == 1].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def f1(y: np.ndarray, pred: np.ndarray) -> float:
    """F1 score of the stress class (0 when nothing is predicted or present)."""
    y = np.asarray(y, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    tp = int(np.sum(y & pred))
    denom = int(y.sum()) + int(pred.sum())
    return 2.0 * tp / denom if denom else 0.0


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Bin-weighted mean |mean p - share of positives| over equal-width bins of p."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / max(p.size, 1))


def summarize(
    y: np.ndarray,
    score: np.ndarray,
    decision: np.ndarray,
    groups: np.ndarray,
    *,
    probabilistic: bool = True,
) -> dict[str, Any]:
    """Pooled and per-participant scores of held-out predictions.

    Parameters
    ----------
    y:
        True labels (1 stress).
    score:
        The model's probability (or the rule's score).
    decision:
        The thresholded decisions (threshold chosen in the training folds).
    groups:
        Participant of each window.
    probabilistic:
        Whether ``score`` is a probability (else no calibration error).
    """
    per: dict[str, dict[str, float]] = {}
    for g in np.unique(groups):
        m = groups == g
        per[str(g)] = {
            "n": int(m.sum()),
            "prevalence": float(y[m].mean()),
            "balanced_accuracy": balanced_accuracy(y[m], decision[m]),
            "auroc": auroc(y[m], score[m]),
        }
    ba = np.array([v["balanced_accuracy"] for v in per.values()])
    au = np.array([v["auroc"] for v in per.values()])
    return {
        "n": int(y.size),
        "prevalence": float(y.mean()),
        "balanced_accuracy": balanced_accuracy(y, decision),
        "f1": f1(y, decision),
        "auroc": auroc(y, score),
        "ece": expected_calibration_error(y, score) if probabilistic else math.nan,
        "per_participant": per,
        "pp_balanced_accuracy": _spread(ba),
        "pp_auroc": _spread(au),
    }


def _spread(values: np.ndarray) -> dict[str, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"mean": math.nan, "sd": math.nan, "min": math.nan, "median": math.nan,
                "max": math.nan}
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "median": float(np.median(v)),
        "max": float(v.max()),
    }
