"""Train, evaluate and export heartsong's stress classifier (issue 7).

    .venv/bin/python tools/train_stress_model.py [--data DIR] [--out models] [--seed 0]
        [--baseline-seconds 300] [--threads 1]

Needs the ``train`` extra (tensorflow-cpu, scikit-learn). Deterministic for a given data
set and seed. About 5 minutes on 2 cores for the 26 shared participants.

1. Data: every labelled Stress-Predict participant (``tools/stress_data.py``): the raw 64 Hz
   wrist BVP through heartsong's own DSP (60-s windows every 10 s, as ``heartsong analyze
   --format e4``), each window labelled by the majority of its labelled seconds.
2. Baseline: each person's resting start (the first ``--baseline-seconds``), the medians of
   the usable windows ending in it (:func:`heartsong.stress.baseline.baseline_from_start`);
   with too few, the population baseline (median of the *training* participants'
   baselines). Features against it (:mod:`heartsong.stress.features`), with the causal
   heart-rate history of :mod:`heartsong.stress.history` fed window by window, as on the
   device.
3. Rows: usable windows (:func:`heartsong.stress.features.gate_reason`) starting after the
   baseline part. Models train on windows wholly inside one phase; they are scored on
   every labelled window (majority label).
4. Leave-one-subject-out: for each participant, every candidate
   (``tools/stress_models.py``) is fitted on the others, its threshold chosen by inner
   folds on the others, and scored on the held-out person. The deployed family is the
   convertible candidate with the best pooled LOSO AUROC; each of its fold models is also
   converted to int8 and run through the device code (:class:`heartsong.stress.model.
   StressModel`) for the int8 LOSO scores and the float/int8 agreement.
5. The deployed model: that family fitted on everyone, threshold from inner folds,
   converted to int8, written to ``--out`` with its spec, a reference of float outputs,
   the per-participant result of ``heartsong analyze --stress`` (same code), and
   ``MODEL_CARD.md`` with every number above.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stress import measure
from heartsong.stress.baseline import MIN_BASELINE_WINDOWS, Baseline, baseline_from_windows
from heartsong.stress.features import (
    FEATURE_CLIP,
    FEATURE_NAMES,
    FEATURE_VERSION,
    MIN_SIGNAL_QUALITY,
    RAW_METRICS,
    REQUIRED_METRICS,
)
from heartsong.stress.history import HistorySettings, HrHistory
from heartsong.stress.model import StressModel
from heartsong.stress.spec import SPEC_FORMAT, SPEC_VERSION
from heartsong.stress_cmd import annotate_windows
from stress_card import write_card
from stress_data import (
    STEP_S,
    WINDOW_S,
    Participant,
    default_data_dir,
    load_dataset,
    read_labels,
    window_stress_share,
)
from stress_eval import auroc, balanced_accuracy, best_threshold, summarize
from stress_models import CANDIDATES, Candidate, Fitted, fit_logreg, fit_with_threshold
from stress_tflite import (
    convert_int8,
    representative_rows,
    set_tf_threads,
    shift_output_bias,
    write_model_dir,
)

logger = logging.getLogger("train_stress_model")

#: Heart-rate history of the look-back features, written to the spec.
HISTORY = HistorySettings()
#: Smoothing written to the spec (seconds).
SMOOTHING = {"tau_s": 30.0, "warmup_s": 20.0, "max_gap_s": 120.0}
#: Half-width of the hysteresis bands, in probability.
HYSTERESIS = 0.02
#: Output-bias shifts tried before keeping the best int8 conversion, in int8 logit steps.
BIAS_SHIFTS = (-0.5, -0.375, -0.25, -0.125, 0.0, 0.125, 0.25, 0.375, 0.5)
#: Synthetic standardised inputs stored with their float outputs for the runtime test.
N_REFERENCE = 64
REFERENCE_FILE = "stress_reference.json"
#: Label shifts (seconds, + = labels later) of the alignment check in the card.
LAG_SCAN_S = (-60.0, -30.0, -10.0, 0.0, 10.0, 30.0, 60.0)
CARD_FILE = "MODEL_CARD.md"


# -- data -> features ----------------------------------------------------------------


def personal_baselines(people: list[Participant], baseline_s: float) -> dict[int, Baseline | None]:
    """Each participant's baseline from the windows ending in the first ``baseline_s``."""
    out: dict[int, Baseline | None] = {}
    for p in people:
        start = [w for w in p.windows if w["t_end_s"] <= baseline_s + 1e-9]
        out[p.pid] = baseline_from_windows(start)
    return out


