"""The DSP pipeline: PPG blocks or wearable RR intervals in, beats and heart metrics out.

Streaming (:class:`StreamingPipeline`): PPG blocks are band-passed (Butterworth 0.5-8 Hz,
causal biquad cascade with carried state) and fed to the streaming Elgendi et al. (2013)
detector; each detected pulse also yields its amplitude and baseline, the respiratory
modulations of the PPG (:func:`heartsong.dsp.resp.ppg_pulse_features`). Beats from
either source go into a bounded, gap-aware history, and :meth:`StreamingPipeline.metrics`
runs :func:`heartsong.dsp.window.window_metrics` over it: time-domain HRV, breathing
rate and coherence over the sliding window (default 60 s), LF/HF over the last 5 min.
Batch (:func:`analyze_ppg`): the same detector kernel on the zero-phase
(forward-backward) filtered recording.

Cost. The appliance runs this next to an audio synthesiser on a Pi Zero 2 W, and a
Python call costs far more than a 25-sample block's arithmetic. So a block is only
appended to a buffer (one kernel call that also checks the samples); filter, detector
and pulse features run once a *chunk* (``chunk_s``, default 5 s, the metrics interval)
has accumulated, or when metrics are asked for. Beats therefore come out up to ``chunk_s``
later (a beat found while computing metrics is returned by the next ``feed_ppg``); the
detector itself decides a peak about 0.5 s after it. The filter and detector keep
their state across chunks, so the beats do not depend on how the signal is split.
LF/HF over 5 min changes slowly and costs the most; it is recomputed every
``freq_update_s`` seconds and held in between.

Beats are never joined across a gap: a PPG block with ``gap_samples > 0``, without
contact, or not continuing the previous block in time, and an RR block with
``gap_before`` or without contact, start a new segment.
"""

from __future__ import annotations

import bisect
import logging
import math

import numpy as np
from numba import njit

from heartsong.dsp.beats import BeatHistory, BeatWindow, clean_nn_series
from heartsong.dsp.filters import (
    PPG_BAND_HZ,
    PPG_FILTER_ORDER,
    _sos_filter_kernel,
    butter_bandpass_sos,
    sos_filter_zi,
    sos_filtfilt,
)
from heartsong.dsp.peaks import ElgendiPeakStream, ppg_findpeaks_elgendi
from heartsong.dsp.resp import (
    PEAK_SEARCH_AHEAD_S,
    PEAK_SEARCH_BACK_S,
    TROUGH_SEARCH_S,
    _pulse_features_kernel,
)
from heartsong.dsp.window import WindowRules, window_metrics
from heartsong.errors import InputDataError
from heartsong.events import FloatArray, Metrics, PpgBlock, RrBlock, SourceName

__all__ = ["StreamingPipeline", "analyze_ppg", "ppg_bandpass_sos", "warm_up"]

logger = logging.getLogger(__name__)

#: Upper band edge never above this fraction of the sampling rate (Nyquist is 0.5).
_MAX_HIGH_FRACTION = 0.45
#: Remembered PPG blocks for mapping sample positions to time.
_BLOCK_TABLE_LEN = 256
#: A PPG rate differing from the designed one by more than this fraction restarts the
#: PPG state; smaller differences (a drift-corrected rate estimate) are only used for timing.
_FS_TOLERANCE = 0.02
#: Seconds of raw and filtered PPG kept behind a chunk for the pulse features.
_RING_EXTRA_S = 4.0
_NO_BEATS = np.zeros(0)
_NO_BEATS.flags.writeable = False


def ppg_bandpass_sos(fs_hz: float, order: int = PPG_FILTER_ORDER) -> FloatArray:
    """Design the PPG band-pass (0.5-8 Hz) for a sampling rate, as second-order sections.

    Parameters
    ----------
    fs_hz:
        Sampling rate in Hz. Below 17.8 Hz the upper edge drops to ``0.45 * fs_hz``.
    order:
        Butterworth prototype order (sections).

    Returns
    -------
    FloatArray
        Shape ``(order, 6)``; see :func:`heartsong.dsp.filters.butter_bandpass_sos`.
    """
    low_hz, high_hz = PPG_BAND_HZ
    if math.isfinite(fs_hz):
        high_hz = min(high_hz, _MAX_HIGH_FRACTION * fs_hz)
    return butter_bandpass_sos(low_hz, high_hz, fs_hz, order)


