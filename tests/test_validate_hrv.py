"""The validation targets of issue 3, reproduced on the shared reference recordings.

Runs ``tools/validate_hrv.py``'s scoring (which calls ``heartsong analyze``) and checks the
targets heartsong meets, a floor for the one it does not meet (beat F1 on
neurokit_resting_5min, see docs/VALIDATION.md), the fiducial comparison, and the matching
rules, so a regression fails here.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

Rows = tuple[dict[tuple[str, str], Any], list[Any]]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "ppg_reference").is_dir(), reason="shared data absent"),
]


def load_tool() -> ModuleType:
    pytest.importorskip("neurokit2")
    return importlib.import_module("validate_hrv")  # tools/ (conftest)


@pytest.fixture(scope="module")
def rows() -> Rows:
    tool = load_tool()
    ecg_rows, well_rows = tool.validate(DATA)
    return {(r.name, r.pipeline): r for r in ecg_rows}, well_rows


@pytest.mark.parametrize("name", ["neurokit_resting_5min", "bidmc_01"])
def test_ecg_records_meet_hr_and_windowed_rmssd_targets(rows: Rows, name: str) -> None:
    by, _ = rows
    hs, nk = by[(name, "heartsong")], by[(name, "NeuroKit2")]
    assert abs(hs.hr - hs.hr_ref) <= 0.5
    assert hs.win_rmssd <= 3.0
    assert hs.n_windows >= 20
    # Never worse than NeuroKit2's default pipeline.
    assert hs.f1 >= nk.f1
    assert abs(hs.rmssd - hs.rmssd_ref) <= abs(nk.rmssd - nk.rmssd_ref)
    assert hs.win_rmssd <= nk.win_rmssd


def test_beat_f1_targets_on_the_usable_signal(rows: Rows) -> None:
    by, _ = rows
    nk, bidmc = by[("neurokit_resting_5min", "heartsong")], by[("bidmc_01", "heartsong")]
    # bidmc_01: a 12-s sensor dropout has no pulses; heartsong declares it unusable.
    assert bidmc.f1_usable >= 0.99
    assert 0.95 <= bidmc.coverage < 1.0
    assert bidmc.f1 >= 0.975
    # neurokit_resting_5min: target 99.5 %, measured 99.3 % (three beats whose pulse
    # timing strays 60-270 ms: a premature ventricular beat and two beats after ECG
    # disturbances, listed in docs/VALIDATION.md). A floor so a regression fails here.
    assert nk.coverage == pytest.approx(1.0, abs=0.005)
    assert nk.f1_usable >= 0.99
    assert len(nk.unmatched) <= 3


def test_upstroke_template_timing_is_never_beaten_by_more_than_half_a_ms() -> None:
    tool = load_tool()
    table = tool.fiducial_comparison(DATA)
    ours = table[tool.FIDUCIAL_NAMES[-1]]
    assert len(ours) == 3
    for col, (jitter, _, n) in ours.items():
        assert n > 300
        assert jitter <= min(v[col][0] for v in table.values()) + 0.5
    well = next(c for c in ours if c.startswith("welltory"))
    # On the phone camera the systolic peak is far noisier than the upstroke template.
    assert ours[well][0] <= table[tool.FIDUCIAL_NAMES[0]][well][0] - 2.0


def test_matching_rules() -> None:
    tool = load_tool()
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    near = np.array([1.0, 2.0, 3.2, 4.0])  # a premature beat the ECG correction moved
    mid = np.array([np.nan, 2.0, 3.0, np.nan])
    det = np.array([1.01, 2.03, 3.04, 4.2])
    moved = np.array([False, False, True, False])
    tp, used_r, _ = tool.match_beats(ref, near, mid, det, moved, 0.0)
    assert tp == 3 and used_r.tolist() == [True, True, True, False]
    # Without the correction's mark, the pulse at 3.04 s may not use the midpoint rule
    # (3.0 is both the corrected R-peak and the midpoint here, so it still matches the
    # R-peak); one 30 ms past the raw time of a moved R-peak matches through ``near``.
    tp, _, _ = tool.match_beats(ref, near, mid, np.array([1.0, 2.0, 3.23, 4.0]),
                                np.zeros(4, dtype=bool), 0.0)
    assert tp == 4
    flags = np.array([-1, 0, 1, 1, 0, 2, 2, 0])
    assert tool.placed_beats(flags).tolist() == [False, False, True, False, False, True,
                                                 False, False]
    spans = np.array([[10.0, 20.0]])
    assert tool.inside(np.array([10.0, 10.04, 15.0, 20.0]), spans, 0.05).tolist() == [
        False, False, True, False]


def test_welltory_targets(rows: Rows) -> None:
    _, well = rows
    pairs = list(zip(well[::2], well[1::2], strict=True))
    scored = [(h, n) for h, n in pairs if not h.note]
    assert len(scored) >= 10
    refused = [h for h, _ in pairs if h.note]
    assert all("clipped" in h.note or "unclipped" in h.note for h in refused)
    hs_hr = np.median([abs(h.hr - h.hr_ref) for h, _ in scored])
    hs_rm = np.median([abs(h.rmssd - h.rmssd_ref) for h, _ in scored])
    nk_rm = np.median([abs(n.rmssd - n.rmssd_ref) for _, n in scored if not math.isnan(n.rmssd)])
    assert hs_hr <= 1.0
    assert 2.0 * hs_rm <= nk_rm
    for h, n in scored:
        assert abs(h.rmssd - h.rmssd_ref) <= abs(n.rmssd - n.rmssd_ref)


def test_reference_checks_back_the_explanations_of_the_misses(rows: Rows) -> None:
    by, _ = rows
    nk, bidmc = by[("neurokit_resting_5min", "heartsong")], by[("bidmc_01", "heartsong")]
    # A second ECG detector agrees with the reference almost everywhere...
    assert nk.extra["second_agree"] >= 0.97 and bidmc.extra["second_agree"] >= 0.99
    assert all("second ECG detector" in line for line in nk.unmatched)
    # ... and bidmc_01's unusable stretch holds no pulse locked to its R-peaks, where the
    # usable signal's pulses all look alike; NeuroKit2 finds next to none of them either.
    assert bidmc.extra["gap_r_peaks"] >= 15
    assert bidmc.extra["gap_pulse_ratio"] < 0.25
    assert bidmc.extra["gap_corr"] < 0.5 < 0.95 < bidmc.extra["usable_corr"]
    assert bidmc.extra["gap_nk_matched"] <= 0.2 * bidmc.extra["gap_r_peaks"]
    assert "gap_r_peaks" not in nk.extra  # no unusable stretch inside that record


def test_records_not_in_shared_are_found_by_their_columns(tmp_path: Path) -> None:
    """Any folder under ppg_reference with an ECG and a PPG column is scored, whatever
    its name; one that cannot be read is listed with the reader's reason, not dropped."""
    tool = load_tool()
    ref = tmp_path / "ppg_reference"
    t = np.arange(0.0, 20.0, 1 / 125)
    (ref / "bidmc_07").mkdir(parents=True)
    with (ref / "bidmc_07" / "bidmc_07_Signals.csv").open("w") as fh:
        fh.write("Time [s], RESP, PLETH, V, AVR, II\n")
        fh.writelines(f"{x:.3f},0,{math.sin(x):.4f},0,0,{math.cos(x):.4f}\n" for x in t)
    (ref / "rest_ecg").mkdir()
    with (ref / "rest_ecg" / "session_250hz.csv").open("w") as fh:
        fh.write("ecg,ppg\n")
        fh.writelines(f"{math.cos(x):.4f},{math.sin(x):.4f}\n" for x in t)
    (ref / "no_rate").mkdir()
    (ref / "no_rate" / "a.csv").write_text("ECG,BVP\n" + "0,1\n1,0\n" * 50)
    (ref / "notes").mkdir()
    (ref / "notes" / "rr.csv").write_text("rr_ms\n800\n")
    found, skipped = tool.ecg_sources(ref)
    by = {s.name: s for s in found}
    assert sorted(by) == ["bidmc_07", "rest_ecg"]
    assert by["bidmc_07"].ecg_col == "II" and by["bidmc_07"].ppg_col == "PLETH"
    assert by["bidmc_07"].fs_hz == pytest.approx(125.0)
    assert by["bidmc_07"].hs_args == ("--column", "PLETH")
    assert by["rest_ecg"].fs_hz == 250.0 and by["rest_ecg"].hs_args[-2:] == ("--fs", "250")
    assert [name for name, _ in skipped] == ["no_rate"]
    assert "--fs" in skipped[0][1]
    assert tool.f1_target("neurokit_resting_5min") == 0.995
    assert tool.f1_target("bidmc_07") == tool.f1_target("bidmc_01") == 0.99


