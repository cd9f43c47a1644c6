"""Tests of the simulated person, its PPG and its chest strap (heartsong.sensors.simulated)."""

from __future__ import annotations

import gc
import itertools
import math

import numpy as np
import pytest

from heartsong.events import FloatArray
from heartsong.sensors import sim_person, sim_ppg
from heartsong.sensors.simulated import (
    ADC_MAX,
    RR_TICKS_PER_S,
    PersonParams,
    PpgSynth,
    SimulatedPerson,
    SimulatedStrap,
    calibrate,
    rsa_gain,
)

CALM = PersonParams(stress=0.0, motion_artifacts_per_hour=0.0)


def hr_rmssd(beats: FloatArray) -> tuple[float, float]:
    """Mean heart rate (bpm) and RMSSD (ms) of a beat-time series (s)."""
    rr_ms = np.diff(beats) * 1000.0
    return 60_000.0 / float(rr_ms.mean()), float(np.sqrt(np.mean(np.diff(rr_ms) ** 2)))


def rr_peak_hz(beats: FloatArray, lo: float = 0.04, hi: float = 0.5) -> tuple[float, float]:
    """Frequency (Hz) and power of the spectral peak of the 4 Hz-resampled RR series."""
    rr = np.diff(beats)
    grid = np.arange(beats[1], beats[-1], 0.25)
    x = np.interp(grid, beats[1:], rr)
    x = (x - x.mean()) * np.hanning(x.shape[0])
    nfft = 8 * x.shape[0]
    power = np.abs(np.fft.rfft(x, nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft, 0.25)
    band = (freqs >= lo) & (freqs <= hi)
    i = int(np.argmax(power[band]))
    return float(freqs[band][i]), float(power[band][i])


# -- parameters and validation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hr_bpm", 10.0),
        ("rmssd_ms", -1.0),
        ("breath_rate_bpm", 100.0),
        ("stress", 1.5),
        ("pacer_follow_tau_s", 0.0),
        ("motion_artifacts_per_hour", math.nan),
        ("calm_tau_s", "fast"),
        ("follows_pacer", "yes"),
        ("calming", 1),
    ],
)
def test_bad_params_raise_value_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"PersonParams\.{field}"):
        PersonParams(**{field: value})  # type: ignore[arg-type]


def test_bad_arguments_raise_value_error_naming_the_argument() -> None:
    person = SimulatedPerson(CALM, 1)
    with pytest.raises(ValueError, match="seed"):
        SimulatedPerson(CALM, -1)
    with pytest.raises(ValueError, match=r"stress: a number from 0 to 1"):
        person.set_stress(1.2)
    with pytest.raises(ValueError, match="rate_bpm"):
        person.set_pacer(100.0)
    with pytest.raises(ValueError, match="t_s"):
        person.advance(-1.0)
    with pytest.raises(ValueError, match="fs_hz"):
        PpgSynth(person, 0.0, 1)
    with pytest.raises(ValueError, match="perfusion_index"):
        PpgSynth(person, 100.0, 1, perfusion_index=0.5)
    ppg = PpgSynth(person, 100.0, 1)
    with pytest.raises(ValueError, match="t_end_s"):
        ppg.remove_finger(5.0, 4.0)
    with pytest.raises(ValueError, match="n must"):
        ppg.read(-1)
    with pytest.raises(ValueError, match="period_s"):
        SimulatedStrap(person, period_s=0.0)


# -- heart rate, HRV and their calibration ----------------------------------------------


@pytest.mark.parametrize(
    ("hr_bpm", "rmssd_ms", "breath_bpm", "seed"),
    [(64.0, 42.0, 14.0, 11), (80.0, 25.0, 16.0, 12), (55.0, 70.0, 12.0, 13)],
)
def test_configured_hr_and_rmssd_are_reproduced(
    hr_bpm: float, rmssd_ms: float, breath_bpm: float, seed: int
) -> None:
    params = PersonParams(hr_bpm=hr_bpm, rmssd_ms=rmssd_ms, breath_rate_bpm=breath_bpm, stress=0.0)
    hr, rmssd = hr_rmssd(SimulatedPerson(params, seed).advance(300.0))
    assert hr == pytest.approx(hr_bpm, abs=1.0)
    assert rmssd == pytest.approx(rmssd_ms, rel=0.15)


def test_analytic_calibration_matches_the_mean_over_seeds() -> None:
    rmssds = [hr_rmssd(SimulatedPerson(CALM, seed).advance(300.0))[1] for seed in range(8)]
    assert float(np.mean(rmssds)) == pytest.approx(CALM.rmssd_ms, rel=0.05)


