"""Where the answers sound: [live] register and octave, on the virtual clock.

A scripted model answers a melody written down in advance, in its own
octave, so the test can say exactly where each note must land.
"""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.config import LiveConfig
from cadenza.live.engine.engine import Engine
from cadenza.live.engine.register import PIANO_HIGH, PIANO_LOW, Register, into_piano, octave_shift
from cadenza.tokens import midi_to_name, name_to_midi
from testing.fake_predictor import FakePredictor
from tests.engine.test_engine import note_ons, phrase, run

VOCAB = [midi_to_name(m) for m in range(21, 109)] + ["0.4.7"]


def scripted(melody: list[int]):
    """A model that answers ``melody`` (MIDI numbers), one note per prediction."""
    script = iter(melody)

    def rule(history):
        probs = np.full(len(VOCAB), 1e-6)
        probs[VOCAB.index(midi_to_name(next(script)))] = 1.0
        return probs

    return rule


def answer(call: list[int], melody: list[int], **settings) -> list[int]:
    """The notes of the answer the scripted model gives to ``call``."""
    assert len(call) == len(melody)
    engine = Engine(FakePredictor(VOCAB, scripted(melody)),
                    LiveConfig(key="off", loop_guard=0, **settings))
    return [note for _, note in note_ons(run(engine, phrase(call), end=30.0))]


HIGH_CALL = [84, 86, 88, 86]  # around D6: the performer's centre is 86


def intervals(notes: list[int]) -> list[int]:
    return [b - a for a, b in zip(notes, notes[1:], strict=False)]


def test_the_answer_moves_by_one_octave_shift_and_keeps_its_contour():
    melody = [48, 52, 55, 60]  # C3 E3 G3 C4, three octaves below the call
    notes = answer(HIGH_CALL, melody)
    assert notes == [84, 88, 91, 96]
    assert intervals(notes) == intervals(melody)


def test_register_model_plays_the_tokens_as_they_say():
    melody = [48, 52, 55, 60]
    assert answer(HIGH_CALL, melody, register="model") == melody


def test_an_answer_already_in_the_performers_register_is_left_alone():
    melody = [81, 88, 79, 91]  # leaps of a seventh, all within reach of D6
    assert answer(HIGH_CALL, melody) == melody


def test_notes_past_the_piano_come_back_by_octaves():
    high = answer([105, 107, 108, 107], [60, 67, 72, 79])  # shifted by +48: 108 115 120 127
    assert high == [108, 103, 108, 103]
    low = answer([21, 23, 24, 23], [72, 65, 60, 53])  # shifted by -48: 24 17 12 5
    assert low == [24, 29, 24, 29]
    assert all(PIANO_LOW <= n <= PIANO_HIGH for n in high + low)


def test_a_fixed_octave_overrides_the_performers_register():
    # octave 2: the answer sits around F#2 (42), wherever the performer plays.
    assert answer(HIGH_CALL, [74, 77, 81, 86], octave=2) == [38, 41, 45, 50]
    # ... and with register = "model" only chords move there: notes stay.
    assert answer(HIGH_CALL, [74, 77, 81, 86], octave=2, register="model") == [74, 77, 81, 86]


def test_a_phrase_that_wanders_off_is_brought_back_once():
    """A line climbing two octaves above the performer (centre 61): once the
    median of its notes is more than 9 semitones above, it steps down an
    octave, and keeps its shape after."""
    call = [60, 62, 64, 62, 60, 59, 60, 62]  # centre 60 or 61
    melody = [60, 64, 67, 72, 76, 79, 84, 88]
    notes = answer(call, melody)
    assert notes == [60, 64, 67, 72, 76, 79, 72, 76]
    assert intervals(notes)[:5] == intervals(melody)[:5]
    assert intervals(notes)[6:] == intervals(melody)[6:]


def test_each_answer_is_placed_afresh():
    """Two calls in two registers: each answer follows its own call."""
    melody = [48, 52, 55, 60, 48, 52, 55, 60]
    engine = Engine(FakePredictor(VOCAB, scripted(melody)), LiveConfig(key="off", loop_guard=0))
    low = phrase([36, 38, 40, 38])  # centre 38: the answer stays an octave below C3
    high = phrase(HIGH_CALL, start=8.0)
    notes = [note for _, note in note_ons(run(engine, low + high, end=40.0))]
    # The second call's register is its own, not a blend with the first.
    assert notes == [36, 40, 43, 48, 84, 88, 91, 96]


def test_chords_are_voiced_near_the_performer_and_on_the_piano():
    def chords(history):
        probs = np.full(len(VOCAB), 1e-6)
        probs[VOCAB.index("0.4.7")] = 1.0
        return probs

    engine = Engine(FakePredictor(VOCAB, chords), LiveConfig(key="off", loop_guard=0))
    answer_notes = [n for _, n in note_ons(run(engine, phrase([106, 107, 108]), end=30.0))]
    assert len(answer_notes) == 9 and all(n <= PIANO_HIGH for n in answer_notes)
    assert {n % 12 for n in answer_notes} == {0, 4, 7}
    assert max(answer_notes) >= 96  # up where the performer is, not middle C


# -- the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("centre", "target", "shift"), [(48, 86, 36), (60, 60, 0), (66, 60, 0), (67, 60, -12),
                                    (54, 60, 12), (72, 42, -24)],
)
def test_octave_shift_is_the_nearest_whole_octave(centre, target, shift):
    assert octave_shift(centre, target) == shift


def test_into_piano_moves_a_chord_as_one():
    assert into_piano([100, 104, 111]) == [88, 92, 99]
    assert into_piano([12, 16, 19]) == [24, 28, 31]
    assert into_piano([60]) == [60]


def test_register_follow_false_leaves_notes_and_the_shift_alone():
    register = Register()
    assert register.place("C3", 86, follow=False) == [name_to_midi("C3")]
    assert register.shift is None
    assert register.place("C3", 86, follow=True) == [84]
    assert register.shift == 36
    register.new_phrase()
    assert register.shift is None
