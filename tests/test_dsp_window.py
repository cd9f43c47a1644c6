"""window_metrics: time domain against NumPy, rejected beats, reasons, spectral measures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from heartsong.dsp import window
from heartsong.dsp.coherence import hrv_coherence
from heartsong.dsp.hrv_freq import hrv_frequency
from heartsong.dsp.resp import resp_rate
from heartsong.dsp.window import (
    WINDOW_METRIC_NAMES,
    WindowRules,
    _compact_kernel,
    _compiled_sources_digest_kernel,
    _finite_sum_kernel,
    _refresh_stale_kernels,
    _scan_beats_kernel,
    _sources_digest,
    window_metrics,
)
from heartsong.errors import InputDataError

T0 = 500.0


def series(duration_s: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Beat times, the NN interval ending at each (first NaN) and an all-valid mask."""
    rng = np.random.default_rng(seed)
    n = int(duration_s / 0.8)
    k = np.arange(n)
    rr = 800.0 + 40.0 * np.sin(2 * np.pi * k / 4.0) + 15.0 * rng.standard_normal(n)
    t = T0 + np.cumsum(rr) / 1000.0
    nn = rr.copy()
    nn[0] = np.nan
    valid = np.ones(n, dtype=bool)
    valid[:2] = False
    return t, nn, valid


def time_numpy(nn: np.ndarray, pairs: np.ndarray) -> dict[str, float]:
    """Task Force time domain and Poincare SD1/SD2 of clean intervals and allowed pairs."""
    d = np.diff(nn)[pairs]
    a, b = nn[:-1][pairs], nn[1:][pairs]
    return {
        "hr_bpm": 60000.0 / nn.mean(),
        "sdnn_ms": float(np.std(nn, ddof=1)),
        "rmssd_ms": float(np.sqrt(np.mean(d**2))),
        "pnn50_pct": float(100.0 * np.mean(np.abs(d) > 50.0)),
        "sd1_ms": float(np.std((b - a) / np.sqrt(2), ddof=1)),
        "sd2_ms": float(np.std((b + a) / np.sqrt(2), ddof=1)),
    }


def test_compaction_kernel_matches_numpy() -> None:
    _, nn, valid = series(120.0)
    nn[[10, 11, 40]] = np.nan  # rejected beats
    valid[[12, 30]] = False
    clean = np.empty(nn.size)
    pairs = np.zeros(nn.size - 1, dtype=bool)
    m, total, n_pairs = _compact_kernel(nn, valid, clean, pairs)
    pos = np.flatnonzero(np.isfinite(nn))
    expected_pairs = (np.diff(pos) == 1) & valid[pos[1:]]
    assert m == pos.size and total == pytest.approx(np.nansum(nn))
    np.testing.assert_array_equal(clean[:m], nn[pos])
    np.testing.assert_array_equal(pairs[: m - 1], expected_pairs)
    assert n_pairs == np.count_nonzero(expected_pairs)


def test_time_domain_with_rejected_beats_matches_numpy() -> None:
    t, nn, valid = series(120.0)
    nn[[10, 11, 40]] = np.nan
    valid[[12, 30]] = False
    m = window_metrics(t, nn, valid, t_start_s=T0, t_end_s=float(t[-1]), quality=None, freq=False)
    pos = np.flatnonzero(np.isfinite(nn))
    ref = time_numpy(nn[pos], (np.diff(pos) == 1) & valid[pos[1:]])
    for name, value in ref.items():
        assert getattr(m, name) == pytest.approx(value, rel=1e-12), name


def test_small_kernels_match_numpy() -> None:
    x = np.array([1.0, np.nan, 2.5, np.inf, -4.0])
    assert _finite_sum_kernel(x) == pytest.approx(-0.5)
    t = np.array([0.0, 1.0, 2.0])
    assert _scan_beats_kernel(t, np.array([np.nan, 800.0, 810.0])) == 0
    assert _scan_beats_kernel(t[::-1].copy(), np.ones(3)) == 1
    assert _scan_beats_kernel(t, np.array([800.0, -1.0, 810.0])) == 2