def population_baseline(bases: list[Baseline | None]) -> Baseline:
    """Median over participants of their personal baselines, per metric."""
    known = [b for b in bases if b is not None]
    values = {}
    for name in RAW_METRICS:
        col = np.array([b.values[name] for b in known], dtype=np.float64)
        col = col[np.isfinite(col)]
        values[name] = float(np.median(col)) if col.size else math.nan
    return Baseline(values, source="population", n_windows=len(known))


def feature_matrix(p: Participant, base: Baseline) -> tuple[np.ndarray, np.ndarray]:
    """All features of every window (NaN rows where unusable) and the usable mask.

    The windows are taken in time order through :class:`HrHistory`, as on the device.
    """
    x = np.full((len(p.windows), len(FEATURE_NAMES)), np.nan)
    ok = np.zeros(len(p.windows), dtype=bool)
    history = HrHistory(HISTORY)
    for i, w in enumerate(p.windows):
        f = history.features(float(w["t_end_s"]), w, base.values, MIN_SIGNAL_QUALITY)
        if f.values is not None:
            x[i] = f.values
            ok[i] = True
    return x, ok


class Table:
    """Features and row masks of every participant under one choice of population."""

    def __init__(self, people: list[Participant], personal: dict[int, Baseline | None],
                 population: Baseline, baseline_s: float) -> None:
        self.baseline_s = baseline_s
        self.rows: dict[int, dict[str, np.ndarray]] = {}
        for p in people:
            base = personal[p.pid] or population
            x, ok = feature_matrix(p, base)
            t0 = np.array([w["t_start_s"] for w in p.windows])
            lab = p.labels()
            after = t0 >= baseline_s - 1e-9
            self.rows[p.pid] = {
                "x": x,
                "t_end": np.array([w["t_end_s"] for w in p.windows], dtype=np.float64)[:, None],
                "y": lab,
                "usable": ok,
                "eval": ok & after & (lab >= 0),
                "train": ok & after & p.pure(),
            }

    def stack(self, pids: list[int], kind: str, col: str = "x") -> tuple[
        np.ndarray, np.ndarray, np.ndarray
    ]:
        """Rows of ``kind`` (train/eval/usable) of these participants: X (the features,
        or with ``col="t_end"`` each window's end time in s), y, groups."""
        xs, ys, gs = [], [], []
        for pid in pids:
            r = self.rows[pid]
            m = r[kind]
            xs.append(r[col][m])
            ys.append(r["y"][m])
            gs.append(np.full(int(m.sum()), pid))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


# -- spec -------------------------------------------------------------------------------


