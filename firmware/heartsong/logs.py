"""Structured logging for the appliance: one line per record, as text or JSON.

Library code logs through ``logging.getLogger(__name__)`` and attaches machine-readable
fields with ``extra={"fields": {...}}``; this module only decides how records look. Under
systemd the text format omits the timestamp (journald adds its own).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TextIO

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """``[time] LEVEL logger: message key=value ...``."""

    def __init__(self, with_time: bool) -> None:
        fmt = "%(asctime)s " if with_time else ""
        super().__init__(fmt + "%(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        """Render the record, then its structured fields as ``key=value`` pairs."""
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        return f"{line} {extra}" if extra else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (Unix s), ``level``, ``logger``, ``msg`` and fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a JSON object on one line."""
        doc: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger once for the process.

    Parameters
    ----------
    level:
        ``debug``, ``info``, ``warning`` or ``error``.
    fmt:
        ``text`` or ``json``.
    stream:
        Where records go (standard error by default).
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    under_systemd = "JOURNAL_STREAM" in os.environ
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(not under_systemd))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # numba's own loggers are chatty at debug level and say nothing a user needs.
    logging.getLogger("numba").setLevel(logging.WARNING)
