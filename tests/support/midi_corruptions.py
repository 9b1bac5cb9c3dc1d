"""MIDI files written byte by byte, good and bad, for the trainer's input tests.

mido and music21 only write well-formed files, so these builders assemble
the Standard MIDI File structure by hand (chunks, variable-length delta
times, status bytes) and break it exactly where a test wants: a chunk that
claims gigabytes, a status byte no MIDI file may hold, a file cut short.

``CASES`` lists one file of each kind with what the trainer must make of it:
the tokens of a good file, or words of the reason it is skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DIVISION = 480  # ticks per quarter note
PIANO = 0  # General MIDI program 1, Acoustic Grand Piano

# A short tune; music21 spells MIDI notes with sharps.
MELODY = (60, 62, 64, 65, 67, 69, 71, 72, 70, 66, 61, 60)
MELODY_TOKENS = ("C4", "D4", "E4", "F4", "G4", "A4", "B4", "C5", "B-4", "F#4", "C#4", "C4")
# Another tune for a second track or pattern; one chord in it.
PATTERN = ((48,), (52,), (55,), (48, 52, 55), (50,), (53,), (57,))
PATTERN_TOKENS = ("C3", "E3", "G3", "0.4.7", "D3", "F3", "A3")


def vlq(value: int) -> bytes:
    """``value`` as a MIDI variable-length quantity (7 bits per byte, high bit: more follow)."""
    if not 0 <= value <= 0x0FFFFFFF:
        raise ValueError(f"{value} does not fit a variable-length quantity")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def chunk(kind: bytes, body: bytes, claimed: int | None = None) -> bytes:
    """A chunk: 4-byte type, 4-byte big-endian length (``claimed``, else the true one), body."""
    return kind + struct.pack(">L", len(body) if claimed is None else claimed) + body


def header(fmt: int, tracks: int, division: int = DIVISION) -> bytes:
    return chunk(b"MThd", struct.pack(">HHH", fmt, tracks, division))


def meta(kind: int, data: bytes = b"", delta: int = 0) -> bytes:
    return vlq(delta) + bytes([0xFF, kind]) + vlq(len(data)) + data


END_OF_TRACK = meta(0x2F)


def notes(
    steps: Sequence[int | Sequence[int]],
    *,
    channel: int = 0,
    ticks: int = DIVISION,
    running_status: bool = False,
) -> bytes:
    """Events playing ``steps`` one after another, a quarter note each (a step may be a chord).

    With ``running_status`` the status byte is written once and every later
    event leaves it out, with note-offs written as note-ons of velocity 0,
    as keyboards and many sequencers write them.
    """
    on, off = 0x90 | channel, 0x80 | channel
    out = bytearray(vlq(0) + bytes([0xC0 | channel, PIANO]))
    status = None

    def event(delta: int, kind: int, note: int, velocity: int) -> None:
        nonlocal status
        out.extend(vlq(delta))
        if not (running_status and status == kind):
            out.append(kind)
            status = kind
        out.extend((note, velocity))

    for step in steps:
        pitches = (step,) if isinstance(step, int) else tuple(step)
        for pitch in pitches:
            event(0, on, pitch, 90)
        for number, pitch in enumerate(pitches):
            if running_status:
                event(ticks if number == 0 else 0, on, pitch, 0)
            else:
                event(ticks if number == 0 else 0, off, pitch, 0)
    return bytes(out)


def track(events: bytes, *, name: str | None = "Piano", end: bool = True) -> bytes:
    named = meta(0x03, name.encode("latin-1")) if name is not None else b""
    return chunk(b"MTrk", named + events + (END_OF_TRACK if end else b""))


def midi_file(tracks: Sequence[bytes], fmt: int = 1, division: int = DIVISION) -> bytes:
    return header(fmt, len(tracks), division) + b"".join(tracks)


# -- one builder per kind of file ----------------------------------------------------


def good() -> bytes:
    """A plain format-1 file: a tempo track and one piano track."""
    tempo = chunk(b"MTrk", meta(0x51, (500000).to_bytes(3, "big")) + END_OF_TRACK)
    return midi_file([tempo, track(notes(MELODY))])


def format_0() -> bytes:
    return midi_file([track(notes(MELODY))], fmt=0)


def running_status() -> bytes:
    """Valid: every note-on and note-off after the first leaves its status byte out."""
    return midi_file([track(notes(MELODY, running_status=True))], fmt=0)


def extra_chunks() -> bytes:
    """Valid: a chunk of a type readers must skip before the track, padding after it."""
    alien = chunk(b"XFIH", b"\x00\x01 some vendor's data")
    return header(0, 1) + alien + track(notes(MELODY)) + bytes(32)


def empty() -> bytes:
    return b""


def truncated() -> bytes:
    """A good file cut inside its last track."""
    data = good()
    return data[: len(data) - 20]


def header_only() -> bytes:
    """The header promises a track that never comes."""
    return header(1, 1)


def not_midi() -> bytes:
    return b"These are my notes for the concert, not a MIDI file.\n" * 4


def riff_wave() -> bytes:
    """A WAV file's first bytes under a .mid name."""
    return b"RIFF" + struct.pack("<L", 36) + b"WAVEfmt " + bytes(24)