def thresholds_from(threshold: float, oof: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Decision and hysteresis thresholds.

    ``stressed`` is entered ``HYSTERESIS`` above the decision threshold and left as far
    below it; ``calm`` is centred on the median out-of-fold probability of the rest
    windows (at least as relaxed as a typical rest minute), kept below the stressed band.
    """
    calm = float(np.median(oof[y == 0]))
    calm = min(calm, threshold - 2 * HYSTERESIS)
    r = lambda v: round(min(max(v, 0.0), 1.0), 4)  # noqa: E731
    return {
        "decision": r(threshold),
        "calm_enter": r(calm - HYSTERESIS),
        "calm_exit": r(calm + HYSTERESIS),
        "stressed_exit": r(threshold - HYSTERESIS),
        "stressed_enter": r(threshold + HYSTERESIS),
    }


def make_spec(kind: str, fitted: Fitted, population: Baseline, thresholds: dict[str, float],
              baseline_s: float, training: dict[str, Any]) -> dict[str, Any]:
    """The spec dict (model_sha256 and model_version filled in by the caller)."""
    return {
        "format": SPEC_FORMAT,
        "spec_version": SPEC_VERSION,
        "model_version": "",
        "model_kind": kind,
        "feature_version": FEATURE_VERSION,
        "raw_metrics": list(RAW_METRICS),
        "required_metrics": list(REQUIRED_METRICS),
        "all_features": list(FEATURE_NAMES),
        "features": [FEATURE_NAMES[i] for i in fitted.feature_idx],
        "normalization": {
            "method": "per-person baseline (log ratio / difference, heartsong.stress.features), "
                      "then (x - mean) / scale over the training rows, clipped",
            "mean": [round(float(v), 8) for v in fitted.mean],
            "scale": [round(float(v), 8) for v in fitted.scale],
            "clip": FEATURE_CLIP,
        },
        "gate": {"min_signal_quality": MIN_SIGNAL_QUALITY},
        "population_baseline": {
            k: (round(v, 6) if math.isfinite(v) else None) for k, v in population.values.items()
        },
        "baseline": {"baseline_s": baseline_s},
        "thresholds": thresholds,
        "smoothing": dict(SMOOTHING),
        "history": HISTORY.as_dict(),
        "window": {"window_s": WINDOW_S, "step_s": STEP_S},
        "training": training,
    }


def export(out_dir: Path, kind: str, fitted: Fitted, population: Baseline,
           thresholds: dict[str, float], baseline_s: float, representative: np.ndarray,
           training: dict[str, Any]) -> tuple[bytes, dict[str, Any], float]:
    """Convert to int8 (with output-bias correction) and write model + spec to ``out_dir``.

    Bias correction: the int8 logit lives on a grid of about 1/255 of its range, and where
    the output bias falls on that grid biases the int8 probabilities near the threshold
    one way (by up to half a step), which flips decisions there. The output bias is
    shifted by each of ``BIAS_SHIFTS`` grid steps, and the conversion whose decisions at
    the threshold agree best with the float model's on the training rows (then: the
    smallest mean |p_int8 - p_float|) is kept: training data only, in the spirit of the
    empirical bias correction of Nagel et al. (2019, ICCV). Returns the model, its spec
    and the shift (logit units).
    """
    net = fitted.net
    assert net is not None
    thr = thresholds["decision"]
    p_float = net.forward(representative)
    logits = net.forward(representative_rows(representative, FEATURE_CLIP))
    logits = np.log(logits / (1.0 - logits))
    grid = float(np.ptp(logits)) / 255.0
    best: tuple[tuple[int, float], float, bytes, dict[str, Any]] | None = None
    for shift in sorted(BIAS_SHIFTS, key=abs):
        model = convert_int8(shift_output_bias(net, grid * shift), representative, FEATURE_CLIP)
        spec = make_spec(kind, fitted, population, thresholds, baseline_s, training)
        sha = hashlib.sha256(model).hexdigest()
        spec["model_version"] = f"stress-f{FEATURE_VERSION}-{kind}-{sha[:10]}"
        spec["quantization"] = {"output_bias_shift_logit": round(grid * shift, 6)}
        spec = write_model_dir(out_dir, model, spec)
        loaded = StressModel.load(out_dir)
        p_int8 = np.array([loaded.predict_standardized(r) for r in representative])
        flips = int(np.sum((p_int8 >= thr) != (p_float >= thr)))
        score = (flips, float(np.mean(np.abs(p_int8 - p_float))))
        if best is None or score < best[0]:
            best = (score, grid * shift, model, spec)
    assert best is not None
    _, shift_logit, model, spec = best
    spec = write_model_dir(out_dir, model, spec)
    return model, spec, shift_logit


def device_scores(model: StressModel, x: np.ndarray) -> np.ndarray:
    """The int8 model's probability for all-feature rows, through the device code."""
    return np.array([model.predict(row) for row in x])


# -- evaluation -----------------------------------------------------------------------