def test_calibration_gives_a_plausible_rsa_amplitude() -> None:
    cal = calibrate(PersonParams())
    assert 0.02 < cal.rsa_amplitude < 0.1  # +-2..10 % of heart rate
    assert cal.mayer_amplitude == pytest.approx(0.5 * cal.rsa_amplitude)
    more = calibrate(PersonParams(rmssd_ms=84.0))
    assert more.rsa_amplitude == pytest.approx(2.0 * cal.rsa_amplitude)


def test_ipfm_beats_integrate_exactly_one_beat_of_heart_rate() -> None:
    # Without noise the modulation is pure RSA: HR(t) = HR0 (1 + A r(t)), so the integral
    # of HR/60 between consecutive beats must be 1 (Bayly 1968), computed here with NumPy.
    params = PersonParams(
        stress=0.0,
        mayer_to_rsa=0.0,
        vlf_to_rsa=0.0,
        beat_noise_share=0.0,
        breath_rate_jitter=0.0,
    )
    person = SimulatedPerson(params, 3)
    beats = person.advance(30.0)
    amp = calibrate(params).rsa_amplitude
    for t0, t1 in itertools.pairwise(beats):
        t = np.linspace(t0, t1, 400)
        hr = params.hr_bpm * (1.0 + amp * person.respiration(t))
        assert np.trapezoid(hr / 60.0, t) == pytest.approx(1.0, abs=1e-3)


def test_rsa_gain_kernel_matches_numpy() -> None:
    f = np.linspace(0.03, 0.6, 50)
    expected = (1.0 / np.sqrt(1.0 + (f / 0.2) ** 2)) * (
        1.0 + 1.2 * np.exp(-0.5 * ((f - 0.1) / 0.03) ** 2)
    )
    got = np.array([rsa_gain(x, 0.1, 1.2) for x in f])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert rsa_gain(0.1) / rsa_gain(14 / 60) == pytest.approx(3.0, rel=0.15)


def test_stress_raises_hr_and_lowers_rmssd() -> None:
    results = [
        hr_rmssd(SimulatedPerson(PersonParams(stress=s, calming=False), 21).advance(300.0))
        for s in (0.0, 0.5, 1.0)
    ]
    (hr0, rm0), (hr5, rm5), (hr1, rm1) = results
    assert hr0 < hr5 < hr1
    assert 14.0 < hr1 - hr0 < 22.0
    assert rm0 > rm5 > rm1
    assert rm1 < 0.5 * rm0


def test_set_stress_takes_effect_gradually() -> None:
    person = SimulatedPerson(PersonParams(stress=0.0), 5)
    before = person.advance(120.0)
    person.set_stress(1.0)
    first_second = person.advance(121.0)
    later = person.advance(300.0)
    later = later[later > 180.0]
    assert hr_rmssd(later)[0] > hr_rmssd(before)[0] + 12.0
    assert person.hr_bpm == pytest.approx(64.0 + 18.0, abs=0.1)
    assert first_second.shape[0] <= 2  # no jump within the first second


# -- breathing and RSA -------------------------------------------------------------------


def test_rsa_follows_breathing_rate_and_pacer() -> None:
    person = SimulatedPerson(CALM, 7)
    f14, p14 = rr_peak_hz(person.advance(300.0))
    assert f14 == pytest.approx(14.0 / 60.0, abs=0.02)

    person.set_pacer(6.0)
    person.advance(540.0)  # 4 min to follow (tau 40 s)
    assert person.breath_rate_bpm == pytest.approx(6.0, abs=0.6)
    f6, p6 = rr_peak_hz(person.advance(840.0))
    assert f6 == pytest.approx(0.1, abs=0.02)
    assert f14 - f6 > 0.1  # the peak moved
    assert p6 > 3.0 * p14  # resonance: slow breathing enlarges RSA

    person.set_pacer(10.0)  # away from the 0.1 Hz Mayer waves
    person.advance(1080.0)
    f10, _ = rr_peak_hz(person.advance(1380.0))
    assert f10 == pytest.approx(10.0 / 60.0, abs=0.02)


def test_breathing_ignores_pacer_when_not_following() -> None:
    person = SimulatedPerson(PersonParams(stress=0.0, follows_pacer=False), 7)
    person.set_pacer(6.0)
    f, _ = rr_peak_hz(person.advance(300.0))
    assert f == pytest.approx(14.0 / 60.0, abs=0.02)
    assert person.breath_rate_bpm == pytest.approx(14.0, rel=0.15)
    assert person.pacer_bpm == 6.0