def test_window_selects_its_beats_and_matches_numpy() -> None:
    t, nn, valid = series(200.0, seed=1)
    start, end = T0 + 60.0, T0 + 120.0
    m = window_metrics(t, nn, valid, t_start_s=start, t_end_s=end, quality=0.9, freq=False)
    inside = (t >= start) & (t <= end)
    ref = time_numpy(nn[inside], np.ones(int(inside.sum()) - 1, dtype=bool))
    for name, value in ref.items():
        assert getattr(m, name) == pytest.approx(value, rel=1e-12), name
    assert m.signal_quality == 0.9
    for name in ("lf_hf", "resp_rate_bpm", "coherence"):
        assert getattr(m, name) is None
        assert m.reasons[name] == "frequency-domain measures not requested"


def test_rejected_beats_and_broken_pairs_are_left_out() -> None:
    t, nn, valid = series(60.0, seed=2)
    nn[20] = np.nan
    valid[40] = False
    m = window_metrics(t, nn, valid, t_start_s=T0, t_end_s=t[-1], quality=None, freq=False)
    pos = np.flatnonzero(np.isfinite(nn))
    pairs = (np.diff(pos) == 1) & valid[pos[1:]]
    ref = time_numpy(nn[pos], pairs)
    assert m.rmssd_ms == pytest.approx(ref["rmssd_ms"], rel=1e-12)
    assert m.sdnn_ms == pytest.approx(ref["sdnn_ms"], rel=1e-12)
    assert m.signal_quality is None and m.reasons["signal_quality"] == "signal quality not measured"


def test_too_few_beats_give_none_with_reasons_and_as_dict_is_exact() -> None:
    t, nn, valid = series(10.0)
    m = window_metrics(t, nn, valid, t_start_s=T0, t_end_s=T0 + 60.0, quality=1.0, freq=True)
    for name in ("hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct", "sd1_ms", "sd2_ms"):
        assert getattr(m, name) is None and m.reasons[name].startswith("too few clean beats")
    assert m.lf_hf is None and "LF/HF" in m.reasons["lf_hf"]
    assert m.resp_rate_bpm is None and "too little signal" in m.reasons["resp_rate_bpm"]
    assert m.coherence is None and "coherence" in m.reasons["coherence"]
    d = m.as_dict()
    assert list(d) == [*WINDOW_METRIC_NAMES, "reasons"]
    reasons = d["reasons"]
    assert d["signal_quality"] == 1.0
    assert isinstance(reasons, dict) and "signal_quality" not in reasons


def test_few_differences_keep_hr_but_not_rmssd() -> None:
    t, nn, valid = series(60.0, seed=3)
    valid[:] = False  # every beat after a gap
    m = window_metrics(t, nn, valid, t_start_s=T0, t_end_s=t[-1], quality=None, freq=False)
    assert m.hr_bpm is not None and m.sdnn_ms is not None
    assert m.rmssd_ms is None and m.sd1_ms is None
    assert m.reasons["rmssd_ms"] == "too few successive differences: 0 < 10"
    strict = WindowRules(min_clean_intervals=500)
    m = window_metrics(
        t, nn, valid, t_start_s=T0, t_end_s=t[-1], quality=None, freq=False, rules=strict
    )
    assert m.hr_bpm is None


