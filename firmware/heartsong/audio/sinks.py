"""Where the engine's audio goes: a speaker through PortAudio, a WAV file, or nowhere.

Every sink follows the :class:`Sink` protocol; ``realtime`` says who drives it:

* ``realtime = True`` (:class:`PyAudioSink`): the device clock drives it. Once started,
  PortAudio calls :meth:`AudioEngine.process_callback` on its own thread, and
  :meth:`~Sink.pump` has nothing to do;
* ``realtime = False`` (:class:`WavSink`, :class:`NullSink`): the app drives it, calling
  ``sink.pump(engine, seconds)`` to render that much *simulated* time as fast as the CPU
  allows (``heartsong demo``, ``heartsong render``, tests).

Pumped sinks render in blocks of ``engine.buffer_frames``, exactly as the device callback
would, so a WAV file is sample-for-sample what the speaker would have played.
"""

from __future__ import annotations

import logging
import math
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Protocol, runtime_checkable

import numpy as np

from heartsong.errors import AudioDeviceError, InputDataError

if TYPE_CHECKING:
    from heartsong.audio.engine import AudioEngine

__all__ = [
    "NullSink",
    "PyAudioSink",
    "Sink",
    "WavSink",
    "list_output_devices",
]

logger = logging.getLogger(__name__)

#: WAV sample width in bytes (16-bit PCM).
WAV_SAMPLE_WIDTH: Final = 2


@runtime_checkable
class Sink(Protocol):
    """Anything that takes the engine's audio (the app uses only these members)."""

    @property
    def realtime(self) -> bool:
        """True when a device clock pulls the audio; False when the app must pump it."""
        ...

    @property
    def latency_s(self) -> float:
        """Output latency in seconds (0 for files and for nowhere)."""
        ...

    def start(self) -> None:
        """Get ready to take audio (open the device or file)."""
        ...

    def pump(self, engine: AudioEngine, seconds: float) -> int:
        """Render ``seconds`` of simulated audio if this sink is pumped; frames rendered."""
        ...

    def stop(self) -> None:
        """Stop taking audio (a device plays out what it has queued)."""
        ...

    def close(self) -> None:
        """Release the file or device; safe to call twice."""
        ...


def _frames_for(engine: AudioEngine, seconds: float) -> int:
    """Number of frames in ``seconds`` at the engine's rate; InputDataError if negative."""
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds >= 0.0):
        raise InputDataError("seconds", "a finite duration >= 0 s", seconds)
    return round(seconds * engine.sample_rate_hz)


def _pump_blocks(
    engine: AudioEngine, frames: int, block: np.ndarray, consume: Callable[[np.ndarray], None]
) -> None:
    """Render ``frames`` frames in blocks of ``block``'s length and pass each to ``consume``."""
    done = 0
    size = block.shape[0]
    while done < frames:
        n = min(size, frames - done)
        view = block if n == size else block[:n]
        engine.render(view)
        consume(view)
        done += n


class NullSink:
    """Discards audio; optionally renders it to keep the engine moving and to measure it.

    Parameters
    ----------
    pull:
        False: :meth:`pump` renders nothing (audio disabled, engine untouched). True: it
        renders every frame and tracks the peak and RMS level.
    """

    realtime: Final = False
    latency_s: Final = 0.0

    def __init__(self, pull: bool = False) -> None:
        self._pull = pull
        self._frames = 0
        self._peak = 0.0
        self._sum_sq = 0.0
        self._block: np.ndarray | None = None
        self._active = False
        self._closed = False

    @property
    def is_active(self) -> bool:
        """True between :meth:`start` (or the first pump) and :meth:`stop`."""
        return self._active

    @property
    def frames(self) -> int:
        """Frames pumped so far (rendered or not)."""
        return self._frames

    @property
    def peak(self) -> float:
        """Largest absolute sample seen (linear full scale); 0 unless ``pull``."""
        return self._peak

    @property
    def rms(self) -> float:
        """RMS over every sample seen (linear full scale); 0 unless ``pull``."""
        if not self._pull or self._frames == 0:
            return 0.0
        return math.sqrt(self._sum_sq / (2 * self._frames))

    def start(self) -> None:
        """Accept audio."""
        if self._closed:
            raise AudioDeviceError("NullSink is closed")
        self._active = True

    def pump(self, engine: AudioEngine, seconds: float) -> int:
        """Advance ``seconds`` of simulated audio; render it only if ``pull``."""
        frames = _frames_for(engine, seconds)
        self.start()
        if self._pull:
            if self._block is None or self._block.shape[0] != engine.buffer_frames:
                self._block = np.zeros((engine.buffer_frames, 2), dtype=np.float32)
            _pump_blocks(engine, frames, self._block, self._measure)
        self._frames += frames
        return frames

    def _measure(self, block: np.ndarray) -> None:
        self._peak = max(self._peak, float(np.max(np.abs(block))) if block.size else 0.0)
        self._sum_sq += float(np.sum(np.square(block, dtype=np.float64)))

    def stop(self) -> None:
        """Stop accepting audio until the next start or pump."""
        self._active = False

    def close(self) -> None:
        """Stop for good; safe twice."""
        self._active = False
        self._closed = True

    def __repr__(self) -> str:
        return f"NullSink(pull={self._pull}, frames={self._frames})"


