"""Keeps the audio output open: notices a lost device and reopens it when it comes back.

A USB DAC can be unplugged at night; the appliance must keep running (the heart keeps
being measured, MQTT keeps publishing) and play again when the DAC returns. The
:class:`OutputSupervisor` is a small state machine that owns the output stream and is
stepped by :meth:`~OutputSupervisor.poll` (a thread of the device sink calls it every
half second; tests call it with their own clock)::

    stopped --start--> playing --(stream inactive | no callback for stall_s
       ^                  |       | callback error)--> lost
       |                  v                              |
       +------stop------ ...      lost --(attempt at back-off time, or the device list
                                          changed)--> rescan, find, open --ok--> playing
                                                                       --fail--> lost

Each step logs once: a warning when the output is lost, one line per failed attempt until
the back-off reaches its longest delay (then one line saying it keeps retrying quietly),
and one line when the output is back. Retries back off exponentially
(``Backoff``), so an absent device costs one PortAudio scan every ``max_s`` seconds.
After a reopen the engine fades in from silence (``AudioEngine.resume_from_silence``).
The supervisor never touches the audio callback's data; it reads the engine's frame
counter, which the callback advances, to see that callbacks still arrive.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from heartsong.audio.engine import AudioEngine
from heartsong.audio.portaudio import OutputBackend, OutputDevice, OutputStream, find_output
from heartsong.errors import AudioDeviceError, InputDataError

__all__ = ["Backoff", "OutputSupervisor", "SupervisorState"]

logger = logging.getLogger(__name__)

SupervisorState = Literal["stopped", "playing", "lost", "closed"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reopen attempts: ``first_s * factor**(attempt - 1)``, at most ``max_s``.

    Attributes
    ----------
    first_s:
        Seconds before the first attempt after a loss (> 0).
    factor:
        Growth per failed attempt (>= 1).
    max_s:
        Longest delay in seconds (>= ``first_s``).
    """

    first_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.first_s) and self.first_s > 0.0):
            raise InputDataError("backoff.first_s", "a duration > 0 s", self.first_s)
        if not (math.isfinite(self.factor) and self.factor >= 1.0):
            raise InputDataError("backoff.factor", "a number >= 1", self.factor)
        if not (math.isfinite(self.max_s) and self.max_s >= self.first_s):
            raise InputDataError("backoff.max_s", f"a duration >= {self.first_s:g} s", self.max_s)

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1 = the first after a loss)."""
        exponent = min(max(attempt - 1, 0), 64)
        return float(min(self.max_s, self.first_s * self.factor**exponent))


class OutputSupervisor:
    """Owns one output stream for an engine and reopens it after the device is lost.

    Parameters
    ----------
    backend:
        Lists devices and opens streams (:class:`~heartsong.audio.portaudio.PortAudioBackend`
        on the device, a fake in tests).
    engine:
        Whose :meth:`~AudioEngine.process_callback` feeds the stream.
    device_name:
        Case-insensitive part of the output's name; "" = the default output.
    backoff:
        Delays between reopen attempts.
    stall_s:
        Seconds without a callback (frame counter not moving) after which a started stream
        counts as lost even if the backend still calls it active.
    watch:
        Returns something that changes when the system's audio devices change (e.g. the
        text of ``/proc/asound/cards``); a change while lost triggers an attempt at once.
        None: no watching.
    """

    def __init__(
        self,
        backend: OutputBackend,
        engine: AudioEngine,
        device_name: str = "",
        *,
        backoff: Backoff | None = None,
        stall_s: float = 2.0,
        watch: Callable[[], object] | None = None,
    ) -> None:
        if not (math.isfinite(stall_s) and stall_s > 0.0):
            raise InputDataError("stall_s", "a duration > 0 s", stall_s)
        self._backend = backend
        self._engine = engine
        self._wanted = device_name
        self._backoff = backoff or Backoff()
        self._stall_s = stall_s
        self._watch = watch
        self._lock = threading.Lock()
        self._stream: OutputStream | None = None
        self._device: OutputDevice | None = None
        self._state: SupervisorState = "stopped"
        self._want_play = False
        self._attempt = 0
        self._next_try = 0.0
        self._lost_at = 0.0
        self._quiet = False
        self._reopens = 0
        self._losses = 0
        self._last_frames = -1
        self._last_progress = 0.0
        self._seen_error: BaseException | None = engine.callback_error
        self._token: object = watch() if watch is not None else None

    # ----------------------------------------------------------------- properties
    @property
    def state(self) -> SupervisorState:
        """``stopped``, ``playing``, ``lost`` (retrying) or ``closed``."""
        return self._state

    @property
    def device(self) -> str:
        """Name of the output in use (or last used); "" before the first open."""
        return self._device.name if self._device is not None else ""

    @property
    def reopen_count(self) -> int:
        """Times the output was reopened after a loss."""
        return self._reopens

    @property
    def loss_count(self) -> int:
        """Times the output was lost."""
        return self._losses

    @property
    def attempts(self) -> int:
        """Reopen attempts since the current loss (0 when not lost)."""
        return self._attempt

    @property
    def next_attempt_at(self) -> float | None:
        """Clock time of the next reopen attempt while lost, else None."""
        return self._next_try if self._state == "lost" else None

    @property
    def latency_s(self) -> float:
        """Output latency the backend reports in seconds (0 without a stream)."""
        return self._stream.latency_s if self._stream is not None else 0.0

    @property
    def is_active(self) -> bool:
        """True while a stream is open and its callback is being called."""
        return self._stream is not None and self._stream.is_active()

    # ----------------------------------------------------------------- transitions
    def open(self) -> None:
        """Find the device and open a stopped stream on it now.

        Raises
        ------
        AudioDeviceError
            No matching device (the outputs found are listed), or it refused the stream.
        """
        with self._lock:
            self._open_stream()

    def mark_lost(self, now: float, reason: str) -> None:
        """Enter ``lost`` (e.g. the device was missing at start-up); attempts follow."""
        with self._lock:
            self._lose(now, reason)

    def start(self, now: float) -> None:
        """Start the stream (or, while lost, play as soon as it is reopened)."""
        with self._lock:
            self._want_play = True
            if self._state == "stopped" and self._stream is None:  # stopped while lost
                self._state = "lost"
                self._attempt = 0
                self._next_try = now
                return
            if self._stream is not None and self._state == "stopped":
                try:
                    self._stream.start()
                except AudioDeviceError as exc:
                    self._lose(now, str(exc))
                    return
                self._state = "playing"
                self._last_frames = self._engine.frames_rendered
                self._last_progress = now

    def stop(self) -> None:
        """Stop the stream (it plays out what is queued); a lost output stops retrying."""
        with self._lock:
            self._want_play = False
            if self._state == "playing" and self._stream is not None:
                try:
                    self._stream.stop()
                except AudioDeviceError as exc:
                    logger.warning("%s", exc)
                self._state = "stopped"
            elif self._state == "lost":
                self._state = "stopped"

    def close(self) -> None:
        """Stop and close the stream for good (safe twice)."""
        with self._lock:
            if self._state == "closed":
                return
            self._want_play = False
            self._close_stream()
            self._state = "closed"

    def poll(self, now: float) -> None:
        """One supervision step at clock time ``now`` (seconds, monotonic)."""
        with self._lock:
            changed = self._devices_changed()
            if self._state == "playing":
                reason = self._health(now)
                if reason is not None:
                    self._lose(now, reason)
            elif self._state == "lost" and (now >= self._next_try or changed):
                self._attempt_reopen(now, changed)

    # ----------------------------------------------------------------- internals
    def _devices_changed(self) -> bool:
        if self._watch is None:
            return False
        try:
            token = self._watch()
        except OSError:
            return False
        if token == self._token:
            return False
        self._token = token
        logger.debug("the system's audio devices changed")
        return True

    def _health(self, now: float) -> str | None:
        """Why the playing stream counts as lost, or None when it is fine."""
        assert self._stream is not None
        if not self._stream.is_active():
            return "the stream stopped"
        error = self._engine.callback_error
        if error is not None and error is not self._seen_error:
            self._seen_error = error
            return f"the audio callback failed: {error!r}"
        frames = self._engine.frames_rendered
        if frames != self._last_frames:
            self._last_frames = frames
            self._last_progress = now
        elif now - self._last_progress >= self._stall_s:
            return f"no audio callback for {now - self._last_progress:.1f} s"
        return None

    def _lose(self, now: float, reason: str) -> None:
        name = self.device or self._wanted or "(default)"
        logger.warning(
            "audio output %r lost: %s; the device keeps running and will reopen it", name, reason
        )
        self._close_stream()
        self._losses += 1
        self._state = "lost"
        self._attempt = 0
        self._quiet = False
        self._lost_at = now
        self._next_try = now + self._backoff.delay_s(1)

    def _attempt_reopen(self, now: float, changed: bool) -> None:
        self._attempt += 1
        try:
            self._backend.rescan()
            self._open_stream()
            # Before start: PortAudio may call back before start() returns, and the first
            # block must already fade in from silence (not start at the old level).
            self._engine.resume_from_silence()
            if self._want_play:
                assert self._stream is not None
                self._stream.start()
        except AudioDeviceError as exc:
            self._close_stream()
            self._state = "lost"
            delay = self._backoff.delay_s(self._attempt + 1)
            self._next_try = now + delay
            why = " (the device list changed)" if changed else ""
            if not self._quiet:
                if delay >= self._backoff.max_s:
                    logger.info(
                        "audio output still unavailable after %d attempts%s: %s; retrying "
                        "every %.0f s from now on",
                        self._attempt,
                        why,
                        exc,
                        delay,
                    )
                    self._quiet = True
                else:
                    logger.info(
                        "audio output unavailable (attempt %d%s): %s; next try in %.1f s",
                        self._attempt,
                        why,
                        exc,
                        delay,
                    )
            else:
                logger.debug("audio output attempt %d failed: %s", self._attempt, exc)
            return
        self._reopens += 1
        self._state = "playing" if self._want_play else "stopped"
        self._last_frames = self._engine.frames_rendered
        self._last_progress = now
        logger.info(
            "audio output %r reopened after %d attempt(s), %.1f s without it",
            self.device,
            self._attempt,
            now - self._lost_at,
        )
        self._attempt = 0

    def _open_stream(self) -> None:
        device = find_output(self._backend, self._wanted)
        self._stream = self._backend.open(
            device,
            self._engine.sample_rate_hz,
            self._engine.buffer_frames,
            self._engine.process_callback,
        )
        self._device = device
        self._state = "stopped"

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.stop()
        except AudioDeviceError as exc:
            logger.debug("stopping the lost stream: %s", exc)
        try:
            stream.close()
        except AudioDeviceError as exc:
            logger.debug("closing the lost stream: %s", exc)

    def __repr__(self) -> str:
        return (
            f"OutputSupervisor({self.device or self._wanted or '(default)'!r}, {self._state}, "
            f"reopened {self._reopens}x)"
        )
