"""The TFLite runtime is found: ai-edge-litert first, tflite_runtime as the fallback."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

from heartsong.stress.runtime import RUNTIME_MODULES, RuntimeMissingError, find_runtime


def test_the_installed_runtime_is_ai_edge_litert() -> None:
    rt = find_runtime()
    assert rt.module == "ai_edge_litert.interpreter"
    assert rt.interpreter.__name__ == "Interpreter"


def test_falls_back_to_tflite_runtime_when_litert_is_missing() -> None:
    fake = ModuleType("tflite_runtime.interpreter")

    class Interpreter:
        pass

    fake.Interpreter = Interpreter  # type: ignore[attr-defined]

    def imp(name: str) -> ModuleType:
        if name == "ai_edge_litert.interpreter":
            raise ModuleNotFoundError("No module named 'ai_edge_litert'")
        if name == "tflite_runtime.interpreter":
            return fake
        return importlib.import_module(name)

    rt = find_runtime(imp)
    assert rt.module == "tflite_runtime.interpreter" and rt.interpreter is Interpreter


def test_no_runtime_names_every_candidate() -> None:
    def imp(name: str) -> ModuleType:
        raise ModuleNotFoundError(f"No module named {name!r}")

    with pytest.raises(RuntimeMissingError) as info:
        find_runtime(imp)
    assert all(m in str(info.value) for m in RUNTIME_MODULES)
    assert isinstance(info.value, ImportError)
