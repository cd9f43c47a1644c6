"""Read recordings for ``heartsong analyze``: PPG as CSV or Empatica E4 files, RR series.

Every problem with the input is an :class:`heartsong.errors.InputDataError` that names the
file and the field (column, line, rate) and says what was expected.

* **CSV** with a header row. Header names are stripped of spaces and matched without
  regard to case. The PPG column is ``column`` or the first of ``ppg``, ``pleth``, ``bvp``.
  Time comes from a ``time_s`` (or ``time[s]``) column in seconds, a ``time_ms`` (or
  ``time[ms]``) column in milliseconds, or a bare ``time`` column whose unit is taken from
  its step (a step of 1 or more is milliseconds: at the 20 Hz minimum rate a step in
  seconds is at most 0.05); without a time column the rate must be given (``fs_hz``).
  Evenly spaced times (every step within 1 % of the median) give the rate; uneven ones
  (a phone camera at about 30 frames/s) are returned as sample times for
  :func:`heartsong.dsp.batch.resample_uniform`.
* **E4** (``fmt="e4"``, Empatica's export, optionally gzip-compressed): line 1 the start
  as Unix time, line 2 the rate in Hz, then one sample per line (first column).
* **RR**: intervals in ms, one per line, or separated by spaces or commas on one line
  (the Welltory/Polar ``RR.txt``), or a CSV with an ``rr_ms`` column.

Signal checks on PPG: NaN runs up to ``MAX_FILL_S`` are filled by linear interpolation,
longer ones stay NaN and become gaps; a stretch that does not change for ``FLAT_RUN_S``
(a sensor off the skin, a saturated channel) becomes a gap too; samples at the lowest or
highest value of the recording, when more than ``CLIP_MIN_PCT`` of them sit there, are
reported as clipping. A recording that is all flat, mostly clipped, without two
consecutive seconds of signal, or sampled below 20 Hz is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from heartsong.errors import InputDataError
from heartsong.events import FloatArray

__all__ = [
    "CLIP_MIN_PCT",
    "FLAT_RUN_S",
    "MAX_FILL_S",
    "MIN_FS_HZ",
    "PPG_COLUMNS",
    "Recording",
    "read_e4",
    "read_ppg_csv",
    "read_recording",
    "read_rr",
]

logger = logging.getLogger(__name__)

#: Column names tried for the PPG, in order (compared without case).
PPG_COLUMNS: tuple[str, ...] = ("ppg", "pleth", "bvp")
#: Lowest accepted sampling rate, Hz.
MIN_FS_HZ = 20.0
#: NaN runs up to this long are interpolated, seconds.
MAX_FILL_S = 0.1
#: A signal constant for this long is no signal there, seconds.
FLAT_RUN_S = 1.0
#: Share of samples at a rail from which the recording counts as clipped, %.
CLIP_MIN_PCT = 0.5
#: Share of samples at the rails from which the recording is refused, %.
CLIP_REFUSE_PCT = 50.0
_TIME_S = ("time_s", "time[s]", "t_s")
_TIME_MS = ("time_ms", "time[ms]", "t_ms")
_TIME_BARE = ("time", "timestamp", "t")
_RR_COLUMNS = ("rr_ms", "rr", "ibi_ms", "rr[ms]")
#: Beat-time columns of an RR file (seconds; the beat that ends each interval), as
#: ``heartsong export`` writes them, and its gap flags.
_RR_TIME_COLUMNS = ("beat_time_s", "time_s", "t_s")
_RR_GAP_COLUMN = "gap_before"


@dataclass(frozen=True, slots=True)
class Recording:
    """A recording as read, ready for :mod:`heartsong.dsp.batch`.

    Attributes
    ----------
    path:
        Where it came from.
    kind:
        ``"ppg"`` or ``"rr"``.
    x:
        PPG samples (any unit), NaN in gaps; empty for RR input.
    fs_hz:
        Sampling rate in Hz of evenly sampled PPG (None for uneven times and RR).
    t_s:
        Sample times in seconds for unevenly sampled PPG, else None.
    rr_ms:
        RR intervals in ms for RR input, else None.
    rr_t_s:
        For RR input with a beat-time column: the time of the beat ending each interval,
        seconds (else None: the intervals are back to back).
    rr_gap_before:
        For RR input with a ``gap_before`` column: True where beats were lost before the
        interval's first beat (else None).
    column:
        Name of the column read (as in the file).
    invert:
        The PPG's polarity when the format fixes it (False: systole makes it rise), else
        None: the analysis decides from the pulse shape.
    clipped_pct:
        Samples at the lowest or highest value, in % (0 unless clipping was found).
    notes:
        What was repaired or noticed, one sentence each (for the summary and the log).
    """

    path: str
    kind: str
    x: FloatArray
    fs_hz: float | None
    t_s: FloatArray | None = None
    rr_ms: FloatArray | None = None
    rr_t_s: FloatArray | None = None
    rr_gap_before: npt.NDArray[np.bool_] | None = None
    invert: bool | None = None
    column: str = ""
    clipped_pct: float = 0.0
    notes: list[str] = field(default_factory=list)


def _open_text(path: Path) -> str:
    """Read a (possibly gzip-compressed) text file; errors name the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputDataError(str(path), f"a readable file ({exc.strerror})") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputDataError(str(path), "a valid gzip file") from exc
    if b"\x00" in raw:
        raise InputDataError(str(path), "a UTF-8 text file (it holds NUL bytes: binary, or "
                             "UTF-16 text)")
    text = raw.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise InputDataError(str(path), "a non-empty file")
    return text


