"""The DSP pipeline: PPG blocks or wearable RR intervals in, beats and heart metrics out.

Streaming (:class:`StreamingPipeline`): each PPG block is band-passed (Butterworth
0.5-8 Hz, causal biquad cascade with carried state) and fed to the streaming Elgendi et
al. (2013) detector; beats from either source go into a bounded, gap-aware history, and
:meth:`StreamingPipeline.metrics` computes time-domain HRV (Task Force 1996) over the
sliding window. Batch (:func:`analyze_ppg`): the same detector kernel on the zero-phase
(forward-backward) filtered recording.

Beats are never joined across a gap: a PPG block with ``gap_samples > 0``, without
contact, or not continuing the previous block in time, and an RR block with
``gap_before`` or without contact, start a new segment.
"""

from __future__ import annotations

import logging
import math
from collections import deque

import numpy as np

from heartsong.dsp.beats import BeatHistory, BeatWindow, clean_ibi_mask, clean_nn
from heartsong.dsp.filters import (
    PPG_BAND_HZ,
    PPG_FILTER_ORDER,
    butter_bandpass_sos,
    sos_filter_stream,
    sos_filter_zi,
    sos_filtfilt,
)
from heartsong.dsp.hrv_time import hrv_time
from heartsong.dsp.peaks import ElgendiPeakStream, ppg_findpeaks_elgendi
from heartsong.errors import InputDataError
from heartsong.events import FloatArray, Metrics, PpgBlock, RrBlock, SourceName

__all__ = ["StreamingPipeline", "analyze_ppg", "ppg_bandpass_sos", "warm_up"]

logger = logging.getLogger(__name__)

#: Upper band edge never above this fraction of the sampling rate (Nyquist is 0.5).
_MAX_HIGH_FRACTION = 0.45
#: Metrics that a later stage computes; until then they are None with this reason.
_NOT_YET = ("lf_hf", "resp_rate_bpm", "coherence")
_TIME_METRICS = ("hr_bpm", "rmssd_ms", "sdnn_ms", "pnn50_pct")
#: Remembered PPG blocks for mapping sample positions to time.
_BLOCK_TABLE_LEN = 64
#: A PPG rate differing from the designed one by more than this fraction restarts the
#: PPG state; smaller differences (a drift-corrected rate estimate) are only used for timing.
_FS_TOLERANCE = 0.02


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


