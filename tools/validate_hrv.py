"""Validate ``heartsong analyze`` against ECG and chest-strap references; write docs/VALIDATION.md.

For every recording under ``<data>/ppg_reference`` the tool runs the ``heartsong analyze``
command itself (:func:`heartsong.analyze_cmd.run`, with the same arguments a user would
type) and reads back its JSON, so the numbers measured are the numbers users get. Next to
it, NeuroKit2's default PPG pipeline (``nk.ppg_process`` + ``nk.hrv_time``) runs on the
same samples.

References
----------
* ECG records: every CSV under ``ppg_reference/`` (outside ``welltory/``) with an ECG
  column (``ECG``, ``II``, ``MLII``, ...) and a PPG column (``PPG``, ``PLETH``, ``BVP``),
  whatever the folder is called (:func:`ecg_sources`); the rate from its time column, or
  from its name (``..._100hz.csv``) given to ``analyze`` as ``--fs``. A record found but
  unreadable is listed as not scored, with the reader's reason. The shared ones are
  ``neurokit_resting_5min`` and ``bidmc_01``; the beat F1 target is 99.5 % for the first
  and 99 % for every other. R-peaks from NeuroKit2's ``ecg_peaks``. Beat matching uses
  the peaks after NeuroKit2's own artefact correction
  (so an ECG noise burst or a missed R-peak does not count against the PPG), and accepts
  a pulse at the nearest raw R-peak too: the correction moves a premature beat, and
  often the normal beats after it, to times where no beat happened. A beat that
  heartsong's own correction moved (an ectopic or long/short interval) may also match
  the midpoint of the two neighbouring R-peaks, where the standard NN correction puts
  it; no other beat gets that allowance. The NN reference for HR, RMSSD and SDNN is the
  raw R-R series without the intervals around any beat NeuroKit2's Kubios-method
  detector flags and without intervals more than 20 % from the median of their 11
  neighbours (Malik et al. 1989); RMSSD uses successive pairs of kept intervals.
* A second ECG detector (Hamilton 2002, NeuroKit2's implementation, its constant offset
  from the reference removed) is reported next to every unmatched R-peak and as an
  agreement count; it is a check of the reference, never used for scoring. For the
  stretches heartsong declared unusable, the PPG averaged over their R-peaks (pulse
  expected at R + lag) says whether a pulse was there to find: its size against the
  usable signal's and how consistently each beat follows the average; and how many of
  those R-peaks NeuroKit2's PPG pipeline matches.
* Each record's constant ECG->PPG lag is the median difference between each pulse and the
  R-peak before it, refined as the median of the differences of the pairs within
  +-100 ms of it; pulses are then matched one-to-one to R-peaks within +-50 ms. Pulses
  more than half an R-R interval before the reference's first R-peak or after its last
  are not scored (an ECG detector cannot see a beat cut by the record's edge).
* Usable signal: heartsong reports, in ``artifacts.unusable_s``, the stretches where it
  gives no NN interval (lost, flat or implausible signal), decided from the PPG alone.
  *F1 usable* scores the R-peaks whose pulse falls outside those stretches and the
  pulses outside them; the coverage is the share of R-peaks scored.
* Fiducial point: the pulse-arrival jitter of several fiducial points (systolic peak,
  steepest upstroke, template alignment from either) against the ECG R-peaks, and
  against the Polar beat times for the Welltory recordings (their RR files have no
  timestamps; the beat times are the cumulative RR sum, shifted by the lag that matches
  most pulses within +-50 ms).
* Windows: heartsong's 60-s windows (step 10 s) against the reference window shifted by
  the lag; NeuroKit2's peaks are windowed the same way.
* Welltory (phone camera PPG, column ``R``): whole-record HR and RMSSD against the Polar
  H10 RR intervals (the same NN rule as for ECG). The RR file has no timestamps, so no
  windowed comparison. NeuroKit2 gets the same uniform grid heartsong resamples to,
  inverted (a camera's brightness falls at systole), since its default pipeline assumes
  upright pulses; heartsong decides the polarity itself.

Usage: ``python tools/validate_hrv.py [--data DIR] [--out docs/VALIDATION.md]``
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import io
import json
import math
import re
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "firmware"))

from heartsong import analyze_cmd  # noqa: E402
from heartsong.dsp.batch import resample_uniform  # noqa: E402
from heartsong.recordings import PPG_COLUMNS, read_recording  # noqa: E402

TOL_S = 0.05
WINDOW_S = 60.0
STEP_S = 10.0

# What inspecting the ECG and PPG around the unmatched beats showed (by eye, on plots).
NOTES = {
    "neurokit_resting_5min": (
        "At 217.45 s the ECG has a premature ventricular beat (a wide complex): its pulse is "
        "weak and arrives about 270 ms after its R-peak, as premature beats' pulses do "
        "(NeuroKit2's correction moved the R-peak to 217.61 s, and the two normal beats "
        "after it by 50-130 ms). At 257.9 s and 261.1 s the R-peaks sit inside large, "
        "non-QRS ECG deflections, and heartsong and NeuroKit2's PPG pipeline time the "
        "pulses alike there (within 15 ms of each other), 60-70 ms off the usual lag. The "
        "second ECG detector (below) is more than 50 ms from the reference at 217.45 and "
        "257.9 s, and elsewhere at six R-peaks (two at the record's edges), none of them "
        "missed; it does not "
        "bring either pulse closer. At 261.1 s it agrees with the reference, but the "
        "reference's R-R intervals there are 680 and 560 ms between neighbours of "
        "590-700 ms, the pulses' 597 and 630 ms: the R-peak may sit on the deflection "
        "(Elgendi et al. 2010's detector, not used for scoring, puts it 80 ms earlier, "
        "13 ms from the pulse). No reference was changed: all three count as missed. Each "
        "of the fiducials below misses them by more than 50 ms: the pulse timing itself "
        "differs, not the pulse detector."
    ),
    "bidmc_01": (
        "From 91.5 s to 104 s the PPG is flat steps and slow drift with no pulse (a sensor "
        "artefact; see the R-locked average below); the first pulses after it, to 106 s, "
        "arrive 70-125 ms later than the usual lag while the monitor's signal recovers "
        "(heartsong's intervals run 682, 650, 631, 626 ms against R-R of 648-656 ms), and "
        "both ECG detectors agree on those R-peaks. At 413.9 s two premature beats give "
        "pulses that heartsong detects at their R-peaks (`detected_beats_s`), but its "
        "artefact correction places them by interpolation, as NN correction does, 51 ms "
        "from the reference."
    ),
}

# Targets of issue 3.
F1_TARGET = {"neurokit_resting_5min": 0.995, "bidmc_01": 0.99}
#: The target for ECG records the issue does not name (bidmc_01's).
DEFAULT_F1_TARGET = 0.99
#: ECG column names looked for (lower case, in order of preference); the PPG column is
#: found as ``heartsong analyze`` finds it (``heartsong.recordings.PPG_COLUMNS``).
ECG_COLUMNS = ("ecg", "ii", "mlii", "ecg_ii", "i", "v")
WIN_RMSSD_TARGET_MS = 3.0
HR_TARGET_BPM = 0.5
WELLTORY_HR_TARGET_BPM = 1.0


@dataclass
class Row:
    """Results of one recording for one pipeline."""

    name: str
    pipeline: str
    note: str = ""
    sens: float = math.nan
    ppv: float = math.nan
    f1: float = math.nan
    f1_usable: float = math.nan
    f1_pulses: float = math.nan
    coverage: float = math.nan
    lag_s: float = math.nan
    hr: float = math.nan
    hr_ref: float = math.nan
    rmssd: float = math.nan
    rmssd_ref: float = math.nan
    sdnn: float = math.nan
    sdnn_ref: float = math.nan
    win_hr: float = math.nan
    win_rmssd: float = math.nan
    win_sdnn: float = math.nan
    n_windows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


# -- heartsong via its CLI -------------------------------------------------------------


def run_heartsong(path: Path, extra_args: list[str], tmp: Path) -> dict[str, Any] | str:
    """Run ``heartsong analyze`` on one file; return its JSON, or the error line."""
    parser = argparse.ArgumentParser(prog="heartsong")
    sub = parser.add_subparsers(dest="command")
    analyze_cmd.add_parser(sub)
    out = tmp / (path.parent.name + "_" + path.stem + ".json")
    args = parser.parse_args(["analyze", str(path), "--json", str(out), *extra_args])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = analyze_cmd.run(args)
    if code != 0:
        return err.getvalue().strip() or f"exit {code}"
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def heartsong_nn(result: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Beat times (s) and NN intervals (ms, NaN where none) from the JSON."""
    t = np.array(result["beats_s"], dtype=float)
    nn = np.array([math.nan if v is None else v for v in result["ibi_ms"]], dtype=float)
    return t, nn


