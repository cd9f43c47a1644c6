"""The appliance loop in-process: wiring, fusion by preference, bad blocks, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from heartsong.app import Appliance
from heartsong.config import Config, with_overrides
from heartsong.events import PpgBlock
from heartsong.sdnotify import SdNotifier
from heartsong.wiring import SimWorld, build_demo


def _demo(speed: float = 400.0, **overrides: object) -> Appliance:
    base: dict[str, object] = {
        "audio.output": "none", "sources.ble": True, "simulation.stress": 0.0,
        "simulation.hr_bpm": 58.0, "simulation.motion_artifacts_per_hour": 0.0,
    }
    base.update(overrides)
    return build_demo(with_overrides(Config(), base), speed=speed)


def test_demo_run_measures_the_person_from_the_preferred_source() -> None:
    app = _demo(speed=60.0)
    assert asyncio.run(app.run(duration_s=150.0)) == 0
    measured = [m for m in app.metrics_history if m.hr_bpm is not None]
    assert measured, "no metrics with a heart rate"
    assert all(m.source == "ble" for m in measured)  # the strap is preferred when live
    assert abs(float(np.median([m.hr_bpm for m in measured])) - 58.0) < 3.0
    # the stress model answers once its baseline and window are full, never before
    states = [m.stress_state for m in app.metrics_history]
    assert states[0] == "unknown" and app.metrics_history[0].p_stress is None
    assert set(states) <= {"unknown", "calm", "neutral", "stressed"}
    assert all(
        (m.p_stress is None) == (m.stress_state == "unknown") or "p_stress" in m.reasons
        for m in app.metrics_history
    )
    kinds = [e.kind for e in app.events]
    assert kinds[0] == "adaptation" and "source" in kinds
    # the simulated person hears the pacer the closed loop chose: it starts just below
    # the person's own breathing (14 /min here), not at the 6 /min goal, and says why
    assert isinstance(app.world, SimWorld)
    pacer = app.world.person.pacer_bpm
    assert pacer == app.targets_or_default.breath_rate_bpm
    assert pacer is not None and 6.0 <= pacer < 14.0
    assert app.mode == "wind_down" and app.last_reason
    adaptations = [e for e in app.events if e.kind == "adaptation" and "what" in e.data]
    assert any(e.data["what"] == "breath_rate_bpm" for e in adaptations)


def test_ppg_is_used_when_preferred() -> None:
    # The PPG driver reads in a worker thread: at a moderate speed its hand-over latency
    # stays well inside the 10 simulated seconds after which a source counts as stale.
    app = _demo(speed=40.0, **{"sources.preferred": "ppg"})
    asyncio.run(app.run(duration_s=120.0))
    measured = [m for m in app.metrics_history if m.hr_bpm is not None]
    sources = [m.source for m in measured]
    # the strap's beats arrive first (the PPG detector needs a few seconds); once the
    # preferred PPG delivers beats it is used from then on
    assert "ppg" in sources
    assert set(sources[sources.index("ppg"):]) == {"ppg"}


def test_malformed_block_is_dropped_and_counted() -> None:
    app = _demo(**{"sources.ble": False})
    bad = PpgBlock(t0_s=0.0, fs_hz=100.0, ir=np.full(10, np.nan), red=np.zeros(0))
    app.on_block(bad)
    app.on_block(PpgBlock(t0_s=0.1, fs_hz=-5.0, ir=np.zeros(10), red=np.zeros(0)))
    assert app.rejected_blocks == 2
    assert asyncio.run(app.run(duration_s=20.0)) == 0


def test_request_stop_ends_run_before_duration() -> None:
    app = _demo()

    async def main() -> int:
        task = asyncio.create_task(app.run(duration_s=10_000.0))
        await asyncio.sleep(0.5)
        app.request_stop()
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(main()) == 0
    assert app.engine.is_silent
    assert app.clock.monotonic() < 10_000.0


def test_app_tells_systemd_ready_status_watchdog_and_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock_path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(0.05)
    got: list[str] = []
    done = threading.Event()

    def receive() -> None:  # like systemd: read as datagrams arrive (the queue is short)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                got.append(server.recv(4096).decode())

    reader = threading.Thread(target=receive)
    reader.start()
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # ping every 0.1 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    app = _demo(speed=20.0)
    app.notifier = SdNotifier(str(sock_path))
    try:
        assert asyncio.run(app.run(duration_s=20.0)) == 0
        time.sleep(0.2)
    finally:
        done.set()
        reader.join()
        server.close()
    kinds = [m.split("=", 1)[0] for m in got]
    assert kinds[0] == "READY" and "STOPPING" in kinds
    assert kinds.count("WATCHDOG") >= 3
    assert any(m.startswith("STATUS=") and "HR" in m for m in got)
    assert kinds.index("STOPPING") > kinds.index("WATCHDOG")


def test_the_resonance_rate_learnt_is_kept_in_the_state_dir(tmp_path: Path) -> None:
    from heartsong.wiring import make_therapy

    cfg = Config()
    kept = make_therapy(cfg, str(tmp_path))
    assert kept.store is not None and kept.store.path == tmp_path / "baseline.json"
    kept.close()
    assert "resonance" in (tmp_path / "baseline.json").read_text()
    # a demo without a state folder keeps nothing on disk
    assert make_therapy(cfg, None).store is None
    app = _demo()
    assert app.therapy.store is None


def test_the_stress_response_uses_the_models_own_thresholds() -> None:
    # The deployed model's decision threshold is far below 0.5: a stress response that
    # waited for p_stress 0.65 would never answer it.
    app = _demo()
    from heartsong.stress.estimator import ModelEstimator

    assert isinstance(app.estimator, ModelEstimator)
    th = app.estimator.model.spec.thresholds
    cfg = app.therapy.stress_cfg
    assert (cfg.enter_stressed, cfg.leave_stressed) == (th.stressed_enter, th.stressed_exit)


def test_the_stress_response_counts_the_models_smoothing_in_its_delay() -> None:
    # p_stress arrives smoothed by the model (tau 30 s); smoothing it again by the full
    # [therapy] stress_tau_s would make the sound answer after about twice the delay.
    app = _demo()
    from heartsong.stress.estimator import ModelEstimator
    from heartsong.wiring import make_therapy

    assert isinstance(app.estimator, ModelEstimator)
    model_tau = app.estimator.model.spec.tau_s
    configured = app.cfg.therapy.stress_tau_s
    assert app.therapy.stress_cfg.tau_s == max(1.0, configured - model_tau)
    # Without a model in front (the simulations feed p_stress directly) it is all its own.
    assert make_therapy(app.cfg, None).stress_cfg.tau_s == configured


def test_a_soundscape_command_wins_over_the_learners_choice() -> None:
    """Choosing the configured default while the learner plays another one switches to
    it (it used to answer "already ocean": the command compared with the setting, not with
    what played), and the explanation follows the choice."""
    from heartsong.mqtt.commands import SetSoundscape

    app = _demo(**{"audio.soundscape": "ocean"})
    assert asyncio.run(app.run(duration_s=30.0)) == 0
    learnt = app.targets_or_default.soundscape
    assert learnt != "ocean" and app.settings.soundscape == "ocean"
    assert app.therapy.soundscape_reason.startswith(f"playing {learnt}")
    app.on_command(SetSoundscape("ocean"))
    assert app.targets_or_default.soundscape == "ocean"
    assert app.therapy.soundscape_reason == "playing ocean: your choice"
    assert f"soundscape {learnt} -> ocean" in [e.message for e in app.events][-2]


def test_the_gil_is_handed_over_every_millisecond_while_running() -> None:
    """The audio callback waits for the GIL before every 5.3-ms block; the default 5-ms
    switch interval could let a Python thread hold it for a whole block."""
    import sys

    seen: list[float] = []
    before = sys.getswitchinterval()
    cfg = with_overrides(Config(), {"audio.output": "none"})
    app = build_demo(cfg, speed=400.0, on_status=lambda s: seen.append(sys.getswitchinterval()))
    assert asyncio.run(app.run(duration_s=20.0)) == 0
    assert seen and set(seen) == {0.001}
    assert sys.getswitchinterval() == before  # restored for whoever runs next
