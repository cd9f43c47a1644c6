"""tools/simulate_sessions.py: the report's figures from known sessions, and a short run."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    pytest.importorskip("matplotlib")
    return importlib.import_module("simulate_sessions")  # tools/ (conftest)


def _result(tool: ModuleType, arm: str, person: int, calm: float | None,
            onset: float | None, detected: float | None) -> object:
    return tool.SessionResult(arm, person, 0, calm, onset, detected, 0.5)


def test_summary_censors_uncalmed_sessions_and_counts_detections(tool: ModuleType) -> None:
    results = [
        _result(tool, "closed", 0, 600.0, 1200.0, 1380.0),  # detected after 3 min
        _result(tool, "closed", 1, 1200.0, 1800.0, 2200.0),  # 6.7 min: too late
        _result(tool, "closed", 2, None, None, 900.0),  # never calm; false detection
    ]
    s = tool.summarise(results, "closed", 60.0)
    assert s.calm_median_min == pytest.approx(20.0)
    assert s.calm_mean_min == pytest.approx((10.0 + 20.0 + 60.0) / 3)
    assert (s.calmed, s.onsets, s.detected_within, s.false_detections) == (2, 2, 1, 1)
    assert s.delay_median_min == pytest.approx((3.0 + 400.0 / 60.0) / 2)


def test_paired_wins_compare_the_same_person_and_night(tool: ModuleType) -> None:
    results = [
        _result(tool, "closed", 0, 600.0, None, None),
        _result(tool, "dodow", 0, 900.0, None, None),
        _result(tool, "closed", 1, 900.0, None, None),
        _result(tool, "dodow", 1, 600.0, None, None),
        _result(tool, "closed", 2, None, None, None),
        _result(tool, "dodow", 2, None, None, None),
    ]
    assert tool.paired_wins(results, "dodow", 60.0) == (1, 1, 1)


def test_people_are_reproducible_and_ideal_followers_are_the_same_people(
    tool: ModuleType,
) -> None:
    a, b = tool.draw_person(3, 0), tool.draw_person(3, 0)
    ideal = tool.draw_person(3, 0, ideal=True)
    assert a == b
    assert ideal.params == a.params
    assert ideal.sleeper.capture_bpm == tool.IDEAL_CAPTURE_BPM
    assert ideal.sleeper.natural_calm_tau_s == a.sleeper.natural_calm_tau_s
    assert 4.0 <= a.resonance_bpm <= 7.0 and a.resonance_bpm < 60.0 * a.params.resonance_hz


def test_a_short_run_writes_the_report_and_the_plot(tool: ModuleType, tmp_path: Path) -> None:
    code = tool.main(["--people", "1", "--nights", "1", "--minutes", "12", "--jobs", "1",
                      "--no-sensitivity", "--out", str(tmp_path)])
    assert code == 0
    text = (tmp_path / "THERAPY_SIMULATION.md").read_text(encoding="utf-8")
    assert "| closed | 1 |" in text and "| dodow | 1 |" in text and "| playlist | 1 |" in text
    png = (tmp_path / "therapy_simulation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
