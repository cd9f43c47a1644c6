"""Package-level promises: it imports without hardware libraries, and logs are structured."""

from __future__ import annotations

import io
import json
import logging
import pkgutil
import subprocess
import sys

import heartsong
from heartsong.logs import setup_logging

HARDWARE_LIBS = (
    "smbus2", "bleak", "gpiozero", "pyaudio", "paho", "ai_edge_litert", "tflite_runtime",
)


def test_every_module_imports_without_hardware_libraries() -> None:
    modules = sorted(
        m.name for m in pkgutil.walk_packages(heartsong.__path__, prefix="heartsong.")
        if m.name != "heartsong.__main__"
    )
    assert "heartsong.app" in modules and "heartsong.cli" in modules
    code = (
        "import sys\n"
        f"for lib in {HARDWARE_LIBS!r}:\n"
        "    sys.modules[lib] = None  # any import of it now raises ImportError\n"
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('imported', len(sys.argv))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("imported")


def _log_once(fmt: str) -> str:
    stream = io.StringIO()
    setup_logging("info", fmt, stream)
    try:
        logging.getLogger("heartsong.test").info(
            "source changed", extra={"fields": {"source": "ble", "hr_bpm": 61.0}}
        )
        logging.getLogger("heartsong.test").debug("not shown at info level")
    finally:
        setup_logging("warning", "text")
    return stream.getvalue()


def test_json_logs_are_one_object_per_line_with_fields() -> None:
    lines = _log_once("json").splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert doc["msg"] == "source changed" and doc["level"] == "info"
    assert doc["source"] == "ble" and doc["hr_bpm"] == 61.0
    assert doc["logger"] == "heartsong.test"


def test_text_logs_append_fields_as_key_value() -> None:
    out = _log_once("text").strip()
    assert out.endswith("source changed source=ble hr_bpm=61.0")
    assert "INFO heartsong.test" in out
