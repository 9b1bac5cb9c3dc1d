"""Where Cadenza's notes sound: the register of the answer.

A note token carries an octave, the model's; a chord token has none.  With
``register = "follow"`` a note keeps its pitch class and the answer is moved
by whole octaves to sit near the target register (the performer's recent
notes, or the fixed ``octave``), as a phrase: one shift for all its notes,
so the intervals between them stay as the model gave them.  Moving each
note to the octave nearest the target would be closer still, but it folds
every leap into a step and the line into a band of one octave (measured:
distinct pitches per note fell from 0.39 to 0.15).

Notes are chosen one at a time, so the answer's centre is not known in
advance.  The shift is chosen from the first note of the phrase, then the
model's notes so far keep it under watch: once there are three or more
(their median is not moved by one stray note), a shifted phrase that has
wandered more than ``REPLACE_BEYOND`` semitones from the target is shifted
afresh.  A shift set at the first note puts it within a
tritone of the target, so an answer that stays in the model's register
never changes octave midway.  A phrase is an answer in call-response; in
accompany and continue it runs from a start or mode change, the shift
following the model's last ``RECENT`` notes.

Every note sounds within the piano's range (A0..C8): one pushed past an end
comes back by octaves, the one place a contour may fold.  A chord is
voiced upwards from its first pitch class near the target and kept in
range the same way.  ``register = "model"`` plays notes as the tokens say.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

from cadenza.tokens import chord_pitch_classes, is_chord, name_to_midi, voice_chord

PIANO_LOW, PIANO_HIGH = 21, 108  # A0 and C8: an 88-key piano
RECENT = 16  # the model's notes whose median is the phrase's centre
REPLACE_BEYOND = 9  # semitones between the shifted centre and the target that call for a new shift
WATCH_FROM = 3  # notes in the phrase before its centre may call for a new shift


def into_piano(notes: list[int]) -> list[int]:
    """``notes`` moved by whole octaves until they lie on the piano (a chord as one)."""
    while notes[0] < PIANO_LOW and notes[-1] + 12 <= PIANO_HIGH:
        notes = [n + 12 for n in notes]
    while notes[-1] > PIANO_HIGH and notes[0] - 12 >= PIANO_LOW:
        notes = [n - 12 for n in notes]
    return notes


def octave_shift(centre: float, target: float) -> int:
    """The whole-octave shift that brings ``centre`` nearest ``target`` (ties upwards)."""
    return 12 * math.floor((target - centre) / 12 + 0.5)


class Register:
    """One phrase's placement: its octave shift and the model's notes so far."""

    def __init__(self) -> None:
        self._pitches: deque[int] = deque(maxlen=RECENT)
        self._shift: int | None = None

    @property
    def shift(self) -> int | None:
        """Semitones the phrase's notes are moved by (None before its first note)."""
        return self._shift

    def new_phrase(self) -> None:
        """An answer starts (or the music restarts): choose the shift afresh."""
        self._pitches.clear()
        self._shift = None

    def place(self, token: str, target: int, follow: bool) -> list[int]:
        """The MIDI notes that sound ``token``, placed near ``target``."""
        if is_chord(token):
            return into_piano(voice_chord(chord_pitch_classes(token), target))
        midi = name_to_midi(token)
        if not follow:
            return [midi]
        self._pitches.append(midi)
        centre = statistics.median(self._pitches)
        wandered = (len(self._pitches) >= WATCH_FROM
                    and abs(centre + (self._shift or 0) - target) > REPLACE_BEYOND)
        if self._shift is None or wandered:
            self._shift = octave_shift(centre, target)
        return into_piano([midi + self._shift])