def _csv_rows(path: Path, lines: list[str]) -> list[list[str]]:
    """The cells of ``lines`` (one CSV row per line; CR, LF and CRLF endings alike);
    a line the csv module cannot split (an unclosed quote, binary bytes) names the file."""
    try:
        return list(csv.reader(lines))
    except csv.Error as exc:
        raise InputDataError(str(path), f"a comma-separated text file ({exc})") from exc


def _cell(row: list[str], k: int) -> str:
    """Cell ``k`` of a CSV row ("" past its end)."""
    return row[k] if k < len(row) else ""


def _norm(name: str) -> str:
    return re.sub(r"\s+", "", name).lower()


def _to_float(cell: str, where: str) -> float:
    cell = cell.strip()
    if cell == "" or cell.lower() in ("nan", "na", "null", "none"):
        return math.nan
    try:
        return float(cell)
    except ValueError as exc:
        raise InputDataError(where, "a number", cell) from exc


def read_ppg_csv(
    path: str | Path, *, column: str | None = None, fs_hz: float | None = None
) -> Recording:
    """Read a PPG recording from a CSV file with a header row.

    Parameters
    ----------
    path:
        The CSV file (gzip-compressed allowed).
    column:
        Name of the PPG column (spaces and case ignored); default the first of
        :data:`PPG_COLUMNS`.
    fs_hz:
        Sampling rate in Hz when the file has no time column; with uneven times, the rate
        to resample to.

    Returns
    -------
    Recording
        The checked samples (see the module docstring for the repairs and refusals).
    """
    p = Path(path)
    text = _open_text(p)
    rows = [r for r in _csv_rows(p, text.splitlines()) if any(c.strip() for c in r)]
    if not rows:
        raise InputDataError(f"{p}: header", "a first row naming the columns (e.g. time_s,ppg)")
    header = [h.strip() for h in rows[0]]
    names = [_norm(h) for h in header]
    if all(_is_number(h) for h in header):
        raise InputDataError(
            f"{p}: header", "a first row naming the columns (e.g. time_s,ppg)", ",".join(header)
        )
    if column is not None:
        want = _norm(column)
        if want not in names:
            raise InputDataError(
                f"{p}: column {column!r}", f"one of the columns {', '.join(header)}"
            )
        col = names.index(want)
    else:
        found = [names.index(c) for c in PPG_COLUMNS if c in names]
        if not found:
            raise InputDataError(
                f"{p}: column",
                f"a PPG column named one of {', '.join(PPG_COLUMNS)} (or pick one with "
                f"--column); the columns are {', '.join(header)}",
            )
        col = found[0]
    time_col, time_scale = _time_column(names)
    notes: list[str] = []
    if time_col is not None and time_scale == 0.0 and fs_hz is not None:
        # A bare "time"/"timestamp"/"t" may be anything (clock text, a sample counter):
        # with --fs given, the rate is the user's and the column is not read.
        notes.append(f"column {header[time_col]} not read as time: --fs {fs_hz:g} given")
        time_col = None
    body = rows[1:]
    if not body:
        raise InputDataError(f"{p}: rows", "at least one row of samples below the header")
    label = header[col]
    x = np.empty(len(body))
    t = np.empty(len(body)) if time_col is not None else None
    for i, row in enumerate(body):
        line = i + 2
        x[i] = _to_float(_cell(row, col), f"{p}: line {line}, column {label}")
        if t is not None and time_col is not None:
            if time_col >= len(row):
                raise InputDataError(f"{p}: line {line}, column {header[time_col]}", "a time")
            where = f"{p}: line {line}, column {header[time_col]}"
            try:
                t[i] = _to_float(row[time_col], where)
            except InputDataError:
                if time_scale != 0.0:
                    raise
                raise InputDataError(where, "a number (or give --fs: the column is then "
                                     "not read)", row[time_col]) from None
    rate: float | None = fs_hz
    times: FloatArray | None = None
    if t is not None and time_col is not None:
        if not np.all(np.isfinite(t)):
            bad = int(np.flatnonzero(~np.isfinite(t))[0]) + 2
            raise InputDataError(f"{p}: line {bad}, column {header[time_col]}", "a time")
        steps = np.diff(t)
        if steps.size == 0:
            raise InputDataError(f"{p}: rows", "at least 2 samples", 1)
        if time_scale == 0.0:  # a bare "time": the step tells the unit
            if np.all(steps == 1.0) and np.all(t == np.round(t)):
                raise InputDataError(
                    "--fs", f"the sampling rate in Hz: column {header[time_col]} counts "
                    "samples (steps of exactly 1), it does not say how fast"
                )
            time_scale = 1e-3 if float(np.median(steps)) >= 1.0 else 1.0
            notes.append(
                f"column {header[time_col]} read in {'ms' if time_scale < 1 else 's'}"
            )
        t = (t - t[0]) * time_scale
        span = float(t[-1])
        if not span > 0.0:
            raise InputDataError(f"{p}: column {header[time_col]}", "times that advance")
        fit_step = span / (t.size - 1)
        median = fit_step
        residual = np.abs(t - fit_step * np.arange(t.size))
        if float(residual.max()) <= fit_step:
            # Evenly sampled; the printed times may be rounded (BIDMC prints 5 digits).
            if fs_hz is not None and abs(fs_hz * fit_step - 1.0) > 0.02:
                raise InputDataError(
                    "--fs", f"the rate of the time column, {1.0 / fit_step:.4g} Hz", fs_hz
                )
            rate = 1.0 / fit_step
        else:
            steps = np.diff(t)
            if np.any(steps <= 0.0):
                bad = int(np.flatnonzero(steps <= 0.0)[0]) + 3
                raise InputDataError(
                    f"{p}: line {bad}, column {header[time_col]}", "times increasing row by row"
                )
            median = float(np.median(steps))
            times = t
            rate = fs_hz
            notes.append(
                f"uneven sample times (median rate {1.0 / median:.1f} Hz): resampled to a "
                "uniform grid by cubic interpolation"
            )
        if 1.0 / median < MIN_FS_HZ:
            raise InputDataError(
                f"{p}: column {header[time_col]}",
                f"a sampling rate of at least {MIN_FS_HZ:g} Hz",
                round(1.0 / median, 3),
            )
    elif fs_hz is None:
        raise InputDataError(
            "--fs", "the sampling rate in Hz: the file has no time_s column", None
        )
    return _checked_ppg(p, label, x, rate, times, notes)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _time_column(names: list[str]) -> tuple[int | None, float]:
    """Index of the time column and its scale to seconds (0: decide from the step)."""
    for group, scale in ((_TIME_S, 1.0), (_TIME_MS, 1e-3), (_TIME_BARE, 0.0)):
        for cand in group:
            if cand in names:
                return names.index(cand), scale
    return None, 1.0


