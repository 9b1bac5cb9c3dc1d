"""A MIDI file's structure, checked cheaply before music21 reads it.

music21 trusts what a file says: it skips events it cannot parse without a
word, reads a track chunk as long as the file lasts whatever length the
chunk claims, refuses format 2, and lays out a score as long as the delta
times say, so one absurd delta time costs minutes and gigabytes.  Every
MIDI file is therefore checked here first, at the cost of one pass over its
bytes: the chunk headers with ``struct`` (a length claim is compared with
the bytes there are and never used to allocate anything), then each
track's events, strictly about status bytes and event lengths, with running
status as the standard says: by ``trackscan``'s pass over the bytes where
it can vouch for a track, else by mido, whose errors name the fault.  The
result is the file's tracks, each a whole and valid chunk, ready for
music21 or symusic.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, replace

from cadenza.train.trackscan import TrackFacts, scan_track

#: Files larger than this are not read at all.  The largest piano
#: performances run to a few hundred kilobytes; a bigger .mid is most likely
#: not music, and music21 would need hours and gigabytes for it.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: A track lasting longer than this many quarter notes (seven hours at 120
#: BPM) holds an absurd delta time; music21 would lay out every bar of it.
MAX_QUARTER_NOTES = 50_000


def size_problem(size: int) -> str | None:
    """Why a file of ``size`` bytes is not read, or None."""
    if size <= MAX_FILE_BYTES:
        return None
    return (f"{size / 2**20:.0f} MiB: larger than any MIDI file worth parsing "
            f"(the limit is {MAX_FILE_BYTES // 2**20} MiB)")


class ParseFailure(Exception):
    """A file that cannot give tokens; the message is the reason shown to the user."""


@dataclass(frozen=True)
class MidiLayout:
    """The parts of a checked MIDI file that music21 needs."""

    format: int
    division: int
    tracks: tuple[bytes, ...]  # each one whole MTrk chunk, header included
    facts: tuple[TrackFacts, ...] = ()  # one per track, once check_events has read them

    def file_bytes(self, fmt: int, tracks: tuple[bytes, ...], division: int | None = None) -> bytes:
        """A clean file of ``tracks``: a 6-byte header, nothing between or after the chunks."""
        header = struct.pack(">LHHH", 6, fmt, len(tracks), division or self.division)
        return b"MThd" + header + b"".join(tracks)

    def music(self) -> list[bytes]:
        """What music21 should read: the file, or each pattern of a format-2 file on its own.

        A format-2 file holds independent patterns played one after another;
        music21 refuses it, and reading its tracks together as one score
        would sound them at once.  Time in SMPTE frames becomes ticks per
        quarter note at 120 BPM, since music21 misreads SMPTE time.
        """
        division = min(0x7FFF, max(1, round(_ticks_per_quarter(self.division))))
        if self.format == 2:
            return [self.file_bytes(0, (track,), division) for track in self.tracks]
        return [self.file_bytes(self.format, self.tracks, division)]


def _tracks(count: int) -> str:
    return f"{count} track" + ("" if count == 1 else "s")


def _overrun(what: str, claimed: int, available: int) -> ParseFailure:
    return ParseFailure(
        f"truncated or corrupt: {what} claims {claimed} bytes but only {available} follow"
    )


def read_layout(data: bytes) -> MidiLayout:
    """Walk the chunks of a MIDI file; ``ParseFailure`` names what is wrong with them."""
    if len(data) < 8 or not data.startswith(b"MThd"):
        raise ParseFailure("not a MIDI file (no MThd header)")
    (length,) = struct.unpack_from(">L", data, 4)
    if length < 6:
        raise ParseFailure(f"corrupt: the header chunk is {length} bytes long; it needs 6")
    if 8 + length > len(data):
        raise _overrun("the header chunk", length, len(data) - 8)
    fmt, count, division = struct.unpack_from(">HHH", data, 8)
    if fmt > 2:
        raise ParseFailure(f"corrupt: format {fmt} (MIDI files are format 0, 1 or 2)")
    if count == 0:
        raise ParseFailure("the header declares no tracks")
    if division == 0 or (division & 0x8000 and division & 0xFF == 0):
        raise ParseFailure(f"corrupt: time division 0x{division:04x} has zero ticks")
    offset = 8 + length
    tracks: list[bytes] = []
    while len(tracks) < count:
        if offset + 8 > len(data):
            raise ParseFailure(
                f"truncated: the header declares {_tracks(count)} but the file ends after "
                f"{len(tracks)}"
            )
        kind = data[offset : offset + 4]
        (size,) = struct.unpack_from(">L", data, offset + 4)
        start = offset + 8
        if not all(0x20 < byte < 0x7F for byte in kind):
            raise ParseFailure(
                f"corrupt: bytes {kind!r} at offset {offset} where a chunk should begin"
            )
        if start + size > len(data):
            what = f"track {len(tracks) + 1}" if kind == b"MTrk" else f"chunk {kind.decode()}"
            raise _overrun(what, size, len(data) - start)
        if kind == b"MTrk":
            tracks.append(data[offset : start + size])
        # Any other chunk type is one the standard lets a future version
        # add; readers skip it.  Bytes after the declared tracks are ignored.
        offset = start + size
    return MidiLayout(fmt, division, tuple(tracks))


def _ticks_per_quarter(division: int) -> float:
    if division & 0x8000:
        # SMPTE time: minus the frames per second in the high byte, ticks
        # per frame in the low one.  There is no beat; take 120 BPM.
        frames = 256 - (division >> 8)
        return frames * (division & 0xFF) / 2
    return float(division)


def _facts(track: list) -> TrackFacts:
    tick = 0
    channels: set[int] = set()
    has_notes = False
    instruments: list[tuple[int, str, str | int]] = []
    signatures: list[tuple[int, int, int]] = []
    meta_ticks: list[int] = []
    released: list[tuple[int, int]] = []
    struck: dict[tuple[int, int], int] = {}  # (channel, pitch) -> the tick of its last note-on
    for message in track:
        tick += message.time
        kind = message.type
        if kind == "note_on" or kind == "note_off":
            has_notes = has_notes or kind == "note_on"
            channels.add(message.channel)
            key = (message.channel, message.note)
            if kind == "note_on" and message.velocity:
                struck[key] = tick
            elif struck.get(key) == tick:
                released.append((tick, message.note))
        elif kind == "program_change":
            instruments.append((tick, "program", message.program))
        elif kind == "track_name" or kind == "instrument_name":
            instruments.append((tick, "name" if kind == "track_name" else "instrument",
                                message.name))
        elif kind == "time_signature":
            signatures.append((tick, message.numerator, message.denominator))
        elif kind in ("key_signature", "set_tempo"):
            meta_ticks.append(tick)
    return TrackFacts(has_notes, frozenset(channels), tuple(instruments), tuple(signatures),
                      tuple(meta_ticks), tuple(released))


def check_events(layout: MidiLayout) -> tuple[TrackFacts, ...]:
    """Read every track's events; ``ParseFailure`` if one is malformed or absurd.

    Returns what each track says about its instrument (``TrackFacts``).  A
    track is read by ``trackscan`` where it can vouch for it, else by mido,
    whose errors name what is wrong.
    """
    per_quarter = _ticks_per_quarter(layout.division)
    facts = []
    for number, chunk in enumerate(layout.tracks, 1):
        scanned = scan_track(chunk)
        track_facts, ticks = scanned if scanned is not None else read_track_with_mido(
            layout, number, chunk)
        quarters = ticks / per_quarter
        if quarters > MAX_QUARTER_NOTES:
            raise ParseFailure(
                f"track {number} lasts {quarters:,.0f} quarter notes, more than the "
                f"{MAX_QUARTER_NOTES:,} any real piece needs (a corrupt delta time?)"
            )
        facts.append(track_facts)
    return tuple(facts)


def read_track_with_mido(layout: MidiLayout, number: int, chunk: bytes) -> tuple[TrackFacts, int]:
    """Track ``number``'s facts and length in ticks, read by mido; its errors as ParseFailure."""
    import mido

    try:
        # clip=True: a stray data byte over 127 costs one wrong value, not
        # the file; music21 reads such files too.
        midi = mido.MidiFile(file=io.BytesIO(layout.file_bytes(0, (chunk,))), clip=True)
    except EOFError as err:
        raise ParseFailure(
            f"corrupt: an event of track {number} runs past the end of its chunk"
        ) from err
    except (OSError, ValueError, KeyError, IndexError, struct.error) as err:
        raise ParseFailure(f"corrupt MIDI file: track {number}: {err}") from err
    track = midi.tracks[0]
    return _facts(track), sum(message.time for message in track)


def check_midi(data: bytes) -> MidiLayout:
    """The layout of a MIDI file whose chunks and events are all well-formed."""
    layout = read_layout(data)
    return replace(layout, facts=check_events(layout))
