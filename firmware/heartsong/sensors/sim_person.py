"""A seeded, deterministic model of a person lying in bed: heartbeats and breathing.

Heartbeats come from the integral pulse-frequency-modulation (IPFM) model (Bayly 1968;
Mateo & Laguna 2000): a beat fires when the integral of the instantaneous heart rate,
in beats, reaches a threshold. The relative modulation of the heart rate is the sum of

* respiratory sinus arrhythmia (RSA), in phase with the breathing signal; its amplitude
  grows towards the ~0.1 Hz baroreflex resonance when breathing slows (Hirsch & Bishop
  1981; Vaschillo et al. 2002) and shrinks with stress (vagal withdrawal; Kim et al. 2018);
* Mayer waves near 0.1 Hz with a slowly wandering frequency (Julien 2006);
* a very-low-frequency Ornstein-Uhlenbeck wander;

and each beat's threshold is jittered, which adds white beat-to-beat noise. Stress raises
the mean heart rate and the spontaneous breathing rate and lowers the vagal terms (RSA and
beat noise), so RMSSD falls; an autonomic time constant makes those changes gradual.

Breathing is a phase accumulator, so rate changes are continuous. Its rate relaxes
(first order, ``pacer_follow_tau_s``) towards an external pacer when one is set, else
towards the spontaneous rate, plus a small Ornstein-Uhlenbeck jitter.

**Calming.** When ``PersonParams.calming`` is set and the actual breathing rate is below
``calm_below_bpm``, stress relaxes towards ``calm_floor`` with time constant
``calm_tau_s``; the pull fades in linearly over the 2 breaths/min below the threshold,
so it is full at ``calm_below_bpm - 2``. This is the phenomenological "slow breathing
calms" effect reported for paced breathing near 6/min (Lehrer & Gevirtz 2014;
Zaccaro et al. 2018); the therapy policy is tested against it.

**Calibration.** The modulation amplitudes are solved analytically (:func:`calibrate`)
so that, at stress 0 and the spontaneous breathing rate, the expected RMSSD equals
``PersonParams.rmssd_ms``: for a modulation averaged over one beat interval ``T0``, a
sinusoid of relative amplitude ``A`` at ``f`` contributes ``sqrt(2) A T0 sin(pi f T0)
sinc(f T0)`` to the RMS of successive differences, an Ornstein-Uhlenbeck process of
standard deviation ``s`` and time constant ``tau`` contributes ``T0 s sqrt(4 (V(T0) -
V(2 T0)))`` with ``V(L) = 2 tau^2 / L^2 (L / tau - 1 + exp(-L / tau))``, and a threshold
jitter of standard deviation ``s`` contributes ``sqrt(2) s T0``; the contributions add in
quadrature.

**Determinism.** Time advances on a fixed grid of :data:`STEP_S`. Random numbers come from
seeded NumPy generators read through :class:`BlockNoise` (one row per step, one value per
beat), so the beats are the same whatever the partition of :meth:`SimulatedPerson.advance`
calls, provided the ``set_*`` calls happen at the same points. The simulation runs ahead to
the next multiple of :data:`FRONTIER_S`; a setter takes effect from that frontier.

**Sharing.** Several consumers (a PPG synthesiser, a chest strap) read one beat history
through :class:`BeatCursor` objects; beats older than ``history_s`` that every live cursor
has read are dropped, so a night runs in bounded memory.

References
----------
Bayly EJ (1968) Spectral analysis of pulse frequency modulation in the nervous systems.
IEEE Trans Biomed Eng 15(4):257-265.
Mateo J, Laguna P (2000) Improved heart rate variability signal analysis from the beat
occurrence times according to the IPFM model. IEEE Trans Biomed Eng 47(8):985-996.
Hirsch JA, Bishop B (1981) Respiratory sinus arrhythmia in humans: how breathing pattern
modulates heart rate. Am J Physiol 241(4):H620-H629.
Vaschillo E, Lehrer P, Rishe N, Konstantinov M (2002) Heart rate variability biofeedback
as a method for assessing baroreflex function. Appl Psychophysiol Biofeedback 27(1):1-27.
Julien C (2006) The enigma of Mayer waves: facts and models. Cardiovasc Res 70(1):12-21.
Kim HG, Cheon EJ, Bai DS, Lee YH, Koo BH (2018) Stress and heart rate variability: a
meta-analysis and review of the literature. Psychiatry Investig 15(3):235-245.
Lehrer PM, Gevirtz R (2014) Heart rate variability biofeedback: how and why does it work?
Front Psychol 5:756.
Zaccaro A et al. (2018) How breath-control can change your life: a systematic review on
psycho-physiological correlates of slow breathing. Front Hum Neurosci 12:353.
"""

from __future__ import annotations

import logging
import math
import weakref
from dataclasses import dataclass, fields
from typing import Final

import numpy as np
from numba import njit