def test_respiration_signal_has_the_breathing_rate_and_range() -> None:
    person = SimulatedPerson(CALM, 2)
    person.advance(120.0)
    t = np.arange(0.0, 120.0, 0.1)
    r = person.respiration(t)
    assert r.min() >= -1.0 and r.max() <= 1.0 and r.max() - r.min() > 1.9
    spectrum = np.abs(np.fft.rfft(r - r.mean(), 8 * r.shape[0]))
    f_peak = np.fft.rfftfreq(8 * r.shape[0], 0.1)[int(np.argmax(spectrum))]
    assert f_peak == pytest.approx(14.0 / 60.0, abs=0.01)
    with pytest.raises(ValueError, match="simulated range"):
        person.respiration(np.array([200.0]))


def test_slow_breathing_calms_only_when_enabled() -> None:
    final = {}
    for calming in (True, False):
        person = SimulatedPerson(PersonParams(stress=0.8, calming=calming), 4)
        person.set_pacer(6.0)
        person.advance(900.0)
        final[calming] = person.stress
    assert final[True] < 0.3
    assert final[True] >= PersonParams().calm_floor
    assert final[False] == 0.8
    spontaneous = SimulatedPerson(PersonParams(stress=0.8), 4)
    spontaneous.advance(900.0)
    assert spontaneous.stress == 0.8  # 14/min does not calm


# -- determinism ----------------------------------------------------------------------


def _scripted_run(cuts: list[float]) -> tuple[FloatArray, FloatArray]:
    """Advance through ``cuts``, setting pacer at 10 s and stress at 73.3 s."""
    person = SimulatedPerson(PersonParams(), 42)
    pieces = []
    for t in cuts:
        pieces.append(person.advance(t))
        if t == 10.0:
            person.set_pacer(6.0)
        if t == 73.3:
            person.set_stress(0.9)
    return np.concatenate(pieces), person.respiration(np.linspace(100.0, 200.0, 777))


def test_beats_do_not_depend_on_the_partition_of_advance_calls() -> None:
    a = SimulatedPerson(PersonParams(), 5)
    b = SimulatedPerson(PersonParams(), 5)
    np.testing.assert_array_equal(
        np.concatenate([a.advance(10.0), a.advance(20.0)]), b.advance(20.0)
    )
    beats1, resp1 = _scripted_run([10.0, 73.3, 200.0])
    beats2, resp2 = _scripted_run([0.001, 3.7, 10.0, 10.0, 20.0013, 73.3, 123.4567, 199.99, 200.0])
    np.testing.assert_array_equal(beats1, beats2)
    np.testing.assert_array_equal(resp1, resp2)
    assert np.all(np.diff(beats1) > 0.25)


def test_seed_determines_the_beats() -> None:
    same = [SimulatedPerson(PersonParams(), 9).advance(60.0) for _ in range(2)]
    np.testing.assert_array_equal(same[0], same[1])
    other = SimulatedPerson(PersonParams(), 10).advance(60.0)
    n = min(other.shape[0], same[0].shape[0])
    assert np.max(np.abs(other[:n] - same[0][:n])) > 0.05


def test_block_noise_is_partition_independent() -> None:
    a = sim_person.BlockNoise(np.random.default_rng(1), 3, block=16)
    b = sim_person.BlockNoise(np.random.default_rng(1), 3, block=16)
    pieces = [a.take(5), a.peek(40).copy(), a.take(40), a.take(1)]
    np.testing.assert_array_equal(pieces[1], pieces[2])
    np.testing.assert_array_equal(np.concatenate([pieces[0], pieces[2], pieces[3]]), b.take(46))


# -- shared history ---------------------------------------------------------------------


def test_cursors_share_beats_and_history_stays_bounded() -> None:
    person = SimulatedPerson(CALM, 3)
    fast, slow = person.cursor(), person.cursor()
    got_fast = [fast.read_until(t) for t in np.arange(10.0, 1801.0, 10.0)]
    assert person.n_retained_beats > 1500  # the slow cursor pins everything
    got_slow = slow.read_until(1800.0)
    np.testing.assert_array_equal(np.concatenate(got_fast), got_slow)
    person.advance(1900.0)
    assert person.n_retained_beats < 600
    late = person.cursor(1850.0)
    assert late.read_until(1900.0)[0] > 1850.0
    with pytest.raises(ValueError, match="from_s"):
        person.cursor(0.0)
    del fast, slow, late
    gc.collect()
    person.advance(3600.0)
    assert person.n_retained_beats < 600  # dropped cursors do not pin


