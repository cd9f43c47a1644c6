"""Where the engine's audio goes: a speaker through PortAudio, a WAV file, or nowhere.

Every sink follows the :class:`Sink` protocol; ``realtime`` says who drives it:

* ``realtime = True`` (:class:`~heartsong.audio.device_sink.PyAudioSink`): the device
  clock drives it. Once started, PortAudio calls :meth:`AudioEngine.process_callback` on
  its own thread, and :meth:`~Sink.pump` has nothing to do;
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
from typing import TYPE_CHECKING, BinaryIO, Final, Protocol, runtime_checkable

import numpy as np

from heartsong.audio.device_sink import PyAudioSink
from heartsong.audio.portaudio import list_output_devices
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
        frames = engine.frames_for(seconds)
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
        frames = engine.frames_for(seconds)
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
