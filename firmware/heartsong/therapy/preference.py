"""Which soundscape calms this person: Thompson sampling over their own measured responses.

Every measured episode (:mod:`heartsong.therapy.response`) is kept with its *context*: the
session's mode (``calm`` or ``wind_down``) and the time-of-day bucket it started in
(:func:`context_of`). To choose what to play, :func:`choose` forms for each candidate
soundscape ("arm") a Gaussian posterior of its drift-corrected calm score in the current
context and draws from it (Thompson 1933; Russo et al. 2018, section 3):

* **weights**: an episode counts ``0.5 ** (age_days / half_life_days)`` (slow forgetting,
  so a person whose taste changes is followed), times ``other_context_weight`` when it
  comes from another context (a soundscape that calms at 23:00 probably calms at 21:00
  too; the weight lets each context drift apart with data);
* **score**: the drift-corrected changes of heart rate, RMSSD and p_stress, combined
  with weights inverse to each one's noise variance in this person's history
  (:func:`heartsong.therapy.response.calm_score`);
* **posterior**: prior ``N(0, prior_sd**2)`` on the arm's mean score; known noise
  variance, estimated from the residuals of all episodes around their arm's mean with a
  scaled-inverse-chi-square prior (``noise_sd``, ``noise_dof`` pseudo-episodes); the
  conjugate normal update with weighted observations (Gelman et al. 2013, ch. 2);
  episodes far from their arm's median (a worry in the middle of one) count less (Huber
  weights, Huber 1964);
* **start**: every soundscape is measured ``trials`` times first (the least measured
  next, in the order given), so no sound is judged on one unlucky night;
* **bounded exploration**: an arm whose posterior is *clearly worse* than the best arm's
  (probability of being better below ``clearly_worse_p`` once it has
  ``min_episodes_to_exclude`` episodes) is not drawn at all, and the share of sessions
  in a context that play anything but the arm with the best posterior mean is capped at
  ``max_explore_share`` over the last ``explore_window`` choices: a person never gets a
  clearly worse sound for long.

The model is data (:class:`PreferenceModel`: the responses and the choice log), kept by
:class:`PreferenceStore` as JSON (``soundscape_preferences.json``) in the state
directory: written atomically, validated on load, a corrupt file gives a warning and a
fresh start. It is the person's data: ``heartsong export`` includes it and ``heartsong
data delete`` removes it.

References
----------
Thompson WR (1933) On the likelihood that one unknown probability exceeds another in view
of the evidence of two samples. Biometrika 25(3/4):285-294.
Russo DJ, Van Roy B, Kazerouni A, Osband I, Wen Z (2018) A tutorial on Thompson sampling.
Found Trends Mach Learn 11(1):1-96.
Huber PJ (1964) Robust estimation of a location parameter. Ann Math Stat 35(1):73-101.
Gelman A et al. (2013) Bayesian Data Analysis, 3rd ed. CRC Press.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from heartsong.errors import InputDataError, check_number
from heartsong.private_file import write_private
from heartsong.therapy.response import (
    Response,
    calm_score,
    calm_terms,
    corrected,
    expected_drift,
    fit_drift,
)

__all__ = [
    "CHOICE_KINDS",
    "PREFERENCES_FILE",
    "TIME_BUCKETS",
    "ArmPosterior",
    "Choice",
    "ChoiceKind",
    "ChoiceRecord",
    "PreferenceConfig",
    "PreferenceModel",
    "PreferenceStore",
    "choose",
    "context_of",
    "posteriors",
    "summary_lines",
    "time_bucket",
]

logger = logging.getLogger(__name__)

#: The file in the state directory.
PREFERENCES_FILE: Final = "soundscape_preferences.json"
_FORMAT: Final = "heartsong-soundscape-preferences"
_VERSION: Final = 1
#: Time-of-day buckets: name and local start hour (each runs to the next one's start).
TIME_BUCKETS: Final = (("morning", 5), ("afternoon", 12), ("evening", 18), ("night", 22))
_DAY_S: Final = 86400.0
#: Choices kept in the log.
MAX_CHOICES: Final = 200


def time_bucket(wall_s: float) -> str:
    """The time-of-day bucket of Unix time ``wall_s`` in local time (see ``TIME_BUCKETS``)."""
    h = dt.datetime.fromtimestamp(wall_s).astimezone().hour
    name = TIME_BUCKETS[-1][0]
    for bucket, start in TIME_BUCKETS:
        if h >= start:
            name = bucket
    return name


def context_of(mode: str, wall_s: float) -> str:
    """The learning context: ``"<mode>/<time bucket>"``, e.g. ``"wind_down/night"``."""
    return f"{mode}/{time_bucket(wall_s)}"


def _local_day(wall_s: float) -> str:
    # A "night" runs from noon to noon, so 23:00 and 01:00 are the same night.
    return (dt.datetime.fromtimestamp(wall_s - 12 * 3600.0).astimezone().date()).isoformat()


@dataclass(frozen=True, slots=True)
class PreferenceConfig:
    """The learner's rules (see the module docstring; scores in calm units).

    Attributes
    ----------
    half_life_days:
        An episode's weight halves every this many days.
    other_context_weight:
        Weight of an episode from another context (0..1).
    prior_sd:
        Prior standard deviation of an arm's mean calm score.
    noise_sd, noise_dof:
        Prior guess of the score's noise standard deviation and its weight in episodes.
    clearly_worse_p:
        An arm less likely than this to beat the best arm is not drawn.
    min_episodes_to_exclude:
        ... once it has this many (weighted) episodes.
    max_explore_share:
        Highest share of recent choices that may differ from the best arm.
    explore_window:
        Recent choices (in the context) over which that share is counted.
    max_history:
        Responses kept (the oldest are dropped).
    trials:
        Every candidate is measured this many times before the sampling starts.
    """

    half_life_days: float = 60.0
    other_context_weight: float = 0.3
    prior_sd: float = 1.5
    noise_sd: float = 1.0
    noise_dof: float = 4.0
    clearly_worse_p: float = 0.05
    min_episodes_to_exclude: float = 3.0
    max_explore_share: float = 0.1
    explore_window: int = 20
    max_history: int = 1000
    trials: int = 2

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("half_life_days", 1.0, 3650.0),
            ("other_context_weight", 0.0, 1.0),
            ("prior_sd", 0.01, 100.0),
            ("noise_sd", 0.01, 100.0),
            ("noise_dof", 0.0, 1000.0),
            ("clearly_worse_p", 0.0, 0.5),
            ("min_episodes_to_exclude", 0.0, 100.0),
            ("max_explore_share", 0.0, 1.0),
            ("explore_window", 1, 1000),
            ("max_history", 10, 100000),
            ("trials", 0, 10),
        ):
            check_number(f"therapy.preference.{name}", getattr(self, name), lo, hi)


#: Why an arm was chosen: never measured, drawn although not the best, the best.
ChoiceKind = Literal["trial", "explore", "exploit"]
CHOICE_KINDS: Final[tuple[ChoiceKind, ...]] = ("trial", "explore", "exploit")


@dataclass(frozen=True, slots=True)
class ChoiceRecord:
    """One choice: when (Unix s), in which context, what, and of which kind."""

    wall_s: float
    context: str
    soundscape: str
    kind: ChoiceKind


@dataclass(frozen=True, slots=True)
class PreferenceModel:
    """What was learnt: the measured responses (with contexts) and the recent choices."""

    responses: tuple[tuple[Response, str], ...] = ()
    choices: tuple[ChoiceRecord, ...] = ()

    def with_response(self, response: Response, context: str, max_history: int = 1000) -> (
        PreferenceModel
    ):
        """This model plus one response (the oldest dropped beyond ``max_history``)."""
        kept = (*self.responses, (response, context))[-max_history:]
        return dataclasses.replace(self, responses=kept)

    def with_choice(self, record: ChoiceRecord) -> PreferenceModel:
        """This model plus one logged choice."""
        return dataclasses.replace(self, choices=(*self.choices, record)[-MAX_CHOICES:])

    def since(self, wall_s: float) -> PreferenceModel:
        """The model without anything from before Unix time ``wall_s`` (for deletion)."""
        return PreferenceModel(
            tuple(rc for rc in self.responses if rc[0].start_wall_s >= wall_s),
            tuple(c for c in self.choices if c.wall_s >= wall_s),
        )


@dataclass(frozen=True, slots=True)
class ArmPosterior:
    """One soundscape's posterior in a context, and the mean corrected changes behind it.

    Attributes
    ----------
    soundscape:
        The arm.
    mean, sd:
        Posterior mean and standard deviation of its calm score (calm units).
    episodes:
        Weighted number of episodes behind it.
    nights:
        Distinct nights it was measured (any context).
    d_hr_bpm, d_rmssd_log, d_p_stress:
        Weighted mean drift-corrected changes over the response window (None: no data).
    """

    soundscape: str
    mean: float
    sd: float
    episodes: float
    nights: int
    d_hr_bpm: float | None = None
    d_rmssd_log: float | None = None
    d_p_stress: float | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """What to play, of which kind (``trial``, ``explore``, ``exploit``), and why."""

    soundscape: str
    kind: ChoiceKind
    why: str
    posteriors: tuple[ArmPosterior, ...]


def _weights(model: PreferenceModel, context: str, now_wall_s: float, cfg: PreferenceConfig) -> (
    list[tuple[Response, float]]
):
    out = []
    for r, ctx in model.responses:
        age_days = max(0.0, (now_wall_s - r.start_wall_s) / _DAY_S)
        w = 0.5 ** (age_days / cfg.half_life_days)
        if ctx != context:
            w *= cfg.other_context_weight
        out.append((r, w))
    return out


def _wmean(pairs: Sequence[tuple[float | None, float]]) -> float | None:
    num = math.fsum(w * v for v, w in pairs if v is not None)
    den = math.fsum(w for v, w in pairs if v is not None)
    return num / den if den > 0.0 else None


#: Huber's tuning constant, in robust standard deviations (Huber 1964).
HUBER_K: Final = 1.5


def _huber(scored: list[tuple[Response, float, float]]) -> list[tuple[Response, float, float]]:
    """Down-weight outlying episodes (a worry in the middle of one, say): Huber weights
    ``min(1, HUBER_K * s / |y - median of its arm|)``, ``s`` the pooled MAD * 1.4826."""
    groups: dict[str, list[float]] = {}
    for c, _, y in scored:
        groups.setdefault(c.soundscape, []).append(y)
    med = {k: statistics.median(v) for k, v in groups.items()}
    dev = [abs(y - med[c.soundscape]) for c, _, y in scored if len(groups[c.soundscape]) > 2]
    if len(dev) < 5:
        return scored
    s = 1.4826 * statistics.median(dev)
    if s <= 0.0:
        return scored
    out = []
    for c, w, y in scored:
        d = abs(y - med[c.soundscape])
        out.append((c, w * (min(1.0, HUBER_K * s / d) if d > 0.0 else 1.0), y))
    return out


def _pooled_var(
    groups: Iterable[Sequence[tuple[float, float]]], prior_var: float, dof: float
) -> float:
    """Weighted variance of ``(value, weight)`` points around their group's weighted mean,
    pooled over the groups, with a prior of variance ``prior_var`` worth ``dof`` points
    (at least 1e-6)."""
    ss = 0.0
    wsum = 0.0
    for pts in groups:
        m = _wmean(pts)
        assert m is not None
        ss += math.fsum(w * (v - m) ** 2 for v, w in pts)
        wsum += math.fsum(w for _, w in pts)
    return max((dof * prior_var + ss) / max(dof + wsum, 1e-9), 1e-6)


def _term_weights(
    fixed: list[tuple[Response, float]], cfg: PreferenceConfig
) -> tuple[float, float, float]:
    """Inverse noise variance of each calm term (heart rate, RMSSD, p_stress) in this
    person's history: the weighted variance of the term around its soundscape's mean,
    with a prior of variance 1 worth ``noise_dof`` episodes."""
    terms = [
        (c.soundscape, calm_terms(c.d_hr_bpm, c.d_rmssd_log, c.d_p_stress), w)
        for c, w in fixed
    ]
    out = []
    for k in range(3):
        groups: dict[str, list[tuple[float, float]]] = {}
        for sound, ts, w in terms:
            t = ts[k]
            if t is not None:
                groups.setdefault(sound, []).append((t, w))
        out.append(1.0 / _pooled_var(groups.values(), 1.0, cfg.noise_dof))
    return out[0], out[1], out[2]


def posteriors(
    model: PreferenceModel,
    arms: Sequence[str],
    context: str,
    now_wall_s: float,
    cfg: PreferenceConfig,
) -> tuple[ArmPosterior, ...]:
    """Each arm's posterior in ``context`` at Unix time ``now_wall_s`` (module docstring)."""
    weighted = _weights(model, context, now_wall_s, cfg)
    fit = fit_drift(weighted)
    fixed = [
        (corrected(r, expected_drift(weighted, r, fit=fit)), w) for r, w in weighted if w > 0.0
    ]
    tw = _term_weights(fixed, cfg)
    scored: list[tuple[Response, float, float]] = [  # corrected response, weight, score
        (c, w, calm_score(c.d_hr_bpm, c.d_rmssd_log, c.d_p_stress, tw)) for c, w in fixed
    ]
    by_arm: dict[str, list[tuple[Response, float, float]]] = {}
    for item in _huber(scored):
        by_arm.setdefault(item[0].soundscape, []).append(item)
    noise_var = _pooled_var(
        ([(y, w) for _, w, y in items] for items in by_arm.values()),
        cfg.noise_sd**2,
        cfg.noise_dof,
    )
    nights: dict[str, set[str]] = {}
    for r, _ctx in model.responses:
        nights.setdefault(r.soundscape, set()).add(_local_day(r.start_wall_s))
    out = []
    for arm in arms:
        items = by_arm.get(arm, [])
        w_arm = math.fsum(w for _, w, _ in items)
        prec = 1.0 / cfg.prior_sd**2 + w_arm / noise_var
        mean = math.fsum(w * y for _, w, y in items) / noise_var / prec
        out.append(
            ArmPosterior(
                arm,
                mean,
                1.0 / math.sqrt(prec),
                w_arm,
                len(nights.get(arm, ())),
                _wmean([(c.d_hr_bpm, w) for c, w, _ in items]),
                _wmean([(c.d_rmssd_log, w) for c, w, _ in items]),
                _wmean([(c.d_p_stress, w) for c, w, _ in items]),
            )
        )
    return tuple(out)


