"""The shipped int8 stress model: loads with the runtime, matches its float reference and
its spec; a missing, corrupt or mismatched model is refused with a clear message."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heartsong.events import Metrics
from heartsong.stress.baseline import BaselineLearner
from heartsong.stress.estimator import ModelEstimator, NoModelEstimator, make_stress_estimator
from heartsong.stress.features import (
    FEATURE_CLIP,
    FEATURE_NAMES,
    FEATURE_VERSION,
    MIN_SIGNAL_QUALITY,
    RAW_METRICS,
    REQUIRED_METRICS,
)
from heartsong.stress.model import DEFAULT_MODEL_DIR, StressModel
from heartsong.stress.spec import MODEL_FILE, SPEC_FILE, StressModelError, load_spec

MODELS = Path(__file__).resolve().parents[1] / "models"
REFERENCE = MODELS / "stress_reference.json"


@pytest.fixture(scope="module")
def model() -> StressModel:
    return StressModel.load(MODELS)


@pytest.fixture(scope="module")
def spec_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((MODELS / SPEC_FILE).read_text())
    return doc


def copy_models(tmp_path: Path) -> Path:
    out = tmp_path / "models"
    out.mkdir()
    for name in (MODEL_FILE, SPEC_FILE):
        shutil.copy(MODELS / name, out / name)
    return out


def test_the_source_tree_models_are_the_default() -> None:
    assert DEFAULT_MODEL_DIR == MODELS


def test_shipped_model_loads_with_the_runtime_and_is_small(model: StressModel) -> None:
    assert (MODELS / MODEL_FILE).stat().st_size <= 32 * 1024
    scale, zero = model.input_quantization
    assert scale > 0.0 and -128 <= zero <= 127
    # The input range covers the clipped standardised features.
    assert (127 - zero) * scale >= FEATURE_CLIP * 0.99
    assert (-128 - zero) * scale <= -FEATURE_CLIP * 0.99


def test_shipped_model_matches_its_stored_float_outputs(model: StressModel) -> None:
    ref = json.loads(REFERENCE.read_text())
    assert ref["model_sha256"] == model.spec.model_sha256
    fr = ref["float_reference"]
    z = np.asarray(fr["inputs"])
    p_float = np.asarray(fr["float_outputs"])
    p_int8 = np.array([model.predict_standardized(row) for row in z])
    # int8 against float: within a few output steps, and the same decision almost always.
    assert np.max(np.abs(p_int8 - p_float)) <= 0.03
    thr = model.spec.decision_threshold
    assert np.mean((p_int8 >= thr) == (p_float >= thr)) >= 0.95
    # The same runtime gives exactly the int8 outputs the training run saw.
    np.testing.assert_allclose(p_int8, fr["int8_outputs"], atol=1e-6)


def test_the_feature_spec_matches_the_code(spec_doc: dict[str, Any]) -> None:
    assert spec_doc["feature_version"] == FEATURE_VERSION
    assert spec_doc["all_features"] == list(FEATURE_NAMES)
    assert spec_doc["raw_metrics"] == list(RAW_METRICS)
    assert spec_doc["required_metrics"] == list(REQUIRED_METRICS)
    assert spec_doc["gate"]["min_signal_quality"] == MIN_SIGNAL_QUALITY
    assert spec_doc["normalization"]["clip"] == FEATURE_CLIP
    n = len(spec_doc["features"])
    assert set(spec_doc["features"]) <= set(FEATURE_NAMES)
    assert len(spec_doc["normalization"]["mean"]) == n == len(spec_doc["normalization"]["scale"])
    spec = load_spec(MODELS / SPEC_FILE)
    assert spec.features == tuple(spec_doc["features"])


def test_inputs_are_quantized_with_the_models_own_scale_and_zero_point(
    model: StressModel,
) -> None:
    scale, zero = model.input_quantization
    x = np.array([0.0, scale * 3.4, -scale * 7.6, 1e3, -1e3])
    q = model.quantize(x)
    assert q.dtype == np.int8
    assert q.tolist() == [zero, zero + 3, zero - 8, 127, -128]


def test_predict_selects_standardises_and_orders_by_heart_rate(model: StressModel) -> None:
    spec = model.spec
    idx = FEATURE_NAMES.index("hr_log_ratio")
    assert "hr_log_ratio" in spec.features
    ps = []
    for ratio in (-0.1, 0.0, 0.1, 0.2):
        f = np.zeros(len(FEATURE_NAMES))
        f[idx] = ratio
        ps.append(model.predict(f))
    assert all(0.0 <= p <= 1.0 for p in ps)
    assert ps == sorted(ps) and ps[-1] > ps[0]
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros(3))


def test_a_missing_model_or_spec_is_named(tmp_path: Path) -> None:
    d = copy_models(tmp_path)
    (d / MODEL_FILE).unlink()
    with pytest.raises(StressModelError, match=r"stress_int8\.tflite: missing"):
        StressModel.load(d)
    with pytest.raises(StressModelError, match=r"stress_features\.json: missing"):
        StressModel.load(tmp_path)


def test_a_model_that_is_not_the_specs_is_refused(tmp_path: Path) -> None:
    d = copy_models(tmp_path)
    data = bytearray((d / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (d / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(StressModelError, match="do not belong together"):
        StressModel.load(d)


def test_a_corrupt_model_is_refused(tmp_path: Path) -> None:
    import hashlib

    d = copy_models(tmp_path)
    junk = b"this is not a flatbuffer" * 10
    (d / MODEL_FILE).write_bytes(junk)
    doc = json.loads((d / SPEC_FILE).read_text())
    doc["model_sha256"] = hashlib.sha256(junk).hexdigest()
    (d / SPEC_FILE).write_text(json.dumps(doc))
    with pytest.raises(StressModelError, match="not a usable TFLite model"):
        StressModel.load(d)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.update(feature_version=FEATURE_VERSION + 1), "retrain"),
        (lambda d: d.update(all_features=list(reversed(FEATURE_NAMES))), "all_features"),
        (lambda d: d.update(features=["no_such_feature"]), "features"),
        (lambda d: d["normalization"].update(scale=[0.0] * len(d["features"])), "scale"),
        (lambda d: d["thresholds"].update(calm_enter=0.9), "thresholds"),
        (lambda d: d.pop("population_baseline"), "population_baseline"),
        (lambda d: d["population_baseline"].update(hr_bpm=None), "hr_bpm"),
        (lambda d: d.update(spec_version=99), "spec_version"),
        (lambda d: d.pop("history"), "history"),
        (lambda d: d["history"].update(low_quantile=2.0), "low_quantile"),
        (lambda d: d["history"].update(lag_s=500.0), "history"),
    ],
)
def test_a_spec_that_does_not_match_the_code_is_refused(
    tmp_path: Path, change: Any, match: str
) -> None:
    d = copy_models(tmp_path)
    doc = json.loads((d / SPEC_FILE).read_text())
    change(doc)
    (d / SPEC_FILE).write_text(json.dumps(doc))
    with pytest.raises(StressModelError, match=match):
        StressModel.load(d)


def test_a_spec_with_another_feature_count_than_the_model_is_refused(tmp_path: Path) -> None:
    d = copy_models(tmp_path)
    doc = json.loads((d / SPEC_FILE).read_text())
    extra = next(f for f in FEATURE_NAMES if f not in doc["features"])
    doc["features"].append(extra)
    doc["normalization"]["mean"].append(0.0)
    doc["normalization"]["scale"].append(1.0)
    (d / SPEC_FILE).write_text(json.dumps(doc))
    with pytest.raises(StressModelError, match="input shape"):
        StressModel.load(d)


def test_a_spec_that_is_not_json_is_refused(tmp_path: Path) -> None:
    d = copy_models(tmp_path)
    (d / SPEC_FILE).write_text("{")
    with pytest.raises(StressModelError, match="not valid JSON"):
        StressModel.load(d)


def test_without_a_usable_model_the_device_runs_without_adaptation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        est = make_stress_estimator(tmp_path / "nothing")
    assert isinstance(est, NoModelEstimator)
    assert "stress_features.json: missing" in caplog.text
    out = est.estimate(Metrics(t_s=0.0, wall_s=0.0, hr_bpm=70.0))
    assert out.state == "unknown" and out.p_stress is None and "missing" in out.reason


def metrics(t: float, hr: float | None, **kw: float) -> Metrics:
    base: dict[str, Any] = {"rmssd_ms": 45.0, "sdnn_ms": 55.0, "pnn50_pct": 25.0, "lf_hf": 1.2,
                            "resp_rate_bpm": 14.0, "coherence": 0.3, "signal_quality": 0.9}
    base.update(kw)
    if hr is None:
        base = {}
    return Metrics(t_s=t, wall_s=1.7e9 + t, hr_bpm=hr, source="ppg", **base)


def test_estimator_learns_the_baseline_then_answers_a_faster_heart(tmp_path: Path) -> None:
    est = make_stress_estimator(MODELS, tmp_path)
    assert isinstance(est, ModelEstimator)
    learn_s = est.model.spec.baseline_s
    rng = np.random.default_rng(0)
    t = 0.0
    while t <= learn_s + 5.0:  # rest at 60 bpm, a heart rate far below the population's
        est.estimate(metrics(t, 60.0 + rng.normal(0.0, 0.5)))
        t += 5.0
    assert est.learner.current.source == "personal"
    assert est.learner.current.values["hr_bpm"] == pytest.approx(60.0, abs=1.0)
    assert (tmp_path / "stress_baseline.json").exists()
    rest = [est.estimate(metrics(t + 5.0 * k, 60.0)) for k in range(1, 25)]
    t += 5.0 * 25
    stress = [est.estimate(metrics(t + 5.0 * k, 78.0)) for k in range(1, 25)]
    assert rest[-1].p_stress is not None and stress[-1].p_stress is not None
    assert stress[-1].p_stress > rest[-1].p_stress + 0.1
    assert stress[-1].state == "stressed" and rest[-1].state != "stressed"
    lost = est.estimate(metrics(t + 200.0, None))
    assert lost.state == "unknown" and lost.p_stress is None and "clean beats" in lost.reason


def test_estimator_uses_the_population_baseline_on_the_first_night(model: StressModel) -> None:
    est = ModelEstimator(model, BaselineLearner(model.spec.population, None))
    pop_hr = model.spec.population.values["hr_bpm"]
    out = [est.estimate(metrics(5.0 * k, pop_hr * 1.3)) for k in range(10)]
    assert est.learner.current.source == "population"
    assert out[-1].p_stress is not None and out[-1].p_stress > model.spec.decision_threshold
    assert not math.isnan(out[-1].p_stress)


def test_the_device_and_analyze_compute_the_same_stress(model: StressModel) -> None:
    """ModelEstimator (device) and ``analyze --stress`` share features, history, smoothing."""
    from heartsong.stress_cmd import annotate_windows

    rng = np.random.default_rng(3)
    rest = {"rmssd_ms": 45.0, "sdnn_ms": 55.0, "pnn50_pct": 25.0, "lf_hf": 1.2,
            "resp_rate_bpm": 14.0, "coherence": 0.3, "signal_quality": 0.9}
    windows: list[dict[str, Any]] = []
    for i in range(150):
        hr = 66.0 + (12.0 if 60 <= i < 100 else 0.0) - 0.02 * i + rng.normal(0.0, 1.0)
        usable = i >= 35 and rng.random() > 0.2  # nothing usable in the "baseline" part
        windows.append({"t_start_s": 10.0 * i, "t_end_s": 10.0 * i + 60.0,
                        "hr_bpm": hr if usable else None, **rest, "reasons": {}})
    annotate_windows(windows, model, 300.0)
    est = ModelEstimator(model, BaselineLearner(model.spec.population, None, learn_s=1e9))
    for w in windows:
        kw = {k: v for k, v in w.items() if k in rest} if w["hr_bpm"] is not None else {}
        out = est.estimate(Metrics(t_s=w["t_end_s"], wall_s=1.7e9 + w["t_end_s"],
                                   hr_bpm=w["hr_bpm"], source="ppg", **kw))
        assert out.state == w["stress_state"]
        if out.p_stress is None:
            assert w["p_stress"] is None
        else:
            assert out.p_stress == pytest.approx(w["p_stress"], abs=6e-5)  # analyze rounds
    assert len(est.history) > 0
    p = np.array([np.nan if w["p_stress_window"] is None else w["p_stress_window"]
                  for w in windows])
    assert np.nanmean(p[65:100]) > np.nanmean(p[110:])