def read_e4(path: str | Path) -> Recording:
    """Read an Empatica E4 signal file (e.g. ``BVP.csv`` or ``BVP.csv.gz``).

    Parameters
    ----------
    path:
        Line 1: session start as Unix time (s); line 2: sampling rate (Hz); then one
        sample per line (extra columns, as in ``ACC.csv``, are ignored).

    Returns
    -------
    Recording
        The checked samples of the first column, ``invert`` False: Empatica's BVP rises
        with each pulse (its polarity is the device's, not the wrist's; the pulse shape
        alone, judged over a lab session's motion, read 12 of Stress-Predict's 27 files
        upside down, and every one of them kept more clean windows upright).
    """
    p = Path(path)
    lines = [ln for ln in _open_text(p).splitlines() if ln.strip()]
    if len(lines) < 3:
        raise InputDataError(f"{p}", "an E4 file: start time, rate, then samples", len(lines))
    start = _to_float(lines[0].split(",")[0], f"{p}: line 1 (start time)")
    if not math.isfinite(start):
        raise InputDataError(f"{p}: line 1 (start time)", "a Unix time in seconds")
    fs = _to_float(lines[1].split(",")[0], f"{p}: line 2 (sampling rate)")
    if not (math.isfinite(fs) and fs > 0.0):
        raise InputDataError(f"{p}: line 2 (sampling rate)", "a positive rate in Hz", fs)
    x = np.array(
        [_to_float(ln.split(",")[0], f"{p}: line {i + 3}") for i, ln in enumerate(lines[2:])]
    )
    rec = _checked_ppg(p, "e4", x, fs, None, [f"E4 start {start:.0f} (Unix time)"],
                       rate_field=f"{p}: line 2 (sampling rate)")
    return dataclasses.replace(rec, invert=False)


