"""Calls cut from whole pieces, for ``cadenza evaluate``.

A piece is read as the engine would hear it played: every track merged,
channel 10 (unpitched percussion) left out, and its notes grouped into
onsets by the engine's own chord window (``ChordGrouper``), so an onset here
is exactly one token the engine would take in.  A call is ``length``
consecutive onsets; its continuation is the ``length`` onsets the piece
really plays next.

The call is played into the engine with its own timing, with one change:
every silence in it is shortened to at most ``max_gap`` seconds, so the
engine's pause rule (an answer starts after ``pause_beats`` of silence)
fires once, after the last note of the call, and never inside it.  Notes
still sounding when the continuation starts are released there: what the
player held over belongs to what came next.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import mido

from cadenza.errors import DataError
from cadenza.files import is_midi_name, midi_files_under, read_midi
from cadenza.live.engine.chords import ChordGrouper
from cadenza.live.engine.events import is_note_on

log = logging.getLogger(__name__)

PERCUSSION = 9  # channel 10, counted from zero
DEFAULT_TEMPO = 500_000  # microseconds a beat (120 BPM) until a file sets one
MIN_LENGTH = 0.001  # seconds: a note released at its own onset still sounds this long


@dataclass(frozen=True)
class Onset:
    """Notes struck within one chord window: one token of the engine's."""

    time: float  # seconds, the first note's
    notes: tuple[int, ...]  # distinct MIDI numbers, low to high
    ends: tuple[float, ...]  # when each of ``notes`` is released (seconds)
    velocity: int


@dataclass(frozen=True)
class Piece:
    path: str
    onsets: tuple[Onset, ...]


@dataclass(frozen=True)
class Call:
    """``onsets`` of a piece from ``start``, what really came next, and how to play it."""

    piece: str
    ordinal: int  # which call of its piece (0, 1, ...)
    start: int  # index of its first onset in the piece
    onsets: tuple[Onset, ...]
    continuation: tuple[Onset, ...]
    messages: tuple[tuple[float, mido.Message], ...]  # the call as played into the engine


def find_midi_files(sources: Iterable[str | Path]) -> list[Path]:
    """The MIDI files of each source: a file as given, a folder searched
    recursively (sorted by relative path), sources in the order given."""
    files: list[Path] = []
    for source in sources:
        root = Path(source).expanduser()
        if root.is_file():
            if not is_midi_name(root):
                raise DataError(f"{root}: not a .mid or .midi file")
            files.append(root)
            continue
        if not root.is_dir():
            raise DataError(f"{root}: no such MIDI file or folder")
        found = midi_files_under(root)
        if not found:
            raise DataError(f"{root}: no .mid or .midi files in this folder")
        files.extend(found)
    return files


def note_messages(path: str | Path) -> list[tuple[float, bool, int, int, int]]:
    """``(seconds, on, channel, note, velocity)`` of every note message of a
    MIDI file, all tracks merged as mido merges them (by tick, then track),
    percussion and a "Cadenza" track (a recorded duet) left out.

    ``read_performance`` does the same for every message, copying each one;
    reading only the notes makes a corpus several times faster to read.
    """
    midi = read_midi(path)
    found: list[tuple[int, int, object]] = []  # (tick, tempo or -1, message)
    for track in midi.tracks:
        if any(m.type == "track_name" and m.name.strip() == "Cadenza" for m in track):
            continue
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                found.append((tick, message.tempo, message))
            elif message.type in ("note_on", "note_off") and message.channel != PERCUSSION:
                found.append((tick, -1, message))
    found.sort(key=lambda item: item[0])  # stable: a tie keeps track order, as mido's merge
    tempo, last_tick, now = DEFAULT_TEMPO, 0, 0.0
    out = []
    for tick, new_tempo, message in found:
        now += mido.tick2second(tick - last_tick, midi.ticks_per_beat, tempo)
        last_tick = tick
        if new_tempo >= 0:
            tempo = new_tempo
            continue
        on = is_note_on(message)
        out.append((now, on, message.channel, message.note, message.velocity))
    return out


