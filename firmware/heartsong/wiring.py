"""Builds the appliance from configuration: for the real device and for the simulation.

This is the one place where backends are chosen (gpiozero's pattern): everything else
receives its parts ready-made.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from heartsong.app import Appliance, Status, World, settings_from_config
from heartsong.audio.engine import AudioEngine
from heartsong.audio.sinks import NullSink, PyAudioSink, Sink, WavSink
from heartsong.audio.soundscapes import PRESETS
from heartsong.clock import Clock, RealClock, ScaledClock
from heartsong.config import Config
from heartsong.controls.controller import make_controls
from heartsong.dsp.pipeline import warm_up as dsp_warm_up
from heartsong.events import SoundTargets
from heartsong.mqtt.commands import CommandLimits
from heartsong.mqtt.link import MqttLink
from heartsong.mqtt.spool import OUTBOX_FILE
from heartsong.sdnotify import SdNotifier
from heartsong.sensors.ble_source import make_demo_ble_source, make_device_ble_source
from heartsong.sensors.ppg_source import make_demo_ppg_source, make_device_ppg_source
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson, SimulatedStrap
from heartsong.sensors.sources import HeartSource
from heartsong.store.db import db_path
from heartsong.store.recorder import SessionRecorder
from heartsong.store.writer import StoreWriter
from heartsong.stress.estimator import ModelEstimator, StressEstimator, make_stress_estimator
from heartsong.therapy.controller import TherapyController
from heartsong.therapy.learner import learn_settings_from_config, make_learner
from heartsong.therapy.resonance import BASELINE_FILE as RESONANCE_FILE
from heartsong.therapy.resonance import ResonanceStore
from heartsong.therapy.settings import tuning_from_config

log = logging.getLogger(__name__)


class SimWorld(World):
    """The simulated person hears the breath pacer while the sound plays."""

    def __init__(self, person: SimulatedPerson) -> None:
        self.person = person

    def on_targets(self, targets: SoundTargets) -> None:
        """Start or stop the person's breathing with the pacer."""
        pacer = targets.breath_rate_bpm if targets.playing else None
        self.person.set_pacer(pacer)


def make_engine(cfg: Config, seed: int = 0) -> AudioEngine:
    """The audio engine with the configured format, ceiling and fades."""
    return AudioEngine(
        sample_rate_hz=cfg.audio.sample_rate_hz,
        buffer_frames=cfg.audio.buffer_frames,
        max_volume_db=cfg.audio.max_volume_db,
        fade_s=cfg.audio.fade_s,
        crossfade_s=cfg.audio.crossfade_s,
        seed=seed,
    )


def make_sink(cfg: Config, engine: AudioEngine) -> Sink:
    """The sink named by ``audio.output``: a PortAudio device, a WAV file, or nothing."""
    if cfg.audio.output == "device":
        return PyAudioSink(engine, cfg.audio.device, require_device=not cfg.audio.wait_for_device)
    if cfg.audio.output == "wav":
        return WavSink(cfg.audio.wav_path, engine.sample_rate_hz)
    return NullSink()


def make_mqtt(cfg: Config, *, spool_path: Path | None) -> MqttLink | None:
    """The broker link when ``mqtt.enabled``; its outbox at ``spool_path`` (None = memory)."""
    if not cfg.mqtt.enabled:
        return None
    return MqttLink(
        cfg.mqtt,
        cfg.device.id,
        device_name=cfg.device.name,
        limits=CommandLimits(volume_max_db=cfg.audio.max_volume_db),
        publish=cfg.mqtt.publish,
        spool_path=spool_path,
        spool_max_messages=cfg.mqtt.spool_max_messages,
        command_rate_per_s=cfg.mqtt.command_rate_per_s,
        command_burst=cfg.mqtt.command_burst,
        password_env=cfg.mqtt.password_env,
        tls_insecure=cfg.mqtt.tls_insecure,
    )


def bedtime_wall(start_time: str) -> float:
    """Unix time of the most recent ``HH:MM`` local time, where a simulated night starts."""
    hh, mm = (int(p) for p in start_time.split(":"))
    now = dt.datetime.now().astimezone()
    start = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if start > now:
        start -= dt.timedelta(days=1)
    return start.timestamp()


def warm_up_simulation(fs_hz: float) -> None:
    """Run a throwaway person for a few simulated seconds so its kernels are compiled."""
    person = SimulatedPerson(PersonParams(), seed=0)
    synth = PpgSynth(person, fs_hz, seed=0)
    strap = SimulatedStrap(person)
    synth.read(int(3 * fs_hz))
    strap.notifications_until(3.0)


def person_params(cfg: Config) -> PersonParams:
    """The simulated person that ``[simulation]`` describes."""
    sim = cfg.simulation
    return PersonParams(
        hr_bpm=sim.hr_bpm,
        rmssd_ms=sim.rmssd_ms,
        breath_rate_bpm=sim.breath_rate_bpm,
        stress=sim.stress,
        follows_pacer=sim.follows_pacer,
        motion_artifacts_per_hour=sim.motion_artifacts_per_hour,
    )


def _model_dir(cfg: Config) -> Path | None:
    """``stress.model_dir``, or None for the models/ folder shipped with heartsong."""
    return Path(cfg.stress.model_dir) if cfg.stress.model_dir else None


