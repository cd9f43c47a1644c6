"""Tunings and chord progressions for the pads, as frequency ratios to the preset's root.

Two intonations, both free of beating semitones so a slow pad never sounds tense:

* ``just``: 5-limit just intonation (ratios of small whole numbers: the major third 5/4,
  fifth 3/2, major sixth 5/3; Partch 1974, *Genesis of a Music*), the progression
  I - vi - IV - Isus2 with each chord's root in the bass, which stays within the octave
  below the root (small speakers cannot play lower, and a lower bass would make some
  chords quieter than others);
* ``pentatonic``: the major pentatonic scale in just intonation (1, 9/8, 5/4, 3/2, 5/3),
  four open voicings made only of its notes.

Each chord lists ``PAD_VOICES`` ratios, voice by voice (bass first). Every interval inside
a chord is simple (Tenney height ``n * d <= 144``: no semitone, no tritone, no "wolf"
fifth 40/27), and at least one voice holds its note into the next chord. The table is
plain data: the engine copies it into a float64 array once (``chord_table``) and the pad
kernel only reads it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "CHORDS_PER_PROGRESSION",
    "INTONATIONS",
    "PAD_VOICES",
    "PENTATONIC_SCALE",
    "PROGRESSIONS",
    "Intonation",
    "chord_table",
]

Intonation = Literal["just", "pentatonic"]
#: The intonations, in the order of the engine's chord table.
INTONATIONS: Final[tuple[Intonation, ...]] = ("just", "pentatonic")
#: Voices of every pad chord.
PAD_VOICES: Final = 4
#: Chords in every progression.
CHORDS_PER_PROGRESSION: Final = 4

F = Fraction
#: The major pentatonic scale in just intonation, one octave from the root.
PENTATONIC_SCALE: Final = (F(1), F(9, 8), F(5, 4), F(3, 2), F(5, 3))

#: The progressions: intonation -> chords -> voice ratios to the root (bass first).
PROGRESSIONS: Final[dict[Intonation, tuple[tuple[Fraction, ...], ...]]] = {
    "just": (
        (F(1, 2), F(1), F(5, 4), F(3, 2)),  # I      C  C  E  G
        (F(5, 6), F(1), F(5, 4), F(5, 3)),  # vi     A  C  E  A
        (F(2, 3), F(1), F(4, 3), F(5, 3)),  # IV     F  C  F  A
        (F(1, 2), F(1), F(9, 8), F(3, 2)),  # Isus2  C  C  D  G
    ),
    "pentatonic": (
        (F(1, 2), F(1), F(9, 8), F(3, 2)),  # C  C  D  G
        (F(5, 12), F(5, 6), F(5, 4), F(3, 2)),  # A  A  E  G
        (F(3, 8), F(3, 4), F(9, 8), F(3, 2)),  # G  G  D  G
        (F(1, 2), F(3, 4), F(5, 4), F(5, 3)),  # C  G  E  A
    ),
}


def chord_table() -> npt.NDArray[np.float64]:
    """The progressions as a float64 array ``(len(INTONATIONS), chords, PAD_VOICES)``."""
    table = np.zeros((len(INTONATIONS), CHORDS_PER_PROGRESSION, PAD_VOICES), dtype=np.float64)
    for i, name in enumerate(INTONATIONS):
        for j, chord in enumerate(PROGRESSIONS[name]):
            table[i, j, :] = [float(r) for r in chord]
    return table