def read_piece(path: str | Path, chord_window_ms: float) -> Piece:
    """A MIDI file as onsets (raises ``MidiFileError`` for an unreadable file)."""
    messages = note_messages(path)
    end = messages[-1][0] if messages else 0.0
    starts: dict[tuple[int, int], deque[int]] = defaultdict(deque)
    notes: list[list] = []  # [time, note, velocity, end]
    for time, on, channel, note, velocity in messages:
        key = (channel, note)
        if on:
            starts[key].append(len(notes))
            notes.append([time, note, velocity, None])
        elif starts[key]:
            # The earliest open note of that key ends first, as a keyboard releases it.
            notes[starts[key].popleft()][3] = time
    for note in notes:
        if note[3] is None:  # never released: it sounds to the end of the file
            note[3] = max(end, note[0])
    return Piece(str(path), tuple(_group(notes, chord_window_ms)))


def _group(notes: Sequence[list], chord_window_ms: float) -> list[Onset]:
    grouper = ChordGrouper(chord_window_ms)
    ends: dict[float, dict[int, float]] = {}
    onsets: list[Onset] = []

    def close(group) -> None:
        if group is None:
            return
        released = ends.pop(group.time)
        pitches = tuple(sorted(set(group.notes)))
        onsets.append(Onset(group.time, pitches, tuple(released[n] for n in pitches),
                            group.velocity))

    for time, note, velocity, end in notes:
        close(grouper.note_on(note, velocity, time))
        opened = grouper.pending
        held = ends.setdefault(opened.time, {})
        held[note] = max(held.get(note, end), end)  # a doubled note lasts as its longer copy
    close(grouper.close())
    return onsets


def call_starts(onset_count: int, length: int, per_piece: int) -> list[int]:
    """Where a piece's calls begin: ``per_piece`` evenly spaced positions (the
    centres of equal stretches), each leaving room for its continuation."""
    last = onset_count - 2 * length  # the latest start with a whole continuation
    if last < 0 or per_piece < 1:
        return []
    return sorted({round((k + 0.5) * last / per_piece) for k in range(per_piece)})


def cut_calls(piece: Piece, length: int, per_piece: int, max_gap: float) -> list[Call]:
    calls = []
    for ordinal, start in enumerate(call_starts(len(piece.onsets), length, per_piece)):
        onsets = piece.onsets[start : start + length]
        continuation = piece.onsets[start + length : start + 2 * length]
        messages = call_messages(onsets, continuation[0].time, max_gap)
        calls.append(Call(piece.path, ordinal, start, onsets, continuation, messages))
    return calls


def call_messages(
    onsets: Sequence[Onset], release_by: float, max_gap: float
) -> tuple[tuple[float, mido.Message], ...]:
    """The call's note-ons and note-offs from time zero, each silence (no key
    down, as the engine counts keys) cut to at most ``max_gap`` seconds."""
    raw: list[tuple[float, int, mido.Message]] = []
    for onset in onsets:
        for note, end in zip(onset.notes, onset.ends, strict=True):
            end = max(min(end, release_by), onset.time + MIN_LENGTH)
            raw.append((onset.time, 1, mido.Message("note_on", note=note, velocity=onset.velocity)))
            raw.append((end, 0, mido.Message("note_off", note=note)))
    # At one instant releases go first, so a repeated key is let go before it is struck again.
    raw.sort(key=lambda item: (item[0], item[1]))
    out: list[tuple[float, mido.Message]] = []
    held: set[int] = set()
    now, previous = 0.0, raw[0][0] if raw else 0.0
    for at, _, message in raw:
        gap = at - previous
        now += min(gap, max_gap) if not held else gap
        previous = at
        if message.type == "note_on":
            held.add(message.note)
        else:
            held.discard(message.note)
        out.append((now, message))
    return tuple(out)


def onset_notes(onsets: Iterable[Onset]) -> list[int]:
    """The pitch list the measures take: every note of every onset, in onset
    order, each chord low to high."""
    return [note for onset in onsets for note in onset.notes]
