"""Out-of-vocabulary input: the nearest token the model knows.

A performer can play anything; the model knows only its vocabulary.  The
rules, in order (ties always go to the lower pitch, then to the earlier
vocabulary entry):

Single note (MIDI number ``m``):
  1. a vocabulary note that sounds ``m``, whatever its spelling (``C#4`` and
     ``D-4`` are the same key);
  2. else the same pitch class in the nearest octave that the vocabulary has;
  3. else the vocabulary note nearest in semitones;
  4. else (a vocabulary without single notes) the smallest chord containing
     the pitch class, else the first token.

Notes struck together (two or more pitch classes, set ``P``):
  1. a vocabulary chord with exactly the pitch classes ``P``;
  2. else the vocabulary chord ``Q`` with the fewest pitch classes in the
     symmetric difference of ``P`` and ``Q`` (then the most in common, then the
     fewest notes), provided it keeps at least two of the played pitch classes
     and at least half of them: it must still sound like the played chord;
  3. else the highest played note, mapped as a single note (the top of a
     chord usually carries the melody).

Notes of one pitch class in several octaves (``C4`` + ``C5``) are the chord
token of that one class when the vocabulary has it, else the highest note.
"""

from __future__ import annotations

from collections.abc import Sequence

from cadenza.errors import TokenError
from cadenza.tokens import chord_pitch_classes, is_chord, name_to_midi, notes_token, token_to_midis


class VocabMap:
    """Maps played notes (or any token of the scheme) to a vocabulary index."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        if not vocabulary:
            raise TokenError("empty vocabulary")
        self.vocabulary = tuple(vocabulary)
        self._index = {token: i for i, token in enumerate(self.vocabulary)}
        self._note_index: dict[int, int] = {}  # MIDI number -> first vocabulary index
        self._chords: list[tuple[frozenset[int], int]] = []
        self._chord_index: dict[frozenset[int], int] = {}
        for i, token in enumerate(self.vocabulary):
            if is_chord(token):
                pcs = frozenset(chord_pitch_classes(token))
                self._chords.append((pcs, i))
                self._chord_index.setdefault(pcs, i)
            else:
                self._note_index.setdefault(name_to_midi(token), i)
        self._note_midis = sorted(self._note_index)
        self._cache: dict[tuple[int, ...], int] = {}

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def index_of_notes(self, midis: Sequence[int]) -> int:
        """The vocabulary index for MIDI notes struck together (one or more)."""
        key = tuple(sorted(set(midis)))
        if not key:
            raise TokenError("no notes to map")
        cached = self._cache.get(key)
        if cached is None:
            cached = self._map(key)
            self._cache[key] = cached
        return cached

    def index_of_token(self, token: str) -> int:
        """The vocabulary index for any token of the scheme (chords voiced near C4)."""
        exact = self._index.get(token)
        if exact is not None:
            return exact
        return self.index_of_notes(token_to_midis(token))

    def _map(self, midis: tuple[int, ...]) -> int:
        exact = self._index.get(notes_token(midis))
        if exact is not None:
            return exact
        if len(midis) == 1:
            return self._nearest_note(midis[0])
        played = frozenset(m % 12 for m in midis)
        chord = self._nearest_chord(played)
        if chord is not None:
            return chord
        return self._nearest_note(midis[-1])

    def _nearest_note(self, midi: int) -> int:
        exact = self._note_index.get(midi)
        if exact is not None:
            return exact
        if not self._note_midis:
            containing = [(len(pcs), i) for pcs, i in self._chords if midi % 12 in pcs]
            return min(containing)[1] if containing else 0
        same_class = [m for m in self._note_midis if m % 12 == midi % 12]
        pool = same_class or self._note_midis
        best = min(pool, key=lambda m: (abs(m - midi), m))
        return self._note_index[best]

    def _nearest_chord(self, played: frozenset[int]) -> int | None:
        exact = self._chord_index.get(played)
        if exact is not None:
            return exact
        best: tuple[int, int, int, int] | None = None
        for pcs, i in self._chords:
            common = len(played & pcs)
            if common < 2 or 2 * common < len(played):
                continue
            score = (len(played ^ pcs), -common, len(pcs), i)
            if best is None or score < best:
                best = score
        return None if best is None else best[3]