def loso(people: list[Participant], personal: dict[int, Baseline | None], baseline_s: float,
         seed: int) -> tuple[dict[str, Any], dict[str, dict[int, Any]]]:
    """Leave-one-subject-out scores of every candidate.

    Returns the summaries by candidate and, per candidate and held-out participant, the
    fold's fitted model, threshold, population and table (for the int8 pass).
    """
    pids = [p.pid for p in people]
    preds: dict[str, dict[str, list[np.ndarray]]] = {
        c.name: {"y": [], "score": [], "decision": [], "group": []} for c in CANDIDATES
    }
    folds: dict[str, dict[int, Any]] = {c.name: {} for c in CANDIDATES}
    selected: dict[int, list[str]] = {}
    for k, held in enumerate(pids):
        t = time.monotonic()
        train_ids = [q for q in pids if q != held]
        pop = population_baseline([personal[q] for q in train_ids])
        table = Table(people, personal, pop, baseline_s)
        x, y, g = table.stack(train_ids, "train")
        xe, ye, ge = table.stack([held], "eval")
        for cand in CANDIDATES:
            fitted, thr, _ = fit_with_threshold(cand, x, y, g, seed)
            folds[cand.name][held] = (fitted, thr, pop, table)
            if cand.selects:
                selected[held] = [FEATURE_NAMES[i] for i in fitted.feature_idx]
            if len(ye) == 0:
                continue
            s = fitted.score(xe)
            d = preds[cand.name]
            d["y"].append(ye)
            d["score"].append(s)
            d["decision"].append(s >= thr)
            d["group"].append(ge)
        logger.info("fold %d/%d (S%02d held out): %.1f s", k + 1, len(pids), held,
                    time.monotonic() - t)
    out: dict[str, Any] = {}
    for cand in CANDIDATES:
        d = preds[cand.name]
        out[cand.name] = summarize(
            np.concatenate(d["y"]), np.concatenate(d["score"]),
            np.concatenate(d["decision"]), np.concatenate(d["group"]),
            probabilistic=cand.probabilistic,
        )
        out[cand.name]["convertible"] = cand.convertible
    out["_selected_features"] = {f"S{k:02d}": v for k, v in selected.items()}
    return out, folds


def int8_loso(cand: Candidate, folds: dict[int, Any], baseline_s: float) -> dict[str, Any]:
    """Each fold model of the deployed family as int8, through the device code."""
    ys, s_int, d_int, gs = [], [], [], []
    agree, total, max_dp = 0, 0, 0.0
    shifts: list[float] = []
    for held, (fitted, thr, pop, table) in folds.items():
        r = table.rows[held]
        xt, _, _ = table.stack([q for q in table.rows if q != held], "train")
        with tempfile.TemporaryDirectory() as tmp:
            th = {"decision": thr, "calm_enter": 0.0, "calm_exit": 0.01,
                  "stressed_exit": 0.98, "stressed_enter": 0.99}
            _, _, shift = export(Path(tmp), cand.name, fitted, pop, th, baseline_s,
                                 fitted.inputs(xt), {})
            shifts.append(shift)
            model = StressModel.load(Path(tmp))
        xu = r["x"][r["usable"]]
        if len(xu):
            p_f = fitted.score(xu)
            p_q = device_scores(model, xu)
            agree += int(np.sum((p_f >= thr) == (p_q >= thr)))
            total += len(xu)
            max_dp = max(max_dp, float(np.max(np.abs(p_f - p_q))))
        m = r["eval"]
        if m.any():
            p_q = device_scores(model, r["x"][m])
            ys.append(r["y"][m])
            s_int.append(p_q)
            d_int.append(p_q >= thr)
            gs.append(np.full(int(m.sum()), held))
    out = summarize(np.concatenate(ys), np.concatenate(s_int), np.concatenate(d_int),
                    np.concatenate(gs))
    out["agreement"] = agree / max(total, 1)
    out["agreement_windows"] = total
    out["max_abs_dp"] = max_dp
    out["bias_shifts"] = shifts
    return out


