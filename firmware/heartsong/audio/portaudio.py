"""The audio-output backend behind a narrow interface: PortAudio through PyAudio, or a fake.

The device sink (``heartsong.audio.device_sink``) and its supervisor talk only to an
:class:`OutputBackend`: list the output devices (a fresh scan), open a callback stream on
one, and the stream's start/stop/close/is_active. :class:`PortAudioBackend` is the real
one; tests pass a fake that speaks the same protocol (and the JACK tests a real backend on
the JACK dummy server). PyAudio is imported only when a :class:`PortAudioBackend` first
needs PortAudio.

PortAudio enumerates devices once, in ``Pa_Initialize``: to see a device that was plugged
in later, :meth:`PortAudioBackend.rescan` terminates and initialises it again, which is
only possible while this process has no other PortAudio stream or ``PyAudio`` instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from heartsong.audio.c_noise import quiet_audio_libraries
from heartsong.errors import AudioDeviceError

__all__ = [
    "OutputBackend",
    "OutputDevice",
    "OutputStream",
    "PortAudioBackend",
    "StreamCallback",
    "find_output",
    "list_output_devices",
]

logger = logging.getLogger(__name__)

#: The PyAudio stream-callback signature: (in_data, frames, time_info, status) -> (bytes, flag).
StreamCallback = Callable[[bytes | None, int, Any, int], tuple[bytes, int]]


@dataclass(frozen=True, slots=True)
class OutputDevice:
    """An audio output as the backend lists it.

    Attributes
    ----------
    index:
        The backend's device index (valid until the next rescan).
    name:
        Device name (e.g. ``"USB Audio DAC: - (hw:1,0)"``, ``"system"`` on JACK).
    host_api:
        The driver API (``"ALSA"``, ``"JACK Audio Connection Kit"``).
    channels:
        Maximum output channels.
    default_low_latency_s:
        The device's default low output latency in seconds (what PyAudio asks for).
    """

    index: int
    name: str
    host_api: str
    channels: int
    default_low_latency_s: float


@runtime_checkable
class OutputStream(Protocol):
    """An open callback stream (the members the sink uses)."""

    def start(self) -> None:
        """Start calling the callback."""
        ...

    def stop(self) -> None:
        """Stop once the queued buffers have played."""
        ...

    def close(self) -> None:
        """Release the stream."""
        ...

    def is_active(self) -> bool:
        """True while the callback is being called (False once stopped, ended or failed)."""
        ...

    @property
    def latency_s(self) -> float:
        """Output latency the backend reports, in seconds."""
        ...


@runtime_checkable
class OutputBackend(Protocol):
    """Finds output devices and opens streams on them."""

    def devices(self) -> list[OutputDevice]:
        """The output devices known since the last scan."""
        ...

    def default_device(self) -> OutputDevice | None:
        """The system's default output, or None."""
        ...

    def rescan(self) -> None:
        """Scan for devices again (only while no stream of this backend is open)."""
        ...

    def open(
        self, device: OutputDevice, rate_hz: int, frames: int, callback: StreamCallback
    ) -> OutputStream:
        """Open a stopped float32 stereo callback stream on ``device``.

        Raises
        ------
        AudioDeviceError
            The device refused the format or is gone.
        """
        ...

    def close(self) -> None:
        """Release the backend (safe twice)."""
        ...


def find_output(backend: OutputBackend, wanted: str) -> OutputDevice:
    """The output whose name contains ``wanted`` (case-insensitive); "" = the default output.

    Raises
    ------
    AudioDeviceError
        No such output; the message lists the outputs found.
    """
    outputs = backend.devices()
    listing = ", ".join(repr(d.name) for d in outputs) or "none"
    if not wanted:
        device = backend.default_device()
        if device is None:
            raise AudioDeviceError(f"no default audio output; outputs found: {listing}")
        return device
    folded = wanted.casefold()
    for device in outputs:
        if folded in device.name.casefold():
            return device
    raise AudioDeviceError(
        f"no audio output whose name contains {wanted!r}; outputs found: {listing}"
    )


def _import_pyaudio() -> Any:
    """Import PyAudio on demand (the package imports on machines without it)."""
    try:
        import pyaudio
    except ImportError as exc:  # pragma: no cover - pyaudio is a dependency
        raise AudioDeviceError(f"PyAudio is not installed: {exc}") from exc
    return pyaudio


