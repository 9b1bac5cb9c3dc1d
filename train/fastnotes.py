"""One MIDI track's notes -> the notes and chords music21 makes of them, in its order.

music21's ``midi.translate.midiTrackToStream`` does this in five steps, each
reproduced here on plain arrays (ticks as integers, quantized times as
integers of ``UNIT`` per quarter note, so that no float decides a barline):

1. pair: each note-on ends at the first later note-off of its pitch, even one
   that already ended another note (symusic pairs first-in first-out; the
   difference is repaired from the note-offs symusic kept);
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

The order is the one music21's part, flattened, iterates: by offset, a
zero-length (grace) note first, then by where each element was inserted,
which the tied pieces and the voices decide.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class _Measure:
    start: int
    length: int
    level: list[Element] = field(default_factory=list)  # elements outside voices
    voices: list[list[Element]] | None = None
    counter: int = 0
    # For music21's stale end time (see ``_reported_lengths``):
    received: bool = False  # makeTies put a piece straight into this measure
    chord_cut: bool = False
    note_cut: bool = False
    first_end: int = 0  # its end time before makeTies cut anything
    # Kept as elements arrive, so that most measures need no second look:
    level_end: int = 0  # the latest end among the elements outside voices
    overlapped: bool = False  # one of them began before an earlier one ended

    def insert(self, container: list[Element], element: Element) -> None:
        self.counter += 1
        element.rank = self.counter
        container.append(element)
        if container is self.level:
            self.overlapped = self.overlapped or element.offset < self.level_end
            self.level_end = max(self.level_end, element.end)


class _Voice(list):
    """A voice's elements, and what music21's cached end time of it went through."""

    first_end = 0  # its end time when makeVoices made it
    cached = False  # whether music21 had its end time cached when makeVoices was done
    chord_cut = False
    note_cut = False
    received = False


def _sorted(elements: list[Element]) -> list[Element]:
    return sorted(elements, key=lambda e: (e.offset, not e.grace, e.rank))


def _voice_count(notes: list[Element]) -> int:
    """The largest group of ``Stream.getOverlaps``, as ``makeVoices`` counts it."""
    spans = [(e.offset, e.end) for e in notes]
    overlap: list[list[int]] = [[] for _ in notes]
    for i in range(len(spans)):
        for j in range(i + 1, len(spans)):
            first, second = sorted((spans[i], spans[j]))
            if second[0] < first[1]:
                overlap[i].append(j)
                overlap[j].append(i)
            else:
                break
    groups: dict[int, list[int]] = {}
    home: dict[int, int] = {}  # element -> the group key it was stored under
    for i, indices in enumerate(overlap):
        if not indices:
            continue
        destination = None
        for j in sorted(indices):
            if j in home:
                destination = home[j]
                continue
            if destination is None:
                destination = notes[i].offset
            groups.setdefault(destination, []).append(j)
            home[j] = destination
        if i not in home:
            if destination is None:
                destination = notes[i].offset
            groups.setdefault(destination, []).append(i)
            home[i] = destination
    return max([len(g) for g in groups.values()] + [1])


def _make_voices(measure: _Measure, only_marks_at_start: bool) -> None:
    """``makeVoices`` on one measure.

    ``only_marks_at_start``: whether every other element of the measure (a
    tempo, a key...) lies at its start, which decides what music21 caches.
    """
    notes = _sorted(measure.level)
    count = _voice_count(notes)
    if count == 1:
        return
    voices: list[list[Element]] = [_Voice() for _ in range(count)]
    highest = [0] * count
    # music21 asks each voice for its end time, in turn, until one is free;
    # asking caches it, inserting clears it: a voice is left cached when a
    # later note was placed past it (or found none free).
    cached = [False] * count
    for element in notes:
        for number in range(count):
            if highest[number] <= element.offset:
                voices[number].append(element)
                highest[number] = max(highest[number], element.end)
                cached[number] = False
                break
            cached[number] = True
        # else: no voice is free; music21 drops the note
    for voice, was_cached in zip(voices, cached, strict=True):
        voice.cached = was_cached
    made = [v for v in voices if v]
    if only_marks_at_start and len(made) > 1:
        # The voices go into the measure one by one.  The measure is sorted
        # and ends at 0 when the first arrives, so it stays sorted, and the
        # second's insertion asks it for its end time: the first voice's is
        # cached.  (Anything after the start leaves the measure unsorted.)
        made[0].cached = True
    measure.level = []
    measure.level_end = 0
    measure.voices = made
    for voice in measure.voices:
        voice.first_end = max(e.end for e in voice)
        for element in voice:
            measure.counter += 1
            element.rank = measure.counter


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


def _split(element: Element, within: int) -> tuple[Element, Element]:
    rest = Element(element.token, 0, element.duration - within, False)
    element.duration = within
    return element, rest


def _tie(measures: dict[int, _Measure], bar_length: Callable[[int], int]) -> None:
    """``makeTies``: cut what crosses each barline; the rest goes to the next measure.

    ``measures``: by number, every measure that holds a crossing element or
    receives a piece of one (the others pass through makeTies untouched).
    """
    pending = sorted(measures)
    while pending:
        number = pending.pop(0)
        measure = measures[number]
        following = measures.get(number + 1)
        if following is None:
            following = _Measure(measure.start + measure.length, bar_length(number + 1))
        appended = number + 1 in measures
        next_has_voices = following.voices is not None
        has_voices = measure.voices is not None
        if not has_voices and measure.level_end <= measure.length:
            continue  # nothing crosses this barline
        bundle = measure.voices if has_voices else [measure.level]
        moved_into = None
        for container in bundle:
            for element in _sorted(container):
                over = element.end - measure.length
                if over <= 0 or element.offset >= measure.length:
                    continue
                # A cut chord leaves the stale end time of its container.
                cut = container if has_voices else measure
                is_chord = "." in element.token or element.token.isdigit()
                if is_chord and element.end - measure.length <= following.length:
                    cut.chord_cut = True
                else:
                    # (a chord cut again in the next measure clears this one's
                    # cache as a note's cut does: seen, not yet explained)
                    cut.note_cut = True
                _, rest = _split(element, measure.length - element.offset)
                if next_has_voices:
                    # music21 looks the voice up by an id that no voice of
                    # the next measure has (ids are object addresses), so
                    # the piece lands outside its voices.
                    destination = following.voices[0] if not has_voices else following.level
                    if destination is following.level:
                        # Inserting into a sorted measure asks it for its end
                        # time, which asks (and caches) each of its voices'.
                        for voice in following.voices:
                            voice.cached = True
                elif has_voices:
                    # moveNotesToVoices: the next measure's notes become one voice
                    # (music21 decided "no voices there" before the loop, so a
                    # second piece adds a second, empty, voice and joins the first.)
                    moved = _sorted(following.level)
                    following.level = []
                    following.level_end = 0
                    following.voices = following.voices or []
                    following.voices.append(_Voice())
                    for e in moved:
                        following.insert(following.voices[-1], e)
                    destination = following.voices[0]
                    moved_into = destination
                else:
                    destination = following.level
                following.insert(destination, rest)
                if destination is following.level or destination is moved_into:
                    following.received = True
                elif isinstance(destination, _Voice):
                    destination.received = True
                if not appended:
                    measures[number + 1] = following
                    bisect.insort(pending, number + 1)
                    appended = True
    for measure in measures.values():
        _flatten_unnecessary_voices(measure)


def _flatten_unnecessary_voices(measure: _Measure) -> None:
    if measure.voices is None:
        return
    voices = [v for v in measure.voices if v]
    if len(voices) == 1:
        for element in _sorted(voices[0]):
            measure.insert(measure.level, element)
        voices = []
    measure.voices = voices or None


def _covered(elements: list[Element]) -> bool:
    """Whether the elements leave no gap from the measure's start (``findGaps`` finds none)."""
    reached = 0
    for element in _sorted(elements):
        if element.offset > reached:
            return False
        reached = max(reached, element.end)
    return True


