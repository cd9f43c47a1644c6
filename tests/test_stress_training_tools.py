"""The training tools' pieces: label alignment, threshold choice, scores."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
STRESS_DATA = REPO.parent / "shared" / "data" / "stress_predict"


def test_window_labels_follow_the_seconds_they_cover() -> None:
    data = importlib.import_module("stress_data")
    start = 1_600_000_000.0
    t_unix = start + np.arange(9, 400, dtype=np.float64)  # labels start 9 s in, as in the CSV
    labels = ((t_unix - start >= 100) & (t_unix - start < 200)).astype(int)
    windows = [{"t_start_s": float(s), "t_end_s": float(s) + 60.0} for s in range(0, 400, 10)]
    share = data.window_stress_share(windows, t_unix, labels, start)
    by_start = dict(zip(range(0, 400, 10), share, strict=True))
    assert by_start[0] == 0.0  # 51 labelled seconds, none stress
    assert by_start[50] == pytest.approx(10 / 60)  # [50, 110): 100..109 are stress
    assert by_start[100] == 1.0 and by_start[140] == 1.0
    assert by_start[170] == pytest.approx(30 / 60)
    assert by_start[370] == 0.0  # 30 labelled seconds: just enough
    assert math.isnan(by_start[380])  # 20 labelled seconds: no label


def test_best_threshold_maximises_balanced_accuracy() -> None:
    ev = importlib.import_module("stress_eval")
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.35).astype(int)
    score = rng.normal(0.0, 1.0, 400) + 0.9 * y
    t = ev.best_threshold(y, score)
    best = ev.balanced_accuracy(y, score >= t)
    brute = max(ev.balanced_accuracy(y, score >= c) for c in np.unique(score))
    assert best == pytest.approx(brute)
    assert not np.any(score == t)  # a midpoint between scores


def test_auroc_and_f1_match_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    ev = importlib.import_module("stress_eval")
    rng = np.random.default_rng(2)
    y = (rng.random(500) < 0.3).astype(int)
    score = np.round(rng.normal(0.0, 1.0, 500) + y, 1)  # rounded: many ties
    assert ev.auroc(y, score) == pytest.approx(metrics.roc_auc_score(y, score), abs=1e-12)
    pred = score >= 0.5
    assert ev.f1(y, pred) == pytest.approx(metrics.f1_score(y, pred), abs=1e-12)


def test_scores_on_known_cases() -> None:
    ev = importlib.import_module("stress_eval")
    y = np.array([0, 0, 1, 1])
    assert ev.balanced_accuracy(y, np.array([0, 1, 1, 1])) == pytest.approx(0.75)
    assert ev.auroc(y, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert math.isnan(ev.auroc(np.array([1, 1]), np.array([0.1, 0.2])))
    rng = np.random.default_rng(1)
    p = rng.random(20000)
    calibrated = (rng.random(p.size) < p).astype(int)
    assert ev.expected_calibration_error(calibrated, p) < 0.02
    assert ev.expected_calibration_error(1 - calibrated, p) > 0.3


@pytest.mark.slow
@pytest.mark.skipif(not STRESS_DATA.is_dir(), reason="shared Stress-Predict data absent")
def test_processed_labels_match_the_task_tags_of_a_participant() -> None:
    data = importlib.import_module("stress_data")
    labels = data.read_labels(STRESS_DATA)
    t_unix, lab = labels[2]
    start = data.e4_start(data.bvp_path(STRESS_DATA, 2))
    changes = (t_unix[1:][np.diff(lab) != 0] - start).tolist()
    tags = [float(v) - start for v in (STRESS_DATA / "Raw_data" / "S02" / "tags_S02.csv")
            .read_text().split()]
    # Every label change lies within 2 s of a button press at a task boundary.
    assert len(changes) == 6
    assert all(min(abs(c - tg) for tg in tags) <= 2.0 for c in changes)


def test_a_participant_with_a_plain_bvp_file_is_found(tmp_path: Path) -> None:
    """New participants may come as the E4 writes them (``BVP.csv``, not gzipped)."""
    data = importlib.import_module("stress_data")
    folder = tmp_path / "Raw_data" / "S41"
    folder.mkdir(parents=True)
    assert data.bvp_path(tmp_path, 41).name == "BVP.csv.gz"  # neither: named in the warning
    (folder / "BVP.csv").write_text("1500000000.0\n64.0\n0.5\n")
    assert data.bvp_path(tmp_path, 41) == folder / "BVP.csv"
    assert data.e4_start(data.bvp_path(tmp_path, 41)) == 1500000000.0
    (folder / "BVP.csv.gz").write_bytes(b"")
    assert data.bvp_path(tmp_path, 41).name == "BVP.csv.gz"


def test_bench_measures_the_shipped_model_for_the_card() -> None:
    """The card's inference figure comes from bench_stress.measure (the training run
    calls it on the model it wrote)."""
    bench = importlib.import_module("bench_stress")
    r = bench.measure(REPO / "models", n=300, repeats=1)
    assert r["inputs"] >= 1 and str(r["model_version"]).startswith("stress-")
    for key in ("model_us", "features_model_us", "estimator_us"):
        assert 0.0 < float(r[key]) < 1e5
