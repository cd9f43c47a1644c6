"""Stress-Predict recordings as labelled HRV windows, through heartsong's own DSP.

Used by ``tools/train_stress_model.py`` and the stress tests. Stress-Predict (Iqbal et al.
2022, Sensors 22(21):8135; MIT licence) holds, per participant, the Empatica E4's raw
64 Hz wrist BVP (``Raw_data/Sxx/BVP.csv.gz``, or ``BVP.csv`` as the E4 writes it: line 1
its start as Unix time, line 2 the rate) and, in
``Processed_data/Improved_All_Combined_hr_rsp_binary.csv``, one label per second (Unix
time; 1 during the Stroop, interview and hyperventilation tasks, 0 at rest).

Alignment: the label of Unix second ``u`` covers ``[u - start, u - start + 1)`` seconds of
the BVP recording whose line 1 says ``start``. (Checked on the shared participants: the
label changes fall within 1 s of the task tags in ``tags_Sxx.csv`` except where those
tags are broken, S06/S17/S18; the processed labels follow ``Time_logs.xlsx``.)

Each recording goes through :func:`heartsong.recordings.read_e4` and
:func:`heartsong.dsp.batch.analyze_recording` with 60-s windows every 10 s, exactly as
``heartsong analyze --format e4`` does. A window's label share is the fraction of its
labelled seconds that are stress; windows with fewer than ``MIN_LABELLED_S`` labelled
seconds have none.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heartsong.dsp.batch import analyze_recording
from heartsong.recordings import read_e4

logger = logging.getLogger(__name__)

LABELS_CSV = Path("Processed_data") / "Improved_All_Combined_hr_rsp_binary.csv"
WINDOW_S = 60.0
STEP_S = 10.0
#: A window needs this many labelled seconds to have a label.
MIN_LABELLED_S = 30


def default_data_dir() -> Path:
    """``../shared/data/stress_predict`` next to the repository."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "stress_predict"


@dataclass
class Participant:
    """One participant's windows and their labels.

    Attributes
    ----------
    pid:
        Participant number (``Sxx``).
    windows:
        Windows of :meth:`heartsong.dsp.batch.AnalysisResult.as_dict` (metrics, times in
        seconds from the start of the BVP recording).
    stress_share:
        Share of each window's labelled seconds that are stress (NaN without a label).
    start_unix_s:
        Unix time of the first BVP sample, seconds.
    """

    pid: int
    windows: list[dict[str, Any]]
    stress_share: np.ndarray
    start_unix_s: float

    @property
    def name(self) -> str:
        return f"S{self.pid:02d}"

    def labels(self) -> np.ndarray:
        """1 where most labelled seconds are stress, 0 where most are rest, -1 unlabelled."""
        s = self.stress_share
        return np.where(np.isfinite(s), (s >= 0.5).astype(int), -1)

    def pure(self) -> np.ndarray:
        """True for windows that lie wholly in one labelled phase."""
        s = self.stress_share
        return np.isfinite(s) & ((s == 0.0) | (s == 1.0))


def read_labels(data_dir: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per participant: Unix seconds and labels (0/1) from the processed CSV."""
    path = data_dir / LABELS_CSV
    rows: dict[int, list[tuple[float, int]]] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            rows.setdefault(int(row["Participant"]), []).append(
                (float(row["Time(sec)"]), int(float(row["Label"])))
            )
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for pid, pairs in rows.items():
        arr = np.array(pairs, dtype=np.float64)
        out[pid] = (arr[:, 0], arr[:, 1].astype(int))
    return out


def bvp_path(data_dir: Path, pid: int) -> Path:
    """The participant's raw BVP file: ``BVP.csv.gz``, or ``BVP.csv`` as the E4 writes
    it (the gzip one if neither exists, for the message)."""
    folder = data_dir / "Raw_data" / f"S{pid:02d}"
    plain = folder / "BVP.csv"
    return plain if plain.exists() and not (folder / "BVP.csv.gz").exists() else (
        folder / "BVP.csv.gz"
    )


def e4_start(path: Path) -> float:
    """Unix start time on line 1 of an E4 file (gzip or plain)."""
    import gzip

    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return float(fh.readline().split(",")[0])


def window_stress_share(
    windows: Iterable[dict[str, Any]], t_unix: np.ndarray, labels: np.ndarray, start: float
) -> np.ndarray:
    """Share of each window's labelled seconds that are stress (NaN if too few labelled)."""
    rel = np.floor(t_unix - start).astype(np.int64)
    keep = rel >= 0
    rel, lab = rel[keep], labels[keep]
    n = int(rel.max()) + 1 if rel.size else 1
    per_s = np.full(n, np.nan)
    per_s[rel] = lab
    out = []
    for w in windows:
        a, b = math.floor(w["t_start_s"]), math.floor(w["t_end_s"])
        seg = per_s[max(a, 0) : max(min(b, n), 0)]
        seg = seg[np.isfinite(seg)]
        out.append(float(seg.mean()) if seg.size >= MIN_LABELLED_S else math.nan)
    return np.array(out, dtype=np.float64)


def load_participant(data_dir: Path, pid: int, t_unix: np.ndarray, labels: np.ndarray) -> (
    Participant
):
    """Analyse one participant's BVP and label its windows."""
    path = bvp_path(data_dir, pid)
    rec = read_e4(path)
    result = analyze_recording(
        rec.x, rec.fs_hz, window_s=WINDOW_S, step_s=STEP_S, clipped_pct=rec.clipped_pct,
        invert=rec.invert,
    )
    windows = result.as_dict()["windows"]
    assert isinstance(windows, list)
    start = e4_start(path)
    share = window_stress_share(windows, t_unix, labels, start)
    return Participant(pid, windows, share, start)


def load_dataset(
    data_dir: Path, labels: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
) -> list[Participant]:
    """Every labelled participant with a BVP file, in participant order.

    ``labels`` is :func:`read_labels` of ``data_dir`` when the caller already read it.
    """
    if labels is None:
        labels = read_labels(data_dir)
    out = []
    for pid in sorted(labels):
        if not bvp_path(data_dir, pid).exists():
            logger.warning("S%02d: labelled but no BVP.csv(.gz); left out", pid)
            continue
        t_unix, lab = labels[pid]
        out.append(load_participant(data_dir, pid, t_unix, lab))
        logger.info("S%02d: %d windows", pid, len(out[-1].windows))
    return out
