"""The streaming DSP pipeline: PPG blocks or wearable RR intervals in, beats and metrics out.

The stages are those of the batch analysis (:mod:`heartsong.dsp.batch`), each keeping its
state from one block to the next:

1. PPG front end (:mod:`heartsong.dsp.ppg_stream`): causal band-pass, Elgendi et al.
   (2013) systolic peaks, and per pulse its amplitude and baseline (the breathing
   modulations), its fiducial point, its correlation with a running pulse template
   (the beat's quality) and whether it is a pulse at all (implausible ones are dropped);
2. the kept beats, or a strap's RR intervals, go to a bounded, gap-aware beat store that
   corrects them after Lipponen & Tarvainen (2019), incrementally
   (:class:`heartsong.dsp.artifacts_stream.StreamingBeatCorrector`): only the beats that
   arrived since the last update, and the context the method needs, are classified and
   corrected;
3. every few seconds, the computation of :func:`heartsong.dsp.window.window_metrics`
   over the corrected beats: time-domain HRV, breathing rate and coherence over the
   sliding window (default 60 s), LF/HF over the last 5 min, and the window's signal
   quality (share of beats whose pulse matches the template, times one minus the share
   of corrected intervals).

Cost. The appliance runs this next to an audio synthesiser on a Pi Zero 2 W, and a
Python call costs far more than a 25-sample block's arithmetic. So a block is only
appended to a buffer (one kernel call that also checks the samples); the front end runs
once a *chunk* (``chunk_s``, default the metrics interval) has accumulated, or when
metrics are asked for; an update is one kernel call for the correction and the window's
rows, one for the window's metrics, and the building of the result. Beats therefore come
out up to ``chunk_s`` later; the detector itself decides a peak about 0.5 s after it.
The filter, detector and template keep their state across chunks, so the beats do not
depend on how the signal is split. LF/HF over 5 min changes slowly and costs the most;
it is recomputed every ``freq_update_s`` seconds and held in between.

Beats are never joined across a gap: a PPG block with ``gap_samples > 0``, without
contact, or not continuing the previous block in time, and an RR block with
``gap_before`` or without contact, start a new segment.

:func:`analyze_ppg` is the plain batch beat finder (zero-phase band-pass and the same
detector kernel); :func:`heartsong.dsp.batch.analyze_recording` is the full batch analysis.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from heartsong.dsp.artifacts_stream import CorrectedWindow, StreamingBeatCorrector
from heartsong.dsp.beats import BeatWindow
from heartsong.dsp.filters import PPG_FILTER_ORDER, sos_filtfilt
from heartsong.dsp.peaks import ppg_findpeaks_elgendi
from heartsong.dsp.ppg_stream import (
    FIDUCIALS,
    PpgFrontEnd,
    SampleClock,
    _append_kernel,
    ppg_bandpass_sos,
)
from heartsong.dsp.quality import BEAT_QUALITY_MIN
from heartsong.dsp.window import WindowRules, _window_rows
from heartsong.errors import InputDataError
from heartsong.events import FloatArray, Metrics, PpgBlock, RrBlock, SourceName

__all__ = ["StreamingPipeline", "analyze_ppg", "ppg_bandpass_sos", "warm_up"]

logger = logging.getLogger(__name__)

#: A PPG rate differing from the designed one by more than this fraction restarts the
#: PPG state; smaller differences (a drift-corrected rate estimate) are only used for timing.
_FS_TOLERANCE = 0.02
#: A block continues the stream when it starts this close to where the last one ended, s.
_CLOCK_TOLERANCE_S = SampleClock.TOLERANCE_S
#: Highest heart rate the beat stores are sized for, beats per minute.
_MAX_HR_BPM = 220.0
_NO_BEATS = np.zeros(0)
_NO_BEATS.flags.writeable = False


def analyze_ppg(x: FloatArray, fs_hz: float, *, invert: bool = False) -> FloatArray:
    """Find the heart beats in a whole PPG recording (plain batch detector).

    Zero-phase band-pass (:func:`ppg_bandpass_sos`, forward-backward) followed by the
    Elgendi et al. (2013) detector with parabolic sub-sample timing, the very kernel the
    streaming pipeline uses. No artefact handling: see
    :func:`heartsong.dsp.batch.analyze_recording` for the full analysis.

    Parameters
    ----------
    x:
        PPG samples (any amplitude unit), systolic peaks pointing up unless ``invert``.
    fs_hz:
        Sampling rate in Hz.
    invert:
        True for raw reflective-sensor counts, which *fall* at systole (more blood absorbs
        more light).

    Returns
    -------
    FloatArray
        Beat times in seconds from the first sample, increasing.
    """
    if not (math.isfinite(fs_hz) and fs_hz > 0.0):
        raise InputDataError("fs_hz", "a positive, finite sampling rate in Hz", fs_hz)
    sig = np.asarray(x, dtype=np.float64)
    if sig.ndim != 1:
        raise InputDataError("x", "a 1-D array of PPG samples", sig.shape)
    min_samples = max(int(2.0 * fs_hz), 3 * (2 * PPG_FILTER_ORDER + 1) + 1)
    if sig.shape[0] < min_samples:
        raise InputDataError(
            "x", f"at least {min_samples} samples (2 s at {fs_hz:g} Hz)", sig.shape[0]
        )
    if invert:
        sig = -sig
    filtered = sos_filtfilt(ppg_bandpass_sos(fs_hz), sig)
    times: FloatArray = ppg_findpeaks_elgendi(filtered, fs_hz) / fs_hz
    return times


def warm_up() -> None:
    """Run every streaming DSP kernel once on small inputs, so numba compiles (or loads its
    cache) at start-up rather than inside the processing loop."""
    fs_hz = 50.0
    t = np.arange(int(40.0 * fs_hz)) / fs_hz
    rr_s = 0.8 + 0.05 * np.sin(2.0 * np.pi * 0.25 * np.arange(60))
    beats = np.cumsum(rr_s)
    pulse = np.zeros_like(t)
    for b in beats:
        pulse += np.exp(-0.5 * ((t - b) / 0.08) ** 2)
    x = 1000.0 * (1.0 - pulse)
    sos_filtfilt(ppg_bandpass_sos(fs_hz), x)
    pipe = StreamingPipeline(fs_hz=fs_hz, chunk_s=5.0, settle_s=0.0)
    for i in range(0, x.size, 25):
        pipe.feed_ppg(PpgBlock(i / fs_hz, fs_hz, x[i : i + 25], np.zeros(0)))
    pipe.metrics(float(t[-1]), 0.0, "ppg")
    rng = np.random.default_rng(0)
    rr = 800.0 + 40.0 * np.sin(np.arange(400.0)) + rng.standard_normal(400)
    rr[200] = 2400.0  # artefacts, so every branch of the correction compiles
    rr[300] = 400.0
    times = np.cumsum(rr) / 1000.0
    strap = StreamingPipeline(freq_window_s=120.0)
    strap.feed_rr(RrBlock(float(times[-1]), rr, times))
    strap.metrics(float(times[-1]), 0.0, "ble")
    long_window = StreamingPipeline(window_s=120.0, freq_window_s=120.0)  # windowed estimators
    long_window.feed_rr(RrBlock(float(times[-1]), rr, times))
    long_window.metrics(float(times[-1]), 0.0, "ble")
    logger.debug("DSP kernels compiled")


class StreamingPipeline:
    """Turns PPG blocks or RR blocks into beats, and beats into heart metrics.

    Parameters
    ----------
    fs_hz:
        Expected PPG sampling rate in Hz, or None to take it from the first block. When a
        block arrives at a rate more than 2 % away, the PPG state (filter, detector)
        restarts at that rate; nothing is resampled. Smaller differences (a drift-corrected
        rate) keep the filter and only enter the beat timing.
    window_s:
        Length of the sliding window for time-domain HRV, breathing rate and coherence,
        in seconds.
    update_s:
        Intended interval between metric updates, in seconds (see :meth:`update_due`).
    freq_window_s:
        Length of the LF/HF window in seconds (Task Force 1996 short-term: 5 min).
    freq_update_s:
        LF/HF is recomputed when this many seconds have passed since it was last
        computed, and held in between (a 5-min spectrum moves little in a minute, and
        it is the costliest measure: a 5-min Lomb-Scargle periodogram).
    chunk_s:
        PPG is processed once this many seconds of samples have accumulated (and at every
        :meth:`metrics` call), in seconds; default ``update_s``, so the front end runs
        once per update. Smaller values give beats sooner for more calls.
    min_clean_intervals:
        Fewer clean intervals in the window and the HRV values are None.
    min_coverage:
        Fraction of the window the clean intervals must cover, else the values are None.
    min_diffs:
        Fewer successive differences (between adjacent uncorrected intervals) and RMSSD,
        pNN50 (and SD1, SD2) are None.
    invert_ppg:
        True (default) because :class:`PpgBlock` carries raw reflective-sensor counts,
        which fall at systole; False for a signal whose peaks already point up.
    settle_s:
        Beats in the first ``settle_s`` seconds after a PPG (re)start are ignored while the
        filter and detector settle.
    fiducial:
        Where a PPG beat is timed: ``"peak"`` (systolic peak) or ``"upslope"`` (steepest
        point of the upstroke), see :mod:`heartsong.dsp.ppg_stream`.

    Notes
    -----
    Streaming beat times carry the causal band-pass's phase shift (a few ms for typical
    pulses, constant, so intervals are unaffected); the batch analysis is zero-phase.
    Feed one source at a time: switching between PPG and RR input clears the beat
    history, so the two are never mixed in one window.
    """

    def __init__(
        self,
        fs_hz: float | None = None,
        window_s: float = 60.0,
        update_s: float = 5.0,
        *,
        freq_window_s: float = 300.0,
        freq_update_s: float = 60.0,
        chunk_s: float | None = None,
        min_clean_intervals: int = 20,
        min_coverage: float = 0.5,
        min_diffs: int = 10,
        invert_ppg: bool = True,
        settle_s: float = 1.0,
        fiducial: str = "peak",
    ) -> None:
        if fs_hz is not None and not (math.isfinite(fs_hz) and fs_hz > 0.0):
            raise InputDataError("fs_hz", "a positive sampling rate in Hz, or None", fs_hz)
        chunk = update_s if chunk_s is None else chunk_s
        for name, value in (
            ("window_s", window_s),
            ("update_s", update_s),
            ("freq_window_s", freq_window_s),
            ("freq_update_s", freq_update_s),
            ("chunk_s", chunk),
        ):
            if not (math.isfinite(value) and value > 0.0):
                raise InputDataError(name, "a positive duration in seconds", value)
        if not (math.isfinite(settle_s) and settle_s >= 0.0):
            raise InputDataError("settle_s", "a duration >= 0 in seconds", settle_s)
        if fiducial not in FIDUCIALS:
            raise InputDataError("fiducial", f"one of {FIDUCIALS}", fiducial)
        self.rules = WindowRules(min_clean_intervals, min_coverage, min_diffs)
        self.window_s = float(window_s)
        self.update_s = float(update_s)
        self.freq_window_s = float(freq_window_s)
        self.freq_update_s = float(freq_update_s)
        self.chunk_s = float(chunk)
        self.invert_ppg = bool(invert_ppg)
        self.settle_s = float(settle_s)
        self.fiducial = fiducial
        span_s = max(self.window_s, self.freq_window_s)
        # 220 bpm for the whole span, plus slack: the history can never grow unbounded.
        max_beats = math.ceil(span_s * _MAX_HR_BPM / 60.0) + 16
        self._fixed = StreamingBeatCorrector(span_s, max_beats)
        self._input: str | None = None  # "ppg" or "rr": the source of the stored beats
        self._latest_s = -math.inf  # newest data time seen, seconds
        self._last_update_s: float | None = None
        self._lf_hf: tuple[float, float | None, str] | None = None  # (time, value, reason)

        self._ppg: PpgFrontEnd | None = None
        self._fs_block = math.nan  # the rate of the last PPG block (NaN: take the slow path)
        self._sign = -1.0 if self.invert_ppg else 1.0
        # The fast path's time model (see _follow_clock), seconds.
        self._next_t0_s = math.nan
        self._pending_t0_s = math.nan
        self._period_s = math.nan
        self._jump_tol_s = 0.01
        self._unreported: list[FloatArray] = []  # beats not yet returned by feed_ppg
        if fs_hz is not None:
            self._configure_ppg(float(fs_hz))

    def __repr__(self) -> str:
        return (
            f"StreamingPipeline(fs_hz={self.fs_hz}, window_s={self.window_s}, "
            f"input={self._input!r}, beats={self._fixed.n_detected})"
        )

    @property
    def fs_hz(self) -> float | None:
        """The PPG sampling rate in Hz the filter is designed for (None before any PPG)."""
        return None if self._ppg is None else self._ppg.fs_hz

    @property
    def n_stored_beats(self) -> int:
        """Detected beats currently kept (bounded: older than the longest window are dropped)."""
        return self._fixed.n_detected

    @property
    def artifact_counts(self) -> dict[str, int]:
        """Artefacts the correction found so far, per class, and ``intervals`` judged."""
        return self._fixed.artifact_counts

    def beat_window(self, t_s: float, length_s: float | None = None) -> BeatWindow:
        """Return the detected beats in ``[t_s - length_s, t_s]`` (monotonic seconds).

        ``length_s`` defaults to ``window_s``. Each beat carries the interval that ends it
        (NaN when its predecessor is on the other side of a gap), its segment id and, for
        PPG, its pulse's amplitude, baseline and template correlation. PPG samples still
        waiting for their chunk are processed first.
        """
        self._flush()
        return self._fixed.detected_window(t_s - (length_s or self.window_s), t_s)

    def corrected_window(self, t_s: float, length_s: float | None = None) -> CorrectedWindow:
        """Return the artefact-corrected beats in ``[t_s - length_s, t_s]`` (seconds).

        The beats the metrics are computed from: pending samples are processed and the
        correction brought up to date first. ``length_s`` defaults to ``window_s``.
        """
        self._flush()
        self._fixed.update()
        return self._fixed.window(t_s - (length_s or self.window_s), t_s)

    def warm_up(self) -> None:
        """Compile every DSP kernel now (see :func:`warm_up`)."""
        warm_up()

    def update_due(self, t_s: float) -> bool:
        """True when ``update_s`` seconds have passed since the last :meth:`metrics` call."""
        return self._last_update_s is None or t_s - self._last_update_s >= self.update_s

    # -- PPG ---------------------------------------------------------------------------

    def _configure_ppg(self, fs_hz: float) -> None:
        self._ppg = PpgFrontEnd(fs_hz, self._sign, self.chunk_s, self.fiducial)
        self._break_ppg()

    def _break_ppg(self) -> None:
        """Restart filter and detector at the next block and open a new beat segment."""
        if self._ppg is not None:
            self._flush(final=True)
            self._ppg.restart(self.settle_s * self._ppg.fs_hz)
        self._next_t0_s = math.nan
        self._fixed.mark_gap()

    def _follow_clock(self, ppg: PpgFrontEnd) -> None:
        """Take the fast path's time model from the sample clock: the time of the first
        pending sample, the period, and where the next block should start (s)."""
        clock = ppg.clock
        self._period_s = clock.period_s
        self._pending_t0_s = clock.t0_s + (ppg.processed - clock.start) * clock.period_s
        self._next_t0_s = self._pending_t0_s + ppg.n_pending * clock.period_s

    def _use_input(self, kind: str) -> None:
        if self._input is not None and self._input != kind:
            logger.info("input switched from %s to %s: beat history cleared", self._input, kind)
            if self._ppg is not None:
                self._ppg.restart(self.settle_s * self._ppg.fs_hz)
            self._next_t0_s = math.nan
            self._unreported.clear()
            self._fixed.clear()
            self._lf_hf = None
        if kind != "ppg":
            self._fs_block = math.nan  # PPG blocks take the slow path until one restarts
        self._input = kind

    def _flush(self, final: bool = False) -> None:
        """Process the pending PPG samples; their beats join the history and the report.

        With ``final`` (the stream is about to break) pulses still waiting for samples
        are measured with those there are.
        """
        ppg = self._ppg
        if ppg is None or (ppg.n_pending == 0 and not (final and ppg.n_waiting)):
            return
        rows, kept = ppg.process_rows(final)
        if not final:
            self._pending_t0_s = self._next_t0_s  # the first sample still to come
        self._latest_s = max(self._latest_s, self._next_t0_s)
        if kept == 0:
            return
        added = self._fixed.add_detected_rows(rows, kept)
        if added.shape[0]:
            self._unreported.append(added)

    def _report(self) -> FloatArray:
        """The beats found since the last report (by any flush), and forget them."""
        if not self._unreported:
            return _NO_BEATS
        out = (
            self._unreported[0] if len(self._unreported) == 1 else np.concatenate(self._unreported)
        )
        self._unreported.clear()
        return out

    def feed_ppg(self, block: PpgBlock) -> FloatArray:
        """Take one PPG block; return the beats that processing revealed.

        Parameters
        ----------
        block:
            Consecutive PPG samples; the infrared channel (``ir``) is used.

        Returns
        -------
        FloatArray
            Times of the beats detected (and judged to be pulses) since the previous call,
            monotonic seconds, increasing: those of the chunk this block completed, of the
            pending samples when it breaks the stream, and of any processing a
            :meth:`metrics` call did in between. A beat comes out about 0.5 s after it,
            plus up to ``chunk_s`` of buffering.
        """
        ppg = self._ppg
        if (
            ppg is not None
            and block.fs_hz == self._fs_block
            and block.contact
            and block.gap_samples == 0
            and -_CLOCK_TOLERANCE_S <= block.t0_s - self._next_t0_s <= _CLOCK_TOLERANCE_S
        ):
            # Fast path: the block continues the stream exactly (the usual case). Every
            # attribute access counts here: the infrared channel is read directly, as
            # PpgBlock.pulse would return it when it holds samples.
            x = block.ir
            try:
                count: int = _append_kernel(
                    x if x.shape[0] else block.pulse, self._sign, ppg.pending, ppg.n_pending
                )
            except TypeError:  # not a contiguous float64 vector: the slow path converts it
                count = -3
            if count >= 0:
                ppg.n_pending = count
                self._next_t0_s = self._pending_t0_s + count * self._period_s
                if count < ppg.chunk and not self._unreported:
                    return _NO_BEATS
                if count >= ppg.chunk:
                    self._flush()
                return self._report()
            if count == -1:
                raise InputDataError("PpgBlock.ir", "finite samples (no NaN or inf)")
        return self._feed_ppg_slow(block)

    def _feed_ppg_slow(self, block: PpgBlock) -> FloatArray:
        """:meth:`feed_ppg` for a block that may start, break or restart the stream."""
        _check_ppg_block(block)
        self._use_input("ppg")
        if self._ppg is None or abs(block.fs_hz / self._ppg.fs_hz - 1.0) > _FS_TOLERANCE:
            if self._ppg is not None:
                logger.info(
                    "PPG rate changed %g -> %g Hz: restarting", self._ppg.fs_hz, block.fs_hz
                )
                self._break_ppg()
            self._configure_ppg(float(block.fs_hz))
        ppg = self._ppg
        assert ppg is not None  # set by _configure_ppg
        self._jump_tol_s = max(2.0 / block.fs_hz, 0.01)
        self._latest_s = max(self._latest_s, block.t_end_s)
        self._fs_block = math.nan
        if not block.contact:
            self._break_ppg()
            return self._report()
        if block.gap_samples > 0:
            logger.debug("PPG gap of %d samples before %.3f s", block.gap_samples, block.t0_s)
            self._break_ppg()
        elif math.isfinite(self._next_t0_s):
            jump_s = block.t0_s - self._next_t0_s
            if abs(jump_s) > self._jump_tol_s:
                logger.debug("PPG time jump of %.3f s at %.3f s: new segment", jump_s, block.t0_s)
                self._break_ppg()
        if block.n == 0:
            return self._report()
        start = ppg.appended
        if not ppg.append(block.pulse):
            raise InputDataError("PpgBlock.ir", "finite samples (no NaN or inf)")
        ppg.clock.note(start, block.t0_s, block.fs_hz)
        self._fs_block = float(block.fs_hz)
        self._follow_clock(ppg)
        if ppg.n_pending >= ppg.chunk:
            self._flush()
        return self._report()

    # -- RR ----------------------------------------------------------------------------

    def feed_rr(self, block: RrBlock) -> FloatArray:
        """Store the beats of one wearable notification and return those accepted.

        Parameters
        ----------
        block:
            RR intervals (ms) and the times of the beats that end them (s).

        Returns
        -------
        FloatArray
            Times of the accepted beats, monotonic seconds, increasing (a beat not after
            the previous one is dropped).
        """
        rr, times = _check_rr_block(block)
        self._use_input("rr")
        self._latest_s = max(self._latest_s, block.t_s, float(times.max(initial=-math.inf)))
        if block.gap_before or not block.contact:
            self._fixed.mark_gap()
        if not block.contact:
            return np.zeros(0)
        return self._fixed.add_measured(times, rr)

    # -- metrics -----------------------------------------------------------------------

    def metrics(self, t_s: float, wall_s: float, source: SourceName) -> Metrics:
        """Compute the heart metrics of the window ending at ``t_s``.

        Parameters
        ----------
        t_s:
            End of the window, monotonic seconds.
        wall_s:
            Unix time of the update, seconds (stored in the result only).
        source:
            Which source the beats came from, for the record.

        Returns
        -------
        Metrics
            From :func:`heartsong.dsp.window.window_metrics` over the artefact-corrected
            beats: ``hr_bpm``, ``rmssd_ms``, ``sdnn_ms``, ``pnn50_pct``, ``resp_rate_bpm``
            and ``coherence`` over the last ``window_s``, ``lf_hf`` over the last
            ``freq_window_s`` (recomputed every ``freq_update_s``), each None with a
            reason when too few clean beats stand behind it; ``signal_quality`` (share of
            the window's beats whose pulse matches the template, every beat for RR input,
            times one minus the share of intervals the correction changed) and
            ``n_beats``. ``p_stress`` and ``stress_state`` are left to the stress stage.
        """
        self._flush()
        self._last_update_s = t_s
        lf_due = self._lf_hf is None or t_s - self._lf_hf[0] >= self.freq_update_s
        t_start = t_s - self.window_s
        f_start = t_s - self.freq_window_s
        is_ppg = self._input == "ppg"
        fixed = self._fixed
        first, lo, hi, q = fixed.select(
            max(self._latest_s, t_s),
            min(t_start, f_start) if lf_due else t_start,
            t_start,
            t_s,
            BEAT_QUALITY_MIN,
            pulses=is_ppg,
        )
        t, nn, valid, amplitude, baseline = fixed.columns()
        quality = None if math.isnan(q) else q
        values, reasons = _window_rows(
            t,
            nn,
            valid,
            amplitude if is_ppg else None,
            baseline if is_ppg else None,
            first,
            lo,
            hi,
            t_start,
            t_s,
            quality,
            True,
            f_start,
            lf_due,
            self.rules,
            "no beats in the window",
        )
        hr, rmssd, sdnn, pnn50, lf_hf, _, _, resp_rate, coherence = values
        why = reasons.pop("lf_hf", "")
        if lf_due:
            self._lf_hf = (t_s, lf_hf, why)
        else:
            assert self._lf_hf is not None
            _, lf_hf, why = self._lf_hf
        if why:
            reasons["lf_hf"] = why
        reasons.pop("sd1_ms", None)
        reasons.pop("sd2_ms", None)
        return Metrics(
            t_s=t_s,
            wall_s=wall_s,
            hr_bpm=hr,
            rmssd_ms=rmssd,
            sdnn_ms=sdnn,
            pnn50_pct=pnn50,
            lf_hf=lf_hf,
            resp_rate_bpm=resp_rate,
            coherence=coherence,
            signal_quality=quality,
            source=source,
            n_beats=hi - lo,
            reasons=reasons,
        )


def _check_ppg_block(block: PpgBlock) -> None:
    if not (math.isfinite(block.fs_hz) and block.fs_hz > 0.0):
        raise InputDataError(
            "PpgBlock.fs_hz", "a positive, finite sampling rate in Hz", block.fs_hz
        )
    if np.ndim(block.pulse) != 1:
        raise InputDataError("PpgBlock.ir", "a 1-D array of samples", np.shape(block.pulse))
    if block.gap_samples < 0:
        raise InputDataError("PpgBlock.gap_samples", "a count >= 0", block.gap_samples)
    if not math.isfinite(block.t0_s):
        raise InputDataError("PpgBlock.t0_s", "a finite time in seconds", block.t0_s)


def _check_rr_block(block: RrBlock) -> tuple[FloatArray, FloatArray]:
    rr = np.ascontiguousarray(block.rr_ms, dtype=np.float64)
    times = np.ascontiguousarray(block.beat_times_s, dtype=np.float64)
    if rr.ndim != 1:
        raise InputDataError("RrBlock.rr_ms", "a 1-D array of intervals in ms", rr.shape)
    if times.shape != rr.shape:
        raise InputDataError(
            "RrBlock.beat_times_s", f"one time per interval, shape {rr.shape}", times.shape
        )
    if not (np.all(np.isfinite(rr)) and np.all(rr > 0.0)):
        raise InputDataError("RrBlock.rr_ms", "finite, positive intervals in ms")
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0.0):
        raise InputDataError("RrBlock.beat_times_s", "finite, increasing times in seconds")
    if not math.isfinite(block.t_s):
        raise InputDataError("RrBlock.t_s", "a finite time in seconds", block.t_s)
    return rr, times