def make_therapy(
    cfg: Config,
    state_dir: str | None,
    *,
    seed: int | None = None,
    estimator: StressEstimator | None = None,
) -> TherapyController:
    """The closed-loop therapy from ``[therapy]``.

    With ``state_dir``, what it learns about the person is kept there across sessions and
    reboots: the resonance breathing rate in ``baseline.json``, which soundscapes calm
    them in ``soundscape_preferences.json`` (both part of the person's data: exported and
    deleted with it). ``seed`` fixes the learner's random choices (the demo's). The
    stress response's stressed state uses the thresholds of ``estimator``'s model, and
    its smoothing counts the model's own (``[therapy] stress_tau_s`` is the whole delay).
    """
    t = cfg.therapy
    store = None if state_dir is None else ResonanceStore(Path(state_dir) / RESONANCE_FILE)
    learner = make_learner(
        learn_settings_from_config(t),
        state_dir,
        seed=seed,
        update_s=cfg.dsp.update_s,
    )
    levels = None
    upstream_tau_s = 0.0
    if isinstance(estimator, ModelEstimator):
        th = estimator.model.spec.thresholds
        levels = (th.stressed_enter, th.stressed_exit)
        upstream_tau_s = estimator.model.spec.tau_s
    return TherapyController(
        settings_from_config(cfg), tuning_from_config(t), store=store, learner=learner,
        stress_levels=levels, upstream_tau_s=upstream_tau_s,
    )


def make_recorder(
    cfg: Config, clock: Clock, state_dir: str | None = None
) -> SessionRecorder | None:
    """The session recorder writing ``<state_dir>/sessions.sqlite3``, or None when the store
    is off (``store.enabled = false``)."""
    if not cfg.store.enabled:
        return None
    writer = StoreWriter(
        db_path(state_dir or cfg.device.state_dir),
        flush_s=cfg.store.flush_s,
        retention_days=cfg.store.retention_days,
        wall=clock.wall,
    )
    return SessionRecorder(writer, record_beats=cfg.store.record_beats, update_s=cfg.dsp.update_s)


def build_demo(
    cfg: Config,
    *,
    speed: float,
    on_status: Callable[[Status], None] | None = None,
    state_dir: str | None = None,
) -> Appliance:
    """The whole device in simulation: a simulated person read by the sources, real DSP,
    policy and audio engine, and MQTT when configured. With ``state_dir`` the simulated
    session is recorded in that folder's session store (the device's own store is not
    touched by a demo)."""
    sim = cfg.simulation
    engine = make_engine(cfg, seed=sim.seed)
    # Compile the numba kernels before simulated time starts: at 100x, a second of
    # compiling would otherwise be 100 s of the night that nobody measured.
    engine.warm_up()
    dsp_warm_up()
    warm_up_simulation(sim.ppg_fs_hz)
    clock: Clock = ScaledClock(speed, start_wall=bedtime_wall(sim.start_time))
    person = SimulatedPerson(person_params(cfg), seed=sim.seed)
    sources: list[HeartSource] = []
    if cfg.sources.ppg:
        synth = PpgSynth(person, sim.ppg_fs_hz, seed=sim.seed + 1)
        sources.append(make_demo_ppg_source(synth, clock, cfg.sensor))
    if cfg.sources.ble:
        strap = SimulatedStrap(person)
        sources.append(make_demo_ble_source(strap, clock, cfg.ble, None, seed=sim.seed))
    estimator = make_stress_estimator(_model_dir(cfg))
    return Appliance(
        cfg,
        clock=clock,
        sources=sources,
        engine=engine,
        sink=make_sink(cfg, engine),
        estimator=estimator,
        mqtt=make_mqtt(cfg, spool_path=None),
        world=SimWorld(person),
        on_status=on_status,
        recorder=make_recorder(cfg, clock, state_dir) if state_dir else None,
        therapy=make_therapy(cfg, state_dir, seed=sim.seed, estimator=estimator),
    )


def build_device(cfg: Config, on_status: Callable[[Status], None] | None = None) -> Appliance:
    """The real device: hardware sources per config, the configured audio output, MQTT.

    The PPG source is the MAX30102 driver over smbus2 on the configured bus, the strap
    source the bleak client; a part that is missing (no sensor, no Bluetooth adapter or
    D-Bus) is reported once and retried in the background while the appliance runs with
    the rest (the other source, sound, MQTT).
    """
    clock = RealClock()
    sources: list[HeartSource] = []
    if cfg.sources.ppg:
        sources.append(make_device_ppg_source(cfg.sensor, clock))
    if cfg.sources.ble:
        sources.append(make_device_ble_source(cfg.ble, clock, cfg.device.state_dir))
    engine = make_engine(cfg)
    estimator = make_stress_estimator(_model_dir(cfg), Path(cfg.device.state_dir))
    app = Appliance(
        cfg,
        clock=clock,
        sources=sources,
        engine=engine,
        sink=make_sink(cfg, engine),
        estimator=estimator,
        mqtt=make_mqtt(cfg, spool_path=Path(cfg.device.state_dir) / OUTBOX_FILE),
        on_status=on_status,
        recorder=make_recorder(cfg, clock),
        notifier=SdNotifier.from_env(),
        therapy=make_therapy(cfg, cfg.device.state_dir, estimator=estimator),
    )
    app.controls = make_controls(
        cfg.controls,
        presets=tuple(PRESETS),
        volume_min_db=CommandLimits().volume_min_db,
        volume_max_db=cfg.audio.max_volume_db,
        settings=lambda: app.settings,
        send=app.on_command,
        timer_remaining_min=app.sleep_timer_remaining_min,
        breath_phase=lambda: engine.breath_phase,
        on_shutdown=app.request_power_off,
        now=clock.monotonic,
        wall=clock.wall,
    )
    return app