def _p_better(a: ArmPosterior, b: ArmPosterior) -> float:
    """P(arm a's mean > arm b's) under independent normal posteriors."""
    s = math.sqrt(a.sd**2 + b.sd**2)
    return 0.5 * math.erfc(-(a.mean - b.mean) / (s * math.sqrt(2.0)))


def choose(
    model: PreferenceModel,
    arms: Sequence[str],
    context: str,
    now_wall_s: float,
    cfg: PreferenceConfig,
    rng: random.Random,
) -> Choice:
    """The soundscape to play now in ``context`` (module docstring), and why.

    Raises
    ------
    InputDataError
        When ``arms`` is empty.
    """
    if not arms:
        raise InputDataError("therapy.learn_soundscapes", "at least one soundscape", arms)
    post = posteriors(model, arms, context, now_wall_s, cfg)
    counts = {a: 0 for a in arms}
    for r, _ in model.responses:
        if r.soundscape in counts:
            counts[r.soundscape] += 1
    fewest = min(counts.values())
    if fewest < cfg.trials:
        p = next(p for p in post if counts[p.soundscape] == fewest)
        why = "not measured yet" if fewest == 0 else f"measured {fewest} time(s) so far"
        return Choice(p.soundscape, "trial", why, post)
    best = max(post, key=lambda p: p.mean)
    eligible = [
        p for p in post
        if p is best
        or p.episodes < cfg.min_episodes_to_exclude
        or _p_better(p, best) >= cfg.clearly_worse_p
    ]
    draws = [(rng.gauss(p.mean, p.sd), p) for p in eligible]
    pick = max(draws, key=lambda d: d[0])[1]
    if pick is best:
        return Choice(best.soundscape, "exploit", "best so far", post)
    recent = [c for c in model.choices if c.context == context][-(cfg.explore_window - 1):]
    explored = sum(1 for c in recent if c.kind == "explore") + 1
    if explored / max(len(recent) + 1, cfg.explore_window) > cfg.max_explore_share:
        return Choice(best.soundscape, "exploit", "best so far (exploration at its cap)", post)
    return Choice(
        pick.soundscape, "explore",
        f"{100 * _p_better(pick, best):.0f}% chance it beats {best.soundscape}",
        post,
    )