def analyze_ppg(x: FloatArray, fs_hz: float, *, invert: bool = False) -> FloatArray:
    """Find the heart beats in a whole PPG recording (batch pipeline).

    Zero-phase band-pass (:func:`ppg_bandpass_sos`, forward-backward) followed by the
    Elgendi et al. (2013) detector with parabolic sub-sample timing, the very kernel the
    streaming pipeline uses.

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


@njit(cache=True)
def _append_kernel(x: FloatArray, sign: float, buf: FloatArray, n: int) -> int:
    """Copy ``sign * x`` into ``buf[n:]``; return the new count, or -1 if ``x`` is not finite."""
    for i in range(x.shape[0]):
        v = x[i]
        if not math.isfinite(v):
            return -1
        buf[n + i] = sign * v
    count: int = n + x.shape[0]
    return count


@njit(cache=True)
def _ring_write_kernel(
    raw: FloatArray, filt: FloatArray, first: int, raw_ring: FloatArray, filt_ring: FloatArray
) -> None:
    """Store samples ``first, first + 1, ...`` at ``index & (len - 1)`` of two 2^k rings."""
    mask = raw_ring.shape[0] - 1
    for i in range(raw.shape[0]):
        k = (first + i) & mask
        raw_ring[k] = raw[i]
        filt_ring[k] = filt[i]


def warm_up() -> None:
    """Call every DSP kernel once on tiny arrays, so numba compiles (or loads its cache)
    at start-up rather than inside the processing loop."""
    fs_hz = 50.0
    sos = ppg_bandpass_sos(fs_hz)
    x = np.sin(np.linspace(0.0, 8.0 * np.pi, 200))
    sos_filtfilt(sos, x)
    pipe = StreamingPipeline(fs_hz=fs_hz, chunk_s=1.0, settle_s=0.0)
    pipe.feed_ppg(PpgBlock(0.0, fs_hz, 1000.0 * (1.0 - x), np.zeros(0)))
    rng = np.random.default_rng(0)
    rr = 800.0 + 40.0 * np.sin(np.arange(400.0)) + rng.standard_normal(400)
    rr[200] = 2500.0  # an artefact, so every branch of the cleaning compiles
    times = np.cumsum(rr) / 1000.0
    beats = StreamingPipeline()
    beats.feed_rr(RrBlock(float(times[-1]), rr, times))
    beats.metrics(float(times[-1]), 0.0, "ble")
    logger.debug("DSP kernels compiled")


class _PpgFrontEnd:
    """Band-pass, peak detector and pulse features of one unbroken PPG stream.

    Samples are appended block by block and processed a chunk at a time; all state (filter,
    detector, rings) carries over between chunks until :meth:`restart`.
    """

    def __init__(self, fs_hz: float, sign: float, chunk_s: float) -> None:
        self.fs_hz = fs_hz
        self.sign = sign
        self.sos = ppg_bandpass_sos(fs_hz)
        self.zi_unit = sos_filter_zi(self.sos)
        self.zi = np.zeros_like(self.zi_unit)
        self.detector = ElgendiPeakStream(fs_hz)
        self.chunk = max(1, round(chunk_s * fs_hz))
        self.pending = np.empty(2 * self.chunk + 64)
        self.n_pending = 0
        ring = 1 << int((chunk_s + _RING_EXTRA_S) * fs_hz + 64).bit_length()
        self.raw_ring = np.zeros(ring)
        self.filt_ring = np.zeros(ring)
        self.back = round(PEAK_SEARCH_BACK_S * fs_hz)
        self.ahead = round(PEAK_SEARCH_AHEAD_S * fs_hz)
        self.trough_back = round(TROUGH_SEARCH_S * fs_hz)
        self.fresh = True  # the next sample starts a new stream
        self.prev_peak = -1  # sample index of the previous pulse's peak
        self.processed = 0  # samples run through filter and detector since restart

    def restart(self) -> None:
        """Forget the stream: the next sample starts a new one (pending samples are lost)."""
        self.detector.reset()
        self.n_pending = 0
        self.fresh = True
        self.prev_peak = -1
        self.processed = 0

    @property
    def appended(self) -> int:
        """Samples appended since the restart (processed or pending)."""
        return self.processed + self.n_pending

    def append(self, x: FloatArray) -> bool:
        """Append a block's samples; False (nothing appended) if one is not finite."""
        needed = self.n_pending + x.shape[0]
        if needed > self.pending.shape[0]:
            grown = np.empty(2 * needed)
            grown[: self.n_pending] = self.pending[: self.n_pending]
            self.pending = grown
        count: int = _append_kernel(x, self.sign, self.pending, self.n_pending)
        if count < 0:
            return False
        self.n_pending = count
        return True

    def process(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Run the pending samples through filter, detector and pulse features.

        A backlog longer than a chunk goes in chunk-sized pieces, so the rings always hold
        the samples a pulse's features need.

        Returns
        -------
        tuple of FloatArray
            Beat positions (samples since the restart), pulse amplitudes and baselines.
        """
        n = self.n_pending
        self.n_pending = 0
        if n <= self.chunk:
            return self._process(self.pending[:n])
        parts = [
            self._process(self.pending[i : min(i + self.chunk, n)]) for i in range(0, n, self.chunk)
        ]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def _process(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        if self.fresh:
            self.zi[:] = self.zi_unit * x[0]  # start in steady state: no DC transient
            self.fresh = False
        filtered: FloatArray = _sos_filter_kernel(self.sos, x, self.zi)
        first = self.processed
        _ring_write_kernel(x, filtered, first, self.raw_ring, self.filt_ring)
        self.processed = first + x.shape[0]
        positions = self.detector.process(filtered)
        amplitude = np.empty(positions.shape[0])
        baseline = np.empty(positions.shape[0])
        if positions.shape[0]:
            oldest = max(0, self.processed - self.raw_ring.shape[0])
            self.prev_peak = _pulse_features_kernel(
                positions,
                self.raw_ring,
                self.filt_ring,
                self.raw_ring.shape[0] - 1,
                oldest,
                self.processed,
                self.prev_peak,
                self.back,
                self.ahead,
                self.trough_back,
                amplitude,
                baseline,
            )
        return positions, amplitude, baseline


class _BlockTable:
    """Where recent PPG blocks start (sample position) and when (time, rate), for timing.

    A beat's sample position maps to time through the block it fell in, so a
    drift-corrected rate or a small timestamp correction per block enters the beat time.
    """

    def __init__(self) -> None:
        self._start: list[int] = []
        self._t0: list[float] = []
        self._fs: list[float] = []

    def clear(self) -> None:
        """Forget every block (a new stream starts at position 0)."""
        self._start.clear()
        self._t0.clear()
        self._fs.clear()

    def append(self, start: int, t0_s: float, fs_hz: float) -> None:
        """Note a block whose first sample is at ``start`` and ``t0_s`` seconds."""
        if len(self._start) >= 2 * _BLOCK_TABLE_LEN:
            del self._start[:_BLOCK_TABLE_LEN], self._t0[:_BLOCK_TABLE_LEN]
            del self._fs[:_BLOCK_TABLE_LEN]
        self._start.append(start)
        self._t0.append(t0_s)
        self._fs.append(fs_hz)

    def time_of(self, pos: float) -> float:
        """Monotonic seconds of sample position ``pos`` (older than the table: extrapolated)."""
        k = max(bisect.bisect_right(self._start, pos) - 1, 0)
        return self._t0[k] + (pos - self._start[k]) / self._fs[k]


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
        computed, and held in between.
    chunk_s:
        PPG is processed once this many seconds of samples have accumulated (and at every
        :meth:`metrics` call), in seconds.
    min_clean_intervals:
        Fewer clean intervals in the window and the HRV values are None.
    min_coverage:
        Fraction of the window the clean intervals must cover, else the values are None.
    min_diffs:
        Fewer successive differences (between adjacent clean intervals) and RMSSD,
        pNN50 (and SD1, SD2) are None.
    invert_ppg:
        True (default) because :class:`PpgBlock` carries raw reflective-sensor counts,
        which fall at systole; False for a signal whose peaks already point up.
    settle_s:
        Beats in the first ``settle_s`` seconds after a PPG (re)start are ignored while the
        filter and detector settle.

    Notes
    -----
    ``signal_quality`` is an interim measure: the fraction of the window's inter-beat
    intervals that are clean (300-2000 ms and within 30 % of the previous interval, see
    :mod:`heartsong.dsp.beats`). Streaming beat times carry the causal band-pass's phase
    shift (a few ms for typical pulses, constant, so intervals are unaffected); the batch
    :func:`analyze_ppg` is zero-phase. Feed one source at a time: switching between PPG
    and RR input clears the beat history, so the two are never mixed in one window.
    """

    def __init__(
        self,
        fs_hz: float | None = None,
        window_s: float = 60.0,
        update_s: float = 5.0,
        *,
        freq_window_s: float = 300.0,
        freq_update_s: float = 30.0,
        chunk_s: float = 5.0,
        min_clean_intervals: int = 20,
        min_coverage: float = 0.5,
        min_diffs: int = 10,
        invert_ppg: bool = True,
        settle_s: float = 1.0,
    ) -> None:
        if fs_hz is not None and not (math.isfinite(fs_hz) and fs_hz > 0.0):
            raise InputDataError("fs_hz", "a positive sampling rate in Hz, or None", fs_hz)
        for name, value in (
            ("window_s", window_s),
            ("update_s", update_s),
            ("freq_window_s", freq_window_s),
            ("freq_update_s", freq_update_s),
            ("chunk_s", chunk_s),
        ):
            if not (math.isfinite(value) and value > 0.0):
                raise InputDataError(name, "a positive duration in seconds", value)
        if not (math.isfinite(settle_s) and settle_s >= 0.0):
            raise InputDataError("settle_s", "a duration >= 0 in seconds", settle_s)
        if min_diffs < 2:
            raise InputDataError("min_diffs", "at least 2", min_diffs)
        self.rules = WindowRules(min_clean_intervals, min_coverage, min_diffs)
        self.window_s = float(window_s)
        self.update_s = float(update_s)
        self.freq_window_s = float(freq_window_s)
        self.freq_update_s = float(freq_update_s)
        self.chunk_s = float(chunk_s)
        self.invert_ppg = bool(invert_ppg)
        self.settle_s = float(settle_s)
        span_s = max(self.window_s, self.freq_window_s)
        # 220 bpm for the whole span, plus slack: the history can never grow unbounded.
        self._beats = BeatHistory(span_s, math.ceil(span_s * 220.0 / 60.0) + 16)
        self._input: str | None = None  # "ppg" or "rr": the source of the stored beats
        self._latest_s = -math.inf  # newest data time seen, seconds
        self._last_update_s: float | None = None
        self._lf_hf: tuple[float, float | None, str] | None = None  # (time, value, reason)

        self._ppg: _PpgFrontEnd | None = None
        self._fs_block = math.nan  # the rate of the last block, Hz
        self._expected_t0_s = math.nan  # where the next block should start, seconds
        # (first sample position, t0_s, fs_hz) of recent blocks, to time the peaks
        self._blocks = _BlockTable()
        self._settle_until_s = -math.inf
        self._unreported: list[FloatArray] = []  # beats not yet returned by feed_ppg
        if fs_hz is not None:
            self._configure_ppg(float(fs_hz))

    def __repr__(self) -> str:
        return (
            f"StreamingPipeline(fs_hz={self.fs_hz}, window_s={self.window_s}, "
            f"input={self._input!r}, beats={len(self._beats)})"
        )

    @property
    def fs_hz(self) -> float | None:
        """The PPG sampling rate in Hz the filter is designed for (None before any PPG)."""
        return None if self._ppg is None else self._ppg.fs_hz

    @property
    def n_stored_beats(self) -> int:
        """Beats currently kept (bounded: older than the longest window are dropped)."""
        return len(self._beats)

    def beat_window(self, t_s: float, length_s: float | None = None) -> BeatWindow:
        """Return the beats in ``[t_s - length_s, t_s]`` (monotonic seconds), gap-aware.

        ``length_s`` defaults to ``window_s``. Each beat carries the interval that ends it
        (NaN when its predecessor is on the other side of a gap), its segment id and, for
        PPG, its pulse's amplitude and baseline. PPG samples still waiting for their chunk
        are processed first.
        """
        self._flush()
        return self._beats.window(t_s - (length_s or self.window_s), t_s)

    def warm_up(self) -> None:
        """Compile every DSP kernel now (see :func:`warm_up`)."""
        warm_up()

    def update_due(self, t_s: float) -> bool:
        """True when ``update_s`` seconds have passed since the last :meth:`metrics` call."""
        return self._last_update_s is None or t_s - self._last_update_s >= self.update_s

    # -- PPG ---------------------------------------------------------------------------

    def _configure_ppg(self, fs_hz: float) -> None:
        self._ppg = _PpgFrontEnd(fs_hz, -1.0 if self.invert_ppg else 1.0, self.chunk_s)
        self._break_ppg()

    def _break_ppg(self) -> None:
        """Restart filter and detector at the next block and open a new beat segment."""
        if self._ppg is not None:
            self._ppg.restart()
        self._expected_t0_s = math.nan
        self._beats.mark_gap()

    def _use_input(self, kind: str) -> None:
        if self._input is not None and self._input != kind:
            logger.info("input switched from %s to %s: beat history cleared", self._input, kind)
            self._unreported.clear()
            self._beats.clear()
            self._break_ppg()
            self._lf_hf = None
        self._input = kind

    def _flush(self) -> None:
        """Process the pending PPG samples; their beats join the history and the report."""
        ppg = self._ppg
        if ppg is None or ppg.n_pending == 0:
            return
        positions, amplitude, baseline = ppg.process()
        if positions.shape[0] == 0:
            return
        times = np.array([self._blocks.time_of(pos) for pos in positions.tolist()])
        settled = times >= self._settle_until_s
        if not settled.all():
            times, amplitude, baseline = times[settled], amplitude[settled], baseline[settled]
        added = self._beats.add_beats(times, amplitude, baseline)
        if added.shape[0]:
            self._unreported.append(added)
            self._beats.prune(self._latest_s)

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
            Times of the beats detected since the previous call, monotonic seconds,
            increasing: those of the chunk this block completed, of the pending samples
            when it breaks the stream, and of any processing a :meth:`metrics` call did in
            between. A beat comes out about 0.5 s after it, plus up to ``chunk_s`` of
            buffering.
        """
        ppg = self._ppg
        ir = block.ir
        t0 = block.t0_s
        if not (
            ppg is not None
            and self._input == "ppg"
            and block.fs_hz == self._fs_block
            and block.contact
            and block.gap_samples == 0
            and abs(t0 - self._expected_t0_s) <= self._jump_tol_s
            and type(ir) is np.ndarray
            and ir.ndim == 1
            and ir.dtype == np.float64
        ):
            return self._feed_ppg_slow(block)
        # Fast path: the block continues the stream at the same rate.
        if not ppg.append(ir):
            raise InputDataError("PpgBlock.ir", "finite samples (no NaN or inf)")
        n = ir.shape[0]
        self._blocks.append(ppg.appended - n, t0, block.fs_hz)
        end = t0 + n / block.fs_hz
        self._expected_t0_s = end
        self._latest_s = max(self._latest_s, end)
        if ppg.n_pending >= ppg.chunk:
            self._flush()
        return self._report() if self._unreported else _NO_BEATS

    def _feed_ppg_slow(self, block: PpgBlock) -> FloatArray:
        """:meth:`feed_ppg` for a block that may start, break or restart the stream."""
        _check_ppg_block(block)
        self._use_input("ppg")
        self._flush()
        if self._ppg is None or abs(block.fs_hz / self._ppg.fs_hz - 1.0) > _FS_TOLERANCE:
            if self._ppg is not None:
                logger.info(
                    "PPG rate changed %g -> %g Hz: restarting", self._ppg.fs_hz, block.fs_hz
                )
            self._configure_ppg(float(block.fs_hz))
        ppg = self._ppg
        assert ppg is not None  # set by _configure_ppg
        self._fs_block = float(block.fs_hz)
        self._jump_tol_s = max(2.0 / block.fs_hz, 0.01)
        self._latest_s = max(self._latest_s, block.t_end_s)
        if not block.contact:
            self._break_ppg()
            self._beats.prune(self._latest_s)
            return self._report()
        if block.gap_samples > 0:
            logger.debug("PPG gap of %d samples before %.3f s", block.gap_samples, block.t0_s)
            self._break_ppg()
        elif math.isfinite(self._expected_t0_s):
            jump_s = block.t0_s - self._expected_t0_s
            if abs(jump_s) > self._jump_tol_s:
                logger.debug("PPG time jump of %.3f s at %.3f s: new segment", jump_s, block.t0_s)
                self._break_ppg()
        if block.n == 0:
            return self._report()
        if ppg.appended == 0:  # a fresh stream
            self._blocks.clear()
            self._settle_until_s = block.t0_s + self.settle_s
        if not ppg.append(np.ascontiguousarray(block.ir, dtype=np.float64)):
            raise InputDataError("PpgBlock.ir", "finite samples (no NaN or inf)")
        self._blocks.append(ppg.appended - block.n, block.t0_s, block.fs_hz)
        self._expected_t0_s = block.t_end_s
        if ppg.n_pending >= ppg.chunk:
            self._flush()
        return self._report()

    _jump_tol_s = 0.01

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
            self._beats.mark_gap()
        if not block.contact:
            self._beats.prune(self._latest_s)
            return np.zeros(0)
        new = [float(t) for t, v in zip(times, rr, strict=True) if self._beats.add_interval(t, v)]
        self._beats.prune(self._latest_s)
        return np.array(new, dtype=np.float64)

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
            From :func:`heartsong.dsp.window.window_metrics`: ``hr_bpm``, ``rmssd_ms``,
            ``sdnn_ms``, ``pnn50_pct``, ``resp_rate_bpm`` and ``coherence`` over the last
            ``window_s``, ``lf_hf`` over the last ``freq_window_s`` (recomputed every
            ``freq_update_s``), each None with a reason when too few clean beats stand
            behind it; ``signal_quality`` (clean fraction of the window's intervals) and
            ``n_beats``. ``p_stress`` and ``stress_state`` are left to the stress stage.
        """
        self._flush()
        self._last_update_s = t_s
        lf_due = self._lf_hf is None or t_s - self._lf_hf[0] >= self.freq_update_s
        t_start = t_s - self.window_s
        span = max(self.window_s, self.freq_window_s) if lf_due else self.window_s
        window = self._beats.window(t_s - span, t_s)
        first = int(window.t_s.searchsorted(t_start, side="left"))
        nn, valid, n_intervals, n_clean = clean_nn_series(window, first)
        n_beats = window.n_beats - first
        quality = n_clean / n_intervals if n_intervals else None
        is_ppg = self._input == "ppg"
        wm = window_metrics(
            window.t_s,
            nn,
            valid,
            t_start_s=t_start,
            t_end_s=t_s,
            quality=quality,
            freq=True,
            freq_t_start_s=t_s - self.freq_window_s if lf_due else None,
            amplitude=window.amplitude if is_ppg else None,
            baseline=window.baseline if is_ppg else None,
            rules=self.rules,
            quality_reason="no inter-beat intervals in the window",
        )
        reasons = dict(wm.reasons)
        if lf_due:
            self._lf_hf = (t_s, wm.lf_hf, reasons.get("lf_hf", ""))
        assert self._lf_hf is not None
        _, lf_hf, why = self._lf_hf
        reasons.pop("lf_hf", None)
        if why:
            reasons["lf_hf"] = why
        return Metrics(
            t_s=t_s,
            wall_s=wall_s,
            hr_bpm=wm.hr_bpm,
            rmssd_ms=wm.rmssd_ms,
            sdnn_ms=wm.sdnn_ms,
            pnn50_pct=wm.pnn50_pct,
            lf_hf=lf_hf,
            resp_rate_bpm=wm.resp_rate_bpm,
            coherence=wm.coherence,
            signal_quality=wm.signal_quality,
            source=source,
            n_beats=n_beats,
            reasons={k: v for k, v in reasons.items() if k not in ("sd1_ms", "sd2_ms")},
        )


def _check_ppg_block(block: PpgBlock) -> None:
    if not (math.isfinite(block.fs_hz) and block.fs_hz > 0.0):
        raise InputDataError(
            "PpgBlock.fs_hz", "a positive, finite sampling rate in Hz", block.fs_hz
        )
    if np.ndim(block.ir) != 1:
        raise InputDataError("PpgBlock.ir", "a 1-D array of samples", np.shape(block.ir))
    if block.gap_samples < 0:
        raise InputDataError("PpgBlock.gap_samples", "a count >= 0", block.gap_samples)
    if not math.isfinite(block.t0_s):
        raise InputDataError("PpgBlock.t0_s", "a finite time in seconds", block.t0_s)


def _check_rr_block(block: RrBlock) -> tuple[FloatArray, FloatArray]:
    rr = np.asarray(block.rr_ms, dtype=np.float64)
    times = np.asarray(block.beat_times_s, dtype=np.float64)
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
