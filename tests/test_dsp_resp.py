"""Breathing rate from RSA and PPG modulation: kernels, fusion, the simulated person."""

from __future__ import annotations

import numpy as np
import pytest

from heartsong.dsp.filters import sos_filtfilt
from heartsong.dsp.pipeline import analyze_ppg, ppg_bandpass_sos
from heartsong.dsp.resp import (
    RespEstimate,
    _resp_peak_kernel,
    fuse_resp,
    ppg_pulse_features,
    resp_estimates,
    resp_from_psd,
    resp_from_psds,
    resp_rate,
    resp_rate_from_ppg,
    resp_rate_from_rr,
    resp_window_psds,
)
from heartsong.errors import InputDataError
from heartsong.sensors.simulated import PersonParams, PpgSynth, SimulatedPerson, SimulatedStrap

FS = 50.0


def beats(duration_s: float, mean_s: float = 0.85, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.cumsum(mean_s + 0.03 * rng.standard_normal(int(duration_s / mean_s * 1.1)))
    return t[t < duration_s]


def peak_numpy(psd: np.ndarray, df: float, lo: float, hi: float) -> tuple[float, float]:
    """Reference for the peak kernel: highest point, the HF guard, parabola, power share."""
    f = df * np.arange(1, psd.size + 1)
    band = np.flatnonzero((f >= lo - 1e-9) & (f <= hi + 1e-9))
    best = int(band[np.argmax(psd[band])])
    k_lo = int(band[0])
    if f[best] < 0.15:
        hf = [
            k
            for k in band[1:-1]
            if f[k] >= 0.15 - 1e-9 and psd[k] > psd[k - 1] and psd[k] >= psd[k + 1]
        ]
        if hf:
            alt = max(hf, key=lambda k: psd[k])
            if psd[alt] >= 0.25 * psd[best] and abs(f[alt] - 2 * f[best]) > 0.02:
                best = alt
                k_lo = int(np.flatnonzero(f >= 0.15 - 1e-9)[0])
    left, centre, right = psd[best - 1], psd[best], psd[best + 1]
    offset = np.clip(0.5 * (left - right) / (left - 2 * centre + right), -0.5, 0.5)
    f_peak = f[best] + offset * df
    sel = np.arange(k_lo, band[-1] + 1)
    near = sel[np.abs(f[sel] - f_peak) <= 0.03]
    return float(f_peak), float(psd[near].sum() / psd[sel].sum())


@pytest.mark.parametrize("seed", range(4))
def test_peak_kernel_matches_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    df = 0.004
    f = df * np.arange(1, 141)
    psd = rng.exponential(0.2, 140)
    psd += 5.0 * np.exp(-0.5 * ((f - rng.uniform(0.08, 0.12)) / 0.01) ** 2)  # slow peak
    psd += rng.uniform(0.5, 3.0) * np.exp(-0.5 * ((f - rng.uniform(0.2, 0.35)) / 0.01) ** 2)
    got = _resp_peak_kernel(psd, df, 4 / 60, 0.5, 0.03, 0.15, 0.25, 0.02)
    ref = peak_numpy(psd, df, 4 / 60, 0.5)
    assert got[0] == pytest.approx(ref[0], rel=1e-10) and got[1] == pytest.approx(ref[1], rel=1e-10)


def test_rsa_sinusoid_gives_its_rate() -> None:
    t = beats(64.0)
    nn = 850.0 + 30.0 * np.sin(2 * np.pi * 0.25 * t)
    est = resp_rate_from_rr(t, nn)
    assert est.valid and est.source == "rsa"
    assert est.rate_bpm == pytest.approx(15.0, abs=0.3)
    assert est.quality > 0.8


def test_a_strong_mayer_wave_does_not_hide_spontaneous_breathing() -> None:
    t = beats(64.0, seed=1)
    rng = np.random.default_rng(2)
    mayer = 40.0 * np.sin(2 * np.pi * 0.1 * t)
    rsa = 25.0 * np.sin(2 * np.pi * 0.27 * t + 0.5)  # 16.2 breaths/min, (25/40)^2 = 0.39
    est = resp_rate_from_rr(t, 850.0 + mayer + rsa + 2.0 * rng.standard_normal(t.size))
    assert est.rate_bpm == pytest.approx(16.2, abs=0.5)


def test_slow_breathing_with_its_harmonic_stays_slow() -> None:
    t = beats(64.0, seed=3)
    slow = 60.0 * np.sin(2 * np.pi * 0.1 * t) + 30.0 * np.sin(2 * np.pi * 0.2 * t)  # 6/min
    est = resp_rate_from_rr(t, 850.0 + slow)
    assert est.rate_bpm == pytest.approx(6.0, abs=0.3)


def test_pulse_features_match_a_numpy_loop() -> None:
    rng = np.random.default_rng(4)
    raw = np.cumsum(rng.standard_normal(2000))
    filt = np.sin(np.arange(2000) * 2 * np.pi / 45.0) + 0.1 * rng.standard_normal(2000)
    pos = np.arange(30.0, 1990.0, 45.0) + rng.uniform(-3, 3, 44)
    amp, base = ppg_pulse_features(raw, filt, FS, pos)
    back, ahead, trough_back = round(0.05 * FS), round(0.2 * FS), round(1.5 * FS)
    prev = -1
    for i, p in enumerate(np.round(pos).astype(int)):
        lo, hi = max(p - back, 0, prev + 1), min(p + ahead, 1999)
        peak = lo + int(np.argmax(filt[lo : hi + 1]))
        t_lo = max(peak - trough_back, 0, prev + 1)
        prev = peak
        trough = t_lo + int(np.argmin(filt[t_lo:peak]))
        assert amp[i] == pytest.approx(filt[peak] - filt[trough])
        assert base[i] == pytest.approx(0.5 * (raw[peak] + raw[trough]))


def test_amplitude_and_baseline_modulation_give_the_rate() -> None:
    t = beats(64.0, seed=5)
    breath = np.sin(2 * np.pi * 0.2 * t)  # 12 breaths/min
    rng = np.random.default_rng(6)
    amplitude = 1000.0 * (1.0 + 0.1 * breath) + 5.0 * rng.standard_normal(t.size)
    baseline = 50000.0 + 300.0 * breath + 20.0 * rng.standard_normal(t.size)
    est = resp_rate_from_ppg(t, amplitude, baseline)
    assert est.valid and est.source == "ppg_am+ppg_bw"
    assert est.rate_bpm == pytest.approx(12.0, abs=0.3)


def test_fusion_averages_agreement_and_refuses_disagreement() -> None:
    a = RespEstimate(14.0, 0.6, "rsa")
    b = RespEstimate(15.0, 0.4, "ppg_am")
    fused = fuse_resp([a, b])
    assert fused.rate_bpm == pytest.approx(14.4) and fused.quality == pytest.approx(0.5)
    far = fuse_resp([a, RespEstimate(24.0, 0.5, "ppg_bw")])  # sd 5 > 4 breaths/min
    assert not far.valid and "disagree" in far.reason
    weak = fuse_resp([RespEstimate(14.0, 0.1, "rsa")])
    assert not weak.valid and "quality 0.10" in weak.reason
    low_dropped = fuse_resp([a, RespEstimate(30.0, 0.1, "ppg_bw")])
    assert low_dropped.rate_bpm == pytest.approx(14.0) and low_dropped.source == "rsa"


def test_too_little_signal_gives_a_reason() -> None:
    t = beats(20.0)
    est = resp_rate(t, 850.0 + 30.0 * np.sin(2 * np.pi * 0.25 * t))
    assert not est.valid and "too little signal" in est.reason
    with pytest.raises(InputDataError, match="nn_ms"):
        resp_rate(t, np.ones(3))


def simulate(
    pacer_at_s: float | None, duration_s: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A calm person (14 breaths/min), its strap's RR and its finger PPG at 50 Hz."""
    person = SimulatedPerson(PersonParams(stress=0.0, motion_artifacts_per_hour=0.0), seed=seed)
    strap = SimulatedStrap(person)
    synth = PpgSynth(person, FS, seed=seed + 1)
    ppg, rates, rr, rr_t = [], [], [], []
    while synth.t_next_s < duration_s:
        if pacer_at_s is not None and synth.t_next_s >= pacer_at_s and person.pacer_bpm is None:
            person.set_pacer(6.0)
        ir, _, _ = synth.read(int(FS))
        ppg.append(ir)
        rates.append((synth.t_next_s, person.breath_rate_bpm))
        for _, r, b in strap.notifications_until(synth.t_next_s):
            rr.append(r)
            rr_t.append(b)
    truth = np.array(rates)
    return np.concatenate(ppg), np.concatenate(rr_t), np.concatenate(rr), truth


@pytest.mark.parametrize(("pacer_at_s", "expected"), [(None, 14.0), (60.0, 6.0)])
def test_simulated_person_rate_from_rr_and_from_ppg(
    pacer_at_s: float | None, expected: float
) -> None:
    duration = 300.0
    ppg, rr_t, rr, truth = simulate(pacer_at_s, duration, seed=7)
    window = truth[:, 0] > duration - 60.0
    true_rate = float(truth[window, 1].mean())
    assert true_rate == pytest.approx(expected, abs=1.0)  # the person did as asked

    last = rr_t > duration - 60.0
    from_rr = resp_rate_from_rr(rr_t[last], rr[last])
    assert from_rr.rate_bpm == pytest.approx(true_rate, abs=1.0)

    x = -ppg  # raw counts fall at systole
    filtered = sos_filtfilt(ppg_bandpass_sos(FS), x)
    beat_s = analyze_ppg(x, FS)
    amplitude, baseline = ppg_pulse_features(x, filtered, FS, beat_s * FS)
    keep = beat_s > duration - 60.0
    from_ppg = resp_rate_from_ppg(beat_s[keep], amplitude[keep], baseline[keep])
    assert from_ppg.rate_bpm == pytest.approx(true_rate, abs=1.0)
    nn = np.full(beat_s.size, np.nan)
    nn[1:] = np.diff(beat_s) * 1000.0
    fused = resp_rate(beat_s[keep], nn[keep], amplitude=amplitude[keep], baseline=baseline[keep])
    assert fused.rate_bpm == pytest.approx(true_rate, abs=1.0)
    assert set(fused.source.split("+")) <= {"rsa", "ppg_am", "ppg_bw"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_rows_equal_the_fusion_of_each_row(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = beats(60.0)
    nn = 850.0 + 30.0 * np.sin(2 * np.pi * 0.25 * t) + 10.0 * rng.standard_normal(t.size)
    amp = (
        400.0 + (20.0 if seed else 0.0) * np.sin(2 * np.pi * 0.25 * t) + rng.standard_normal(t.size)
    )
    base = 1e4 + 25.0 * np.sin(2 * np.pi * (0.25 + 0.1 * seed) * t) + rng.standard_normal(t.size)
    series = {"nn_ms": nn, "amplitude": amp, "baseline": base}
    seg = np.zeros(t.size, dtype=np.int64)
    got = resp_window_psds(t, series, seg)
    assert not isinstance(got, str)
    psds, df, n_used, span = got
    sources = ("rsa", "ppg_am", "ppg_bw")
    rows = [resp_from_psd(psds[j], df, n_used, span, sources[j]) for j in range(3)]
    expected = fuse_resp(rows)
    fused = resp_from_psds(psds, df, n_used, span, sources)
    assert fused.source == expected.source and fused.reason == expected.reason
    if expected.valid:
        assert fused.rate_bpm == pytest.approx(expected.rate_bpm, rel=1e-12)
        assert fused.quality == pytest.approx(expected.quality, rel=1e-12)
    else:
        assert not fused.valid


def resp_windows_loop(
    t: np.ndarray, series: dict[str, np.ndarray], window_s: float = 64.0
) -> RespEstimate:
    """Reference for long spans: a Python loop over windows every half window, each the
    fusion of the public per-series estimates; the median rate of the windows with one,
    else the last window's estimate."""
    ends = [*np.arange(t[0] + window_s, t[-1], window_s / 2.0).tolist(), float(t[-1])]
    seg = np.zeros(t.size, dtype=np.int64)
    fused = []
    for end in ends:
        w = (t >= end - window_s) & (t <= end)
        part = {k: v[w] for k, v in series.items()}
        fused.append(fuse_resp(resp_estimates(t[w], part, seg[w])))
    good = [e for e in fused if e.valid]
    if not good:
        return fused[-1]
    sources = sorted({s for e in good for s in e.source.split("+")})
    return RespEstimate(
        float(np.median([e.rate_bpm for e in good])),
        float(np.mean([e.quality for e in good])),
        "+".join(sources),
    )


@pytest.mark.parametrize("seed", [3, 4])
def test_the_window_loop_kernel_matches_a_python_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = beats(300.0, seed=seed)
    nn = 850.0 + 30.0 * np.sin(2 * np.pi * 0.25 * t) + 10.0 * rng.standard_normal(t.size)
    amp = 500.0 + 40.0 * np.sin(2 * np.pi * 0.24 * t) + 5.0 * rng.standard_normal(t.size)
    base = 1.0e4 + 30.0 * np.sin(2 * np.pi * 0.26 * t + 1.0)
    nn[rng.choice(t.size, 15, replace=False)] = np.nan
    nn[(t > 100.0) & (t < 170.0)] = np.nan  # windows with too little signal
    amp[rng.choice(t.size, 10, replace=False)] = np.nan
    cases = [
        (
            resp_rate(t, nn, amplitude=amp, baseline=base),
            {"nn_ms": nn, "amplitude": amp, "baseline": base},
        ),
        (resp_rate_from_rr(t, nn), {"nn_ms": nn}),
        (resp_rate_from_ppg(t, amp, base), {"amplitude": amp, "baseline": base}),
    ]
    for got, series in cases:
        expected = resp_windows_loop(t, series)
        assert expected.valid
        assert got.rate_bpm == pytest.approx(expected.rate_bpm, rel=1e-12)
        assert got.quality == pytest.approx(expected.quality, rel=1e-12)
        assert got.source == expected.source


def test_a_long_span_without_any_estimate_gives_the_last_windows_reason() -> None:
    t = beats(300.0)
    nn = np.full(t.size, np.nan)
    nn[t > 280.0] = 850.0  # only the last 20 s hold intervals
    got = resp_rate_from_rr(t, nn)
    expected = resp_windows_loop(t, {"nn_ms": nn})
    assert not got.valid and got.reason == expected.reason
    assert "too little signal" in got.reason
