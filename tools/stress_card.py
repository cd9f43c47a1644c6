"""Write ``models/MODEL_CARD.md`` from the numbers ``tools/train_stress_model.py`` measured.

Every figure in the card comes from the training run's report; nothing is typed in by hand
(Mitchell et al. 2019, "Model cards for model reporting", FAT* 2019, 220-229).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

from bench_stress import TARGET_US

#: The targets of issue 7.
TARGET_BA = 0.75
TARGET_AUROC = 0.80
TARGET_AGREEMENT = 0.99
TARGET_BYTES = 32 * 1024

_NAMES = {
    "hr_rule": "heart-rate rule (floor)",
    "logreg_hr": "logistic regression, heart-rate features",
    "logreg_all": "logistic regression, all features",
    "logreg_select": "logistic regression, features selected in-fold",
    "mlp_all": "MLP (8 ReLU), all features",
    "gboost_all": "gradient boosting, all features (not convertible)",
}


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}"


def _spread(s: dict[str, float]) -> str:
    return f"{_f(s['mean'])} ± {_f(s['sd'])} [{_f(s['min'], 2)}, {_f(s['max'], 2)}]"


def _ok(flag: bool) -> str:
    return "met" if flag else "**not met**"


def write_card(path: Path, rep: dict[str, Any]) -> None:
    """Write the model card for a training report (see ``train_stress_model.main``)."""
    res = rep["results"]
    spec = rep["spec"]
    best = rep["deployed"]
    r = res[best]
    q = res["_int8"]
    floor = res["hr_rule"]
    th = spec["thresholds"]
    n_part = len(rep["participants"])
    lines: list[str] = []
    add = lines.append
    add("# heartsong stress classifier — model card")
    add("")
    add("*Written by `tools/train_stress_model.py`; every number below comes from that run.*")
    add("")
    add("## Model")
    add("")
    add(f"- Version `{spec['model_version']}`, family **{_NAMES[best]}** (`{best}`), "
        f"{len(spec['features'])} input{'s' if len(spec['features']) != 1 else ''}: "
        f"{', '.join(f'`{f}`' for f in spec['features'])}.")
    add(f"- `stress_int8.tflite`: {rep['model_bytes']} bytes, full-integer int8 (int8 input "
        "and output), post-training quantization calibrated on the training rows plus the "
        f"clip limits (±{spec['normalization']['clip']:g} SD); output bias corrected by "
        f"{spec['quantization']['output_bias_shift_logit']:+.4f} logit: of the shifts within "
        "half an int8 logit step, the one whose decisions agree best with the float model's "
        "on the training rows.")
    add("- Output: `p_stress`, the probability that a 60-s window lies in a stress task.")
    add(f"- Feature spec `stress_features.json` (feature version {spec['feature_version']}); "
        f"SHA-256 `{spec['model_sha256'][:16]}…`.")
    add("")
    add("## Intended use, and what it is not")
    add("")
    add("A hint for heartsong's sound policy about arousal relative to the person's own rest: "
        "make the sound darker and slower when it rises. **It is not a medical device** and "
        "must not be used to diagnose, monitor or treat anything. It was trained on task "
        "stress in a lab (a Stroop test, an interview, hyperventilation), which is not the "
        "same as arousal at bedtime.")
    add("")
    add("## Data")
    add("")
    add(f"- Stress-Predict (Iqbal et al. 2022, Sensors 22(21):8135, MIT licence): {n_part} "
        f"labelled participants ({', '.join(rep['participants'])}), Empatica E4 on the "
        "wrist, ~55 min each: baseline rest, Stroop, rest, interview, rest, "
        "hyperventilation, rest.")
    add("- Input: the raw 64 Hz BVP through heartsong's own DSP (`heartsong analyze "
        "--format e4`: Elgendi peaks, template quality, Lipponen-Tarvainen artefact "
        "correction), 60-s windows every 10 s. The E4's own IBI/HR files are not used.")
    add("- Labels: the dataset's per-second labels (1 = task; their changes are the E4's own "
        "task tags in `tags_Sxx.csv`, or the study's time log where those tags are broken), "
        "aligned to the BVP's own start time (line 1 of "
        "`BVP.csv`, the same clock); a window takes the majority label of its labelled "
        "seconds." + _lag_sentence(rep))
    add(f"- Usable windows (enough clean beats for HR/RMSSD/SDNN/pNN50, signal quality ≥ "
        f"{spec['gate']['min_signal_quality']}): {100 * rep['coverage']['overall']:.0f} % of "
        "the windows after the baseline part; the rest get `unknown`. Wrist PPG in a lab "
        "with talking and movement loses many windows.")
    add("")
    add("## Method")
    add("")
    add(f"- **Personal baseline**: medians of each metric over the usable windows ending in "
        f"the first {rep['baseline_s']:g} s (the resting start), when there are at least "
        f"{rep['min_baseline_windows']}. {rep['n_personal_baselines']} of {n_part} "
        "participants have one; the others fall back to the population baseline (median of "
        "the training participants' baselines, recomputed inside every fold). The minimum "
        "number of windows was picked among 1, 2, 3 and 6 on these same participants' LOSO "
        "results (fewer windows keep more people on a personal baseline): a small "
        "optimistic bias.")
    add("- **Features** (`heartsong.stress.features`, shared by training and device): log "
        "ratios to baseline of HR, RMSSD, SDNN, LF/HF, SD2 and SD1/SD2 (SD1/SD2 from RMSSD "
        "and SDNN, Brennan et al. 2001), differences of pNN50, breathing rate, coherence and "
        "signal quality; standardised with the training rows' mean and SD, clipped at "
        f"±{spec['normalization']['clip']:g}.")
    h = rep["history"]
    add(f"- **Look-back features** (`heartsong.stress.history`, causal, identical on the "
        f"device and in `analyze`): the heart rate's log ratio to the "
        f"{100 * h['low_quantile']:g}th percentile of the usable windows' heart rates of the "
        f"last {h['window_s']:g} s (`hr_recent_low_log_ratio`; people settle during the hour, "
        "and a rise over the recent low separates a task from that drift), and to the heart "
        f"rate of the usable window {h['lag_s']:g}-{h['max_lag_s']:g} s earlier "
        "(`hr_change_log_ratio`). These settings were picked among a few variants "
        "(150-900 s spans, 0-50th percentile, 30-240 s lags) by LOSO on these same "
        "participants, all within about 0.02 of each other: a small optimistic bias.")
    add("- **Rows**: windows starting after the baseline part (baseline windows are never "
        "scored). Models train on windows wholly inside one phase and are scored on every "
        "labelled window.")
    add("- **Evaluation**: leave-one-subject-out. For each held-out participant, every "
        "candidate is fitted on the others; its decision threshold (maximum balanced "
        "accuracy) is chosen on out-of-fold scores of 5 inner folds by participant, also "
        "inside the training participants. Pooled scores over all held-out windows; "
        "per-participant scores as mean ± SD [min, max].")
    n_conv = sum(1 for k, v in res.items() if isinstance(v, dict) and v.get("convertible"))
    add("- **Deployed family**: the TFLite-convertible candidate with the best pooled LOSO "
        f"AUROC, refitted on everyone; its threshold from inner folds. Choosing among {n_conv} "
        "convertible candidates on the same LOSO results is a small optimistic bias.")
    add("- **int8 LOSO**: every fold model of the deployed family is converted exactly like "
        "the shipped one (calibration and bias correction on that fold's training rows) "
        "and run through the device code on the held-out person.")
    add("")
    add("## Leave-one-subject-out results")
    add("")
    add("| model | windows | balanced acc. | F1 | AUROC | ECE | per-person bal. acc. | "
        "per-person AUROC |")
    add("|---|---|---|---|---|---|---|---|")
    for name in _NAMES:
        s = res[name]
        mark = " ← deployed" if name == best else ""
        add(f"| {_NAMES[name]}{mark} | {s['n']} | {_f(s['balanced_accuracy'])} | "
            f"{_f(s['f1'])} | {_f(s['auroc'])} | {_f(s['ece'])} | "
            f"{_spread(s['pp_balanced_accuracy'])} | {_spread(s['pp_auroc'])} |")
    add(f"| deployed family as **int8**, device code | {q['n']} | "
        f"{_f(q['balanced_accuracy'])} | {_f(q['f1'])} | {_f(q['auroc'])} | {_f(q['ece'])} | "
        f"{_spread(q['pp_balanced_accuracy'])} | {_spread(q['pp_auroc'])} |")
    add("")
    add(f"Stress prevalence among scored windows: {_f(r['prevalence'], 2)}. ECE: expected "
        "calibration error, 10 bins. The floor has no probabilities (no ECE).")
    sel = res.get("_selected_features", {})
    if sel:
        counts = Counter(f for feats in sel.values() for f in feats)
        add("")
        add("Features chosen by in-fold forward selection (folds out of "
            f"{len(sel)}): " + ", ".join(f"`{k}` {v}" for k, v in counts.most_common()) + ".")
    add("")
    add("## Targets (issue 7)")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    add(f"| LOSO balanced accuracy ≥ {TARGET_BA} | {_f(q['balanced_accuracy'])} int8 "
        f"({_f(r['balanced_accuracy'])} float; floor {_f(floor['balanced_accuracy'])}) | "
        f"{_ok(q['balanced_accuracy'] >= TARGET_BA)} |")
    add(f"| LOSO AUROC ≥ {TARGET_AUROC} | {_f(q['auroc'])} int8 ({_f(r['auroc'])} float; "
        f"floor {_f(floor['auroc'])}) | {_ok(q['auroc'] >= TARGET_AUROC)} |")
    add(f"| int8 and float agree on ≥ 99 % of windows | {100 * q['agreement']:.2f} % of "
        f"{q['agreement_windows']} held-out windows (LOSO folds); "
        f"{100 * rep['final_agreement']:.2f} % of {rep['final_agreement_windows']} (final "
        f"model) | {_ok(min(q['agreement'], rep['final_agreement']) >= TARGET_AGREEMENT)} |")
    add(f"| model file ≤ {TARGET_BYTES // 1024} KB | {rep['model_bytes']} bytes | "
        f"{_ok(rep['model_bytes'] <= TARGET_BYTES)} |")
    tm = rep["timing"]
    add(f"| inference ≤ {TARGET_US:g} µs per window | {tm['model_us']:.1f} µs (quantize, invoke, "
        f"dequantize; {tm['features_model_us']:.1f} µs with the features), {tm['runtime']} on "
        f"the training machine ({tm['machine']}); `tools/bench_stress.py` reruns it | "
        f"{_ok(tm['model_us'] <= TARGET_US)} |")
    add("")
    add(f"Largest |p_int8 - p_float|: {_f(q['max_abs_dp'], 4)} (LOSO folds), "
        f"{_f(rep['final_max_abs_dp'], 4)} (final model).")
    add("")
    if q["balanced_accuracy"] < TARGET_BA or q["auroc"] < TARGET_AUROC:
        ph = rep["phase_medians"]
        add("**Why the accuracy targets are not met.** On these recordings the task labels "
            "are only weakly visible in the wrist-PPG heart rhythm. Relative to the resting "
            f"start, the median heart rate is {ph['hr_stress_pct']:+.1f} % in task windows and "
            f"{ph['hr_rest_pct']:+.1f} % in the later rest windows (people settle during the "
            f"hour), and RMSSD is {ph['rmssd_stress_pct']:+.1f} % in tasks and "
            f"{ph['rmssd_rest_pct']:+.1f} % at rest: talking and breathing manoeuvres move "
            "HRV as much as stress does. Many task windows are lost to movement. The HRV "
            "features add little beyond heart rate.")
        ev = rep["evidence"]
        add("")
        add(f"- *Where the gain came from*: the deployed model's pooled AUROC is "
            f"{_f(r['auroc'])} against the floor's {_f(floor['auroc'])}, but its mean "
            f"per-person AUROC is {_f(r['pp_auroc']['mean'])} against "
            f"{_f(floor['pp_auroc']['mean'])}: the look-back features mostly align people "
            "with each other (the drift differs between people); they do not rank one "
            "person's windows better than that person's heart rate does.")
        add(f"- *Per-person spread*: for {ev['n_hr_flat']} of {ev['n_people']} participants "
            "the heart rate is barely or not at all higher in the tasks (per-person AUROC of "
            "the heart-rate ratio below 0.6); a model of the heart rate cannot find their "
            "tasks.")
        add("- *A bound*: the heart-rate ratio with a threshold tuned on each held-out "
            "person's own labels (cheating, not an evaluation) reaches a pooled balanced "
            f"accuracy of {_f(ev['oracle_hr_ba'])} (mean per person "
            f"{_f(ev['oracle_hr_pp_ba'])})" + (
                ": the heart-rate level alone, even perfectly calibrated to each person, "
                "barely reaches the target." if ev["oracle_hr_ba"] < TARGET_BA + 0.02 else
                ": better calibration to the person could still help."))
        if "clock_probe" in rep:
            ck = rep["clock_probe"]
            add("- *The schedule*: every participant did the same tasks in the same order, so "
                "a clock alone (logistic regression on the seconds since the recording "
                "started, no heart data, the same LOSO protocol) reaches a balanced accuracy "
                f"of {_f(ck['balanced_accuracy'])} and an AUROC of {_f(ck['auroc'])}. A "
                "feature that reveals how long the recording has run (a count of windows "
                "seen, a history padded with zeros before the start) scores by learning that "
                "schedule, which says nothing about a night in bed. The deployed features "
                "are ratios of heart rates, with no input from the clock.")
        add("- *Labels*: checked for misalignment (above). They switch at the task tags, "
            "while the heart rate rises and settles over a minute or more (the slow fall of "
            "the alignment check away from 0 s), so the windows near a switch are partly "
            "mislabelled by nature.")
        add("")
        add("The numbers above are what the model can honestly be expected to do on new "
            "people from this kind of data; nothing was tuned on held-out participants.")
        add("")
    add("## Per participant")
    add("")
    add("LOSO: the deployed family trained without that person (float / int8). `analyze`: "
        "`heartsong analyze --format e4 BVP.csv.gz --stress` with the shipped model "
        "(trained *with* that person: in-sample, a reproducibility check, not an accuracy "
        "estimate). Windows after the baseline part.")
    add("")
    add("| participant | usable | baseline | LOSO bal. acc. | LOSO AUROC | int8 bal. acc. | "
        "int8 AUROC | analyze bal. acc. | analyze AUROC |")
    add("|---|---|---|---|---|---|---|---|---|")
    for name in rep["participants"]:
        lo = r["per_participant"].get(_pid_key(name), {})
        lq = q["per_participant"].get(_pid_key(name), {})
        an = rep["analyze"][name]
        add(f"| {name} | {100 * rep['coverage']['per_participant'][name]:.0f} % | "
            f"{an['baseline']} | {_f(lo.get('balanced_accuracy'))} | {_f(lo.get('auroc'))} | "
            f"{_f(lq.get('balanced_accuracy'))} | {_f(lq.get('auroc'))} | "
            f"{_f(an['balanced_accuracy'])} | {_f(an['auroc'])} |")
    add("")
    totals: dict[str, Counter[str]] = {lab: Counter() for lab in ("rest", "stress")}
    for an in rep["analyze"].values():
        for state, by_label in an["states"].items():
            for lab, n in by_label.items():
                totals[lab][state] += n
    add("States given by `heartsong analyze --stress` (smoothed, with hysteresis; all "
        "participants, windows after the baseline part, in-sample):")
    add("")
    add("| label | windows | calm | neutral | stressed | unknown |")
    add("|---|---|---|---|---|---|")
    for lab, c in totals.items():
        n = sum(c.values())
        add(f"| {lab} | {n} | " + " | ".join(
            f"{100 * c[s] / max(n, 1):.0f} %" for s in ("calm", "neutral", "stressed", "unknown")
        ) + " |")
    add("")
    add("## On the device")
    add("")
    add(f"- Decision threshold {th['decision']} on `p_stress`; the published value is smoothed "
        f"over time (τ = {spec['smoothing']['tau_s']:g} s) and turned into `stress_state` "
        f"with hysteresis: stressed from {th['stressed_enter']} until below "
        f"{th['stressed_exit']}, calm from {th['calm_enter']} until above {th['calm_exit']}, "
        "neutral between; `unknown` for a window with too few clean beats or low quality, "
        f"for the first {spec['smoothing']['warmup_s']:g} s and after "
        f"{spec['smoothing']['max_gap_s']:g} s without a usable window.")
    add("- The baseline is learned from the first minutes of each session, blended over "
        "sessions and kept in the state directory; until then the population baseline "
        "stored in the spec is used.")
    h = rep["history"]
    add(f"- The look-back features keep the heart rates of the last {h['window_s']:g} s of "
        "usable windows in memory (`HrHistory`, fed by every update); until "
        f"{h['min_windows']:g} usable windows are in, the recent low is the baseline heart "
        "rate, and without a usable window "
        f"{h['lag_s']:g}-{h['max_lag_s']:g} s back the change is 0.")
    add("")
    add("## Limitations")
    add("")
    add("- Lab task stress (Stroop, interview, hyperventilation) is not bedtime arousal; the "
        "model has never seen a night. Talking and breathing manoeuvres drive some of the "
        "HRV changes it learned.")
    add(f"- {n_part} healthy volunteers, one session each, one wrist device (Empatica E4); "
        "the MAX30102 on a finger or a chest strap will give cleaner beats and other "
        "levels. The numbers are for that population and that device.")
    add("- The resting start of the recording is not a calm baseline for everyone "
        "(anticipation); the device's baseline from the first minutes in bed has the same "
        "weakness on a restless night.")
    add("- Windows without enough clean beats get no estimate; in the lab that was "
        f"{100 * (1 - rep['coverage']['overall']):.0f} % of the time.")
    add("- A change in heartsong's DSP changes the features: retrain and check the card.")
    add("- Not a medical device; no diagnostic claim.")
    add("")
    add("## Reproduce")
    add("")
    add("```")
    add(".venv/bin/pip install -e '.[train]'")
    add(f".venv/bin/python {spec['training']['command'].strip()}")
    add(".venv/bin/python tools/bench_stress.py")
    add("```")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _lag_sentence(rep: dict[str, Any]) -> str:
    """The label-alignment check as a sentence (labels shifted, AUROC of the HR ratio)."""
    scan = rep["evidence"]["lag_scan"]
    best = max(scan, key=lambda k: scan[k]["pp_auroc"])
    parts = ", ".join(f"{k} s {_f(v['pp_auroc'])}" for k, v in scan.items())
    verdict = ("no offset between the BVP and the labels to correct" if abs(float(best)) <= 10
               else "**the labels may be offset from the BVP: check the alignment**")
    return (" Alignment check, mean per-person AUROC of the heart-rate ratio with the labels "
            f"shifted later by: {parts}; best at {best} s: {verdict}.")


def _pid_key(name: str) -> str:
    """``S06`` -> ``6`` (the per-participant keys of the evaluation are participant ids)."""
    return str(int(name[1:]))
