"""Steps 4 and 5 of ``fastnotes``, one measure at a time: voices, ties, and stale end times.

Only the measures where music21's steps change something (an element
across a barline, a piece of one arriving, notes that overlap) are
simulated here, element by element:

* ``make_voices``: ``Measure.makeVoices``, first fit;
* ``tie``: ``makeTies``, each crossing element cut at the barline and the
  rest inserted into the next measure (where music21 inserts it);
* ``reported_length``: how long ``makeRests`` then takes the measure to be.
  music21 lays the measures end to end by their *cached* end times, and
  ``Chord.duration``'s setter informs no site, so a container whose end
  time was cached before a chord in it was cut keeps the old end, and
  every later measure of the track starts that much after its barline.
  Which containers had their end cached then is followed here as music21
  fills and clears its caches (docs/training.md, "Where music21 is
  inconsistent").
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from cadenza.train.fastgroups import UNIT, Element


@dataclass
class Measure:
    """One measure's elements (UNIT, from its start), and what its cached end time went through."""

    start: int
    length: int
    level: list[Element] = field(default_factory=list)  # elements outside voices
    voices: list[list[Element]] | None = None
    counter: int = 0
    # For music21's stale end time (see ``reported_length``):
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


class Voice(list):
    """A voice's elements, and what music21's cached end time of it went through."""

    first_end = 0  # its end time when makeVoices made it
    cached = False  # whether music21's end time of it is cached when makeTies cuts
    chord_cut = False
    note_cut = False
    received = False


def sorted_elements(elements: list[Element]) -> list[Element]:
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


def make_voices(measure: Measure, only_marks_at_start: bool) -> None:
    """``makeVoices`` on one measure.

    ``only_marks_at_start``: whether every other element of the measure (a
    tempo, a key...) lies at its start, which decides what music21 caches.
    """
    notes = sorted_elements(measure.level)
    count = _voice_count(notes)
    if count == 1:
        return
    voices: list[list[Element]] = [Voice() for _ in range(count)]
    highest = [0] * count
    # music21 asks each voice for its end time, in turn, until one is free;
    # asking caches it, inserting clears it: a voice is left cached when a
    # later note was placed past it (or found none free).
    cached = [False] * count
    unsorted = [False] * count
    for element in notes:
        for number in range(count):
            if highest[number] <= element.offset:
                if highest[number] == element.offset and _float_below(element.offset):
                    # it seems to begin before the voice's end: the voice
                    # is marked unsorted (see _float_below)
                    unsorted[number] = True
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
    for voice, was_unsorted in zip(voices, unsorted, strict=True):
        # makeTies begins by looking for time signatures through the whole
        # part, which sorts, and so clears, every stream marked unsorted.
        voice.cached = voice.cached and not was_unsorted
    measure.level = []
    measure.level_end = 0
    measure.voices = made
    for voice in measure.voices:
        voice.first_end = max(e.end for e in voice)
        for element in voice:
            measure.counter += 1
            element.rank = measure.counter


def _float_below(units: int) -> bool:
    """Whether an offset, as the float ``Stream.insert`` makes of it, lies below its exact value.

    ``insert`` compares that float with the stream's exact end (a Fraction,
    in thirds): an element in thirds that begins exactly where the stream
    ends, say 4/3 after 0 + 4/3, seems to begin before it when its float
    (1.3333333333333333) is the smaller, and the stream is marked unsorted.
    """
    # Exactly Fraction(float(x)) < x for x = units / UNIT, in integers:
    # int / int is correctly rounded, as float(Fraction) is.
    numerator, denominator = (units / UNIT).as_integer_ratio()
    return numerator * UNIT < units * denominator


def _split(element: Element, within: int) -> tuple[Element, Element]:
    rest = Element(element.token, 0, element.duration - within, False)
    element.duration = within
    return element, rest


def tie(measures: dict[int, Measure], bar_length: Callable[[int], int]) -> None:
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
            following = Measure(measure.start + measure.length, bar_length(number + 1))
        appended = number + 1 in measures
        next_has_voices = following.voices is not None
        has_voices = measure.voices is not None
        if not has_voices and measure.level_end <= measure.length:
            continue  # nothing crosses this barline
        bundle = measure.voices if has_voices else [measure.level]
        moved_into = None
        for container in bundle:
            for element in sorted_elements(container):
                over = element.end - measure.length
                if over <= 0 or element.offset >= measure.length:
                    continue
                # A cut chord may leave its container a stale end time; a
                # cut note clears the container's (see reported_length).
                cut = container if has_voices else measure
                if "." in element.token or element.token.isdigit():
                    cut.chord_cut = True
                else:
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
                    moved = sorted_elements(following.level)
                    following.level = []
                    following.level_end = 0
                    following.voices = following.voices or []
                    following.voices.append(Voice())
                    for e in moved:
                        following.insert(following.voices[-1], e)
                    destination = following.voices[0]
                    moved_into = destination
                else:
                    destination = following.level
                following.insert(destination, rest)
                if destination is following.level or destination is moved_into:
                    following.received = True
                elif isinstance(destination, Voice):
                    destination.received = True
                if not appended:
                    measures[number + 1] = following
                    bisect.insort(pending, number + 1)
                    appended = True
    for measure in measures.values():
        _flatten_unnecessary_voices(measure)


def _flatten_unnecessary_voices(measure: Measure) -> None:
    if measure.voices is None:
        return
    voices = [v for v in measure.voices if v]
    if len(voices) == 1:
        for element in sorted_elements(voices[0]):
            measure.insert(measure.level, element)
        voices = []
    measure.voices = voices or None


def _covered(elements: list[Element]) -> bool:
    """Whether the elements leave no gap from the measure's start (``findGaps`` finds none)."""
    reached = 0
    for element in sorted_elements(elements):
        if element.offset > reached:
            return False
        reached = max(reached, element.end)
    return True


def reported_length(measure: Measure, cached: bool) -> int:
    """How long music21 takes a measure to be when it lays the measures end to end.

    ``makeRests`` places every measure where the one before it ends, by the
    measure's cached ``highestTime``.  ``makeTies`` cuts a chord without
    telling the measure (``Chord.duration``'s setter informs no site, a
    note's does), so a measure whose end time was cached before the cut,
    whose only cuts are chords, that received no piece and that ``makeRests``
    leaves alone (no gap to fill) keeps the end time it had before the cut:
    the next measure, and all after it, start that much later than the
    barline.  ``cached``: whether the measure's end time was cached then
    (``fastnotes._cached_measures``); a voice's is ``Voice.cached``, which
    ``make_voices`` and ``tie`` decide.
    """
    if measure.voices:
        # makeRests fills each voice, or leaves a voice's stale end time be;
        # the measure is as long as its longest voice, or its bar.
        return max([measure.length, *(e.end for e in measure.level)]
                   + [v.first_end for v in measure.voices if _stale(v)])
    if cached and _stale(measure, measure.level):
        return max(measure.first_end, measure.length)
    return measure.length


def _stale(holder: Measure | Voice, elements: list[Element] | None = None) -> bool:
    """Whether the holder keeps its end time from before a chord in it was cut."""
    if isinstance(holder, Voice) and not holder.cached:
        return False
    return (holder.chord_cut and not holder.note_cut and not holder.received
            and _covered(holder if elements is None else elements))