def warm_up() -> None:
    """Call every DSP kernel once on tiny arrays, so numba compiles (or loads its cache)
    at start-up rather than inside the processing loop."""
    fs_hz = 50.0
    sos = ppg_bandpass_sos(fs_hz)
    x = np.sin(np.linspace(0.0, 8.0 * np.pi, 200))
    zi = sos_filter_zi(sos) * x[0]
    y = sos_filter_stream(sos, x, zi)
    sos_filtfilt(sos, x)
    ElgendiPeakStream(fs_hz).process(y)
    ibi = np.array([800.0, 820.0, 790.0, 2500.0])
    seg = np.zeros(4, dtype=np.int64)
    clean = clean_ibi_mask(ibi, seg)
    hrv_time(ibi[clean], valid_diff=np.ones(int(clean.sum()) - 1, dtype=np.bool_))
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
        Length of the sliding metrics window, in seconds; beats older than that (before
        the newest data) are forgotten.
    update_s:
        Intended interval between metric updates, in seconds (see :meth:`update_due`).
    min_clean_intervals:
        Fewer clean intervals in the window and the HRV values are None.
    min_coverage:
        Fraction of the window the clean intervals must cover, else the values are None.
    min_diffs:
        Fewer successive differences (between adjacent clean intervals) and RMSSD and
        pNN50 are None.
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
        min_clean_intervals: int = 20,
        min_coverage: float = 0.5,
        min_diffs: int = 10,
        invert_ppg: bool = True,
        settle_s: float = 1.0,
    ) -> None:
        if fs_hz is not None and not (math.isfinite(fs_hz) and fs_hz > 0.0):
            raise InputDataError("fs_hz", "a positive sampling rate in Hz, or None", fs_hz)
        if not (math.isfinite(window_s) and window_s > 0.0):
            raise InputDataError("window_s", "a positive duration in seconds", window_s)
        if not (math.isfinite(update_s) and update_s > 0.0):
            raise InputDataError("update_s", "a positive duration in seconds", update_s)
        if not (math.isfinite(settle_s) and settle_s >= 0.0):
            raise InputDataError("settle_s", "a duration >= 0 in seconds", settle_s)
        if not 0.0 <= min_coverage <= 1.0:
            raise InputDataError("min_coverage", "a fraction in [0, 1]", min_coverage)
        if min_clean_intervals < 2 or min_diffs < 1:
            raise InputDataError(
                "min_clean_intervals",
                "at least 2 (and min_diffs at least 1)",
                (min_clean_intervals, min_diffs),
            )
        self.window_s = float(window_s)
        self.update_s = float(update_s)
        self.min_clean_intervals = int(min_clean_intervals)
        self.min_coverage = float(min_coverage)
        self.min_diffs = int(min_diffs)
        self.invert_ppg = bool(invert_ppg)
        self.settle_s = float(settle_s)
        # 220 bpm for a whole window, plus slack: the history can never grow unbounded.
        max_beats = math.ceil(self.window_s * 220.0 / 60.0) + 16
        self._beats = BeatHistory(self.window_s, max_beats)
        self._input: str | None = None  # "ppg" or "rr": the source of the stored beats
        self._latest_s = -math.inf  # newest data time seen, seconds
        self._last_update_s: float | None = None

        self._fs_hz: float | None = None
        self._sos = np.zeros((0, 6))
        self._zi = np.zeros((0, 2))
        self._detector: ElgendiPeakStream | None = None
        self._restart = True  # the next PPG block starts a new segment
        self._expected_t0_s: float | None = None
        # (first sample position, t0_s, fs_hz) of recent blocks, to time the peaks
        self._blocks: deque[tuple[int, float, float]] = deque(maxlen=_BLOCK_TABLE_LEN)
        self._settle_until_s = -math.inf
        if fs_hz is not None:
            self._configure_ppg(float(fs_hz))

    def __repr__(self) -> str:
        return (
            f"StreamingPipeline(fs_hz={self._fs_hz}, window_s={self.window_s}, "
            f"input={self._input!r}, beats={len(self._beats)})"
        )

    @property
    def fs_hz(self) -> float | None:
        """The PPG sampling rate in Hz the filter is designed for (None before any PPG)."""
        return self._fs_hz

    @property
    def n_stored_beats(self) -> int:
        """Beats currently kept (bounded: older than ``window_s`` are dropped)."""
        return len(self._beats)

    def beat_window(self, t_s: float) -> BeatWindow:
        """Return the beats in ``[t_s - window_s, t_s]`` (monotonic seconds), gap-aware.

        Each beat carries the interval that ends it (NaN when its predecessor is on the
        other side of a gap) and its segment id; later stages (frequency-domain HRV) build
        on this series.
        """
        return self._beats.window(t_s - self.window_s, t_s)

    def warm_up(self) -> None:
        """Compile every DSP kernel now (see :func:`warm_up`)."""
        warm_up()

    def update_due(self, t_s: float) -> bool:
        """True when ``update_s`` seconds have passed since the last :meth:`metrics` call."""
        return self._last_update_s is None or t_s - self._last_update_s >= self.update_s

    # -- PPG ---------------------------------------------------------------------------

    def _configure_ppg(self, fs_hz: float) -> None:
        self._fs_hz = fs_hz
        self._sos = ppg_bandpass_sos(fs_hz)
        self._zi = np.zeros((self._sos.shape[0], 2))
        self._detector = ElgendiPeakStream(fs_hz)
        self._break_ppg()

    def _break_ppg(self) -> None:
        """Restart filter and detector at the next block and open a new beat segment."""
        self._restart = True
        self._expected_t0_s = None
        self._beats.mark_gap()

    def _use_input(self, kind: str) -> None:
        if self._input is not None and self._input != kind:
            logger.info("input switched from %s to %s: beat history cleared", self._input, kind)
            self._beats.clear()
            self._break_ppg()
        self._input = kind

    def feed_ppg(self, block: PpgBlock) -> FloatArray:
        """Process one PPG block and return the beats it revealed.

        Parameters
        ----------
        block:
            Consecutive PPG samples; the infrared channel (``ir``) is used.

        Returns
        -------
        FloatArray
            Times of the newly detected beats, monotonic seconds, increasing (about
            0.5 s behind the signal: the detector looks ahead).
        """
        _check_ppg_block(block)
        self._use_input("ppg")
        if self._fs_hz is None or abs(block.fs_hz / self._fs_hz - 1.0) > _FS_TOLERANCE:
            if self._fs_hz is not None:
                logger.info("PPG rate changed %g -> %g Hz: restarting", self._fs_hz, block.fs_hz)
            self._configure_ppg(float(block.fs_hz))
        self._latest_s = max(self._latest_s, block.t_end_s)
        if not block.contact:
            self._break_ppg()
            self._beats.prune(self._latest_s)
            return np.zeros(0)
        if block.gap_samples > 0:
            logger.debug("PPG gap of %d samples before %.3f s", block.gap_samples, block.t0_s)
            self._break_ppg()
        elif self._expected_t0_s is not None:
            jump_s = block.t0_s - self._expected_t0_s
            if abs(jump_s) > max(2.0 / block.fs_hz, 0.01):
                logger.debug("PPG time jump of %.3f s at %.3f s: new segment", jump_s, block.t0_s)
                self._break_ppg()
        if block.n == 0:
            return np.zeros(0)

        detector = self._detector
        assert detector is not None  # set by _configure_ppg
        x = np.asarray(block.ir, dtype=np.float64)
        if self.invert_ppg:
            x = -x
        if self._restart:
            self._zi = np.ascontiguousarray(sos_filter_zi(self._sos) * x[0])
            detector.reset()
            self._blocks.clear()
            self._settle_until_s = block.t0_s + self.settle_s
            self._restart = False
        self._blocks.append((detector.samples_seen, block.t0_s, block.fs_hz))
        filtered = sos_filter_stream(self._sos, x, self._zi)
        positions = detector.process(filtered)
        self._expected_t0_s = block.t_end_s

        new: list[float] = []
        for pos in positions:
            t_s = self._position_to_time(float(pos))
            if t_s >= self._settle_until_s and self._beats.add_beat(t_s):
                new.append(t_s)
        self._beats.prune(self._latest_s)
        return np.array(new, dtype=np.float64)

    def _position_to_time(self, pos: float) -> float:
        """Map a detector sample position to monotonic seconds via the block it fell in."""
        start, t0, fs_hz = self._blocks[0]
        for block in self._blocks:
            if block[0] > pos:
                break
            start, t0, fs_hz = block
        return t0 + (pos - start) / fs_hz

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
        """Compute the heart metrics over the beats in ``[t_s - window_s, t_s]``.

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
            ``hr_bpm``, ``rmssd_ms``, ``sdnn_ms``, ``pnn50_pct`` from clean intervals (None
            with a reason when there are too few, or they cover too little of the
            window), ``signal_quality`` (clean fraction of the intervals) and ``n_beats``.
            ``lf_hf``, ``resp_rate_bpm`` and ``coherence`` are not computed yet;
            ``p_stress`` and ``stress_state`` are left to the stress stage.
        """
        self._last_update_s = t_s
        window = self.beat_window(t_s)
        has_ibi = np.isfinite(window.ibi_ms)
        n_intervals = int(np.count_nonzero(has_ibi))
        clean = clean_ibi_mask(window.ibi_ms, window.segment)
        n_clean = int(np.count_nonzero(clean))
        nn, valid_diff = clean_nn(window, clean)
        coverage = float(nn.sum()) / 1000.0 / self.window_s

        reasons: dict[str, str] = {name: "not computed yet" for name in _NOT_YET}
        values: dict[str, float | None] = dict.fromkeys(_TIME_METRICS)
        quality: float | None = None
        if n_intervals > 0:
            quality = n_clean / n_intervals
        else:
            reasons["signal_quality"] = "no inter-beat intervals in the window"

        problem = ""
        if n_clean < self.min_clean_intervals:
            problem = f"too few clean beats: {n_clean} < {self.min_clean_intervals}"
        elif coverage < self.min_coverage:
            problem = (
                f"clean beats cover too little of the window: "
                f"{coverage:.0%} < {self.min_coverage:.0%}"
            )
        if problem:
            for name in _TIME_METRICS:
                reasons[name] = problem
        else:
            hrv = hrv_time(nn, valid_diff=valid_diff)
            values["hr_bpm"] = hrv.mean_hr_bpm
            values["sdnn_ms"] = hrv.sdnn_ms
            if hrv.n_diffs >= self.min_diffs:
                values["rmssd_ms"] = hrv.rmssd_ms
                values["pnn50_pct"] = hrv.pnn50_pct
            else:
                short = f"too few successive differences: {hrv.n_diffs} < {self.min_diffs}"
                reasons["rmssd_ms"] = reasons["pnn50_pct"] = short

        return Metrics(
            t_s=t_s,
            wall_s=wall_s,
            hr_bpm=values["hr_bpm"],
            rmssd_ms=values["rmssd_ms"],
            sdnn_ms=values["sdnn_ms"],
            pnn50_pct=values["pnn50_pct"],
            signal_quality=quality,
            source=source,
            n_beats=window.n_beats,
            reasons=reasons,
        )


def _check_ppg_block(block: PpgBlock) -> None:
    if not (math.isfinite(block.fs_hz) and block.fs_hz > 0.0):
        raise InputDataError(
            "PpgBlock.fs_hz", "a positive, finite sampling rate in Hz", block.fs_hz
        )
    if block.ir.ndim != 1:
        raise InputDataError("PpgBlock.ir", "a 1-D array of samples", block.ir.shape)
    if not np.all(np.isfinite(block.ir)):
        raise InputDataError("PpgBlock.ir", "finite samples (no NaN or inf)")
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