def absurd_length() -> bytes:
    """A track chunk whose header claims almost 4 GiB, in a file of a few dozen bytes."""
    body = notes(MELODY) + END_OF_TRACK
    return header(0, 1) + chunk(b"MTrk", body, claimed=0xFFFFFFF0)


def absurd_header_length() -> bytes:
    """The MThd chunk itself claims 2 GiB."""
    return chunk(b"MThd", struct.pack(">HHH", 0, 1, DIVISION), claimed=0x7FFFFFFF) + track(
        notes(MELODY)
    )


def absurd_meta_length() -> bytes:
    """A text meta event inside the track claims 256 MiB (the chunk lengths are honest)."""
    lie = vlq(0) + bytes([0xFF, 0x01]) + vlq(0x0FFFFFFF) + b"liner notes"
    return midi_file([track(lie + notes(MELODY))], fmt=0)


def absurd_delta_time() -> bytes:
    """A note 2**28 - 1 ticks (over half a million quarter notes) after the tune.

    Every byte is valid; music21 would lay out every bar of the silence.
    """
    late = vlq(0x0FFFFFFF) + bytes([0x90, 60, 90]) + vlq(DIVISION) + bytes([0x80, 60, 0])
    return midi_file([track(notes(MELODY) + late)], fmt=0)


def smpte_time() -> bytes:
    """Time in SMPTE frames (25 per second, 24 ticks each) instead of ticks per quarter note."""
    division = (256 - 25) << 8 | 24
    return midi_file([track(notes(MELODY, ticks=300))], fmt=0, division=division)


def too_many_tracks() -> bytes:
    """The header claims 65535 tracks; the file holds one."""
    return header(1, 0xFFFF) + track(notes(MELODY))


def type_2() -> bytes:
    """Format 2: two independent patterns, meant to be played one after the other."""
    return midi_file([track(notes(MELODY)), track(notes(PATTERN))], fmt=2)


def illegal_status() -> bytes:
    """0xF4 is an undefined system common status: it may appear in no MIDI file."""
    broken = notes(MELODY[:4]) + vlq(0) + b"\xf4\x10\x10" + notes(MELODY[4:])
    return midi_file([track(broken)], fmt=0)


def data_byte_first() -> bytes:
    """A track whose first event has no status byte, so there is no status to run on."""
    return midi_file([track(vlq(0) + b"\x3c\x40" + notes(MELODY), name=None)], fmt=0)


def unknown_format() -> bytes:
    return midi_file([track(notes(MELODY))], fmt=7)


def no_notes() -> bytes:
    """Well-formed, but only a track name and a tempo."""
    return midi_file([chunk(b"MTrk", meta(0x51, (500000).to_bytes(3, "big")) + END_OF_TRACK)])


@dataclass(frozen=True)
class Case:
    """A kind of file, and what training must make of it."""

    build: Callable[[], bytes]
    tokens: tuple[tuple[str, ...], ...] | None = None  # a good file's sequences
    reason: str = ""  # a bad file: words its skip reason must contain


#: file name -> what it is.  The good ones give their tunes; each bad one is
#: skipped with a reason containing ``reason``.
CASES: dict[str, Case] = {
    "good.mid": Case(good, tokens=(MELODY_TOKENS,)),
    "format0.mid": Case(format_0, tokens=(MELODY_TOKENS,)),
    "running-status.mid": Case(running_status, tokens=(MELODY_TOKENS,)),
    "type2.mid": Case(type_2, tokens=(MELODY_TOKENS, PATTERN_TOKENS)),
    "smpte.mid": Case(smpte_time, tokens=(MELODY_TOKENS,)),
    "extra-chunks.mid": Case(extra_chunks, tokens=(MELODY_TOKENS,)),
    "empty.mid": Case(empty, reason="empty file"),
    "truncated.mid": Case(truncated, reason="truncated"),
    "header-only.mid": Case(header_only, reason="truncated"),
    "notes.mid": Case(not_midi, reason="not a MIDI file"),
    "wave.midi": Case(riff_wave, reason="not a MIDI file"),
    "absurd-length.mid": Case(absurd_length, reason="claims 4294967280 bytes"),
    "absurd-header.mid": Case(absurd_header_length, reason="claims 2147483647 bytes"),
    "absurd-meta.mid": Case(absurd_meta_length, reason="corrupt"),
    "absurd-delta.mid": Case(absurd_delta_time, reason="quarter notes, more than the 50,000"),
    "too-many-tracks.mid": Case(too_many_tracks, reason="65535 tracks"),
    "illegal-status.mid": Case(illegal_status, reason="status byte 0xf4"),
    "data-byte-first.mid": Case(data_byte_first, reason="corrupt"),
    "format7.mid": Case(unknown_format, reason="format 7"),
    "no-notes.mid": Case(no_notes, reason="no notes or chords"),
}
