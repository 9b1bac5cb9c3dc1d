"""The checker's fast pass over a track accepts only what mido accepts, with mido's facts.

``trackscan.scan_track`` reads a track's bytes itself and answers None
wherever mido must judge; so for every track, good, built bad, or broken at
random: either it defers, or mido reads the track without error and finds
the same facts and the same length.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from cadenza.train import midifile
from cadenza.train.midifile import MidiLayout, ParseFailure, read_layout
from cadenza.train.trackscan import scan_track
from tests.conftest import SHARED
from tests.support import midi_corruptions as bad

PIANO_MIDI = SHARED / "data" / "piano-midi"


def _with_mido(chunk: bytes):
    """mido's facts and length of one track chunk, or the ParseFailure it ends in."""
    layout = MidiLayout(1, bad.DIVISION, (chunk,))
    try:
        return midifile.read_track_with_mido(layout, 1, chunk)
    except ParseFailure as failure:
        return failure


def _agrees(chunk: bytes) -> bool:
    """The fast pass defers, or gives exactly what mido gives (and mido accepts the track)."""
    fast = scan_track(chunk)
    if fast is None:
        return True
    slow = _with_mido(chunk)
    assert not isinstance(slow, ParseFailure), f"fast pass accepted what mido refuses: {slow}"
    return fast == slow


def _real_tracks(seed_mozart_dir: Path) -> list[bytes]:
    files = sorted(seed_mozart_dir.glob("*.mid"))
    if PIANO_MIDI.is_dir():
        files += sorted(PIANO_MIDI.glob("*/*.mid"))[::25]
    return [chunk for f in files for chunk in read_layout(f.read_bytes()).tracks]


def test_real_tracks_are_read_by_the_fast_pass_with_midos_facts(seed_mozart_dir):
    tracks = _real_tracks(seed_mozart_dir)
    assert len(tracks) >= 6
    for chunk in tracks:
        fast = scan_track(chunk)
        assert fast is not None  # well-formed piano files never need mido
        assert fast == _with_mido(chunk)


@pytest.mark.parametrize("name", sorted(bad.CASES))
def test_each_built_file_is_judged_as_mido_judges_it(name):
    data = bad.CASES[name].build()
    try:
        tracks = read_layout(data).tracks
    except ParseFailure:
        return  # refused on its chunks, before any event is read
    for chunk in tracks:
        assert _agrees(chunk)


def test_facts_of_every_kind_of_event_match_midos():
    events = (
        bad.meta(0x03, b"Piano right") + bad.meta(0x04, "Fl\xfcgel".encode("latin1"))
        + bad.meta(0x58, bytes([3, 2, 24, 8])) + bad.meta(0x59, bytes([0xFD, 1]), delta=5)
        + bad.meta(0x51, bytes([7, 0xA1, 0x20])) + bad.meta(0x01, b"any text")
        + bytes([0, 0xC2, 0x85])  # a program change whose data byte mido clips to 127
        + bytes([0, 0xF0, 3, 1, 2, 0xF7])  # a sysex
        + bad.notes((60, (64, 67)), channel=3, running_status=True)
        + bytes([0x81, 0x00, 0x85, 5, 64])  # a two-byte delta, a note-off on channel 6
        + bytes([0, 0xB0, 64, 127, 10, 64, 0])  # pedal, then running status
        + bad.END_OF_TRACK
    )
    chunk = bad.track(events, name=None)
    fast = scan_track(chunk)
    assert fast is not None
    assert fast == _with_mido(chunk)
    facts, _ = fast
    assert facts.channels == {3, 5} and facts.has_notes
    assert ("program" in {kind for _, kind, _ in facts.instruments})


def test_a_note_released_at_its_own_strike_is_found_as_mido_finds_it():
    events = (
        bytes([0, 0x90, 60, 80, 0, 64, 80])  # running status
        + bytes([0x60, 0x90, 60, 90, 0, 60, 0])  # struck again, released right after: found
        + bytes([0, 0x80, 64, 0, 0, 0x90, 64, 70])  # released, then struck: not found
        + bytes([0, 0x91, 67, 80, 0, 0x81, 67, 0])  # another channel, the same: found
        + bytes([0, 0x90, 67, 0])  # its off on channel 1 was for channel 2: not found
        + bytes([0x60, 0x80, 64, 0, 0, 0x80, 60, 0])
    )
    chunk = bad.track(events, name=None)
    fast = scan_track(chunk)
    assert fast is not None
    assert fast == _with_mido(chunk)
    assert fast[0].released_at_strike == ((0x60, 60), (0x60, 67))


@pytest.mark.parametrize("events", [
    bytes([0, 0x40, 0x40]),  # running status before any status
    bytes([0, 0xF0, 1, 0x7F, 0, 0x40, 0x40]),  # running status after a sysex: mido reads it oddly
    bytes([0, 0xF4]),  # a status byte no MIDI file may hold
    bad.meta(0x51, bytes([7, 0xA1])),  # a tempo two bytes long
    bad.meta(0x59, bytes([9, 0])),  # nine sharps
    bad.meta(0x54, bytes([0xE0, 0, 0, 0, 0])),  # a frame rate mido cannot decode
    bytes([0, 0x90, 60]),  # an event cut off by the chunk's end
    bytes([0x80]),  # a delta time cut off
])
def test_whatever_mido_must_judge_is_left_to_mido(events):
    assert scan_track(bad.track(events, name=None, end=False)) is None


def test_every_key_signature_is_left_to_mido_exactly_when_mido_refuses_it():
    for sharps in range(256):
        for mode in range(4):
            chunk = bad.track(bad.meta(0x59, bytes([sharps, mode])), name=None)
            assert (scan_track(chunk) is None) == _mido_refuses(chunk), (sharps, mode)


def _mido_refuses(chunk: bytes) -> bool:
    try:
        return isinstance(_with_mido(chunk), ParseFailure)
    except Exception:  # mido's KeySignatureError is no ValueError
        return True


def test_tracks_broken_at_random_are_never_accepted_against_mido(seed_mozart_dir):
    # A real track's opening, with bytes overwritten, dropped or inserted.
    source = read_layout((seed_mozart_dir / "mz_545_1.mid").read_bytes()).tracks[-1]
    body = source[8:600]
    rng = random.Random(7)
    deferred = 0
    for _ in range(400):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(mutated))
            action = rng.randrange(3)
            if action == 0:
                mutated[at] = rng.randrange(256)
            elif action == 1:
                del mutated[at]
            else:
                mutated.insert(at, rng.randrange(256))
        chunk = bad.chunk(b"MTrk", bytes(mutated))
        if _mido_refuses(chunk):
            assert scan_track(chunk) is None
        else:
            assert _agrees(chunk)
        deferred += scan_track(chunk) is None
    assert 0 < deferred < 400  # both ways were exercised
