"""How long the device keeps sessions: the retention period and the user's deletions.

Sessions that ended more than ``store.retention_days`` (default 90) ago are deleted with
everything recorded during them (metrics, beats, events, the night's baseline); the writer
applies this at start and once a day; the night being recorded is never deleted.
``heartsong data delete --before DATE`` and ``--all`` use :func:`parse_date` and the
store's own deletion, which overwrites the rows and vacuums the file
(:mod:`heartsong.store.db`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Final

from heartsong.errors import InputDataError
from heartsong.store.db import Store

__all__ = ["DAY_S", "DEFAULT_RETENTION_DAYS", "apply_retention", "parse_date"]

log = logging.getLogger(__name__)

DAY_S: Final = 86_400.0
#: Sessions are kept this many days unless ``store.retention_days`` says otherwise.
DEFAULT_RETENTION_DAYS: Final = 90.0


def apply_retention(store: Store, days: float, now_wall_s: float) -> int:
    """Delete the sessions that ended more than ``days`` days before ``now_wall_s``.

    A session still open (the night being recorded) is never deleted.

    Parameters
    ----------
    store:
        The open database.
    days:
        Retention period in days; <= 0 keeps everything.
    now_wall_s:
        The current Unix time in seconds.

    Returns
    -------
    int
        Sessions deleted.
    """
    if days <= 0.0:
        return 0
    cut = now_wall_s - days * DAY_S
    # Judged by when a session ended, and an open session never: a Pi has no real-time
    # clock, and NTP may move it months forward during the first night after boot; the
    # night being recorded must not count as "started long ago" and be deleted.
    oldest = store.db.execute(
        "SELECT MIN(end_wall_s) FROM sessions WHERE end_wall_s IS NOT NULL").fetchone()[0]
    if oldest is None or float(oldest) >= cut:
        return 0
    n = store.delete_before(cut, ended_only=True)
    if n:
        log.info("retention: deleted %d session(s) older than %g days", n, days,
                 extra={"fields": {"deleted_sessions": n, "retention_days": days}})
    return n


def parse_date(text: str, field: str = "--before") -> float:
    """Unix time (s) of a local date ``YYYY-MM-DD`` (midnight) or ISO date-time.

    Raises
    ------
    InputDataError
        Naming ``field`` when the text is neither.
    """
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InputDataError(field, "a date YYYY-MM-DD or date-time YYYY-MM-DDTHH:MM",
                             text) from exc
    if when.year < 1970:
        raise InputDataError(field, "a date from 1970 on", text)
    try:
        if when.tzinfo is None:
            when = when.astimezone()  # local time, as the user reads the bedside clock
        return when.timestamp()
    except (ValueError, OverflowError, OSError) as exc:  # the edges of the platform's time
        raise InputDataError(field, "a date from 1970 to 9999", text) from exc