def summary_lines(
    model: PreferenceModel, now_wall_s: float, cfg: PreferenceConfig | None = None
) -> list[str]:
    """What was learnt, for the report: one line per measured soundscape, best first.

    The context is that of the latest response; empty without responses.
    """
    if not model.responses:
        return []
    from heartsong.therapy.explain import hr_effect

    cfg = cfg or PreferenceConfig()
    context = model.responses[-1][1]
    arms = sorted({r.soundscape for r, _ in model.responses})
    post = sorted(posteriors(model, arms, context, now_wall_s, cfg), key=lambda p: -p.mean)
    lines = [f"Soundscapes learnt ({len(model.responses)} measured episodes; "
             f"{context}, changes beyond your usual settling):"]
    for p in post:
        if p.d_hr_bpm is None:
            continue
        lines.append(
            f"  {p.soundscape}: {hr_effect(p.d_hr_bpm)} on average over {p.nights} night(s)"
            f" (calm score {p.mean:+.2f} +- {p.sd:.2f})"
        )
    return lines


# -- persistence -------------------------------------------------------------------------

def _num(doc: dict[str, object], key: str, optional: bool = False) -> float | None:
    v = doc.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InputDataError(f"preferences.{key}", "a finite number", v)
    return float(v)


def _str(doc: dict[str, object], key: str) -> str:
    v = doc.get(key)
    if not isinstance(v, str) or not v:
        raise InputDataError(f"preferences.{key}", "a non-empty string", v)
    return v


