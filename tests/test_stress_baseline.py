"""Personal baseline: medians at rest, blending over sessions, kept across reboots."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.stress.baseline import (
    MIN_BASELINE_WINDOWS,
    Baseline,
    BaselineLearner,
    baseline_from_start,
    baseline_from_windows,
    blend_baselines,
    load_baseline,
    save_baseline,
)
from heartsong.stress.features import RAW_METRICS

REST = {"hr_bpm": 62.0, "rmssd_ms": 45.0, "sdnn_ms": 55.0, "pnn50_pct": 25.0, "lf_hf": 1.2,
        "resp_rate_bpm": 13.0, "coherence": 0.4, "signal_quality": 0.9}
POPULATION = Baseline({"hr_bpm": 75.0, "rmssd_ms": 35.0, "sdnn_ms": 45.0, "pnn50_pct": 15.0,
                       "lf_hf": 1.5, "resp_rate_bpm": 15.0, "coherence": 0.3,
                       "signal_quality": 0.7}, source="population")


def windows(n: int, seed: int = 0, **overrides: float | None) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    out: list[dict[str, object]] = []
    for i in range(n):
        w: dict[str, object] = {k: v * (1.0 + 0.05 * rng.standard_normal())
                                for k, v in REST.items()}
        w.update(overrides)
        w["t_start_s"] = 10.0 * i
        w["t_end_s"] = 10.0 * i + 60.0
        out.append(w)
    return out


def test_baseline_is_the_median_of_usable_windows() -> None:
    ws = windows(25)
    ws += windows(5, seed=1, hr_bpm=None)  # unusable: ignored
    base = baseline_from_windows(ws)
    assert base is not None and base.source == "personal" and base.n_windows == 25
    for name in RAW_METRICS:
        expected = float(np.median([w[name] for w in ws[:25]]))  # type: ignore[misc]
        assert base.values[name] == pytest.approx(expected)


def test_too_few_usable_windows_give_no_baseline() -> None:
    assert baseline_from_windows(windows(MIN_BASELINE_WINDOWS - 1)) is None
    assert baseline_from_windows(windows(MIN_BASELINE_WINDOWS)) is not None


def test_a_metric_never_measured_at_rest_is_nan() -> None:
    base = baseline_from_windows(windows(10, lf_hf=None))
    assert base is not None and math.isnan(base.values["lf_hf"])


def test_recording_baseline_uses_only_the_resting_start() -> None:
    ws = windows(24) + windows(60, seed=2, hr_bpm=120.0)
    for i, w in enumerate(ws):
        w["t_start_s"], w["t_end_s"] = 10.0 * i, 10.0 * i + 60.0
    base = baseline_from_start(ws, 300.0, POPULATION)
    assert base.source == "personal"
    assert base.n_windows == 25  # the windows ending at 60, 70, ..., 300 s
    assert base.values["hr_bpm"] == pytest.approx(62.0, rel=0.05)
    longer = baseline_from_start(ws, 1000.0, POPULATION)
    assert longer.values["hr_bpm"] > base.values["hr_bpm"]


def test_recording_without_a_clean_start_falls_back_to_the_population() -> None:
    ws = windows(30, hr_bpm=None)
    assert baseline_from_start(ws, 300.0, POPULATION) is POPULATION
    with pytest.raises(InputDataError, match="baseline_s"):
        baseline_from_start(ws, 0.0, POPULATION)


def test_blending_is_a_running_mean_then_exponential() -> None:
    def b(hr: float) -> Baseline:
        return Baseline(dict(REST, hr_bpm=hr), "personal", 20)

    s1 = blend_baselines(None, b(60.0), 0.2)
    assert s1.sessions == 1 and s1.values["hr_bpm"] == 60.0
    s2 = blend_baselines(s1, b(70.0), 0.2)
    assert s2.sessions == 2 and s2.values["hr_bpm"] == pytest.approx(65.0)
    s = s2
    for _ in range(3):
        s = blend_baselines(s, b(70.0), 0.2)  # weights 1/3, 1/4, 1/5
    assert s.values["hr_bpm"] == pytest.approx(68.0)
    s6 = blend_baselines(s, b(80.0), 0.2)  # 1/6 < 0.2: weight 0.2
    assert s6.values["hr_bpm"] == pytest.approx(0.8 * 68.0 + 0.2 * 80.0)
    assert blend_baselines(POPULATION, b(60.0), 0.2).sessions == 1


def test_a_baseline_needs_its_required_metrics() -> None:
    with pytest.raises(InputDataError, match="rmssd_ms"):
        Baseline(dict(REST, rmssd_ms=math.nan))
    with pytest.raises(InputDataError, match=r"spec\.hr_bpm"):
        Baseline.from_values(dict(REST, hr_bpm="fast"), "spec")


def feed(learner: BaselineLearner, ws: list[dict[str, object]], t0: float = 0.0) -> None:
    for i, w in enumerate(ws):
        learner.observe(t0 + 5.0 * i, w, 1.7e9 + t0 + 5.0 * i)


def test_learner_uses_the_population_until_a_session_is_learned(tmp_path: Path) -> None:
    path = tmp_path / "stress_baseline.json"
    learner = BaselineLearner(POPULATION, path, learn_s=120.0)
    assert learner.current is POPULATION
    feed(learner, windows(20))  # 0..95 s: still learning
    assert learner.learning and learner.current is POPULATION and not path.exists()
    feed(learner, windows(10, seed=3, hr_bpm=110.0), t0=100.0)  # passes 120 s
    assert not learner.learning
    cur = learner.current
    assert cur.source == "personal" and cur.sessions == 1
    assert cur.values["hr_bpm"] == pytest.approx(62.0, rel=0.05)  # stress after 120 s ignored
    assert path.exists() and not path.with_name(path.name + ".tmp").exists()


def test_learned_baseline_survives_a_reboot(tmp_path: Path) -> None:
    path = tmp_path / "stress_baseline.json"
    first = BaselineLearner(POPULATION, path, learn_s=60.0)
    feed(first, windows(20))
    rebooted = BaselineLearner(POPULATION, path, learn_s=60.0)
    assert rebooted.current == first.current
    assert rebooted.current.source == "personal"


def test_a_long_gap_starts_a_new_session_that_is_blended_in(tmp_path: Path) -> None:
    path = tmp_path / "stress_baseline.json"
    learner = BaselineLearner(POPULATION, path, learn_s=60.0, session_gap_s=600.0)
    feed(learner, windows(20))
    night1 = learner.current.values["hr_bpm"]
    feed(learner, windows(20, seed=4, hr_bpm=70.0), t0=5000.0)
    assert learner.current.sessions == 2
    assert learner.current.values["hr_bpm"] == pytest.approx((night1 + 70.0) / 2)
    assert json.loads(path.read_text())["sessions"] == 2


def test_a_session_with_too_few_clean_windows_keeps_the_old_baseline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    learner = BaselineLearner(POPULATION, tmp_path / "b.json", learn_s=60.0)
    with caplog.at_level(logging.WARNING):
        feed(learner, windows(20, hr_bpm=None))
    assert learner.current is POPULATION
    assert "usable windows" in caplog.text


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"format": "other"}), json.dumps([1, 2]),
     json.dumps({"format": "heartsong-stress-baseline", "version": 1, "sessions": 1,
                 "values": {"hr_bpm": "x"}})],
)
def test_an_unreadable_stored_baseline_is_reported_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    path = tmp_path / "stress_baseline.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        learner = BaselineLearner(POPULATION, path, learn_s=60.0)
    assert learner.current is POPULATION
    assert str(path) in caplog.text
    feed(learner, windows(20))
    assert load_baseline(path) == learner.current


def test_save_failure_is_logged_not_raised(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    base = Baseline(dict(REST), "personal", 10, 1)
    (tmp_path / "not-a-dir").write_text("")  # the state folder's place is taken by a file
    with caplog.at_level(logging.ERROR):
        assert not save_baseline(tmp_path / "not-a-dir" / "b.json", base, 0.0)
    assert "cannot save" in caplog.text


def test_learner_settings_are_checked() -> None:
    with pytest.raises(InputDataError, match="learn_s"):
        BaselineLearner(POPULATION, learn_s=0.0)
    with pytest.raises(InputDataError, match="session_weight"):
        BaselineLearner(POPULATION, session_weight=1.5)
