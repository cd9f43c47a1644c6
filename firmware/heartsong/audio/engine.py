"""The audio engine: control-side API and the allocation-free render called by the device.

Two sides meet here. The *control side* (the asyncio loop) calls :meth:`AudioEngine.set_targets`
and :meth:`AudioEngine.fade_out`, which validate, clamp and publish target parameters
through a lock-free :class:`~heartsong.audio.params.ParamBoard`. The *audio side*
(PortAudio's thread, or a non-real-time pump) calls :meth:`AudioEngine.render`, which runs
one numba kernel over preallocated arrays: it reads the targets, ramps towards them block
by block, synthesises the layers, and limits the mix. It never allocates, locks, logs or
does I/O (DESIGN.md, "the audio callback is sacred").

Ramps (why nothing ever clicks)
-------------------------------
* Volume, intensity and brightness follow one-pole smoothers per block (time constants
  ``TAU_VOLUME_S``, ``TAU_PARAM_S``; volume in dB, then converted to linear), and every
  gain or filter coefficient is interpolated linearly per sample across the block.
* The play/stop gate is a linear ramp over ``fade_s`` seconds shaped by a smoothstep.
* A preset change crossfades over ``crossfade_s`` (>= 2 s) with equal power per source:
  ``g = sqrt(cos(pi x/2)**2 g_from**2 + sin(pi x/2)**2 g_to**2)``, which is the classic
  equal-power crossfade for sources only one preset uses and keeps a source both presets
  share at a steady level (no +3 dB bump at the midpoint).
* While the output is silent the engine jumps to its targets (preset and controls), so a
  fade-in starts from the requested sound rather than gliding from the previous one.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import njit

from heartsong.audio.kernels import (
    BREATH_INHALE_FRACTION,
    _apply_envelope,
    _apply_gain_ramp,
    _breath_envelope,
    _brown_noise,
    _limit_into,
    _mix_ramped,
    _ocean_swell,
    _one_pole_lowpass,
    _pink_noise,
    _white_noise,
    brown_coefficients,
    lowpass_coefficient,
    seed_rng_states,
)
from heartsong.audio.params import (
    N_PARAMS,
    P_BREATH_RATE_BPM,
    P_BRIGHTNESS,
    P_FADE_S,
    P_INTENSITY,
    P_PLAYING,
    P_PRESET,
    P_VOLUME_DB,
    ParamBoard,
    ParamValues,
    _read_params,
)
from heartsong.audio.soundscapes import PRESETS, SOURCES, Soundscape
from heartsong.errors import InputDataError
from heartsong.events import SoundTargets

__all__ = ["AudioEngine"]

logger = logging.getLogger(__name__)

F32Array = npt.NDArray[np.float32]
F64Array = npt.NDArray[np.float64]

#: Time constant of the master-volume smoother in seconds (applied in dB).
TAU_VOLUME_S: Final = 0.4
#: Time constant of the intensity and brightness smoothers in seconds.
TAU_PARAM_S: Final = 0.6
#: Time constant of the breath-rate and breath-depth smoothers in seconds.
TAU_BREATH_S: Final = 2.0
#: Shortest fade of the play/stop gate in seconds (a "stop now" still does not click).
MIN_FADE_S: Final = 0.05
#: Shortest preset crossfade in seconds.
MIN_CROSSFADE_S: Final = 2.0
#: The limiter starts bending this many dB below the ceiling.
LIMITER_KNEE_DB: Final = 6.0
#: Brightness 0 and 1 map to these low-pass cutoffs in Hz (exponential in between).
BRIGHTNESS_CUTOFF_HZ: Final = (150.0, 12000.0)
#: Corner of the brown-noise integrators in Hz.
BROWN_CORNER_HZ: Final = 20.0
#: Ocean swell depth at intensity 0 and 1.
SWELL_DEPTH_RANGE: Final = (0.3, 0.8)

# PortAudio callback status bits (portaudio.h) and return code; kept here so this module
# does not import pyaudio.
_PA_OUTPUT_UNDERFLOW: Final = 0x4
_PA_OUTPUT_OVERFLOW: Final = 0x8
_XRUN_FLAGS: Final = _PA_OUTPUT_UNDERFLOW | _PA_OUTPUT_OVERFLOW
_PA_CONTINUE: Final = 0

# Source indices: the order of ``soundscapes.SOURCES``.
SRC_WHITE: Final = 0
SRC_PINK: Final = 1
SRC_BROWN: Final = 2
SRC_OCEAN: Final = 3
N_SOURCES: Final = 4
assert SOURCES == ("white", "pink", "brown", "ocean")

# Preset table columns: gains, intensity depths, breath depth.
PT_GAIN: Final = 0
PT_DEPTH: Final = N_SOURCES
PT_BREATH_DEPTH: Final = 2 * N_SOURCES
PT_COLS: Final = 2 * N_SOURCES + 1

# Configuration array (read-only for the kernel).
F_FS: Final = 0
F_CEILING: Final = 1
F_KNEE: Final = 2
F_BROWN_LEAK: Final = 3
F_BROWN_GAIN: Final = 4
F_LP_MIN_HZ: Final = 5
F_LP_MAX_HZ: Final = 6
F_TAU_VOLUME_S: Final = 7
F_TAU_PARAM_S: Final = 8
F_TAU_BREATH_S: Final = 9
F_CROSSFADE_S: Final = 10
F_SWELL_DEPTH_MIN: Final = 11
F_SWELL_DEPTH_MAX: Final = 12
N_CFG: Final = 13

# Control state (written by the kernel; read, never written, by the control side).
C_VOLUME_DB: Final = 0
C_INTENSITY: Final = 1
C_BRIGHTNESS: Final = 2
C_BREATH_BPM: Final = 3
C_BREATH_DEPTH: Final = 4
C_BREATH_PHASE: Final = 5
C_BREATH_LEVEL: Final = 6
C_GATE: Final = 7
C_MASTER: Final = 8
C_LP_A: Final = 9
C_OCEAN_CUTOFF_HZ: Final = 10
C_SWELL_DEPTH: Final = 11
C_XFADE: Final = 12
C_PRESET: Final = 13
C_XRUNS: Final = 14
C_FRAMES: Final = 15
C_SRC_GAIN: Final = 16
C_SRC_FROM: Final = C_SRC_GAIN + N_SOURCES
N_CTL: Final = C_SRC_FROM + N_SOURCES


@njit(cache=True)
def _cutoff_hz(brightness: float, cfg: F64Array) -> float:
    """Low-pass cutoff in Hz for ``brightness`` 0..1 (exponential between the bounds)."""
    lo = cfg[F_LP_MIN_HZ]
    hi = cfg[F_LP_MAX_HZ]
    return float(lo * (hi / lo) ** brightness)


@njit(cache=True)
def _target_gain(presets: F64Array, p: int, k: int, intensity: float) -> float:
    """Linear gain of source ``k`` in preset ``p`` at ``intensity`` 0..1."""
    return float(presets[p, PT_GAIN + k] * (1.0 - presets[p, PT_DEPTH + k] * (1.0 - intensity)))


@njit(cache=True)
def _jump_to_targets(
    snap: F64Array, ctl: F64Array, cfg: F64Array, presets: F64Array, p: int
) -> None:
    """While silent: set every smoothed control straight to its target (nothing to hear)."""
    ctl[C_PRESET] = p
    ctl[C_XFADE] = 1.0
    ctl[C_VOLUME_DB] = snap[P_VOLUME_DB]
    ctl[C_INTENSITY] = snap[P_INTENSITY]
    ctl[C_BRIGHTNESS] = snap[P_BRIGHTNESS]
    rate = snap[P_BREATH_RATE_BPM]
    if rate > 0.0:
        ctl[C_BREATH_BPM] = rate
        ctl[C_BREATH_DEPTH] = presets[p, PT_BREATH_DEPTH]
    else:
        ctl[C_BREATH_DEPTH] = 0.0
    fc = _cutoff_hz(snap[P_BRIGHTNESS], cfg)
    ctl[C_LP_A] = lowpass_coefficient(fc, cfg[F_FS])
    ctl[C_OCEAN_CUTOFF_HZ] = fc
    lo = cfg[F_SWELL_DEPTH_MIN]
    ctl[C_SWELL_DEPTH] = lo + (cfg[F_SWELL_DEPTH_MAX] - lo) * snap[P_INTENSITY]
    for k in range(N_SOURCES):
        g = _target_gain(presets, p, k, snap[P_INTENSITY])
        ctl[C_SRC_GAIN + k] = g
        ctl[C_SRC_FROM + k] = g


@njit(cache=True)
def _render_block(
    out: F32Array,
    snap: F64Array,
    ctl: F64Array,
    cfg: F64Array,
    presets: F64Array,
    rng: npt.NDArray[np.uint64],
    pink: F64Array,
    brown: F64Array,
    lp: F64Array,
    swell: F64Array,
    scratch: F64Array,
    env: F64Array,
) -> None:
    """Render one block (at most ``env.shape[0]`` frames) into ``out``; see ``_render``."""
    n = out.shape[0]
    fs = cfg[F_FS]
    dt = n / fs
    want_play = snap[P_PLAYING] > 0.5
    p = int(snap[P_PRESET])
    if p < 0 or p >= presets.shape[0]:
        p = int(ctl[C_PRESET])
    t_rate = snap[P_BREATH_RATE_BPM]

    if ctl[C_GATE] <= 0.0 and ctl[C_MASTER] == 0.0:
        _jump_to_targets(snap, ctl, cfg, presets, p)
        if not want_play:
            out[:, :] = 0.0
            ph = ctl[C_BREATH_PHASE] + ctl[C_BREATH_BPM] * dt / 60.0 if t_rate > 0.0 else 0.0
            ctl[C_BREATH_PHASE] = ph - math.floor(ph)
            ctl[C_FRAMES] += n
            return

    if p != int(ctl[C_PRESET]):
        for k in range(N_SOURCES):
            ctl[C_SRC_FROM + k] = ctl[C_SRC_GAIN + k]
        ctl[C_PRESET] = p
        ctl[C_XFADE] = 0.0

    # Per-block smoothers.
    a_vol = 1.0 - math.exp(-dt / cfg[F_TAU_VOLUME_S])
    a_par = 1.0 - math.exp(-dt / cfg[F_TAU_PARAM_S])
    a_br = 1.0 - math.exp(-dt / cfg[F_TAU_BREATH_S])
    vol_db = ctl[C_VOLUME_DB] + a_vol * (snap[P_VOLUME_DB] - ctl[C_VOLUME_DB])
    ctl[C_VOLUME_DB] = vol_db
    inten = ctl[C_INTENSITY] + a_par * (snap[P_INTENSITY] - ctl[C_INTENSITY])
    ctl[C_INTENSITY] = inten
    bright = ctl[C_BRIGHTNESS] + a_par * (snap[P_BRIGHTNESS] - ctl[C_BRIGHTNESS])
    ctl[C_BRIGHTNESS] = bright
    rate0 = ctl[C_BREATH_BPM]
    rate1 = rate0 + a_br * (t_rate - rate0) if t_rate > 0.0 else rate0
    ctl[C_BREATH_BPM] = rate1
    depth_t = presets[p, PT_BREATH_DEPTH] if t_rate > 0.0 else 0.0
    depth0 = ctl[C_BREATH_DEPTH]
    depth1 = depth0 + a_br * (depth_t - depth0)
    ctl[C_BREATH_DEPTH] = depth1

    step = dt / max(snap[P_FADE_S], MIN_FADE_S)
    gate = min(1.0, ctl[C_GATE] + step) if want_play else max(0.0, ctl[C_GATE] - step)
    ctl[C_GATE] = gate
    x = min(1.0, ctl[C_XFADE] + dt / cfg[F_CROSSFADE_S])
    ctl[C_XFADE] = x
    w_from = math.cos(0.5 * math.pi * x)
    w_to = math.sin(0.5 * math.pi * x)

    mix = scratch[N_SOURCES, :n]
    mix[:, :] = 0.0
    leak = cfg[F_BROWN_LEAK]
    bgain = cfg[F_BROWN_GAIN]
    fc1 = _cutoff_hz(bright, cfg)
    for k in range(N_SOURCES):
        g_from = w_from * ctl[C_SRC_FROM + k]
        g_to = w_to * _target_gain(presets, p, k, inten)
        g0 = ctl[C_SRC_GAIN + k]
        g1 = math.sqrt(g_from * g_from + g_to * g_to)
        ctl[C_SRC_GAIN + k] = g1
        if k == SRC_OCEAN:
            # The bed (white, pink, brown) gets the brightness low-pass; the ocean comes
            # after it, with its own swelling low-pass.
            a1 = lowpass_coefficient(fc1, fs)
            _one_pole_lowpass(mix, lp[0], ctl[C_LP_A], a1)
            ctl[C_LP_A] = a1
        if g0 == 0.0 and g1 == 0.0:
            continue
        src = scratch[k, :n]
        if k == SRC_WHITE:
            _white_noise(src, rng[0:1])
        elif k == SRC_PINK:
            _pink_noise(src, rng[1:2], pink[0])
        elif k == SRC_BROWN:
            _brown_noise(src, rng[2:3], brown[0], leak, bgain)
        else:
            lo = cfg[F_SWELL_DEPTH_MIN]
            d1 = lo + (cfg[F_SWELL_DEPTH_MAX] - lo) * inten
            fc0 = ctl[C_OCEAN_CUTOFF_HZ]
            d0 = ctl[C_SWELL_DEPTH]
            _ocean_swell(
                src, rng[3:4], pink[1], brown[1], lp[1], swell, fs, fc0, fc1, d0, d1, leak, bgain
            )
        _mix_ramped(mix, src, g0, g1)
    # Track the ocean's controls even while it is muted, so it re-enters without a jump.
    ctl[C_OCEAN_CUTOFF_HZ] = fc1
    lo = cfg[F_SWELL_DEPTH_MIN]
    ctl[C_SWELL_DEPTH] = lo + (cfg[F_SWELL_DEPTH_MAX] - lo) * inten

    ctl[C_BREATH_LEVEL] = _breath_envelope(
        env[:n],
        ctl[C_BREATH_PHASE : C_BREATH_PHASE + 1],
        rate0,
        rate1,
        depth0,
        depth1,
        fs,
        BREATH_INHALE_FRACTION,
    )
    _apply_envelope(mix, env[:n])

    smooth_gate = gate * gate * (3.0 - 2.0 * gate)
    m1 = 10.0 ** (vol_db / 20.0) * smooth_gate
    _apply_gain_ramp(mix, ctl[C_MASTER], m1)
    ctl[C_MASTER] = m1
    _limit_into(out, mix, cfg[F_KNEE], cfg[F_CEILING])
    ctl[C_FRAMES] += n


@njit(cache=True)
def _render(
    out: F32Array,
    board: F64Array,
    staging: F64Array,
    snap: F64Array,
    ctl: F64Array,
    cfg: F64Array,
    presets: F64Array,
    rng: npt.NDArray[np.uint64],
    pink: F64Array,
    brown: F64Array,
    lp: F64Array,
    swell: F64Array,
    scratch: F64Array,
    env: F64Array,
    status: int,
) -> None:
    """Fill ``out`` (frames, 2) float32 with the next audio; the whole callback in one kernel.

    Counts PortAudio xruns from ``status``, takes a consistent snapshot of the published
    targets (keeping the previous one if a write is under way), then renders in blocks of
    at most ``env.shape[0]`` frames, each ramping its controls towards the targets.
    """
    if (status & _XRUN_FLAGS) != 0:
        ctl[C_XRUNS] += 1.0
    _read_params(board, staging, snap)
    total = out.shape[0]
    block = env.shape[0]
    pos = 0
    while pos < total:
        n = min(block, total - pos)
        _render_block(
            out[pos : pos + n], snap, ctl, cfg, presets, rng, pink, brown, lp, swell, scratch, env
        )
        pos += n


def _preset_table(presets: Mapping[str, Soundscape]) -> F64Array:
    """The presets as the numeric table the kernel reads: one row per preset, in order."""
    table = np.zeros((len(presets), PT_COLS), dtype=np.float64)
    for row, preset in enumerate(presets.values()):
        for k, source in enumerate(SOURCES):
            gain, depth = preset.layer_gain(source)
            table[row, PT_GAIN + k] = gain
            table[row, PT_DEPTH + k] = depth
        table[row, PT_BREATH_DEPTH] = preset.breath_depth
    return table


def _finite(name: str, value: float, expected: str) -> float:
    """``value`` as a float, or InputDataError naming ``name`` if it is not a finite number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputDataError(name, expected, value) from None
    if not math.isfinite(v):
        raise InputDataError(name, expected, value)
    return v


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
        cfg[F_TAU_BREATH_S] = TAU_BREATH_S
        cfg[F_CROSSFADE_S] = crossfade_s
        cfg[F_SWELL_DEPTH_MIN], cfg[F_SWELL_DEPTH_MAX] = SWELL_DEPTH_RANGE
        self._cfg = cfg
        self._table = _preset_table(self._presets)

        first = self._presets[self._preset_names[0]]
        self._published = ParamValues(
            volume_db=min(first.volume_db.hi, max_volume_db),
            intensity=0.5,
            brightness=first.brightness.clamp(0.5),
            breath_rate_bpm=0.0,
            playing=False,
            preset=0,
            fade_s=fade_s,
        )
        self._board = ParamBoard(self._published)
        self._control_lock = threading.Lock()
        self._targets: SoundTargets | None = None
        self._callback_error: BaseException | None = None
        self._warm = False

        # Everything the kernel touches, allocated once.
        self._params = self._board.array
        self._staging = np.zeros(N_PARAMS, dtype=np.float64)
        self._snap = self._params.copy()
        self._ctl = np.zeros(N_CTL, dtype=np.float64)
        self._rng = seed_rng_states(seed, N_SOURCES)
        self._pink = np.zeros((2, 2, 7), dtype=np.float64)
        self._brown = np.zeros((2, 2), dtype=np.float64)
        self._lp = np.zeros((2, 2), dtype=np.float64)
        self._swell = np.zeros(2, dtype=np.float64)
        self._scratch = np.zeros((N_SOURCES + 1, buffer_frames, 2), dtype=np.float64)
        self._env = np.zeros(buffer_frames, dtype=np.float64)
        self._buffer = np.zeros((buffer_frames, 2), dtype=np.float32)
        self._buffer_frames = buffer_frames
        _jump_to_targets(self._snap, self._ctl, cfg, self._table, 0)

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
    def targets(self) -> SoundTargets | None:
        """The last targets accepted by :meth:`set_targets`, after clamping (None before)."""
        return self._targets

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
        """Frames rendered since construction (simulated audio time times the rate)."""
        return int(self._ctl[C_FRAMES])

    @property
    def is_silent(self) -> bool:
        """True when the output is exactly silent (faded out, or never started)."""
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
    def callback_error(self) -> BaseException | None:
        """An exception caught in :meth:`process_callback` (the control side should log it)."""
        return self._callback_error

    # ----------------------------------------------------------------- control side
    def warm_up(self) -> None:
        """Compile (or load from cache) the render kernel by rendering into scratch copies.

        Call once at start-up, before the stream starts, so the first callback does not
        compile. The engine's own state is not touched.
        """
        out = np.zeros_like(self._buffer)
        _render(
            out,
            self._params.copy(),
            self._staging.copy(),
            self._snap.copy(),
            self._ctl.copy(),
            self._cfg,
            self._table,
            self._rng.copy(),
            self._pink.copy(),
            self._brown.copy(),
            self._lp.copy(),
            self._swell.copy(),
            self._scratch.copy(),
            self._env.copy(),
            0,
        )
        self._warm = True
        logger.debug("audio kernels ready (%d Hz, %d frames)", self._fs, self._frames)

    def set_targets(self, t: SoundTargets) -> None:
        """Publish new targets; the callback ramps towards them.

        Values are clamped into the preset's ranges and the volume to ``max_volume_db``.
        ``breath_rate_bpm`` None or 0 turns the pacer off.

        Raises
        ------
        InputDataError
            Unknown soundscape, or a value that is not a finite number (field named).
        """
        try:
            index = self._preset_names.index(t.soundscape)
        except ValueError:
            raise InputDataError(
                "soundscape",
                f"one of {', '.join(repr(n) for n in self._preset_names)}",
                t.soundscape,
            ) from None
        preset = self._presets[t.soundscape]
        volume = _finite("volume_db", t.volume_db, "a finite level in dBFS")
        intensity = _finite("intensity", t.intensity, "a number from 0 to 1")
        brightness = _finite("brightness", t.brightness, "a number from 0 to 1")
        rate = 0.0
        if t.breath_rate_bpm is not None:
            rate = _finite(
                "breath_rate_bpm", t.breath_rate_bpm, "a rate >= 0 in breaths/min, or None"
            )
            if rate < 0.0:
                raise InputDataError("breath_rate_bpm", "a rate >= 0 in breaths/min, or None", rate)
            if rate > 0.0:
                rate = preset.breath_rate_bpm.clamp(rate)
        clamped = SoundTargets(
            soundscape=t.soundscape,
            playing=bool(t.playing),
            volume_db=min(preset.volume_db.clamp(volume), self._max_volume_db),
            intensity=preset.intensity.clamp(intensity),
            brightness=preset.brightness.clamp(brightness),
            breath_rate_bpm=rate if rate > 0.0 else None,
        )
        if clamped.volume_db != volume:
            logger.debug("volume %.1f dB clamped to %.1f dB", volume, clamped.volume_db)
        values = ParamValues(
            volume_db=clamped.volume_db,
            intensity=clamped.intensity,
            brightness=clamped.brightness,
            breath_rate_bpm=rate,
            playing=clamped.playing,
            preset=index,
            fade_s=self._fade_s,
        )
        with self._control_lock:
            self._board.publish(values)
            self._published = values
            self._targets = clamped

    def fade_out(self, seconds: float | None = None) -> None:
        """Ask for a fade to silence over ``seconds`` (default ``fade_s``).

        Returns at once; poll :attr:`is_silent` to know when the output is silent. A later
        :meth:`set_targets` with ``playing=True`` fades back in.
        """
        fade = self._fade_s if seconds is None else _finite("seconds", seconds, "a duration >= 0 s")
        if fade < 0.0:
            raise InputDataError("seconds", "a duration >= 0 s", fade)
        with self._control_lock:
            p = self._published
            values = ParamValues(
                volume_db=p.volume_db,
                intensity=p.intensity,
                brightness=p.brightness,
                breath_rate_bpm=p.breath_rate_bpm,
                playing=False,
                preset=p.preset,
                fade_s=fade,
            )
            self._board.publish(values)
            self._published = values
            if self._targets is not None:
                t = self._targets
                self._targets = SoundTargets(
                    t.soundscape, False, t.volume_db, t.intensity, t.brightness, t.breath_rate_bpm
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
            self._params,
            self._staging,
            self._snap,
            self._ctl,
            self._cfg,
            self._table,
            self._rng,
            self._pink,
            self._brown,
            self._lp,
            self._swell,
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
                self._params,
                self._staging,
                self._snap,
                self._ctl,
                self._cfg,
                self._table,
                self._rng,
                self._pink,
                self._brown,
                self._lp,
                self._swell,
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
