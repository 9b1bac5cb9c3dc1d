"""Steps 1-3 of reading a MIDI track as music21 does (see ``fastnotes``): pair
note-ons with note-offs, group chords, and quantize offsets and durations,
on plain integer arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Quantized times are integers of this many per quarter note: 1/4 and 1/3
#: of a quarter, and every bar length a time signature up to x/64 gives.
UNIT = 192
#: music21's default ``quarterLengthDivisors``.
DIVISORS = (4, 3)


@dataclass
class Element:
    """A note or chord, as music21 inserts it into the part."""

    token: str
    offset: int  # in UNIT, quantized
    duration: int  # in UNIT, quantized
    grace: bool  # zero ticks long: music21 sorts it before the others at its offset
    rank: int = 0  # order of insertion into its container

    @property
    def end(self) -> int:
        return self.offset + self.duration


def music21_note_offs(on: np.ndarray, off: np.ndarray, pitch: np.ndarray,
                      released: np.ndarray | None = None) -> np.ndarray:
    """music21's note-off of each note, from symusic's first-in first-out pairing.

    music21 ends a note at the first note-off of its pitch after it, even one
    that already ended an earlier note.  symusic's own off is that one unless
    the pitch was struck again while still sounding; the first later off of
    the same pitch is found by one ``searchsorted`` over all offs keyed by pitch.
    "After" is in the order of the events: a note-off at the very tick of
    its note-on, but after it in the track, ends it there (zero long).
    ``released`` marks those notes (``TrackFacts.released_at_strike``);
    symusic gives that off to an older note of the pitch still sounding.
    """
    if on.size == 0:
        return off
    span = int(max(on.max(), off.max())) + 2
    keys = pitch.astype(np.int64) * span
    off_keys = np.sort(keys + off)
    # strictly later: an off at the same tick as a re-strike ended the old note
    at = np.searchsorted(off_keys, keys + on, side="right")
    at_clipped = np.minimum(at, off_keys.size - 1)
    later = off_keys[at_clipped] - keys
    found = (at < off_keys.size) & (later < span) & (later >= on)
    fixed = np.where(found, np.minimum(off, later), off)
    return fixed if released is None else np.where(released, on, fixed)


@dataclass
class Groups:
    """music21's chord groups: each group's first and last note, and the members of chords."""

    first: np.ndarray
    last: np.ndarray
    chords: dict[int, list[int]]  # group number -> its note indices, for groups of two or more
    voices: bool  # a note began with another but ended elsewhere: music21 makes voices


def group_chords(on: np.ndarray, off: np.ndarray, ticks_per_quarter: int) -> Groups:
    """music21's chord groups, in note order, and whether it will need voices."""
    tolerance = ticks_per_quarter / max(DIVISORS)
    count = on.size
    # The first note whose onset is a tolerance or more later: only the notes
    # before it can join; most notes have no such neighbour at all.
    reach = np.searchsorted(on, on + tolerance, side="left")
    crowded = np.flatnonzero(reach > np.arange(1, count + 1))
    if crowded.size == 0:
        every = np.arange(count)
        return Groups(every, every, {}, False)
    off_list, reach_list = off.tolist(), reach.tolist()
    gathered = bytearray(count)
    chords: dict[int, list[int]] = {}
    joined: list[int] = []  # notes that joined an earlier one's chord
    lasts: dict[int, int] = {}  # first note -> last note of its chord
    voices = False
    for i in crowded.tolist():
        if gathered[i]:
            continue
        group = [i]
        end = off_list[i]
        for j in range(i + 1, reach_list[i]):
            # music21 compares with the first note's off, not the group's.
            if abs(off_list[j] - end) > tolerance:
                voices = True
                continue
            group.append(j)
            gathered[j] = 1
            joined.append(j)
        if len(group) > 1:
            chords[i] = group
            lasts[i] = group[-1]
    keep = np.ones(count, dtype=bool)
    keep[joined] = False
    first = np.flatnonzero(keep)
    last = first.copy()
    if lasts:
        at = np.searchsorted(first, list(lasts))
        last[at] = list(lasts.values())
    numbered = {int(n): chords[f] for n, f in zip(np.searchsorted(first, list(chords)),
                                                   chords, strict=True)}
    return Groups(first, last, numbered, voices)


def _nearest(target: np.ndarray, div: int) -> tuple[np.ndarray, np.ndarray]:
    """``common.nearestMultiple`` in float64, as music21 computes it: (match, error)."""
    unit = 1 / div
    mult = np.floor(target / unit)
    low = unit * mult
    high = unit * (mult + 1)
    take_low = target <= low + unit / 2.0
    match = np.where(take_low, low, high)
    error = np.round(np.where(take_low, target - low, high - target), 7)
    return match, error


def _to_units(match: np.ndarray, div: int) -> np.ndarray:
    return np.rint(match * div).astype(np.int64) * (UNIT // div)


def quantize_offsets(quarters: np.ndarray) -> np.ndarray:
    """Offsets (float quarters) to music21's grid, in UNIT."""
    (m4, e4), (m3, e3) = _nearest(quarters, 4), _nearest(quarters, 3)
    # min over (error, tick): on a tie the smaller tick, 1/4, wins.
    return np.where(e4 <= e3, _to_units(m4, 4), _to_units(m3, 3))


def quantize_durations(quarters: np.ndarray, grace: np.ndarray,
                       gap: np.ndarray | None) -> np.ndarray:
    """Durations to music21's grid, in UNIT; ``gap``: UNITs to the next onset (None: none)."""
    best_key = None
    best = np.zeros(quarters.size, dtype=np.int64)
    for div in DIVISORS:
        tick = 1 / div
        match, error = _nearest(quarters, div)
        # A note or chord may not become zero long unless it was a grace note.
        zero = (match == 0.0) & ~grace
        match = np.where(zero, tick, match)
        error = np.where(zero, np.abs(np.round(quarters - match, 7)), error)
        if gap is None:
            remaining = np.zeros(quarters.size)
        else:
            gap_q = gap / UNIT
            remaining = np.where(np.fmod(gap_q, tick) == 0, 0.0,
                                 np.maximum(gap_q - match, 0.0))
        key = (remaining, error)
        units = _to_units(match, div)
        if best_key is None:
            best_key, best = key, units
            continue
        # a later (larger) tick wins only when strictly better
        better = (key[0] < best_key[0]) | ((key[0] == best_key[0]) & (key[1] < best_key[1]))
        best = np.where(better, units, best)
        best_key = (np.where(better, key[0], best_key[0]), np.where(better, key[1], best_key[1]))
    return best
