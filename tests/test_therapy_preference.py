"""The soundscape learner: it learns, its exploration is bounded, it survives a restart,
and deleting the person's data resets it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
from pathlib import Path

import pytest

from heartsong.errors import InputDataError
from heartsong.events import Metrics
from heartsong.stress.estimator import StressEstimate
from heartsong.therapy.controller import TherapyController
from heartsong.therapy.learner import (
    LearnSettings,
    SoundscapeLearner,
    learn_settings_from_config,
    make_learner,
)
from heartsong.therapy.policy import PolicySettings
from heartsong.therapy.preference import (
    PREFERENCES_FILE,
    ChoiceRecord,
    PreferenceConfig,
    PreferenceModel,
    PreferenceStore,
    choose,
    context_of,
    posteriors,
    time_bucket,
)
from heartsong.therapy.response import Response
from heartsong.therapy.settings import TherapyTuning

WALL0 = dt.datetime(2024, 3, 4, 22, 30).astimezone().timestamp()
CTX = context_of("wind_down", WALL0)
CFG = PreferenceConfig()
ARMS = ("rain", "ocean", "forest_night")


def _resp(name: str, d_hr: float, night: int, session_s: float = 0.0) -> Response:
    return Response(name, WALL0 + 86400.0 * night, session_s, 600.0, d_hr, None, None, 100)


def _model(effects: dict[str, list[float]], context: str = CTX) -> PreferenceModel:
    m = PreferenceModel()
    for name, values in effects.items():
        for night, v in enumerate(values):  # each arm on the same nights (same ages)
            m = m.with_response(_resp(name, v, night), context)
    return m


def test_contexts_are_mode_and_time_of_day() -> None:
    assert CTX == "wind_down/night"
    assert time_bucket(WALL0 - 4 * 3600) == "evening"  # 18:30
    assert time_bucket(WALL0 - 14 * 3600) == "morning"  # 08:30
    assert time_bucket(WALL0 + 3 * 3600) == "night"  # 01:30


def test_every_candidate_is_tried_twice_first_in_order() -> None:
    m = PreferenceModel()
    rng = random.Random(0)
    tried = []
    for night in range(6):
        c = choose(m, ARMS, CTX, WALL0 + night * 86400.0, CFG, rng)
        assert c.kind == "trial"
        tried.append(c.soundscape)
        if night != 1:  # night 1 was not measured: ocean is tried again
            m = m.with_response(_resp(c.soundscape, -1.0, night), CTX)
    assert tried == ["rain", "ocean", "ocean", "forest_night", "rain", "ocean"]
    c = choose(m, ARMS, CTX, WALL0 + 6 * 86400.0, CFG, rng)
    assert c.kind == "trial" and c.soundscape == "forest_night"
    m = m.with_response(_resp(c.soundscape, -1.0, 6), CTX)
    assert choose(m, ARMS, CTX, WALL0 + 7 * 86400.0, CFG, rng).kind != "trial"


def test_it_learns_the_soundscape_that_lowers_the_heart_rate_most() -> None:
    rng = random.Random(1)
    noise = random.Random(2)
    m = _model({
        "rain": [-3.0 + noise.gauss(0, 1.0) for _ in range(6)],
        "ocean": [-1.0 + noise.gauss(0, 1.0) for _ in range(6)],
        "forest_night": [0.0 + noise.gauss(0, 1.0) for _ in range(6)],
    })
    post = {p.soundscape: p for p in posteriors(m, ARMS, CTX, WALL0 + 30 * 86400, CFG)}
    assert post["rain"].mean > post["ocean"].mean > post["forest_night"].mean
    assert post["rain"].d_hr_bpm is not None and post["ocean"].d_hr_bpm is not None
    assert post["rain"].d_hr_bpm < post["ocean"].d_hr_bpm - 1.0  # drift-corrected gap
    picks = []
    for k in range(300):
        c = choose(m, ARMS, CTX, WALL0 + 30 * 86400, CFG, rng)
        picks.append(c.soundscape)
        m = m.with_choice(ChoiceRecord(WALL0 + 30 * 86400 + k, CTX, c.soundscape, c.kind))
    assert picks.count("rain") / len(picks) >= 0.9


def test_a_clearly_worse_soundscape_is_never_drawn() -> None:
    m = _model({"rain": [-4.0, -3.5, -4.5, -4.0], "ocean": [3.0, 2.5, 3.5, 3.0],
                "forest_night": [-3.8, -4.1, -3.9, -4.2]})
    rng = random.Random(3)
    picks = {choose(m, ARMS, CTX, WALL0 + 20 * 86400, CFG, rng).soundscape for _ in range(500)}
    assert "ocean" not in picks
    assert picks == {"rain", "forest_night"}  # close ones are still both tried


def test_exploration_share_stays_within_its_cap() -> None:
    # two arms the learner cannot tell apart: without the cap it would explore half the time
    m = _model({"rain": [-2.0, -1.0, -3.0], "ocean": [-2.1, -0.9, -3.0]})
    rng = random.Random(4)
    kinds = []
    for k in range(200):
        c = choose(m, ("rain", "ocean"), CTX, WALL0 + (10 + k) * 86400.0, CFG, rng)
        kinds.append(c.kind)
        m = m.with_choice(ChoiceRecord(WALL0 + (10 + k) * 86400.0, CTX, c.soundscape, c.kind))
    assert "explore" in kinds  # it does explore ...
    for i in range(0, len(kinds) - CFG.explore_window + 1):  # ... never above the cap
        window = kinds[i : i + CFG.explore_window]
        assert window.count("explore") <= CFG.max_explore_share * CFG.explore_window + 1e-9


def test_old_evidence_is_slowly_forgotten() -> None:
    m = PreferenceModel()
    for n in range(8):  # a year ago rain helped
        m = m.with_response(_resp("rain", -4.0, n), CTX)
        m = m.with_response(_resp("ocean", -1.0, n), CTX)
    now = WALL0 + 365 * 86400.0
    for n in range(3):  # lately it does not
        m = m.with_response(_resp("rain", +1.0, 360 + n), CTX)
        m = m.with_response(_resp("ocean", -2.0, 360 + n), CTX)
    post = {p.soundscape: p for p in posteriors(m, ("rain", "ocean"), CTX, now, CFG)}
    assert post["ocean"].mean > post["rain"].mean
    fresh = {p.soundscape: p for p in posteriors(m, ("rain", "ocean"), CTX, WALL0 + 10 * 86400,
                                                 CFG)}
    assert fresh["rain"].mean > fresh["ocean"].mean  # seen from back then, rain was better


def test_other_contexts_count_less() -> None:
    m = _model({"rain": [-4.0] * 4, "ocean": [0.0] * 4}, context="calm/afternoon")
    here = {p.soundscape: p for p in posteriors(m, ("rain", "ocean"), CTX, WALL0, CFG)}
    there = {p.soundscape: p for p in posteriors(m, ("rain", "ocean"), "calm/afternoon",
                                                 WALL0, CFG)}
    assert here["rain"].episodes == pytest.approx(0.3 * there["rain"].episodes, rel=0.05)
    assert here["rain"].sd > there["rain"].sd and here["rain"].mean > here["ocean"].mean


def _learner(path: Path, seed: int = 0) -> SoundscapeLearner:
    return SoundscapeLearner(ARMS, store=PreferenceStore(path), seed=seed)


def _play(learner: SoundscapeLearner, name: str, night: int, slope: float) -> str | None:
    wall = WALL0 + night * 86400.0
    learner.episode_start(name, 0.0, wall, 0.0, "wind_down")
    note = None
    for k in range(1, 121):
        t = 5.0 * k
        m = Metrics(t_s=t, wall_s=wall + t, hr_bpm=70.0 + slope * t / 60.0, rmssd_ms=30.0,
                    p_stress=0.5, signal_quality=0.9)
        note = learner.observe(m, t) or note
    return note


def test_what_was_learnt_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / PREFERENCES_FILE
    a = _learner(path)
    note = _play(a, "rain", 0, -0.4)
    assert note is not None and note.startswith("measured rain: heart rate -4.0 bpm")
    _play(a, "ocean", 1, -0.1)
    a.choose("wind_down", WALL0 + 2 * 86400)
    assert path.exists() and not path.with_name(path.name + ".tmp").exists()
    assert path.stat().st_mode & 0o077 == 0  # health data: owner only
    b = _learner(path)  # a reboot
    assert b.model == PreferenceModel(a.model.responses, b.model.choices)
    assert len(b.model.responses) == 2
    pa = a.posteriors("wind_down", WALL0 + 3 * 86400)
    pb = b.posteriors("wind_down", WALL0 + 3 * 86400)
    assert pa == pb
    doc = json.loads(path.read_text())
    assert doc["format"] == "heartsong-soundscape-preferences" and doc["version"] == 1


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", '{"format": "other", "version": 1}',
     '{"format": "heartsong-soundscape-preferences", "version": 1, "responses": '
     '[{"soundscape": "rain", "d_hr_bpm": "NaN"}], "choices": []}'],
)
def test_a_corrupt_file_is_a_fresh_start_with_a_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / PREFERENCES_FILE
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        learner = _learner(path)
    assert learner.model == PreferenceModel()
    assert "starting afresh" in caplog.text
    assert learner.choose("wind_down", WALL0)[0] == "rain"  # and it works


def test_deleting_the_persons_data_resets_the_learner(tmp_path: Path) -> None:
    path = tmp_path / PREFERENCES_FILE
    a = _learner(path)
    for night, name in enumerate(ARMS):
        _play(a, name, night, -0.2)
    assert len(_learner(path).model.responses) == 3
    store = PreferenceStore(path)
    store.delete_before(WALL0 + 1.5 * 86400.0)  # "data delete --before": older nights go
    assert [r.soundscape for r, _ in _learner(path).model.responses] == ["forest_night"]
    a.forget()  # "data delete --all" while running
    assert not path.exists()
    b = _learner(path)
    assert b.model == PreferenceModel()
    assert b.choose("wind_down", WALL0)[1].startswith("playing rain: not measured yet")


def test_data_delete_all_removes_the_preferences_file(tmp_path: Path) -> None:
    from heartsong import store_cmd
    from heartsong.store.db import Store, db_path

    Store(db_path(tmp_path)).close()
    path = tmp_path / PREFERENCES_FILE
    _play(_learner(path), "rain", 0, -0.2)
    assert path.exists()
    args = argparse.Namespace(command="data", data_command="delete", all=True, before=None,
                              db=None)
    assert store_cmd.run(args, tmp_path) == 0
    assert not path.exists()
    assert _learner(path).model == PreferenceModel()


def test_the_controller_plays_the_learnt_soundscape_and_explains_it(tmp_path: Path) -> None:
    tuning = TherapyTuning()
    learn = LearnSettings(learn_soundscapes=True, learn_candidates=("rain", "ocean"))
    settings = PolicySettings("wind_down", "brown_noise", -20.0, 6.0, 0.0)
    reasons: list[str] = []
    for night, slope in ((0, -0.5), (1, 0.0)):
        learner = make_learner(learn, tmp_path, seed=night)
        assert learner is not None
        ctl = TherapyController(settings, tuning, learner=learner)
        wall = WALL0 + night * 86400.0
        d = ctl.start(0.0, wall)
        reasons += d.reasons
        assert d.targets.soundscape == ("rain", "ocean")[night]
        assert ctl.soundscape_reason.startswith(f"playing {d.targets.soundscape}")
        for k in range(1, 200):
            t = 5.0 * k
            m = Metrics(t_s=t, wall_s=wall + t, hr_bpm=70.0 + slope * min(t, 600.0) / 60.0,
                        rmssd_ms=30.0, signal_quality=0.9, source="ble")
            reasons += ctl.step(m, StressEstimate(0.3, "neutral"), t, wall + t).reasons
        ctl.close()
    assert any(r.startswith("measured rain: heart rate -5.0 bpm") for r in reasons)
    assert any(r.startswith("measured ocean: heart rate +0.0 bpm") for r in reasons)
    learner = make_learner(learn, tmp_path, seed=5)
    assert learner is not None
    ctl = TherapyController(settings, tuning, learner=learner)
    d = ctl.start(0.0, WALL0 + 2 * 86400.0)
    assert d.targets.soundscape == "rain"
    assert "rain: it lowered your heart rate by" in ctl.soundscape_reason
    assert "ocean" in ctl.soundscape_reason
    # the user's own pick wins for the session
    d = ctl.update_settings(
        PolicySettings("wind_down", "ocean", -20.0, 6.0, 0.0), 10.0, WALL0 + 2 * 86400.0 + 10
    )
    d = ctl.step(Metrics(t_s=15.0, wall_s=WALL0 + 2 * 86400 + 15, hr_bpm=70.0,
                         signal_quality=0.9), None, 15.0, WALL0 + 2 * 86400 + 15)
    assert d.targets.soundscape == "ocean"


def test_learning_is_off_by_default_and_its_keys_are_checked() -> None:
    from types import SimpleNamespace

    assert make_learner(LearnSettings(), None) is None
    section = SimpleNamespace(learn_soundscapes=True, learn_candidates=["rain", "ocean"],
                              closed_loop=True)
    s = learn_settings_from_config(section)
    assert s.learn_candidates == ("rain", "ocean") and s.learn_half_life_days == 60.0
    with pytest.raises(InputDataError, match="learn_candidates"):
        LearnSettings(learn_candidates=("rain", "rain"))
    with pytest.raises(InputDataError, match="learn_explore_max"):
        LearnSettings(learn_explore_max=0.9)
    with pytest.raises(InputDataError, match="learn_candidates"):
        TherapyController(
            PolicySettings("calm", "rain", -20.0, 6.0, 0.0),
            learner=SoundscapeLearner(("rain", "no_such_preset")),
        )


def test_a_deletion_while_the_device_runs_is_not_undone(tmp_path: Path) -> None:
    path = tmp_path / PREFERENCES_FILE
    running = _learner(path)
    _play(running, "rain", 0, -0.2)
    _play(running, "ocean", 1, -0.2)
    PreferenceStore(path).delete()  # `heartsong data delete --all` from another process
    _play(running, "forest_night", 2, -0.2)  # the device measures the next episode
    kept = _learner(path).model.responses
    assert [r.soundscape for r, _ in kept] == ["forest_night"]
    assert [r.soundscape for r, _ in running.model.responses] == ["forest_night"]


def test_export_includes_what_was_learnt(tmp_path: Path) -> None:
    import csv

    from heartsong import store_cmd
    from heartsong.store.db import Store, db_path

    Store(db_path(tmp_path)).close()
    _play(_learner(tmp_path / PREFERENCES_FILE), "rain", 0, -0.3)
    out = tmp_path / "export.json"
    args = argparse.Namespace(command="export", session=None, since=None, fmt="json", out=out,
                              db=None)
    assert store_cmd.run(args, tmp_path) == 0
    doc = json.loads(out.read_text())
    prefs = doc["soundscape_preferences"]
    assert prefs["format"] == "heartsong-soundscape-preferences"
    assert [r["soundscape"] for r in prefs["responses"]] == ["rain"]
    assert prefs["responses"][0]["d_hr_bpm"] == pytest.approx(-3.0, abs=0.01)
    assert "bpm" in prefs["units"]["d_hr_bpm"]
    out_csv = tmp_path / "export.csv"
    args = argparse.Namespace(command="export", session=None, since=None, fmt="csv",
                              out=out_csv, db=None)
    assert store_cmd.run(args, tmp_path) == 0
    reader = csv.DictReader((tmp_path / "export_soundscape_responses.csv").open())
    rows = list(reader)
    assert reader.fieldnames == [  # the file format users' spreadsheets depend on
        "soundscape", "context", "time_iso", "start_wall_s", "session_s", "length_s",
        "d_hr_bpm", "d_rmssd_log", "d_p_stress", "n_clean", "ref_hr_bpm", "ref_rmssd_log",
        "ref_p_stress"]
    assert len(rows) == 1 and rows[0]["soundscape"] == "rain"
    assert float(rows[0]["d_hr_bpm"]) == pytest.approx(-3.0, abs=0.01)
    assert float(rows[0]["ref_hr_bpm"]) == pytest.approx(70.0 - 0.3 * 32.5 / 60.0)


def test_the_report_summary_names_the_effects() -> None:
    from heartsong.therapy.preference import summary_lines

    assert summary_lines(PreferenceModel(), WALL0) == []
    m = _model({"rain": [-5.0, -4.0, -6.0], "ocean": [-1.0, 0.0, -2.0]})
    lines = summary_lines(m, WALL0 + 5 * 86400)
    assert lines[0].startswith("Soundscapes learnt (6 measured episodes; wind_down/night")
    assert lines[1].strip().startswith("rain: lowered your heart rate by 2 bpm")
    assert lines[2].strip().startswith("ocean: raised your heart rate by 2 bpm")