# -- references ------------------------------------------------------------------------


def ecg_references(ecg: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """R-peaks for beat matching and for HRV.

    Returns ``(ref, near_raw, mid, raw)``: the R-peaks after NeuroKit2's artefact
    correction (s); for each of them the nearest raw R-peak within 250 ms (else itself);
    the midpoint of its two neighbours (NaN at the ends); and the raw R-peaks (s).
    """
    import neurokit2 as nk

    _, raw_info = nk.ecg_peaks(ecg, sampling_rate=round(fs))
    raw = np.asarray(raw_info["ECG_R_Peaks"], dtype=float) / fs
    _, cor_info = nk.ecg_peaks(ecg, sampling_rate=round(fs), correct_artifacts=True)
    cor = np.asarray(cor_info["ECG_R_Peaks"], dtype=float) / fs
    idx = np.clip(np.searchsorted(raw, cor), 1, max(raw.size - 1, 1))
    near = np.where(np.abs(raw[idx] - cor) < np.abs(raw[idx - 1] - cor), raw[idx], raw[idx - 1])
    near = np.where(np.abs(near - cor) < 0.25, near, cor)
    mid = np.full(cor.size, np.nan)
    mid[1:-1] = 0.5 * (cor[:-2] + cor[2:])
    return cor, near, mid, raw


def reference_nn(beats_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NN reference from beat times: (end times s, RR ms, kept mask) (see module docs)."""
    import neurokit2 as nk

    rr = np.diff(beats_s) * 1000.0
    n = rr.size
    med = np.array([np.median(rr[max(0, i - 5) : i + 6]) for i in range(n)])
    ok = np.abs(rr - med) <= 0.2 * med
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info, _ = nk.signal_fixpeaks(
            np.round(beats_s * 1000.0).astype(int), sampling_rate=1000, method="Kubios",
            iterative=False,
        )
    bad = np.zeros(beats_s.size, dtype=bool)
    for key in ("ectopic", "missed", "extra", "longshort"):
        for i in info[key]:
            bad[max(0, int(i) - 1) : int(i) + 2] = True
    ok &= ~bad[1:] & ~bad[:-1]
    return beats_s[1:], rr, ok


def second_reference(ecg: np.ndarray, fs: float, raw: np.ndarray) -> np.ndarray:
    """R-peaks (s) of a second ECG detector, Hamilton (2002) as NeuroKit2 implements it,
    shifted by its median offset from the reference's raw R-peaks (the two detectors mark
    different points of the QRS complex)."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ecg_clean(ecg, sampling_rate=round(fs), method="hamilton2002")
        _, info = nk.ecg_peaks(clean, sampling_rate=round(fs), method="hamilton2002")
    alt = np.asarray(info["ECG_R_Peaks"], dtype=float) / fs
    if alt.size < 2 or raw.size < 2:
        return alt
    return alt - float(np.median(alt - _nearest(raw, alt)))


def pulse_band(ppg: np.ndarray, fs: float) -> np.ndarray:
    """The PPG band-passed 0.5-8 Hz (zero phase), as :func:`r_locked_pulse` wants it."""
    from scipy.signal import butter, sosfiltfilt

    out: np.ndarray = sosfiltfilt(butter(2, [0.5, 8.0], btype="band", fs=fs, output="sos"), ppg)
    return out


def r_locked_pulse(
    bp: np.ndarray, fs: float, r_peaks: np.ndarray, lag: float
) -> tuple[float, float, int]:
    """The band-passed PPG ``bp`` (:func:`pulse_band`) averaged over R-peaks (pulse
    expected at R + lag): peak-to-peak of the mean pulse (signal units), the median
    correlation of each beat with the mean of the others, and the number of beats. NaN
    with fewer than 5 beats."""
    if r_peaks.size < 5:
        return math.nan, math.nan, int(r_peaks.size)
    rr = float(np.median(np.diff(r_peaks)))
    lo, width = round(0.3 * rr * fs), round(rr * fs)
    starts = np.round((r_peaks + lag) * fs).astype(int) - lo
    starts = starts[(starts >= 0) & (starts + width <= bp.size)]
    if starts.size < 5:
        return math.nan, math.nan, int(starts.size)
    beats = np.stack([bp[a : a + width] for a in starts])
    total = beats.sum(axis=0)
    corr = [np.corrcoef(b, (total - b) / (len(beats) - 1))[0, 1] for b in beats]
    return float(np.ptp(total / len(beats))), float(np.median(corr)), int(starts.size)


def nn_stats(nn: np.ndarray, ok: np.ndarray) -> tuple[float, float, float]:
    """(mean HR bpm, RMSSD ms, SDNN ms) from intervals and a kept mask."""
    kept = nn[ok & np.isfinite(nn)]
    if kept.size < 3:
        return math.nan, math.nan, math.nan
    pairs = ok[1:] & ok[:-1] & np.isfinite(nn[1:]) & np.isfinite(nn[:-1])
    d = np.diff(nn)[pairs]
    rmssd = float(np.sqrt(np.mean(d**2))) if d.size >= 2 else math.nan
    return 60000.0 / float(np.mean(kept)), rmssd, float(np.std(kept, ddof=1))


def estimate_lag(ref: np.ndarray, det: np.ndarray) -> float:
    """Constant ECG->PPG lag (s): median pulse - preceding R-peak, refined on close pairs."""
    k = np.searchsorted(ref, det) - 1
    ok = k >= 0
    lag = float(np.median(det[ok] - ref[k[ok]]))
    for _ in range(2):
        shifted = det - lag
        idx = np.clip(np.searchsorted(ref, shifted), 1, ref.size - 1)
        near = np.where(
            np.abs(ref[idx] - shifted) < np.abs(ref[idx - 1] - shifted), ref[idx], ref[idx - 1]
        )
        d = det - near
        close = np.abs(d - lag) <= 0.1
        if np.count_nonzero(close) < 10:
            break
        lag = float(np.median(d[close]))
    return lag


def match_beats(
    ref: np.ndarray,
    near: np.ndarray,
    mid: np.ndarray,
    det: np.ndarray,
    moved: np.ndarray,
    lag: float,
    tol: float = TOL_S,
) -> tuple[int, np.ndarray, np.ndarray]:
    """Greedy one-to-one matching in time order; (true positives, ref used, det used).

    A pulse matches a reference beat at its corrected or nearest raw time, and a pulse
    the PPG pipeline moved (``moved``) also at the midpoint of its neighbours.
    """
    shifted = det - lag
    used_r = np.zeros(ref.size, dtype=bool)
    used_d = np.zeros(det.size, dtype=bool)
    i = j = 0
    while i < ref.size and j < det.size:
        ds = [shifted[j] - ref[i], shifted[j] - near[i]]
        if moved[j] and math.isfinite(mid[i]):
            ds.append(shifted[j] - mid[i])
        if min(abs(d) for d in ds) <= tol:
            used_r[i] = used_d[j] = True
            i += 1
            j += 1
        elif max(ds) < 0:
            j += 1
        else:
            i += 1
    return int(used_r.sum()), used_r, used_d


def beat_scores(
    refs: tuple[np.ndarray, np.ndarray, np.ndarray], det: np.ndarray, moved: np.ndarray,
    lag: float, keep_ref: np.ndarray, keep_det: np.ndarray,
) -> tuple[float, float, float]:
    """Sensitivity, PPV and F1 over the selected reference and detected beats."""
    _, used_r, used_d = match_beats(*refs, det, moved, lag)
    tp_r = int(np.count_nonzero(used_r & keep_ref))
    tp_d = int(np.count_nonzero(used_d & keep_det))
    n_r = int(np.count_nonzero(keep_ref))
    n_d = int(np.count_nonzero(keep_det))
    sens = tp_r / n_r if n_r else math.nan
    ppv = tp_d / n_d if n_d else math.nan
    f1 = 2 * sens * ppv / (sens + ppv) if sens + ppv > 0 else math.nan
    return sens, ppv, f1


def scored_spans(
    ref: np.ndarray, det: np.ndarray, lag: float, duration: float
) -> tuple[np.ndarray, np.ndarray]:
    """Beats that both signals cover: R-peaks whose pulse falls inside the PPG record, and
    pulses whose R-peak falls inside the ECG record (both start at 0 and last
    ``duration`` seconds) and within the reference's reach: no earlier than half a median
    R-R interval before its first R-peak, nor later than that after its last. An ECG
    detector cannot see a beat cut by the record's edge (its filters need the signal
    around it), so a pulse there has no reference to match, whoever detects it."""
    lo, hi = 0.0, duration
    if ref.size >= 2:
        half = 0.5 * float(np.median(np.diff(ref)))
        lo, hi = max(lo, float(ref[0]) - half), min(hi, float(ref[-1]) + half)
    return (ref + lag >= 0.0) & (ref + lag <= duration), (det - lag >= lo) & (det - lag <= hi)


def overlap_mask(times: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (times >= lo) & (times <= hi)


def windowed_errors(
    det_t: np.ndarray,
    det_nn: np.ndarray,
    det_ok: np.ndarray,
    ref_t: np.ndarray,
    ref_nn: np.ndarray,
    ref_ok: np.ndarray,
    lag: float,
    windows: list[tuple[float, float, float | None, float | None, float | None]] | None,
    duration: float,
) -> tuple[float, float, float, int]:
    """Median |error| of HR, RMSSD, SDNN over 60-s windows; and the number of windows used.

    ``windows`` holds heartsong's own values ``(start, end, hr, rmssd, sdnn)``; without it
    the values come from ``det_*`` (NeuroKit2).
    """
    errs: list[tuple[float, float, float]] = []
    spans = windows or [
        (s, s + WINDOW_S, None, None, None)
        for s in np.arange(0.0, duration - WINDOW_S + 1e-9, STEP_S)
    ]
    for start, end, hr, rmssd, sdnn in spans:
        m = overlap_mask(ref_t, start - lag, end - lag)
        r_hr, r_rmssd, r_sdnn = nn_stats(ref_nn[m], ref_ok[m])
        if windows is None:
            md = overlap_mask(det_t, start, end)
            hr, rmssd, sdnn = nn_stats(det_nn[md], det_ok[md])
        vals = [
            abs(a - b) if a is not None and math.isfinite(a) and math.isfinite(b) else math.nan
            for a, b in ((hr, r_hr), (rmssd, r_rmssd), (sdnn, r_sdnn))
        ]
        if not math.isnan(vals[1]):
            errs.append((vals[0], vals[1], vals[2]))
    if not errs:
        return math.nan, math.nan, math.nan, 0
    arr = np.array(errs)
    return (
        float(np.nanmedian(arr[:, 0])),
        float(np.nanmedian(arr[:, 1])),
        float(np.nanmedian(arr[:, 2])),
        len(errs),
    )


# -- NeuroKit2 default pipeline --------------------------------------------------------


def neurokit_pipeline(ppg: np.ndarray, fs: float) -> tuple[np.ndarray, dict[str, float]]:
    """Peaks (s) and whole-record HR/RMSSD/SDNN of ``nk.ppg_process`` + ``nk.hrv_time``."""
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ppg_process(ppg, sampling_rate=round(fs))
        peaks = np.asarray(info["PPG_Peaks"], dtype=int)
        hrv = nk.hrv_time(peaks, sampling_rate=round(fs))
    t = peaks / float(round(fs))
    return t, {
        "hr": 60000.0 / float(np.mean(np.diff(t) * 1000.0)),
        "rmssd": float(hrv["HRV_RMSSD"].iloc[0]),
        "sdnn": float(hrv["HRV_SDNN"].iloc[0]),
    }


# -- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EcgSource:
    """A recording with a PPG and a simultaneous ECG, as found on disk."""

    name: str
    path: Path
    ecg_col: str
    ppg_col: str
    fs_hz: float
    hs_args: tuple[str, ...]


def _first_column(names: list[str], wanted: tuple[str, ...]) -> str | None:
    """The first of ``wanted`` (lower case) among ``names`` (any case, trimmed)."""
    lower = [n.lower() for n in names]
    for w in wanted:
        if w in lower:
            return names[lower.index(w)]
    return None


def ecg_sources(ref: Path) -> tuple[list[EcgSource], list[tuple[str, str]]]:
    """Every CSV under ``ref`` (except ``welltory/``) with an ECG and a PPG column.

    A record is named by its folder (folder/file when the folder holds several). Its
    PPG is read by heartsong's own reader with the arguments a user would give:
    ``--column`` the PPG column, and ``--fs`` only when the file has no time column and
    its name states the rate (``..._100hz.csv``). Returns the records, and
    ``(name, reason)`` for those found but unreadable.
    """
    found: list[EcgSource] = []
    skipped: list[tuple[str, str]] = []
    folders = sorted(p for p in ref.iterdir() if p.is_dir() and p.name != "welltory")
    for folder in folders:
        csvs = sorted(folder.rglob("*.csv"))
        for path in csvs:
            with path.open(newline="", encoding="utf-8-sig") as fh:  # a BOM is no name
                names = [h.strip() for h in next(csv.reader(fh), [])]
            ecg_col = _first_column(names, ECG_COLUMNS)
            ppg_col = _first_column(names, PPG_COLUMNS)
            if ecg_col is None or ppg_col is None:
                continue
            name = folder.name if len(csvs) == 1 else f"{folder.name}/{path.stem}"
            m = re.search(r"(\d+(?:\.\d+)?)\s*hz", path.stem, re.IGNORECASE)
            rate = float(m.group(1)) if m else None
            why = ""
            for fs_hz in [None] if rate is None else [None, rate]:  # a time column first
                try:
                    rec = read_recording(path, column=ppg_col, fs_hz=fs_hz)
                    break
                except ValueError as exc:
                    why = f"not scored: {exc}"
            else:
                skipped.append((name, why))
                continue
            args = ("--column", ppg_col) + (() if fs_hz is None else ("--fs", f"{fs_hz:g}"))
            if rec.fs_hz is not None:
                fs = float(rec.fs_hz)
            else:
                assert rec.t_s is not None
                fs = 1.0 / float(np.median(np.diff(rec.t_s)))
            found.append(EcgSource(name, path, ecg_col, ppg_col, fs, args))
    return found, skipped


def f1_target(name: str) -> float:
    """Issue 3's beat F1 target for a record: 99.5 % for neurokit_resting_5min, 99 %
    (bidmc_01's) for every other ECG record."""
    return F1_TARGET.get(name, DEFAULT_F1_TARGET)


@functools.cache
def load_ecg_record(
    src: EcgSource,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The record's ECG and PPG columns and its R-peaks (:func:`ecg_references`): read
    and detected once per run, for the scoring and the fiducial comparison alike."""
    import pandas as pd

    data = pd.read_csv(src.path, encoding="utf-8-sig")
    data.columns = [c.strip() for c in data.columns]
    ecg = data[src.ecg_col].to_numpy(float)
    return ecg, data[src.ppg_col].to_numpy(float), ecg_references(ecg, src.fs_hz)


def ecg_record(src: EcgSource, tmp: Path) -> list[Row]:
    """Score heartsong and NeuroKit2 on one record with a simultaneous ECG."""
    name, path, fs, hs_args = src.name, src.path, src.fs_hz, list(src.hs_args)
    ecg, ppg, (ref_c, ref_near, ref_mid, ref_raw) = load_ecg_record(src)
    duration = ppg.size / fs
    refs = (ref_c, ref_near, ref_mid)
    alt = second_reference(ecg, fs, ref_raw)
    rt, rnn, rok = reference_nn(ref_raw)
    hr_ref, rmssd_ref, sdnn_ref = nn_stats(rnn, rok)
    rows = []

    out = run_heartsong(path, hs_args, tmp)
    row = Row(name, "heartsong", hr_ref=hr_ref, rmssd_ref=rmssd_ref, sdnn_ref=sdnn_ref)
    if isinstance(out, str):
        row.note = out
    else:
        t, nn = heartsong_nn(out)
        moved = placed_beats(np.array(out["artifacts"]["beat_flags"], dtype=int))
        lag = estimate_lag(ref_c, t)
        keep_r, keep_d = scored_spans(ref_c, t, lag, duration)
        row.sens, row.ppv, row.f1 = beat_scores(refs, t, moved, lag, keep_r, keep_d)
        # The signal heartsong declared usable: outside its unusable stretches.
        spans = np.array(out["artifacts"]["unusable_s"], dtype=float).reshape(-1, 2)
        usable_r = ~inside(ref_c + lag, spans, TOL_S)
        usable_d = ~inside(t, spans, 1e-6)
        row.coverage = float(np.count_nonzero(usable_r & keep_r)) / max(1, keep_r.sum())
        _, _, row.f1_usable = beat_scores(
            refs, t, moved, lag, keep_r & usable_r, keep_d & usable_d
        )
        row.unmatched = unmatched_beats(
            refs, t, moved, lag, keep_r, keep_d, usable_r, usable_d, alt
        )
        row.lag_s = lag
        pulses = np.array(out["artifacts"]["detected_beats_s"], dtype=float)
        kr, kd = scored_spans(ref_c, pulses, lag, duration)
        unmoved = np.zeros(pulses.size, dtype=bool)
        row.f1_pulses = beat_scores(refs, pulses, unmoved, lag, kr, kd)[2]
        hrv = out["hrv"]
        row.hr, row.rmssd, row.sdnn = (
            _num(hrv["mean_hr_bpm"]), _num(hrv["rmssd_ms"]), _num(hrv["sdnn_ms"]))
        wins = [
            (w["t_start_s"], w["t_end_s"], _num(w["hr_bpm"]), _num(w["rmssd_ms"]),
             _num(w["sdnn_ms"]))
            for w in out["windows"]
        ]
        row.win_hr, row.win_rmssd, row.win_sdnn, row.n_windows = windowed_errors(
            t, nn, np.isfinite(nn), rt, rnn, rok, lag, wins, duration
        )
        row.extra = _artifact_summary(out)
    rows.append(row)

    nk_t, nk_whole = neurokit_pipeline(ppg, fs)
    nrow = Row(name, "NeuroKit2", hr_ref=hr_ref, rmssd_ref=rmssd_ref, sdnn_ref=sdnn_ref)
    lag = estimate_lag(ref_c, nk_t)
    keep_r, keep_d = scored_spans(ref_c, nk_t, lag, duration)
    nk_moved = np.zeros(nk_t.size, dtype=bool)
    nrow.sens, nrow.ppv, nrow.f1 = beat_scores(refs, nk_t, nk_moved, lag, keep_r, keep_d)
    nrow.lag_s = lag
    nrow.hr, nrow.rmssd, nrow.sdnn = nk_whole["hr"], nk_whole["rmssd"], nk_whole["sdnn"]
    nk_nn = np.concatenate([[math.nan], np.diff(nk_t) * 1000.0])
    nrow.win_hr, nrow.win_rmssd, nrow.win_sdnn, nrow.n_windows = windowed_errors(
        nk_t, nk_nn, np.isfinite(nk_nn), rt, rnn, rok, lag, None, duration
    )
    rows.append(nrow)
    if not isinstance(out, str):
        spans = np.array(out["artifacts"]["unusable_s"], dtype=float).reshape(-1, 2)
        row.evidence = evidence_lines(
            ppg, fs, refs, ref_raw, alt, row.lag_s, spans, duration, nk_t, nrow.lag_s,
            row.extra,
        )
    return rows


def evidence_lines(
    ppg: np.ndarray,
    fs: float,
    refs: tuple[np.ndarray, np.ndarray, np.ndarray],
    raw: np.ndarray,
    alt: np.ndarray,
    lag: float,
    spans: np.ndarray,
    duration: float,
    nk_t: np.ndarray,
    nk_lag: float,
    numbers: dict[str, Any],
) -> list[str]:
    """Checks of the reference and of the unusable stretches, from the signals alone.

    The second ECG detector's agreement with the reference; and, over the stretches
    heartsong declared unusable (away from the record's edges), whether the PPG holds a
    pulse locked to the R-peaks there (averaged over them, as against the usable signal)
    and how many of those R-peaks NeuroKit2's PPG pipeline matches. The figures also go
    to ``numbers`` (``second_agree``, ``gap_r_peaks``, ``gap_pulse_ratio``, ``gap_corr``,
    ``usable_corr``, ``gap_nk_matched``).
    """
    lines = []
    if alt.size >= 2:
        d = np.abs(_nearest(alt, raw) - raw)
        far = raw[d > TOL_S]
        numbers["second_agree"] = 1.0 - far.size / raw.size
        listed = ", ".join(f"{v:.2f}" for v in far[:10]) + (" ..." if far.size > 10 else "")
        lines.append(
            f"Second ECG detector (Hamilton 2002, its constant offset removed): within "
            f"50 ms of the reference R-peak at {raw.size - far.size} of {raw.size} beats"
            + (f"; further at {listed} s." if far.size else ".")
        )
    ref = refs[0]
    inner = spans[(spans[:, 0] > 0.0) & (spans[:, 1] < duration - 1e-3)]
    in_gap = inside(ref + lag, inner, 0.0)
    if np.count_nonzero(in_gap) < 5:
        return lines
    seconds = float(np.sum(inner[:, 1] - inner[:, 0]))
    bp = pulse_band(ppg, fs)
    pp_gap, c_gap, n_gap = r_locked_pulse(bp, fs, ref[in_gap], lag)
    pp_ok, c_ok, _ = r_locked_pulse(bp, fs, ref[~in_gap], lag)
    _, used_r, _ = match_beats(*refs, nk_t, np.zeros(nk_t.size, dtype=bool), nk_lag)
    nk_in = int(np.count_nonzero(inside(nk_t - nk_lag + lag, inner, 0.0)))
    numbers.update(
        gap_r_peaks=n_gap,
        gap_pulse_ratio=pp_gap / pp_ok,
        gap_corr=c_gap,
        usable_corr=c_ok,
        gap_nk_matched=int(np.count_nonzero(used_r & in_gap)),
    )
    lines.append(
        f"In the stretches heartsong declared unusable inside the record ({seconds:.1f} s, "
        f"{n_gap} R-peaks): the PPG averaged over those R-peaks has a mean pulse "
        f"{100.0 * pp_gap / pp_ok:.0f} % as large as over the usable signal, and each beat "
        f"correlates {c_gap:.2f} (median) with the mean of the others, against {c_ok:.2f} "
        f"there. NeuroKit2's PPG pipeline puts {nk_in} peaks in those stretches and matches "
        f"{int(np.count_nonzero(used_r & in_gap))} of their R-peaks within 50 ms."
    )
    return lines


def placed_beats(flags: np.ndarray) -> np.ndarray:
    """Beats heartsong's correction placed: moved (ectopic, long/short) or filled in
    (missed). Such a beat and the interval after it carry the same flag."""
    out = np.zeros(flags.size, dtype=bool)
    out[:-1] = np.isin(flags[:-1], (1, 2, 4)) & (flags[1:] == flags[:-1])
    return out


def inside(times: np.ndarray, spans: np.ndarray, margin: float) -> np.ndarray:
    """Which times lie strictly inside one of the ``[start, end]`` spans shrunk by
    ``margin`` at both ends (a beat on a span's edge still ends a reported interval)."""
    out = np.zeros(times.size, dtype=bool)
    for a, b in spans:
        out |= (times > a + margin) & (times < b - margin)
    return out


def unmatched_beats(
    refs: tuple[np.ndarray, np.ndarray, np.ndarray], det: np.ndarray, moved: np.ndarray,
    lag: float, keep_r: np.ndarray, keep_d: np.ndarray, usable_r: np.ndarray,
    usable_d: np.ndarray, alt: np.ndarray | None = None,
) -> list[str]:
    """Lines describing every unmatched beat in the usable signal (with where the second
    ECG detector ``alt`` puts an unmatched R-peak), and a count of those in the unusable
    stretches."""
    ref = refs[0]
    _, used_r, used_d = match_beats(*refs, det, moved, lag)
    lines = []
    for i in np.flatnonzero(~used_r & keep_r & usable_r):
        j = int(np.argmin(np.abs(det - lag - ref[i])))
        second = ""
        if alt is not None and alt.size:
            a = float(alt[np.argmin(np.abs(alt - ref[i]))])
            if abs(a - ref[i]) < 0.3:
                second = (
                    f"; the second ECG detector puts it {round(1000 * (a - ref[i])):+d} ms "
                    f"away, {round(1000 * (det[j] - lag - a)):+d} ms from the pulse"
                )
        lines.append(
            f"R-peak at {ref[i]:.2f} s: nearest pulse {1000 * (det[j] - lag - ref[i]):+.0f} ms"
            + (" (its time moved by heartsong's correction)" if moved[j] else "")
            + second
        )
    for j in np.flatnonzero(~used_d & keep_d & usable_d):
        i = int(np.argmin(np.abs(ref - (det[j] - lag))))
        if not (used_r[i] or not usable_r[i]):
            continue  # already listed with its R-peak
        lines.append(f"pulse at {det[j] - lag:.2f} s (ECG time): no R-peak within 50 ms")
    n_r = int(np.count_nonzero(~used_r & keep_r & ~usable_r))
    n_d = int(np.count_nonzero(~used_d & keep_d & ~usable_d))
    if n_r or n_d:
        lines.append(
            f"in the stretches heartsong declared unusable: {n_r} R-peaks without a pulse, "
            f"{n_d} unmatched pulses"
        )
    return lines


def welltory_record(folder: Path, tmp: Path) -> list[Row]:
    """Score heartsong and NeuroKit2 on one Welltory recording against the Polar RR."""
    name = "welltory/" + folder.name
    try:
        rr = read_recording(folder / "RR.txt", rr=True).rr_ms
    except ValueError as exc:  # InputDataError: the reference itself is unreadable
        why = f"not scored: reference {exc}".replace(str(folder) + "/", "")
        return [Row(name, "heartsong", note=why), Row(name, "NeuroKit2")]
    assert rr is not None
    beats = np.concatenate([[0.0], np.cumsum(rr) / 1000.0])
    _, rnn, rok = reference_nn(beats)
    hr_ref, rmssd_ref, _ = nn_stats(rnn, rok)
    rows = []
    out = run_heartsong(folder / "PPG.csv", ["--column", "R"], tmp)
    row = Row(name, "heartsong", hr_ref=hr_ref, rmssd_ref=rmssd_ref)
    if isinstance(out, str):
        row.note = out.replace(str(folder) + "/", "")
    else:
        hrv = out["hrv"]
        row.hr, row.rmssd = _num(hrv["mean_hr_bpm"]), _num(hrv["rmssd_ms"])
        row.extra = _artifact_summary(out)
    rows.append(row)

    import pandas as pd

    data = pd.read_csv(folder / "PPG.csv")
    grid, fs, _ = resample_uniform(data["time"].to_numpy(float) / 1000.0,
                                   data["R"].to_numpy(float))
    grid = grid[np.isfinite(grid)] if np.isnan(grid).any() else grid
    nrow = Row(name, "NeuroKit2", hr_ref=hr_ref, rmssd_ref=rmssd_ref)
    try:
        _, nk_whole = neurokit_pipeline(-grid, fs)
        nrow.hr, nrow.rmssd = nk_whole["hr"], nk_whole["rmssd"]
    except Exception as exc:  # NeuroKit2 fails in many ways on bad input
        nrow.note = f"NeuroKit2 failed: {type(exc).__name__}"
    rows.append(nrow)
    return rows


# -- fiducial points ---------------------------------------------------------------------

FIDUCIAL_NAMES = (
    "systolic peak (parabolic)",
    "steepest upstroke (parabolic)",
    "template alignment from the peak, whole pulse",
    "template alignment from the upstroke, whole pulse",
    "template alignment from the upstroke, foot to peak (heartsong)",
)


def fiducial_times(x: np.ndarray, fs: float) -> dict[str, np.ndarray]:
    """Beat times (s) of one PPG by each fiducial point, from the same detected pulses."""
    from heartsong.dsp.batch import ppg_is_upright
    from heartsong.dsp.filters import PPG_BAND_HZ, butter_bandpass_sos, sos_filtfilt
    from heartsong.dsp.peaks import ppg_findpeaks_elgendi, ppg_max_upslope
    from heartsong.dsp.quality import TIMING_IBI, ppg_align_beats

    sos = butter_bandpass_sos(PPG_BAND_HZ[0], min(PPG_BAND_HZ[1], 0.45 * fs), fs)
    s = sos_filtfilt(sos, x)
    if not ppg_is_upright(s, fs):
        s = -s
    peaks = ppg_findpeaks_elgendi(s, fs)
    up = ppg_max_upslope(s, fs, peaks)
    variants = (
        peaks,
        up,
        ppg_align_beats(s, fs, peaks)[0],
        ppg_align_beats(s, fs, up)[0],
        ppg_align_beats(s, fs, up, timing_ibi=TIMING_IBI)[0],
    )
    return {name: v / fs for name, v in zip(FIDUCIAL_NAMES, variants, strict=True)}


def _nearest(ref: np.ndarray, t: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(ref, t), 1, ref.size - 1)
    return np.where(np.abs(ref[idx] - t) < np.abs(ref[idx - 1] - t), ref[idx], ref[idx - 1])


def search_lag(ref: np.ndarray, beats: np.ndarray, lo: float, hi: float) -> float:
    """The lag (s) in ``[lo, hi]`` that puts most beats within 50 ms of a reference beat,
    refined as the median offset of the beats within 100 ms of it."""
    grid = np.arange(lo, hi, 0.005)
    shifted = beats[None, :] - grid[:, None]
    d = np.abs(_nearest(ref, shifted.ravel()).reshape(shifted.shape) - shifted)
    lag = float(grid[int(np.argmax(np.count_nonzero(d <= TOL_S, axis=1)))])
    off = beats - _nearest(ref, beats - lag)
    return float(np.median(off[np.abs(off - lag) <= 0.1]))


def pat_jitter(ref: np.ndarray, beats: np.ndarray, lag: float) -> tuple[float, int, int]:
    """(Beat-to-beat jitter of the pulse arrival time in ms, beats off by more than 50 ms,
    beats compared). The jitter is the robust (1.4826 MAD) standard deviation of the
    successive differences of the arrival time over sqrt(2), over beats within 150 ms."""
    off = beats - lag - _nearest(ref, beats - lag)
    close = np.abs(off) < 0.15
    d = np.diff(off)[close[1:] & close[:-1]]
    if d.size < 10:
        return math.nan, 0, int(off.size)
    mad = 1.4826 * float(np.median(np.abs(d - np.median(d))))
    return 1000.0 * mad / math.sqrt(2.0), int(np.count_nonzero(np.abs(off) > TOL_S)), off.size


def _filled(x: np.ndarray) -> np.ndarray:
    """``x`` from its first to its last finite sample, gaps at its median (the zero-phase
    filter of :func:`fiducial_times` takes no NaN; no pulse is found in a flat stretch)."""
    finite = np.flatnonzero(np.isfinite(x))
    x = x[finite[0] : finite[-1] + 1]
    return np.where(np.isfinite(x), x, np.nanmedian(x))


def fiducial_comparison(
    data: Path, sources: list[EcgSource] | None = None
) -> dict[str, dict[str, tuple[float, int, int]]]:
    """Jitter per fiducial (rows) per record (columns; the Welltory ones pooled as the
    median jitter and the summed counts). ``sources``: the ECG records, if already found
    (:func:`ecg_sources`)."""

    ref_dir = data / "ppg_reference"
    out: dict[str, dict[str, tuple[float, int, int]]] = {n: {} for n in FIDUCIAL_NAMES}
    for src in ecg_sources(ref_dir)[0] if sources is None else sources:
        _, ppg, refs = load_ecg_record(src)
        ref = refs[0]
        for fid, beats in fiducial_times(_filled(ppg), src.fs_hz).items():
            out[fid][src.name] = pat_jitter(ref, beats, search_lag(ref, beats, 0.0, 1.0))
    well: dict[str, list[tuple[float, int, int]]] = {n: [] for n in FIDUCIAL_NAMES}
    for folder in sorted((ref_dir / "welltory" / "data").glob("subject_*")):
        try:
            rec = read_recording(folder / "PPG.csv", column="R")
            rr = read_recording(folder / "RR.txt", rr=True).rr_ms
        except ValueError:
            continue  # refused by heartsong (a saturated channel, a bad reference): above
        assert rr is not None
        ref = np.concatenate([[0.0], np.cumsum(rr) / 1000.0])
        if rec.t_s is not None:
            x, fs, _ = resample_uniform(rec.t_s, rec.x)
        else:
            assert rec.fs_hz is not None
            x, fs = rec.x, rec.fs_hz
        times = fiducial_times(_filled(x), fs)
        lag0 = search_lag(ref, times[FIDUCIAL_NAMES[0]], -30.0, 30.0)
        for fid, beats in times.items():
            well[fid].append(pat_jitter(ref, beats, search_lag(ref, beats, lag0 - 0.3,
                                                                 lag0 + 0.3)))
    for fid, vals in well.items():
        if vals:
            out[fid][f"welltory (median of {len(vals)})"] = (
                float(np.median([v[0] for v in vals])),
                sum(v[1] for v in vals),
                sum(v[2] for v in vals),
            )
    return out


def _artifact_summary(out: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in out["artifacts"].items() if k not in ("beat_flags", "detected_beats_s")
    }


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


# -- report ----------------------------------------------------------------------------


def _f(v: float, digits: int = 1, pct: bool = False) -> str:
    if not isinstance(v, float) or math.isnan(v):
        return "-"
    return f"{100 * v:.{digits}f}" if pct else f"{v:.{digits}f}"


def _err(a: float, b: float, digits: int = 1) -> str:
    if math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a - b:+.{digits}f}"


def render(
    ecg_rows: list[Row],
    well_rows: list[Row],
    command: str,
    seconds: float,
    fiducials: dict[str, dict[str, tuple[float, int, int]]] | None = None,
) -> str:
    lines = [
        "# HRV validation",
        "",
        "Generated by `" + command + "` (do not edit by hand; rerun the tool). "
        f"Run time {seconds:.0f} s.",
        "",
        "Every heartsong number below comes from the `heartsong analyze` command run on the "
        "recording with the arguments a user would give (see `tools/validate_hrv.py` for "
        "the references and the matching rules). NeuroKit2 is its default PPG pipeline, "
        "`nk.ppg_process` + `nk.hrv_time`, on the same samples.",
        "",
        "## Records with a simultaneous ECG",
        "",
        "Beats: matched one-to-one within +-50 ms after removing the record's constant "
        "ECG->PPG lag, against NeuroKit2's corrected R-peaks or the nearest raw R-peak (its "
        "correction moves premature beats, and the normal beats after them, to times where "
        "no beat happened). *F1* scores `beats_s`, the corrected beat series users get, "
        "over the whole record; a beat heartsong's correction placed (moved or filled in) "
        "may also match the midpoint of the neighbouring R-peaks, where the standard NN "
        "correction puts it. *F1 usable* scores only the signal heartsong declared usable: "
        "outside the stretches it lists in `artifacts.unusable_s` (no NN interval: lost, "
        "flat or implausible signal), a decision made from the PPG alone, never from the "
        "ECG; *coverage* is the share of R-peaks in that signal. *F1 detected pulses* "
        "scores the pulses the detector found (`artifacts.detected_beats_s`), before "
        "correction. Errors are PPG minus ECG; window errors are the median \\|error\\| "
        "over the 60-s windows (step 10 s).",
        "",
        "| record | pipeline | sens % | PPV % | F1 % | F1 usable % (coverage %) | "
        "F1 detected pulses % | lag s "
        "| HR err bpm | RMSSD ms (ref) | RMSSD err | SDNN err | win HR | win RMSSD | "
        "win SDNN | windows |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ecg_rows:
        usable = (
            f"{_f(r.f1_usable, 2, True)} ({_f(r.coverage, 1, True)})"
            if not math.isnan(r.f1_usable) else "-"
        )
        lines.append(
            f"| {r.name} | {r.pipeline} | {_f(r.sens, 2, True)} | {_f(r.ppv, 2, True)} | "
            f"{_f(r.f1, 2, True)} | {usable} | {_f(r.f1_pulses, 2, True)} | {_f(r.lag_s, 3)} | "
            f"{_err(r.hr, r.hr_ref, 2)} | "
            f"{_f(r.rmssd)} ({_f(r.rmssd_ref)}) | {_err(r.rmssd, r.rmssd_ref)} | "
            f"{_err(r.sdnn, r.sdnn_ref)} | {_f(r.win_hr, 2)} | {_f(r.win_rmssd, 2)} | "
            f"{_f(r.win_sdnn, 2)} | {r.n_windows} |"
        )
    notes = [f"- {r.name} ({r.pipeline}): {r.note}" for r in ecg_rows if r.note]
    if notes:
        lines += ["", "Not scored:", "", *notes]
    for r in ecg_rows:
        if r.pipeline == "heartsong" and r.unmatched:
            lines += ["", f"Unmatched beats, heartsong on {r.name} (ECG time):", ""]
            lines += [f"- {line}" for line in r.unmatched]
            if r.name in NOTES:
                lines += ["", NOTES[r.name]]
            lines += [line for e in r.evidence for line in ("", e)]
    lines += [
        "",
        "## Welltory: phone camera PPG against the Polar H10",
        "",
        "| recording | heartsong HR err bpm | NeuroKit2 HR err | ref HR | heartsong RMSSD "
        "err ms | NeuroKit2 RMSSD err | ref RMSSD | heartsong artefacts % | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    pairs = list(zip(well_rows[::2], well_rows[1::2], strict=True))
    for hs, nkr in pairs:
        art = hs.extra.get("artifact_pct")
        lines.append(
            f"| {hs.name} | {_err(hs.hr, hs.hr_ref, 2)} | {_err(nkr.hr, nkr.hr_ref, 2)} | "
            f"{_f(hs.hr_ref)} | {_err(hs.rmssd, hs.rmssd_ref)} | "
            f"{_err(nkr.rmssd, nkr.rmssd_ref)} | {_f(hs.rmssd_ref)} | "
            f"{_f(float(art)) if isinstance(art, (int, float)) else '-'} | "
            f"{(hs.note + ' ' + nkr.note).strip()} |"
        )
    scored = [(h, n) for h, n in pairs if not h.note]
    hs_hr = [abs(h.hr - h.hr_ref) for h, _ in scored]
    hs_rm = [abs(h.rmssd - h.rmssd_ref) for h, _ in scored]
    nk_hr = [abs(n.hr - n.hr_ref) for _, n in scored if not math.isnan(n.hr)]
    nk_rm = [abs(n.rmssd - n.rmssd_ref) for _, n in scored if not math.isnan(n.rmssd)]
    med = {k: float(np.median(v)) if v else math.nan
           for k, v in (("hs_hr", hs_hr), ("hs_rm", hs_rm), ("nk_hr", nk_hr), ("nk_rm", nk_rm))}
    refused = [h.name for h, _ in pairs if h.note]
    lines += [
        "",
        f"Medians over the {len(scored)} recordings heartsong analysed"
        + (f" ({', '.join(refused)} refused, see note; not in the medians)" if refused else "")
        + f": \\|HR error\\| heartsong {_f(med['hs_hr'], 2)} bpm, NeuroKit2 {_f(med['nk_hr'], 2)}"
        f" bpm; \\|RMSSD error\\| heartsong {_f(med['hs_rm'])} ms, NeuroKit2 {_f(med['nk_rm'])} ms"
        f" (ratio {_f(med['nk_rm'] / med['hs_rm'], 1)}x).",
        "",
        "## Targets (issue 3)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    by = {(r.name, r.pipeline): r for r in ecg_rows}
    names = [r.name for r in ecg_rows if r.pipeline == "heartsong" and not r.note]
    for name in names:
        hs, target = by[(name, "heartsong")], f1_target(name)
        lines.append(
            f"| beat F1 >= {100 * target:g} % on {name}, whole record | "
            f"{_f(hs.f1, 2, True)} % | {_yes(hs.f1 >= target)} |"
        )
        lines.append(
            f"| beat F1 >= {100 * target:g} % on {name}, on the signal heartsong declared "
            f"usable | {_f(hs.f1_usable, 2, True)} % over {_f(hs.coverage, 1, True)} % of the "
            f"beats | {_yes(hs.f1_usable >= target)} |"
        )
    for name in names:
        hs = by[(name, "heartsong")]
        lines.append(
            f"| median window \\|RMSSD error\\| <= {WIN_RMSSD_TARGET_MS:g} ms on {name} | "
            f"{_f(hs.win_rmssd, 2)} ms | {_yes(hs.win_rmssd <= WIN_RMSSD_TARGET_MS)} |"
        )
        hr_err = abs(hs.hr - hs.hr_ref)
        lines.append(
            f"| whole-record \\|mean HR error\\| <= {HR_TARGET_BPM:g} bpm on {name} | "
            f"{_f(hr_err, 2)} bpm | {_yes(hr_err <= HR_TARGET_BPM)} |"
        )
    if scored:
        lines.append(
            f"| Welltory median \\|HR error\\| <= {WELLTORY_HR_TARGET_BPM:g} bpm | "
            f"{_f(med['hs_hr'], 2)} bpm | {_yes(med['hs_hr'] <= WELLTORY_HR_TARGET_BPM)} |"
        )
        lines.append(
            f"| Welltory RMSSD error at least 2x smaller than NeuroKit2 | "
            f"{_f(med['hs_rm'])} vs {_f(med['nk_rm'])} ms | "
            f"{_yes(2 * med['hs_rm'] <= med['nk_rm'])} |"
        )
    worse = []
    for name in names:
        hs, nkr = by[(name, "heartsong")], by[(name, "NeuroKit2")]
        if hs.f1 < nkr.f1:
            worse.append(f"{name} F1")
        if abs(hs.rmssd - hs.rmssd_ref) > abs(nkr.rmssd - nkr.rmssd_ref):
            worse.append(f"{name} RMSSD")
        if hs.win_rmssd > nkr.win_rmssd:
            worse.append(f"{name} window RMSSD")
    for h, n in scored:
        if abs(h.rmssd - h.rmssd_ref) > abs(n.rmssd - n.rmssd_ref):
            worse.append(f"{h.name} RMSSD")
    lines.append(
        "| never worse than NeuroKit2 in F1 or RMSSD error, any record | "
        + ("worse on " + ", ".join(worse) if worse else "nowhere worse")
        + f" | {_yes(not worse)} |"
    )
    dropout = (
        " (bidmc_01 has a 12-s dropout, flat steps from about 91.5 s to 104 s)"
        if "bidmc_01" in names else ""
    )
    lines += [
        "",
        "The issue's beat F1 targets are whole-record figures, and that is the first row of "
        "each pair. The second scores only the signal heartsong declared usable: where the "
        f"sensor shows no pulse at all{dropout}, matching the R-peaks would need invented "
        "beats; heartsong reports those stretches as unusable (null intervals, "
        "`artifacts.unusable_s`) instead, as beat-detector benchmarks exclude unusable "
        "signal, and the coverage says how much was excluded.",
    ]
    if fiducials:
        cols = sorted({c for v in fiducials.values() for c in v})
        lines += [
            "",
            "## Fiducial point: pulse-arrival jitter",
            "",
            "Which point of the pulse follows the heart beat best: the same detected pulses "
            "timed by each fiducial, against the ECG R-peaks (Welltory: the Polar beat "
            "times, rebuilt from the RR intervals and shifted by the lag that matches most "
            "pulses). *Jitter*: robust (1.4826 MAD) standard deviation of the successive "
            "differences of the pulse arrival time over sqrt(2), in ms, what an interval "
            "error is made of; *>50 ms*: beats further than 50 ms from the constant lag "
            "(bidmc_01's count includes its dropout). heartsong uses the last row: starting "
            "the alignment from the steepest upstroke instead of the systolic peak lowers "
            "the jitter on bidmc_01 and the Welltory recordings and leaves "
            "neurokit_resting_5min about equal, and the single points are worse than their "
            "template alignment. Timing by the foot-to-peak part or by the whole pulse "
            "differs by 0.3 ms or less here; the foot-to-peak part leaves out the diastolic "
            "wave, which reflections shape differently from beat to beat.",
            "",
            "| fiducial | " + " | ".join(f"{c} jitter ms (>50 ms / beats)" for c in cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for fid, per in fiducials.items():
            cells = [
                f"{_f(per[c][0])} ({per[c][1]} / {per[c][2]})" if c in per else "-"
                for c in cols
            ]
            lines.append(f"| {fid} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def validate(
    data: Path, found: tuple[list[EcgSource], list[tuple[str, str]]] | None = None
) -> tuple[list[Row], list[Row]]:
    """Score every recording under ``<data>/ppg_reference``; return (ECG record rows,
    Welltory rows). Records found but not scorable come back as heartsong rows with a
    note (and no NeuroKit2 row), so a reader sees what was left out and why. ``found``:
    :func:`ecg_sources`' result, if already taken.

    Rows of scored records come in pairs: heartsong, then NeuroKit2 on the same recording.
    """
    ref = data / "ppg_reference"
    ecg_rows: list[Row] = []
    well_rows: list[Row] = []
    sources, skipped = ecg_sources(ref) if found is None else found
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for src in sources:
            ecg_rows += ecg_record(src, tmp)
        for folder in sorted((ref / "welltory" / "data").glob("subject_*")):
            well_rows += welltory_record(folder, tmp)
    ecg_rows += [Row(name, "heartsong", note=why) for name, why in skipped]
    return ecg_rows, well_rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="the shared data folder (holding ppg_reference/)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "VALIDATION.md")
    args = p.parse_args(argv)
    ref = args.data / "ppg_reference"
    if not ref.is_dir():
        print(f"validate_hrv: no ppg_reference folder under {args.data}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    found = ecg_sources(ref)  # each record's PPG is read once to find it
    ecg_rows, well_rows = validate(args.data, found)
    fiducials = fiducial_comparison(args.data, found[0])
    seconds = time.perf_counter() - start
    cmd = "python tools/validate_hrv.py" + ("" if args.data == DEFAULT_DATA else " --data DIR")
    text = render(ecg_rows, well_rows, cmd, seconds, fiducials)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
