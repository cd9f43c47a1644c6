"""The validation targets of issue 3, reproduced on the shared reference recordings.

Runs ``tools/validate_hrv.py``'s scoring (which calls ``heartsong analyze``) and checks the
targets heartsong meets, plus floors for the beat F1 targets it does not meet yet (see
docs/VALIDATION.md), so a regression fails here.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"

Rows = tuple[dict[tuple[str, str], Any], list[Any]]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DATA / "ppg_reference").is_dir(), reason="shared data absent"),
]


def load_tool() -> ModuleType:
    pytest.importorskip("neurokit2")
    path = REPO / "tools" / "validate_hrv.py"
    spec = importlib.util.spec_from_file_location("validate_hrv", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["validate_hrv"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows() -> Rows:
    tool = load_tool()
    ecg_rows, well_rows = tool.validate(DATA)
    return {(r.name, r.pipeline): r for r in ecg_rows}, well_rows


@pytest.mark.parametrize("name", ["neurokit_resting_5min", "bidmc_01"])
def test_ecg_records_meet_hr_and_windowed_rmssd_targets(rows: Rows, name: str) -> None:
    by, _ = rows
    hs, nk = by[(name, "heartsong")], by[(name, "NeuroKit2")]
    assert abs(hs.hr - hs.hr_ref) <= 0.5
    assert hs.win_rmssd <= 3.0
    assert hs.n_windows >= 20
    # Never worse than NeuroKit2's default pipeline.
    assert hs.f1 >= nk.f1
    assert abs(hs.rmssd - hs.rmssd_ref) <= abs(nk.rmssd - nk.rmssd_ref)
    assert hs.win_rmssd <= nk.win_rmssd


def test_beat_f1_floors(rows: Rows) -> None:
    by, _ = rows
    # Targets are 99.5 % and 99 %; measured 99.3 % and 97.9 % (a 12-s sensor dropout in
    # bidmc_01 that no detector can see beats in; 99.2 % on the stretches measured).
    assert by[("neurokit_resting_5min", "heartsong")].f1 >= 0.99
    assert by[("bidmc_01", "heartsong")].f1 >= 0.975
    assert by[("bidmc_01", "heartsong")].f1_measured >= 0.99


def test_welltory_targets(rows: Rows) -> None:
    _, well = rows
    pairs = list(zip(well[::2], well[1::2], strict=True))
    scored = [(h, n) for h, n in pairs if not h.note]
    assert len(scored) >= 10
    refused = [h for h, _ in pairs if h.note]
    assert all("clipped" in h.note or "unclipped" in h.note for h in refused)
    hs_hr = np.median([abs(h.hr - h.hr_ref) for h, _ in scored])
    hs_rm = np.median([abs(h.rmssd - h.rmssd_ref) for h, _ in scored])
    nk_rm = np.median([abs(n.rmssd - n.rmssd_ref) for _, n in scored if not math.isnan(n.rmssd)])
    assert hs_hr <= 1.0
    assert 2.0 * hs_rm <= nk_rm
    for h, n in scored:
        assert abs(h.rmssd - h.rmssd_ref) <= abs(n.rmssd - n.rmssd_ref)
