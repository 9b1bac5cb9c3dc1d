"""Shifted copies of pieces: the same music in other keys, for training in every key.

A note's name moves by the shift (music21's spelling of the new pitch); a
chord's pitch classes rotate and are put in normal order again
(``cadenza.tokens.transpose_token``).  A note pushed outside MIDI's 0..127
is left out of its copy.  Each distinct token is moved once per shift and
the answer reused, so shifting a corpus costs a dictionary lookup a token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cadenza.tokens import transpose_token

Sequences = list[list[str]]


class Transposer:
    """Moves token sequences by a number of semitones, remembering each token's answer."""

    def __init__(self) -> None:
        self._moved: dict[tuple[str, int], str | None] = {}

    def token(self, token: str, shift: int) -> str | None:
        key = (token, shift)
        if key not in self._moved:
            self._moved[key] = transpose_token(token, shift)
        return self._moved[key]

    def sequence(self, tokens: Iterable[str], shift: int) -> list[str]:
        if shift == 0:
            return list(tokens)
        moved = (self.token(t, shift) for t in tokens)
        return [t for t in moved if t is not None]


def augment(
    pieces: Sequence[Sequences],
    shifts: Sequence[int],
    held_out: Iterable[int] = (),
) -> tuple[list[Sequences], list[int]]:
    """Every piece in every shift, except held-out pieces, which stay as they are.

    Returns the entries and, for each, the number of the piece it is a copy
    of, so that windows of a copy still belong to their piece.
    """
    held = set(held_out)
    transposer = Transposer()
    entries: list[Sequences] = []
    owners: list[int] = []
    for number, sequences in enumerate(pieces):
        for shift in (0,) if number in held else shifts:
            entries.append([transposer.sequence(s, shift) for s in sequences])
            owners.append(number)
    return entries, owners
