"""The token scheme shared by training and the live daemon (no music21 here).

A single note is its pitch name with octave as music21 writes it (``C#4``,
``E-5``: flats are ``-``); a chord is its normal-order pitch classes joined by
``.`` (``2.6.9``), with no octave.  The functions below reproduce music21's
spelling of MIDI note numbers and its ``Chord.normalOrder`` so that a
performer's notes become exactly the tokens the model was trained on; the
tests prove the equality against music21 itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from cadenza.errors import TokenError

#: Bumped whenever the mapping between notes and tokens changes meaning.
SCHEME_VERSION = 1

# music21 spells a bare MIDI number with these names (sharps except E- and B-).
_PITCH_CLASS_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "G#", "A", "B-", "B")
_STEP_TO_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE_RE = re.compile(r"^([A-G])(#{1,4}|-{1,4}|~|#~|-~|`|-`)?(-?\d+)$")
_CHORD_RE = re.compile(r"^\d{1,2}(\.\d{1,2})*$")


def midi_to_name(midi: int) -> str:
    """The note token music21 writes for MIDI note ``midi`` (60 -> ``C4``)."""
    if not 0 <= midi <= 127:
        raise TokenError(f"MIDI note number out of range 0..127: {midi}")
    return f"{_PITCH_CLASS_NAMES[midi % 12]}{midi // 12 - 1}"


_DEFAULT_NAMES = {midi_to_name(m): m for m in range(128)}


@lru_cache(maxsize=4096)
def name_to_midi(name: str) -> int:
    """The MIDI number of a note token, for any music21 spelling (``D-4``, ``B#3``).

    Quarter-tone marks are dropped (rounded towards the letter), since MIDI
    output has no quarter tones.
    """
    exact = _DEFAULT_NAMES.get(name)
    if exact is not None:
        return exact
    match = _NOTE_RE.match(name)
    if match is None:
        raise TokenError(f"not a note token: {name!r}")
    step, accidental, octave = match.groups()
    accidental = (accidental or "").replace("~", "").replace("`", "")
    alter = accidental.count("#") - accidental.count("-")
    midi = (int(octave) + 1) * 12 + _STEP_TO_PC[step] + alter
    if not 0 <= midi <= 127:
        raise TokenError(f"note token outside the MIDI range: {name!r}")
    return midi


def _packing_key(intervals: Sequence[int]) -> tuple[int, ...]:
    # Forte's rule, which music21's chord tables follow: the smallest outer
    # span first, then the form most tightly packed to the left.
    return (intervals[-1], *intervals[1:-1])


def _rotations_from_zero(pcs: Sequence[int]) -> list[tuple[int, ...]]:
    ordered = sorted(pcs)
    rotations = [ordered[i:] + ordered[:i] for i in range(len(ordered))]
    return [tuple((pc - r[0]) % 12 for pc in r) for r in rotations]


@lru_cache(maxsize=8192)
def _normal_order_cached(pcs: frozenset[int]) -> tuple[int, ...]:
    # music21 finds the set class's form in Forte's table (the prime form, or
    # its inversion when the chord is the inverted shape), then transposes
    # that form onto the chord at the lowest pitch class that fits.  The
    # table's forms are reproduced here by Forte's packing rule.
    inverted = [(-pc) % 12 for pc in pcs]
    forms = _rotations_from_zero(list(pcs))
    inverted_forms = _rotations_from_zero(inverted)
    prime = min(forms + inverted_forms, key=_packing_key)
    if prime in forms:
        shape = prime
    else:
        # Mirror the prime form and bring it back to start on zero.
        mirrored = sorted((-pc) % 12 for pc in prime)
        shape = min(_rotations_from_zero(mirrored), key=_packing_key)
    for transposition in sorted(pcs):
        candidate = tuple((pc + transposition) % 12 for pc in shape)
        if set(candidate) == pcs:
            return candidate
    raise AssertionError(f"no normal order found for {sorted(pcs)}")  # unreachable


def normal_order(pitches: Iterable[int]) -> tuple[int, ...]:
    """Normal order of the pitch classes of ``pitches`` (MIDI numbers or pcs)."""
    pcs = frozenset(int(p) % 12 for p in pitches)
    if not pcs:
        raise TokenError("a chord needs at least one pitch")
    return _normal_order_cached(pcs)


def chord_token(pitches: Iterable[int]) -> str:
    """The token of a chord: normal-order pitch classes joined with ``.``."""
    return ".".join(str(pc) for pc in normal_order(pitches))


def notes_token(midis: Sequence[int]) -> str:
    """The token of notes struck together: a note name for one, a chord otherwise.

    Repeated copies of one MIDI number count as one note, as music21 does
    when it merges a chord's duplicates in the performer's hands.
    """
    unique = sorted(set(midis))
    if not unique:
        raise TokenError("no notes to make a token from")
    if len(unique) == 1:
        return midi_to_name(unique[0])
    return chord_token(unique)


def is_chord(token: str) -> bool:
    return bool(_CHORD_RE.match(token))


def chord_pitch_classes(token: str) -> tuple[int, ...]:
    """The pitch classes of a chord token, in the token's (normal) order."""
    if not is_chord(token):
        raise TokenError(f"not a chord token: {token!r}")
    pcs = tuple(int(part) for part in token.split("."))
    if any(pc > 11 for pc in pcs):
        raise TokenError(f"pitch class above 11 in chord token {token!r}")
    return pcs


def validate_token(token: str) -> str:
    """Return ``token`` if it belongs to the scheme, else raise ``TokenError``."""
    if is_chord(token):
        chord_pitch_classes(token)
    else:
        name_to_midi(token)
    return token


def voice_chord(pcs: Sequence[int], centre: int = 60) -> list[int]:
    """MIDI notes for a chord's pitch classes, stacked upwards near ``centre``.

    The first pitch class of the normal order becomes the lowest note, placed
    in the octave that puts the chord's middle closest to ``centre``.
    """
    if not pcs:
        raise TokenError("empty chord")
    intervals = [0]
    for previous, current in zip(pcs, pcs[1:], strict=False):
        intervals.append(intervals[-1] + (current - previous) % 12)
    middle = intervals[-1] / 2
    base_pc = pcs[0]
    candidates = [base_pc + 12 * octave for octave in range(11)]
    root = min(candidates, key=lambda r: (abs(r + middle - centre), r))
    notes = [root + i for i in intervals]
    while notes[-1] > 127:
        notes = [n - 12 for n in notes]
    while notes[0] < 0:
        notes = [n + 12 for n in notes]
    return notes


def token_to_midis(token: str, centre: int = 60) -> list[int]:
    """MIDI notes that sound a token: a note, or a chord voiced near ``centre``."""
    if is_chord(token):
        return voice_chord(chord_pitch_classes(token), centre)
    return [name_to_midi(token)]


def transpose_token(token: str, semitones: int) -> str | None:
    """The token moved by ``semitones``: a note's name moves (music21's spelling
    of the new pitch), a chord's pitch classes rotate and are put in normal
    order again.  ``None`` for a note pushed outside MIDI's 0..127."""
    if is_chord(token):
        return chord_token(pc + semitones for pc in chord_pitch_classes(token))
    midi = name_to_midi(token) + semitones
    return midi_to_name(midi) if 0 <= midi <= 127 else None
