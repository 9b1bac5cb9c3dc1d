"""Key estimation on known scales, key parsing, and token transposition."""

from __future__ import annotations

import pytest

from cadenza.errors import ConfigError
from cadenza.key import Key, estimate_key, parse_key, pitch_class_counts
from cadenza.tokens import chord_token, midi_to_name, normal_order, transpose_token

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11, 12)
HARMONIC_MINOR_STEPS = (0, 2, 3, 5, 7, 8, 11, 12)


@pytest.mark.parametrize("tonic", range(12))
def test_a_major_scale_with_its_tonic_triad_is_its_own_key(tonic):
    notes = [60 + tonic + s for s in MAJOR_STEPS] + [60 + tonic, 64 + tonic, 67 + tonic] * 2
    assert estimate_key(pitch_class_counts(notes)) == Key(tonic, "major")


@pytest.mark.parametrize("tonic", range(12))
def test_a_harmonic_minor_scale_with_its_tonic_triad_is_its_own_key(tonic):
    notes = [57 + tonic + s for s in HARMONIC_MINOR_STEPS] + [57 + tonic, 60 + tonic, 64 + tonic] * 2
    assert estimate_key(pitch_class_counts(notes)) == Key((9 + tonic) % 12, "minor")


def test_no_notes_or_flat_counts_name_no_key():
    assert estimate_key([0] * 12) is None
    assert estimate_key([1] * 12) is None


def test_key_pitch_classes():
    assert Key(2, "major").pitch_classes == {2, 4, 6, 7, 9, 11, 1}
    # A minor: natural and harmonic (G#) notes.
    assert Key(9, "minor").pitch_classes == {9, 11, 0, 2, 4, 5, 7, 8}


@pytest.mark.parametrize("text, key", [
    ("D major", Key(2, "major")), ("f# minor", Key(6, "minor")),
    ("Bb major", Key(10, "major")), ("E- minor", Key(3, "minor")), ("C MAJOR", Key(0, "major")),
])
def test_parse_key(text, key):
    assert parse_key(text) == key
    assert parse_key(str(key)) == key  # its own spelling reads back


@pytest.mark.parametrize("text", ["D", "H major", "D dorian", ""])
def test_a_key_that_is_not_one_is_named(text):
    with pytest.raises(ConfigError, match="expected a tonic and a mode"):
        parse_key(text)


def test_transposing_notes_moves_their_names_in_music21_spelling():
    assert transpose_token("C4", 1) == "C#4"
    assert transpose_token("B4", 1) == "C5"
    assert transpose_token("E-5", -3) == "C5"
    assert transpose_token("F#9", 1) == "G9"  # MIDI 127, the top
    assert transpose_token("G9", 1) is None
    assert transpose_token("C-1", -1) is None
    assert transpose_token(midi_to_name(60), 0) == "C4"


def test_transposing_chords_rotates_their_pitch_classes_into_normal_order():
    assert transpose_token("0.4.7", 2) == "2.6.9"
    assert transpose_token("7.11.2", 5) == "0.4.7"
    for semitones in range(-12, 13):
        for pcs in ((0, 4, 7), (2, 5, 9, 11), (1, 6), (3,)):
            token = chord_token(pcs)
            moved = transpose_token(token, semitones)
            assert moved == ".".join(map(str, normal_order(p + semitones for p in pcs)))
            assert transpose_token(moved, -semitones) == token
