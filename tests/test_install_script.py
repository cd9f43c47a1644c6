"""tools/install-pi.sh: the dry run lists every step and changes nothing; shellcheck passes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "install-pi.sh"

INSTALL_STEPS = ("apt packages", "system user heartsong", "virtual environment",
                 "configuration in /etc/heartsong", "warm the numba cache",
                 "boot config", "polkit rule", "systemd unit")
UNINSTALL_STEPS = ("disable the service", "remove /opt/heartsong", "boot config",
                   "remove the system user", "configuration, data and cache")


def dry_run(*args: str) -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def steps(out: str) -> list[str]:
    return re.findall(r"^==> step \d+: (.*)$", out, flags=re.M)


def test_dry_run_lists_every_install_step() -> None:
    out = dry_run()
    found = steps(out)
    assert len(found) == len(INSTALL_STEPS)
    for want, line in zip(INSTALL_STEPS, found, strict=True):
        assert want in line
    assert out.rstrip().endswith(f"done ({len(INSTALL_STEPS)} steps)")
    # the commands that make the install, whatever this machine already has
    for cmd in ("python3 -m venv /opt/heartsong/venv", "pip install --quiet -e /opt/heartsong/src",
                "NUMBA_CACHE_DIR=/var/cache/heartsong/numba", "systemctl enable heartsong.service",
                "write /etc/systemd/system/heartsong.service"):
        assert cmd in out or (cmd.startswith("python3 -m venv") and "venv exists" in out)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    before = {p: p.exists() for p in (Path("/opt/heartsong"), Path("/etc/heartsong"))}
    dry_run()
    assert {p: p.exists() for p in before} == before


def test_dry_run_uninstall_lists_every_step() -> None:
    found = steps(dry_run("--uninstall"))
    assert len(found) == len(UNINSTALL_STEPS)
    for want, line in zip(UNINSTALL_STEPS, found, strict=True):
        assert want in line
    assert "rm -rf /etc/heartsong" in dry_run("--uninstall", "--purge")


def test_bad_option_is_refused() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 2 and "unknown option: --bogus" in proc.stderr


def test_install_without_root_is_refused() -> None:
    cmd = ["bash", str(SCRIPT)]
    if os.geteuid() == 0:  # as root, ask as an unprivileged user instead
        runuser = shutil.which("runuser")
        assert runuser is not None
        cmd = [runuser, "-u", "nobody", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1 and "run as root" in proc.stderr, proc.stderr


def test_shellcheck_is_clean() -> None:
    tool = shutil.which("shellcheck")
    if tool is None:
        if os.environ.get("HEARTSONG_REQUIRE_SERVICES") == "1":
            pytest.fail("shellcheck is not installed (`make deps` should install it)")
        pytest.skip("shellcheck is not installed (apt install shellcheck)")
    proc = subprocess.run([tool, "--shell=bash", "--severity=style", str(SCRIPT)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout
