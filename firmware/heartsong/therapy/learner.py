"""The soundscape learner the controller holds: choose, measure each episode, remember.

:class:`SoundscapeLearner` ties :mod:`heartsong.therapy.response` (what one episode did)
to :mod:`heartsong.therapy.preference` (which soundscape to play next) and its
:class:`~heartsong.therapy.preference.PreferenceStore`::

    learner = SoundscapeLearner(("rain", "ocean"), store=PreferenceStore(path), seed=1)
    choice, why = learner.choose("wind_down", wall_s)       # session start
    learner.episode_start("rain", now_s, wall_s, session_s)  # whenever a sound starts
    note = learner.observe(metrics, now_s)                   # every metrics update
    note = learner.episode_end()                             # switch, sleep, session end

Nothing here touches audio; a failed save is logged (the store's rule).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from heartsong.config import DEFAULT_LEARN_CANDIDATES, learn_candidates
from heartsong.errors import InputDataError, check_number
from heartsong.events import Metrics
from heartsong.therapy.explain import preference_message
from heartsong.therapy.preference import (
    PREFERENCES_FILE,
    ArmPosterior,
    ChoiceRecord,
    PreferenceConfig,
    PreferenceModel,
    PreferenceStore,
    choose,
    context_of,
    posteriors,
)
from heartsong.therapy.response import ResponseConfig, ResponseRecorder

__all__ = [
    "LearnSettings",
    "SoundscapeLearner",
    "learn_settings_from_config",
    "make_learner",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LearnSettings:
    """The ``[therapy]`` keys of the soundscape learner (validated on construction).

    Attributes
    ----------
    learn_soundscapes:
        Whether ``calm``/``wind_down`` sessions play the soundscape learnt to calm this
        person instead of the configured one.
    learn_candidates:
        The preset names the learner chooses among (at least one, distinct).
    learn_explore_max:
        Highest share (0..0.5) of recent sessions that may try another than the best.
    learn_half_life_days:
        What was learnt counts half after this many days (1..3650; slow forgetting).
    """

    learn_soundscapes: bool = False
    learn_candidates: tuple[str, ...] = DEFAULT_LEARN_CANDIDATES
    learn_explore_max: float = 0.1
    learn_half_life_days: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.learn_soundscapes, bool):
            raise InputDataError("therapy.learn_soundscapes", "true or false",
                                 self.learn_soundscapes)
        cands = self.learn_candidates
        if (
            not isinstance(cands, tuple | list)
            or not cands
            or not all(isinstance(c, str) and c for c in cands)
            or len(set(cands)) != len(cands)
        ):
            raise InputDataError(
                "therapy.learn_candidates", "a list of distinct preset names", cands
            )
        object.__setattr__(self, "learn_candidates", tuple(cands))
        for name, lo, hi in (("learn_explore_max", 0.0, 0.5),
                             ("learn_half_life_days", 1.0, 3650.0)):
            check_number(f"therapy.{name}", getattr(self, name), lo, hi)


def learn_settings_from_config(section: object) -> LearnSettings:
    """The learner's settings from a config section (``cfg.therapy``): every
    :class:`LearnSettings` field the section has is taken, the others keep defaults.
    ``learn_candidates`` given as the config's comma-separated string is split."""
    found = {
        f.name: getattr(section, f.name)
        for f in dataclasses.fields(LearnSettings)
        if hasattr(section, f.name)
    }
    cands = found.get("learn_candidates")
    if isinstance(cands, str):
        found["learn_candidates"] = learn_candidates(cands)
    return LearnSettings(**found)


class SoundscapeLearner:
    """Learns which of ``candidates`` calms this person (see the module docstring).

    Parameters
    ----------
    candidates:
        The soundscapes it may choose among (preset names; at least one).
    store:
        Where the model is kept (None: in memory only).
    cfg, response_cfg:
        Learner and measurement rules.
    seed:
        Seed of the Thompson draws (None: from the system).
    update_s:
        Nominal interval of the metrics updates, s.
    """

    def __init__(
        self,
        candidates: Sequence[str],
        *,
        store: PreferenceStore | None = None,
        cfg: PreferenceConfig | None = None,
        response_cfg: ResponseConfig | None = None,
        seed: int | None = None,
        update_s: float = 5.0,
    ) -> None:
        if not candidates or len(set(candidates)) != len(candidates):
            raise InputDataError(
                "therapy.learn_candidates", "one or more distinct soundscapes", candidates
            )
        self.candidates = tuple(candidates)
        self.store = store
        self.cfg = cfg or PreferenceConfig()
        self.response_cfg = response_cfg or ResponseConfig()
        self.update_s = update_s
        self.model: PreferenceModel = store.load() if store is not None else PreferenceModel()
        # The model last written to the store (PreferenceModel is immutable: an unchanged
        # model is the same object); None until the first write succeeds.
        self._saved: PreferenceModel | None = None
        self._stamp = store.stamp() if store is not None else None
        self._rng = random.Random(seed)
        self._recorder: ResponseRecorder | None = None
        self._context = ""
        self.last_explanation = ""

    def __repr__(self) -> str:
        return (
            f"SoundscapeLearner({len(self.candidates)} soundscapes, "
            f"{len(self.model.responses)} responses, store={self.store!r})"
        )

    def choose(self, mode: str, wall_s: float) -> tuple[str, str]:
        """The soundscape for a session starting now in ``mode``, and the explanation."""
        ctx = context_of(mode, wall_s)
        c = choose(self.model, self.candidates, ctx, wall_s, self.cfg, self._rng)
        self.model = self.model.with_choice(ChoiceRecord(wall_s, ctx, c.soundscape, c.kind))
        self.last_explanation = preference_message(c.soundscape, c.kind, c.why, c.posteriors)
        return c.soundscape, self.last_explanation

    def posteriors(self, mode: str, wall_s: float) -> tuple[ArmPosterior, ...]:
        """The candidates' posteriors in the context of ``mode`` at ``wall_s``."""
        return posteriors(
            self.model, self.candidates, context_of(mode, wall_s), wall_s, self.cfg
        )

    def episode_start(self, soundscape: str, now_s: float, wall_s: float, session_s: float,
                      mode: str) -> None:
        """A candidate soundscape starts playing (others are not measured)."""
        self._recorder = None
        if soundscape in self.candidates and mode in ("calm", "wind_down"):
            self._context = context_of(mode, wall_s)
            self._recorder = ResponseRecorder(
                soundscape, now_s, wall_s, session_s, self.response_cfg, self.update_s
            )

    def observe(self, metrics: Metrics, now_s: float) -> str | None:
        """Add one update; when the window is full the episode is measured (its note)."""
        rec = self._recorder
        if rec is None:
            return None
        rec.add(metrics, now_s)
        return self.episode_end() if rec.full(now_s) else None

    def episode_end(self) -> str | None:
        """End the episode being measured: learn from it; the note (None: no episode)."""
        rec = self._recorder
        if rec is None:
            return None
        self._recorder = None
        out = rec.finish()
        r = out.response
        if r is None:
            return f"{rec.soundscape} not measured: {out.reason}"
        self._sync()
        self.model = self.model.with_response(r, self._context, self.cfg.max_history)
        self.save()
        hr = "" if r.d_hr_bpm is None else f"heart rate {r.d_hr_bpm:+.1f} bpm"
        rm = "" if r.d_rmssd_log is None else f"RMSSD {100 * math.expm1(r.d_rmssd_log):+.0f}%"
        ps = "" if r.d_p_stress is None else f"p_stress {r.d_p_stress:+.2f}"
        changes = ", ".join(x for x in (hr, rm, ps) if x)
        return (
            f"measured {r.soundscape}: {changes} over {self.response_cfg.window_s / 60:.0f} min "
            f"({out.reason})"
        )

    def _sync(self) -> None:
        """Take the file again if something else changed it since this learner read or
        wrote it: ``heartsong data delete`` while the device runs must not be undone."""
        if self.store is None or self.store.stamp() == self._stamp:
            return
        logger.info("soundscape preferences changed on disk (data deleted?): reloading")
        self.model = self.store.load()
        self._stamp = self.store.stamp()

    def save(self) -> None:
        """Write the model to the store (if any), after taking in outside changes; not
        again when this very model was written last."""
        if self.store is not None:
            self._sync()
            if self.model is self._saved:
                return
            if self.store.save(self.model):
                self._saved = self.model
            self._stamp = self.store.stamp()

    def forget(self) -> None:
        """Drop everything learnt (in memory and the file): the person's data was deleted."""
        self.model = PreferenceModel()
        self._recorder = None
        if self.store is not None:
            self.store.delete()
        logger.info("soundscape preferences forgotten")


def make_learner(
    settings: LearnSettings, state_dir: str | Path | None, *, seed: int | None = None,
    update_s: float = 5.0,
) -> SoundscapeLearner | None:
    """The learner the ``[therapy]`` settings ask for (None: ``learn_soundscapes`` off).

    Its model is kept in ``<state_dir>/soundscape_preferences.json`` (in memory only when
    ``state_dir`` is None).
    """
    if not settings.learn_soundscapes:
        return None
    store = PreferenceStore(None if state_dir is None else Path(state_dir) / PREFERENCES_FILE)
    cfg = PreferenceConfig(
        half_life_days=settings.learn_half_life_days,
        max_explore_share=settings.learn_explore_max,
    )
    return SoundscapeLearner(
        settings.learn_candidates, store=store, cfg=cfg, seed=seed, update_s=update_s
    )
