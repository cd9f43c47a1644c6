"""Measured figures of the reliability scenarios, written where the report tool reads them.

Each scenario calls :func:`record` once with what it measured. When the environment
variable ``HEARTSONG_RELIABILITY_OUT`` names a file, the figures are merged into that JSON
file (one object per scenario, keyed by its id) for ``tools/reliability_report.py``;
otherwise nothing is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Final

ENV: Final = "HEARTSONG_RELIABILITY_OUT"


def rss_mb() -> float:
    """Resident set size of this process in MB (from ``/proc/self/status``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def record(
    scenario: str,
    *,
    title: str,
    faults: str,
    outcome: str,
    recovery: str,
    data_lost: int,
    produced: int,
    memory: str,
    **extra: object,
) -> dict[str, object]:
    """Keep one scenario's figures; returns them (also written when :data:`ENV` is set).

    Parameters
    ----------
    scenario:
        Stable id (the report's row key).
    title:
        What happens, in a few words.
    faults:
        The faults injected and through which fake.
    outcome:
        "kept running" or the exit code and message.
    recovery:
        Measured recovery time with its clock and the promised bound.
    data_lost:
        Metric updates measured but neither stored nor published/spooled (must be 0).
    produced:
        Metric updates measured during the scenario.
    memory:
        Memory growth measured (RSS), or why none applies.
    extra:
        Any further numbers (kept in the JSON, not in the table).
    """
    row: dict[str, object] = {
        "title": title, "faults": faults, "outcome": outcome, "recovery": recovery,
        "data_lost": int(data_lost), "produced": int(produced), "memory": memory, **extra,
    }
    out = os.environ.get(ENV)
    if out:
        path = Path(out)
        data: dict[str, object] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
        data[scenario] = row
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return row