class _PyAudioStream:
    """A PyAudio stream seen through :class:`OutputStream` (OSError -> AudioDeviceError)."""

    def __init__(self, stream: Any, name: str) -> None:
        self._stream = stream
        self._name = name

    def start(self) -> None:
        try:
            self._stream.start_stream()
        except OSError as exc:
            raise AudioDeviceError(f"cannot start audio output {self._name!r}: {exc}") from exc

    def stop(self) -> None:
        try:
            if not self._stream.is_stopped():
                self._stream.stop_stream()
        except (OSError, ValueError) as exc:
            raise AudioDeviceError(f"cannot stop audio output {self._name!r}: {exc}") from exc

    def close(self) -> None:
        # stop first: PortAudio's JACK host asserts when a running stream is closed
        self.stop()
        try:
            self._stream.close()
        except (OSError, ValueError) as exc:
            raise AudioDeviceError(f"cannot close audio output {self._name!r}: {exc}") from exc

    def is_active(self) -> bool:
        try:
            return bool(self._stream.is_active())
        except (OSError, ValueError):  # closed under us ("Stream closed") or the device is gone
            return False

    @property
    def latency_s(self) -> float:
        try:
            return float(self._stream.get_output_latency())
        except (OSError, ValueError):
            return 0.0


class PortAudioBackend:
    """:class:`OutputBackend` on PortAudio (PyAudio); PortAudio starts on first use."""

    def __init__(self) -> None:
        self._pa: Any = None
        self._pyaudio: Any = None

    def _portaudio(self) -> Any:
        if self._pa is None:
            self._pyaudio = _import_pyaudio()
            quiet_audio_libraries()
            try:
                self._pa = self._pyaudio.PyAudio()
            except OSError as exc:
                raise AudioDeviceError(f"PortAudio could not start: {exc}") from exc
        return self._pa

    def devices(self) -> list[OutputDevice]:
        pa = self._portaudio()
        found: list[OutputDevice] = []
        for index in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(index)
            channels = int(info.get("maxOutputChannels", 0))
            if channels <= 0:
                continue
            api = pa.get_host_api_info_by_index(int(info.get("hostApi", 0)))
            found.append(
                OutputDevice(
                    index=index,
                    name=str(info.get("name", f"device {index}")),
                    host_api=str(api.get("name", "")),
                    channels=channels,
                    default_low_latency_s=float(info.get("defaultLowOutputLatency", 0.0)),
                )
            )
        return found

    def default_device(self) -> OutputDevice | None:
        pa = self._portaudio()
        try:
            index = int(pa.get_default_output_device_info()["index"])
        except OSError:  # "No Default Output Device Available"
            return None
        for device in self.devices():
            if device.index == index:
                return device
        return None

    def rescan(self) -> None:
        self.close()
        self._portaudio()

    def open(
        self, device: OutputDevice, rate_hz: int, frames: int, callback: StreamCallback
    ) -> OutputStream:
        pa = self._portaudio()
        try:
            stream = pa.open(
                format=self._pyaudio.paFloat32,
                channels=2,
                rate=rate_hz,
                output=True,
                output_device_index=device.index,
                frames_per_buffer=frames,
                stream_callback=callback,
                start=False,
            )
        except (OSError, ValueError) as exc:
            raise AudioDeviceError(
                f"cannot open audio output {device.name!r} at {rate_hz} Hz, 2 channels, "
                f"float32: {exc}"
            ) from exc
        return _PyAudioStream(stream, device.name)

    def close(self) -> None:
        if self._pa is not None:
            pa, self._pa = self._pa, None
            pa.terminate()

    def __repr__(self) -> str:
        return f"PortAudioBackend({'started' if self._pa is not None else 'idle'})"


def list_output_devices() -> list[str]:
    """Names of the audio outputs PortAudio can see; ``[]`` when there are none.

    Raises
    ------
    AudioDeviceError
        PyAudio is missing or PortAudio cannot be initialised.
    """
    backend = PortAudioBackend()
    try:
        return [d.name for d in backend.devices()]
    finally:
        backend.close()
