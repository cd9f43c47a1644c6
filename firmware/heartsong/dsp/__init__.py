"""Signal processing: numba kernels with streaming and batch front ends.

From pulse to metrics:

* ``filters`` (Butterworth band-pass, biquad cascades) and ``peaks`` (Elgendi et al. 2013
  PPG systolic peaks);
* ``ppg_stream`` (the streaming PPG front end: pulse amplitude, baseline, fiducial point
  and template quality per beat) and ``quality`` (pulse templates for the batch);
* ``artifacts`` (Lipponen & Tarvainen 2019 artefact correction) and ``artifacts_stream``
  (the same, incremental, for a stream of beats); ``beats`` (a gap-aware beat history
  and a simple interval screen);
* ``hrv_time`` (Task Force 1996 time domain), ``hrv_nonlinear`` (Poincare SD1/SD2),
  ``hrv_freq`` (Lomb-Scargle LF/HF), ``resp`` (breathing rate from RSA and the pulse's
  modulations), ``coherence`` (heart-rhythm coherence), and ``window`` (all of them over
  one time window);
* ``pipeline`` (the streaming pipeline the appliance runs) and ``batch`` (the analysis
  of a whole recording behind ``heartsong analyze``).

Kernels are ``@njit(cache=True)`` and private; call :func:`warm_up` once at start-up so
they compile (or load from numba's cache) before the processing loop.
"""

from __future__ import annotations

from heartsong.dsp.artifacts import (
    ARTIFACT_NAMES,
    ArtifactCorrection,
    correct_beats_lipponen2019,
    rr_artifacts_lipponen2019,
)
from heartsong.dsp.artifacts_stream import CorrectedWindow, StreamingBeatCorrector
from heartsong.dsp.batch import AnalysisResult, analyze_recording, analyze_rr
from heartsong.dsp.beats import BeatHistory, BeatWindow, clean_ibi_mask, clean_nn
from heartsong.dsp.coherence import coherence_from_psd, hrv_coherence
from heartsong.dsp.filters import (
    PPG_BAND_HZ,
    PPG_FILTER_ORDER,
    butter_bandpass_sos,
    sos_filter_stream,
    sos_filter_zi,
    sos_filtfilt,
    sos_group_delay_s,
)
from heartsong.dsp.hrv_freq import (
    HF_BAND_HZ,
    LF_BAND_HZ,
    VLF_BAND_HZ,
    HrvFreq,
    Spectrum,
    band_power,
    hrv_frequency,
    hrv_lf_hf,
    lomb_scargle_psd,
    segments_from_holes,
)
from heartsong.dsp.hrv_nonlinear import HrvPoincare, hrv_poincare
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
from heartsong.dsp.ppg_stream import PpgFrontEnd
from heartsong.dsp.quality import BEAT_QUALITY_MIN, beat_quality, window_quality
from heartsong.dsp.resp import (
    RespEstimate,
    fuse_resp,
    ppg_pulse_features,
    resp_rate,
    resp_rate_from_ppg,
    resp_rate_from_rr,
)
from heartsong.dsp.window import WINDOW_METRIC_NAMES, WindowMetrics, WindowRules, window_metrics

__all__ = [
    "ARTIFACT_NAMES",
    "BEAT_QUALITY_MIN",
    "HF_BAND_HZ",
    "LF_BAND_HZ",
    "PPG_BAND_HZ",
    "PPG_FILTER_ORDER",
    "VLF_BAND_HZ",
    "WINDOW_METRIC_NAMES",
    "AnalysisResult",
    "ArtifactCorrection",
    "BeatHistory",
    "BeatWindow",
    "CorrectedWindow",
    "ElgendiPeakStream",
    "HrvFreq",
    "HrvPoincare",
    "HrvTime",
    "PpgFrontEnd",
    "RespEstimate",
    "Spectrum",
    "StreamingBeatCorrector",
    "StreamingPipeline",
    "WindowMetrics",
    "WindowRules",
    "analyze_ppg",
    "analyze_recording",
    "analyze_rr",
    "band_power",
    "beat_quality",
    "butter_bandpass_sos",
    "clean_ibi_mask",
    "clean_nn",
    "coherence_from_psd",
    "correct_beats_lipponen2019",
    "fuse_resp",
    "hrv_coherence",
    "hrv_frequency",
    "hrv_lf_hf",
    "hrv_mean_hr",
    "hrv_mean_nn",
    "hrv_pnn50",
    "hrv_poincare",
    "hrv_rmssd",
    "hrv_sdnn",
    "hrv_time",
    "lomb_scargle_psd",
    "ppg_bandpass_sos",
    "ppg_findpeaks_elgendi",
    "ppg_pulse_features",
    "resp_rate",
    "resp_rate_from_ppg",
    "resp_rate_from_rr",
    "rr_artifacts_lipponen2019",
    "segments_from_holes",
    "sos_filter_stream",
    "sos_filter_zi",
    "sos_filtfilt",
    "sos_group_delay_s",
    "valid_diff_from_segments",
    "warm_up",
    "window_metrics",
    "window_quality",
]
