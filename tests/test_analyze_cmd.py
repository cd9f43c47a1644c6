"""``heartsong analyze``: bad input exits 2 with one line; real recordings give sane output."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from heartsong import analyze_cmd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ppg_reference"
WELLTORY = SHARED / "welltory" / "data" / "subject_16"
BIDMC = SHARED / "bidmc_01" / "bidmc_01_Signals.csv"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="heartsong")
    analyze_cmd.add_parser(parser.add_subparsers(dest="command"))
    return analyze_cmd.run(parser.parse_args(["analyze", *argv]))


def pulses_csv(path: Path, fs: float = 50.0, seconds: float = 90.0) -> Path:
    t = np.arange(int(fs * seconds)) / fs
    beat = (t * 1.15) % 1.0
    x = np.exp(-beat / 0.25) * (1 - np.exp(-beat / 0.03)) + 0.01 * np.sin(7 * t)
    rows = "\n".join(f"{a:.4f},{b:.5f}" for a, b in zip(t, x, strict=True))
    path.write_text("time_s,ppg\n" + rows + "\n")
    return path


@pytest.mark.parametrize(
    ("content", "extra", "needle"),
    [
        (None, [], "readable file"),
        ("", [], "non-empty"),
        ("time_s,ecg\n0,1\n0.02,2\n", [], "PPG column"),
        ("ppg\n" + "1.0\n" * 300, ["--fs", "50"], "flat line"),
        ("ppg\n" + "1.0\n2.0\n" * 150, ["--fs", "12"], "20 Hz"),
        ("ppg\n" + "nan\n" * 300, ["--fs", "50"], "numeric samples"),
        ("ppg\n" + "1\n1\n0.5\n" * 100, ["--fs", "50"], "unclipped"),
        ("ppg\n1\n2\n", ["--fs", "50", "--window", "-1"], "--window"),
        ("ppg\n1\n2\n", ["--fs", "50", "--step", "1e-7"], "--step: a number of seconds >= 1"),
        ("1600000000\n64\n1\n2\n", ["--format", "e4", "--fs", "64"], "--fs: left out"),
        ("800\n810\n", ["--rr", "--fs", "64"], "--fs: left out"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    extra: list[str],
    needle: str,
) -> None:
    path = tmp_path / "rec.csv"
    if content is not None:
        path.write_text(content)
    code = run([str(path), "--json", str(tmp_path / "out.json"), *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("heartsong analyze: ")
    assert needle in err
    assert not (tmp_path / "out.json").exists()


def test_synthetic_recording_json_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = pulses_csv(tmp_path / "rec.csv")
    out = tmp_path / "out.json"
    assert run([str(path), "--json", str(out), "--window", "30", "--step", "15"]) == 0
    data = json.loads(out.read_text())
    assert list(data) == [
        "fs_hz", "duration_s", "beats_s", "ibi_ms", "artifacts", "hrv", "windows"
    ]
    assert data["fs_hz"] == pytest.approx(50.0)
    assert data["hrv"]["mean_hr_bpm"] == pytest.approx(69.0, abs=0.5)
    assert len(data["windows"]) == 5
    # Every window carries the whole-record metrics under the same names, and its span
    # and quality.
    for w in data["windows"]:
        assert set(data["hrv"]) | {"t_start_s", "t_end_s", "signal_quality"} <= set(w)
        assert w["mean_hr_bpm"] == w["hr_bpm"] == pytest.approx(69.0, abs=1.0)
    assert len(data["beats_s"]) == len(data["ibi_ms"])
    assert run([str(path)]) == 0
    summary = capsys.readouterr().out
    assert "heart rate 69." in summary and "windows" in summary


@pytest.mark.skipif(not WELLTORY.exists(), reason="shared Welltory recording absent")
def test_real_camera_recording_agrees_with_the_chest_strap(tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    assert run([str(WELLTORY / "PPG.csv"), "--column", "R", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    rr = np.array((WELLTORY / "RR.txt").read_text().split(), dtype=float)
    assert data["artifacts"]["polarity"] == "inverted"  # camera brightness falls at systole
    assert data["hrv"]["mean_hr_bpm"] == pytest.approx(60000.0 / rr.mean(), abs=1.0)
    strap_rmssd = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
    assert data["hrv"]["rmssd_ms"] == pytest.approx(strap_rmssd, rel=0.2)
    rr_out = tmp_path / "rr.json"
    assert run([str(WELLTORY / "RR.txt"), "--rr", "--json", str(rr_out)]) == 0
    rr_data = json.loads(rr_out.read_text())
    assert rr_data["fs_hz"] is None
    assert rr_data["hrv"]["rmssd_ms"] == pytest.approx(strap_rmssd, rel=0.02)


@pytest.mark.skipif(not BIDMC.exists(), reason="shared BIDMC recording absent")
def test_real_monitor_recording_with_a_dropout_reports_the_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "b.json"
    assert run([str(BIDMC), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["fs_hz"] == pytest.approx(125.0, rel=1e-3)
    assert data["artifacts"]["n_gaps"] >= 1  # the sensor lost the finger at 92-103 s
    beats = np.array(data["beats_s"])
    assert not ((beats > 93.0) & (beats < 99.0)).any()
    assert 85.0 < data["hrv"]["mean_hr_bpm"] < 97.0
    quality = [w["signal_quality"] for w in data["windows"]]
    assert min(quality) < max(quality)
    # The dropout is declared unusable, from the PPG alone: no intervals inside it.
    long_gaps = [s for s in data["artifacts"]["unusable_s"] if s[1] - s[0] > 5.0]
    assert len(long_gaps) == 1
    start, end = long_gaps[0]
    assert start < 92.5 and end > 103.0 and end - start < 20.0
    assert run([str(BIDMC)]) == 0
    summary = capsys.readouterr().out
    assert f"unusable signal, no intervals: {start:.1f}-{end:.1f} s" in summary
