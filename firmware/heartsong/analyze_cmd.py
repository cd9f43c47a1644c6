"""``heartsong analyze``: the batch HRV pipeline over one recording, as JSON or a summary.

``heartsong analyze REC.csv --json OUT.json [--column NAME] [--fs HZ] [--window 60]
[--step 10] [--rr] [--format csv|e4] [--invert | --no-invert]
[--stress [--baseline-seconds 300] [--stress-model DIR]]`` (``--stress``: see
:mod:`heartsong.stress_cmd`)

Exit codes: 0 done, 2 bad input (one line on standard error naming the problem).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from heartsong import stress_cmd
from heartsong.errors import InputDataError

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2
#: The summary lists stretches without intervals at least this long, in seconds ...
SUMMARY_GAP_S = 2.0
#: ... and at most this many of them.
SUMMARY_GAPS = 5


def add_parser(subparsers: Any) -> None:
    """Register the ``analyze`` sub-command on an ``argparse`` sub-parser collection.

    Parameters
    ----------
    subparsers:
        The object returned by ``ArgumentParser.add_subparsers()``.
    """
    p: argparse.ArgumentParser = subparsers.add_parser(
        "analyze",
        help="beats, artefacts and HRV of a recorded PPG or RR file",
        description=(
            "Run the batch HRV pipeline over a recording: a CSV with a header (PPG column "
            "ppg/pleth/bvp or --column; time from a time_s column or --fs), an Empatica E4 "
            "file (--format e4), or RR intervals in ms (--rr)."
        ),
    )
    p.add_argument("recording", type=Path, metavar="REC", help="the recording file")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write the full result as JSON here (default: print a summary)")
    p.add_argument("--column", default=None, metavar="NAME",
                   help="PPG column of a CSV (default: the first of ppg, pleth, bvp)")
    p.add_argument("--fs", type=float, default=None, metavar="HZ",
                   help="sampling rate in Hz when the CSV has no time_s column")
    p.add_argument("--window", type=float, default=60.0, metavar="S",
                   help="sliding-window length in seconds (default 60)")
    p.add_argument("--step", type=float, default=10.0, metavar="S",
                   help="sliding-window step in seconds (default 10)")
    p.add_argument("--rr", action="store_true",
                   help="the file holds RR intervals in ms instead of PPG")
    p.add_argument("--format", dest="fmt", choices=("csv", "e4"), default="csv",
                   help="PPG file format (default csv)")
    p.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                   help="the PPG falls at systole (raw reflective counts); default: decide "
                        "from the pulse shape")
    stress_cmd.add_arguments(p)


#: The finest ``--step``, seconds: beats come about once a second, so a finer step only
#: repeats windows (and a step of 1e-7 s asked for billions of them).
MIN_STEP_S = 1.0


def _check_args(args: argparse.Namespace) -> None:
    if not (math.isfinite(args.window) and args.window > 0.0):
        raise InputDataError("--window", "a positive number of seconds", args.window)
    if not (math.isfinite(args.step) and args.step >= MIN_STEP_S):
        raise InputDataError("--step", f"a number of seconds >= {MIN_STEP_S:g}", args.step)
    if args.fs is not None and not (math.isfinite(args.fs) and args.fs > 0.0):
        raise InputDataError("--fs", "a positive sampling rate in Hz", args.fs)
    if args.fs is not None and (args.rr or args.fmt == "e4"):
        why = "an RR file has no sampling rate" if args.rr else "an E4 file's line 2 is its rate"
        raise InputDataError("--fs", f"left out ({why})")
    stress_cmd.check_args(args)


def run(args: argparse.Namespace) -> int:
    """Execute ``heartsong analyze`` with parsed arguments; return the exit code.

    Parameters
    ----------
    args:
        Namespace from the parser built by :func:`add_parser`.

    Returns
    -------
    int
        0 on success, 2 when the input is unusable (the reason is printed on one line).
    """
    from heartsong.dsp.batch import analyze_recording, analyze_rr
    from heartsong.recordings import read_recording

    try:
        _check_args(args)
        rec = read_recording(
            args.recording, fmt=args.fmt, column=args.column, fs_hz=args.fs, rr=args.rr
        )
        if rec.kind == "rr":
            assert rec.rr_ms is not None
            result = analyze_rr(rec.rr_ms, beat_t_s=rec.rr_t_s, gap_before=rec.rr_gap_before,
                                window_s=args.window, step_s=args.step)
        else:
            result = analyze_recording(
                rec.x,
                rec.fs_hz if rec.t_s is None else args.fs,
                t_s=rec.t_s,
                window_s=args.window,
                step_s=args.step,
                invert=rec.invert if args.invert is None else args.invert,
                clipped_pct=rec.clipped_pct,
            )
    except InputDataError as exc:
        sys.stderr.write(f"heartsong analyze: {exc}\n")
        return EXIT_USAGE
    out = result.as_dict()
    problem = stress_cmd.apply(out, args)
    if problem:
        sys.stderr.write(f"heartsong analyze: {problem}\n")
        return EXIT_USAGE
    if rec.notes:
        logger.info("input notes: %s", "; ".join(rec.notes))
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(out, indent=1) + "\n")
        except OSError as exc:
            sys.stderr.write(f"heartsong analyze: --json {args.json}: {exc.strerror}\n")
            return EXIT_USAGE
    else:
        sys.stdout.write(format_summary(out, str(args.recording), rec.notes))
    return EXIT_OK


def _fmt(value: object, unit: str, digits: int = 1) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}{unit}"
    return "-"


def format_summary(out: dict[str, Any], name: str, notes: list[str]) -> str:
    """A readable summary of an analysis result (the dict of ``AnalysisResult.as_dict``).

    Parameters
    ----------
    out:
        The result as a dict.
    name:
        The recording's name, for the title.
    notes:
        The reader's notes on repairs.

    Returns
    -------
    str
        Several lines ending with a newline.
    """
    hrv: dict[str, Any] = out["hrv"]
    art: dict[str, Any] = out["artifacts"]
    fs = out["fs_hz"]
    lines = [
        f"{name}: {out['duration_s']:.1f} s"
        + (f" of PPG at {fs:g} Hz" if fs else " of RR intervals")
        + f", {len(out['beats_s'])} beats",
        f"  artefacts ({art['method']}): {art['artifact_pct']:.1f} % "
        f"(ectopic {art['ectopic']}, missed {art['missed']}, extra {art['extra']}, "
        f"long/short {art['long_short']})",
        f"  heart rate {_fmt(hrv['mean_hr_bpm'], ' bpm')}, RMSSD {_fmt(hrv['rmssd_ms'], ' ms')}, "
        f"SDNN {_fmt(hrv['sdnn_ms'], ' ms')}, pNN50 {_fmt(hrv['pnn50_pct'], ' %')}",
        f"  SD1 {_fmt(hrv['sd1_ms'], ' ms')}, SD2 {_fmt(hrv['sd2_ms'], ' ms')}, "
        f"LF/HF {_fmt(hrv['lf_hf'], '', 2)}, breathing {_fmt(hrv['resp_rate_bpm'], '/min')}, "
        f"coherence {_fmt(hrv['coherence'], '', 2)}",
    ]
    for key, why in (hrv.get("reasons") or {}).items():
        lines.append(f"  {key}: not measured ({why})")
    long_gaps = [s for s in art.get("unusable_s", []) if s[1] - s[0] >= SUMMARY_GAP_S]
    if long_gaps:
        listed = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in long_gaps[:SUMMARY_GAPS])
        more = f" and {len(long_gaps) - SUMMARY_GAPS} more" if len(long_gaps) > SUMMARY_GAPS else ""
        lines.append(f"  unusable signal, no intervals: {listed}{more}")
    lines.extend(f"  note: {n}" for n in notes)
    lines.extend(stress_cmd.format_stress(out))
    windows: list[dict[str, Any]] = out["windows"]
    if windows:
        lines.append(f"  {len(windows)} windows:  start    HR   RMSSD  SDNN  quality")
        for w in windows:
            lines.append(
                f"  {'':10}{w['t_start_s']:7.0f} {_fmt(w['hr_bpm'], ''):>5} "
                f"{_fmt(w['rmssd_ms'], ''):>7} {_fmt(w['sdnn_ms'], ''):>5} "
                f"{_fmt(w['signal_quality'], '', 2):>8}"
            )
    return "\n".join(lines) + "\n"
