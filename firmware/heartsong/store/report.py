"""Reports with plots: one session, or the trend over the last nights; PNG or HTML.

A session report plots, against minutes since the session started: heart rate (bpm),
RMSSD (ms), stress probability (0..1), breathing rate against the pacer (breaths/min),
and marks every soundscape change and adaptation with its reason. A nights report plots
the nightly baseline (:mod:`heartsong.store.nightly`): resting heart rate (bpm), RMSSD
(ms) and time to calm (min) per night. Both start with a short text summary.

matplotlib is imported here only (lazily, inside the functions), through its
object-oriented ``Figure`` API: no pyplot state, no display needed.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from heartsong.errors import InputDataError
from heartsong.private_file import open_private_output
from heartsong.store.db import BaselineRow, SessionRow, Store
from heartsong.store.export import output_error

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["nights_summary", "render_report", "session_summary"]

log = logging.getLogger(__name__)

#: Reasons longer than this many characters are shortened on the plot (two columns of
#: them fit the page's width at 7 pt).
LABEL_CHARS: Final = 66
#: Reasons listed per column under a session plot (two columns; all are marked).
MAX_LABELS: Final = 12


def _series(rows: list[dict[str, object]], key: str, t0: float) -> tuple[list[float], list[float]]:
    t, v = [], []
    for r in rows:
        x = r.get(key)
        t.append((float(r["wall_s"]) - t0) / 60.0)  # type: ignore[arg-type]
        v.append(float(x) if isinstance(x, (int, float)) and not isinstance(x, bool)
                 else math.nan)
    return t, v


def session_summary(session: SessionRow, rows: list[dict[str, object]]) -> list[str]:
    """A few lines about one session (uses its stored summary when it has one)."""
    s = session.summary
    if s:
        from heartsong.store.nightly import NightSummary

        fields = {k: s.get(k) for k in NightSummary.__slots__}
        fields["soundscapes"] = tuple(fields.get("soundscapes") or ())  # type: ignore[arg-type]
        try:
            return [NightSummary(**fields).text()]  # type: ignore[arg-type]
        except TypeError:
            pass
    from heartsong.store.nightly import summarize

    end = session.end_wall_s if session.end_wall_s is not None else (
        float(rows[-1]["wall_s"]) if rows else session.start_wall_s)  # type: ignore[arg-type]
    return [summarize(session.id, session.start_wall_s, end, rows,
                      soundscapes=session.soundscapes, outcome=session.outcome or "open").text()]


def nights_summary(nights: list[BaselineRow]) -> list[str]:
    """A few lines about the trend over the nights (first half against second half)."""
    if not nights:
        return ["No nights recorded yet."]
    lines = [f"{len(nights)} night(s) from {nights[0].night} to {nights[-1].night}."]
    half = max(1, len(nights) // 2)
    for label, key, unit, scale in (
        ("Resting heart rate", "resting_hr_bpm", "bpm", 1.0),
        ("RMSSD", "rmssd_ms", "ms", 1.0),
        ("Time to calm", "time_to_calm_s", "min", 1 / 60.0),
    ):
        first = [getattr(n, key) for n in nights[:half] if getattr(n, key) is not None]
        last = [getattr(n, key) for n in nights[-half:] if getattr(n, key) is not None]
        if first and last:
            a, b = sum(first) / len(first) * scale, sum(last) / len(last) * scale
            lines.append(f"{label}: {a:.1f} -> {b:.1f} {unit} (first {half} vs last {half} "
                         f"night(s), {b - a:+.1f} {unit}).")
        else:
            lines.append(f"{label}: not measured on enough nights.")
    return lines


def _session_figure(store: Store, session: SessionRow) -> tuple[Figure, list[str]]:
    from matplotlib.figure import Figure

    rows = store.metrics(session.id)
    events = store.events(session.id)
    t0 = session.start_wall_s
    fig = Figure(figsize=(11, 12), layout="constrained")
    grid = fig.add_gridspec(5, 1, height_ratios=[1, 1, 1, 1, 1.15])
    first = fig.add_subplot(grid[0])
    axes = [first, *(fig.add_subplot(grid[k], sharex=first) for k in range(1, 4))]
    panels: list[tuple[str, str, str]] = [
        ("hr_bpm", "heart rate (bpm)", "tab:red"),
        ("rmssd_ms", "RMSSD (ms)", "tab:blue"),
        ("p_stress", "stress probability (0-1)", "tab:purple"),
    ]
    for ax, (key, label, color) in zip(axes[:3], panels, strict=False):
        t, v = _series(rows, key, t0)
        ax.plot(t, v, color=color, lw=1.2)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.tick_params(labelbottom=False)
    axes[2].set_ylim(-0.02, 1.02)
    t, breath = _series(rows, "resp_rate_bpm", t0)
    _, pacer = _series(rows, "pacer_bpm", t0)
    axes[3].plot(t, breath, color="tab:green", lw=1.2, label="breathing rate")
    axes[3].step(t, pacer, where="post", color="k", ls="--", lw=1.0, label="pacer")
    axes[3].set_ylabel("breaths/min")
    axes[3].legend(loc="upper right", fontsize=8)
    axes[3].grid(alpha=0.3)
    axes[3].set_xlabel("time since the session started (min)")
    if rows:
        first.set_xlim(0, max(1e-3, (float(rows[-1]["wall_s"]) - t0) / 60.0))  # type: ignore[arg-type]
    # Every change is a numbered line across the panels; its reason is listed below under
    # that number (reasons written at their times overlapped into an unreadable smear).
    marked = [e for e in events if e["kind"] in ("adaptation", "command", "fault", "source")]
    listed: list[str] = []
    for i, e in enumerate(marked):
        x = (float(e["wall_s"]) - t0) / 60.0  # type: ignore[arg-type]
        for a in axes:
            a.axvline(x, color="0.6", lw=0.6, ls=":")
        first.text(x, 1.02 + 0.09 * (i % 3), str(i + 1), transform=first.get_xaxis_transform(),
                   fontsize=7, ha="center", va="bottom", color="0.3", clip_on=False)
        text = str(e["message"]) if e["kind"] == "adaptation" else f"{e['kind']}: {e['message']}"
        text = text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "\u2026"
        listed.append(f"{i + 1:>2} {x:5.1f}'  {text}")
    notes = fig.add_subplot(grid[4])
    notes.axis("off")
    notes.set_title("soundscape changes and reasons (number, minutes since the start, reason)",
                    fontsize=9, loc="left")
    shown = listed[: 2 * MAX_LABELS]
    if len(listed) > len(shown):
        shown[-1] = f"    ... and {len(listed) - len(shown) + 1} more (all in the HTML report)"
    for col in range(2):
        notes.text(0.5 * col, 1.0, "\n".join(shown[col * MAX_LABELS : (col + 1) * MAX_LABELS]),
                   transform=notes.transAxes, fontsize=7, family="monospace", va="top",
                   ha="left")
    summary = session_summary(session, rows)
    extra = [
        f"  {(float(e['wall_s']) - t0) / 60.0:5.1f} min  {e['kind']}: {e['message']}"  # type: ignore[arg-type]
        for e in marked
    ]
    fig.suptitle(f"heartsong session {session.id} ({session.mode})")
    return fig, summary + (["Changes and reasons:", *extra] if extra else [])


def _nights_figure(nights: list[BaselineRow]) -> tuple[Figure, list[str]]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    x = list(range(len(nights)))
    for ax, key, label, scale, color in (
        (axes[0], "resting_hr_bpm", "resting heart rate (bpm)", 1.0, "tab:red"),
        (axes[1], "rmssd_ms", "night RMSSD (ms)", 1.0, "tab:blue"),
        (axes[2], "time_to_calm_s", "time to calm (min)", 1 / 60.0, "tab:green"),
    ):
        v = [math.nan if getattr(n, key) is None else getattr(n, key) * scale for n in nights]
        ax.plot(x, v, marker="o", color=color)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[2].set_xticks(x, [n.night for n in nights], rotation=30, ha="right")
    axes[2].set_xlabel("night (date the session started)")
    fig.suptitle(f"heartsong: last {len(nights)} night(s)")
    return fig, nights_summary(nights)


def render_report(
    store: Store,
    out: Path,
    *,
    session_id: int | None = None,
    last: bool = False,
    nights: int | None = None,
    extra_lines: Sequence[str] = (),
) -> list[str]:
    """Write a session report (``session_id`` or ``last``) or a nights report (``nights``)
    to ``out`` (``.png`` or ``.html``); returns the text summary lines.

    ``extra_lines`` are added to the summary (e.g. what the soundscape learner found,
    :func:`heartsong.therapy.preference.summary_lines`).

    Raises
    ------
    InputDataError
        For an unknown session, no sessions, a bad ``nights``, an unsupported extension,
        or an output that cannot be written.
    """
    suffix = out.suffix.lower()
    if suffix not in (".png", ".html"):
        raise InputDataError("--out", "a file name ending in .png or .html", str(out))
    fig: Any
    if nights is not None:
        if nights < 1:
            raise InputDataError("--nights", "a number of nights >= 1", nights)
        rows = store.baseline(nights)
        if not rows:
            raise InputDataError("--nights", "at least one finished night in the store", 0)
        fig, lines = _nights_figure(rows)
    else:
        chosen = store.sessions(session_id=session_id) if session_id is not None else (
            store.sessions(last=1))
        if not chosen:
            raise InputDataError("--session" if session_id is not None else "--last",
                                 "a stored session", session_id)
        fig, lines = _session_figure(store, chosen[0])
    lines = [*lines, *extra_lines]
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    png = buf.getvalue()
    try:
        fd = open_private_output(out)
        with os.fdopen(fd, "wb") as f:
            if suffix == ".png":
                f.write(png)
            else:
                f.write(_html(png, lines).encode("utf-8"))
    except OSError as exc:
        raise output_error(out, exc) from exc
    log.info("report written to %s", out)
    return lines


def _html(png: bytes, lines: list[str]) -> str:
    body = "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)
    data = base64.b64encode(png).decode("ascii")
    return (
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>heartsong report"
        f"</title></head><body>\n<h1>heartsong report</h1>\n{body}\n"
        f"<img alt=\"heartsong report plots\" src=\"data:image/png;base64,{data}\">\n"
        "</body></html>\n"
    )