from heartsong.errors import check_number
from heartsong.events import FloatArray

logger = logging.getLogger(__name__)

#: Fixed integration step of the simulation, in seconds.
STEP_S: Final = 0.005
#: Granularity of the simulation frontier and of the stored breathing phase, in seconds.
FRONTIER_S: Final = 0.05
#: Default span of beat and breathing history kept behind the slowest consumer, in seconds.
HISTORY_S: Final = 120.0

_DECIMATION: Final = 10  # steps per FRONTIER_S
_BLOCK_STEPS: Final = 12_000  # steps per kernel call (60 s, a multiple of _DECIMATION)
_HR_MIN_BPM: Final = 20.0
_HR_MAX_BPM: Final = 250.0
_THRESHOLD_MIN: Final = 0.5  # lowest IPFM threshold after jitter (beats)
_NOISE_CLIP: Final = 3.0  # beat-noise draws are clipped to +-3 standard deviations
_RSA_CORNER_HZ: Final = 0.2  # low-pass corner of RSA versus breathing frequency
_RESONANCE_WIDTH_HZ: Final = 0.03  # standard deviation of the resonance bump
_BREATH_JITTER_TAU_S: Final = 15.0
_MAYER_JITTER_HZ: Final = 0.008  # standard deviation of the Mayer-wave frequency wander
_MAYER_JITTER_TAU_S: Final = 20.0
_CALM_RAMP_BPM: Final = 2.0
_PACER_RANGE_BPM: Final = (3.0, 30.0)

# Layout of the kernel state vector.
_S_INTEGRAL: Final = 0
_S_THRESHOLD: Final = 1
_S_BREATH_PHASE: Final = 2  # cycles, unwrapped
_S_BREATH_RATE: Final = 3  # breaths/min, before jitter
_S_BREATH_JIT: Final = 4  # relative jitter of the breathing rate
_S_STRESS: Final = 5
_S_STRESS_EFF: Final = 6  # stress as seen by the autonomic system (lagged)
_S_MAYER_PHASE: Final = 7  # cycles, wrapped to [0, 1)
_S_MAYER_DEV: Final = 8  # Hz
_S_VLF: Final = 9
_N_STATE: Final = 10

# Layout of the kernel coefficient vector.
_C_HR0: Final = 0
_C_HR_GAIN: Final = 1
_C_RSA: Final = 2
_C_MAYER: Final = 3
_C_MAYER_HZ: Final = 4
_C_VLF_A: Final = 5
_C_VLF_B: Final = 6
_C_BEAT_SD: Final = 7
_C_VAGAL_DROP: Final = 8
_C_BREATH0: Final = 9
_C_BREATH_GAIN: Final = 10
_C_FOLLOWS: Final = 11
_C_FOLLOW_ALPHA: Final = 12
_C_AUTO_ALPHA: Final = 13
_C_JIT_A: Final = 14
_C_JIT_B: Final = 15
_C_MDEV_A: Final = 16
_C_MDEV_B: Final = 17
_C_RES_HZ: Final = 18
_C_RES_GAIN: Final = 19
_C_GAIN_REF: Final = 20
_C_CALMING: Final = 21
_C_CALM_BELOW: Final = 22
_C_CALM_FLOOR: Final = 23
_C_CALM_ALPHA: Final = 24
_N_COEF: Final = 25

# name -> (low, high, unit) for every numeric field of PersonParams.
_RANGES: Final[dict[str, tuple[float, float, str]]] = {
    "hr_bpm": (30.0, 150.0, "bpm"),
    "rmssd_ms": (3.0, 250.0, "ms"),
    "breath_rate_bpm": (4.0, 40.0, "breaths/min"),
    "stress": (0.0, 1.0, ""),
    "pacer_follow_tau_s": (1.0, 600.0, "s"),
    "motion_artifacts_per_hour": (0.0, 600.0, "1/h"),
    "stress_hr_gain_bpm": (0.0, 60.0, "bpm"),
    "stress_vagal_drop": (0.0, 0.95, ""),
    "stress_breath_gain_bpm": (0.0, 15.0, "breaths/min"),
    "autonomic_tau_s": (0.5, 120.0, "s"),
    "mayer_hz": (0.05, 0.15, "Hz"),
    "mayer_to_rsa": (0.0, 3.0, ""),
    "vlf_to_rsa": (0.0, 3.0, ""),
    "vlf_tau_s": (2.0, 600.0, "s"),
    "beat_noise_share": (0.0, 0.9, ""),
    "breath_rate_jitter": (0.0, 0.3, ""),
    "resonance_hz": (0.05, 0.15, "Hz"),
    "resonance_gain": (0.0, 5.0, ""),
    "calm_below_bpm": (4.0, 20.0, "breaths/min"),
    "calm_floor": (0.0, 1.0, ""),
    "calm_tau_s": (10.0, 3600.0, "s"),
}