def model_to_json(model: PreferenceModel) -> dict[str, object]:
    """The model as a JSON-able document (the file's and the export's format)."""
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "units": {
            "start_wall_s": "s (Unix time)", "session_s": "s since the session started",
            "length_s": "s", "d_hr_bpm": "bpm over the response window",
            "d_rmssd_log": "ln(RMSSD ratio) over the response window",
            "d_p_stress": "probability over the response window",
            "ref_hr_bpm": "bpm at the start", "ref_rmssd_log": "ln(ms) at the start",
            "ref_p_stress": "probability at the start",
        },
        "responses": [
            {
                "soundscape": r.soundscape, "context": ctx, "start_wall_s": r.start_wall_s,
                "session_s": r.session_s, "length_s": r.length_s, "d_hr_bpm": r.d_hr_bpm,
                "d_rmssd_log": r.d_rmssd_log, "d_p_stress": r.d_p_stress,
                "n_clean": r.n_clean, "ref_hr_bpm": r.ref_hr_bpm,
                "ref_rmssd_log": r.ref_rmssd_log, "ref_p_stress": r.ref_p_stress,
            }
            for r, ctx in model.responses
        ],
        "choices": [
            {"wall_s": c.wall_s, "context": c.context, "soundscape": c.soundscape,
             "kind": c.kind}
            for c in model.choices
        ],
    }


