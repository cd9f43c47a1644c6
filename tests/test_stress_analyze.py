"""``heartsong analyze --stress``: every window scored, and on shared Stress-Predict
recordings the per-participant result of the model card is reproduced."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heartsong import analyze_cmd, stress_cmd

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
STRESS_DATA = REPO.parent / "shared" / "data" / "stress_predict"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="heartsong")
    analyze_cmd.add_parser(p.add_subparsers(dest="command"))
    return p


def analyze_with_stress(path: Path, tmp_path: Path, baseline_s: float = 300.0) -> dict[str, Any]:
    """``heartsong analyze --format e4 PATH --stress --json OUT``, read back."""
    out = tmp_path / "out.json"
    args = parser().parse_args(["analyze", str(path), "--format", "e4", "--stress",
                                "--baseline-seconds", str(baseline_s), "--json", str(out)])
    assert analyze_cmd.run(args) == 0
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


@pytest.mark.slow
@pytest.mark.skipif(not STRESS_DATA.is_dir(), reason="shared Stress-Predict data absent")
@pytest.mark.parametrize("name", ["S06", "S14"])  # a personal and a population baseline
def test_analyze_stress_reproduces_the_model_cards_participant(
    name: str, tmp_path: Path
) -> None:
    ref = json.loads((MODELS / "stress_reference.json").read_text())["analyze"]
    expected = ref["participants"][name]
    data = importlib.import_module("stress_data")
    evaluation = importlib.import_module("stress_eval")
    pid = int(name[1:])
    path = data.bvp_path(STRESS_DATA, pid)
    out = analyze_with_stress(path, tmp_path, ref["baseline_s"])

    windows = out["windows"]
    assert all({"p_stress", "p_stress_window", "stress_state"} <= set(w) for w in windows)
    assert out["stress"]["baseline"]["source"] == expected["baseline"]
    t_unix, labels = data.read_labels(STRESS_DATA)[pid]
    share = data.window_stress_share(windows, t_unix, labels, data.e4_start(path))
    lab = np.where(np.isfinite(share), (share >= 0.5).astype(int), -1)
    p = np.array([np.nan if w["p_stress_window"] is None else w["p_stress_window"]
                  for w in windows])
    t0 = np.array([w["t_start_s"] for w in windows])
    m = (t0 >= ref["baseline_s"]) & (lab >= 0) & np.isfinite(p)
    assert int(m.sum()) == expected["n_eval"]
    ba = evaluation.balanced_accuracy(lab[m] == 1, p[m] >= ref["decision_threshold"])
    auc = evaluation.auroc(lab[m], p[m])
    assert ba == pytest.approx(expected["balanced_accuracy"], abs=1e-6)
    assert auc == pytest.approx(expected["auroc"], abs=1e-6)
    # Stress windows score higher than rest windows on this participant.
    assert np.median(p[m & (lab == 1)]) > np.median(p[m & (lab == 0)])
    # Unusable windows are unknown with a reason, never a guess.
    for w in windows:
        if w["p_stress_window"] is None:
            assert w["stress_state"] == "unknown" and w["p_stress"] is None
            assert w["reasons"]["p_stress"]


def test_stress_scores_every_window_of_a_synthetic_recording() -> None:
    from heartsong.stress.model import StressModel

    model = StressModel.load(MODELS)
    rest = {"rmssd_ms": 45.0, "sdnn_ms": 55.0, "pnn50_pct": 25.0, "lf_hf": 1.2,
            "resp_rate_bpm": 14.0, "coherence": 0.3, "signal_quality": 0.9}
    windows: list[dict[str, Any]] = []
    for i in range(90):
        hr: float | None = 62.0 if i < 45 else 80.0
        w: dict[str, Any] = {"t_start_s": 10.0 * i, "t_end_s": 10.0 * i + 60.0, "hr_bpm": hr,
                             **rest, "reasons": {}}
        if i == 60:
            w["hr_bpm"] = None
        windows.append(w)
    section = stress_cmd.annotate_windows(windows, model, 300.0)
    assert section["baseline"]["source"] == "personal"
    assert section["n_scored"] == 89 and section["n_windows"] == 90
    assert windows[60]["stress_state"] == "unknown"
    assert "hr_bpm" in windows[60]["reasons"]["p_stress"]
    assert windows[80]["stress_state"] == "stressed"
    assert windows[40]["stress_state"] in ("calm", "neutral")
    assert windows[80]["p_stress"] > windows[40]["p_stress"]
    lines = stress_cmd.format_stress({"stress": section})
    assert "89 of 90 windows scored" in lines[0] and "stressed" in lines[1]


@pytest.mark.parametrize(
    ("baseline_s", "model_dir", "window_s", "needle"),
    [
        (0.0, MODELS, 60.0, "--baseline-seconds"),
        (float("nan"), MODELS, 60.0, "--baseline-seconds"),
        (300.0, Path("/nonexistent/models"), 60.0, "stress_features.json: missing"),
        # A personal baseline needs 3 windows ending in it: with 60-s windows every 10 s,
        # 60 s could only ever fall back to the population baseline, silently.
        (60.0, MODELS, 60.0, "--baseline-seconds: at least 80 s"),
        # The whole recording (600 s) as its own baseline says nothing.
        (600.0, MODELS, 60.0, "shorter than the recording (600 s)"),
        # The features are only comparable over the windows the model was trained on.
        (300.0, MODELS, 30.0, "--window: 60 s with --stress"),
    ],
)
def test_stress_option_errors_are_one_line(baseline_s: float, model_dir: Path,
                                           window_s: float, needle: str) -> None:
    ns = argparse.Namespace(stress=True, baseline_seconds=baseline_s, stress_model=model_dir,
                            window=window_s, step=10.0)
    msg = stress_cmd.apply({"windows": [], "duration_s": 600.0}, ns)
    assert needle in msg and "\n" not in msg


def test_without_stress_nothing_is_added() -> None:
    out: dict[str, Any] = {"windows": [{"t_end_s": 60.0}]}
    assert stress_cmd.apply(out, argparse.Namespace(stress=False)) == ""
    assert "stress" not in out and "p_stress" not in out["windows"][0]


def test_stress_arguments_parse() -> None:
    p = argparse.ArgumentParser()
    stress_cmd.add_arguments(p)
    args = p.parse_args(["--stress", "--baseline-seconds", "240"])
    assert args.stress and args.baseline_seconds == 240.0 and args.stress_model is None
    assert p.parse_args([]).baseline_seconds == stress_cmd.DEFAULT_BASELINE_S


def test_cli_refuses_a_bad_baseline_before_reading(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["analyze", str(tmp_path / "absent.csv"), "--stress",
                                "--baseline-seconds", "0"])
    assert analyze_cmd.run(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--baseline-seconds" in err and "absent" not in err
