"""Rewrite config/heartsong.example.toml from the configuration schema.

Run after changing a setting, its default, its check or its doc:
``python tools/gen_example_config.py`` (``--check`` exits 1 if the file is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from heartsong.config import example_toml

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "heartsong.example.toml"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the example file; return the exit code."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report whether it is stale")
    args = p.parse_args(argv)
    text = example_toml()
    current = EXAMPLE.read_text(encoding="utf-8") if EXAMPLE.exists() else None
    if args.check:
        if current != text:
            print(f"{EXAMPLE} is stale; run python tools/gen_example_config.py")
            return 1
        return 0
    if current != text:
        EXAMPLE.write_text(text, encoding="utf-8")
        print(f"wrote {EXAMPLE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
