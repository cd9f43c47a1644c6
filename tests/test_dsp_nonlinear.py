"""Poincare SD1/SD2: kernel against NumPy, Brennan's identities, gaps, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.dsp.hrv_nonlinear import _poincare_kernel, hrv_poincare
from heartsong.errors import InputDataError


def rr_series(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    out: np.ndarray = 850.0 + 40.0 * np.sin(2 * np.pi * k / 12.0) + 20.0 * rng.standard_normal(n)
    return out


def poincare_numpy(nn: np.ndarray, pairs: np.ndarray) -> tuple[float, float]:
    """SD1, SD2: sample standard deviations of the pairs rotated by 45 degrees."""
    a, b = nn[:-1][pairs], nn[1:][pairs]
    return float(np.std((b - a) / np.sqrt(2), ddof=1)), float(np.std((b + a) / np.sqrt(2), ddof=1))


def test_kernel_matches_numpy() -> None:
    nn = rr_series(300)
    pairs = np.random.default_rng(1).uniform(size=299) > 0.2
    sd1, sd2, n_pairs = _poincare_kernel(nn, pairs)
    ref1, ref2 = poincare_numpy(nn, pairs)
    assert n_pairs == int(pairs.sum())
    assert sd1 == pytest.approx(ref1, rel=1e-12) and sd2 == pytest.approx(ref2, rel=1e-12)


def test_brennan_identities_hold_without_gaps() -> None:
    nn = rr_series(2000, seed=2)
    res = hrv_poincare(nn)
    diff = np.diff(nn)
    assert res.sd1_ms**2 == pytest.approx(0.5 * np.var(diff, ddof=1), rel=1e-12)  # SDSD^2 / 2
    assert res.sd1_ms**2 + res.sd2_ms**2 == pytest.approx(2 * np.var(nn, ddof=1), rel=0.01)
    assert res.n_pairs == nn.size - 1


def test_short_term_and_long_term_variability_move_apart() -> None:
    rng = np.random.default_rng(3)
    slow = 850.0 + 60.0 * np.sin(2 * np.pi * np.arange(600) / 60.0)  # smooth wander
    fast = 850.0 + 40.0 * rng.standard_normal(600)  # beat-to-beat noise
    s, f = hrv_poincare(slow), hrv_poincare(fast)
    assert s.sd2_ms > 5.0 * s.sd1_ms  # a smooth series hugs the identity line
    assert f.sd1_ms == pytest.approx(f.sd2_ms, rel=0.15)  # white noise: a round cloud


def test_pairs_across_a_gap_are_left_out() -> None:
    nn = np.concatenate([rr_series(100), rr_series(100, seed=4) + 300.0])
    valid = np.ones(199, dtype=bool)
    valid[99] = False  # the level jump is across a gap
    gapped = hrv_poincare(nn, valid)
    bridged = hrv_poincare(nn)
    ref1, _ = poincare_numpy(nn, valid)
    assert gapped.sd1_ms == pytest.approx(ref1) and gapped.n_pairs == 198
    assert bridged.sd1_ms > gapped.sd1_ms  # the jump as a pair inflates SD1


def test_too_few_pairs_give_nan() -> None:
    res = hrv_poincare(np.array([800.0, 820.0]))
    assert math.isnan(res.sd1_ms) and math.isnan(res.sd2_ms) and res.n_pairs == 1
    empty = hrv_poincare(np.zeros(0))
    assert math.isnan(empty.sd1_ms) and empty.n_pairs == 0


def test_bad_input_names_the_field() -> None:
    with pytest.raises(InputDataError, match="nn_ms"):
        hrv_poincare(np.array([800.0, np.nan, 810.0]))
    with pytest.raises(InputDataError, match="valid_diff"):
        hrv_poincare(rr_series(10), np.ones(3, dtype=bool))
    with pytest.raises(InputDataError, match="valid_diff"):
        hrv_poincare(rr_series(10), np.ones(9))