def analyze_per_participant(people: list[Participant], model_dir: Path,
                            baseline_s: float) -> dict[str, Any]:
    """What ``heartsong analyze --stress`` gives on each recording (in-sample)."""
    model = StressModel.load(model_dir)
    thr = model.spec.decision_threshold
    out: dict[str, Any] = {}
    for p in people:
        windows = copy.deepcopy(p.windows)
        section = annotate_windows(windows, model, baseline_s)
        lab = p.labels()
        t0 = np.array([w["t_start_s"] for w in windows])
        pw = np.array([np.nan if w["p_stress_window"] is None else w["p_stress_window"]
                       for w in windows])
        m = (t0 >= baseline_s - 1e-9) & (lab >= 0) & np.isfinite(pw)
        states = {s: {"rest": 0, "stress": 0} for s in ("calm", "neutral", "stressed", "unknown")}
        for w, y, tt in zip(windows, lab, t0, strict=True):
            if y >= 0 and tt >= baseline_s - 1e-9:
                states[w["stress_state"]]["stress" if y == 1 else "rest"] += 1
        out[p.name] = {
            "baseline": section["baseline"]["source"],
            "n_eval": int(m.sum()),
            "balanced_accuracy": _r(balanced_accuracy(lab[m] == 1, pw[m] >= thr)),
            "auroc": _r(auroc(lab[m], pw[m])),
            "states": states,
        }
    return out


def _r(v: float) -> float | None:
    return None if not math.isfinite(v) else round(v, 6)


def float_reference(fitted: Fitted, model_dir: Path, seed: int) -> dict[str, Any]:
    """Seeded synthetic standardised inputs, their float outputs and the int8 outputs."""
    rng = np.random.default_rng(seed)
    n = len(fitted.feature_idx)
    z = np.clip(rng.normal(0.0, 1.5, size=(N_REFERENCE, n)), -FEATURE_CLIP, FEATURE_CLIP)
    assert fitted.net is not None
    p_float = fitted.net.forward(z)
    model = StressModel.load(model_dir)
    p_int8 = np.array([model.predict_standardized(row) for row in z])
    return {
        "inputs": np.round(z, 6).tolist(),
        "float_outputs": np.round(p_float, 6).tolist(),
        "int8_outputs": np.round(p_int8, 6).tolist(),
        "output_step": model.output_quantization[0],
    }


