"""One pass over a MIDI track's bytes for what the checker needs, at the speed of the bytes.

Reading a track with mido builds a ``Message`` object for every event, and
piano-midi.de performances hold tens of thousands of them (pedal, notes):
about 130 ms a file, twelve times what the fast tokenizer spends on the
whole file.  The checker wants far less than messages: that every event is
well-formed, how long the track lasts, and a few facts about it
(``TrackFacts``).  ``scan_track`` reads exactly those with integer
arithmetic on the chunk's bytes.

It reads a track the way mido does (running status, data bytes over 127
clipped, a meta or sysex length never trusted past the chunk), and it never
judges a track mido might judge otherwise: wherever mido would raise, or
does something odd (running status after a sysex or a system message, a
meta event of a known kind and an unusual length, a key signature out of
range), it answers ``None`` and the caller reads the track with mido, whose
errors are the refusals users see.  So the fast pass only ever accepts
tracks mido accepts, with the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass

#: mido refuses a meta or sysex event longer than this (``MAX_MESSAGE_LENGTH``).
MAX_EVENT_BYTES = 1_000_000
# The meta events mido decodes field by field, and their standard lengths;
# any other length is left to mido, which may refuse it.
_DECODED_LENGTHS = {0x00: 2, 0x20: 1, 0x21: 1, 0x51: 3, 0x54: 5, 0x58: 4, 0x59: 2}
_TRACK_NAME, _INSTRUMENT_NAME, _TEMPO, _TIME_SIGNATURE, _KEY_SIGNATURE = (
    0x03, 0x04, 0x51, 0x58, 0x59)
_SMPTE_OFFSET = 0x54
_PROGRAM_CHANGE, _NOTE_OFF, _NOTE_ON = 0xC0, 0x80, 0x90


@dataclass(frozen=True)
class TrackFacts:
    """What one track says about its instrument, met on the checker's pass over it.

    The fast tokenizer reads notes with symusic, which answers neither
    whether a track had a program change nor in which order its meta events
    came; music21 decides a track's part by both, so the checker, which
    reads every event anyway, keeps them.
    """

    has_notes: bool = False  # a note-on event: music21 makes a part of this track
    channels: frozenset[int] = frozenset()  # of its note events, 0-based
    # (tick, "name" | "instrument" | "program", value), in file order
    instruments: tuple[tuple[int, str, str | int], ...] = ()
    time_signatures: tuple[tuple[int, int, int], ...] = ()  # (tick, numerator, denominator)
    meta_ticks: tuple[int, ...] = ()  # ticks of the other events music21 places in a part
    # (tick, pitch) where a note-on is followed at the same tick by its note-off:
    # music21 pairs by event order, so that note lasts no time at all, while
    # symusic (first in, first out) gives the off to an older note of the pitch
    released_at_strike: tuple[tuple[int, int], ...] = ()


def scan_track(chunk: bytes) -> tuple[TrackFacts, int] | None:
    """A whole MTrk chunk's facts and its length in ticks; None where mido must judge it."""
    body = memoryview(chunk)[8:]
    end = len(body)
    i = tick = 0
    status = 0  # the running status; 0 before the first status byte
    has_notes = False
    channels = 0  # a bit per channel of note events
    instruments: list[tuple[int, str, str | int]] = []
    signatures: list[tuple[int, int, int]] = []
    meta_ticks: list[int] = []
    released: list[tuple[int, int]] = []
    struck: dict[int, int] = {}  # channel << 7 | pitch -> the tick of its last note-on
    while i < end:
        byte = body[i]  # the delta time, a variable-length quantity
        i += 1
        delta = byte & 0x7F
        while byte & 0x80:
            if i >= end:
                return None
            byte = body[i]
            i += 1
            delta = delta << 7 | byte & 0x7F
        tick += delta
        if i >= end:
            return None
        byte = body[i]
        if byte & 0x80:
            i += 1
            if byte >= 0xF0:
                if byte == 0xFF:
                    i = _meta(body, i, end, tick, instruments, signatures, meta_ticks)
                elif byte in (0xF0, 0xF7):
                    status = byte  # mido lets a sysex set the running status
                    i = _skip_sized(body, i, end)
                else:
                    return None  # a system message inside a file: mido's reading is odd
                if i < 0:
                    return None
                continue
            status = byte
            kind = byte & 0xF0
            # A running-status event repeats this status, so its facts are met here.
            if kind in (_NOTE_ON, _NOTE_OFF):
                channels |= 1 << (byte & 0x0F)
                has_notes = has_notes or kind == _NOTE_ON
        elif status == 0 or status >= 0xF0:
            return None  # running status with none to run on, or after a sysex
        kind = status & 0xF0
        size = 1 if kind in (_PROGRAM_CHANGE, 0xD0) else 2
        if i + size > end:
            return None
        if kind == _PROGRAM_CHANGE:
            instruments.append((tick, "program", min(body[i], 0x7F)))  # mido clips
        elif kind in (_NOTE_ON, _NOTE_OFF):
            pitch = body[i]
            if pitch > 0x7F:
                pitch = 0x7F  # mido clips
            key = (status & 0x0F) << 7 | pitch
            if kind == _NOTE_ON and body[i + 1]:
                struck[key] = tick
            elif struck.get(key) == tick:
                released.append((tick, pitch))
        i += size
    facts = TrackFacts(has_notes, frozenset(c for c in range(16) if channels >> c & 1),
                       tuple(instruments), tuple(signatures), tuple(meta_ticks), tuple(released))
    return facts, tick


def _length(body: memoryview, i: int, end: int) -> tuple[int, int]:
    """A variable-length quantity at ``i``: (value, index after it), or (-1, -1) past ``end``."""
    value = 0
    while i < end:
        byte = body[i]
        i += 1
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            return value, i
    return -1, -1


def _skip_sized(body: memoryview, i: int, end: int) -> int:
    """Past a length and that many bytes (a sysex); -1 where mido would refuse or overrun."""
    size, i = _length(body, i, end)
    if i < 0 or size > MAX_EVENT_BYTES or i + size > end:
        return -1
    return i + size


def _meta(body: memoryview, i: int, end: int, tick: int, instruments: list,
          signatures: list, meta_ticks: list) -> int:
    """Past one meta event, noting the facts it holds; -1 where mido must judge it."""
    if i >= end:
        return -1
    kind = body[i]
    size, start = _length(body, i + 1, end)
    if start < 0 or size > MAX_EVENT_BYTES or start + size > end:
        return -1
    if _DECODED_LENGTHS.get(kind, size) != size:
        return -1
    data = body[start : start + size]
    if kind in (_TRACK_NAME, _INSTRUMENT_NAME):
        name = bytes(data).decode("latin1")  # mido's charset for MIDI files
        instruments.append((tick, "name" if kind == _TRACK_NAME else "instrument", name))
    elif kind == _TIME_SIGNATURE:
        signatures.append((tick, data[0], 2 ** data[1]))
    elif kind == _KEY_SIGNATURE:
        sharps = data[0] - 256 if data[0] > 127 else data[0]
        if not (-7 <= sharps <= 7 and data[1] in (0, 1)):
            return -1  # mido raises its own KeySignatureError
        meta_ticks.append(tick)
    elif kind == _TEMPO:
        meta_ticks.append(tick)
    elif kind == _SMPTE_OFFSET and data[0] >> 5 > 3:
        return -1  # a frame rate mido cannot decode
    return start + size