def test_eight_hours_run_in_bounded_memory() -> None:
    person = SimulatedPerson(PersonParams(calming=False), 8)
    beats = person.advance(8 * 3600.0)
    rr = np.diff(beats)
    assert beats.shape[0] == pytest.approx(person.hr_bpm * 480.0, rel=0.05)
    assert rr.min() > 0.4 and rr.max() < 1.5
    assert person.n_retained_beats < 600


# -- PPG ------------------------------------------------------------------------------


def test_ppg_has_the_beat_rate_and_pulse_delay() -> None:
    person = SimulatedPerson(CALM, 2)
    ppg = PpgSynth(person, 100.0, 7)
    check = person.cursor()
    ir, _, contact = ppg.read(6000)
    beats = check.read_until(60.0)
    assert contact
    t = np.arange(6000) / 100.0
    pulse = -(ir - np.convolve(ir, np.ones(101) / 101, mode="same"))  # up = more blood
    x = (ir - ir.mean()) * np.hanning(ir.shape[0])
    spectrum = np.abs(np.fft.rfft(x, 8 * x.shape[0]))
    freqs = np.fft.rfftfreq(8 * x.shape[0], 0.01)
    band = (freqs > 0.7) & (freqs < 3.0)
    beat_hz = (beats.shape[0] - 1) / (beats[-1] - beats[0])
    assert freqs[band][int(np.argmax(spectrum[band]))] == pytest.approx(beat_hz, abs=0.03)
    # one systolic peak per beat, about PTT + 0.13 s after it
    inner = slice(100, 5900)
    core = pulse[inner]
    is_peak = (core > np.roll(core, 1)) & (core >= np.roll(core, -1)) & (core > 0.4 * core.max())
    peaks = t[inner][is_peak]
    peaks = peaks[np.concatenate([[True], np.diff(peaks) > 0.35])]
    in_window = beats[(beats + 0.38 > t[100]) & (beats + 0.38 < t[5899])]
    assert abs(peaks.shape[0] - in_window.shape[0]) <= 2
    lags = [p - beats[beats < p][-1] for p in peaks if np.any(beats < p)]
    assert float(np.median(lags)) == pytest.approx(0.25 + 0.13, abs=0.04)


def test_ppg_reads_do_not_depend_on_partition() -> None:
    def make() -> PpgSynth:
        person = SimulatedPerson(PersonParams(motion_artifacts_per_hour=600.0), 3)
        ppg = PpgSynth(person, 100.0, 5)
        ppg.remove_finger(1.5, 2.5)
        return ppg

    a, b = make(), make()
    parts = [a.read(k) for k in (100, 100, 100, 1, 499, 37, 663)]
    whole = b.read(1500)
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    assert [p[2] for p in parts] == [True, False, False, True, True, True, True]
    assert not whole[2]
    assert a.t_next_s == b.t_next_s == 15.0


def test_ppg_contact_false_and_ambient_level_during_finger_removal() -> None:
    person = SimulatedPerson(CALM, 4)
    ppg = PpgSynth(person, 50.0, 4)
    ppg.remove_finger(20.0, 25.0)
    blocks = [ppg.read(50) for _ in range(40)]  # 1 s blocks
    for second, (ir, red, contact) in enumerate(blocks):
        off = 20 <= second < 25
        assert contact is not off
        assert ppg.contact_at(second + 0.5) is not off
        if off and 21 <= second < 24:
            assert np.all(ir < 3000.0) and np.all(red < 3000.0)
        if not off:
            assert np.median(ir) == pytest.approx(120_000.0, rel=0.02)
            assert np.median(red) == pytest.approx(95_000.0, rel=0.02)


def test_ppg_counts_are_18_bit_integers_with_the_oximetry_ratio() -> None:
    ratios = {}
    for spo2 in (97.0, 88.0):
        person = SimulatedPerson(CALM, 6)
        ir, red, _ = PpgSynth(person, 100.0, 6, spo2_pct=spo2).read(3000)
        for x in (ir, red):
            assert np.all(x == np.round(x)) and x.min() >= 0.0 and x.max() <= ADC_MAX
        smooth = np.ones(101) / 101
        ac_ir = np.std((ir - np.convolve(ir, smooth, "same"))[100:-100]) / np.mean(ir)
        ac_red = np.std((red - np.convolve(red, smooth, "same"))[100:-100]) / np.mean(red)
        ratios[spo2] = ac_red / ac_ir
    assert ratios[97.0] == pytest.approx((110.0 - 97.0) / 25.0, rel=0.15)
    assert ratios[88.0] > ratios[97.0]