def model_from_json(doc: object) -> PreferenceModel:
    """The model from :func:`model_to_json`'s document.

    Raises
    ------
    InputDataError
        Naming the first field that is missing or malformed.
    """
    if not isinstance(doc, dict):
        raise InputDataError("preferences", "a JSON object", type(doc).__name__)
    if doc.get("format") != _FORMAT or doc.get("version") != _VERSION:
        raise InputDataError(
            "preferences.format/version", f"{_FORMAT!r} version {_VERSION}",
            (doc.get("format"), doc.get("version")),
        )
    rs, cs = doc.get("responses"), doc.get("choices")
    if not isinstance(rs, list) or not isinstance(cs, list):
        raise InputDataError("preferences.responses/choices", "lists", (type(rs), type(cs)))
    responses = []
    for item in rs:
        if not isinstance(item, dict):
            raise InputDataError("preferences.responses[]", "an object", item)
        n_clean = _num(item, "n_clean")
        assert n_clean is not None
        r = Response(
            _str(item, "soundscape"),
            float(_num(item, "start_wall_s") or 0.0),
            float(_num(item, "session_s") or 0.0),
            float(_num(item, "length_s") or 0.0),
            _num(item, "d_hr_bpm", True),
            _num(item, "d_rmssd_log", True),
            _num(item, "d_p_stress", True),
            int(n_clean),
            _num(item, "ref_hr_bpm", True),
            _num(item, "ref_rmssd_log", True),
            _num(item, "ref_p_stress", True),
        )
        responses.append((r, _str(item, "context")))
    choices = []
    for item in cs:
        kind = item.get("kind") if isinstance(item, dict) else None
        if not isinstance(item, dict) or kind not in CHOICE_KINDS:
            raise InputDataError("preferences.choices[]", f"an object with kind in {CHOICE_KINDS}",
                                 item)
        choices.append(ChoiceRecord(float(_num(item, "wall_s") or 0.0), _str(item, "context"),
                                    _str(item, "soundscape"), kind))
    return PreferenceModel(tuple(responses), tuple(choices))