@dataclass(frozen=True, slots=True)
class PersonParams:
    """Physiological parameters of a simulated person (validated on construction).

    Attributes
    ----------
    hr_bpm:
        Resting mean heart rate at stress 0, in beats per minute.
    rmssd_ms:
        Target RMSSD at stress 0 and spontaneous breathing, in milliseconds.
    breath_rate_bpm:
        Spontaneous breathing rate at stress 0, in breaths per minute.
    stress:
        Initial stress level, 0 (calm) to 1 (highly stressed).
    follows_pacer:
        Whether breathing converges to an external pacer when one is set.
    pacer_follow_tau_s:
        Time constant of the breathing rate relaxing to its target, in seconds.
    motion_artifacts_per_hour:
        Mean rate of motion-artifact bursts (Poisson), per hour; used by the PPG.
    stress_hr_gain_bpm:
        Mean heart-rate increase at stress 1, in beats per minute.
    stress_vagal_drop:
        Fraction of the vagal modulation (RSA and beat noise) removed at stress 1.
    stress_breath_gain_bpm:
        Spontaneous breathing-rate increase at stress 1, in breaths per minute.
    autonomic_tau_s:
        Time constant with which heart rate and vagal tone follow a stress change, in s.
    mayer_hz:
        Centre frequency of the Mayer waves, in Hz.
    mayer_to_rsa:
        Mayer-wave amplitude relative to the RSA amplitude at the calibration point.
    vlf_to_rsa:
        Standard deviation of the very-low-frequency wander relative to the RSA amplitude.
    vlf_tau_s:
        Time constant of the very-low-frequency wander, in seconds.
    beat_noise_share:
        Share of the calibrated RMSSD^2 that comes from white beat-to-beat noise.
    breath_rate_jitter:
        Relative standard deviation of the breathing-rate jitter.
    resonance_hz:
        Breathing frequency at which RSA amplitude peaks (baroreflex resonance), in Hz.
    resonance_gain:
        Height of the resonance bump of RSA amplitude versus breathing frequency.
    calming:
        Whether slow breathing pulls stress down (see the module docstring).
    calm_below_bpm:
        Breathing rate under which calming starts, in breaths per minute.
    calm_floor:
        Stress level that calming relaxes towards.
    calm_tau_s:
        Time constant of calming at full effect, in seconds.
    """

    hr_bpm: float = 64.0
    rmssd_ms: float = 42.0
    breath_rate_bpm: float = 14.0
    stress: float = 0.3
    follows_pacer: bool = True
    pacer_follow_tau_s: float = 40.0
    motion_artifacts_per_hour: float = 6.0
    stress_hr_gain_bpm: float = 18.0
    stress_vagal_drop: float = 0.6
    stress_breath_gain_bpm: float = 4.0
    autonomic_tau_s: float = 8.0
    mayer_hz: float = 0.1
    mayer_to_rsa: float = 0.5
    vlf_to_rsa: float = 0.3
    vlf_tau_s: float = 20.0
    beat_noise_share: float = 0.2
    breath_rate_jitter: float = 0.04
    resonance_hz: float = 0.1
    resonance_gain: float = 1.2
    calming: bool = True
    calm_below_bpm: float = 8.0
    calm_floor: float = 0.1
    calm_tau_s: float = 240.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _RANGES:
                low, high, unit = _RANGES[f.name]
                check_number(f"PersonParams.{f.name}", value, low, high, unit)
            elif not isinstance(value, bool):
                raise ValueError(f"PersonParams.{f.name} must be True or False, got {value!r}")


@dataclass(frozen=True, slots=True)
class Calibration:
    """Modulation amplitudes solved from :class:`PersonParams` (see :func:`calibrate`).

    Attributes
    ----------
    rsa_amplitude:
        Relative heart-rate modulation by RSA at stress 0 and spontaneous breathing
        (0.05 = +-5 %).
    mayer_amplitude:
        Relative heart-rate modulation by Mayer waves.
    vlf_sd:
        Standard deviation of the relative very-low-frequency wander.
    beat_sd:
        Standard deviation of the IPFM threshold jitter at stress 0, in beats.
    """

    rsa_amplitude: float
    mayer_amplitude: float
    vlf_sd: float
    beat_sd: float


@njit(cache=True, nogil=True)
def _rsa_gain_kernel(f_hz: float, res_hz: float, res_gain: float) -> float:
    """RSA amplitude versus breathing frequency ``f_hz`` (Hz): a low-pass with a resonance bump."""
    lowpass = 1.0 / math.sqrt(1.0 + (f_hz / _RSA_CORNER_HZ) ** 2)
    z = (f_hz - res_hz) / _RESONANCE_WIDTH_HZ
    return lowpass * (1.0 + res_gain * math.exp(-0.5 * z * z))