# -- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(),
                    help="the stress_predict directory (default ../shared/data/stress_predict)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "models")
    ap.add_argument("--baseline-seconds", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="BLAS/TensorFlow threads")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    set_tf_threads(args.threads)
    t_start = time.monotonic()
    baseline_s = float(args.baseline_seconds)

    labels = read_labels(args.data)
    people = load_dataset(args.data, labels)
    if len(people) < 3:
        logger.error("need at least 3 labelled participants in %s, found %d", args.data,
                     len(people))
        return 2
    personal = personal_baselines(people, baseline_s)
    results, folds = loso(people, personal, baseline_s, args.seed)
    for c in CANDIDATES:
        v = results[c.name]
        logger.info("LOSO %-14s balanced accuracy %.3f, AUROC %.3f, F1 %.3f, ECE %.3f", c.name,
                    v["balanced_accuracy"], v["auroc"], v["f1"], v["ece"])
    deployable = [c for c in CANDIDATES if c.convertible]
    best = max(deployable, key=lambda c: (results[c.name]["auroc"], -deployable.index(c)))
    logger.info("deployed family: %s (pooled LOSO AUROC %.3f)", best.name,
                results[best.name]["auroc"])
    results["_int8"] = int8_loso(best, folds[best.name], baseline_s)

    # The deployed model: everyone.
    pids = [p.pid for p in people]
    pop = population_baseline([personal[q] for q in pids])
    table = Table(people, personal, pop, baseline_s)
    x, y, g = table.stack(pids, "train")
    fitted, thr, oof = fit_with_threshold(best, x, y, g, args.seed)
    thresholds = thresholds_from(thr, oof, y)
    xu, _, _ = table.stack(pids, "usable")
    training = {
        "data": "Stress-Predict (Iqbal et al. 2022), wrist BVP 64 Hz, per-second task labels",
        "participants": [p.name for p in people],
        "n_train_windows": len(y),
        "seed": args.seed,
        "command": "tools/train_stress_model.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
        ),
    }
    model_bytes, spec, _ = export(args.out, best.name, fitted, pop, thresholds, baseline_s,
                                  fitted.inputs(x), training)
    model = StressModel.load(args.out)
    p_f = fitted.score(xu)
    p_q = device_scores(model, xu)
    final_agreement = float(np.mean((p_f >= thr) == (p_q >= thr)))
    per_analyze = analyze_per_participant(people, args.out, baseline_s)
    reference = {
        "model_sha256": spec["model_sha256"],
        "model_version": spec["model_version"],
        "float_reference": float_reference(fitted, args.out, args.seed),
        "analyze": {"baseline_s": baseline_s, "decision_threshold": spec["thresholds"]["decision"],
                    "participants": per_analyze},
    }
    (args.out / REFERENCE_FILE).write_text(json.dumps(reference, indent=1) + "\n")
    report = {
        "results": results,
        "deployed": best.name,
        "spec": spec,
        "model_bytes": len(model_bytes),
        "final_agreement": final_agreement,
        "final_agreement_windows": len(xu),
        "final_max_abs_dp": float(np.max(np.abs(p_f - p_q))),
        "coverage": coverage(table, people),
        "analyze": per_analyze,
        "baseline_s": baseline_s,
        "n_personal_baselines": sum(b is not None for b in personal.values()),
        "min_baseline_windows": MIN_BASELINE_WINDOWS,
        "participants": [p.name for p in people],
        "phase_medians": phase_medians(table, pids),
        "evidence": label_evidence(people, table, labels),
        "clock_probe": clock_probe(people, table, args.seed),
        "history": HISTORY.as_dict(),
        # Timing on the machine that trained, as tools/bench_stress.py measures it.
        "timing": measure(args.out, n=5000, repeats=3, seed=args.seed),
    }
    write_card(args.out / CARD_FILE, report)
    r = results[best.name]
    print(f"deployed {spec['model_version']} ({len(model_bytes)} bytes): LOSO balanced accuracy "
          f"{r['balanced_accuracy']:.3f}, AUROC {r['auroc']:.3f} (HR floor "
          f"{results['hr_rule']['balanced_accuracy']:.3f} / {results['hr_rule']['auroc']:.3f}); "
          f"int8 LOSO {results['_int8']['balanced_accuracy']:.3f} / "
          f"{results['_int8']['auroc']:.3f}, agreement {results['_int8']['agreement']:.4f}; "
          f"{(time.monotonic() - t_start) / 60.0:.1f} min")
    return 0


def phase_medians(table: Table, pids: list[int]) -> dict[str, float]:
    """Median change from baseline (%) of HR and RMSSD in task and in rest windows."""
    x, y, _ = table.stack(pids, "eval")
    hr = FEATURE_NAMES.index("hr_log_ratio")
    rm = FEATURE_NAMES.index("rmssd_log_ratio")
    pct = lambda v: float(100.0 * (math.exp(float(np.median(v))) - 1.0))  # noqa: E731
    return {
        "hr_stress_pct": pct(x[y == 1, hr]),
        "hr_rest_pct": pct(x[y == 0, hr]),
        "rmssd_stress_pct": pct(x[y == 1, rm]),
        "rmssd_rest_pct": pct(x[y == 0, rm]),
    }