def test_pulses_beyond_the_references_reach_are_not_scored() -> None:
    """A pulse before the ECG detector's first R-peak (its filters cannot see a beat cut
    by the record's start) has no reference to match; R-peaks keep their own rule."""
    tool = load_tool()
    ref = np.array([0.8, 1.6, 2.4, 3.2])
    det = np.array([0.1, 0.9, 1.7, 2.5, 3.3, 3.95])
    keep_r, keep_d = tool.scored_spans(ref, det, 0.1, 4.0)
    assert keep_r.tolist() == [True, True, True, True]
    assert keep_d.tolist() == [False, True, True, True, True, False]


def test_new_records_with_a_bom_a_gap_or_a_bad_reference_are_scored_or_listed(
    tmp_path: Path,
) -> None:
    """The command will be run on other recordings: a CSV starting with a byte-order mark
    was dropped without a word, a NaN gap in the PPG crashed the fiducial table, and an
    unreadable RR.txt ended the whole run."""
    tool = load_tool()
    folder = tmp_path / "ppg_reference" / "rec"
    folder.mkdir(parents=True)
    t = np.arange(3000) / 100.0
    rows = "\n".join(f"{a:.2f},{math.sin(7 * a):.4f},{math.sin(6 * a):.4f}" for a in t)
    (folder / "rec.csv").write_text("time_s,ECG,PPG\n" + rows + "\n", encoding="utf-8-sig")
    found, skipped = tool.ecg_sources(tmp_path / "ppg_reference")
    assert [s.name for s in found] == ["rec"] and not skipped
    x = np.sin(np.arange(500) / 10.0)
    x[:7] = np.nan
    x[200:260] = np.nan
    filled = tool._filled(x)
    assert filled.size == 493 and np.all(np.isfinite(filled))
    subject = tmp_path / "welltory" / "subject_01"
    subject.mkdir(parents=True)
    (subject / "RR.txt").write_text("0.8 0.81 0.79\n")  # seconds, not ms
    heart, nk = tool.welltory_record(subject, tmp_path)
    assert "not scored: reference RR.txt" in heart.note and nk.pipeline == "NeuroKit2"
