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

__all__ = ["PRIVATE_MODE", "SQLITE_HEADER", "create_private", "open_private_output",
           "write_private"]

#: File mode of the person's data: read and write for the owner only.
PRIVATE_MODE = 0o600
#: Mode of the folders made for it.
PRIVATE_DIR_MODE = 0o700
#: First 16 bytes of an SQLite database (sqlite.org/fileformat2) ...
SQLITE_HEADER = b"SQLite format 3\x00"
#: ... and the first bytes of its write-ahead log.
_SQLITE_MAGIC = (SQLITE_HEADER, b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")


def _private_folder(folder: Path) -> None:
    """Create ``folder`` and any missing parents, each 0700 (``mkdir(parents=True)``
    gives the parents the umask's mode)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        made.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)


def open_private_output(path: Path) -> int:
    """Open an export or report file for writing, owner-only: created 0600 or truncated
    and set to 0600 (an existing file kept its old mode), never through a symbolic link
    (someone else's link in a shared folder would receive the data), and never over a
    database (``--out`` naming the session store destroyed every night in it).

    Returns
    -------
    int
        The file descriptor.

    Raises
    ------
    OSError
        The file cannot be written, is a symbolic link (ELOOP) or a database (EEXIST).
    """
    try:
        with open(path, "rb") as existing:
            head = existing.read(16)
    except OSError:
        head = b""
    if any(head.startswith(magic) for magic in _SQLITE_MAGIC):
        raise FileExistsError(17, "it is a database, not overwritten", str(path))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_MODE)
    os.fchmod(fd, PRIVATE_MODE)
    return fd


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
    _private_folder(path.parent)
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


def create_private(path: Path) -> None:
    """Make sure ``path`` exists, owner-only: its folder created 0700 if missing, the file
    created empty with mode 0600, or tightened to 0600 if others could read it (a
    database SQLite then opens; it gives its -wal and -shm files the same mode).

    Raises
    ------
    OSError
        The folder or file could not be created.
    """
    _private_folder(path.parent)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE))
    if path.stat().st_mode & 0o077:
        os.chmod(path, PRIVATE_MODE)