def label_evidence(
    people: list[Participant], table: Table, labels: dict[int, tuple[np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    """What the labels allow: alignment check and an upper bound for heart-rate rules.

    * Alignment: the AUROC of the heart rate's log ratio to baseline against the labels
      shifted by each of ``LAG_SCAN_S`` (pooled, and the mean over participants): with the
      labels aligned, no shift should do clearly better than 0.
    * Bound: balanced accuracy of the heart-rate ratio with a threshold chosen *on each
      held-out person's own labels* (not allowed in evaluation; an upper bound for any
      rule on the heart rate level, however well calibrated to the person).
    * Spread: participants whose heart rate is not higher in tasks (per-person AUROC of
      the heart-rate ratio below 0.6).

    ``labels`` are :func:`stress_data.read_labels`'s per-second labels.
    """
    hr = FEATURE_NAMES.index("hr_log_ratio")
    scan: dict[str, dict[str, float]] = {}
    for lag in LAG_SCAN_S:
        ys, ss, per = [], [], []
        for p in people:
            t_unix, lab = labels[p.pid]
            share = window_stress_share(p.windows, t_unix + lag, lab, p.start_unix_s)
            y = np.where(np.isfinite(share), (share >= 0.5).astype(int), -1)
            r = table.rows[p.pid]
            t0 = np.array([w["t_start_s"] for w in p.windows])
            m = r["usable"] & (t0 >= table.baseline_s - 1e-9) & (y >= 0)
            ys.append(y[m])
            ss.append(r["x"][m, hr])
            per.append(auroc(y[m], r["x"][m, hr]))
        scan[f"{lag:+.0f}"] = {"auroc": auroc(np.concatenate(ys), np.concatenate(ss)),
                               "pp_auroc": float(np.nanmean(per))}
    yo, do, per_ba, per_au = [], [], [], []
    for p in people:
        r = table.rows[p.pid]
        m = r["eval"]
        y, s = r["y"][m], r["x"][m, hr]
        if y.size == 0 or y.min() == y.max():
            continue
        d = s >= best_threshold(y, s)
        yo.append(y)
        do.append(d)
        per_ba.append(balanced_accuracy(y == 1, d))
        per_au.append(auroc(y, s))
    return {
        "lag_scan": scan,
        "oracle_hr_ba": balanced_accuracy(np.concatenate(yo) == 1, np.concatenate(do)),
        "oracle_hr_pp_ba": float(np.mean(per_ba)),
        "n_hr_flat": int(np.sum(np.array(per_au) < 0.6)),
        "n_people": len(per_au),
    }


def clock_probe(people: list[Participant], table: Table, seed: int) -> dict[str, float]:
    """LOSO of a logistic regression on the clock alone: no heart data.

    Its one input is each window's end time, seconds since the recording started. The
    rows, the leave-one-subject-out folds and the inner-fold threshold are the
    candidates' own (:func:`loso`). Stress-Predict runs one fixed task order for everyone,
    so the clock predicts the labels; a feature that reveals how long the recording has
    run would score by learning that schedule, which says nothing about a night in bed.
    """
    clock = Candidate("clock", convertible=False, probabilistic=True,
                      fit=lambda x, y, g, s, fixed: fit_logreg(x, y, (0,), s))
    pids = [p.pid for p in people]
    ys, ss, ds = [], [], []
    for held in pids:
        x, y, g = table.stack([q for q in pids if q != held], "train", col="t_end")
        xe, ye, _ = table.stack([held], "eval", col="t_end")
        fitted, thr, _ = fit_with_threshold(clock, x, y, g, seed)
        s = fitted.score(xe)
        ys.append(ye)
        ss.append(s)
        ds.append(s >= thr)
    y_all = np.concatenate(ys)
    return {"balanced_accuracy": balanced_accuracy(y_all == 1, np.concatenate(ds)),
            "auroc": auroc(y_all, np.concatenate(ss))}


def coverage(table: Table, people: list[Participant]) -> dict[str, Any]:
    """Share of windows after the baseline that are usable, overall and per participant."""
    per = {}
    tot_ok = tot = 0
    for p in people:
        r = table.rows[p.pid]
        t0 = np.array([w["t_start_s"] for w in p.windows])
        after = t0 >= table.baseline_s - 1e-9
        n = int(after.sum())
        ok = int((r["usable"] & after).sum())
        per[p.name] = ok / max(n, 1)
        tot_ok += ok
        tot += n
    return {"overall": tot_ok / max(tot, 1), "per_participant": per}


if __name__ == "__main__":
    sys.exit(main())