def test_spectral_measures_agree_with_their_own_functions() -> None:
    t, nn, valid = series(400.0, seed=4)
    end = float(t[-1])
    m = window_metrics(
        t,
        nn,
        valid,
        t_start_s=end - 60.0,
        t_end_s=end,
        quality=1.0,
        freq=True,
        freq_t_start_s=end - 300.0,
    )
    short = t >= end - 60.0
    long = t >= end - 300.0
    assert m.resp_rate_bpm == pytest.approx(resp_rate(t[short], nn[short]).rate_bpm, rel=1e-9)
    assert m.coherence == pytest.approx(hrv_coherence(t[short], nn[short]), rel=1e-9)
    assert m.lf_hf == pytest.approx(hrv_frequency(t[long], nn[long]).lf_hf, rel=1e-9)
    # the RR series alternates with a 4-beat period: breathing at a quarter of the heart rate
    assert m.resp_rate_bpm == pytest.approx(60000.0 / 800.0 / 4.0, rel=0.05)
    one_minute = window_metrics(
        t, nn, valid, t_start_s=end - 60.0, t_end_s=end, quality=1.0, freq=True
    )
    assert one_minute.lf_hf is None and "LF/HF" in one_minute.reasons["lf_hf"]


def test_whole_record_spans_use_windowed_spectral_estimators() -> None:
    t, nn, valid = series(600.0, seed=5)
    m = window_metrics(t, nn, valid, t_start_s=T0, t_end_s=float(t[-1]), quality=1.0, freq=True)
    assert m.lf_hf is not None and m.coherence is not None and m.resp_rate_bpm is not None
    assert m.coherence == pytest.approx(hrv_coherence(t, nn), rel=1e-9)
    assert not math.isnan(m.resp_rate_bpm)


def test_bad_inputs_name_the_field() -> None:
    t, nn, valid = series(60.0)
    kw = {"t_start_s": T0, "t_end_s": T0 + 60.0, "quality": None, "freq": False}
    with pytest.raises(InputDataError, match="valid_diff"):
        window_metrics(t, nn, valid.astype(int), **kw)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="beat_t_s"):
        window_metrics(t[::-1], nn, valid, **kw)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="nn_ms"):
        window_metrics(t, -nn, valid, **kw)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="amplitude"):
        window_metrics(t, nn, valid, amplitude=np.ones(3), **kw)  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="quality"):
        window_metrics(t, nn, valid, t_start_s=T0, t_end_s=T0 + 60.0, quality=2.0, freq=False)
    with pytest.raises(InputDataError, match="t_end_s"):
        window_metrics(t, nn, valid, t_start_s=T0, t_end_s=T0, quality=None, freq=False)


def test_kernels_are_compiled_against_the_current_sources() -> None:
    # numba's cache watches a kernel's own file only; this module's kernels carry the
    # digest of the files whose kernels they call, and are recompiled when it changes.
    assert _compiled_sources_digest_kernel() == window._SOURCES_DIGEST
    assert window._SOURCES_DIGEST == _sources_digest(window._KERNEL_SOURCES) != 0


def test_a_stale_cache_is_recompiled() -> None:
    class Kernel:
        recompiled = 0

        def recompile(self) -> None:
            self.recompiled += 1

    kernels = [Kernel(), Kernel()]
    assert not _refresh_stale_kernels(7, lambda: 7, kernels)
    assert [k.recompiled for k in kernels] == [0, 0]
    assert _refresh_stale_kernels(8, lambda: 7, kernels)
    assert [k.recompiled for k in kernels] == [1, 1]


def test_a_stale_cache_also_recompiles_unguarded_callees() -> None:
    # The mixer inlines composer kernels, which inline kernels.py's: when kernels.py
    # changes, composer's own cache does not notice, so the guard flushes it too.
    import types

    callee = types.ModuleType("fake_callee")

    def py_func() -> None:
        pass

    py_func.__module__ = "fake_callee"

    class Kernel:
        recompiled = 0

        def recompile(self) -> None:
            self.recompiled += 1

    inner = Kernel()
    inner.py_func = py_func  # type: ignore[attr-defined]
    callee.inner = inner  # type: ignore[attr-defined]
    callee.imported = Kernel()  # no py_func of this module: not its kernel
    own = Kernel()
    assert not _refresh_stale_kernels(7, lambda: 7, [own], [callee])
    assert inner.recompiled == 0
    assert _refresh_stale_kernels(8, lambda: 7, [own], [callee])
    assert (inner.recompiled, own.recompiled, callee.imported.recompiled) == (1, 1, 0)


