"""Reports: a simulated week shows its trend; the PNG is readable and labelled with units."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from heartsong.errors import InputDataError
from heartsong.store.db import Store, db_path
from heartsong.store.report import render_report

matplotlib = pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mod = importlib.import_module("simulate_week")  # tools/ (conftest)
    out = tmp_path_factory.mktemp("week")
    assert mod.main(["--nights", "4", "--minutes", "8", "--seed", "3", "--out", str(out)]) == 0
    return out


def test_simulated_week_trend_is_in_the_baseline(week: Path) -> None:
    store = Store(db_path(week))
    nights = store.baseline()
    store.close()
    assert len(nights) == 4
    hr = [n.resting_hr_bpm for n in nights]
    rmssd = [n.rmssd_ms for n in nights]
    assert all(v is not None for v in hr + rmssd)
    # The simulated person gets more rested each night (66 -> 58 bpm, 32 -> 50 ms).
    assert hr[-1] < hr[0] - 4.0  # type: ignore[operator]
    assert rmssd[-1] > rmssd[0] + 8.0  # type: ignore[operator]


def test_report_png_is_readable_and_labelled_with_units(week: Path) -> None:
    from matplotlib.image import imread

    for name in ("week.png", "last_night.png"):
        img = imread(week / name)
        assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 800
        assert float(img[..., :3].std()) > 0.05  # not a blank canvas
    html = (week / "week.html").read_text()
    assert "Resting heart rate" in html and "data:image/png;base64," in html


def test_session_figure_axes_carry_units(week: Path) -> None:
    from heartsong.store import report

    store = Store(db_path(week))
    try:
        (s,) = store.sessions(last=1)
        fig, lines = report._session_figure(store, s)
        labels = [ax.get_ylabel() for ax in fig.axes]
        assert labels[:4] == ["heart rate (bpm)", "RMSSD (ms)", "stress probability (0-1)",
                              "breaths/min"]
        assert fig.axes[3].get_xlabel() == "time since the session started (min)"
        assert any("soundscape rain -> deep_ocean" in line for line in lines)
        # The reasons are listed under their numbers, each change once, none cut short
        # by its neighbour (they were written at their times, on top of each other).
        listed = "\n".join(t.get_text() for t in fig.axes[-1].texts).splitlines()
        changes = [line for line in lines if line.startswith("  ") and " min  " in line]
        assert len(listed) == min(len(changes), 2 * report.MAX_LABELS)
        numbered = [line for line in listed if not line.lstrip().startswith("...")]
        assert [int(line.split()[0]) for line in numbered] == list(range(1, len(numbered) + 1))
        assert max(map(len, listed)) <= 11 + report.LABEL_CHARS
        (nfig, _) = report._nights_figure(store.baseline())
        assert [ax.get_ylabel() for ax in nfig.axes] == [
            "resting heart rate (bpm)", "night RMSSD (ms)", "time to calm (min)"]
    finally:
        store.close()


def test_report_errors_name_the_option(week: Path, tmp_path: Path) -> None:
    store = Store(db_path(week))
    try:
        with pytest.raises(InputDataError, match="--out"):
            render_report(store, tmp_path / "r.pdf", last=True)
        with pytest.raises(InputDataError, match="--session"):
            render_report(store, tmp_path / "r.png", session_id=999)
        with pytest.raises(InputDataError, match="--nights"):
            render_report(store, tmp_path / "r.png", nights=0)
    finally:
        store.close()
