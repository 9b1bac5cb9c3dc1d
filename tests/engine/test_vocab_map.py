"""Out-of-vocabulary mapping: every rule of the docstring, and its tie-breaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cadenza.errors import TokenError
from cadenza.live.engine.vocab_map import VocabMap
from cadenza.tokens import notes_token

VOCAB = ["C4", "E4", "G4", "D-5", "C3", "A5", "0.4.7", "2.7", "0.3.7", "5.9.0.2"]


@pytest.fixture
def vmap() -> VocabMap:
    return VocabMap(VOCAB)


def token(vmap: VocabMap, midis) -> str:
    return vmap.vocabulary[vmap.index_of_notes(midis)]


def test_known_tokens_map_to_themselves(vmap):
    for i, name in enumerate(VOCAB):
        assert vmap.index_of_token(name) == i
    assert token(vmap, [60]) == "C4"
    assert token(vmap, [60, 64, 67]) == "0.4.7"
    assert token(vmap, [72, 76, 79, 84]) == "0.4.7"  # any voicing of the same classes


def test_a_note_with_another_spelling_is_the_same_key(vmap):
    assert token(vmap, [73]) == "D-5"  # played C#5, the vocabulary spells it D-5
    assert vmap.index_of_token("C#5") == VOCAB.index("D-5")


def test_a_note_prefers_its_pitch_class_in_the_nearest_octave(vmap):
    assert token(vmap, [72]) == "C4"  # C5: C4 and C3 share the class, C4 is nearer
    assert token(vmap, [36]) == "C3"
    assert token(vmap, [91]) == "G4"  # G6: two octaves away still beats A5 nearby
    assert token(vmap, [61]) == "D-5"  # C#4: D-5 is the only C#/D-


def test_a_note_without_its_class_goes_to_the_nearest_pitch(vmap):
    assert token(vmap, [65]) == "E4"  # F4: E4 (1 semitone) beats G4 (2)
    assert token(vmap, [62]) == "C4"  # D4: C4 and E4 both 2 away; the lower wins
    assert token(vmap, [83]) == "A5"  # B5


def test_a_chord_goes_to_the_nearest_pitch_class_set(vmap):
    # C E G B (0.4.7.11): 0.4.7 differs by one class
    assert token(vmap, [60, 64, 67, 71]) == "0.4.7"
    # C Eb (0.3): 0.3.7 keeps both classes and differs by one
    assert token(vmap, [60, 63]) == "0.3.7"
    # D F A C E: 5.9.0.2 keeps four of five
    assert token(vmap, [62, 65, 69, 72, 76]) == "5.9.0.2"


def test_tie_between_chords_goes_to_the_most_shared_then_the_smallest(vmap):
    # C G (0.7): 2.7 shares 1, 0.4.7 and 0.3.7 share 2 and differ by 1; 0.4.7 comes first
    assert token(vmap, [60, 67]) == "0.4.7"


def test_a_chord_with_nothing_close_becomes_its_top_note(vmap):
    # C# F# B (1.6.11): no vocabulary chord keeps two of these classes
    assert token(vmap, [61, 66, 71]) == "D-5"  # top note B4: no B; D-5 (2 away) beats G4 (4)
    assert token(vmap, [49, 66]) == "G4"  # top note F#4: G4 (1 away)
    assert token(vmap, [49, 54, 73]) == "D-5"  # top note C#5 is in the vocabulary
    # one class in two octaves, not a vocabulary chord: the higher note
    assert token(vmap, [48, 60]) == "C4"


def test_vocabulary_without_notes_maps_a_note_to_a_chord_that_holds_it():
    vmap = VocabMap(["0.4.7", "4.7", "2.5.9"])
    assert vmap.vocabulary[vmap.index_of_notes([67])] == "4.7"
    assert vmap.index_of_notes([61]) == 0  # C#: no chord holds it; the first token


def test_bad_input_is_a_clear_error():
    with pytest.raises(TokenError):
        VocabMap([])
    with pytest.raises(TokenError):
        VocabMap(["C4"]).index_of_notes([])
    with pytest.raises(TokenError, match="not a note token"):
        VocabMap(["C4"]).index_of_token("H4")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=21, max_value=108), min_size=1, max_size=6))
def test_every_input_maps_to_a_vocabulary_token_and_known_ones_exactly(midis):
    vmap = VocabMap(VOCAB)
    index = vmap.index_of_notes(midis)
    assert 0 <= index < len(VOCAB)
    played = notes_token(midis)
    if played in VOCAB:
        assert VOCAB[index] == played
