"""The fast MIDI tokenizer: symusic reads the notes, numpy and ``fastnotes`` do music21's work.

It gives the tokens ``parse.tokens_of_score`` gives for a MIDI file, without
music21: the same piano parts, notes, chords, ties and order.  Which tracks
are piano is music21's rule for MIDI files (``instrument.partitionByInstrument``
over the instruments ``midi.translate`` makes of each track):

* a track's notes belong to its last instrument event (all at tick 0 here):
  its program change if it has one, else its track name;
* a program change names the part after the General MIDI instrument
  (programs 1-6 are "Piano" or "Electric Piano"); a track name that
  music21 knows as a piano names the part after the name itself;
* tracks whose parts share a name are one part, their notes merged by
  offset; parts come in the order their names first appear; the parts
  whose name holds "Piano" give the tokens, one part after another.

A file this module cannot vouch for (an instrument change after tick 0, a
track on several channels or on the drum channel, a program outside the
pianos, a track name music21 might read otherwise, no piano part at all) is
``Unsupported``: the caller asks music21 instead, so no file is ever given
tokens the reference would not give.  ``midifile.check_midi`` has read every
event before symusic sees a byte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cadenza.train.fastnotes import (
    UNIT,
    TrackNotes,
    TrackOrder,
    quantize_offsets,
    track_elements,
)
from cadenza.train.midifile import MidiLayout, TrackFacts

#: Bumped whenever this module turns the same file into different tokens.
#: 2: music21's stale measure ends followed as its caches fill and clear.
#: 3: a note-off right after its note-on, at the same tick, ends that note there.
FAST_VERSION = 3
PIANO_MARK = "Piano"
DRUM_CHANNEL = 9  # channel 10, 0-based: music21 reads its notes as unpitched
#: music21's instrument for General MIDI programs 1-6 (0-based here).
PIANO_PROGRAMS = {0: "Piano", 1: "Piano", 2: "Electric Piano", 3: "Piano",
                  4: "Electric Piano", 5: "Electric Piano"}
FOUR_FOUR = (4, 4)


class Unsupported(Exception):
    """A file whose reading by music21 this tokenizer does not reproduce; the message says why."""


@dataclass(frozen=True)
class _Part:
    key: str  # the name music21 gives the part this track's notes land in
    names: tuple[str, ...]  # every part name the track creates, in order


def _decoded(name: str) -> str:
    # music21 keeps what comes before a NUL (MuseScore writes them) and strips it.
    return name.split("\x00")[0].strip()


def _known_piano(name: str) -> bool:
    # music21's instrument.fromString finds a piano in any name with the word
    # in it; other names it may or may not know, so they are not guessed at.
    return "piano" in name.lower().split()


def _part_of(number: int, facts: TrackFacts) -> _Part:
    events = facts.instruments
    if any(tick != 0 for tick, _, _ in events):
        raise Unsupported(f"track {number}: an instrument event after the start")
    kinds = [kind for _, kind, _ in events]
    if "instrument" in kinds or len(kinds) != len(set(kinds)) or kinds == ["program", "name"]:
        raise Unsupported(f"track {number}: instrument events {kinds}")
    named = {kind: value for _, kind, value in events}
    name = _decoded(str(named["name"])) if "name" in named else None
    if "program" in named:
        program = int(named["program"])
        if program not in PIANO_PROGRAMS:
            raise Unsupported(f"track {number}: program {program + 1} is no piano")
        key = PIANO_PROGRAMS[program]
        # A name music21 knows is an instrument (and a part) of its own.
        names = (name, key) if name and _known_piano(name) else (key,)
        return _Part(key, names)
    if name and _known_piano(name):
        return _Part(name, (name,))
    raise Unsupported(f"track {number}: no program change, and its name {name!r} says no piano")


def _signatures(facts: list[TrackFacts], own: TrackFacts, ticks_per_quarter: int
                ) -> list[tuple[int, int]]:
    """(start, bar length) in UNIT, as music21 lays out this track's measures.

    The signatures of the tracks without notes (music21's conductor part)
    if there are any, else the track's own; quantized as music21 quantizes
    every offset; 4/4 from the start unless a signature is there.
    """
    conductor = [s for f in facts if not f.has_notes for s in f.time_signatures]
    if conductor and own.time_signatures:
        raise Unsupported("time signatures both in a note track and in the conductor")
    found = sorted(conductor or own.time_signatures, key=lambda s: s[0])
    ticks = np.asarray([tick for tick, _, _ in found], dtype=np.int64)
    starts = quantize_offsets(ticks / ticks_per_quarter).tolist() if found else []
    signatures: dict[int, tuple[int, int]] = {}
    for start, (_, numerator, denominator) in zip(starts, found, strict=True):
        signatures[start] = (numerator, denominator)  # the later one at an offset wins
    if 0 not in signatures:
        if found and not conductor:
            raise Unsupported("the track's own time signatures begin after its start")
        signatures[0] = FOUR_FOUR
    out = []
    for start in sorted(signatures):
        numerator, denominator = signatures[start]
        length, rest = divmod(numerator * 4 * UNIT, denominator)
        if rest or length <= 0:
            raise Unsupported(f"time signature {numerator}/{denominator}")
        out.append((start, length))
    return out


def _check_track(number: int, facts: TrackFacts) -> None:
    if len(facts.channels) > 1:
        # symusic splits such a track by channel and loses the order across them.
        raise Unsupported(f"track {number}: notes on {len(facts.channels)} channels")
    if DRUM_CHANNEL in facts.channels:
        raise Unsupported(f"track {number}: notes on the drum channel")


def _released(number: int, facts: TrackFacts, on: np.ndarray, pitch: np.ndarray
              ) -> np.ndarray | None:
    """Which notes music21 ends at their own onset: a note-off right after the note-on."""
    if not facts.released_at_strike:
        return None
    span = 128
    keys = on * span + pitch
    marked = np.unique([tick * span + p for tick, p in facts.released_at_strike])
    released = np.isin(keys, marked)
    # One note of the pitch at that tick, as symusic read it: with two, which
    # one the off follows is lost; with none, symusic dropped the note.
    struck = np.unique(keys[released], return_counts=True)
    if struck[0].size != marked.size or (struck[1] > 1).any():
        raise Unsupported(f"track {number}: a pitch struck and released at one tick beside "
                          "another note-on of it")
    return released


def _score_tokens(music: bytes, facts: list[TrackFacts]) -> list[str]:
    """The one sequence of one score (a file, or one pattern of a format-2 file)."""
    import symusic

    score = symusic.Score.from_midi(music, sanitize_data=True)
    per_quarter = int(score.ticks_per_quarter)
    note_tracks = [(n, f) for n, f in enumerate(facts, 1) if f.has_notes]
    read = [t for t in score.tracks if t.note_num() > 0]
    if len(read) != len(note_tracks):
        raise Unsupported(f"symusic read {len(read)} tracks with notes, music21 would make "
                          f"{len(note_tracks)} parts")
    parts: dict[str, list[TrackOrder]] = {}
    conductor = tuple(tick for f in facts if not f.has_notes
                      for tick in (*f.meta_ticks, *(t for t, _, _ in f.time_signatures)))
    order: list[str] = []
    for (number, track_facts), track in zip(note_tracks, read, strict=True):
        _check_track(number, track_facts)
        part = _part_of(number, track_facts)
        for name in part.names:
            if name not in order:
                order.append(name)
        notes = track.notes.numpy()
        on = notes["time"].astype(np.int64)
        meta = tuple(t for t, _, _ in track_facts.instruments) + track_facts.meta_ticks + tuple(
            t for t, _, _ in track_facts.time_signatures)
        pitch = notes["pitch"].astype(np.int64)
        elements = track_elements(
            TrackNotes(on, on + notes["duration"].astype(np.int64), pitch, meta, conductor,
                       _released(number, track_facts, on, pitch)),
            per_quarter, _signatures(facts, track_facts, per_quarter))
        parts.setdefault(part.key, []).append(elements)
    piano = [key for key in order if key in parts and PIANO_MARK in key]
    if not piano:
        raise Unsupported("no piano part (music21 would read every part, and chordify them)")
    return [t for key in piano for t in _merged(parts[key])]


def _merged(tracks: list[TrackOrder]) -> list[str]:
    """music21's part of several tracks: by offset, grace first, then track by track."""
    track = np.concatenate([np.full(t.offset.size, n) for n, t in enumerate(tracks)])
    offset = np.concatenate([t.offset for t in tracks])
    not_grace = np.concatenate([t.not_grace for t in tracks])
    position = np.concatenate([t.position for t in tracks])
    tokens = np.concatenate([t.tokens for t in tracks])
    return tokens[np.lexsort((position, track, not_grace, offset))].tolist()


def fast_sequences(layout: MidiLayout) -> list[list[str]]:
    """Token sequences of a checked MIDI file, as the music21 path gives them.

    ``Unsupported`` when the file is one to leave to music21.
    """
    if len(layout.facts) != len(layout.tracks):
        raise ValueError("the layout's tracks were not checked (use midifile.check_midi)")
    musics = layout.music()
    # A format-2 file's patterns are scores of their own (MidiLayout.music).
    groups = [[f] for f in layout.facts] if layout.format == 2 else [list(layout.facts)]
    return [_score_tokens(music, facts) for music, facts in zip(musics, groups, strict=True)]
