"""A USB DAC that can be unplugged: an audio backend whose stream pulls like PortAudio.

:class:`PluggableDac` speaks the :class:`heartsong.audio.portaudio.OutputBackend`
protocol. Its stream calls the engine's real callback from a thread of its own at the
device's pace (a few buffers every 20 ms of real time), as PortAudio's callback thread
would. :meth:`PluggableDac.unplug` makes the device vanish from the list and stops the
running stream under the sink (PortAudio reports the stream inactive); :meth:`plug`
brings it back. :meth:`token` is the device-watch hook the supervisor polls (it changes
whenever the device list changes, like ``/proc/asound/cards``).
"""

from __future__ import annotations

import threading
import time

from heartsong.audio.portaudio import OutputDevice, StreamCallback
from heartsong.errors import AudioDeviceError

DAC = OutputDevice(1, "USB Audio DAC: - (hw:1,0)", "ALSA", 2, 0.008)
#: Real seconds between two wake-ups of the fake callback thread.
PULL_EVERY_S = 0.02


class PullingStream:
    """An output stream whose callback runs on a thread at the device's sample rate."""

    def __init__(self, dac: PluggableDac, rate_hz: int, frames: int,
                 callback: StreamCallback) -> None:
        self._dac = dac
        self._rate = rate_hz
        self._frames = frames
        self._callback = callback
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.blocks = 0

    def start(self) -> None:
        if not self._dac.present:
            raise AudioDeviceError("PortAudio: device unavailable (unplugged)")
        if self._thread is None:
            self._halt.clear()
            self._thread = threading.Thread(target=self._pull, name="fake-portaudio",
                                            daemon=True)
            self._thread.start()

    def _pull(self) -> None:
        t0 = time.monotonic()
        while not self._halt.wait(PULL_EVERY_S):
            due = int((time.monotonic() - t0) * self._rate / self._frames)
            while self.blocks < due and self._dac.present and not self._halt.is_set():
                self._callback(None, self._frames, None, 0)
                self.blocks += 1
            if not self._dac.present:
                return  # the device went away: the callback stops being called

    def stop(self) -> None:
        self._halt.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)

    def close(self) -> None:
        self.stop()

    def is_active(self) -> bool:
        return self._thread is not None and self._dac.present and self._thread.is_alive()

    @property
    def latency_s(self) -> float:
        return DAC.default_low_latency_s


class PluggableDac:
    """The backend: one USB DAC that is present or not."""

    def __init__(self) -> None:
        self.present = True
        self._generation = 0
        self.opens = 0

    def token(self) -> object:
        """The device-watch hook: changes whenever the DAC comes or goes."""
        return self._generation

    def unplug(self) -> None:
        """The DAC disappears; its running stream stops being called."""
        self.present = False
        self._generation += 1

    def plug(self) -> None:
        """The DAC is back (a new stream must be opened on it)."""
        self.present = True
        self._generation += 1

    def devices(self) -> list[OutputDevice]:
        return [DAC] if self.present else []

    def default_device(self) -> OutputDevice | None:
        return DAC if self.present else None

    def rescan(self) -> None:
        """Nothing to do: :meth:`devices` is always current."""

    def open(self, device: OutputDevice, rate_hz: int, frames: int,
             callback: StreamCallback) -> PullingStream:
        if not self.present:
            raise AudioDeviceError(f"PortAudio cannot open {device.name!r}: no such device")
        self.opens += 1
        return PullingStream(self, rate_hz, frames, callback)

    def close(self) -> None:
        """Release the backend (nothing held)."""
