"""The appliance: one asyncio loop wiring sources -> DSP -> stress -> policy -> audio, MQTT.

Parts are passed in (built by :mod:`heartsong.wiring` for the device or the simulation),
so the same loop runs on a Pi and in tests. Shutdown on SIGTERM/SIGINT or at the end of a
demo: the audio fades out, pending state is published, MQTT says ``offline``, and
:meth:`Appliance.run` returns 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from heartsong.audio.engine import AudioEngine
from heartsong.audio.sinks import Sink
from heartsong.clock import Clock
from heartsong.config import Config
from heartsong.controls.controller import Controls
from heartsong.controls.leds import LedStatus
from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.errors import InputDataError
from heartsong.events import Event, Metrics, PpgBlock, RrBlock, SoundTargets, SourceName
from heartsong.mqtt.apply import apply_command, sleep_timer_remaining_min
from heartsong.mqtt.commands import Command, call_on_loop
from heartsong.mqtt.link import MqttLink
from heartsong.sdnotify import SdNotifier, watchdog_interval_s, watchdog_pings
from heartsong.sensors.fusion import SourceFusion
from heartsong.sensors.sources import HeartSource
from heartsong.store.recorder import SessionRecorder, summary_for_mqtt
from heartsong.stress.estimator import StressEstimator
from heartsong.therapy.controller import TherapyController
from heartsong.therapy.explain import adaptation_event
from heartsong.therapy.policy import Decision, PolicySettings
from heartsong.therapy.settings import tuning_from_config

log = logging.getLogger(__name__)

#: A source counts as live while its last beat is younger than this, in seconds.
SOURCE_STALE_S = 10.0
#: Offline audio sinks (WAV) are rendered in steps of this much simulated time, in seconds.
AUDIO_PUMP_S = 0.1
#: Python's GIL switch interval while the appliance runs, seconds.
AUDIO_SWITCH_INTERVAL_S = 0.001
#: Recent metrics and events kept in memory: an hour at 5 s. The session store keeps the
#: whole night; a night's worth here would be most of the appliance's memory growth.
HISTORY_LEN = 720


@dataclass(frozen=True, slots=True)
class Status:
    """What the appliance reports after each metrics update (for the CLI's status line)."""

    metrics: Metrics
    targets: SoundTargets
    mode: str
    last_reason: str
    underruns: int
    #: Seconds since ``last_reason`` was given (None before the first).
    last_reason_age_s: float | None = None


def settings_from_config(cfg: Config) -> PolicySettings:
    """The user's settings at start-up, from the configuration."""
    return PolicySettings(
        mode=cfg.therapy.mode,
        soundscape=cfg.audio.soundscape,
        volume_db=cfg.audio.volume_db,
        breath_rate_bpm=cfg.therapy.breath_rate_bpm,
        sleep_timer_s=cfg.therapy.sleep_timer_min * 60.0,
    )


class World:
    """How the simulated world hears the device (the pacer); a no-op on real hardware."""

    def on_targets(self, targets: SoundTargets) -> None:
        """Called whenever the sound targets change."""


class Appliance:
    """The running device.

    Parameters
    ----------
    cfg:
        Validated configuration.
    clock:
        Real or scaled time.
    sources:
        Heart-signal sources (PPG, BLE strap, or their simulated counterparts).
    engine, sink:
        The audio engine and where its sound goes. A sink with ``realtime = True`` pulls
        audio itself (PortAudio callback); otherwise the appliance pumps it in clock time.
    estimator:
        The stress stage.
    mqtt:
        The broker link, or None when MQTT is off.
    world:
        The simulated world's hook, or None.
    on_status:
        Called after each metrics update (the CLI prints the status line).
    therapy:
        The closed-loop therapy (:class:`~heartsong.therapy.controller.TherapyController`);
        by default one built from ``cfg.therapy`` that keeps nothing across runs.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Clock,
        sources: list[HeartSource],
        engine: AudioEngine,
        sink: Sink,
        estimator: StressEstimator,
        mqtt: MqttLink | None = None,
        world: World | None = None,
        on_status: Callable[[Status], None] | None = None,
        recorder: SessionRecorder | None = None,
        notifier: SdNotifier | None = None,
        controls: Controls | None = None,
        therapy: TherapyController | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.sources = sources
        self.engine = engine
        self.sink = sink
        self.estimator = estimator
        self.mqtt = mqtt
        self.world = world or World()
        self.on_status = on_status
        self.recorder = recorder
        self.notifier = notifier or SdNotifier(None)
        self.controls = controls
        self.fault = False
        self.power_off_requested = False
        self.pipelines: dict[SourceName, StreamingPipeline] = {
            src.name: StreamingPipeline(window_s=cfg.dsp.window_s, update_s=cfg.dsp.update_s)
            for src in sources
        }
        self.fusion = SourceFusion(
            cfg.sources.preferred,
            stale_s={"ble": cfg.ble.stall_timeout_s, "ppg": SOURCE_STALE_S},
        )
        self.settings = settings_from_config(cfg)
        self.therapy = therapy or TherapyController(
            self.settings, tuning_from_config(cfg.therapy)
        )
        self.targets: SoundTargets | None = None
        self.tempo_bpm: float | None = None
        self.last_reason = ""
        self._last_reason_s: float | None = None
        self.events: deque[Event] = deque(maxlen=HISTORY_LEN)
        self.metrics_history: deque[Metrics] = deque(maxlen=HISTORY_LEN)
        self.rejected_blocks = 0
        self.active_source: SourceName = "none"
        self._stop = asyncio.Event()
        self._t_start = 0.0
        self._session_t0 = 0.0  # the session clock restarts on "start session"
        self._audio_rendered_s = 0.0

    # -- inputs -----------------------------------------------------------------------
    def on_block(self, block: PpgBlock | RrBlock) -> None:
        """Feed one block from a source into that source's DSP pipeline.

        A block the pipeline rejects (malformed data from outside) is counted and dropped;
        the first rejection, and every hundredth after it, is logged.
        """
        name: SourceName = "ppg" if isinstance(block, PpgBlock) else "ble"
        try:
            if isinstance(block, PpgBlock):
                beats = self.pipelines[name].feed_ppg(block)
            else:
                beats = self.pipelines[name].feed_rr(block)
        except InputDataError as exc:
            self.rejected_blocks += 1
            if self.rejected_blocks % 100 == 1:
                log.warning(
                    "dropped a malformed %s block: %s", name, exc,
                    extra={"fields": {"rejected_blocks": self.rejected_blocks}},
                )
            return
        self.fusion.observe(
            name, self.clock.monotonic(), beats=int(beats.size), contact=block.contact
        )
        if self.recorder is not None and beats.size and name == self.active_source:
            # Only the active source's beats: the exported RR series is one timeline.
            if isinstance(block, RrBlock):
                rr = block.rr_ms if block.rr_ms.size == beats.size else None
                self.recorder.on_beats(beats, name, rr_ms=rr, gap_before=block.gap_before)
            else:
                self.recorder.on_beats(beats, name, gap_before=block.gap_samples > 0)

    def request_power_off(self) -> None:
        """Stop cleanly, then let the caller power the device off (the held play button)."""
        self.power_off_requested = True
        self._emit("session", "safe shutdown requested: stopping, then powering off")
        self.request_stop()

    def request_stop(self) -> None:
        """Ask the appliance to shut down cleanly (signal handlers call this)."""
        if not self._stop.is_set():
            log.info("stop requested")
        self._stop.set()

    # -- decisions --------------------------------------------------------------------
    def _choose_source(self, now: float) -> SourceName:
        return self.fusion.choose(now)

    def _emit(self, kind: str, message: str, **data: object) -> None:
        self._record(Event(self.clock.monotonic(), self.clock.wall(), kind, message, dict(data)))

    def _record(self, event: Event) -> None:
        """Keep ``event`` in memory and in the store, and log it."""
        self.events.append(event)
        if self.recorder is not None:
            self.recorder.on_event(event)
        log.info(event.message, extra={"fields": {"event": event.kind, **event.data}})

    def update(self) -> Status:
        """One metrics update: DSP window -> stress -> policy -> audio targets -> MQTT."""
        now = self.clock.monotonic()
        source = self._choose_source(now)
        if source != self.active_source:
            self._emit(
                "source",
                f"heart source {self.active_source} -> {source}: {self.fusion.reason}",
                source=source,
            )
            self.active_source = source
        if source == "none":
            metrics = Metrics(
                t_s=now,
                wall_s=self.clock.wall(),
                source="none",
                reasons={"hr_bpm": "no heart source is delivering beats"},
            )
        else:
            metrics = self.pipelines[source].metrics(now, self.clock.wall(), source)
        est = self.estimator.estimate(metrics)
        reasons = dict(metrics.reasons)
        if est.reason:
            reasons["p_stress"] = est.reason
        metrics = dataclasses.replace(
            metrics, p_stress=est.p_stress, stress_state=est.state, reasons=reasons
        )
        self.metrics_history.append(metrics)
        self._apply(self.therapy.step(metrics, est, now, metrics.wall_s))
        if self.recorder is not None:
            t = self.targets_or_default
            self.recorder.on_metrics(
                metrics,
                pacer_bpm=t.breath_rate_bpm if t.playing else None,
                soundscape=t.soundscape,
            )
        if self.mqtt is not None:
            self.mqtt.offer_state(self.state_document(metrics), now)
        status = Status(
            metrics, self.targets_or_default, self.mode, self.last_reason,
            self.engine.underruns,
            None if self._last_reason_s is None else now - self._last_reason_s,
        )
        if self.on_status is not None:
            self.on_status(status)
        self.notifier.status(
            f"{source}: HR {metrics.hr_bpm or 0:.0f} bpm, {status.targets.soundscape}, "
            f"{self.mode}"
        )
        if self.controls is not None:
            t = status.targets
            self.controls.show(
                LedStatus(
                    fault=self.fault,
                    contact=source != "none",
                    strap_connecting=self.cfg.sources.ble and not self.fusion.is_good("ble", now),
                    broker_online=None if self.mqtt is None else self.mqtt.connected,
                    playing=t.playing,
                    pacing=t.breath_rate_bpm is not None,
                    stress_state=metrics.stress_state,
                )
            )
        return status

    def _arm_sleep_timer(self) -> None:
        """Let the engine fade slowly so the sound is gone when the sleep timer runs out."""
        remaining_s = self.sleep_timer_remaining_min() * 60.0
        if remaining_s <= 0:
            self.engine.set_sleep_timer(None)
            return
        fade_s = min(self.cfg.therapy.sleep_fade_min * 60.0, remaining_s)
        self.engine.set_sleep_timer(remaining_s - fade_s, fade_s=fade_s)

    def sleep_timer_remaining_min(self) -> float:
        """Minutes until the sleep timer stops the sound (0 when off)."""
        return sleep_timer_remaining_min(self.settings, self.clock.monotonic() - self._session_t0)

    @property
    def mode(self) -> str:
        """The session's mode now: the user's, or ``sleep`` after detected sleep onset."""
        return self.therapy.mode

    @property
    def targets_or_default(self) -> SoundTargets:
        """The targets in force (the configured soundscape before the first decision)."""
        return self.targets or SoundTargets(self.settings.soundscape)

    def _apply(self, decision: Decision) -> None:
        if decision.targets != self.targets:
            self.targets = decision.targets
            self.engine.set_targets(decision.targets)
            self.world.on_targets(decision.targets)
            if self.recorder is not None:  # the session's soundscapes: what really played
                self.recorder.on_soundscape(decision.targets.soundscape)
        if decision.tempo_bpm is not None and decision.tempo_bpm != self.tempo_bpm:
            self.engine.set_params(tempo_bpm=decision.tempo_bpm)
        self.tempo_bpm = decision.tempo_bpm
        # Each adaptation carries what moved, from what to what; the foundation's own
        # changes (the sleep timer, a command) come as reasons without one.
        described = {a.message: a for a in decision.adaptations}
        if decision.reasons:
            self.last_reason = decision.reasons[-1]
            self._last_reason_s = self.clock.monotonic()
        for reason in decision.reasons:
            a = described.get(reason)
            if a is None:
                self._emit("adaptation", reason)
            else:
                self._record(adaptation_event(a, self.clock.monotonic(), self.clock.wall()))

    def state_document(self, metrics: Metrics) -> dict[str, object]:
        """The JSON state published on ``heartsong/<id>/state``."""
        doc = metrics.as_dict()
        t = self.targets_or_default
        doc.update(
            mode=self.mode,
            soundscape=t.soundscape,
            playing=t.playing,
            volume_db=self.settings.volume_db,
            sleep_timer_min=sleep_timer_remaining_min(
                self.settings, self.clock.monotonic() - self._session_t0
            ),
            pacer_bpm=t.breath_rate_bpm,
            audio_underruns=self.engine.underruns,
            last_adaptation=self.last_reason or None,
            soundscape_reason=self.therapy.soundscape_reason or None,
        )
        return doc

    def on_command(self, command: Command) -> None:
        """Apply one validated MQTT command; runs on the appliance's loop."""
        now = self.clock.monotonic()
        applied = apply_command(
            self.settings,
            command,
            session_elapsed_s=now - self._session_t0,
            configured_sleep_timer_s=self.cfg.therapy.sleep_timer_min * 60.0,
            playing_soundscape=self.targets_or_default.soundscape,
            mode_now=self.mode,
        )
        timer_before = self.settings.sleep_timer_s
        self.settings = applied.settings
        if applied.restart_session:
            self._session_t0 = now
            if self.recorder is not None:
                self.recorder.start_session(self.clock.wall(), self.settings.mode)
        if applied.restart_session or self.settings.sleep_timer_s != timer_before:
            self._arm_sleep_timer()
        self._emit("command", applied.reason, command=type(command).__name__)
        latest = self.metrics_history[-1] if self.metrics_history else None
        wall = self.clock.wall()
        if applied.restart_session:
            self._apply(self.therapy.start(now, wall, self.settings))
        else:
            self._apply(self.therapy.update_settings(
                self.settings, now, wall, chose_soundscape=applied.chose_soundscape,
                chose_mode=applied.chose_mode,
            ))
        if self.mqtt is not None and latest is not None:
            self.mqtt.publish_state(self.state_document(latest))

    # -- tasks ------------------------------------------------------------------------
    async def _updates(self) -> None:
        # A fixed cadence (not "sleep after each update"), so the time an update takes
        # does not stretch the interval; a late update is not repeated to catch up.
        period = self.cfg.dsp.update_s
        due = self.clock.monotonic() + period
        while True:
            await self.clock.sleep(due - self.clock.monotonic())
            due += period
            if due <= self.clock.monotonic():
                due = self.clock.monotonic() + period
            try:
                self.update()
            except Exception:  # one bad update must not end the night's updates
                log.exception("metrics update failed; retrying at the next update")

    async def _audio_pump(self) -> None:
        while True:
            await self.clock.sleep(AUDIO_PUMP_S)
            self._pump_audio_to(self.clock.monotonic() - self._t_start)

    def _pump_audio_to(self, t_s: float) -> None:
        if t_s > self._audio_rendered_s:
            self.sink.pump(self.engine, t_s - self._audio_rendered_s)
            self._audio_rendered_s = t_s

    async def _source(self, src: HeartSource) -> None:
        try:
            await src.run(self.on_block)
        except asyncio.CancelledError:
            raise
        except Exception:  # a source fault must not take the appliance down
            log.exception("source %s failed; continuing without it", src.name)
            self.fault = True
            self._emit("fault", f"source {src.name} stopped", source=src.name)

    async def run(self, duration_s: float | None = None) -> int:
        """Run until stopped (signal, :meth:`request_stop`) or ``duration_s`` of clock time.

        Returns the process exit code (0 after a clean shutdown).
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop)
        self._t_start = self._session_t0 = self.clock.monotonic()
        if self.recorder is not None:
            self.recorder.start_session(self.clock.wall(), self.settings.mode)
        self.engine.warm_up()
        for pipe in self.pipelines.values():
            pipe.warm_up()
        # Everything allocated so far lives for the whole run: keep the collector from
        # walking it, which shortens the pauses that can hold the GIL from the audio thread.
        gc.collect()
        gc.freeze()
        self._apply(self.therapy.start(self._t_start, self.clock.wall()))
        self._arm_sleep_timer()
        if self.mqtt is not None:
            self.mqtt.start(on_command=call_on_loop(loop, self.on_command))
        self.sink.start()
        tasks = [
            asyncio.create_task(self._source(s), name=f"source-{s.name}") for s in self.sources
        ]
        tasks.append(asyncio.create_task(self._updates(), name="updates"))
        if not self.sink.realtime:
            tasks.append(asyncio.create_task(self._audio_pump(), name="audio-pump"))
        interval = watchdog_interval_s()
        if interval is not None:
            tasks.append(
                asyncio.create_task(watchdog_pings(self.notifier, interval), name="watchdog")
            )
        if self.controls is not None:
            tasks.append(asyncio.create_task(self.controls.run(), name="controls"))
        self.notifier.ready("running")
        log.info(
            "heartsong running",
            extra={
                "fields": {"sources": [s.name for s in self.sources], "clock": repr(self.clock)}
            },
        )
        # The audio callback (PortAudio's thread) needs the GIL for every block (5.3 ms
        # at 256 frames); a Python thread holds it up to the switch interval (5 ms by
        # default) before handing over. 1 ms keeps that wait a fraction of a block. The
        # DSP and simulator kernels release the GIL while they run (nogil). Restored in
        # the finally below, so a failed start cannot leave it set.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(AUDIO_SWITCH_INTERVAL_S)
        try:
            if duration_s is None:
                await self._stop.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), duration_s / self.clock.speed)
        finally:
            self.notifier.stopping("fading out")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._shutdown()
            if self.controls is not None:
                self.controls.close()
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
            sys.setswitchinterval(switch_interval)
        return 0

    async def _shutdown(self) -> None:
        fade_s = self.cfg.audio.fade_s
        self.engine.fade_out(fade_s)  # first: the sound answers the stop at once
        try:
            self.therapy.close()  # keep what the session taught (written during the fade)
        except OSError as exc:
            log.warning("could not save what the therapy learnt this session: %s", exc)
        if self.sink.realtime:
            deadline = self.clock.monotonic() + fade_s + 1.0
            while not self.engine.is_silent and self.clock.monotonic() < deadline:
                await self.clock.sleep(0.05)
        else:
            self._pump_audio_to(self._audio_rendered_s + fade_s + 0.1)
        self.sink.close()
        summary = None
        if self.recorder is not None:
            summary = self.recorder.end_session(self.clock.wall())
        if self.mqtt is not None:
            if self.metrics_history:
                self.mqtt.publish_state(self.state_document(self.metrics_history[-1]))
            if summary is not None:
                self.mqtt.publish_summary(summary_for_mqtt(summary, self.mqtt.privacy.publishes))
            await asyncio.to_thread(self.mqtt.stop)
        if self.recorder is not None:
            await asyncio.to_thread(self.recorder.close)
        log.info("heartsong stopped cleanly")
