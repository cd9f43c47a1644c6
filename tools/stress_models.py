"""Candidate stress classifiers for ``tools/train_stress_model.py``.

Every candidate is fitted on the features of :mod:`heartsong.stress.features` (all of
them, one row per window), standardised with the training rows' mean and standard
deviation and clipped exactly as the device does (:func:`heartsong.stress.features.
standardize`). The candidates:

* ``hr_rule``: the floor. The heart rate's log ratio to the baseline, thresholded; no model.
* ``logreg_hr``: L2 logistic regression on the three heart-rate features, chosen before
  looking at held-out people: the ratio to the baseline, to the recent low, and to a
  minute earlier (:mod:`heartsong.stress.history`).
* ``logreg_all``: L2 logistic regression on every feature (Cox 1958).
* ``logreg_select``: logistic regression on features chosen by greedy forward selection
  inside the training data (inner leave-participants-out folds, pooled AUROC; a feature
  enters only if it adds at least ``SELECT_MIN_GAIN``).
* ``mlp_all``: a small multilayer perceptron (8 ReLU units, L2 penalty, L-BFGS) on every
  feature (Rumelhart et al. 1986).
* ``gboost_all``: gradient-boosted trees (Friedman 2001; scikit-learn's histogram
  variant) on every feature, as a reference: trees do not convert to a small int8
  TFLite model, so it cannot be deployed.

The convertible ones expose their float network (:class:`DenseNet`), which
``tools/stress_tflite.py`` turns into the int8 model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier

from heartsong.stress.features import FEATURE_CLIP, FEATURE_NAMES, standardize
from stress_eval import auroc, best_threshold

#: Inner folds (by participant) for thresholds and feature selection.
INNER_FOLDS = 5
#: Smallest pooled-AUROC gain for forward selection to add a feature.
SELECT_MIN_GAIN = 0.002
HR_INDEX = FEATURE_NAMES.index("hr_log_ratio")
HR_FEATURES = tuple(FEATURE_NAMES.index(f) for f in (
    "hr_log_ratio", "hr_recent_low_log_ratio", "hr_change_log_ratio"))


@dataclass(frozen=True)
class DenseNet:
    """A float feed-forward network: ReLU hidden layers, one sigmoid output.

    ``layers[k] = (W, b)`` with ``W`` of shape ``(n_in, n_out)``.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Probability of stress for standardised inputs ``z`` (n_windows, n_inputs)."""
        h = np.asarray(z, dtype=np.float64)
        for k, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if k < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return 1.0 / (1.0 + np.exp(-h[:, 0]))


@dataclass
class Fitted:
    """A fitted candidate.

    Attributes
    ----------
    feature_idx:
        Inputs used, as indices into ``FEATURE_NAMES``.
    mean, scale:
        Standardisation of those inputs.
    net:
        The float network (None for the rule and for trees).
    score_fn:
        Maps all-feature rows to the score (probability, or the rule's value).
    """

    feature_idx: tuple[int, ...]
    mean: np.ndarray
    scale: np.ndarray
    net: DenseNet | None
    score_fn: Callable[[np.ndarray], np.ndarray]

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Standardised, clipped model inputs of all-feature rows."""
        return standardize(x[:, list(self.feature_idx)], self.mean, self.scale, FEATURE_CLIP)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Score of all-feature rows."""
        return self.score_fn(x)


@dataclass(frozen=True)
class Candidate:
    """A model family: how to fit it, whether it converts to TFLite, whether it gives
    probabilities."""

    name: str
    convertible: bool
    probabilistic: bool
    fit: Callable[[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, ...] | None], Fitted]
    selects: bool = False


def _scaler(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_logreg(x: np.ndarray, y: np.ndarray, idx: tuple[int, ...], seed: int) -> Fitted:
    """Logistic regression on columns ``idx`` of ``x``, standardised and clipped as the
    device does."""
    mean, scale = _scaler(x[:, list(idx)])
    z = standardize(x[:, list(idx)], mean, scale, FEATURE_CLIP)
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(z, y)
    net = DenseNet(((clf.coef_.T.copy(), clf.intercept_.copy()),))
    fitted = Fitted(idx, mean, scale, net, lambda a: np.zeros(len(a)))
    fitted.score_fn = lambda a: net.forward(fitted.inputs(a))
    return fitted


def fit_hr_rule(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, fixed: tuple[int, ...] | None
) -> Fitted:
    """The floor: the heart rate's log ratio to baseline is the score."""
    return Fitted((HR_INDEX,), np.zeros(1), np.ones(1), None, lambda a: a[:, HR_INDEX].copy())


def fit_logreg_hr(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, fixed: tuple[int, ...] | None
) -> Fitted:
    """Logistic regression on the heart-rate features (baseline, recent low, change)."""
    return fit_logreg(x, y, HR_FEATURES, seed)


def fit_logreg_all(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, fixed: tuple[int, ...] | None
) -> Fitted:
    """Logistic regression on every feature."""
    return fit_logreg(x, y, tuple(range(x.shape[1])), seed)


def _oof_auroc(x: np.ndarray, y: np.ndarray, groups: np.ndarray, idx: tuple[int, ...],
               seed: int) -> float:
    oof = np.empty(len(y))
    for tr, va in GroupKFold(n_splits=_n_splits(groups)).split(x, y, groups):
        oof[va] = fit_logreg(x[tr], y[tr], idx, seed).score(x[va])
    return auroc(y, oof)


def _n_splits(groups: np.ndarray) -> int:
    return min(INNER_FOLDS, len(np.unique(groups)))


def fit_logreg_select(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, fixed: tuple[int, ...] | None
) -> Fitted:
    """Logistic regression on forward-selected features (``fixed`` skips the selection)."""
    if fixed is None:
        chosen: list[int] = []
        best = 0.5
        while len(chosen) < x.shape[1]:
            trials = [
                (_oof_auroc(x, y, groups, (*chosen, j), seed), j)
                for j in range(x.shape[1])
                if j not in chosen
            ]
            score, j = max(trials, key=lambda t: (t[0], -t[1]))
            if score < best + SELECT_MIN_GAIN:
                break
            chosen.append(j)
            best = score
        fixed = tuple(chosen) if chosen else (HR_INDEX,)
    return fit_logreg(x, y, fixed, seed)


def fit_mlp_all(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, fixed: tuple[int, ...] | None
) -> Fitted:
    """A small MLP (8 ReLU units) on every feature."""
    idx = tuple(range(x.shape[1]))
    mean, scale = _scaler(x)
    z = standardize(x, mean, scale, FEATURE_CLIP)
    clf = MLPClassifier(hidden_layer_sizes=(8,), activation="relu", solver="lbfgs",
                        alpha=1.0, max_iter=3000, random_state=seed).fit(z, y)
    net = DenseNet(tuple(
        (w.copy(), b.copy()) for w, b in zip(clf.coefs_, clf.intercepts_, strict=True)
    ))
    fitted = Fitted(idx, mean, scale, net, lambda a: np.zeros(len(a)))
    fitted.score_fn = lambda a: net.forward(fitted.inputs(a))
    return fitted


def fit_gboost_all(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, fixed: tuple[int, ...] | None
) -> Fitted:
    """Gradient-boosted trees on every feature (reference only)."""
    idx = tuple(range(x.shape[1]))
    mean, scale = _scaler(x)
    clf = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_depth=3,
                                         l2_regularization=1.0, random_state=seed)
    clf.fit(standardize(x, mean, scale, FEATURE_CLIP), y)
    fitted = Fitted(idx, mean, scale, None, lambda a: np.zeros(len(a)))
    fitted.score_fn = lambda a: clf.predict_proba(fitted.inputs(a))[:, 1]
    return fitted


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("hr_rule", convertible=False, probabilistic=False, fit=fit_hr_rule),
    Candidate("logreg_hr", convertible=True, probabilistic=True, fit=fit_logreg_hr),
    Candidate("logreg_all", convertible=True, probabilistic=True, fit=fit_logreg_all),
    Candidate("logreg_select", convertible=True, probabilistic=True, fit=fit_logreg_select,
              selects=True),
    Candidate("mlp_all", convertible=True, probabilistic=True, fit=fit_mlp_all),
    Candidate("gboost_all", convertible=False, probabilistic=True, fit=fit_gboost_all),
)


def fit_with_threshold(
    cand: Candidate, x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int
) -> tuple[Fitted, float, np.ndarray]:
    """Fit a candidate and choose its threshold inside the same data.

    The threshold maximises balanced accuracy over out-of-fold scores from
    ``INNER_FOLDS`` folds by participant (a selecting candidate keeps the features it
    chose on all the data). Returns the model, the threshold and the out-of-fold scores.
    """
    fitted = cand.fit(x, y, groups, seed, None)
    fixed = fitted.feature_idx if cand.selects else None
    oof = np.empty(len(y))
    for tr, va in GroupKFold(n_splits=_n_splits(groups)).split(x, y, groups):
        oof[va] = cand.fit(x[tr], y[tr], groups[tr], seed, fixed).score(x[va])
    return fitted, best_threshold(y, oof), oof