class WavSink:
    """Writes the engine's audio to a 16-bit stereo PCM WAV file.

    The file is created by :meth:`start` when the rate is known, else by the first
    :meth:`pump` (at the engine's rate); :meth:`close` (also on ``with`` exit) completes
    it. The header is kept valid after every pump, so a crash loses nothing written.

    Parameters
    ----------
    path:
        Where to write; an existing file is replaced.
    sample_rate_hz:
        The file's rate in Hz, or None to take the first pumped engine's.
    """

    realtime: Final = False
    latency_s: Final = 0.0

    def __init__(self, path: str | Path, sample_rate_hz: int | None = None) -> None:
        self._path = Path(path)
        self._rate = sample_rate_hz
        self._wav: wave.Wave_write | None = None
        self._file: BinaryIO | None = None
        self._frames = 0
        self._block: np.ndarray | None = None
        self._active = False
        self._closed = False

    @property
    def path(self) -> Path:
        """The WAV file's path."""
        return self._path

    @property
    def frames_written(self) -> int:
        """Frames written so far."""
        return self._frames

    @property
    def is_active(self) -> bool:
        """True between :meth:`start` (or the first pump) and :meth:`stop`."""
        return self._active

    def start(self) -> None:
        """Accept audio; creates the file now if its rate is known (a bad path fails early)."""
        if self._closed:
            raise AudioDeviceError(f"WavSink({self._path}) is closed")
        if self._rate is not None:
            self._open(self._rate)
        self._active = True

    def pump(self, engine: AudioEngine, seconds: float) -> int:
        """Render ``seconds`` of audio from ``engine`` and append it to the file.

        Raises
        ------
        InputDataError
            ``seconds`` negative or not finite, or an engine whose rate differs from the
            file's.
        AudioDeviceError
            The sink is closed or the file cannot be written.
        """
        frames = _frames_for(engine, seconds)
        if self._closed:
            raise AudioDeviceError(f"WavSink({self._path}) is closed")
        self._active = True
        if self._rate is not None and engine.sample_rate_hz != self._rate:
            raise InputDataError(
                "sample_rate_hz",
                f"{self._rate} Hz, the rate of {self._path}",
                engine.sample_rate_hz,
            )
        wav = self._open(engine.sample_rate_hz)
        if self._block is None or self._block.shape[0] != engine.buffer_frames:
            self._block = np.zeros((engine.buffer_frames, 2), dtype=np.float32)

        def write(block: np.ndarray) -> None:
            pcm = np.clip(np.rint(block * 32767.0), -32768, 32767).astype("<i2")
            wav.writeframes(pcm.tobytes())  # also patches the header's lengths

        try:
            _pump_blocks(engine, frames, self._block, write)
        except OSError as exc:
            raise AudioDeviceError(f"cannot write {self._path}: {exc}") from exc
        self._frames += frames
        return frames

    def _open(self, rate: int) -> wave.Wave_write:
        if self._wav is not None:
            return self._wav
        try:
            # Open the file ourselves: wave.open(path) leaves a half-built object behind
            # when the path is bad (and then complains in __del__).
            file = self._path.open("wb")
        except OSError as exc:
            raise AudioDeviceError(f"cannot create {self._path}: {exc}") from exc
        wav = wave.open(file, "wb")  # noqa: SIM115 - open across pumps, closed in close()
        wav.setnchannels(2)
        wav.setsampwidth(WAV_SAMPLE_WIDTH)
        wav.setframerate(rate)
        self._file = file
        self._wav = wav
        self._rate = rate
        logger.info("writing audio to %s (%d Hz, 16-bit stereo)", self._path, rate)
        return wav

    def stop(self) -> None:
        """Stop accepting audio until the next start or pump (the file stays open)."""
        self._active = False

    def close(self) -> None:
        """Complete the WAV header and close the file; safe twice."""
        self._active = False
        self._closed = True
        if self._wav is not None:
            wav, self._wav = self._wav, None
            file, self._file = self._file, None
            try:
                wav.close()  # writes the final header; does not close a file it was given
            finally:
                if file is not None:
                    file.close()
            logger.info("wrote %d frames to %s", self._frames, self._path)

    def __enter__(self) -> WavSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WavSink({str(self._path)!r}, frames={self._frames})"


def _import_pyaudio() -> Any:
    """Import PyAudio on demand (the package imports on machines without it)."""
    try:
        import pyaudio
    except ImportError as exc:  # pragma: no cover - pyaudio is a dependency
        raise AudioDeviceError(f"PyAudio is not installed: {exc}") from exc
    return pyaudio


