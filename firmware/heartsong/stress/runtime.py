"""Find the TFLite interpreter: ai-edge-litert first, tflite-runtime as the fallback.

``ai-edge-litert`` is the maintained successor of ``tflite-runtime`` (whose last release,
2.14, fails at run time under numpy 2). On Raspberry Pi OS bookworm (CPython 3.11,
aarch64) pip resolves ``ai-edge-litert`` 1.4.x; on x86_64 a 2.x release. A device that
only has the old ``tflite_runtime`` package still works when its numpy allows it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from heartsong.errors import HeartsongError

log = logging.getLogger(__name__)

#: Modules tried in order; each must export ``Interpreter``.
RUNTIME_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


class RuntimeMissingError(HeartsongError, ImportError):
    """No TFLite runtime can be imported."""


@dataclass(frozen=True, slots=True)
class TfliteRuntime:
    """The interpreter class found, and the module it came from."""

    module: str
    interpreter: Any


def find_runtime(
    import_module: Callable[[str], object] = importlib.import_module,
) -> TfliteRuntime:
    """Import the first available TFLite interpreter.

    Parameters
    ----------
    import_module:
        The import function (injectable so the fallback order can be tested).

    Raises
    ------
    RuntimeMissingError
        With the import error of every candidate, and how to install one.
    """
    errors: list[str] = []
    for name in RUNTIME_MODULES:
        try:
            module = import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        interpreter = getattr(module, "Interpreter", None)
        if interpreter is None:
            errors.append(f"{name}: has no Interpreter")
            continue
        log.debug("TFLite runtime: %s", name)
        return TfliteRuntime(name, interpreter)
    raise RuntimeMissingError(
        "no TFLite runtime: " + "; ".join(errors) + " (install it: pip install ai-edge-litert)"
    )