def _reported_length(measure: _Measure, cached: bool) -> int:
    """How long music21 takes a measure to be when it lays the measures end to end.

    ``makeRests`` places every measure where the one before it ends, by the
    measure's cached ``highestTime``.  ``makeTies`` cuts a chord without
    telling the measure (``Chord.duration``'s setter informs no site, a
    note's does), so a measure whose end time was cached before the cut,
    whose only cuts are chords, that received no piece and that ``makeRests``
    leaves alone (no gap to fill) keeps the end time it had before the cut:
    the next measure, and all after it, start that much later than the
    barline.  ``cached``: whether the measure's end time was cached then
    (see ``track_elements``).  A voice is cached whenever makeVoices made it.
    """
    if measure.voices:
        # makeRests fills each voice, or leaves a voice's stale end time be;
        # the measure is as long as its longest voice, or its bar.
        return max([measure.length, *(e.end for e in measure.level)]
                   + [v.first_end for v in measure.voices if _stale(v)])
    if cached and _stale(measure, measure.level):
        return max(measure.first_end, measure.length)
    return measure.length


def _stale(holder: _Measure | _Voice, elements: list[Element] | None = None) -> bool:
    if isinstance(holder, _Voice) and not holder.cached:
        return False
    return (holder.chord_cut and not holder.note_cut and not holder.received
            and _covered(holder if elements is None else elements))


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