def _output_devices(pa: Any) -> list[tuple[int, str]]:
    """``(index, name)`` of every PortAudio device with at least one output channel."""
    found: list[tuple[int, str]] = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if int(info.get("maxOutputChannels", 0)) > 0:
            found.append((index, str(info.get("name", f"device {index}"))))
    return found


def list_output_devices() -> list[str]:
    """Names of the audio outputs PortAudio can see; ``[]`` when there are none.

    Raises
    ------
    AudioDeviceError
        PyAudio is missing or PortAudio cannot be initialised.
    """
    pyaudio = _import_pyaudio()
    try:
        pa = pyaudio.PyAudio()
    except OSError as exc:
        raise AudioDeviceError(f"PortAudio could not start: {exc}") from exc
    try:
        return [name for _, name in _output_devices(pa)]
    finally:
        pa.terminate()


class PyAudioSink:
    """Plays the engine through a PortAudio output device (paFloat32, stereo, callback).

    The stream is opened at construction (so a missing device fails early) and starts on
    :meth:`start`.

    Parameters
    ----------
    engine:
        The engine whose :meth:`~AudioEngine.process_callback` feeds the stream.
    device_name:
        Case-insensitive part of the output device's name; empty = the default output.

    Raises
    ------
    AudioDeviceError
        No matching output (the message lists the outputs found), or PortAudio refused to
        open the stream.
    """

    realtime: Final = True

    def __init__(self, engine: AudioEngine, device_name: str = "") -> None:
        pyaudio = _import_pyaudio()
        self._engine = engine
        self._device_name = device_name
        self._stream: Any = None
        try:
            self._pa: Any = pyaudio.PyAudio()
        except OSError as exc:
            raise AudioDeviceError(f"PortAudio could not start: {exc}") from exc
        try:
            index, name = self._find_device(device_name)
            self._stream = self._pa.open(
                format=pyaudio.paFloat32,
                channels=2,
                rate=engine.sample_rate_hz,
                output=True,
                output_device_index=index,
                frames_per_buffer=engine.buffer_frames,
                stream_callback=engine.process_callback,
                start=False,
            )
        except OSError as exc:
            self._pa.terminate()
            raise AudioDeviceError(
                f"cannot open audio output {device_name or '(default)'!r} at "
                f"{engine.sample_rate_hz} Hz, 2 channels, float32: {exc}"
            ) from exc
        except AudioDeviceError:
            self._pa.terminate()
            raise
        self._name = name
        self._closed = False
        logger.info(
            "audio output %r opened: %d Hz, %d frames/buffer, latency %.1f ms",
            name,
            engine.sample_rate_hz,
            engine.buffer_frames,
            1000.0 * self.latency_s,
        )

    def _find_device(self, device_name: str) -> tuple[int, str]:
        outputs = _output_devices(self._pa)
        listing = ", ".join(repr(name) for _, name in outputs) or "none"
        if not device_name:
            try:
                info = self._pa.get_default_output_device_info()
            except OSError:
                raise AudioDeviceError(
                    f"no default audio output; outputs found: {listing}"
                ) from None
            return int(info["index"]), str(info["name"])
        wanted = device_name.casefold()
        for index, name in outputs:
            if wanted in name.casefold():
                return index, name
        raise AudioDeviceError(
            f"no audio output whose name contains {device_name!r}; outputs found: {listing}"
        )

    @property
    def device(self) -> str:
        """Name of the output device in use."""
        return self._name

    @property
    def latency_s(self) -> float:
        """Output latency in seconds reported by PortAudio (0 once closed)."""
        if self._stream is None:
            return 0.0
        return float(self._stream.get_output_latency())

    @property
    def is_active(self) -> bool:
        """True while the stream is running."""
        return self._stream is not None and bool(self._stream.is_active())

    def pump(self, engine: AudioEngine, seconds: float) -> int:
        """Render nothing and return 0: the device clock pulls audio through the callback.

        Present so the app can treat every sink alike; it validates ``seconds`` only.
        """
        _frames_for(engine, seconds)
        return 0

    def start(self) -> None:
        """Warm the engine up if needed, then start the stream."""
        if self._stream is None:
            raise AudioDeviceError(f"audio output {self._name!r} is closed")
        if not self._engine.is_warm:
            self._engine.warm_up()
        if not self._stream.is_active():
            try:
                self._stream.start_stream()
            except OSError as exc:
                raise AudioDeviceError(f"cannot start audio output {self._name!r}: {exc}") from exc

    def stop(self) -> None:
        """Stop the stream once its queued buffers have played (no-op when stopped)."""
        if self._stream is not None and not self._stream.is_stopped():
            self._stream.stop_stream()

    def close(self) -> None:
        """Stop and close the stream and release PortAudio; safe twice."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._stream is not None:
                self.stop()
                self._stream.close()
        finally:
            self._stream = None
            self._pa.terminate()
            logger.info("audio output %r closed", self._name)

    def __enter__(self) -> PyAudioSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("active" if self.is_active else "stopped")
        return f"PyAudioSink({self._name!r}, {state})"
