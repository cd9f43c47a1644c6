"""Lock-free publication of sound targets from the control side to the audio callback.

The control side (the asyncio loop, via ``AudioEngine.set_targets``) writes a few float64
numbers into a small NumPy array; the audio callback reads them once per render call. The
array starts with a sequence counter used like a seqlock (Lameter 2005, "Effective
synchronization on Linux/NUMA systems", Gelato conference; the Linux ``seqcount_t``):

* the writer makes the counter odd, stores the fields, then makes it even again;
* the reader copies the fields only if the counter is even before the copy and unchanged
  after it; otherwise it keeps its previous copy and tries again on the next block
  (5.3 ms later at 256 frames / 48 kHz). It never waits and never takes a lock.

Why this is safe here
---------------------
* Each field is one aligned 8-byte float64, and every store ``array[i] = x`` happens in
  one NumPy call made while holding the GIL, so no reader ever sees half a number.
* The reader is a numba kernel compiled *without* ``nogil``: it holds the GIL for the
  whole render call, so it sees the writer either before or after any single store. The
  only thing it can observe is an update cut between two stores (the writer thread was
  preempted at a bytecode boundary), and the odd counter says exactly that.
* If the reader ever released the GIL (``nogil=True``) this would need memory barriers
  (aarch64 orders stores weakly) that neither Python nor numba expose: keep the GIL.
* Writers are serialised among themselves by a ``threading.Lock`` that only writers take,
  so two control threads cannot interleave their counter updates. The callback never
  touches it, so it can never wait behind a preempted control thread (no priority
  inversion).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "N_PARAMS",
    "PARAM_NAMES",
    "P_BEAT_HZ",
    "P_BREATH_RATE_BPM",
    "P_BRIGHTNESS",
    "P_FADE_S",
    "P_INTENSITY",
    "P_PLAYING",
    "P_PRESET",
    "P_RESUME",
    "P_SEQ",
    "P_SLEEP_AT_FRAME",
    "P_SLEEP_FADE_S",
    "P_TEMPO_BPM",
    "P_VOLUME_DB",
    "ParamBoard",
    "ParamValues",
]

#: Index of the sequence counter (even = consistent, odd = update in progress).
P_SEQ: Final = 0
#: Master volume in dBFS.
P_VOLUME_DB: Final = 1
#: Layer intensity, 0..1.
P_INTENSITY: Final = 2
#: Brightness (low-pass cutoff), 0..1.
P_BRIGHTNESS: Final = 3
#: Breath-pacing rate in breaths per minute; 0 = pacer off.
P_BREATH_RATE_BPM: Final = 4
#: 1.0 = playing, 0.0 = fade to silence.
P_PLAYING: Final = 5
#: Index of the soundscape preset in the engine's preset table.
P_PRESET: Final = 6
#: Duration in seconds of the next fade in or out of the playing gate.
P_FADE_S: Final = 7
#: Tempo of the pulse and the pad's chord changes, in beats per minute.
P_TEMPO_BPM: Final = 8
#: Binaural beat / isochronic pulse rate in Hz.
P_BEAT_HZ: Final = 9
#: Audio frame (``AudioEngine.frames_rendered``) at which the sleep fade starts; -1 = off.
P_SLEEP_AT_FRAME: Final = 10
#: Duration of the sleep fade in seconds.
P_SLEEP_FADE_S: Final = 11
#: Resume counter: each increment makes the callback fade in from silence (device reopened).
P_RESUME: Final = 12
#: Length of the published array.
N_PARAMS: Final = 13
#: Names of the fields, by index (for logs and ``repr``).
PARAM_NAMES: Final = (
    "seq",
    "volume_db",
    "intensity",
    "brightness",
    "breath_rate_bpm",
    "playing",
    "preset",
    "fade_s",
    "tempo_bpm",
    "beat_hz",
    "sleep_at_frame",
    "sleep_fade_s",
    "resume",
)


@dataclass(frozen=True, slots=True)
class ParamValues:
    """One consistent set of published targets (units in the names)."""

    volume_db: float
    intensity: float
    brightness: float
    breath_rate_bpm: float
    playing: bool
    preset: int
    fade_s: float
    tempo_bpm: float = 60.0
    beat_hz: float = 6.0
    sleep_at_frame: float = -1.0
    sleep_fade_s: float = 600.0
    resume: int = 0


class ParamBoard:
    """The shared array of target parameters: many writers (serialised), one lock-free reader.

    Parameters
    ----------
    initial:
        The values before the first publication (the engine starts silent).
    """

    def __init__(self, initial: ParamValues) -> None:
        self._array: npt.NDArray[np.float64] = np.zeros(N_PARAMS, dtype=np.float64)
        self._write_lock = threading.Lock()
        self.publish(initial)

    @property
    def array(self) -> npt.NDArray[np.float64]:
        """The float64 array the audio callback reads (never replaced, only written)."""
        return self._array

    @property
    def sequence(self) -> int:
        """Number of completed publications times two (even when no write is in progress)."""
        return int(self._array[P_SEQ])

    def publish(self, values: ParamValues) -> int:
        """Publish a new set of targets; returns the new (even) sequence number.

        Control side only. Values must already be validated (finite, in range).
        """
        a = self._array
        with self._write_lock:
            seq = a[P_SEQ] + 1.0  # odd: update in progress
            a[P_SEQ] = seq
            a[P_VOLUME_DB] = values.volume_db
            a[P_INTENSITY] = values.intensity
            a[P_BRIGHTNESS] = values.brightness
            a[P_BREATH_RATE_BPM] = values.breath_rate_bpm
            a[P_PLAYING] = 1.0 if values.playing else 0.0
            a[P_PRESET] = float(values.preset)
            a[P_FADE_S] = values.fade_s
            a[P_TEMPO_BPM] = values.tempo_bpm
            a[P_BEAT_HZ] = values.beat_hz
            a[P_SLEEP_AT_FRAME] = values.sleep_at_frame
            a[P_SLEEP_FADE_S] = values.sleep_fade_s
            a[P_RESUME] = float(values.resume)
            a[P_SEQ] = seq + 1.0  # even: consistent again
            return int(seq + 1.0)

    def read(self) -> ParamValues | None:
        """Read the current targets the way the callback does; None if a write is under way."""
        staging = np.empty(N_PARAMS, dtype=np.float64)
        snap = np.empty(N_PARAMS, dtype=np.float64)
        if not _read_params(self._array, staging, snap):
            return None
        return ParamValues(
            volume_db=float(snap[P_VOLUME_DB]),
            intensity=float(snap[P_INTENSITY]),
            brightness=float(snap[P_BRIGHTNESS]),
            breath_rate_bpm=float(snap[P_BREATH_RATE_BPM]),
            playing=bool(snap[P_PLAYING] > 0.5),
            preset=int(snap[P_PRESET]),
            fade_s=float(snap[P_FADE_S]),
            tempo_bpm=float(snap[P_TEMPO_BPM]),
            beat_hz=float(snap[P_BEAT_HZ]),
            sleep_at_frame=float(snap[P_SLEEP_AT_FRAME]),
            sleep_fade_s=float(snap[P_SLEEP_FADE_S]),
            resume=int(snap[P_RESUME]),
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={self._array[i]:g}" for i, name in enumerate(PARAM_NAMES))
        return f"ParamBoard({fields})"


@njit(cache=True)
def _read_params(
    board: npt.NDArray[np.float64],
    staging: npt.NDArray[np.float64],
    snapshot: npt.NDArray[np.float64],
) -> bool:
    """Seqlock read: copy ``board`` into ``snapshot`` if no write is in progress.

    Parameters
    ----------
    board:
        The published array (``ParamBoard.array``).
    staging:
        Same shape; scratch space for the copy that is checked before it is accepted.
    snapshot:
        Same shape; overwritten only with a consistent set.

    Returns
    -------
    bool
        True when ``snapshot`` now holds a consistent set, False when the writer was
        between its two counter updates (the caller keeps its previous snapshot).
    """
    s1 = board[P_SEQ]
    if int(s1) % 2 != 0:
        return False
    for i in range(board.shape[0]):
        staging[i] = board[i]
    if board[P_SEQ] != s1:
        return False
    for i in range(board.shape[0]):
        snapshot[i] = staging[i]
    return True
