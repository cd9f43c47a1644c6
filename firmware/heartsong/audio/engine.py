"""The audio engine's control side: validate, clamp and publish targets; own the buffers.

Two sides meet here. The *control side* (the asyncio loop, MQTT, the CLI) calls
:meth:`AudioEngine.set_targets`, :meth:`~AudioEngine.set_params`,
:meth:`~AudioEngine.fade_out` and :meth:`~AudioEngine.set_sleep_timer`, which validate and
clamp the values into the preset's ranges and the volume ceiling, then publish them through
a lock-free :class:`~heartsong.audio.params.ParamBoard`. The *audio side* (PortAudio's
thread, or a sink pumping simulated time) calls :meth:`AudioEngine.render` or
:meth:`AudioEngine.process_callback`, which run the numba kernel of
``heartsong.audio.mixer`` over arrays allocated here once. The callback never allocates
(beyond the bytes object PyAudio requires), locks, logs or does I/O (DESIGN.md, "the audio
callback is sacred").
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

from heartsong.audio.harmony import chord_table
from heartsong.audio.kernels import brown_coefficients, seed_rng_states
from heartsong.audio.mixer import (
    C_BREATH_LEVEL,
    C_BREATH_PHASE,
    C_FRAMES,
    C_GATE,
    C_MASTER,
    C_PRESET,
    C_SLEEP_GAIN,
    C_VOLUME_DB,
    C_XFADE,
    C_XRUNS,
    F_BROWN_GAIN,
    F_BROWN_LEAK,
    F_CEILING,
    F_CROSSFADE_S,
    F_DETUNE_MAX_CENTS,
    F_DETUNE_MIN_CENTS,
    F_FS,
    F_KNEE,
    F_LP_MAX_HZ,
    F_LP_MIN_HZ,
    F_SWELL_DEPTH_MAX,
    F_SWELL_DEPTH_MIN,
    F_TAU_PARAM_S,
    F_TAU_PITCH_S,
    F_TAU_SLOW_S,
    F_TAU_VOLUME_S,
    N_CFG,
    N_CTL,
    N_SOURCES,
    STATE_WIDTH,
    _jump_to_targets,
    _render,
    preset_table,
)
from heartsong.audio.params import N_PARAMS, ParamBoard, ParamValues
from heartsong.audio.soundscape_model import BOUNDS, MOVABLE, ParamRange, Soundscape
from heartsong.audio.soundscapes import PRESETS
from heartsong.errors import InputDataError
from heartsong.events import SoundTargets

__all__ = ["AudioEngine"]

logger = logging.getLogger(__name__)

F32Array = npt.NDArray[np.float32]

#: Time constant of the master-volume smoother in seconds (applied in dB).
TAU_VOLUME_S: Final = 0.4
#: Time constant of the intensity and brightness smoothers in seconds.
TAU_PARAM_S: Final = 0.6
#: Time constant of the breath, tempo and beat-rate smoothers in seconds.
TAU_SLOW_S: Final = 2.0
#: Time constant of a tonal layer's pitch glide between presets in seconds.
TAU_PITCH_S: Final = 1.0
#: Shortest fade of the play/stop gate in seconds (a "stop now" still does not click).
MIN_FADE_S: Final = 0.05
#: Shortest preset crossfade in seconds.
MIN_CROSSFADE_S: Final = 2.0
#: Default sleep-timer fade in seconds (slow: ten minutes).
SLEEP_FADE_S: Final = 600.0
#: The limiter starts bending this many dB below the ceiling.
LIMITER_KNEE_DB: Final = 6.0
#: Brightness 0 and 1 map to these low-pass cutoffs in Hz (exponential in between).
BRIGHTNESS_CUTOFF_HZ: Final = (150.0, 12000.0)
#: Corner of the brown-noise integrators in Hz.
BROWN_CORNER_HZ: Final = 20.0
#: Ocean swell depth at intensity 0 and 1.
SWELL_DEPTH_RANGE: Final = (0.3, 0.8)
#: Pad detune in cents at intensity 0 and 1.
DETUNE_RANGE_CENTS: Final = (3.0, 12.0)
#: Names :meth:`AudioEngine.set_params` accepts besides the movable controls.
_OTHER_PARAMS: Final = ("soundscape", "playing")
#: What each numeric control accepts (before clamping into the preset's range), in words.
_EXPECTED: Final = {
    "volume_db": "a finite level in dBFS",
    "intensity": "a number from 0 to 1",
    "brightness": "a number from 0 to 1",
    "tempo_bpm": "a tempo in beats/min, or None for the preset's default",
    "breath_rate_bpm": "a rate >= 0 in breaths/min, or None",
    "beat_hz": "a beat rate in Hz, or None for the preset's default",
}
#: Controls that accept None.
_OPTIONAL: Final = ("tempo_bpm", "breath_rate_bpm", "beat_hz")
# PortAudio's paContinue.
_PA_CONTINUE: Final = 0


def _finite(name: str, value: object, expected: str) -> float:
    """``value`` as a float, or InputDataError naming ``name`` if it is not a finite number."""
    if isinstance(value, bool):
        raise InputDataError(name, expected, value)
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputDataError(name, expected, value) from None
    if not math.isfinite(v):
        raise InputDataError(name, expected, value)
    return v


def _num(value: object) -> float:
    """A number already checked by :meth:`AudioEngine._checked`, as a float."""
    assert isinstance(value, int | float)
    return float(value)


class AudioEngine:
    """Calming-sound synthesiser with click-free, lock-free control.

    Parameters
    ----------
    sample_rate_hz:
        Output sample rate in Hz (48000 on the device).
    buffer_frames:
        Frames per device callback (PortAudio ``frames_per_buffer``); also the longest
        block the kernel renders at once.
    max_volume_db:
        Safety ceiling in dBFS: no requested volume goes above it, and the limiter keeps
        every output sample at or below ``10**(max_volume_db/20)``.
    fade_s:
        Seconds of the fade in after ``playing=True`` and of the fade out after
        ``playing=False``.
    seed:
        Seed of the noise generators (same seed, same targets -> same samples).
    crossfade_s:
        Seconds of the equal-power crossfade when the preset changes (>= 2).
    presets:
        The soundscapes, by name (``PRESETS`` by default).
    """

    def __init__(
        self,
        sample_rate_hz: int = 48000,
        buffer_frames: int = 256,
        max_volume_db: float = -6.0,
        fade_s: float = 3.0,
        seed: int = 0,
        crossfade_s: float = 4.0,
        presets: Mapping[str, Soundscape] = PRESETS,
    ) -> None:
        if not (isinstance(sample_rate_hz, int) and 8000 <= sample_rate_hz <= 192000):
            raise InputDataError(
                "sample_rate_hz", "an integer from 8000 to 192000 Hz", sample_rate_hz
            )
        if not (isinstance(buffer_frames, int) and 16 <= buffer_frames <= 16384):
            raise InputDataError("buffer_frames", "an integer from 16 to 16384", buffer_frames)
        max_volume_db = _finite("max_volume_db", max_volume_db, "a finite level in dBFS <= 0")
        if max_volume_db > 0.0:
            raise InputDataError("max_volume_db", "a finite level in dBFS <= 0", max_volume_db)
        fade_s = _finite("fade_s", fade_s, "a finite duration >= 0 s")
        if fade_s < 0.0:
            raise InputDataError("fade_s", "a finite duration >= 0 s", fade_s)
        crossfade_s = _finite("crossfade_s", crossfade_s, f"a duration >= {MIN_CROSSFADE_S:g} s")
        if crossfade_s < MIN_CROSSFADE_S:
            raise InputDataError("crossfade_s", f"a duration >= {MIN_CROSSFADE_S:g} s", crossfade_s)
        if not presets:
            raise InputDataError("presets", "at least one soundscape")

        self._fs = sample_rate_hz
        self._frames = buffer_frames
        self._max_volume_db = max_volume_db
        self._fade_s = fade_s
        self._crossfade_s = crossfade_s
        self._presets = dict(presets)
        self._preset_names = tuple(self._presets)

        ceiling = 10.0 ** (max_volume_db / 20.0)
        ceiling32 = np.float32(ceiling)
        if float(ceiling32) > ceiling:  # round down so float32 samples stay <= the ceiling
            ceiling32 = np.nextafter(ceiling32, np.float32(0.0))
        self._ceiling = float(ceiling32)
        leak, bgain = brown_coefficients(BROWN_CORNER_HZ, float(sample_rate_hz))
        cfg = np.zeros(N_CFG, dtype=np.float64)
        cfg[F_FS] = sample_rate_hz
        cfg[F_CEILING] = self._ceiling
        cfg[F_KNEE] = self._ceiling * 10.0 ** (-LIMITER_KNEE_DB / 20.0)
        cfg[F_BROWN_LEAK] = leak
        cfg[F_BROWN_GAIN] = bgain
        cfg[F_LP_MIN_HZ], cfg[F_LP_MAX_HZ] = BRIGHTNESS_CUTOFF_HZ
        cfg[F_TAU_VOLUME_S] = TAU_VOLUME_S
        cfg[F_TAU_PARAM_S] = TAU_PARAM_S
        cfg[F_TAU_SLOW_S] = TAU_SLOW_S
        cfg[F_TAU_PITCH_S] = TAU_PITCH_S
        cfg[F_CROSSFADE_S] = crossfade_s
        cfg[F_SWELL_DEPTH_MIN], cfg[F_SWELL_DEPTH_MAX] = SWELL_DEPTH_RANGE
        cfg[F_DETUNE_MIN_CENTS], cfg[F_DETUNE_MAX_CENTS] = DETUNE_RANGE_CENTS
        self._cfg = cfg
        self._table = preset_table(self._presets)
        self._chords = chord_table()

        # What the control side asked for (before clamping into the preset's ranges).
        first = self._presets[self._preset_names[0]]
        self._request: dict[str, object] = {
            "soundscape": first.name,
            "playing": False,
            "volume_db": first.volume_db.value,
            "intensity": first.intensity.value,
            "brightness": first.brightness.value,
            "breath_rate_bpm": None,
            "tempo_bpm": None,  # None: the preset's default
            "beat_hz": None,
        }
        self._last = {"tempo_bpm": 60.0, "beat_hz": 6.0}  # for presets that do not use them
        self._sleep_at_frame = -1.0
        self._sleep_fade_s = SLEEP_FADE_S
        self._resume = 0
        self._control_lock = threading.Lock()
        self._targets: SoundTargets | None = None
        self._params: dict[str, object] = {}
        self._published = self._clamped(self._request, fade_s)
        self._targets = None  # nothing asked for yet
        self._params = {}
        self._board = ParamBoard(self._published)
        self._callback_error: BaseException | None = None
        self._warm = False

        # Everything the kernel touches, allocated once.
        self._board_array = self._board.array
        self._staging = np.zeros(N_PARAMS, dtype=np.float64)
        self._snap = self._board_array.copy()
        self._ctl = np.zeros(N_CTL, dtype=np.float64)
        self._rng = seed_rng_states(seed, N_SOURCES)
        self._state = np.zeros((N_SOURCES + 1, STATE_WIDTH), dtype=np.float64)
        self._scratch = np.zeros((3, buffer_frames, 2), dtype=np.float64)
        self._env = np.zeros(buffer_frames, dtype=np.float64)
        self._buffer = np.zeros((buffer_frames, 2), dtype=np.float32)
        self._buffer_frames = buffer_frames
        _jump_to_targets(self._snap, self._ctl, cfg, self._table, self._chords, self._state, 0)

    # ----------------------------------------------------------------- properties
    @property
    def sample_rate_hz(self) -> int:
        """Output sample rate in Hz."""
        return self._fs

    @property
    def buffer_frames(self) -> int:
        """Frames per device callback."""
        return self._frames

    @property
    def max_volume_db(self) -> float:
        """The volume ceiling in dBFS."""
        return self._max_volume_db

    @property
    def ceiling(self) -> float:
        """Largest absolute sample value the engine ever outputs (linear full scale)."""
        return self._ceiling

    @property
    def fade_s(self) -> float:
        """Default fade duration in seconds."""
        return self._fade_s

    @property
    def crossfade_s(self) -> float:
        """Preset crossfade duration in seconds."""
        return self._crossfade_s

    @property
    def preset_names(self) -> tuple[str, ...]:
        """The soundscape names, in table order."""
        return self._preset_names

    @property
    def presets(self) -> Mapping[str, Soundscape]:
        """The soundscapes this engine plays, by name."""
        return dict(self._presets)

    @property
    def targets(self) -> SoundTargets | None:
        """The last targets accepted by :meth:`set_targets` or :meth:`set_params`, after
        clamping (None before the first)."""
        return self._targets

    @property
    def params(self) -> dict[str, object]:
        """Every published control after clamping: ``soundscape``, ``playing`` and the
        six movable controls (``breath_rate_bpm`` None = pacer off). Empty before the first
        :meth:`set_targets` or :meth:`set_params`."""
        return dict(self._params)

    @property
    def is_warm(self) -> bool:
        """True once :meth:`warm_up` has compiled the kernels."""
        return self._warm

    @property
    def underruns(self) -> int:
        """Callbacks whose PortAudio status reported an output underflow or overflow."""
        return int(self._ctl[C_XRUNS])

    @property
    def frames_rendered(self) -> int:
        """Frames rendered since construction (audio time times the rate)."""
        return int(self._ctl[C_FRAMES])

    @property
    def is_silent(self) -> bool:
        """True when the output is exactly silent (faded out, asleep, or never started)."""
        return bool(self._ctl[C_GATE] <= 0.0 and self._ctl[C_MASTER] == 0.0)

    @property
    def breath_phase(self) -> float:
        """Breath-pacer phase in [0, 1): 0 starts an inhale, 0.4 starts the exhale."""
        return float(self._ctl[C_BREATH_PHASE])

    @property
    def breath_level(self) -> float:
        """Breath shape in [0, 1] at the end of the last block (1 = top of the inhale)."""
        return float(self._ctl[C_BREATH_LEVEL])

    @property
    def current_preset(self) -> str:
        """Name of the preset playing (or being faded to)."""
        return self._preset_names[int(self._ctl[C_PRESET])]

    @property
    def crossfade_progress(self) -> float:
        """Progress 0..1 of the preset crossfade (1 = none under way)."""
        return float(self._ctl[C_XFADE])

    @property
    def volume_db(self) -> float:
        """The smoothed master volume in dBFS as of the last block."""
        return float(self._ctl[C_VOLUME_DB])

    @property
    def sleep_gain(self) -> float:
        """The sleep timer's gain 0..1 as of the last block (1 = no fade under way)."""
        return float(self._ctl[C_SLEEP_GAIN])

    @property
    def sleep_remaining_s(self) -> float | None:
        """Seconds of audio until the sleep timer's fade reaches silence; None when off."""
        if self._sleep_at_frame < 0.0:
            return None
        end = self._sleep_at_frame + self._sleep_fade_s * self._fs
        return max(0.0, (end - self.frames_rendered) / self._fs)

    @property
    def is_asleep(self) -> bool:
        """True once the sleep timer has faded the sound out (until the timer is cleared)."""
        remaining = self.sleep_remaining_s
        return remaining is not None and remaining <= 0.0

    @property
    def callback_error(self) -> BaseException | None:
        """An exception caught in :meth:`process_callback` (the control side should log it)."""
        return self._callback_error

    # ----------------------------------------------------------------- control side
    def frames_for(self, seconds: float) -> int:
        """Frames in ``seconds`` of audio at this engine's rate (rounded).

        Raises
        ------
        InputDataError
            ``seconds`` negative or not a finite number.
        """
        if not (
            isinstance(seconds, int | float)
            and not isinstance(seconds, bool)
            and math.isfinite(seconds)
            and seconds >= 0.0
        ):
            raise InputDataError("seconds", "a finite duration >= 0 s", seconds)
        return round(seconds * self._fs)

    def warm_up(self) -> None:
        """Compile (or load from cache) the render kernel by rendering into scratch copies.

        Call once at start-up, before the stream starts, so the first callback does not
        compile. The engine's own state is not touched.
        """
        out = np.zeros_like(self._buffer)
        board = ParamBoard(self._published)
        board.publish(dataclasses.replace(self._published, playing=True))
        _render(
            out,
            board.array,
            self._staging.copy(),
            self._snap.copy(),
            self._ctl.copy(),
            self._cfg,
            self._table,
            self._chords,
            self._rng.copy(),
            self._state.copy(),
            self._scratch.copy(),
            self._env.copy(),
            0,
        )
        self._warm = True
        logger.debug("audio kernels ready (%d Hz, %d frames)", self._fs, self._frames)

    def set_targets(self, t: SoundTargets) -> None:
        """Publish new targets; the callback ramps towards them.

        Values are clamped into the preset's ranges and the volume to ``max_volume_db``.
        ``breath_rate_bpm`` None or 0 turns the pacer off. ``tempo_bpm`` and ``beat_hz`` are
        taken from ``t`` when it has them (not None); otherwise the last values given to
        :meth:`set_params` stay, or the preset's defaults.

        Raises
        ------
        InputDataError
            Unknown soundscape, or a value that is not a finite number (field named).
        """
        named: dict[str, object] = {
            "soundscape": t.soundscape,
            "playing": t.playing,
            "volume_db": t.volume_db,
            "intensity": t.intensity,
            "brightness": t.brightness,
            "breath_rate_bpm": t.breath_rate_bpm,
        }
        for extra in ("tempo_bpm", "beat_hz"):
            value = getattr(t, extra, None)
            if value is not None:
                named[extra] = value
        self.set_params(**named)

    def set_params(self, **named: object) -> None:
        """Publish some controls by name, keeping the others; the callback ramps to them.

        Parameters
        ----------
        **named:
            Any of ``soundscape`` (a preset name), ``playing`` (bool), ``volume_db``,
            ``intensity``, ``brightness``, ``tempo_bpm``, ``breath_rate_bpm`` (None or 0 =
            pacer off) and ``beat_hz``. Values are clamped into the current preset's ranges
            (a control the preset does not use is clamped into ``BOUNDS`` and kept for the
            next preset).

        Raises
        ------
        InputDataError
            An unknown name, an unknown soundscape, or a value that is not a finite number
            (the field is named); nothing is published then.
        """
        updates = {name: self._checked(name, value) for name, value in named.items()}
        with self._control_lock:
            request = {**self._request, **updates}
            values = self._clamped(request, self._fade_s)
            self._board.publish(values)
            self._request = request
            self._published = values

    def _checked(self, name: str, value: object) -> object:
        """``value`` for control ``name`` as stored in a request, or InputDataError."""
        if name == "soundscape":
            if not isinstance(value, str) or value not in self._presets:
                expected = f"one of {', '.join(repr(n) for n in self._preset_names)}"
                raise InputDataError("soundscape", expected, value)
            return value
        if name == "playing":
            if not isinstance(value, bool | np.bool_):
                raise InputDataError("playing", "true or false", value)
            return bool(value)
        if name not in _EXPECTED:
            raise InputDataError(name, f"one of {', '.join(_OTHER_PARAMS + MOVABLE)}", value)
        if value is None and name in _OPTIONAL:
            return None
        number = _finite(name, value, _EXPECTED[name])
        if name == "breath_rate_bpm":
            if number < 0.0:
                raise InputDataError(name, _EXPECTED[name], number)
            return number if number > 0.0 else None
        return number

    def fade_out(self, seconds: float | None = None) -> None:
        """Ask for a fade to silence over ``seconds`` (default ``fade_s``).

        Returns at once; poll :attr:`is_silent` to know when the output is silent. A later
        :meth:`set_targets` with ``playing=True`` fades back in.
        """
        fade = self._fade_s if seconds is None else _finite("seconds", seconds, "a duration >= 0 s")
        if fade < 0.0:
            raise InputDataError("seconds", "a duration >= 0 s", fade)
        with self._control_lock:
            request = {**self._request, "playing": False}
            values = self._clamped(request, fade)
            self._board.publish(values)
            self._request = request
            self._published = values

    def set_sleep_timer(self, after_s: float | None, fade_s: float | None = None) -> None:
        """Fade the sound out slowly after ``after_s`` seconds of audio; None clears the timer.

        Parameters
        ----------
        after_s:
            Seconds of audio from now until the fade starts (the audio clock, so it also
            works in simulated time); None turns the timer off, which lets a sound that the
            timer faded out fade back in (if ``playing``).
        fade_s:
            Seconds the fade takes (default ``SLEEP_FADE_S``, ten minutes); the level
            follows ``(1 - p)**3`` of the fade's progress ``p``.

        Raises
        ------
        InputDataError
            A negative or non-finite ``after_s`` or ``fade_s``.
        """
        if after_s is not None:
            after_s = _finite("after_s", after_s, "a duration >= 0 s, or None")
            if after_s < 0.0:
                raise InputDataError("after_s", "a duration >= 0 s, or None", after_s)
        fade = SLEEP_FADE_S if fade_s is None else _finite("fade_s", fade_s, "a duration > 0 s")
        if fade <= 0.0:
            raise InputDataError("fade_s", "a duration > 0 s", fade)
        with self._control_lock:
            self._sleep_at_frame = (
                -1.0 if after_s is None else float(self.frames_rendered + round(after_s * self._fs))
            )
            self._sleep_fade_s = fade
            values = self._clamped(self._request, self._published.fade_s)
            self._board.publish(values)
            self._published = values
        if after_s is None:
            logger.info("sleep timer off")
        else:
            logger.info("sleep timer: fade out over %.0f s after %.0f s", fade, after_s)

    def resume_from_silence(self) -> None:
        """Make the next callback start from silence and fade in over ``fade_s``.

        The device sink calls this when it reopens a lost output, so the sound comes back
        gently instead of mid-level.
        """
        with self._control_lock:
            self._resume += 1
            values = self._clamped(self._request, self._published.fade_s)
            self._board.publish(values)
            self._published = values

    def _clamped(self, request: Mapping[str, object], fade_s: float) -> ParamValues:
        """Clamp a request into its preset's ranges; updates :attr:`targets` and
        :attr:`params`. Caller holds the control lock (or is the constructor)."""
        name = str(request["soundscape"])
        preset = self._presets[name]
        volume = _num(request["volume_db"])
        clamped_volume = min(preset.volume_db.clamp(volume), self._max_volume_db)
        if clamped_volume != volume:
            logger.debug("volume %.1f dB clamped to %.1f dB", volume, clamped_volume)
        values: dict[str, float] = {}
        for key in ("intensity", "brightness", "tempo_bpm", "beat_hz"):
            rng: ParamRange | None = getattr(preset, key)
            asked = request[key]
            if asked is None:  # tempo/beat never set: the preset's default, else the last
                values[key] = rng.value if rng is not None else self._last[key]
            else:  # clamped into the preset's range, or the widest one when it has none
                v = _num(asked)
                lo, hi = BOUNDS[key]
                values[key] = rng.clamp(v) if rng is not None else min(max(v, lo), hi)
        self._last["tempo_bpm"] = values["tempo_bpm"]
        self._last["beat_hz"] = values["beat_hz"]
        rate_asked = request["breath_rate_bpm"]
        rate = 0.0 if rate_asked is None else preset.breath_rate_bpm.clamp(_num(rate_asked))
        playing = bool(request["playing"])
        self._targets = SoundTargets(
            soundscape=name,
            playing=playing,
            volume_db=clamped_volume,
            intensity=values["intensity"],
            brightness=values["brightness"],
            breath_rate_bpm=rate if rate > 0.0 else None,
        )
        self._params = {
            "soundscape": name,
            "playing": playing,
            "volume_db": clamped_volume,
            "intensity": values["intensity"],
            "brightness": values["brightness"],
            "tempo_bpm": values["tempo_bpm"],
            "breath_rate_bpm": rate if rate > 0.0 else None,
            "beat_hz": values["beat_hz"],
        }
        return ParamValues(
            volume_db=clamped_volume,
            intensity=values["intensity"],
            brightness=values["brightness"],
            breath_rate_bpm=rate,
            playing=playing,
            preset=self._preset_names.index(name),
            fade_s=fade_s,
            tempo_bpm=values["tempo_bpm"],
            beat_hz=values["beat_hz"],
            sleep_at_frame=self._sleep_at_frame,
            sleep_fade_s=self._sleep_fade_s,
            resume=self._resume,
        )

    # ----------------------------------------------------------------- audio side
    def render(self, out: F32Array) -> None:
        """Fill ``out`` with the next ``out.shape[0]`` frames of audio.

        ``out`` must be a C-contiguous float32 array of shape (frames, 2); any number of
        frames works (rendered in blocks of ``buffer_frames``). Safe to call from a
        real-time callback once :meth:`warm_up` has run: no Python object is allocated,
        no lock taken, nothing logged. (Below Python, numba's argument unboxing takes one
        small MemInfo per array argument from the C allocator's thread cache and frees it
        on return.)
        """
        _render(
            out,
            self._board_array,
            self._staging,
            self._snap,
            self._ctl,
            self._cfg,
            self._table,
            self._chords,
            self._rng,
            self._state,
            self._scratch,
            self._env,
            0,
        )

    def process_callback(
        self, in_data: bytes | None, frame_count: int, time_info: object, status: int
    ) -> tuple[bytes, int]:
        """PyAudio stream callback: render ``frame_count`` frames and hand them over.

        Counts output underflow/overflow flags in ``status`` (see :attr:`underruns`).
        Never raises: PyAudio would re-raise the exception asynchronously in the main
        thread, so an error yields silence and is kept in :attr:`callback_error`.
        """
        buf = self._buffer
        try:
            if frame_count != self._buffer_frames:
                # Only with paFramesPerBufferUnspecified (we always pass frames_per_buffer,
                # so PortAudio does not do this): resize once, outside the steady state.
                buf = self._buffer = np.zeros((frame_count, 2), dtype=np.float32)
                self._buffer_frames = frame_count
            _render(
                buf,
                self._board_array,
                self._staging,
                self._snap,
                self._ctl,
                self._cfg,
                self._table,
                self._chords,
                self._rng,
                self._state,
                self._scratch,
                self._env,
                status,
            )
        except Exception as exc:  # pragma: no cover - defensive; the kernel does not raise
            self._callback_error = exc
            buf[:, :] = 0.0
        # The one allocation of the callback: PyAudio parses the result with "z#", which
        # accepts only read-only buffers without a release hook (bytes), not a memoryview
        # or the ndarray itself, so the preallocated buffer must be copied into a new bytes
        # object. PortAudio copies it out before the callback returns.
        return buf.tobytes(), _PA_CONTINUE

    def __repr__(self) -> str:
        state = "silent" if self.is_silent else "playing"
        return (
            f"AudioEngine({self._fs} Hz, {self._frames} frames, preset={self.current_preset!r}, "
            f"{state}, volume={self.volume_db:.1f} dB, ceiling={self._max_volume_db:g} dBFS)"
        )