def test_ppg_motion_artifacts_are_large_low_frequency_bursts() -> None:
    person = SimulatedPerson(PersonParams(stress=0.0, motion_artifacts_per_hour=300.0), 1)
    ppg = PpgSynth(person, 50.0, 1)
    ir, _, _ = ppg.read(50 * 600)
    intervals = ppg.motion_intervals()
    assert 25 <= len(intervals) <= 80  # Poisson, mean 50 in 10 min
    assert all(1.0 <= b - a <= 5.0 for a, b in intervals)
    t = np.arange(ir.shape[0]) / 50.0
    moving = np.zeros(t.shape, dtype=bool)
    for a, b in intervals:
        moving |= (t >= a) & (t < b)
    dev = np.abs(ir - np.median(ir))
    assert np.percentile(dev[moving], 90) > 2.0 * np.percentile(dev[~moving], 90)


def test_pulse_kernel_matches_numpy() -> None:
    onset = np.array([0.2, 1.1, 1.9])
    rr = np.array([0.9, 0.8, 1.4])
    amp = np.array([1.0, 0.9, 1.1])
    i0, fs = 37, 100.0
    got = np.zeros(400)
    sim_ppg._pulse_kernel(i0, fs, onset, rr, amp, got)
    t = (i0 + np.arange(400))[:, None] / fs
    scale = np.sqrt(np.clip(rr, 0.3, 1.5))
    sys = np.exp(-0.5 * ((t - onset - 0.13 * scale) / (0.05 * scale)) ** 2)
    dia = 0.45 * np.exp(-0.5 * ((t - onset - 0.36 * scale) / (0.09 * scale)) ** 2)
    np.testing.assert_allclose(got, ((sys + dia) * amp).sum(axis=1), atol=1e-5)


def test_ar1_kernel_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    drive = rng.standard_normal((60, 2))
    a, b = np.array([0.9, 0.5]), np.array([0.3, 2.0])
    state = np.array([1.5, -0.5])
    x0 = state.copy()
    got = np.empty_like(drive)
    sim_ppg._ar1_kernel(drive, a, b, state, got)
    i = np.arange(60)
    for k in range(2):
        powers = np.tril(a[k] ** (i[:, None] - i[None, :]))
        expected = a[k] ** (i + 1) * x0[k] + powers @ (b[k] * drive[:, k])
        np.testing.assert_allclose(got[:, k], expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(state, got[-1])


# -- chest strap ----------------------------------------------------------------------


def test_strap_rr_intervals_equal_beat_intervals_to_one_tick() -> None:
    person = SimulatedPerson(CALM, 12)
    strap = SimulatedStrap(person)
    check = person.cursor()
    notes = strap.notifications_until(30.5) + strap.notifications_until(120.0)
    beats = check.read_until(120.0)
    assert [n[0] for n in notes] == [float(k) for k in range(1, 121)]
    prev = 0.0
    for arrival, rr_ms, times in notes:
        assert rr_ms.shape == times.shape and rr_ms.shape[0] <= 4
        assert np.all((times > prev) & (times <= arrival))
        prev = arrival
    rr_ms = np.concatenate([n[1] for n in notes])
    times = np.concatenate([n[2] for n in notes])
    np.testing.assert_array_equal(times, beats[1:])  # first beat has no interval
    ticks = rr_ms * RR_TICKS_PER_S / 1000.0
    np.testing.assert_allclose(ticks, np.round(ticks), atol=1e-9)
    assert np.max(np.abs(rr_ms - np.diff(beats) * 1000.0)) <= 1000.0 / RR_TICKS_PER_S
    # quantised beat times: the intervals never drift from the beats
    assert abs(rr_ms.sum() / 1000.0 - (beats[-1] - beats[0])) <= 1.0 / RR_TICKS_PER_S


def test_strap_and_ppg_share_the_beats_of_one_person() -> None:
    alone = SimulatedStrap(SimulatedPerson(CALM, 13)).notifications_until(60.0)
    person = SimulatedPerson(CALM, 13)
    ppg, strap = PpgSynth(person, 50.0, 1), SimulatedStrap(person)
    shared = []
    for _ in range(12):
        ppg.read(250)  # the PPG runs ahead of the strap...
        shared += strap.notifications_until(ppg.t_next_s - 2.0)
    shared += strap.notifications_until(60.0)
    assert len(shared) == len(alone) == 60
    for (ta, ra, ba), (tb, rb, bb) in zip(alone, shared, strict=True):
        assert ta == tb
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(ba, bb)
