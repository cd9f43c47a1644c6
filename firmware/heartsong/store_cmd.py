"""``heartsong data delete``, ``heartsong export`` and ``heartsong report``: the user's data.

``heartsong data delete (--before DATE | --all)``
    delete sessions that started before a local date (``YYYY-MM-DD``) or everything;
``heartsong export [--session ID | --since DATE] --format csv|json --out PATH``
    write sessions with units in the column names (see :mod:`heartsong.store.export`);
``heartsong report [--session ID | --last | --nights N] --out report.png|.html``
    plots and a text summary (see :mod:`heartsong.store.report`).

Each reads the session database in ``device.state_dir`` (or ``--db PATH``). What the
soundscape learner keeps (``soundscape_preferences.json`` beside the database) is the
person's data too: ``data delete`` removes it (``--all``) or its older part
(``--before``), ``export`` includes it and ``report`` summarises it.
Exit codes: 0 done, 2 bad input (one line on standard error naming the problem).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from heartsong.errors import InputDataError

__all__ = ["COMMANDS", "add_parser", "run"]

EXIT_OK = 0
EXIT_USAGE = 2
#: The top-level commands this module registers.
COMMANDS = ("data", "export", "report")


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=None, metavar="PATH",
                   help="the session database (default: <device.state_dir>/sessions.sqlite3)")


def _bounded_int(text: str, lo: int, hi: int, what: str) -> int:
    """``text`` as an int in [lo, hi], else the argparse error (exit 2, one line): a number
    past SQLite's 64-bit integers ended in a traceback."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what}: a whole number (got {text!r})") from None
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{what}: from {lo} to {hi} (got {text})")
    return value


def _session_id(text: str) -> int:
    return _bounded_int(text, 1, 2**62, "a session id")


def _nights(text: str) -> int:
    return _bounded_int(text, 1, 36500, "a number of nights")


def add_parser(subparsers: Any) -> None:
    """Register ``data``, ``export`` and ``report`` on an ``argparse`` sub-parser set."""
    d: argparse.ArgumentParser = subparsers.add_parser(
        "data", help="manage the recorded sessions (delete)")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    de = dsub.add_parser("delete", help="delete recorded sessions for good")
    which = de.add_mutually_exclusive_group(required=True)
    which.add_argument("--before", metavar="DATE",
                       help="sessions that started before this local date (YYYY-MM-DD)")
    which.add_argument("--all", action="store_true",
                       help="every session, baseline and learnt soundscape preference")
    _db_option(de)

    e: argparse.ArgumentParser = subparsers.add_parser(
        "export", help="export sessions as CSV or JSON (units in column names)")
    ew = e.add_mutually_exclusive_group()
    ew.add_argument("--session", type=_session_id, default=None, metavar="ID",
                    help="one session")
    ew.add_argument("--since", default=None, metavar="DATE",
                    help="sessions started on or after this local date (YYYY-MM-DD)")
    e.add_argument("--format", dest="fmt", choices=("csv", "json"), required=True)
    e.add_argument("--out", type=Path, required=True, metavar="PATH",
                   help="output file (CSV also writes PATH_events.csv and PATH_rr_<id>.csv)")
    _db_option(e)

    r: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="plots and a summary of a session or of the last nights")
    rw = r.add_mutually_exclusive_group()
    rw.add_argument("--session", type=_session_id, default=None, metavar="ID",
                    help="one session")
    rw.add_argument("--last", action="store_true", help="the latest session (default)")
    rw.add_argument("--nights", type=_nights, default=None, metavar="N",
                    help="the trend over the last N nights")
    r.add_argument("--out", type=Path, required=True, metavar="report.png|report.html")
    _db_option(r)


def _store_path(args: argparse.Namespace, state_dir: str | Path | None) -> Path:
    from heartsong.store.db import db_path

    if args.db is not None:
        return Path(args.db)
    if state_dir is None:
        raise InputDataError("--db", "a database path (or a configured device.state_dir)")
    return db_path(state_dir)


def _learnt_files(state_dir: Path) -> list[Path]:
    """What the device keeps about the person beside the database, that exists: the
    stress baseline, the resonance rate, the strap they wear (also the demo's), and the
    MQTT outbox (state documents with heart rate and stress queued while the broker was
    away), with SQLite's journal files."""
    from heartsong.mqtt.spool import OUTBOX_FILE
    from heartsong.sensors.ble_hr import LAST_STRAP_FILE
    from heartsong.sensors.ble_source import DEMO_LAST_STRAP_FILE
    from heartsong.stress.baseline import BASELINE_FILE as STRESS_BASELINE
    from heartsong.therapy.resonance import BASELINE_FILE as RESONANCE

    outbox = [OUTBOX_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal")]
    names = (STRESS_BASELINE, RESONANCE, LAST_STRAP_FILE, DEMO_LAST_STRAP_FILE, *outbox)
    return [state_dir / n for n in names if (state_dir / n).exists()]


def run(args: argparse.Namespace, state_dir: str | Path | None = None) -> int:
    """Execute ``data``/``export``/``report`` with parsed arguments; return the exit code.

    Parameters
    ----------
    args:
        Namespace from the parser built by :func:`add_parser`.
    state_dir:
        ``device.state_dir`` from the configuration (``--db`` overrides it).
    """
    from heartsong.store.db import Store
    from heartsong.store.export import export_sessions
    from heartsong.store.report import render_report
    from heartsong.store.retention import parse_date
    from heartsong.therapy.preference import PREFERENCES_FILE, PreferenceStore, summary_lines

    name = str(args.command)
    try:
        path = _store_path(args, state_dir)
        if not path.exists():
            raise InputDataError("--db", "an existing session database (nothing recorded "
                                 "yet?)", str(path))
        store = Store(path, existing=True)
        prefs = PreferenceStore(path.parent / PREFERENCES_FILE)
        has_prefs = prefs.path is not None and prefs.path.exists()
        try:
            if name == "data":
                recording = store.recording(time.time())
                if recording is not None:
                    raise InputDataError(
                        "data delete", "a stopped device: session "
                        f"{recording} is being recorded now (sudo systemctl stop heartsong, "
                        "then run the command again)")
                if args.all:
                    n = store.delete_all()
                    if prefs.delete():
                        sys.stdout.write(f"deleted soundscape preferences {prefs.path}\n")
                    for learnt in _learnt_files(path.parent):
                        learnt.unlink()
                        sys.stdout.write(f"deleted {learnt}\n")
                else:
                    cut = parse_date(args.before, "--before")
                    n = store.delete_before(cut)
                    prefs.delete_before(cut)
                sys.stdout.write(f"deleted {n} session(s) from {path}\n")
            elif name == "export":
                since = None if args.since is None else parse_date(args.since, "--since")
                files = export_sessions(store, args.out, args.fmt, session_id=args.session,
                                        since_wall_s=since,
                                        preferences=prefs.load() if has_prefs else None)
                sys.stdout.write("".join(f"wrote {f}\n" for f in files))
            else:
                extra = summary_lines(prefs.load(), time.time()) if has_prefs else []
                lines = render_report(store, args.out, session_id=args.session,
                                      nights=args.nights, extra_lines=extra)
                sys.stdout.write("\n".join(lines) + f"\nwrote {args.out}\n")
        finally:
            store.close()
    except InputDataError as exc:
        sys.stderr.write(f"heartsong {name}: {exc}\n")
        return EXIT_USAGE
    return EXIT_OK
