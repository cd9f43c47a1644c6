"""Signal processing: numba kernels with streaming and batch front ends.

``filters`` (Butterworth band-pass, biquad cascades), ``peaks`` (Elgendi et al. 2013 PPG
systolic peaks), ``beats`` (gap-aware beat history, interval cleaning), ``hrv_time``
(Task Force 1996 time-domain HRV) and ``pipeline`` (the streaming pipeline the appliance
runs and the batch ``analyze_ppg``). Kernels are ``@njit(cache=True)`` and private; call
:func:`warm_up` once at start-up so they compile before the processing loop.
"""

from __future__ import annotations

from heartsong.dsp.beats import BeatHistory, BeatWindow, clean_ibi_mask, clean_nn
from heartsong.dsp.filters import (
    PPG_BAND_HZ,
    PPG_FILTER_ORDER,
    butter_bandpass_sos,
    sos_filter_stream,
    sos_filter_zi,
    sos_filtfilt,
    sos_group_delay_s,
)
from heartsong.dsp.hrv_time import (
    HrvTime,
    hrv_mean_hr,
    hrv_mean_nn,
    hrv_pnn50,
    hrv_rmssd,
    hrv_sdnn,
    hrv_time,
    valid_diff_from_segments,
)
from heartsong.dsp.peaks import ElgendiPeakStream, ppg_findpeaks_elgendi
from heartsong.dsp.pipeline import StreamingPipeline, analyze_ppg, ppg_bandpass_sos, warm_up

__all__ = [
    "PPG_BAND_HZ",
    "PPG_FILTER_ORDER",
    "BeatHistory",
    "BeatWindow",
    "ElgendiPeakStream",
    "HrvTime",
    "StreamingPipeline",
    "analyze_ppg",
    "butter_bandpass_sos",
    "clean_ibi_mask",
    "clean_nn",
    "hrv_mean_hr",
    "hrv_mean_nn",
    "hrv_pnn50",
    "hrv_rmssd",
    "hrv_sdnn",
    "hrv_time",
    "ppg_bandpass_sos",
    "ppg_findpeaks_elgendi",
    "sos_filter_stream",
    "sos_filter_zi",
    "sos_filtfilt",
    "sos_group_delay_s",
    "valid_diff_from_segments",
    "warm_up",
]