def _checked_ppg(
    p: Path,
    label: str,
    x: FloatArray,
    fs_hz: float | None,
    t_s: FloatArray | None,
    notes: list[str],
    *,
    rate_field: str = "--fs",
) -> Recording:
    """Apply the signal checks of the module docstring; ``rate_field`` names where the
    sampling rate came from, for its error."""
    where = f"{p}: column {label}"
    if x.size == 0 or not np.any(np.isfinite(x)):
        raise InputDataError(where, "numeric samples (found none)")
    rate = fs_hz
    if t_s is not None:
        rate = 1.0 / float(np.median(np.diff(t_s)))
    if rate is None or not (math.isfinite(rate) and rate > 0.0):
        raise InputDataError(rate_field, "a positive sampling rate in Hz", rate)
    if rate < MIN_FS_HZ:
        raise InputDataError(rate_field, f"a sampling rate of at least {MIN_FS_HZ:g} Hz", rate)
    x = x.astype(np.float64, copy=True)
    n_nan = int(np.count_nonzero(~np.isfinite(x)))
    if n_nan:
        filled = _fill_short_nan(x, max(1, round(MAX_FILL_S * rate)))
        notes.append(
            f"{n_nan} missing samples: {filled} interpolated, {n_nan - filled} left as gaps"
        )
    if np.count_nonzero(np.isfinite(x)) < 2.0 * rate:  # before judging flat or clipped
        raise InputDataError(where, "at least 2 s of usable samples")
    finite = x[np.isfinite(x)]
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        raise InputDataError(where, "a pulse signal (it is a flat line)", lo)
    at_rails = np.isfinite(x) & ((x == lo) | (x == hi))
    clipped_pct = 0.0
    rail_pct = 100.0 * float(np.count_nonzero(at_rails)) / finite.size
    if rail_pct > CLIP_MIN_PCT:
        clipped_pct = rail_pct
        if rail_pct >= CLIP_REFUSE_PCT:
            raise InputDataError(
                where,
                f"an unclipped signal ({rail_pct:.0f} % of samples at {lo:g} or {hi:g})",
            )
        notes.append(f"clipped: {rail_pct:.1f} % of samples at {lo:g} or {hi:g}")
    n_flat = _blank_flat_runs(x, max(2, round(FLAT_RUN_S * rate)))
    if n_flat:
        notes.append(f"{n_flat} samples in flat stretches of {FLAT_RUN_S:g} s or more: gaps")
    if np.count_nonzero(np.isfinite(x)) < 2.0 * rate:
        raise InputDataError(where, "at least 2 s of usable samples")
    for note in notes:
        logger.info("%s: %s", p, note)
    return Recording(
        path=str(p),
        kind="ppg",
        x=x,
        fs_hz=None if t_s is not None else float(rate),
        t_s=t_s,
        column=label,
        clipped_pct=clipped_pct,
        notes=notes,
    )


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """``[start, stop)`` of every run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _fill_short_nan(x: FloatArray, max_run: int) -> int:
    """Linearly interpolate NaN runs of at most ``max_run`` inside ``x`` (in place)."""
    filled = 0
    for a, b in _runs(~np.isfinite(x)):
        if b - a <= max_run and a > 0 and b < x.size:
            x[a:b] = np.interp(np.arange(a, b), [a - 1, b], [x[a - 1], x[b]])
            filled += b - a
    return filled


def _blank_flat_runs(x: FloatArray, min_run: int) -> int:
    """Set runs of ``min_run`` or more equal samples to NaN (in place); return how many."""
    same = np.zeros(x.size, dtype=np.bool_)
    same[1:] = x[1:] == x[:-1]
    blanked = 0
    for a, b in _runs(same):
        start = a - 1  # the first sample of the run equals the ones after it
        if b - start >= min_run:
            x[start:b] = np.nan
            blanked += b - start
    return blanked


def read_rr(path: str | Path) -> Recording:
    """Read RR intervals in ms: one per line, space/comma separated, or an ``rr_ms`` column.

    A CSV with a header may also give each interval's closing beat time
    (``beat_time_s``, ``time_s`` or ``t_s``, seconds) and ``gap_before`` (1 where beats
    were lost before the interval), as ``heartsong export`` writes them: the analysis
    then keeps the real timeline and never joins intervals across a gap. A missing
    interval (an empty or NaN cell) is a gap too when there are beat times; without them
    it is left out.

    Parameters
    ----------
    path:
        The file (gzip-compressed allowed).

    Returns
    -------
    Recording
        ``kind == "rr"`` with ``rr_ms`` set (and ``rr_t_s``, ``rr_gap_before`` when the
        file has them).
    """
    p = Path(path)
    text = _open_text(p)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    first = lines[0]
    values: list[float] = []
    times: list[float] = []
    gaps: list[bool] = []
    t_col: int | None = None
    t_label = ""
    g_col: int | None = None
    label = "rr_ms"
    if re.search(r"[A-Za-z_]", first) and not _is_number(first.strip().split(",")[0]):
        header = [h.strip() for h in _csv_rows(p, [first])[0]]
        names = [_norm(h) for h in header]
        found = [names.index(c) for c in _RR_COLUMNS if c in names]
        if not found:
            raise InputDataError(
                f"{p}: column", f"an rr_ms column; the columns are {', '.join(header)}"
            )
        col = found[0]
        label = header[col]
        t_col = next((names.index(c) for c in _RR_TIME_COLUMNS if c in names), None)
        t_label = "" if t_col is None else header[t_col]
        g_col = names.index(_RR_GAP_COLUMN) if _RR_GAP_COLUMN in names else None
        for i, row in enumerate(_csv_rows(p, lines[1:])):
            where = f"{p}: line {i + 2}, column "
            values.append(_to_float(_cell(row, col), where + label))
            if t_col is not None:
                t = _to_float(_cell(row, t_col), where + t_label)
                if not math.isfinite(t):
                    raise InputDataError(where + t_label, "a beat time in seconds")
                times.append(t)
            if g_col is not None:
                g = _to_float(_cell(row, g_col), where + header[g_col])
                if not (math.isnan(g) or g in (0.0, 1.0)):  # an empty cell: no flag
                    raise InputDataError(where + header[g_col], "0 or 1", _cell(row, g_col))
                gaps.append(g == 1.0)
    else:
        for i, ln in enumerate(lines):
            for cell_text in re.split(r"[\s,;]+", ln.strip()):
                if cell_text:
                    values.append(_to_float(cell_text, f"{p}: line {i + 1}"))
    rr = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(rr)
    t_s = np.asarray(times, dtype=np.float64) if t_col is not None else None
    gap = np.asarray(gaps, dtype=np.bool_) if g_col is not None else None
    if t_s is not None:
        lost = np.concatenate([[False], ~ok[:-1]])  # an interval after a missing one
        gap = (lost if gap is None else gap | lost)[ok]
        t_s = t_s[ok]
        if np.any(np.diff(t_s) <= 0.0):
            k = int(np.flatnonzero(np.diff(t_s) <= 0.0)[0]) + 1
            raise InputDataError(f"{p}: {t_label}", "beat times that increase",
                                 float(t_s[k]))
    elif gap is not None:
        gap = gap[ok]
    rr = rr[ok]
    if rr.size < 2:
        raise InputDataError(f"{p}: {label}", "at least 2 RR intervals in ms", rr.size)
    if np.any(rr <= 0.0):
        raise InputDataError(f"{p}: {label}", "positive intervals in ms", float(rr.min()))
    median = float(np.median(rr))
    if median < 100.0:
        raise InputDataError(
            f"{p}: {label}", "intervals in milliseconds (these look like seconds)", median
        )
    if median > 5000.0:
        raise InputDataError(f"{p}: {label}", "intervals in milliseconds (median < 5000)", median)
    return Recording(path=str(p), kind="rr", x=np.zeros(0), fs_hz=None, rr_ms=rr,
                     rr_t_s=t_s, rr_gap_before=gap, column=label)


def read_recording(
    path: str | Path,
    *,
    fmt: str = "csv",
    column: str | None = None,
    fs_hz: float | None = None,
    rr: bool = False,
) -> Recording:
    """Read any supported recording (see the module docstring).

    Parameters
    ----------
    path:
        The file.
    fmt:
        ``"csv"`` or ``"e4"`` (PPG only).
    column:
        PPG column of a CSV.
    fs_hz:
        Sampling rate in Hz when a CSV has no time column.
    rr:
        Read RR intervals (ms) instead of PPG.

    Returns
    -------
    Recording
        The checked recording.
    """
    if fs_hz is not None and not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("--fs", "a positive sampling rate in Hz", fs_hz)
    if rr:
        return read_rr(path)
    if fmt == "e4":
        return read_e4(path)
    if fmt == "csv":
        return read_ppg_csv(path, column=column, fs_hz=fs_hz)
    raise InputDataError("--format", "csv or e4", fmt)
