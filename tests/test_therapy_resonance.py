"""The personal resonance rate: amplitude measure, fit over sessions, JSON persistence."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.therapy.resonance import (
    MAX_SESSIONS,
    ResonanceBand,
    ResonanceModel,
    ResonanceStore,
    SessionRecord,
    Visit,
    _model_from_json,
    add_sample,
    estimate_resonance,
    rsa_amplitude_bpm,
)

BAND = ResonanceBand()


def _gain(rate: float, peak: float) -> float:
    """A resonance curve in ln units peaking at ``peak`` breaths/min."""
    return 0.25 * math.exp(-0.5 * ((rate - peak) / 0.8) ** 2)


def test_band_bins_and_lookup() -> None:
    assert BAND.bins == (4.5, 5.0, 5.5, 6.0, 6.5, 7.0)
    assert BAND.bin_of(5.05) == 5.0
    assert BAND.bin_of(5.25) is None and BAND.bin_of(8.0) is None


def test_rsa_amplitude_matches_a_sinusoidal_heart_rate() -> None:
    """NN intervals swinging sinusoidally: the measure returns the peak-to-trough HR."""
    hr0, swing_bpm = 60.0, 12.0
    t = np.linspace(0.0, 60.0, 6001)
    hr = hr0 + 0.5 * swing_bpm * np.sin(2 * np.pi * 0.1 * t)
    nn = 60000.0 / hr
    sdnn = float(np.std(nn))
    est = rsa_amplitude_bpm(float(60000.0 / np.mean(nn)), sdnn)
    assert est == pytest.approx(swing_bpm, rel=0.03)
    assert rsa_amplitude_bpm(60.0, 2 * sdnn) == pytest.approx(2 * rsa_amplitude_bpm(60.0, sdnn))


def test_samples_join_a_visit_until_the_rate_changes() -> None:
    r = SessionRecord(0.0)
    r = add_sample(r, 6.0, 1.0, math.e, 5.0)
    r = add_sample(r, 6.0, 2.0, math.e**3, 5.0)
    r = add_sample(r, 5.5, 3.0, 1.0, 5.0)
    assert len(r.visits) == 2
    assert r.visits[0].log_amp == pytest.approx(2.0) and r.visits[0].t_min == pytest.approx(1.5)
    assert r.visits[0].weight_s == 10.0 and r.visits[1].rate_bpm == 5.5
    with pytest.raises(InputDataError, match="amplitude_bpm"):
        add_sample(r, 6.0, 1.0, 0.0, 5.0)


def _session(wall: float, peak: float, offset: float, rates: list[float],
             drift_per_min: float = 0.0, noise: float = 0.0, seed: int = 0) -> SessionRecord:
    rng = np.random.default_rng(seed)
    visits = []
    for k, rate in enumerate(rates):
        t = 2.0 * k + 10.0
        y = offset + _gain(rate, peak) + drift_per_min * t + noise * rng.standard_normal()
        visits.append(Visit(rate, t, y, 60.0))
    return SessionRecord(wall, tuple(visits))


SWEEP = [6.0, 5.5, 5.0, 4.5, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0]


@pytest.mark.parametrize("peak", [5.0, 5.5, 6.5])
def test_finds_the_peak_across_sessions_with_different_offsets(peak: float) -> None:
    model = ResonanceModel(tuple(
        _session(float(k), peak, offset, SWEEP, seed=k)
        for k, offset in enumerate([1.5, 2.3, 1.1])
    ))
    est = estimate_resonance(model, BAND)
    assert est.known
    assert est.rate_bpm == pytest.approx(peak, abs=0.25)
    assert max(est.effects_pct, key=lambda b: est.effects_pct[b]) == pytest.approx(peak, abs=0.5)
    assert est.n_sessions == 3


def test_drift_within_a_session_is_not_mistaken_for_resonance() -> None:
    """Calming while walking down and up the band: a steady rise in time. The fit's
    per-session drift removes it; a fit without it would pick the rates sampled last."""
    model = ResonanceModel((_session(0.0, 6.0, 1.0, SWEEP, drift_per_min=0.03),))
    est = estimate_resonance(model, BAND)
    assert est.known and est.rate_bpm == pytest.approx(6.0, abs=0.25)


def test_not_known_until_the_peak_and_its_neighbours_are_measured() -> None:
    one = ResonanceModel((_session(0.0, 5.0, 1.0, [7.0, 6.5, 6.0]),))
    est = estimate_resonance(one, BAND)
    assert not est.known and est.rate_bpm == BAND.default_bpm
    assert estimate_resonance(ResonanceModel(), BAND).rate_bpm == 6.0


def test_the_current_session_counts() -> None:
    past = ResonanceModel((_session(0.0, 5.5, 1.0, [6.0, 5.5, 5.0]),))
    now = _session(1.0, 5.5, 2.0, [4.5, 5.0, 5.5, 6.0, 6.5])
    assert not estimate_resonance(past, BAND).known
    assert estimate_resonance(past, BAND, now).known


def test_store_round_trip_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"stress": {"hr_bpm": 61.0}}), encoding="utf-8")
    store = ResonanceStore(path)
    model = ResonanceModel((_session(1.7e9, 5.5, 1.0, SWEEP),))
    store.save(model, estimate_resonance(model, BAND))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["stress"] == {"hr_bpm": 61.0}
    assert doc["resonance"]["known"] is True
    loaded = store.load()
    assert len(loaded.sessions) == 1
    assert loaded.sessions[0].visits[3].rate_bpm == 4.5
    assert estimate_resonance(loaded, BAND).rate_bpm == pytest.approx(
        estimate_resonance(model, BAND).rate_bpm, abs=0.05
    )


def test_with_session_replaces_and_trims() -> None:
    m = ResonanceModel()
    for k in range(MAX_SESSIONS + 5):
        m = m.with_session(SessionRecord(float(k), (Visit(6.0, 1.0, 1.0, 5.0),)))
    assert len(m.sessions) == MAX_SESSIONS and m.sessions[0].wall_s == 5.0
    m = m.with_session(SessionRecord(float(MAX_SESSIONS + 4), ()))
    assert len(m.sessions) == MAX_SESSIONS and m.sessions[-1].visits == ()


def test_unreadable_or_invalid_files_start_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{not json", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert ResonanceStore(path).load().sessions == ()
    assert "unreadable" in caplog.text
    path.write_text(json.dumps({"resonance": {"version": 1, "sessions": "x"}}), encoding="utf-8")
    assert ResonanceStore(path).load().sessions == ()
    assert ResonanceStore(None).load().sessions == ()
    ResonanceStore(None).save(ResonanceModel())  # nowhere to save: no error


def test_bad_entries_name_the_field() -> None:
    with pytest.raises(InputDataError, match=r"resonance.sessions\[0\].visits\[1\]"):
        _model_from_json(
            {"version": 1, "sessions": [{"wall_s": 1.0, "visits": [[6, 1, 1, 5], [6, 1, 1]]}]}
        )
    with pytest.raises(InputDataError, match="version"):
        _model_from_json({"version": 99, "sessions": []})


def test_bad_bands_name_the_setting() -> None:
    with pytest.raises(InputDataError, match="resonance_min_bpm"):
        ResonanceBand(min_bpm=7.0, max_bpm=6.0)
    with pytest.raises(InputDataError, match="breath_rate_bpm"):
        ResonanceBand(default_bpm=8.0)
