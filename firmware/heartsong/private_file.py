"""Writing the person's data to disk: atomically and readable by the owner only.

Everything the device learns about the person (stress baseline, resonance rate,
soundscape preferences, the last strap used) is a small JSON file in
``device.state_dir``. :func:`write_private` replaces such a file so that a power cut
leaves either the old or the new version, never a torn one, and so that no other user
of the machine can read it (SECURITY.md): the file is created with mode 0600 before a
byte is written, flushed to disk, then renamed over the old one.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_MODE", "write_private"]

#: File mode of the person's data: read and write for the owner only.
PRIVATE_MODE = 0o600


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically, owner-only.

    The parent folder is created if missing. A stale temporary file from an earlier
    power cut is overwritten.

    Raises
    ------
    OSError
        The folder or file could not be written (disk full, read-only, permissions); the
        old file is then unchanged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # an existing temporary file keeps its old mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    finally:
        if fd >= 0:
            os.close(fd)
    os.replace(tmp, path)