def rsa_gain(f_hz: float, resonance_hz: float = 0.1, resonance_gain: float = 1.2) -> float:
    """Relative RSA amplitude when breathing at ``f_hz`` Hz (unnormalised).

    A first-order low-pass (corner 0.2 Hz; Hirsch & Bishop 1981) times a Gaussian bump at
    the baroreflex resonance ``resonance_hz`` (Vaschillo et al. 2002). With the defaults
    the gain at 6 breaths/min is about three times that at 14 breaths/min.
    """
    return float(_rsa_gain_kernel(float(f_hz), float(resonance_hz), float(resonance_gain)))


def _sine_rmssd_factor(f_hz: float, t0_s: float) -> float:
    """RMS successive difference (s) of RR for a unit relative sinusoid at ``f_hz``."""
    x = f_hz * t0_s
    sinc = math.sin(math.pi * x) / (math.pi * x)
    return math.sqrt(2.0) * t0_s * math.sin(math.pi * x) * sinc


def _ou_rmssd_factor(tau_s: float, t0_s: float) -> float:
    """RMS successive difference (s) of RR for a unit-variance OU process of time constant tau."""

    def window_variance(length_s: float) -> float:
        r = length_s / tau_s
        return 2.0 / (r * r) * (r - 1.0 + math.exp(-r))

    return t0_s * math.sqrt(max(0.0, 4.0 * (window_variance(t0_s) - window_variance(2 * t0_s))))


def calibrate(params: PersonParams) -> Calibration:
    """Solve the modulation amplitudes so the expected RMSSD is ``params.rmssd_ms``.

    Holds at stress 0 and the spontaneous breathing rate, to first order in the
    modulation depth (see the module docstring for the formulas; Mateo & Laguna 2000
    for the IPFM beat-interval approximation).
    """
    t0_s = 60.0 / params.hr_bpm
    target_s = params.rmssd_ms / 1000.0
    beat_sd = math.sqrt(params.beat_noise_share) * target_s / (math.sqrt(2.0) * t0_s)
    c_rsa = _sine_rmssd_factor(params.breath_rate_bpm / 60.0, t0_s)
    c_mayer = params.mayer_to_rsa * _sine_rmssd_factor(params.mayer_hz, t0_s)
    c_vlf = params.vlf_to_rsa * _ou_rmssd_factor(params.vlf_tau_s, t0_s)
    remaining = (1.0 - params.beat_noise_share) * target_s**2
    rsa = math.sqrt(remaining / (c_rsa**2 + c_mayer**2 + c_vlf**2))
    return Calibration(
        rsa_amplitude=rsa,
        mayer_amplitude=params.mayer_to_rsa * rsa,
        vlf_sd=params.vlf_to_rsa * rsa,
        beat_sd=beat_sd,
    )


def _coefficients(params: PersonParams, cal: Calibration) -> FloatArray:
    """Pack the per-step constants of the IPFM kernel."""

    def ar1(tau_s: float) -> tuple[float, float]:
        a = math.exp(-STEP_S / tau_s)
        return a, math.sqrt(1.0 - a * a)

    c = np.zeros(_N_COEF)
    c[_C_HR0] = params.hr_bpm
    c[_C_HR_GAIN] = params.stress_hr_gain_bpm
    c[_C_RSA] = cal.rsa_amplitude
    c[_C_MAYER] = cal.mayer_amplitude
    c[_C_MAYER_HZ] = params.mayer_hz
    vlf_a, vlf_b = ar1(params.vlf_tau_s)
    c[_C_VLF_A], c[_C_VLF_B] = vlf_a, vlf_b * cal.vlf_sd
    c[_C_BEAT_SD] = cal.beat_sd
    c[_C_VAGAL_DROP] = params.stress_vagal_drop
    c[_C_BREATH0] = params.breath_rate_bpm
    c[_C_BREATH_GAIN] = params.stress_breath_gain_bpm
    c[_C_FOLLOWS] = 1.0 if params.follows_pacer else 0.0
    c[_C_FOLLOW_ALPHA] = -math.expm1(-STEP_S / params.pacer_follow_tau_s)
    c[_C_AUTO_ALPHA] = -math.expm1(-STEP_S / params.autonomic_tau_s)
    jit_a, jit_b = ar1(_BREATH_JITTER_TAU_S)
    c[_C_JIT_A], c[_C_JIT_B] = jit_a, jit_b * params.breath_rate_jitter
    mdev_a, mdev_b = ar1(_MAYER_JITTER_TAU_S)
    c[_C_MDEV_A], c[_C_MDEV_B] = mdev_a, mdev_b * _MAYER_JITTER_HZ
    c[_C_RES_HZ] = params.resonance_hz
    c[_C_RES_GAIN] = params.resonance_gain
    c[_C_GAIN_REF] = rsa_gain(
        params.breath_rate_bpm / 60.0, params.resonance_hz, params.resonance_gain
    )
    c[_C_CALMING] = 1.0 if params.calming else 0.0
    c[_C_CALM_BELOW] = params.calm_below_bpm
    c[_C_CALM_FLOOR] = params.calm_floor
    c[_C_CALM_ALPHA] = -math.expm1(-STEP_S / params.calm_tau_s)
    return c


