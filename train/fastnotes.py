"""One MIDI track's notes -> the notes and chords music21 makes of them, in its order.

music21's ``midi.translate.midiTrackToStream`` does this in five steps, each
reproduced here on plain arrays (ticks as integers, quantized times as
integers of ``UNIT`` per quarter note, so that no float decides a barline):

1. pair: each note-on ends at the first later note-off of its pitch, even one
   that already ended another note, and "later" is in event order, so an off
   at the note-on's own tick but after it ends it there (symusic pairs
   first-in first-out; the difference is repaired from the note-offs symusic
   kept and the checker's ``released_at_strike``);
2. group: a note joins the chord of an earlier one whose onset lies less than
   a quarter / 4 (in ticks) before it and whose note-off lies within as
   much; a chord starts where its first note does and lasts as long as its
   *last* note (music21 says so itself: "THIS IS A BUG");
3. quantize: offsets, then durations, to the nearest 1/4 or 1/3 of a
   quarter, a duration preferring the grid that reaches the next onset;
4. measures, and voices where music21 needs them: a measure whose notes
   overlap is split into voices, first fit (a note that finds no voice is
   lost, as in music21);
5. ties: a note that crosses a barline is cut there, and each piece is a note
   of its own, so a token of its own.

Steps 4 and 5 are simulated measure by measure in ``fastmeasures``, only
where they change something; this module finds those measures, and which
of them music21 had cached the end time of (``_cached_measures``).

The order is the one music21's part, flattened, iterates: by offset, a
zero-length (grace) note first, then by where each element was inserted,
which the tied pieces and the voices decide.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from cadenza.tokens import chord_token, midi_to_name
from cadenza.train.fastgroups import (  # noqa: F401  (re-exported: the steps' names)
    DIVISORS,
    UNIT,
    Element,
    Groups,
    _nearest,
    _to_units,
    group_chords,
    music21_note_offs,
    quantize_durations,
    quantize_offsets,
)
from cadenza.train.fastmeasures import Measure, make_voices, reported_length, sorted_elements, tie


def _bars(signatures: list[tuple[int, int]], last: int) -> tuple[np.ndarray, np.ndarray]:
    """``makeMeasures``: bar starts and lengths, laid end to end until ``last`` is reached."""
    sig_starts = [start for start, _ in signatures]
    starts, lengths = [], []
    start = 0
    while True:
        length = signatures[max(0, bisect.bisect_right(sig_starts, start) - 1)][1]
        starts.append(start)
        lengths.append(length)
        start += length
        if start >= last:
            break
    return np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)


@dataclass
class TrackOrder:
    """A track's elements with the keys music21's flattened part sorts them by."""

    offset: np.ndarray  # UNIT, from the start, measures laid as music21 lays them
    not_grace: np.ndarray
    position: np.ndarray  # where it was inserted: breaks the remaining ties
    tokens: np.ndarray  # of str


@dataclass
class TrackNotes:
    """One track's notes as ticks, in note-on order (symusic's), before any music21 step."""

    on: np.ndarray
    off: np.ndarray  # symusic's (first-in first-out) note-offs
    pitch: np.ndarray
    meta_ticks: tuple[int, ...] = ()  # other elements music21 places in the part
    # the conductor's tempos, keys and signatures, copied in before the measures are made
    conductor_ticks: tuple[int, ...] = ()
    released: np.ndarray | None = None  # of bool: the notes music21 ends where they begin


_NAMES = np.array([midi_to_name(m) for m in range(128)], dtype=object)
_SLOT = 1 << 24  # positions: measure number * _SLOT + place within the measure


@lru_cache(maxsize=8192)
def _chord_token(pitch_classes: frozenset[int]) -> str:
    return chord_token(pitch_classes)


def _tokens(groups: Groups, pitch: np.ndarray) -> np.ndarray:
    tokens = _NAMES[pitch[groups.first]]
    classes = (pitch % 12).tolist()
    for number, members in groups.chords.items():
        tokens[number] = _chord_token(frozenset([classes[i] for i in members]))
    return tokens


def _needs_measures(measure: np.ndarray, rel: np.ndarray, end: np.ndarray,
                    bar_starts: np.ndarray, bar_lengths: np.ndarray, voices_needed: bool
                    ) -> np.ndarray:
    """Which measures need music21's steps one element at a time; the rest keep their order.

    A measure with an element across its barline, every measure a piece of
    one lands in, and, in a track that needs voices, a measure where an
    element begins before an earlier one has ended.
    """
    count = bar_starts.size
    marked = np.zeros(count + 1, dtype=np.int64)
    crossing = end > bar_lengths[measure]
    if crossing.any():
        np.add.at(marked, measure[crossing], 1)
        np.add.at(marked, measure[crossing] + 1, -1)
        # the measures its pieces reach: up to the one where it ends
        reach = np.searchsorted(bar_starts, bar_starts[measure[crossing]] + end[crossing] - 1,
                                side="right") - 1
        spread = np.zeros(count + 1, dtype=np.int64)
        np.add.at(spread, measure[crossing] + 1, 1)
        np.add.at(spread, reach + 1, -1)
        marked += spread
    needed = np.cumsum(marked)[:count] > 0
    if voices_needed and measure.size > 1:
        key = measure * _SLOT
        reached = np.maximum.accumulate(key + end)
        before = np.concatenate([[-1], reached[:-1]])
        late = key + rel < before
        needed[measure[late]] = True
    return needed


SORT_RULE_ALL = False
SORT_RULE_FLOAT = False


def _music21_offset(units: int) -> Fraction | float:
    """An offset as music21 holds it (``opFrac``): a float when binary fractions say it exactly."""
    exact = Fraction(units, UNIT)
    return float(exact) if exact.denominator & (exact.denominator - 1) == 0 else exact


@lru_cache(maxsize=4096)  # a piece meets the same few offsets in thirds again and again
def _inserted_early(start: int, bar_start: int) -> bool:
    """Whether music21 inserts an element that begins where the measure's notes so far end
    at an offset a little before that end.

    ``Stream.insert`` converts the offset (the element's, less the measure's,
    in Python's mixed arithmetic) to a float before comparing it with the
    measure's exact end: an offset in thirds whose float lies below it
    seems to begin before the end, and the measure is marked unsorted.
    """
    given = Fraction(float(_music21_offset(start) - _music21_offset(bar_start)))
    return given < Fraction(start - bar_start, UNIT)


def _cached_measures(offsets: np.ndarray, durations: np.ndarray, markers: np.ndarray,
                     bar_starts: np.ndarray, bar_lengths: np.ndarray) -> np.ndarray:
    """Which measures have their end time cached when makeTies starts cutting.

    ``makeMeasures`` lays bars until the part's last end time; when that
    falls on a barline and a zero-length element (a tempo change, say) sits
    there, the element lies in no measure and is stored "at the end", which
    asks the part for its end and so caches every measure's.  A measure
    music21 marked unsorted (below) is sorted, and so cleared, before any
    cut: by ``makeVoices``, or by makeTies itself, which begins by looking
    for time signatures through the whole part.
    """
    count = bar_starts.size
    ends = offsets + durations
    last = max(int(ends.max(initial=0)), int(markers.max(initial=0)))
    zero_length = np.concatenate([markers, offsets[durations == 0]])
    at_end = bool((zero_length == last).any())
    if not (at_end and int(bar_starts[-1] + bar_lengths[-1]) == last):
        return np.zeros(count, dtype=bool)
    cached = np.ones(count, dtype=bool)
    # Everything in the order makeMeasures inserts it: by offset, the
    # zero-length elements before the notes there.  A measure is marked
    # sorted or not by its latest insertion alone (makeMeasures asks it for
    # its clef before each insertion, which sorts it), so only each
    # measure's last element decides: unsorted if it begins before what the
    # measure held so far ends, or seems to (_inserted_early).
    start = np.concatenate([markers, offsets])
    end = np.concatenate([markers, ends])
    rank = np.concatenate([np.zeros(markers.size), np.ones(offsets.size)])
    order = np.lexsort((rank, start))
    start, end = start[order], end[order]
    measure = np.clip(np.searchsorted(bar_starts, start, side="right") - 1, 0, count - 1)
    key = measure * _SLOT
    reached = np.maximum.accumulate(key + end - bar_starts[measure])
    before = np.concatenate([[-1], reached[:-1]])
    rel = start - bar_starts[measure]
    late = key + rel < before
    last_of_measure = np.concatenate([measure[1:] != measure[:-1], [True]])
    for i in np.flatnonzero((key + rel == before) & last_of_measure).tolist():
        late[i] = _inserted_early(int(start[i]), int(bar_starts[measure[i]]))
    cached[measure[late & last_of_measure]] = False
    return cached


def track_elements(track: TrackNotes, ticks_per_quarter: int,
                   signatures: list[tuple[int, int]]) -> TrackOrder:
    """The track's notes and chords, with the keys of music21's flattened part.

    ``signatures``: (start, bar length) in UNIT, the first at 0.
    """
    on = track.on.astype(np.int64)
    off = music21_note_offs(on, track.off.astype(np.int64), track.pitch, track.released)
    groups = group_chords(on, off, ticks_per_quarter)
    voices_needed = groups.voices
    first, last = groups.first, groups.last
    length_ticks = off[last] - on[last]
    grace = length_ticks == 0
    tokens = _tokens(groups, track.pitch)

    offsets = quantize_offsets(on[first] / ticks_per_quarter)
    meta = np.asarray(track.meta_ticks, dtype=np.int64)
    others = quantize_offsets(meta / ticks_per_quarter) if meta.size else meta
    onsets = np.unique(np.concatenate([offsets, others]))
    at = np.searchsorted(onsets, offsets, side="right")
    has_next = at < onsets.size
    gap = np.where(has_next, onsets[np.minimum(at, onsets.size - 1)] - offsets, 0)
    with_gap = quantize_durations(length_ticks / ticks_per_quarter, grace, gap)
    without = quantize_durations(length_ticks / ticks_per_quarter, grace, None)
    durations = np.where(has_next, with_gap, without)

    # The part, sorted once quantized: by offset, grace notes first, then as inserted.
    order = np.lexsort((np.arange(first.size), ~grace, offsets))
    offsets, durations, grace, tokens = offsets[order], durations[order], grace[order], tokens[order]
    markers = np.concatenate([others, quantize_offsets(
        np.asarray(track.conductor_ticks, dtype=np.int64) / ticks_per_quarter)])
    # makeMeasures lays bars until the last end time of anything in the part
    last_time = int(max((offsets + durations).max(initial=0), markers.max(initial=0)))
    bar_starts, bar_lengths = _bars(signatures, last_time)
    measure = np.searchsorted(bar_starts, offsets, side="right") - 1
    rel = offsets - bar_starts[measure]
    needed = _needs_measures(measure, rel, rel + durations, bar_starts, bar_lengths,
                             voices_needed)
    cached = _cached_measures(offsets, durations, markers, bar_starts, bar_lengths)

    simulated: dict[int, Measure] = {}
    chosen = np.flatnonzero(needed[measure])
    for number, token, at, length, is_grace in zip(
            measure[chosen].tolist(), tokens[chosen].tolist(), rel[chosen].tolist(),
            durations[chosen].tolist(), grace[chosen].tolist(), strict=True):
        held = simulated.get(number)
        if held is None:
            held = simulated[number] = Measure(int(bar_starts[number]), int(bar_lengths[number]))
        held.insert(held.level, Element(token, at, length, is_grace))
    # the measures holding a zero-length element after their start
    marked = np.zeros(bar_starts.size, dtype=bool)
    if markers.size:
        at_bar = np.clip(np.searchsorted(bar_starts, markers, side="right") - 1,
                         0, bar_starts.size - 1)
        marked[at_bar[markers > bar_starts[at_bar]]] = True
    for number, held in simulated.items():
        held.first_end = held.level_end
        if voices_needed and held.overlapped:
            make_voices(held, not marked[number])

    def bar_length(number: int) -> int:
        return int(bar_lengths[min(number, bar_lengths.size - 1)])

    tie(simulated, bar_length)
    lengths = bar_lengths.copy()
    for number, held in simulated.items():
        if number < lengths.size:
            lengths[number] = reported_length(held, bool(cached[number]))
    starts = np.concatenate([[0], np.cumsum(lengths)])

    plain = ~needed[measure]
    offset_list, grace_list, position_list, token_list = [], [], [], []
    for number, held in simulated.items():
        start = int(starts[min(number, lengths.size)])
        place = number * _SLOT
        for container in [*(held.voices or []), held.level]:
            for element in sorted_elements(container):
                offset_list.append(start + element.offset)
                grace_list.append(not element.grace)
                position_list.append(place)
                token_list.append(element.token)
                place += 1
    held_tokens = np.empty(len(token_list), dtype=object)
    held_tokens[:] = token_list
    return TrackOrder(
        np.concatenate([starts[measure[plain]] + rel[plain], offset_list]).astype(np.int64),
        np.concatenate([~grace[plain], grace_list]).astype(bool),
        np.concatenate([measure[plain] * _SLOT + np.flatnonzero(plain), position_list]
                       ).astype(np.int64),
        np.concatenate([tokens[plain], held_tokens]))