class PreferenceStore:
    """The learnt preferences as a JSON file (``<state_dir>/soundscape_preferences.json``).

    Parameters
    ----------
    path:
        The file, or None to keep nothing.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"PreferenceStore({self.path!s})"

    def load(self) -> PreferenceModel:
        """The stored model; empty (with a warning) when the file is unreadable or invalid."""
        if self.path is None or not self.path.exists():
            return PreferenceModel()
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return model_from_json(doc)
        except (OSError, ValueError, InputDataError) as exc:
            logger.warning("soundscape preferences %s unusable (%s): starting afresh",
                           self.path, exc)
            return PreferenceModel()

    def save(self, model: PreferenceModel) -> bool:
        """Write the model atomically (temporary file, fsync, rename), owner-only; True
        when it was written (False: in memory only, or the write failed).

        An I/O error is logged, not raised: losing one night's learning must not stop
        the sound.
        """
        if self.path is None:
            return False
        try:
            write_private(self.path, json.dumps(model_to_json(model), indent=1))
        except OSError as exc:
            logger.warning("could not save soundscape preferences to %s: %s", self.path, exc)
            return False
        return True

    def stamp(self) -> int | None:
        """The file's modification time in ns (None: no file), to notice outside changes."""
        if self.path is None:
            return None
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def delete(self) -> bool:
        """Remove the file (and a stray temporary file); True when there was one."""
        if self.path is None:
            return False
        found = False
        for p in (self.path, self.path.with_name(self.path.name + ".tmp")):
            try:
                p.unlink()
                found = True
            except FileNotFoundError:
                pass
        return found

    def delete_before(self, wall_s: float) -> None:
        """Drop everything learnt from before Unix time ``wall_s`` (and rewrite the file)."""
        if self.path is None or not self.path.exists():
            return
        self.save(self.load().since(wall_s))