@njit(cache=True, nogil=True)
def _ipfm_kernel(
    k0: int,
    n_steps: int,
    state: FloatArray,
    coef: FloatArray,
    pacer_bpm: float,
    step_noise: FloatArray,
    beat_noise: FloatArray,
    beats_out: FloatArray,
    phase_out: FloatArray,
) -> tuple[int, int]:
    """Advance the person ``n_steps`` grid steps of STEP_S seconds from step ``k0``.

    IPFM (Bayly 1968): the beat integral grows by HR(t)/60 * STEP_S per step (Euler, HR at
    the step start) and a beat fires, linearly interpolated inside the step, when it
    reaches the current threshold; the remainder carries over. ``state`` is updated in
    place; ``step_noise`` holds 3 standard normals per step (breath jitter, Mayer
    frequency, VLF), ``beat_noise`` one per beat. Beat times (s) go to ``beats_out``,
    the unwrapped breathing phase (cycles) after each step to ``phase_out``.
    Returns (number of beats, number of beat-noise values used).
    """
    dt = STEP_S
    two_pi = 2.0 * math.pi
    integral = state[_S_INTEGRAL]
    threshold = state[_S_THRESHOLD]
    phase = state[_S_BREATH_PHASE]
    rate = state[_S_BREATH_RATE]
    jit = state[_S_BREATH_JIT]
    stress = state[_S_STRESS]
    s_eff = state[_S_STRESS_EFF]
    mayer_phase = state[_S_MAYER_PHASE]
    mayer_dev = state[_S_MAYER_DEV]
    vlf = state[_S_VLF]
    paced = coef[_C_FOLLOWS] > 0.0 and pacer_bpm == pacer_bpm and pacer_bpm > 0.0
    n_beats = 0
    used = 0
    for i in range(n_steps):
        t = (k0 + i) * dt
        s_eff += (stress - s_eff) * coef[_C_AUTO_ALPHA]
        target = pacer_bpm if paced else coef[_C_BREATH0] + coef[_C_BREATH_GAIN] * s_eff
        rate += (target - rate) * coef[_C_FOLLOW_ALPHA]
        jit = jit * coef[_C_JIT_A] + coef[_C_JIT_B] * step_noise[i, 0]
        rate_now = rate * (1.0 + jit)
        f_breath = rate_now / 60.0
        if coef[_C_CALMING] > 0.0 and stress > coef[_C_CALM_FLOOR]:
            w = (coef[_C_CALM_BELOW] - rate_now) / _CALM_RAMP_BPM
            w = min(1.0, max(0.0, w))
            stress -= (stress - coef[_C_CALM_FLOOR]) * w * coef[_C_CALM_ALPHA]
        mayer_dev = mayer_dev * coef[_C_MDEV_A] + coef[_C_MDEV_B] * step_noise[i, 1]
        vlf = vlf * coef[_C_VLF_A] + coef[_C_VLF_B] * step_noise[i, 2]
        vagal = 1.0 - coef[_C_VAGAL_DROP] * s_eff
        gain = _rsa_gain_kernel(f_breath, coef[_C_RES_HZ], coef[_C_RES_GAIN]) / coef[_C_GAIN_REF]
        resp = -math.cos(two_pi * phase)
        m = (
            coef[_C_RSA] * vagal * gain * resp
            + coef[_C_MAYER] * math.sin(two_pi * mayer_phase)
            + vlf
        )
        hr = (coef[_C_HR0] + coef[_C_HR_GAIN] * s_eff) * (1.0 + m)
        hr = min(_HR_MAX_BPM, max(_HR_MIN_BPM, hr))
        inc = hr / 60.0 * dt
        remaining = inc
        consumed = 0.0
        while integral + remaining >= threshold:
            need = threshold - integral
            consumed += need
            beats_out[n_beats] = t + consumed / inc * dt
            n_beats += 1
            remaining -= need
            integral = 0.0
            z = min(_NOISE_CLIP, max(-_NOISE_CLIP, beat_noise[used]))
            used += 1
            threshold = max(_THRESHOLD_MIN, 1.0 + coef[_C_BEAT_SD] * vagal * z)
        integral += remaining
        phase += f_breath * dt
        mayer_phase += (coef[_C_MAYER_HZ] + mayer_dev) * dt
        mayer_phase -= math.floor(mayer_phase)
        phase_out[i] = phase
    state[_S_INTEGRAL] = integral
    state[_S_THRESHOLD] = threshold
    state[_S_BREATH_PHASE] = phase
    state[_S_BREATH_RATE] = rate
    state[_S_BREATH_JIT] = jit
    state[_S_STRESS] = stress
    state[_S_STRESS_EFF] = s_eff
    state[_S_MAYER_PHASE] = mayer_phase
    state[_S_MAYER_DEV] = mayer_dev
    state[_S_VLF] = vlf
    return n_beats, used