def test_the_fused_kernel_agrees_with_the_separate_estimators() -> None:
    # One kernel call per window: time domain, breathing rate and coherence must be what
    # the public functions of their modules give on the same beats.
    t, nn, valid = series(64.0, seed=4)
    amp = 500.0 + 40.0 * np.sin(2 * np.pi * 0.25 * t)
    base = 1.0e4 + 30.0 * np.sin(2 * np.pi * 0.25 * t + 1.0)
    m = window_metrics(
        t,
        nn,
        valid,
        t_start_s=t[0] - 0.1,
        t_end_s=t[-1],
        quality=None,
        freq=True,
        amplitude=amp,
        baseline=base,
        lf_hf=False,
    )
    seg = np.zeros(t.size, dtype=np.int64)
    expected_rate = resp_rate(t, nn, seg, amplitude=amp, baseline=base)
    assert m.resp_rate_bpm == pytest.approx(expected_rate.rate_bpm, rel=1e-12)
    assert m.coherence == pytest.approx(hrv_coherence(t, nn, seg), rel=1e-12)
    assert m.reasons["lf_hf"] == "LF/HF not requested for this window"


@pytest.mark.parametrize("ppg", [True, False])
def test_many_windows_in_one_call_equal_one_call_each(ppg: bool) -> None:
    # The batch analysis measures every sliding window in one kernel call: the values
    # and reasons must be those of the per-window path (LF/HF left out).
    t, nn, valid = series(400.0, seed=6)
    rng = np.random.default_rng(6)
    nn[rng.choice(t.size, 25, replace=False)] = np.nan
    nn[(t > T0 + 150.0) & (t < T0 + 215.0)] = np.nan  # windows with too few clean beats
    amp = 500.0 + 40.0 * np.sin(2 * np.pi * 0.25 * t) if ppg else None
    base = 1.0e4 + 30.0 * np.sin(2 * np.pi * 0.25 * t + 1.0) if ppg else None
    starts = T0 + 10.0 * np.arange(34, dtype=np.float64)
    ends = starts + 60.0
    quality = np.linspace(0.2, 1.0, starts.size) if ppg else None
    rows = window._window_rows_many(
        t,
        nn,
        valid,
        amp,
        base,
        t.searchsorted(starts, side="left"),
        t.searchsorted(ends, side="right"),
        starts,
        ends,
        quality,
        WindowRules(),
        "none",
    )
    assert len(rows) == starts.size
    n_missing = 0
    for w, (values, reasons) in enumerate(rows):
        expected, why = window._window_values(
            t,
            nn,
            valid,
            t_start_s=float(starts[w]),
            t_end_s=float(ends[w]),
            quality=None if quality is None else float(quality[w]),
            freq=True,
            lf_hf=False,
            amplitude=amp,
            baseline=base,
            quality_reason="none",
        )
        why.pop("lf_hf")
        assert values == expected and reasons == why
        n_missing += values[1] is None
    assert 0 < n_missing < starts.size  # both measured and refused windows were compared


def test_the_sorted_buffer_users_recompile_when_it_changes() -> None:
    # The four window kernels' modules inline heartsong.dsp.sorted_buffer; numba's cache
    # would keep an old copy of it after an update, so its digest is compiled in.
    from heartsong.dsp import artifacts, artifacts_stream, batch, quality, sorted_buffer
    from heartsong.numba_cache import module_kernels

    for module in (artifacts, artifacts_stream, batch, quality):
        assert module._compiled_sources_digest_kernel() == module._SOURCES_DIGEST
        assert module._SOURCES_DIGEST == _sources_digest((sorted_buffer,)) != 0
        kernels = module_kernels(vars(module))
        assert module._compiled_sources_digest_kernel in kernels
        assert sorted_buffer._sorted_insert not in kernels  # imported, not its own