def _cached_measures(offsets: np.ndarray, durations: np.ndarray, markers: np.ndarray,
                     bar_starts: np.ndarray, bar_lengths: np.ndarray, voices_needed: bool
                     ) -> np.ndarray:
    """Which measures have their end time cached when makeTies starts cutting.

    ``makeMeasures`` lays bars until the part's last end time; when that
    falls on a barline and a zero-length element (a tempo change, say) sits
    there, the element lies in no measure and is stored "at the end", which
    asks the part for its end and so caches every measure's.  In a track
    that needs voices, ``makeVoices`` then sorts, and so clears, each measure
    music21 marked unsorted (below), and each measure it splits into voices.
    """
    count = bar_starts.size
    ends = offsets + durations
    last = max(int(ends.max(initial=0)), int(markers.max(initial=0)))
    zero_length = np.concatenate([markers, offsets[durations == 0]])
    at_end = bool((zero_length == last).any())
    if not (at_end and int(bar_starts[-1] + bar_lengths[-1]) == last):
        return np.zeros(count, dtype=bool)
    cached = np.ones(count, dtype=bool)
    if voices_needed:
        # Everything in the order makeMeasures inserts it: by offset, the
        # zero-length elements before the notes there.  A stream is marked
        # sorted or not by its latest insertion alone (music21's insert sets
        # the flag anew), so only each measure's last element decides.
        start = np.concatenate([markers, offsets])
        end = np.concatenate([markers, ends])
        rank = np.concatenate([np.zeros(markers.size), np.ones(offsets.size)])
        order = np.lexsort((rank, start))
        start, end = start[order], end[order]
        measure = np.clip(np.searchsorted(bar_starts, start, side="right") - 1, 0, count - 1)
        key = measure * _SLOT
        reached = np.maximum.accumulate(key + end - bar_starts[measure])
        before = np.concatenate([[-1], reached[:-1]])
        late = key + start - bar_starts[measure] < before
        last_of_measure = np.concatenate([measure[1:] != measure[:-1], [True]])
        cached[measure[late & last_of_measure]] = False
    return cached


def track_elements(track: TrackNotes, ticks_per_quarter: int,
                   signatures: list[tuple[int, int]]) -> TrackOrder:
    """The track's notes and chords, with the keys of music21's flattened part.

    ``signatures``: (start, bar length) in UNIT, the first at 0.
    """
    on = track.on.astype(np.int64)
    off = music21_note_offs(on, track.off.astype(np.int64), track.pitch)
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
    cached = _cached_measures(offsets, durations, markers, bar_starts, bar_lengths,
                              voices_needed)

    simulated: dict[int, _Measure] = {}
    chosen = np.flatnonzero(needed[measure])
    for number, token, at, length, is_grace in zip(
            measure[chosen].tolist(), tokens[chosen].tolist(), rel[chosen].tolist(),
            durations[chosen].tolist(), grace[chosen].tolist(), strict=True):
        held = simulated.get(number)
        if held is None:
            held = simulated[number] = _Measure(int(bar_starts[number]), int(bar_lengths[number]))
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
            _make_voices(held, not marked[number])

    def bar_length(number: int) -> int:
        return int(bar_lengths[min(number, bar_lengths.size - 1)])

    _tie(simulated, bar_length)
    lengths = bar_lengths.copy()
    for number, held in simulated.items():
        if number < lengths.size:
            lengths[number] = _reported_length(held, bool(cached[number]))
    starts = np.concatenate([[0], np.cumsum(lengths)])

    plain = ~needed[measure]
    offset_list, grace_list, position_list, token_list = [], [], [], []
    for number, held in simulated.items():
        start = int(starts[min(number, lengths.size)])
        place = number * _SLOT
        for container in [*(held.voices or []), held.level]:
            for element in _sorted(container):
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