class _Series:
    """A float64 array with amortised O(1) appends at the end and drops at the front."""

    def __init__(self, first: FloatArray | None = None) -> None:
        self._buf: FloatArray = np.empty(1024)
        self._lo = 0
        self._hi = 0
        if first is not None:
            self.append(first)

    @property
    def values(self) -> FloatArray:
        """The live values (a view, valid until the next append)."""
        return self._buf[self._lo : self._hi]

    def __len__(self) -> int:
        return self._hi - self._lo

    def append(self, x: FloatArray) -> None:
        """Append the values ``x``."""
        n = x.shape[0]
        if self._hi + n > self._buf.shape[0]:
            live = self._hi - self._lo
            grown: FloatArray = np.empty(max(1024, 2 * (live + n)))
            grown[:live] = self._buf[self._lo : self._hi]
            self._buf, self._lo, self._hi = grown, 0, live
        self._buf[self._hi : self._hi + n] = x
        self._hi += n

    def drop_front(self, n: int) -> None:
        """Forget the first ``n`` values."""
        self._lo += min(n, len(self))


class BlockNoise:
    """Standard normals from a seeded generator, served in any partition as one stream.

    Draws happen in fixed blocks of ``block`` rows of ``width`` values, so the numbers a
    caller sees do not depend on how it splits its reads (NumPy does not promise that two
    short draws equal one long one).

    Parameters
    ----------
    rng:
        The generator this stream owns.
    width:
        Values per row.
    block:
        Rows drawn at a time.
    """

    def __init__(self, rng: np.random.Generator, width: int, block: int = 4096) -> None:
        if width < 1 or block < 1:
            raise ValueError(f"width and block must be >= 1, got {width!r}, {block!r}")
        self._rng = rng
        self._width = width
        self._block = block
        self._buf: FloatArray = np.empty((0, width))
        self._pos = 0

    def peek(self, n: int) -> FloatArray:
        """The next ``n`` rows, shape (n, width), without consuming them (read-only view)."""
        missing = n - (self._buf.shape[0] - self._pos)
        if missing > 0:
            n_blocks = -(-missing // self._block)
            fresh = [self._rng.standard_normal((self._block, self._width)) for _ in range(n_blocks)]
            self._buf = np.concatenate([self._buf[self._pos :], *fresh])
            self._pos = 0
        view = self._buf[self._pos : self._pos + n]
        view.flags.writeable = False
        return view

    def skip(self, n: int) -> None:
        """Consume ``n`` rows."""
        self.peek(n)
        self._pos += n

    def take(self, n: int) -> FloatArray:
        """Consume and return the next ``n`` rows, shape (n, width)."""
        out = self.peek(n).copy()
        self._pos += n
        return out


class BeatCursor:
    """One consumer's read position in a :class:`SimulatedPerson`'s shared beat history.

    Made by :meth:`SimulatedPerson.cursor`. The person keeps every beat a live cursor
    has not read yet; drop the cursor (or call :meth:`close`) to release them.
    """

    __slots__ = ("__weakref__", "_next", "_person", "_t_read_s")

    def __init__(self, person: SimulatedPerson, next_index: int, t_read_s: float) -> None:
        self._person = person
        self._next = next_index
        self._t_read_s = t_read_s

    @property
    def t_read_s(self) -> float:
        """Simulation time up to which this cursor has read, in seconds."""
        return self._t_read_s

    @property
    def beats_read(self) -> int:
        """Absolute index of the next beat this cursor will return (= beats consumed)."""
        return self._next

    def read_until(self, t_s: float) -> FloatArray:
        """Beat times (s) not yet read by this cursor, up to and including ``t_s``.

        Advances the person as far as needed. Times before :attr:`t_read_s` return an
        empty array.
        """
        self._person.advance(t_s)
        beats = self._person._beats_from(self._next, t_s)
        self._next += beats.shape[0]
        self._t_read_s = max(self._t_read_s, float(t_s))
        return beats

    def close(self) -> None:
        """Stop pinning the person's history (safe to call twice)."""
        self._person._cursors.discard(self)

    def __repr__(self) -> str:
        return f"BeatCursor(beats_read={self._next}, t_read_s={self._t_read_s:.3f})"


class SimulatedPerson:
    """A seeded, deterministic person in bed: IPFM heartbeats driven by breathing and stress.

    See the module docstring for the model, its calibration and its references.

    Parameters
    ----------
    params:
        The person's physiology.
    seed:
        Seed (integer >= 0) of every random process of this person.
    history_s:
        Seconds of beats and breathing kept behind the slowest reader, > 0.
    """

    def __init__(self, params: PersonParams, seed: int, *, history_s: float = HISTORY_S) -> None:
        if not isinstance(params, PersonParams):
            raise ValueError(f"params must be a PersonParams, got {type(params).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self._history_s = check_number("history_s", history_s, 10.0, 1e6, "s")
        self._params = params
        self._cal = calibrate(params)
        self._coef = _coefficients(params, self._cal)
        init_ss, step_ss, beat_ss = np.random.SeedSequence(int(seed)).spawn(3)
        init_rng = np.random.default_rng(init_ss)
        self._step_noise = BlockNoise(np.random.default_rng(step_ss), 3)
        self._beat_noise = BlockNoise(np.random.default_rng(beat_ss), 1)

        state = np.zeros(_N_STATE)
        z0 = float(np.clip(self._beat_noise.take(1)[0, 0], -_NOISE_CLIP, _NOISE_CLIP))
        vagal0 = 1.0 - params.stress_vagal_drop * params.stress
        state[_S_THRESHOLD] = max(_THRESHOLD_MIN, 1.0 + self._cal.beat_sd * vagal0 * z0)
        state[_S_INTEGRAL] = init_rng.uniform(0.0, 1.0) * state[_S_THRESHOLD]
        state[_S_BREATH_PHASE] = init_rng.uniform(0.0, 1.0)
        state[_S_BREATH_RATE] = (
            params.breath_rate_bpm + params.stress_breath_gain_bpm * params.stress
        )
        state[_S_STRESS] = params.stress
        state[_S_STRESS_EFF] = params.stress
        state[_S_MAYER_PHASE] = init_rng.uniform(0.0, 1.0)
        state[_S_VLF] = init_rng.standard_normal() * self._cal.vlf_sd
        self._state = state
        self._pacer_bpm = math.nan

        self._k = 0  # steps simulated: the frontier is at self._k * STEP_S
        self._t_advanced = 0.0
        self._beats = _Series()
        self._beat0 = 0  # absolute index of the first retained beat
        self._trimmed_until_s = -math.inf  # history at or before this time may be gone
        self._phase = _Series(np.array([state[_S_BREATH_PHASE]]))  # every FRONTIER_S
        self._phase_g0 = 0  # frontier-grid index of the first retained phase
        self._cursors: weakref.WeakSet[BeatCursor] = weakref.WeakSet()

    # -- state -------------------------------------------------------------------------

    @property
    def params(self) -> PersonParams:
        """The parameters this person was made with."""
        return self._params

    @property
    def calibration(self) -> Calibration:
        """The modulation amplitudes solved from the parameters."""
        return self._cal

    @property
    def t_s(self) -> float:
        """Simulation time reached by :meth:`advance`, in seconds."""
        return self._t_advanced

    @property
    def stress(self) -> float:
        """Current stress level, 0..1 (set by :meth:`set_stress`, lowered by calming)."""
        return float(self._state[_S_STRESS])

    def set_stress(self, level: float) -> None:
        """Set the stress level (0..1) from the frontier.

        Heart rate, HRV and spontaneous breathing follow with ``autonomic_tau_s``.
        """
        self._state[_S_STRESS] = check_number("stress", level, 0.0, 1.0)

    @property
    def pacer_bpm(self) -> float | None:
        """The external breathing pacer rate in breaths per minute, or None."""
        return None if math.isnan(self._pacer_bpm) else self._pacer_bpm

    def set_pacer(self, rate_bpm: float | None) -> None:
        """Set the external breathing pacer in breaths per minute (None: no pacer)."""
        if rate_bpm is None:
            self._pacer_bpm = math.nan
        else:
            self._pacer_bpm = check_number("rate_bpm", rate_bpm, *_PACER_RANGE_BPM, "breaths/min")

    @property
    def breath_rate_bpm(self) -> float:
        """Current actual breathing rate at the simulation frontier, in breaths per minute."""
        return float(self._state[_S_BREATH_RATE] * (1.0 + self._state[_S_BREATH_JIT]))

    @property
    def hr_bpm(self) -> float:
        """Current mean heart rate (without RSA, Mayer and VLF modulation), in bpm."""
        s_eff = self._state[_S_STRESS_EFF]
        return float(self._params.hr_bpm + self._params.stress_hr_gain_bpm * s_eff)

    @property
    def n_retained_beats(self) -> int:
        """Beats currently held in the shared history (bounded by trimming)."""
        return len(self._beats)

    # -- simulation --------------------------------------------------------------------

    def advance(self, t_s: float) -> FloatArray:
        """Simulate up to ``t_s`` and return the beat times (s) in (previous ``t_s``, ``t_s``].

        "Previous" is the largest time any earlier ``advance`` (also through a cursor)
        reached, so with several consumers use :meth:`cursor` instead of the return value.
        A ``t_s`` not after the previous one returns an empty array.
        """
        t_s = check_number("t_s", t_s, 0.0, math.inf, "s")
        k_target = math.ceil(t_s / FRONTIER_S - 1e-9) * _DECIMATION
        pieces: list[FloatArray] = []
        while True:
            if self._k < k_target:
                self._simulate(min(_BLOCK_STEPS, k_target - self._k))
            t_reached = min(t_s, self._k * STEP_S)
            if t_reached > self._t_advanced:
                beats = self._beats.values
                lo = int(np.searchsorted(beats, self._t_advanced, side="right"))
                hi = int(np.searchsorted(beats, t_reached, side="right"))
                pieces.append(beats[lo:hi].copy())
                self._t_advanced = t_reached
                self._trim()
            if self._k >= k_target:
                break
        return np.concatenate(pieces) if pieces else np.empty(0)

    def respiration(self, t_s: FloatArray) -> FloatArray:
        """Respiratory signal in [-1, 1] (-1 end of expiration, +1 end of inspiration).

        ``t_s`` (s) must lie in the simulated, retained range: from ``history_s`` behind
        the slowest reader up to the simulation frontier.
        """
        t = np.asarray(t_s, dtype=np.float64)
        if t.size == 0:
            return np.empty(t.shape)
        t_lo = self._phase_g0 * FRONTIER_S
        t_hi = self._k * STEP_S
        if not (np.all(np.isfinite(t)) and t.min() >= t_lo - 1e-9 and t.max() <= t_hi + 1e-9):
            raise ValueError(
                f"t_s must lie in the simulated range [{t_lo:.3f}, {t_hi:.3f}] s, "
                f"got [{t.min():.3f}, {t.max():.3f}]"
            )
        grid = self._phase.values
        u = t / FRONTIER_S - self._phase_g0
        i = np.clip(np.floor(u).astype(np.int64), 0, grid.shape[0] - 2)
        frac = u - i
        phase = grid[i] + frac * (grid[i + 1] - grid[i])
        out: FloatArray = -np.cos(2.0 * np.pi * phase)
        return out

    def cursor(self, from_s: float = 0.0) -> BeatCursor:
        """A new reader of the shared beat history, starting at beats after ``from_s`` (s)."""
        from_s = check_number("from_s", from_s, 0.0, math.inf, "s")
        if from_s < self._trimmed_until_s:
            raise ValueError(
                f"from_s must be >= {self._trimmed_until_s:.3f} s (older history was dropped), "
                f"got {from_s!r}"
            )
        if from_s > self._t_advanced:
            self.advance(from_s)
        index = self._beat0 + int(np.searchsorted(self._beats.values, from_s, side="right"))
        c = BeatCursor(self, index, from_s)
        self._cursors.add(c)
        return c

    def _simulate(self, n: int) -> None:
        """Run the kernel for ``n`` grid steps and append beats and breathing phase."""
        max_beats = n // 20 + 8  # >= one beat per 0.1 s, above the HR and threshold limits
        step_noise = self._step_noise.take(n)
        beat_noise = np.ascontiguousarray(self._beat_noise.peek(max_beats)[:, 0])
        beats_out = np.empty(max_beats)
        phase_out = np.empty(n)
        n_beats, used = _ipfm_kernel(
            self._k,
            n,
            self._state,
            self._coef,
            self._pacer_bpm,
            step_noise,
            beat_noise,
            beats_out,
            phase_out,
        )
        self._beat_noise.skip(used)
        self._beats.append(beats_out[:n_beats])
        self._phase.append(phase_out[_DECIMATION - 1 :: _DECIMATION])
        self._k += n

    def _beats_from(self, index: int, t_s: float) -> FloatArray:
        """Copy of the retained beats with absolute index >= ``index`` and time <= ``t_s``."""
        lo = index - self._beat0
        if lo < 0:
            raise RuntimeError(f"beat {index} was dropped from the history")
        beats = self._beats.values
        hi = int(np.searchsorted(beats, t_s, side="right"))
        return beats[lo : max(lo, hi)].copy()

    def _trim(self) -> None:
        """Drop history older than ``history_s`` behind the slowest live cursor."""
        horizon = min([self._t_advanced, *(c.t_read_s for c in self._cursors)])
        horizon -= self._history_s
        if horizon <= self._trimmed_until_s:
            return
        self._trimmed_until_s = horizon
        n_drop = int(np.searchsorted(self._beats.values, horizon, side="right"))
        self._beats.drop_front(n_drop)
        self._beat0 += n_drop
        g_drop = math.floor(horizon / FRONTIER_S) - self._phase_g0
        if g_drop > 0:
            self._phase.drop_front(g_drop)
            self._phase_g0 += g_drop

    def __repr__(self) -> str:
        pacer = "None" if self.pacer_bpm is None else f"{self._pacer_bpm:g}"
        return (
            f"SimulatedPerson(t_s={self._t_advanced:.3f}, hr_bpm={self.hr_bpm:.1f}, "
            f"stress={self.stress:.3f}, breath_rate_bpm={self.breath_rate_bpm:.2f}, "
            f"pacer_bpm={pacer})"
        )
