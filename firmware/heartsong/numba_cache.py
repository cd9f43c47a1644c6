"""Keeping numba's on-disk cache honest about kernels that call kernels of other files.

numba's cache (``@njit(cache=True)``) is invalidated by a change to the kernel's own source
file only. A cached kernel that calls (and inlines) a kernel of another module keeps the
old copy of it after that module changes: an update of the firmware could then run old
synthesis or DSP code until the cache is cleared by hand. A module guards against this
by freezing a digest of the files its kernels call into, as a global read by a tiny
cached kernel of its own, and by calling :func:`refresh_stale_kernels` at import: when
the digest compiled into the cache no longer matches the files, its kernels are
recompiled (which rewrites their cache).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["module_kernels", "refresh_stale_kernels", "sources_digest"]

logger = logging.getLogger(__name__)


def sources_digest(modules: Sequence[ModuleType]) -> int:
    """CRC-32 of the source files of ``modules`` (0 when one cannot be read)."""
    crc = 0
    for module in modules:
        try:
            crc = zlib.crc32(Path(str(module.__file__)).read_bytes(), crc)
        except OSError:
            return 0
    return crc


def refresh_stale_kernels(
    current: int,
    compiled: Callable[[], int],
    kernels: Sequence[Any],
    sources: Sequence[ModuleType] = (),
) -> bool:
    """Recompile ``kernels`` (which flushes their cache) when ``compiled()`` differs from
    the ``current`` digest of the files they call into; True when that happened.

    ``sources`` are modules whose kernels ``kernels`` call and which do not guard
    themselves: their kernels are recompiled first, since their own caches only notice
    changes to their own file, not to the files *they* call into.
    """
    if compiled() == current:
        return False
    logger.info("numba kernel sources changed since they were cached: recompiling")
    for module in sources:
        for kernel in module_kernels(vars(module)):
            kernel.recompile()
    for kernel in kernels:
        kernel.recompile()
    return True


def module_kernels(namespace: Mapping[str, object]) -> list[Any]:
    """The numba kernels defined in the module whose ``globals()`` is ``namespace``
    (not those it imports): what :func:`refresh_stale_kernels` recompiles when any of its
    kernels may have inlined a changed callee."""
    name = namespace["__name__"]
    return [
        obj for obj in namespace.values()
        if hasattr(obj, "recompile")
        and getattr(getattr(obj, "py_func", None), "__module__", None) == name
    ]
