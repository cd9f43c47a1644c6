"""The speaker sink: a PortAudio callback stream kept alive by an output supervisor.

:class:`PyAudioSink` opens the configured output (48 kHz stereo float32, the engine's
buffer size, callback mode) and starts a small daemon thread that steps its
:class:`~heartsong.audio.supervisor.OutputSupervisor` every ``poll_s`` seconds: when the
device disappears (a USB DAC unplugged) the appliance keeps running in silence, and the
sound fades back in when the device returns. The audio itself never passes through this
thread: PortAudio calls :meth:`AudioEngine.process_callback` on its own thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from heartsong.audio.engine import AudioEngine
from heartsong.audio.portaudio import OutputBackend, PortAudioBackend
from heartsong.audio.supervisor import Backoff, OutputSupervisor, SupervisorState
from heartsong.errors import AudioDeviceError, InputDataError

__all__ = ["ALSA_CARDS", "PyAudioSink", "alsa_cards"]

logger = logging.getLogger(__name__)

#: The kernel's list of sound cards (Linux); changes when a USB DAC comes or goes.
ALSA_CARDS: Final = Path("/proc/asound/cards")


def alsa_cards() -> str:
    """The text of ``/proc/asound/cards`` ("" where there is none): a device-list token."""
    try:
        return ALSA_CARDS.read_text(errors="replace")
    except OSError:
        return ""


class PyAudioSink:
    """Plays the engine through an audio output and reopens it if it is lost.

    The stream is opened at construction (so a missing device fails early, unless
    ``require_device`` is False) and starts on :meth:`start`.

    Parameters
    ----------
    engine:
        The engine whose :meth:`~AudioEngine.process_callback` feeds the stream.
    device_name:
        Case-insensitive part of the output device's name; empty = the default output.
    backend:
        Device access (default: PortAudio through PyAudio, imported now).
    require_device:
        True: raise if the output is missing now. False: start without it and open it when
        it appears (a bedside device booting with its DAC unplugged).
    backoff:
        Delays between reopen attempts (default 0.5 s doubling to 30 s).
    stall_s:
        Seconds without a callback after which a started stream counts as lost.
    poll_s:
        Seconds between two supervision steps.
    watch:
        Device-list token for the supervisor (default: :func:`alsa_cards`); None = none.

    Raises
    ------
    AudioDeviceError
        No matching output (the message lists the outputs found), or PortAudio refused to
        open the stream (only when ``require_device``).
    """

    realtime: Final = True

    def __init__(
        self,
        engine: AudioEngine,
        device_name: str = "",
        *,
        backend: OutputBackend | None = None,
        require_device: bool = True,
        backoff: Backoff | None = None,
        stall_s: float = 2.0,
        poll_s: float = 0.5,
        watch: Callable[[], object] | None = alsa_cards,
    ) -> None:
        if not (math.isfinite(poll_s) and poll_s > 0.0):
            raise InputDataError("poll_s", "a duration > 0 s", poll_s)
        self._engine = engine
        self._backend = backend if backend is not None else PortAudioBackend()
        self._poll_s = poll_s
        self._supervisor = OutputSupervisor(
            self._backend, engine, device_name, backoff=backoff, stall_s=stall_s, watch=watch
        )
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._closed = False
        try:
            self._supervisor.open()
        except AudioDeviceError as exc:
            if require_device:
                self._backend.close()
                raise
            self._supervisor.mark_lost(time.monotonic(), str(exc))
            return
        logger.info(
            "audio output %r opened: %d Hz, %d frames/buffer, latency %.1f ms",
            self._supervisor.device,
            engine.sample_rate_hz,
            engine.buffer_frames,
            1000.0 * self.latency_s,
        )

    @property
    def device(self) -> str:
        """Name of the output device in use (or last used)."""
        return self._supervisor.device

    @property
    def latency_s(self) -> float:
        """Output latency in seconds reported by PortAudio (0 while lost or closed)."""
        return self._supervisor.latency_s

    @property
    def is_active(self) -> bool:
        """True while the stream is running."""
        return self._supervisor.is_active

    @property
    def state(self) -> SupervisorState:
        """The supervisor's state: ``stopped``, ``playing``, ``lost`` or ``closed``."""
        return self._supervisor.state

    @property
    def supervisor(self) -> OutputSupervisor:
        """The output supervisor (reopen and loss counters)."""
        return self._supervisor

    def pump(self, engine: AudioEngine, seconds: float) -> int:
        """Render nothing and return 0: the device clock pulls audio through the callback.

        Present so the app can treat every sink alike; it validates ``seconds`` only.
        """
        engine.frames_for(seconds)
        return 0

    def start(self) -> None:
        """Warm the engine up if needed, start the stream and the supervision thread."""
        if self._closed:
            raise AudioDeviceError(f"audio output {self.device!r} is closed")
        if not self._engine.is_warm:
            self._engine.warm_up()
        self._supervisor.start(time.monotonic())
        if self._thread is None:
            self._halt.clear()
            self._thread = threading.Thread(
                target=self._supervise, name="audio-supervisor", daemon=True
            )
            self._thread.start()

    def _supervise(self) -> None:
        failures = 0
        while not self._halt.wait(self._poll_s):
            try:
                self._supervisor.poll(time.monotonic())
                failures = 0
            except Exception:  # the supervisor must outlive one bad step
                failures += 1
                if failures == 1:
                    logger.exception("audio output supervision step failed; continuing")

    def stop(self) -> None:
        """Stop the stream once its queued buffers have played (no-op when stopped)."""
        self._supervisor.stop()

    def close(self) -> None:
        """Stop the supervision, stop and close the stream, release PortAudio; safe twice."""
        if self._closed:
            return
        self._closed = True
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None
        try:
            self._supervisor.close()
        finally:
            self._backend.close()
            logger.info("audio output %r closed", self.device)

    def __enter__(self) -> PyAudioSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PyAudioSink({self.device!r}, {self.state})"
